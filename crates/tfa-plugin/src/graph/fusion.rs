//! Fuses the elementwise ops after a product (Conv2D, DepthwiseConv2dNative,
//! MatMul, BatchMatMulV2), and chains of elementwise ops with no product
//! (GELU, normalisation arithmetic), into one `_TfaFused` NPU node each.
//!
//! Regions grow backwards from a sink: an elementwise producer (or one
//! product, the region's head) joins when every one of its consumers is
//! already in the region, its control dependents are in the region or are
//! constants (those then wait for the member's inputs instead:
//! `redirect_controls`) and grappler does not have to preserve it. So
//! nothing outside a region reads an intermediate (a training graph keeps
//! every value its gradient needs), and no path leaves a region and comes
//! back. The fused node takes the
//! sink's name, so consumers and fetches are untouched; it carries the union
//! of the members' control inputs, the product's attributes under their
//! usual names, the program (`tfa_ops::families::fused`) and `fused_ops`,
//! the op types it replaced (shown by `TFA_DUMP_GRAPH` and the coverage
//! report).
//!
//! Only nodes on an NPU, of one float type, whose NPU kernel takes that type
//! fuse; a product that multiplies in low precision under the precision mode
//! (`allow_fp32_to_bf16`...) is left alone. `TFA_FUSION=0` turns the pass off.

use super::{attr_type, data_edges, on_npu, string_attr};
use std::collections::{BTreeMap, HashMap, HashSet};
use tfa_core::DType;
use tfa_proto::{attr_value, AttrValue, GraphDef, NodeDef};

/// Is the pass on (`TFA_FUSION` unset or not `0`)? Read at each pass.
pub(crate) fn enabled() -> bool {
    !matches!(
        std::env::var("TFA_FUSION").ok().as_deref().map(str::trim),
        Some("0" | "false" | "off" | "no")
    )
}

fn dtype_of(n: &NodeDef) -> Option<DType> {
    DType::from_tf(u32::try_from(attr_type(n, "T")?).ok()?)
}

fn npu_kernel_takes(op: &str, t: DType) -> bool {
    tfa_ops::find(op)
        .is_some_and(|(_, d)| d.kernel(tfa_ops::Backend::Host).is_some() && d.supports(t))
}

/// An elementwise node the program can hold.
fn elementwise(n: &NodeDef) -> Option<DType> {
    let t = dtype_of(n)?;
    let ok = on_npu(&n.device)
        && tfa_ops::fusable(&n.op).is_some()
        && tfa_ops::FUSED_TYPES.contains(&t)
        && npu_kernel_takes(&n.op, t)
        && (n.op != "BiasAdd" || string_attr(n, "data_format").is_none_or(|f| f == b"NHWC"));
    ok.then_some(t)
}

/// A product that can head a region.
fn product(n: &NodeDef) -> Option<DType> {
    let t = dtype_of(n)?;
    let ok = on_npu(&n.device)
        && tfa_ops::PRODUCTS.contains(&n.op.as_str())
        && tfa_ops::FUSED_TYPES.contains(&t)
        && npu_kernel_takes(&n.op, t)
        && tfa_ops::precision::plan(&n.op, t).lowp.is_none();
    ok.then_some(t)
}

/// Topological order of the nodes (NextIteration back edges ignored);
/// `None` on a cycle.
fn topo_order(nodes: &[NodeDef]) -> Option<Vec<usize>> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut indeg = vec![0usize; nodes.len()];
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for s in &n.input {
            let name = s.trim_start_matches('^').split(':').next().unwrap_or("");
            if let Some(&p) = index.get(name) {
                if nodes[p].op.ends_with("NextIteration") {
                    continue;
                }
                indeg[i] += 1;
                out[p].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..nodes.len()).filter(|&i| indeg[i] == 0).rev().collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &c in &out[i] {
            indeg[c] -= 1;
            if indeg[c] == 0 {
                ready.push(c);
            }
        }
    }
    (order.len() == nodes.len()).then_some(order)
}

struct Region {
    sink: usize,
    head: Option<usize>,
    members: Vec<usize>,
    dtype: DType,
}

fn attr_s(s: &str) -> AttrValue {
    AttrValue {
        value: Some(attr_value::Value::S(s.as_bytes().to_vec())),
    }
}

