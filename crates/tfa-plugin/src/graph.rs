//! TF_InitGraph: the grappler hook for the NPU.
//!
//! TensorFlow merges plugin optimizer configs process-wide: an optimizer a
//! plugin switches off is off for every graph, CPU graphs included (see
//! `PluginGraphOptimizerRegistry::GetPluginConfigs`). Switching off the
//! remapper would therefore cost the user's CPU ops their oneDNN fusions, so
//! every TensorFlow optimizer stays at its default: the remapper and layout
//! optimizer only rewrite nodes placed on CPU or GPU, and the rewrites that do
//! reach NPU nodes (the arithmetic optimizer's `x + x` -> `Mul`, add chains ->
//! `AddN`, `x * x` -> `Square`) have NPU kernels.
//!
//! One exception: the memory optimizer. When a device's estimated peak memory
//! passes half its capacity, it rewrites large `AddN`s (gradient sums) into
//! `TemporaryVariable` + ref `Assign`/`AssignAdd` + `DestroyTemporaryVariable`,
//! ops a plugin cannot implement (TensorFlow 2.21's wheel exports no C API for
//! temporary or ref variables), so training graphs would fail with "No
//! registered 'Assign' OpKernel for 'NPU' devices". It is switched off; CPU
//! graphs lose nothing by default (the rewrite needs a known device memory
//! size, recomputation and swapping are opt-in or GPU-only).
//!
//! The optimizer implements the graph side of the precision modes (see
//! `tfa_ops::amp`): TensorFlow's own `auto_mixed_precision` never rewrites
//! nodes on a plugin device. Under `allow_mix_precision_*` and `force_fp32` it
//! decodes the GraphDef, paints the NPU nodes, changes their type attributes
//! and inserts `Cast`s on every float edge whose two ends now disagree, so
//! function signatures and fetched dtypes never change. Any error in the pass
//! leaves the graph unchanged (with a warning): it never fails the user's
//! function. `TFA_DUMP_GRAPH=dir` writes every graph the pass sees, before
//! and after, as text.

mod frames;
mod fusion;
mod loop_hoist;
mod loop_sink;
mod ordering;
mod pad_fold;
mod transpose_fold;

use crate::device::platform::DEVICE_TYPE;
use crate::ffi::status::guard;
use crate::ffi::*;
use crate::struct_size;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tfa_core::{DType, Error};
use tfa_ops::amp;
use tfa_ops::precision::{self, Lists, Mode};
use tfa_proto::{attr_value, AttrValue, GraphDef, Message, NodeDef, OpDef, OpList};

/// TensorFlow's graph-optimizer plugin entry point.
///
/// # Safety
/// Called by TensorFlow with valid `params` and `status`.
#[no_mangle]
pub unsafe extern "C" fn TF_InitGraph(
    params: *mut TP_OptimizerRegistrationParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: TensorFlow's registration params, valid for writes for this
        // call (this function's contract); null is an error.
        let p = unsafe { params.as_mut() }
            .ok_or_else(|| Error::Internal("null optimizer params".into()))?;
        p.struct_size = struct_size!(TP_OptimizerRegistrationParams, optimizer);
        p.major_version = GO_MAJOR as i32;
        p.minor_version = GO_MINOR as i32;
        p.patch_version = GO_PATCH as i32;
        p.device_type = DEVICE_TYPE.as_ptr();
        // SAFETY: TensorFlow's TP_OptimizerConfigs, valid for writes during
        // registration; null is an error.
        let configs = unsafe { p.optimizer_configs.as_mut() }
            .ok_or_else(|| Error::Internal("null optimizer configs".into()))?;
        configs.struct_size = struct_size!(TP_OptimizerConfigs, scoped_allocator_optimization);
        configs.memory_optimization = TF_TriState_TF_TriState_Off;
        // SAFETY: TensorFlow's TP_Optimizer, valid for writes during
        // registration; null is an error.
        let opt = unsafe { p.optimizer.as_mut() }
            .ok_or_else(|| Error::Internal("null TP_Optimizer".into()))?;
        opt.struct_size = struct_size!(TP_Optimizer, destroy_func);
        opt.create_func = Some(create_optimizer);
        opt.optimize_func = Some(optimize);
        opt.destroy_func = Some(destroy_optimizer);
        Ok(())
    })
}

