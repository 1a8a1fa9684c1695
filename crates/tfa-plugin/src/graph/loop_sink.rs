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
use tfa_proto::{attr_value, DataType, GraphDef, NodeDef};

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

/// What the new nodes of one loop share.
struct Loop {
    /// The loop's frame attributes and control inputs (its `Enter`'s).
    frame_attrs: Vec<(&'static str, attr_value::Value)>,
    enter_controls: Vec<String>,
    /// The loop condition, for the new loop variables' `Switch`es.
    cond: String,
    /// Control inputs that put a constant before the loop in the loop's
    /// parent frame.
    outside: Vec<String>,
    device: String,
    host: String,
    dtype: DType,
}

/// New nodes with fresh names under `base`.
struct Builder<'a> {
    names: &'a mut HashSet<String>,
    base: String,
    added: Vec<NodeDef>,
}

impl Builder<'_> {
    fn fresh(&mut self, suffix: &str) -> String {
        super::unique_name(format!("{}/{suffix}", self.base), self.names)
    }

    fn add(
        &mut self,
        suffix: &str,
        op: &str,
        input: Vec<String>,
        device: &str,
        attrs: &[(&str, attr_value::Value)],
    ) -> String {
        let name = self.fresh(suffix);
        self.added.push(node(&name, op, input, device, attrs));
        name
    }

    fn int(
        &mut self,
        suffix: &str,
        l: &Loop,
        dtype: DataType,
        dims: &[i64],
        values: &[i64],
    ) -> String {
        let name = self.fresh(suffix);
        self.added.push(int_const(
            name.clone(),
            &l.host,
            dtype,
            dims,
            values,
            l.outside.clone(),
        ));
        name
    }

    /// A new loop variable: a list that gets `operand` appended every
    /// iteration. Returns its `Exit`.
    fn collect(&mut self, l: &Loop, operand: &str) -> String {
        let variant = || ("T", attr_value::Value::Type(DataType::DtVariant as i32));
        let element = ("element_dtype", type_of(l.dtype));
        let unknown = self.int("list/unknown_shape", l, DataType::DtInt32, &[], &[-1]);
        let shape_type = ("shape_type", type_of(DType::I32));
        let empty = self.add(
            "list/EmptyTensorList",
            "EmptyTensorList",
            vec![unknown.clone(), unknown],
            &l.device,
            &[element.clone(), shape_type],
        );
        let mut attrs = vec![variant()];
        attrs.extend(l.frame_attrs.iter().cloned());
        let enter_in = std::iter::once(empty)
            .chain(l.enter_controls.iter().cloned())
            .collect();
        let enter = self.add("list/Enter", "Enter", enter_in, &l.device, &attrs);
        let next = self.fresh("list/NextIteration");
        let merge = self.add(
            "list/Merge",
            "Merge",
            vec![enter, next.clone()],
            &l.device,
            &[variant(), ("N", attr_value::Value::I(2))],
        );
        let switch = self.add(
            "list/Switch",
            "Switch",
            vec![merge, l.cond.clone()],
            &l.device,
            &[variant()],
        );
        let push = self.add(
            "list/TensorListPushBack",
            "TensorListPushBack",
            vec![format!("{switch}:1"), operand.to_string()],
            &l.device,
            &[element],
        );
        self.added.push(node(
            &next,
            "NextIteration",
            vec![push],
            &l.device,
            &[variant()],
        ));
        self.add("list/Exit", "Exit", vec![switch], &l.device, &[variant()])
    }

    /// The rows of a collected list, concatenated: `[rows, shape[dim]]`
    /// (`shape` the accumulator's, so known when the loop ran no step).
    fn rows(&mut self, l: &Loop, exit: &str, shape: &str, dim: i64) -> String {
        let vec1 = |b: &mut Self, s: &str, v: i64| b.int(s, l, DataType::DtInt32, &[1], &[v]);
        let begin = vec1(self, "rows/begin", dim);
        let end = vec1(self, "rows/end", dim + 1);
        let stride = vec1(self, "rows/stride", 1);
        let minus = vec1(self, "rows/minus_one", -1);
        let axis = self.int("rows/axis", l, DataType::DtInt32, &[], &[0]);
        let leading = self.int("rows/leading_dims", l, DataType::DtInt64, &[0], &[]);
        let int32 = || type_of(DType::I32);
        let mask = || attr_value::Value::I(0);
        let cols = self.add(
            "rows/cols",
            "StridedSlice",
            vec![shape.to_string(), begin, end, stride],
            &l.host,
            &[
                ("T", int32()),
                ("Index", int32()),
                ("begin_mask", mask()),
                ("end_mask", mask()),
                ("ellipsis_mask", mask()),
                ("new_axis_mask", mask()),
                ("shrink_axis_mask", mask()),
            ],
        );
        let element_shape = self.add(
            "rows/element_shape",
            "ConcatV2",
            vec![minus, cols, axis],
            &l.host,
            &[
                ("T", int32()),
                ("Tidx", int32()),
                ("N", attr_value::Value::I(2)),
            ],
        );
        self.add(
            "rows/TensorListConcatV2",
            "TensorListConcatV2",
            vec![exit.to_string(), element_shape, leading],
            &l.device,
            &[("element_dtype", type_of(l.dtype)), ("shape_type", int32())],
        )
    }
}