/// Fuses every region of two or more ops; returns how many nodes it wrote.
/// `preserve` names nodes grappler must keep (they can only be a region's
/// sink, whose name the fused node takes); `exclude` names nodes that never
/// fuse (readers of buffers written in place, whose ordering matters).
pub(crate) fn fuse(
    graph: &mut GraphDef,
    preserve: &HashSet<String>,
    exclude: &HashSet<String>,
) -> usize {
    if !crate::custom_ops::registered() && !cfg!(test) {
        return 0;
    }
    let nodes = &graph.node;
    let Some(order) = topo_order(nodes) else {
        return 0;
    };
    let edges = data_edges(nodes);
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut control_dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        for &(_, p, _) in &edges[i] {
            consumers[p].push(i);
        }
        for s in n.input.iter().filter(|s| s.starts_with('^')) {
            if let Some(&p) = index.get(&s[1..]) {
                control_dependents[p].push(i);
            }
        }
    }
    let mut region_of: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut regions: Vec<Region> = Vec::new();
    for &n in order.iter().rev() {
        let r = match region_of[n] {
            Some(r) => r,
            None => {
                let Some(t) = elementwise(&nodes[n]).filter(|_| !exclude.contains(&nodes[n].name))
                else {
                    continue;
                };
                regions.push(Region {
                    sink: n,
                    head: None,
                    members: vec![n],
                    dtype: t,
                });
                region_of[n] = Some(regions.len() - 1);
                regions.len() - 1
            }
        };
        if regions[r].head == Some(n) {
            continue; // a product's inputs stay outside
        }
        for &(_, p, k) in &edges[n] {
            let name = &nodes[p].name;
            if region_of[p].is_some()
                || k != 0
                || !control_dependents[p]
                    .iter()
                    .all(|&d| region_of[d] == Some(r) || nodes[d].op == "Const")
                || preserve.contains(name)
                || exclude.contains(name)
            {
                continue;
            }
            if nodes[p].device != nodes[n].device
                || !consumers[p].iter().all(|&c| region_of[c] == Some(r))
            {
                continue;
            }
            let t = regions[r].dtype;
            if elementwise(&nodes[p]) == Some(t) {
                region_of[p] = Some(r);
                regions[r].members.push(p);
            } else if regions[r].head.is_none() && product(&nodes[p]) == Some(t) {
                region_of[p] = Some(r);
                regions[r].members.push(p);
                regions[r].head = Some(p);
            }
        }
    }
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    let mut replaced: HashMap<usize, NodeDef> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    for reg in regions.iter_mut().filter(|r| r.members.len() >= 2) {
        reg.members.sort_by_key(|m| position[m]);
        let node = fused_node(nodes, &edges, reg, &region_of);
        removed.extend(reg.members.iter().copied().filter(|&m| m != reg.sink));
        replaced.insert(reg.sink, node);
    }
    if replaced.is_empty() {
        return 0;
    }
    // A member that goes may have control dependents: only constants (see
    // `redirect_controls`).
    let mut redirects: HashMap<usize, Vec<(String, Vec<String>)>> = HashMap::new();
    for &m in &removed {
        if control_dependents[m].is_empty() {
            continue;
        }
        let ext = external_ancestors(nodes, &edges, &region_of, m);
        for &d in control_dependents[m]
            .iter()
            .filter(|&&d| region_of[d] != region_of[m])
        {
            let entry = (format!("^{}", nodes[m].name), ext.clone());
            redirects.entry(d).or_default().push(entry);
        }
    }
    let written = replaced.len();
    let old = std::mem::take(&mut graph.node);
    graph.node = old
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(i, n)| {
            let n = replaced.remove(&i).unwrap_or(n);
            match redirects.get(&i) {
                Some(r) => redirect_controls(n, r),
                None => n,
            }
        })
        .collect();
    written
}