// The callbacks below are the TP_Optimizer and TF_Buffer functions installed
// by `TF_InitGraph` and `optimize`; TensorFlow calls them with the pointers
// `tensorflow/c/experimental/grappler/grappler.h` describes, valid for the
// call. Their `SAFETY` comments refer to that contract.

unsafe extern "C" fn create_optimizer() -> *mut c_void {
    std::ptr::null_mut()
}

unsafe extern "C" fn destroy_optimizer(_: *mut c_void) {}

unsafe extern "C" fn free_buffer(data: *mut c_void, _len: usize) {
    // SAFETY: TensorFlow calls a buffer's deallocator once, with the `data`
    // `optimize` put there: a block from libc::malloc.
    unsafe { libc::free(data) }
}

/// Runs the graph passes; the output is the rewritten graph, or the input
/// unchanged when there is nothing to do or a pass fails.
unsafe extern "C" fn optimize(
    _: *mut c_void,
    graph: *const TF_Buffer,
    item: *const TF_GrapplerItem,
    out: *mut TF_Buffer,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: `graph` is TensorFlow's input buffer, valid for reads for the
        // call; null is an error.
        let g =
            unsafe { graph.as_ref() }.ok_or_else(|| Error::Internal("null graph buffer".into()))?;
        // SAFETY: `out` is TensorFlow's output buffer, valid for writes for
        // the call; null is an error.
        let o =
            unsafe { out.as_mut() }.ok_or_else(|| Error::Internal("null output buffer".into()))?;
        let input: &[u8] = if g.length == 0 || g.data.is_null() {
            &[]
        } else {
            // SAFETY: a TF_Buffer's non-null `data` holds `length` bytes,
            // alive and unchanged for the call.
            unsafe { std::slice::from_raw_parts(g.data as *const u8, g.length) }
        };
        let rewritten = std::panic::catch_unwind(|| run_passes(input, item))
            .unwrap_or_else(|_| Err("panic in the graph pass".into()));
        let bytes: &[u8] = match &rewritten {
            Ok(Some(b)) => b,
            Ok(None) => input,
            Err(e) => {
                warn_once(&format!(
                    "tf_adapter: the graph pass failed, the graph runs unchanged: {e}"
                ));
                input
            }
        };
        // SAFETY: malloc has no preconditions (the size is at least 1).
        let data = unsafe { libc::malloc(bytes.len().max(1)) };
        if data.is_null() {
            return Err(Error::ResourceExhausted(
                "no memory to copy the graph".into(),
            ));
        }
        // SAFETY: `data` is a fresh block of at least `bytes.len()` bytes, so
        // valid for the writes and disjoint from `bytes`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data as *mut u8, bytes.len()) };
        o.data = data;
        o.length = bytes.len();
        o.data_deallocator = Some(free_buffer);
        Ok(())
    })
}

fn warn_once(msg: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.iter().any(|m| m == msg) {
        eprintln!("{msg}");
        seen.push(msg.to_string());
    }
}

/// TensorFlow's registered OpDefs (`TF_GetAllOpList`), read once.
fn registry() -> &'static Result<HashMap<String, OpDef>, String> {
    static OPS: OnceLock<Result<HashMap<String, OpDef>, String>> = OnceLock::new();
    OPS.get_or_init(|| {
        let bytes = crate::ffi::all_op_list().map_err(|e| e.to_string())?;
        let list = OpList::decode(bytes.as_slice()).map_err(|e| format!("OpList: {e}"))?;
        Ok(list.op.into_iter().map(|d| (d.name.clone(), d)).collect())
    })
}

/// Runs the read-ordering pass and the precision pass with TensorFlow's
/// OpDefs. `Ok(None)`: nothing to change (the input is the output).
fn run_passes(input: &[u8], item: *const TF_GrapplerItem) -> Result<Option<Vec<u8>>, String> {
    let ops = registry().as_ref().map_err(|e| e.clone())?;
    passes(input, item, &|op| ops.get(op))
}

