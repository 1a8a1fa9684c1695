//! Folds the `Transpose`s around a float32 `BatchMatMulV2` into it, as a
//! `_TfaTransposedBatchMatMul` that reads its operands through the
//! permutations (strides for `gemm`, which packs its operands anyway) and,
//! when the product's only reader swaps its last two dims, computes that
//! swapped result directly (`(x y)^T = y^T x^T`). Keras's
//! MultiHeadAttention lowers its einsums to such transposes: a BERT-base
//! encoder copied 75 MB per layer in them (`Transpose` 0.22-0.26 s of an
//! 11 s batch).
//!
//! A `Transpose` folds only when the product is its only reader (in a
//! training graph the gradient reads the transposed operand too, and it
//! stays), its permutation is a constant, it runs on the same NPU and grappler
//! need not preserve it. The output swap folds when the product's only
//! reader is that `Transpose` and the product itself need not be preserved:
//! the new node takes the `Transpose`'s name, so its readers are untouched.
//! Products the precision mode multiplies in low precision are left alone.
//! Part of the fusion pass (after it, so fused products keep their
//! epilogues): `TFA_FUSION=0` turns it off.

use super::pad_fold::{const_value, index_and_readers};
use super::{attr_type, data_edges, on_npu, parse_input};
use std::collections::{BTreeMap, HashMap, HashSet};
use tfa_core::DType;
use tfa_proto::{attr_value, AttrValue, GraphDef};

const PRODUCT: &str = "BatchMatMulV2";
const FOLDED: &str = "_TfaTransposedBatchMatMul";

/// The constant permutation of `Transpose` node `t`.
fn perm_of(graph: &GraphDef, index: &HashMap<String, usize>, t: usize) -> Option<Vec<i64>> {
    let (name, 0) = parse_input(graph.node[t].input.get(1)?)? else {
        return None;
    };
    let (dims, v) = const_value(graph, *index.get(name)?)?;
    (dims.len() == 1 && v.len() >= 2).then_some(v)
}

fn float32(graph: &GraphDef, i: usize) -> bool {
    attr_type(&graph.node[i], "T") == Some(DType::F32.as_tf() as i32)
}

fn ints(v: Vec<i64>) -> AttrValue {
    AttrValue {
        value: Some(attr_value::Value::List(attr_value::ListValue {
            i: v,
            ..Default::default()
        })),
    }
}

/// Folds every eligible transpose; returns how many products changed.
pub(crate) fn fold_transposes(
    graph: &mut GraphDef,
    preserve: &HashSet<String>,
    exclude: &HashSet<String>,
) -> usize {
    // Readers of each node (data and control edges) and its data readers.
    let (index, readers) = index_and_readers(graph);
    let mut data_readers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    for (c, ins) in data_edges(&graph.node).iter().enumerate() {
        for &(_, p, _) in ins {
            data_readers[p].push(c);
        }
    }
    let lowp = tfa_ops::precision::plan(PRODUCT, DType::F32).lowp.is_some();
    // Nodes already folded away or rewritten by an earlier fold.
    let mut removed: HashSet<usize> = HashSet::new();
    let mut rewritten: HashSet<usize> = HashSet::new();
    // A transpose node that may fold into product `b`.
    let foldable = |graph: &GraphDef, t: usize, b: usize, taken: bool| {
        let (n, bn) = (&graph.node[t], &graph.node[b]);
        n.op == "Transpose"
            && !taken
            && n.device == bn.device
            && float32(graph, t)
            && !preserve.contains(&n.name)
            && !exclude.contains(&n.name)
    };
    let mut folds = 0;
    for b in 0..graph.node.len() {
        let bn = &graph.node[b];
        if bn.op != PRODUCT
            || lowp
            || !on_npu(&bn.device)
            || !float32(graph, b)
            || exclude.contains(&bn.name)
            || bn.input.len() < 2
        {
            continue;
        }
        // Operands read through a transpose read by nothing else.
        let mut sources: Vec<String> = bn.input[..2].to_vec();
        let mut perms: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
        let mut gone: Vec<usize> = Vec::new();
        for (i, src) in bn.input[..2].iter().enumerate() {
            let Some((name, 0)) = parse_input(src) else {
                continue;
            };
            let Some(&t) = index.get(name) else { continue };
            let taken = removed.contains(&t) || rewritten.contains(&t);
            if readers[t] != 1 || !foldable(graph, t, b, taken) {
                continue;
            }
            if let Some(p) = perm_of(graph, &index, t) {
                sources[i] = graph.node[t].input[0].clone();
                perms[i] = p;
                gone.push(t);
            }
        }
        // The result read only by a transpose of its last two dims.
        let out = match data_readers[b].as_slice() {
            &[t] if readers[b] == 1
                && !preserve.contains(&bn.name)
                && foldable(graph, t, b, removed.contains(&t) || rewritten.contains(&t))
                && parse_input(&graph.node[t].input[0]) == Some((bn.name.as_str(), 0)) =>
            {
                perm_of(graph, &index, t).and_then(|p| {
                    let r = p.len() as i64;
                    let swap = (0..r - 2).chain([r - 1, r - 2]);
                    p.iter().copied().eq(swap).then_some(t)
                })
            }
            _ => None,
        };
        if gone.is_empty() && out.is_none() {
            continue;
        }
        // The node that carries the folded product: the product's own, or
        // the output transpose's (whose name its readers use).
        let host = out.unwrap_or(b);
        let mut controls: Vec<String> = Vec::new();
        for &t in gone.iter().chain([&b]).chain(out.as_ref()) {
            for s in graph.node[t].input.iter().filter(|s| s.starts_with('^')) {
                if !controls.contains(s) {
                    controls.push(s.clone());
                }
            }
        }
        let mut attr: BTreeMap<String, AttrValue> = graph.node[b]
            .attr
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "T" | "adj_x" | "adj_y"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let [px, py] = perms;
        attr.insert("perm_x".into(), ints(px));
        attr.insert("perm_y".into(), ints(py));
        attr.insert(
            "transpose_out".into(),
            AttrValue {
                value: Some(attr_value::Value::B(out.is_some())),
            },
        );
        let device = graph.node[b].device.clone();
        let node = &mut graph.node[host];
        node.op = FOLDED.into();
        node.device = device;
        node.input = sources.into_iter().chain(controls).collect();
        node.attr = attr;
        removed.extend(gone);
        rewritten.insert(host);
        if host != b {
            removed.insert(b);
        }
        folds += 1;
    }
    let mut i = 0;
    graph.node.retain(|_| {
        i += 1;
        !removed.contains(&(i - 1))
    });
    folds
}
