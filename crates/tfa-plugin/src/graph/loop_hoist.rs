//! Hoists a recurrent layer's input projection out of its loop.
//!
//! Keras's LSTM, GRU and SimpleRNN (and `tf.TensorArray` loops written the
//! same way) multiply each step's input by the kernel inside the while loop:
//! `MatMul(TensorListGetItem(list, t), ReadVariableOp(W))`, one small product
//! per step. By the time the pass sees the graph the `While` is lowered to a
//! frame (`Enter`/`Merge`/`Switch`/`NextIteration`/`Exit`). When the list is
//! the same every iteration (a loop variable the body passes back unchanged,
//! made by `TensorListFromTensor(x)` before the loop) and nothing in the
//! frame writes the variable, every step's product is a row block of one
//! product computed before the loop: `BatchMatMulV2(x, W)` (one tall GEMM,
//! `[steps * batch, in] x [in, out]`), unstacked into a list that enters the
//! frame as a constant. The step's `MatMul` node becomes
//! `TensorListGetItem(that list, t)`, keeping its name, so its readers and
//! the gradient are untouched.
//!
//! Ordering: the hoisted `ReadVariableOp` takes the control inputs of the
//! loop's `Enter`s (the `While`'s own control inputs, so writes ordered
//! before the loop stay before the read), and every reader of the frame's
//! `Exit`s gets a control input from it (so writes ordered after the loop stay
//! after the read, even when the loop runs no step). Part of the fusion pass:
//! `TFA_FUSION=0` turns it off. Products the precision mode computes in
//! low precision are left alone.

use super::frames::{attr, bool_attr, controls, dtype, node, scalar_minus_one, tensor_ref, View};
use super::{on_npu, parse_input, string_attr};
use std::collections::{BTreeMap, HashMap, HashSet};
use tfa_core::DType;
use tfa_proto::{attr_value, GraphDef, NodeDef};

/// Ops that read a resource variable without writing it.
const VARIABLE_READS: &[&str] = &[
    "ReadVariableOp",
    "ResourceGather",
    "ResourceGatherNd",
    "VariableShape",
];
/// Ops that pass a value on unchanged inside (or into, or around) a frame.
const FORWARDING: &[&str] = &["Identity", "Switch", "Merge", "NextIteration", "Enter"];

/// Does nothing in the loop frame `frame` write the resource `handle`
/// (a tensor outside the frame)? Every path from an `Enter` of it into
/// the frame must end in a read or an `Exit`.
fn read_only_in(v: &View, handle: &str, frame: &[u8]) -> bool {
    let mut stack: Vec<usize> = v
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            n.op == "Enter"
                && string_attr(n, "frame_name") == Some(frame)
                && n.input.first().and_then(|s| tensor_ref(s)).as_deref() == Some(handle)
        })
        .map(|(i, _)| i)
        .collect();
    let mut seen: HashSet<usize> = stack.iter().copied().collect();
    while let Some(i) = stack.pop() {
        for &(r, _) in &v.readers[i] {
            let op = v.nodes[r].op.as_str();
            if FORWARDING.contains(&op) {
                if seen.insert(r) {
                    stack.push(r);
                }
            } else if op != "Exit" && !VARIABLE_READS.contains(&op) {
                return false;
            }
        }
    }
    true
}

/// One input projection to hoist, found in the graph.
struct Site {
    matmul: usize,
    /// The step's `TensorListGetItem` and the list's `TensorListFromTensor`.
    get_item: usize,
    /// The `Enter`s of the list and of the variable handle.
    list_enter: usize,
    handle_enter: usize,
    read: usize,
    dtype: DType,
    /// The stacked steps `x` (the list's source) and the variable handle.
    steps: String,
    handle: String,
    /// The handle as the loop's `Enter` names it.
    handle_input: String,
    transpose_b: bool,
}