fn passes<'a>(
    input: &[u8],
    item: *const TF_GrapplerItem,
    opdef: &dyn Fn(&str) -> Option<&'a OpDef>,
) -> Result<Option<Vec<u8>>, String> {
    let mode = precision::mode();
    let dump = std::env::var_os("TFA_DUMP_GRAPH").filter(|d| !d.is_empty());
    let mut graph = GraphDef::decode(input).map_err(|e| format!("GraphDef: {e}"))?;
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let write = |tag: &str, g: &GraphDef, extra: &str| {
        if let Some(dir) = &dump {
            let _ = std::fs::create_dir_all(dir);
            let path = std::path::Path::new(dir)
                .join(format!("tfa_{}_{seq:04}_{tag}.txt", std::process::id()));
            if let Err(e) = std::fs::write(&path, format!("{extra}{}", dump_text(mode, g))) {
                warn_once(&format!(
                    "tf_adapter: TFA_DUMP_GRAPH: {}: {e}",
                    path.display()
                ));
            }
        }
    };
    write("before", &graph, "");
    let mut changed = ordering::order_mutable_reads(&mut graph, opdef);
    let mut extra = String::new();
    let rewrite_dtypes = mode.is_mixed() || mode == Mode::ForceFp32;
    let fuse = fusion::enabled();
    if rewrite_dtypes || fuse {
        // SAFETY: `item` is the grappler item TensorFlow passed with the graph.
        let preserve: HashSet<String> = unsafe { crate::ffi::nodes_to_preserve(item) }
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        // Readers of buffers written in place keep their dtype and stay
        // unfused: a Cast or a fused node in front of one would read the
        // buffer out of order.
        let written_readers = ordering::readers_of_written_buffers(&graph, opdef);
        if rewrite_dtypes {
            let keep: HashSet<String> = preserve.union(&written_readers).cloned().collect();
            let lists = precision::lists();
            changed += rewrite(&mut graph, mode, &lists, &keep, opdef)?;
        }
        if fuse {
            changed += loop_hoist::hoist_input_projections(&mut graph, &preserve, &written_readers);
            changed += loop_sink::sink_gradient_products(&mut graph, &preserve, &written_readers);
            changed += pad_fold::fold_pads(&mut graph, &preserve, &written_readers);
            changed += fusion::fuse(&mut graph, &preserve, &written_readers);
            changed += transpose_fold::fold_transposes(&mut graph, &preserve, &written_readers);
        }
        let mut kept: Vec<&String> = preserve.iter().collect();
        kept.sort();
        extra = format!("nodes to preserve: {kept:?}\n");
    }
    if changed > 0 {
        write("after", &graph, &extra);
    }
    Ok((changed > 0).then(|| graph.encode_to_vec()))
}

/// What the fusion pass would make of a traced graph whose nodes named in
/// `npu` run on an NPU (the coverage report): `(fused node, replaced op
/// types)` per fused group. TensorFlow's own optimizers run before the pass
/// on a real graph, so this is the traced graph's view.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub(crate) fn fusion_groups(
    graph: &[u8],
    npu: &HashSet<String>,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut g = GraphDef::decode(graph).map_err(|e| format!("GraphDef: {e}"))?;
    for n in &mut g.node {
        n.device = if npu.contains(&n.name) {
            "/job:localhost/replica:0/task:0/device:NPU:0"
        } else {
            "/job:localhost/replica:0/task:0/device:CPU:0"
        }
        .into();
    }
    if !fusion::enabled() {
        return Ok(Vec::new());
    }
    fusion::fuse(&mut g, &HashSet::new(), &HashSet::new());
    Ok(g.node
        .iter()
        .filter(|n| n.op == "_TfaFused")
        .map(|n| {
            let ops = match n.attr.get("fused_ops").and_then(|v| v.value.as_ref()) {
                Some(attr_value::Value::List(l)) => {
                    l.s.iter()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .collect()
                }
                _ => Vec::new(),
            };
            (n.name.clone(), ops)
        })
        .collect())
}