fn type_of(t: DType) -> attr_value::Value {
    attr_value::Value::Type(t.as_tf() as i32)
}

/// The shared parts of the new nodes for the loop of `s`.
fn loop_of(graph: &GraphDef, s: &Site) -> Option<Loop> {
    let (sum, enter) = (&graph.node[s.sum], &graph.node[s.enter]);
    let mut frame_attrs = vec![("is_constant", attr_value::Value::B(false))];
    for k in ["frame_name", "parallel_iterations"] {
        frame_attrs.push((k, enter.attr.get(k)?.value.clone()?));
    }
    let init = enter.input.first()?;
    Some(Loop {
        frame_attrs,
        enter_controls: enter
            .input
            .iter()
            .filter(|c| c.starts_with('^'))
            .cloned()
            .collect(),
        cond: graph.node[s.switch].input.get(1)?.clone(),
        outside: vec![format!("^{}", parse_input(init)?.0)],
        device: sum.device.clone(),
        host: host_of(&sum.device)?,
        dtype: s.dtype,
    })
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
    let mut names: HashSet<String> = graph.node.iter().map(|n| n.name.clone()).collect();
    let mut added = Vec::new();
    // One list per collected tensor and frame: (frame, tensor) -> its Exit.
    let mut lists: HashMap<(Vec<u8>, String), String> = HashMap::new();
    // Each list's Exit -> its rows, concatenated.
    let mut concats: HashMap<String, String> = HashMap::new();
    // Each sunk accumulator's Exit -> the node adding the product to it.
    let mut totals: HashMap<String, String> = HashMap::new();
    let mut removed = HashSet::new();
    for s in &sites {
        let Some(l) = loop_of(graph, s) else { continue };
        let frame = string_attr(&graph.node[s.enter], "frame_name")
            .unwrap_or_default()
            .to_vec();
        let exit = graph.node[s.exit].name.clone();
        let mut b = Builder {
            names: &mut names,
            base: format!("{}/tfa_sunk", graph.node[s.sum].name),
            added: Vec::new(),
        };
        let init = graph.node[s.enter].input[0].clone();
        let t = || ("T", type_of(s.dtype));
        // On the NPU (TensorFlow's kernel, output in host memory): on the
        // host the accumulator would be copied there to read its shape.
        let shape = b.add(
            "acc_shape",
            "Shape",
            vec![init],
            &l.device,
            &[t(), ("out_type", type_of(DType::I32))],
        );
        let mut rows = Vec::new();
        for (operand, dim) in [(&s.a, 0), (&s.b, 1)] {
            let key = (frame.clone(), tensor_ref(operand).unwrap_or_default());
            let list = match lists.get(&key) {
                Some(e) => e.clone(),
                None => {
                    let e = b.collect(&l, operand);
                    lists.insert(key, e.clone());
                    e
                }
            };
            // A list read by several sums is concatenated once.
            let concat = match concats.get(&list) {
                Some(c) => c.clone(),
                None => {
                    let c = b.rows(&l, &list, &shape, dim);
                    concats.insert(list, c.clone());
                    c
                }
            };
            rows.push(concat);
        }
        let product = b.add(
            "MatMul",
            "MatMul",
            rows,
            &l.device,
            &[
                t(),
                ("transpose_a", attr_value::Value::B(true)),
                ("transpose_b", attr_value::Value::B(false)),
            ],
        );
        let total = b.add(
            "AddV2",
            "AddV2",
            vec![exit.clone(), product],
            &l.device,
            &[t()],
        );
        added.append(&mut b.added);
        totals.insert(exit, total);
        // The loop passes the running sum on unchanged.
        let acc = format!("{}:1", graph.node[s.switch].name);
        let sum = &mut graph.node[s.sum];
        sum.op = "Identity".into();
        sum.input.retain(|i| i.starts_with('^'));
        sum.input.insert(0, acc);
        sum.attr.retain(|k, _| k == "T");
        removed.insert(graph.node[s.product].name.clone());
    }
    // Readers of each sunk accumulator read the exit plus the product.
    let is_total: HashSet<String> = totals.values().cloned().collect();
    for n in graph
        .node
        .iter_mut()
        .filter(|n| !is_total.contains(&n.name))
    {
        for i in n.input.iter_mut() {
            let to = parse_input(i)
                .filter(|&(_, k)| k == 0)
                .and_then(|(name, _)| totals.get(name));
            if let Some(t) = to {
                *i = t.clone();
            }
        }
    }
    let changed = added.len() + 2 * totals.len();
    graph.node.retain(|n| !removed.contains(&n.name));
    graph.node.extend(added);
    changed
}

#[cfg(test)]
mod tests;