fn find_site(v: &View, m: usize, exclude: &HashSet<String>) -> Option<Site> {
    let mm = &v.nodes[m];
    let t = dtype(mm, "T")?;
    let bmm_takes = tfa_ops::find("BatchMatMulV2")
        .is_some_and(|(_, d)| d.kernel(tfa_ops::Backend::Host).is_some() && d.supports(t));
    // A product the precision mode computes in low precision stays: the
    // step's MatMul and the hoisted product must round alike.
    let lowp = tfa_ops::precision::plan("MatMul", t).lowp.is_some()
        || tfa_ops::precision::plan("BatchMatMulV2", t).lowp.is_some();
    if mm.op != "MatMul"
        || !on_npu(&mm.device)
        || !t.is_float()
        || !bmm_takes
        || lowp
        || bool_attr(mm, "transpose_a") != Some(false)
        || exclude.contains(&mm.name)
    {
        return None;
    }
    let (g, 0) = v.producer(mm.input.first()?)? else {
        return None;
    };
    let (r, 0) = v.producer(mm.input.get(1)?)? else {
        return None;
    };
    let (get, read) = (&v.nodes[g], &v.nodes[r]);
    if get.op != "TensorListGetItem"
        || dtype(get, "element_dtype") != Some(t)
        || read.op != "ReadVariableOp"
        || dtype(read, "dtype") != Some(t)
        || exclude.contains(&read.name)
        || exclude.contains(&get.name)
    {
        return None;
    }
    let list_enter = v.invariant_enter(get.input.first()?)?;
    let handle_enter = v.invariant_enter(read.input.first()?)?;
    let frame = string_attr(&v.nodes[list_enter], "frame_name")?;
    if string_attr(&v.nodes[handle_enter], "frame_name") != Some(frame) {
        return None;
    }
    let (l, 0) = v.producer(v.nodes[list_enter].input.first()?)? else {
        return None;
    };
    let from = &v.nodes[l];
    // Elements of rank 2 (a 2-element shape, here or where the list was
    // made): otherwise the step's MatMul would have failed, not broadcast.
    let rank2 = v.const_len(get.input.get(2)?) == Some(2)
        || from.input.get(1).and_then(|s| v.const_len(s)) == Some(2);
    if from.op != "TensorListFromTensor" || dtype(from, "element_dtype") != Some(t) || !rank2 {
        return None;
    }
    let handle = tensor_ref(v.nodes[handle_enter].input.first()?)?;
    if !read_only_in(v, &handle, frame) {
        return None;
    }
    Some(Site {
        matmul: m,
        get_item: g,
        list_enter,
        handle_enter,
        read: r,
        dtype: t,
        steps: from.input.first()?.clone(),
        handle,
        handle_input: v.nodes[handle_enter].input.first()?.clone(),
        transpose_b: bool_attr(mm, "transpose_b").unwrap_or(false),
    })
}

/// The nodes before the loop for site `s`: the weight read once, one
/// product for all steps, its rows as a list entering the loop as a
/// constant. Returns (that `Enter`, the read).
fn hoist(
    nodes: &[NodeDef],
    s: &Site,
    fresh: &mut impl FnMut(&str) -> String,
    added: &mut Vec<NodeDef>,
) -> (String, String) {
    let (mm, get, enter) = (&nodes[s.matmul], &nodes[s.get_item], &nodes[s.list_enter]);
    let ty = |t: DType| attr_value::Value::Type(t.as_tf() as i32);
    let [read, product, shape, list, enter_name] = [
        "ReadVariableOp",
        "BatchMatMulV2",
        "element_shape",
        "TensorListFromTensor",
        "Enter",
    ]
    .map(fresh);
    let mut read_inputs = vec![s.handle_input.clone()];
    for c in controls(enter).chain(controls(&nodes[s.handle_enter])) {
        if !read_inputs.contains(c) {
            read_inputs.push(c.clone());
        }
    }
    let read_device = &nodes[s.read].device;
    added.push(node(
        &read,
        "ReadVariableOp",
        read_inputs,
        read_device,
        &[("dtype", ty(s.dtype))],
    ));
    added.push(node(
        &product,
        "BatchMatMulV2",
        vec![s.steps.clone(), read.clone()],
        &mm.device,
        &[
            ("T", ty(s.dtype)),
            ("adj_x", attr_value::Value::B(false)),
            ("adj_y", attr_value::Value::B(s.transpose_b)),
        ],
    ));
    // The constant takes a control input from the steps' node so it lives
    // in the same frame when the loop is itself nested.
    let steps_node = parse_input(&s.steps).map(|(n, _)| format!("^{n}"));
    added.push(scalar_minus_one(
        shape.clone(),
        &get.device,
        steps_node.into_iter().collect(),
    ));
    added.push(node(
        &list,
        "TensorListFromTensor",
        vec![product, shape],
        &get.device,
        &[
            ("element_dtype", ty(s.dtype)),
            ("shape_type", ty(DType::I32)),
        ],
    ));
    let mut enter_attr = enter.attr.clone();
    enter_attr.insert("is_constant".into(), attr(attr_value::Value::B(true)));
    added.push(NodeDef {
        name: enter_name.clone(),
        op: "Enter".into(),
        input: vec![list],
        device: enter.device.clone(),
        attr: enter_attr,
        ..Default::default()
    });
    (enter_name, read)
}

