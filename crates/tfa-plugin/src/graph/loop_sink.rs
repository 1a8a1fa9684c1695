//! Sinks the weight-gradient products of a recurrent layer's backward loop.
//!
//! The gradient of `x_t @ W` inside a loop sums one product per step into a
//! loop variable: `acc = AddN(acc, MatMul(x_t, dz_t, transpose_a=True))`, a
//! `[in, out]` result from only `batch` rows per step (32 rows for the suite's
//! LSTM: a poorly shaped GEMM that also reads and writes the whole
//! accumulator every step). The sum over steps is one product over all of
//! them: `X^T @ DZ` with `X = [x_0; x_1; ...]`, `DZ = [dz_0; dz_1; ...]`
//! (`steps * batch` rows). So the loop instead appends `x_t` and `dz_t` to
//! two lists (new loop variables, `TensorListPushBack`), the accumulator is
//! passed on unchanged, and after the loop one `MatMul` of the lists'
//! concatenations is added to the accumulator's exit value. Only where the
//! running sum is read by nothing else in the loop, the product by nothing
//! but the sum, and both are plain float `MatMul`/`AddN` (or `AddV2`) on an
//! NPU. The sum's order changes (one GEMM instead of step by step), as
//! TensorFlow's own CPU kernels' would with another blocking. Part of the
//! fusion pass: `TFA_FUSION=0` turns it off.

use super::frames::{bool_attr, dtype, int_const, node, tensor_ref, View};
use super::{on_npu, parse_input, string_attr};
use std::collections::{HashMap, HashSet};
use tfa_core::DType;
use tfa_proto::{attr_value, DataType, GraphDef};

/// One accumulated product to sink.
struct Site {
    sum: usize,
    product: usize,
    /// The accumulator's `Switch` (its loop value is output 1), `Enter`
    /// and `Exit`.
    switch: usize,
    enter: usize,
    exit: usize,
    /// The product's operands, `a` read transposed.
    a: String,
    b: String,
    dtype: DType,
}

fn find_site(
    v: &View,
    n: usize,
    exclude: &HashSet<String>,
    control_read: &HashSet<&str>,
) -> Option<Site> {
    let sum = &v.nodes[n];
    let t = dtype(sum, "T")?;
    let data: Vec<&String> = sum.input.iter().filter(|s| !s.starts_with('^')).collect();
    let two = match sum.op.as_str() {
        "AddN" | "AddV2" => data.len() == 2,
        _ => false,
    };
    if !two || !on_npu(&sum.device) || !t.is_float() || exclude.contains(&sum.name) {
        return None;
    }
    let lowp = tfa_ops::precision::plan("MatMul", t).lowp.is_some();
    // Nothing else may read the running sum, in the loop or by control.
    if lowp || control_read.contains(sum.name.as_str()) {
        return None;
    }
    for (acc, other) in [(0, 1), (1, 0)] {
        let Some((s, 1)) = v.producer(data[acc]) else {
            continue;
        };
        let Some((p, 0)) = v.producer(data[other]) else {
            continue;
        };
        let switch = &v.nodes[s];
        let product = &v.nodes[p];
        let is_product = product.op == "MatMul"
            && on_npu(&product.device)
            && dtype(product, "T") == Some(t)
            && bool_attr(product, "transpose_a") == Some(true)
            && bool_attr(product, "transpose_b") == Some(false)
            && !exclude.contains(&product.name)
            && !control_read.contains(product.name.as_str())
            && v.readers[p] == [(n, 0)];
        if switch.op != "Switch" || !is_product {
            continue;
        }
        let (m, 0) = v.producer(switch.input.first()?)? else {
            continue;
        };
        let merge = &v.nodes[m];
        let inputs: Vec<(usize, usize)> = merge
            .input
            .iter()
            .filter(|s| !s.starts_with('^'))
            .filter_map(|s| v.producer(s))
            .collect();
        if merge.op != "Merge" || inputs.len() != 2 {
            continue;
        }
        let enter = inputs.iter().find(|&&(q, _)| v.nodes[q].op == "Enter")?.0;
        let next = inputs
            .iter()
            .find(|&&(q, _)| v.nodes[q].op == "NextIteration")?
            .0;
        // The loop variable is exactly the running sum: Switch output 1
        // read only by the sum, the sum only by the NextIteration, output 0
        // only by one Exit.
        let fed_back = v.producer(v.nodes[next].input.first()?)? == (n, 0);
        let exits: Vec<usize> = v.readers[s]
            .iter()
            .filter(|&&(_, k)| k == 0)
            .map(|&(r, _)| r)
            .collect();
        let loop_reads: Vec<&(usize, usize)> =
            v.readers[s].iter().filter(|&&(_, k)| k == 1).collect();
        if !fed_back
            || v.readers[n] != [(next, 0)]
            || loop_reads != [&(n, 1)]
            || exits.len() != 1
            || v.nodes[exits[0]].op != "Exit"
            || bool_attr(&v.nodes[enter], "is_constant") != Some(false)
            || control_read.contains(switch.name.as_str())
        {
            continue;
        }
        return Some(Site {
            sum: n,
            product: p,
            switch: s,
            enter,
            exit: exits[0],
            a: product.input.first()?.clone(),
            b: product.input.get(1)?.clone(),
            dtype: t,
        });
    }
    None
}