/// The inputs from outside its region that member `m` depends on (data and
/// control, as `^name`), following its data inputs through the region.
fn external_ancestors(
    nodes: &[NodeDef],
    edges: &[Vec<(usize, usize, usize)>],
    region_of: &[Option<usize>],
    m: usize,
) -> Vec<String> {
    let me = region_of[m];
    let (mut out, mut seen, mut stack) = (Vec::new(), HashSet::new(), vec![m]);
    let add = |name: &str, out: &mut Vec<String>| {
        let c = format!("^{}", name.split(':').next().unwrap_or(name));
        if !out.contains(&c) {
            out.push(c);
        }
    };
    while let Some(k) = stack.pop() {
        if !seen.insert(k) {
            continue;
        }
        for &(pos, p, _) in &edges[k] {
            if region_of[p] == me {
                stack.push(p);
            } else {
                add(&nodes[k].input[pos], &mut out);
            }
        }
        for c in nodes[k].input.iter().filter_map(|s| s.strip_prefix('^')) {
            if !in_region(nodes, region_of, me, c) {
                add(c, &mut out);
            }
        }
    }
    out
}

/// Whether the node named `name` belongs to region `me`.
fn in_region(
    nodes: &[NodeDef],
    region_of: &[Option<usize>],
    me: Option<usize>,
    name: &str,
) -> bool {
    nodes
        .iter()
        .position(|n| n.name == name)
        .is_some_and(|p| region_of[p] == me)
}

/// Constant `n` with its control inputs on fused-away members (`^member`,
/// with that member's external ancestors) replaced by those ancestors.
/// TensorFlow's gradient of SquaredDifference makes such a constant
/// (`scalar_mul(2.0, grad)` under a control dependency on `grad`): the member
/// is pure, so "after it ran" and "after its inputs were ready" order the
/// constant the same way, deadness included (a node is dead when an input
/// is). No cycle: the ancestors came before the member, which came before
/// the constant.
fn redirect_controls(mut n: NodeDef, r: &[(String, Vec<String>)]) -> NodeDef {
    n.input.retain(|s| !r.iter().any(|(member, _)| member == s));
    for s in r.iter().flat_map(|(_, ext)| ext) {
        if !n.input.contains(s) {
            n.input.push(s.clone());
        }
    }
    n
}