/// Hoists every eligible input projection; returns how many nodes changed
/// or were added.
pub(crate) fn hoist_input_projections(
    graph: &mut GraphDef,
    preserve: &HashSet<String>,
    exclude: &HashSet<String>,
) -> usize {
    let sites: Vec<Site> = {
        let v = View::new(&graph.node);
        (0..graph.node.len())
            .filter_map(|m| find_site(&v, m, exclude))
            .collect()
    };
    if sites.is_empty() {
        return 0;
    }
    let mut names: HashSet<String> = graph.node.iter().map(|n| n.name.clone()).collect();
    let mut added: Vec<NodeDef> = Vec::new();
    // Projections of one list by one weight share the hoisted list.
    let mut hoisted: HashMap<(String, String, bool, usize), String> = HashMap::new();
    // Reads to order before whatever follows each frame: (frame, read).
    let mut after_frame: Vec<(Vec<u8>, String)> = Vec::new();
    let mut changed = 0;
    for s in &sites {
        let nodes = &graph.node;
        let (mm, get, enter) = (&nodes[s.matmul], &nodes[s.get_item], &nodes[s.list_enter]);
        let frame = string_attr(enter, "frame_name")
            .unwrap_or_default()
            .to_vec();
        let key = (
            s.steps.clone(),
            s.handle.clone(),
            s.transpose_b,
            s.list_enter,
        );
        let base = format!("{}/tfa_hoisted", mm.name);
        let mut fresh = |suffix: &str| super::unique_name(format!("{base}/{suffix}"), &mut names);
        let list_in_frame = match hoisted.get(&key) {
            Some(name) => name.clone(),
            None => {
                let (enter_name, read) = hoist(nodes, s, &mut fresh, &mut added);
                after_frame.push((frame, read));
                changed += 5;
                hoisted.insert(key, enter_name.clone());
                enter_name
            }
        };
        // The step's element shape, unknown: a constant in the frame (it
        // takes the control inputs of the step's own index or shape input).
        let frame_controls: Vec<String> = get
            .input
            .get(2)
            .and_then(|s| parse_input(s))
            .map(|(n, _)| format!("^{n}"))
            .into_iter()
            .collect();
        let shape = fresh("step_element_shape");
        added.push(scalar_minus_one(shape.clone(), &get.device, frame_controls));
        let mut inputs = vec![list_in_frame, get.input[1].clone(), shape];
        inputs.extend(controls(mm).cloned());
        let mut attrs = BTreeMap::from([(
            "element_dtype".to_string(),
            attr(attr_value::Value::Type(s.dtype.as_tf() as i32)),
        )]);
        attrs.insert(
            "_tfa_hoisted".into(),
            attr(attr_value::Value::S(b"MatMul".to_vec())),
        );
        let device = get.device.clone();
        let m = &mut graph.node[s.matmul];
        m.op = "TensorListGetItem".into();
        m.input = inputs;
        m.device = device;
        m.attr = attrs;
        changed += 2;
    }
    order_after_frames(graph, &after_frame);
    graph.node.extend(added);
    changed + drop_unread(graph, &sites, preserve)
}

/// Gives every reader of a frame's `Exit`s a control input from the reads
/// hoisted out of that frame.
fn order_after_frames(graph: &mut GraphDef, after_frame: &[(Vec<u8>, String)]) {
    let exits: HashMap<String, Vec<u8>> = {
        let v = View::new(&graph.node);
        graph
            .node
            .iter()
            .filter(|n| n.op == "Exit")
            .filter_map(|n| Some((n.name.clone(), v.frame_left_by(n)?)))
            .collect()
    };
    for n in &mut graph.node {
        let frames: HashSet<&Vec<u8>> = n
            .input
            .iter()
            .filter_map(|s| exits.get(s.trim_start_matches('^').split(':').next()?))
            .collect();
        for (frame, read) in after_frame {
            let ctl = format!("^{read}");
            if frames.contains(frame) && !n.input.contains(&ctl) {
                n.input.push(ctl);
            }
        }
    }
}

/// Removes the steps' `TensorListGetItem`s nothing reads any more.
fn drop_unread(graph: &mut GraphDef, sites: &[Site], preserve: &HashSet<String>) -> usize {
    let candidates: HashSet<String> = sites
        .iter()
        .map(|s| graph.node[s.get_item].name.clone())
        .filter(|n| !preserve.contains(n))
        .collect();
    let read: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .map(|s| s.trim_start_matches('^').split(':').next().unwrap_or(""))
        .collect();
    let gone: HashSet<String> = candidates
        .into_iter()
        .filter(|n| !read.contains(n.as_str()))
        .collect();
    graph.node.retain(|n| !gone.contains(&n.name));
    gone.len()
}

#[cfg(test)]
mod tests;