/// `device` with its NPU replaced by the CPU of the same task.
fn host_of(device: &str) -> Option<String> {
    let at = device.to_ascii_uppercase().find("DEVICE:NPU:")?;
    Some(format!("{}device:CPU:0", &device[..at]))
}

/// Sinks every eligible accumulated product; returns how many nodes changed
/// or were added.
pub(crate) fn sink_gradient_products(
    graph: &mut GraphDef,
    preserve: &HashSet<String>,
    exclude: &HashSet<String>,
) -> usize {
    let sites: Vec<Site> = {
        let control_read: HashSet<&str> = graph
            .node
            .iter()
            .flat_map(|n| n.input.iter())
            .filter_map(|s| s.strip_prefix('^'))
            .collect();
        let v = View::new(&graph.node);
        (0..graph.node.len())
            .filter_map(|n| find_site(&v, n, exclude, &control_read))
            .filter(|s| {
                // Fetched or preserved nodes keep their values.
                [s.sum, s.product, s.exit]
                    .iter()
                    .all(|&i| !preserve.contains(&graph.node[i].name))
            })
            .collect()
    };
    if sites.is_empty() {
        return 0;
    }
    let mut names: HashSet<String> = graph.node.iter().map(|n| n.name.clone()).collect();
    let mut added = Vec::new();
    // One list per collected tensor and frame: (frame, tensor) -> exit node.
    let mut lists: HashMap<(Vec<u8>, String), String> = HashMap::new();
    let mut rewire: Vec<(String, String)> = Vec::new();
    let mut removed = HashSet::new();
    for s in &sites {
        let nodes = &graph.node;
        let (sum, enter, switch) = (&nodes[s.sum], &nodes[s.enter], &nodes[s.switch]);
        let Some(host) = host_of(&sum.device) else {
            continue;
        };
        let frame = string_attr(enter, "frame_name")
            .unwrap_or_default()
            .to_vec();
        let dev = sum.device.clone();
        let base = format!("{}/tfa_sunk", sum.name);
        let mut fresh = |suffix: &str| super::unique_name(format!("{base}/{suffix}"), &mut names);
        let ty = |t: DType| attr_value::Value::Type(t.as_tf() as i32);
        let variant = attr_value::Value::Type(DataType::DtVariant as i32);
        let init = enter.input.first().cloned().unwrap_or_default();
        // Constants before the loop live in the accumulator's initial
        // value's frame.
        let outside: Vec<String> = parse_input(&init)
            .map(|(n, _)| format!("^{n}"))
            .into_iter()
            .collect();
        let enter_controls: Vec<String> = enter
            .input
            .iter()
            .filter(|c| c.starts_with('^'))
            .cloned()
            .collect();
        // The accumulator is [a cols, b cols]: the lists' element shapes
        // are [-1, that dim], known even when the loop runs no step.
        let shape = fresh("acc_shape");
        added.push(node(
            &shape,
            "Shape",
            vec![init.clone()],
            &host,
            &[("T", ty(s.dtype)), ("out_type", ty(DType::I32))],
        ));
        let mut concat_of = |operand: &str, dim: i64, added: &mut Vec<_>| -> String {
            let key = (frame.clone(), tensor_ref(operand).unwrap_or_default());
            let exit = match lists.get(&key) {
                Some(e) => e.clone(),
                None => {
                    let [empty, neg, enter_l, merge, sw, push, next, exit] = [
                        "EmptyTensorList",
                        "unknown_shape",
                        "Enter",
                        "Merge",
                        "Switch",
                        "TensorListPushBack",
                        "NextIteration",
                        "Exit",
                    ]
                    .map(|op| fresh(&format!("list{dim}/{op}")));
                    added.push(int_const(
                        neg.clone(),
                        &host,
                        DataType::DtInt32,
                        &[],
                        &[-1],
                        outside.clone(),
                    ));
                    added.push(node(
                        &empty,
                        "EmptyTensorList",
                        vec![neg.clone(), neg],
                        &dev,
                        &[
                            ("element_dtype", ty(s.dtype)),
                            ("shape_type", ty(DType::I32)),
                        ],
                    ));
                    let mut enter_in = vec![empty];
                    enter_in.extend(enter_controls.iter().cloned());
                    let mut enter_attrs: Vec<(&str, attr_value::Value)> =
                        vec![("T", variant.clone())];
                    for k in ["frame_name", "parallel_iterations"] {
                        if let Some(a) = enter.attr.get(k).and_then(|a| a.value.clone()) {
                            enter_attrs.push((k, a));
                        }
                    }
                    enter_attrs.push(("is_constant", attr_value::Value::B(false)));
                    added.push(node(&enter_l, "Enter", enter_in, &dev, &enter_attrs));
                    added.push(node(
                        &merge,
                        "Merge",
                        vec![enter_l, next.clone()],
                        &dev,
                        &[("T", variant.clone()), ("N", attr_value::Value::I(2))],
                    ));
                    added.push(node(
                        &sw,
                        "Switch",
                        vec![merge, switch.input[1].clone()],
                        &dev,
                        &[("T", variant.clone())],
                    ));
                    added.push(node(
                        &push,
                        "TensorListPushBack",
                        vec![format!("{sw}:1"), operand.to_string()],
                        &dev,
                        &[("element_dtype", ty(s.dtype))],
                    ));
                    added.push(node(
                        &next,
                        "NextIteration",
                        vec![push],
                        &dev,
                        &[("T", variant.clone())],
                    ));
                    added.push(node(
                        &exit,
                        "Exit",
                        vec![sw],
                        &dev,
                        &[("T", variant.clone())],
                    ));
                    lists.insert(key, exit.clone());
                    exit
                }
            };
            let [begin, end, stride, slice, minus, axis, element_shape, leading, concat] = [
                "begin",
                "end",
                "stride",
                "dim",
                "minus_one",
                "axis",
                "element_shape",
                "leading_dims",
                "TensorListConcatV2",
            ]
            .map(|op| fresh(&format!("concat{dim}/{op}")));
            for (name, value) in [(&begin, dim), (&end, dim + 1), (&stride, 1), (&minus, -1)] {
                added.push(int_const(
                    name.clone(),
                    &host,
                    DataType::DtInt32,
                    &[1],
                    &[value],
                    outside.clone(),
                ));
            }
            added.push(int_const(
                axis.clone(),
                &host,
                DataType::DtInt32,
                &[],
                &[0],
                outside.clone(),
            ));
            added.push(int_const(
                leading.clone(),
                &host,
                DataType::DtInt64,
                &[0],
                &[],
                outside.clone(),
            ));
            added.push(node(
                &slice,
                "StridedSlice",
                vec![shape.clone(), begin, end, stride],
                &host,
                &[
                    ("T", ty(DType::I32)),
                    ("Index", ty(DType::I32)),
                    ("begin_mask", attr_value::Value::I(0)),
                    ("end_mask", attr_value::Value::I(0)),
                    ("ellipsis_mask", attr_value::Value::I(0)),
                    ("new_axis_mask", attr_value::Value::I(0)),
                    ("shrink_axis_mask", attr_value::Value::I(0)),
                ],
            ));
            added.push(node(
                &element_shape,
                "ConcatV2",
                vec![minus, slice, axis],
                &host,
                &[
                    ("T", ty(DType::I32)),
                    ("Tidx", ty(DType::I32)),
                    ("N", attr_value::Value::I(2)),
                ],
            ));
            added.push(node(
                &concat,
                "TensorListConcatV2",
                vec![exit, element_shape, leading],
                &dev,
                &[
                    ("element_dtype", ty(s.dtype)),
                    ("shape_type", ty(DType::I32)),
                ],
            ));
            concat
        };
        let rows_a = concat_of(&s.a, 0, &mut added);
        let rows_b = concat_of(&s.b, 1, &mut added);
        let product = fresh("MatMul");
        let total = fresh("AddV2");
        added.push(node(
            &product,
            "MatMul",
            vec![rows_a, rows_b],
            &dev,
            &[
                ("T", ty(s.dtype)),
                ("transpose_a", attr_value::Value::B(true)),
                ("transpose_b", attr_value::Value::B(false)),
            ],
        ));
        let exit_name = graph.node[s.exit].name.clone();
        added.push(node(
            &total,
            "AddV2",
            vec![exit_name.clone(), product],
            &dev,
            &[("T", ty(s.dtype))],
        ));
        rewire.push((exit_name, total));
        // The running sum is passed on unchanged.
        let acc = graph.node[s.sum]
            .input
            .iter()
            .find(|i| is_output_1_of(i, &graph.node[s.switch].name))
            .cloned()
            .unwrap_or_default();
        let controls: Vec<String> = graph.node[s.sum]
            .input
            .iter()
            .filter(|c| c.starts_with('^'))
            .cloned()
            .collect();
        let sum = &mut graph.node[s.sum];
        sum.op = "Identity".into();
        sum.input = std::iter::once(acc).chain(controls).collect();
        sum.attr.retain(|k, _| k == "T");
        removed.insert(graph.node[s.product].name.clone());
    }
    // Readers of each accumulator's exit now read the exit plus the product.
    let targets: HashMap<&str, &str> = rewire
        .iter()
        .map(|(e, t)| (e.as_str(), t.as_str()))
        .collect();
    for n in graph.node.iter_mut() {
        if targets.values().any(|t| *t == n.name) {
            continue;
        }
        for i in n.input.iter_mut() {
            if let Some((name, k)) = parse_input(i) {
                if let Some(t) = targets.get(name) {
                    if k == 0 {
                        *i = t.to_string();
                    }
                }
            }
        }
    }
    let changed = added.len() + 2 * rewire.len();
    graph.node.retain(|n| !removed.contains(&n.name));
    graph.node.extend(added);
    changed
}

/// Is `input` output 1 of the node `switch`?
fn is_output_1_of(input: &str, switch: &str) -> bool {
    parse_input(input) == Some((switch, 1))
}