/// The `_TfaFused` node for region `reg` (members in topological order).
fn fused_node(
    nodes: &[NodeDef],
    edges: &[Vec<(usize, usize, usize)>],
    reg: &Region,
    region_of: &[Option<usize>],
) -> NodeDef {
    let sink = &nodes[reg.sink];
    let me = region_of[reg.sink];
    let mut inputs: Vec<String> = Vec::new();
    let mut external: HashMap<String, usize> = HashMap::new();
    if let Some(h) = reg.head {
        for &(pos, _, _) in &edges[h] {
            inputs.push(nodes[h].input[pos].clone());
        }
    }
    let n_product = inputs.len();
    let mut reg_of: HashMap<usize, usize> = HashMap::new();
    let mut program: Vec<String> = Vec::new();
    for &m in reg.members.iter().filter(|&&m| Some(m) != reg.head) {
        let args: Vec<String> = edges[m]
            .iter()
            .map(|&(pos, p, _)| {
                if Some(p) == reg.head {
                    "h".to_string()
                } else if region_of[p] == me {
                    format!("r{}", reg_of[&p])
                } else {
                    let s = nodes[m].input[pos].clone();
                    let k = *external.entry(s.clone()).or_insert_with(|| {
                        inputs.push(s);
                        inputs.len() - 1 - n_product
                    });
                    format!("i{k}")
                }
            })
            .collect();
        reg_of.insert(m, program.len());
        program.push(format!("{}({})", nodes[m].op, args.join(",")));
    }
    let n_data = inputs.len();
    let mut controls: Vec<String> = Vec::new();
    for &m in &reg.members {
        for s in nodes[m].input.iter().filter(|s| s.starts_with('^')) {
            if !in_region(nodes, region_of, me, &s[1..]) && !controls.contains(s) {
                controls.push(s.clone());
            }
        }
    }
    inputs.extend(controls);
    let mut attr: BTreeMap<String, AttrValue> = BTreeMap::new();
    let ty = |t: DType| AttrValue {
        value: Some(attr_value::Value::Type(t.as_tf() as i32)),
    };
    attr.insert("T".into(), ty(reg.dtype));
    attr.insert(
        "N".into(),
        AttrValue {
            value: Some(attr_value::Value::I(n_data as i64)),
        },
    );
    attr.insert("program".into(), attr_s(&program.join(";")));
    attr.insert(
        "product".into(),
        attr_s(reg.head.map_or("", |h| nodes[h].op.as_str())),
    );
    let empty_ints = AttrValue {
        value: Some(attr_value::Value::List(Default::default())),
    };
    let falsy = AttrValue {
        value: Some(attr_value::Value::B(false)),
    };
    let defaults: [(&str, AttrValue); 9] = [
        ("strides", empty_ints.clone()),
        ("padding", attr_s("")),
        ("explicit_paddings", empty_ints.clone()),
        ("data_format", attr_s("NHWC")),
        ("dilations", empty_ints),
        ("transpose_a", falsy.clone()),
        ("transpose_b", falsy.clone()),
        ("adj_x", falsy.clone()),
        ("adj_y", falsy),
    ];
    for (name, default) in defaults {
        let v = reg
            .head
            .and_then(|h| nodes[h].attr.get(name).cloned())
            .unwrap_or(default);
        attr.insert(name.into(), v);
    }
    attr.insert(
        "fused_ops".into(),
        AttrValue {
            value: Some(attr_value::Value::List(attr_value::ListValue {
                s: reg
                    .members
                    .iter()
                    .map(|&m| nodes[m].op.as_bytes().to_vec())
                    .collect(),
                ..Default::default()
            })),
        },
    );
    NodeDef {
        name: sink.name.clone(),
        op: "_TfaFused".into(),
        input: inputs,
        device: sink.device.clone(),
        attr: attr.into_iter().collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NPU: &str = "/job:localhost/replica:0/task:0/device:NPU:0";
    const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";

    fn node(name: &str, op: &str, inputs: &[&str], device: &str, t: DType) -> NodeDef {
        NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            device: device.into(),
            attr: [(
                "T".to_string(),
                AttrValue {
                    value: Some(attr_value::Value::Type(t.as_tf() as i32)),
                },
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        }
    }

    fn f32n(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
        node(name, op, inputs, NPU, DType::F32)
    }

    fn get<'g>(g: &'g GraphDef, name: &str) -> &'g NodeDef {
        g.node.iter().find(|n| n.name == name).unwrap()
    }

    fn s_attr(n: &NodeDef, a: &str) -> String {
        match n.attr[a].value.as_ref().unwrap() {
            attr_value::Value::S(s) => String::from_utf8_lossy(s).into_owned(),
            v => panic!("{v:?}"),
        }
    }

    /// conv -> bias -> mul(scale) -> add(residual) -> relu, feeding a retval.
    fn block() -> GraphDef {
        GraphDef {
            node: vec![
                f32n("x", "_Arg", &[]),
                f32n("w", "_Arg", &[]),
                f32n("b", "_Arg", &[]),
                f32n("s", "_Arg", &[]),
                f32n("conv", "Conv2D", &["x", "w"]),
                f32n("bias", "BiasAdd", &["conv", "b"]),
                f32n("mul", "Mul", &["bias", "s"]),
                f32n("add", "AddV2", &["mul", "x"]),
                f32n("relu", "Relu", &["add", "^b"]),
                f32n("out", "_Retval", &["relu"]),
            ],
            ..Default::default()
        }
    }

    fn run(g: &mut GraphDef) -> usize {
        fuse(g, &HashSet::new(), &HashSet::new())
    }

    #[test]
    fn a_product_and_its_epilogue_become_one_node() {
        let mut g = block();
        assert_eq!(run(&mut g), 1);
        let f = get(&g, "relu");
        assert_eq!(f.op, "_TfaFused");
        assert_eq!(s_attr(f, "product"), "Conv2D");
        assert_eq!(
            s_attr(f, "program"),
            "BiasAdd(h,i0);Mul(r0,i1);AddV2(r1,i2);Relu(r2)"
        );
        assert_eq!(f.input, ["x", "w", "b", "s", "x", "^b"]);
        assert!(g
            .node
            .iter()
            .all(|n| !["conv", "bias", "mul", "add"].contains(&n.name.as_str())));
        assert_eq!(get(&g, "out").input, ["relu"]);
        // Idempotent: the fused node is not fused again.
        assert_eq!(run(&mut g), 0);
    }

    #[test]
    fn values_read_outside_stay_out_of_the_region() {
        // The gradient reads `bias`: conv -> bias fuse on their own (the fused
        // node keeps bias's name), mul -> add -> relu on theirs.
        let mut g = block();
        g.node.push(f32n("grad", "ReluGrad", &["x", "bias"]));
        assert_eq!(run(&mut g), 2);
        assert!(g.node.iter().all(|n| n.name != "conv"));
        assert_eq!(s_attr(get(&g, "bias"), "program"), "BiasAdd(h,i0)");
        assert_eq!(get(&g, "grad").input, ["x", "bias"]);
        assert_eq!(
            s_attr(get(&g, "relu"), "program"),
            "Mul(i0,i1);AddV2(r0,i2);Relu(r1)"
        );
        assert_eq!(s_attr(get(&g, "relu"), "product"), "");
    }

    #[test]
    fn control_dependents_preserved_nodes_devices_and_dtypes_split_regions() {
        for (i, change) in ["control", "preserve", "device", "dtype", "exclude"]
            .iter()
            .enumerate()
        {
            let mut g = block();
            let mut preserve = HashSet::new();
            let mut exclude = HashSet::new();
            match *change {
                "control" => g.node.push(f32n("after", "NoOp", &["^add"])),
                "preserve" => {
                    preserve.insert("add".to_string());
                }
                "device" => g.node[7].device = CPU.into(),
                "dtype" => g.node[7] = node("add", "AddV2", &["mul", "x"], NPU, DType::F64),
                _ => {
                    exclude.insert("add".to_string());
                }
            }
            fuse(&mut g, &preserve, &exclude);
            // A node with control dependents, or one grappler preserves, can
            // only end a region (the fused node takes its name); the others
            // cannot join one.
            let (add, sink) = match *change {
                "control" | "preserve" => ("_TfaFused", "add"),
                _ => ("AddV2", "mul"),
            };
            assert_eq!(get(&g, "add").op, add, "case {i}: {change}");
            assert_eq!(get(&g, sink).op, "_TfaFused", "case {i}: {change}");
            assert_eq!(
                s_attr(get(&g, sink), "product"),
                "Conv2D",
                "case {i}: {change}"
            );
            assert_eq!(get(&g, "relu").op, "Relu", "case {i}: {change}");
        }
    }

    #[test]
    fn constants_ordered_after_a_member_are_ordered_after_its_inputs() {
        // TensorFlow's SquaredDifference gradient: a constant under a control
        // dependency on `mul`, read by the region's sink. `mul` fuses; the
        // constant waits for what `mul` read instead (no dangling name, no
        // cycle). A dependent that is not a constant keeps `mul` out.
        for dependent in ["Const", "NoOp"] {
            let mut g = block();
            g.node.push(f32n("two", dependent, &["^mul"]));
            g.node[7] = f32n("add", "AddV2", &["mul", "two"]);
            run(&mut g);
            if dependent == "Const" {
                assert!(g.node.iter().all(|n| n.name != "mul" && n.name != "add"));
                assert_eq!(get(&g, "relu").op, "_TfaFused");
                assert_eq!(get(&g, "two").input, ["^s", "^b", "^x", "^w"]);
                assert!(topo_order(&g.node).is_some());
            } else {
                assert_eq!(get(&g, "mul").op, "_TfaFused");
                assert_eq!(get(&g, "two").input, ["^mul"]);
            }
        }
    }

    #[test]
    fn a_single_op_is_left_alone_and_cycles_are_tolerated() {
        let mut g = GraphDef {
            node: vec![
                f32n("x", "_Arg", &[]),
                f32n("r", "Relu", &["x"]),
                f32n("out", "_Retval", &["r"]),
            ],
            ..Default::default()
        };
        assert_eq!(run(&mut g), 0);
        // A loop through NextIteration still sorts; a real cycle is skipped.
        g.node.push(f32n("n", "NextIteration", &["r"]));
        g.node[1].input.push("n".into());
        assert!(topo_order(&g.node).is_some());
        g.node[1].input.push("out".into());
        assert!(topo_order(&g.node).is_none());
    }
}