/// `TFA_DUMP_GRAPH` text: one line per node (type attributes by name, e.g.
/// `T=DT_BFLOAT16`; other attributes cut at 200 characters), for the graph
/// and for each function of its library.
fn dump_text(mode: Mode, g: &GraphDef) -> String {
    use std::fmt::Write;
    let line = |s: &mut String, n: &NodeDef| {
        let attrs: Vec<String> = n
            .attr
            .iter()
            .map(|(k, v)| match &v.value {
                Some(attr_value::Value::Type(t)) => format!(
                    "{k}={}",
                    tfa_proto::DataType::try_from(*t).map_or("?", |d| d.as_str_name())
                ),
                Some(attr_value::Value::S(b)) => format!("{k}={:?}", String::from_utf8_lossy(b)),
                Some(attr_value::Value::List(l)) if !l.s.is_empty() => {
                    let items: Vec<String> =
                        l.s.iter()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .collect();
                    format!("{k}={items:?}")
                }
                Some(v) => {
                    let mut d = format!("{v:?}");
                    if d.len() > 200 {
                        let mut cut = 200;
                        while !d.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        d.truncate(cut);
                        d.push_str("...");
                    }
                    format!("{k}={d}")
                }
                None => format!("{k}=None"),
            })
            .collect();
        let _ = writeln!(
            s,
            "node {:?} op={} device={:?} inputs={:?} {}",
            n.name,
            n.op,
            n.device,
            n.input,
            attrs.join(" ")
        );
    };
    let mut s = format!(
        "mode: {}\nversions: {:?}\nnodes: {}\n",
        mode.name(),
        g.versions,
        g.node.len()
    );
    for n in &g.node {
        line(&mut s, n);
    }
    for f in g.library.iter().flat_map(|l| l.function.iter()) {
        let name = f.signature.as_ref().map_or("?", |d| d.name.as_str());
        let _ = writeln!(s, "\nfunction {name:?}: {} nodes", f.node_def.len());
        for n in &f.node_def {
            line(&mut s, n);
        }
    }
    s
}

fn on_npu(device: &str) -> bool {
    let d = device.to_ascii_uppercase();
    d.contains("DEVICE:NPU:") || d.starts_with("/NPU:") || d.starts_with("NPU:")
}

fn attr_type(n: &NodeDef, attr: &str) -> Option<i32> {
    match n.attr.get(attr)?.value.as_ref()? {
        attr_value::Value::Type(t) => Some(*t),
        _ => None,
    }
}

/// A node's string attribute, as bytes.
fn string_attr<'a>(n: &'a NodeDef, name: &str) -> Option<&'a [u8]> {
    match n.attr.get(name)?.value.as_ref()? {
        attr_value::Value::S(s) => Some(s),
        _ => None,
    }
}

fn type_attr(t: DType) -> AttrValue {
    AttrValue {
        value: Some(attr_value::Value::Type(t.as_tf() as i32)),
    }
}

/// How many tensors an argument stands for in node `n`.
fn arg_count(n: &NodeDef, arg: &tfa_proto::op_def::ArgDef) -> Option<usize> {
    if !arg.number_attr.is_empty() {
        match n.attr.get(&arg.number_attr)?.value.as_ref()? {
            attr_value::Value::I(k) => usize::try_from(*k).ok(),
            _ => None,
        }
    } else if !arg.type_list_attr.is_empty() {
        match n.attr.get(&arg.type_list_attr)?.value.as_ref()? {
            attr_value::Value::List(l) => Some(l.r#type.len()),
            _ => None,
        }
    } else {
        Some(1)
    }
}

/// Which flat inputs/outputs of `n` the type attribute `attr` governs.
fn governed(n: &NodeDef, args: &[tfa_proto::op_def::ArgDef], attr: &str) -> Option<Vec<bool>> {
    let mut v = Vec::new();
    for a in args {
        let k = arg_count(n, a)?;
        let g = a.type_list_attr.is_empty() && a.type_attr == attr;
        v.extend(std::iter::repeat_n(g, k));
    }
    Some(v)
}

/// What the pass knows about one node.
struct Sig {
    /// The painted type attribute (`T`; `DstT` for Cast).
    attr: String,
    dtype: DType,
    ins: Vec<bool>,
    outs: Vec<bool>,
}

fn signature(n: &NodeDef, def: &OpDef) -> Option<Sig> {
    let out0 = def.output_arg.first()?;
    if out0.type_attr.is_empty() || !out0.type_list_attr.is_empty() {
        return None;
    }
    let dtype = DType::from_tf(u32::try_from(attr_type(n, &out0.type_attr)?).ok()?)?;
    if !dtype.is_float() {
        return None;
    }
    Some(Sig {
        attr: out0.type_attr.clone(),
        dtype,
        ins: governed(n, &def.input_arg, &out0.type_attr)?,
        outs: governed(n, &def.output_arg, &out0.type_attr)?,
    })
}

/// `name`, `name:k` -> (name, k); control inputs -> None.
fn parse_input(s: &str) -> Option<(&str, usize)> {
    if s.starts_with('^') {
        return None;
    }
    match s.rsplit_once(':') {
        Some((name, k)) => match k.parse() {
            Ok(k) => Some((name, k)),
            Err(_) => Some((s, 0)),
        },
        None => Some((s, 0)),
    }
}

/// Data inputs of every node: (position in its `input`, producer index,
/// producer output). Inputs naming unknown nodes are left out.
fn data_edges(nodes: &[NodeDef]) -> Vec<Vec<(usize, usize, usize)>> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    nodes
        .iter()
        .map(|n| {
            n.input
                .iter()
                .enumerate()
                .filter_map(|(pos, s)| {
                    let (name, k) = parse_input(s)?;
                    Some((pos, *index.get(name)?, k))
                })
                .collect()
        })
        .collect()
}

/// The nodes as `amp::paint` sees them: each node's governed inputs are the
/// producers of its float edges whose both ends follow the type attribute.
fn amp_nodes(
    nodes: &[NodeDef],
    sigs: &[Option<Sig>],
    edges: &[Vec<(usize, usize, usize)>],
    preserve: &HashSet<String>,
) -> Vec<amp::Node> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let sig = sigs[i].as_ref();
            let inputs = match sig {
                Some(s) if n.op != "Cast" => edges[i]
                    .iter()
                    .enumerate()
                    .filter(|&(j, &(_, p, k))| {
                        s.ins.get(j).copied().unwrap_or(false)
                            && sigs[p]
                                .as_ref()
                                .is_none_or(|ps| ps.outs.get(k).copied().unwrap_or(false))
                    })
                    .map(|(_, &(_, p, _))| p)
                    .collect(),
                _ => Vec::new(),
            };
            amp::Node {
                op: n.op.clone(),
                on_npu: on_npu(&n.device) && !preserve.contains(&n.name),
                dtype: sig.map(|s| s.dtype),
                inputs,
            }
        })
        .collect()
}

/// `base`, or `base_1`, `base_2`... whichever `names` lacks (then added).
fn unique_name(base: String, names: &mut HashSet<String>) -> String {
    let mut name = base.clone();
    let mut i = 1;
    while names.contains(&name) {
        name = format!("{base}_{i}");
        i += 1;
    }
    names.insert(name.clone());
    name
}

/// A `Cast` node `name` of `input` from `src` to `dst` on `device`.
fn cast_node(name: String, input: String, src: DType, dst: DType, device: String) -> NodeDef {
    let mut attr = BTreeMap::new();
    attr.insert("SrcT".to_string(), type_attr(src));
    attr.insert("DstT".to_string(), type_attr(dst));
    attr.insert(
        "Truncate".to_string(),
        AttrValue {
            value: Some(attr_value::Value::B(false)),
        },
    );
    NodeDef {
        name,
        op: "Cast".into(),
        input: vec![input],
        device,
        attr,
        ..Default::default()
    }
}

/// Paints `graph` under `mode` and applies it: type attributes of painted
/// nodes, a `Cast` on every float edge whose ends now disagree. Returns how
/// many nodes changed or were added. Nodes named in `preserve` (grappler's
/// feeds and fetches) keep their dtypes, as in TensorFlow's pass. `opdef`
/// looks up TensorFlow's OpDefs.
pub(crate) fn rewrite<'a>(
    graph: &mut GraphDef,
    mode: Mode,
    lists: &Lists,
    preserve: &HashSet<String>,
    opdef: &dyn Fn(&str) -> Option<&'a OpDef>,
) -> Result<usize, String> {
    let nodes = &graph.node;
    if !nodes.iter().any(|n| on_npu(&n.device)) {
        return Ok(0);
    }
    let sigs: Vec<Option<Sig>> = nodes
        .iter()
        .map(|n| opdef(&n.op).and_then(|d| signature(n, d)))
        .collect();
    let edges = data_edges(nodes);
    let amp_nodes = amp_nodes(nodes, &sigs, &edges, preserve);
    let painted: Vec<Option<DType>> = amp::paint(&amp_nodes, mode, lists)
        .into_iter()
        .zip(&sigs)
        .map(|(p, s)| p.filter(|&t| s.as_ref().is_some_and(|s| s.dtype != t)))
        .collect();
    if painted.iter().all(Option::is_none) {
        return Ok(0);
    }

    let mut names: HashSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut casts: BTreeMap<(String, u32, String), String> = BTreeMap::new();
    let mut new_nodes: Vec<NodeDef> = Vec::new();
    let mut changed = 0;
    let mut updates: Vec<(usize, usize, String)> = Vec::new();
    let mut srct: Vec<(usize, DType)> = Vec::new();
    for (c, cedges) in edges.iter().enumerate() {
        let cnode = &nodes[c];
        let csig = sigs[c].as_ref();
        for (j, &(pos, p, k)) in cedges.iter().enumerate() {
            let psig = sigs[p].as_ref();
            let p_gov = psig.is_some_and(|s| s.outs.get(k).copied().unwrap_or(false));
            let c_gov =
                cnode.op != "Cast" && csig.is_some_and(|s| s.ins.get(j).copied().unwrap_or(false));
            let src_new = painted[p].filter(|_| p_gov);
            let dst_new = painted[c].filter(|_| c_gov);
            if src_new.is_none() && dst_new.is_none() {
                continue;
            }
            let orig = if c_gov {
                csig.map(|s| s.dtype)
            } else if p_gov {
                psig.map(|s| s.dtype)
            } else {
                None
            };
            let Some(orig) = orig else { continue };
            let src = src_new.unwrap_or(orig);
            let dst = dst_new.unwrap_or(orig);
            if cnode.op == "Cast" && j == 0 && on_npu(&cnode.device) && src_new.is_some() {
                // A Cast on the NPU takes the new type directly.
                srct.push((c, src));
                continue;
            }
            if src == dst {
                continue;
            }
            let device = if on_npu(&cnode.device) {
                cnode.device.clone()
            } else {
                nodes[p].device.clone()
            };
            let input = cnode.input[pos].clone();
            let key = (input.clone(), dst.as_tf(), device.clone());
            let name = match casts.get(&key) {
                Some(n) => n.clone(),
                None => {
                    let base = format!(
                        "{}/tfa_amp_cast_{}_{}",
                        input.replace(':', "_"),
                        src.name(),
                        dst.name()
                    );
                    let name = unique_name(base, &mut names);
                    new_nodes.push(cast_node(name.clone(), input, src, dst, device));
                    casts.insert(key, name.clone());
                    name
                }
            };
            updates.push((c, pos, name));
        }
    }
    let nodes = &mut graph.node;
    for (i, t) in painted.iter().enumerate() {
        if let (Some(t), Some(s)) = (t, sigs[i].as_ref()) {
            nodes[i].attr.insert(s.attr.clone(), type_attr(*t));
            changed += 1;
        }
    }
    for (c, t) in srct {
        nodes[c].attr.insert("SrcT".into(), type_attr(t));
        changed += 1;
    }
    for (c, pos, name) in updates {
        nodes[c].input[pos] = name;
    }
    changed += new_nodes.len();
    nodes.extend(new_nodes);
    Ok(changed)
}

#[cfg(test)]
mod tests;
