//! Folds a constant zero `Pad` of the spatial dims into the convolution that
//! reads it: Keras's `ZeroPadding2D` before each stride-2 depthwise
//! convolution of MobileNetV2 and EfficientNet. The convolution takes
//! `padding="EXPLICIT"` with those pads and the `Pad` goes, saving a copy of
//! the activations (EfficientNetB0 b32: ~30 ms of ~450). Only where the
//! convolution is the Pad's only reader (in a training graph the filter
//! gradient reads the padded input too, and the Pad stays), both on an NPU,
//! NHWC, `VALID`, the batch and channel pads 0. The sums are those of the
//! padded convolution without its zero terms: equal for finite filters (an
//! infinite or NaN filter weight would make the padded border NaN). Part of
//! the fusion pass: `TFA_FUSION=0` turns it off.

use super::{on_npu, parse_input, string_attr};
use std::collections::{HashMap, HashSet};
use tfa_proto::{attr_value, AttrValue, DataType, GraphDef, TensorProto};

const CONVOLUTIONS: &[&str] = &["Conv2D", "DepthwiseConv2dNative"];

/// The shape and values of an int32/int64 constant tensor, a repeated last
/// value left out (TensorFlow's compact form) filled in.
pub(super) fn const_ints(t: &TensorProto) -> Option<(Vec<i64>, Vec<i64>)> {
    let dims: Vec<i64> = t
        .tensor_shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| d.size)
        .collect();
    let (int32, int64) = (DataType::DtInt32 as i32, DataType::DtInt64 as i32);
    let vals: Vec<i64> = match t.dtype {
        d if d == int32 && !t.tensor_content.is_empty() => t
            .tensor_content
            .chunks_exact(4)
            .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        d if d == int64 && !t.tensor_content.is_empty() => t
            .tensor_content
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect(),
        d if d == int32 => t.int_val.iter().map(|&v| i64::from(v)).collect(),
        d if d == int64 => t.int64_val.clone(),
        _ => return None,
    };
    let len = usize::try_from(dims.iter().product::<i64>()).ok()?;
    if vals.len() > len || (vals.is_empty() && len > 0) {
        return None;
    }
    let mut out = vals.clone();
    out.resize(len, vals.last().copied().unwrap_or(0));
    Some((dims, out))
}

/// The 8 values of an int32/int64 `[4, 2]` constant tensor.
#[cfg(test)]
fn pads_of(t: &TensorProto) -> Option<[i64; 8]> {
    let (dims, v) = const_ints(t)?;
    pads_of_values(&dims, v)
}

/// Paddings of shape `[4, 2]` as 8 values.
fn pads_of_values(dims: &[i64], v: Vec<i64>) -> Option<[i64; 8]> {
    (dims == [4, 2]).then(|| v.try_into().ok())?
}

/// The value of node `i` when it is a `Const` holding int32/int64 values.
pub(super) fn const_value(graph: &GraphDef, i: usize) -> Option<(Vec<i64>, Vec<i64>)> {
    let n = &graph.node[i];
    match n.attr.get("value").and_then(|v| v.value.as_ref()) {
        Some(attr_value::Value::Tensor(t)) if n.op == "Const" => const_ints(t),
        _ => None,
    }
}

/// Each node's index by name, and how many inputs (data and control) name
/// each node.
pub(super) fn index_and_readers(graph: &GraphDef) -> (HashMap<String, usize>, Vec<usize>) {
    let index: HashMap<String, usize> = graph
        .node
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    let mut readers = vec![0usize; graph.node.len()];
    for n in &graph.node {
        for s in &n.input {
            let name = s.trim_start_matches('^').split(':').next().unwrap_or("");
            if let Some(&p) = index.get(name) {
                readers[p] += 1;
            }
        }
    }
    (index, readers)
}

/// Folds every eligible `Pad` into its convolution; returns how many.
pub(crate) fn fold_pads(
    graph: &mut GraphDef,
    preserve: &HashSet<String>,
    exclude: &HashSet<String>,
) -> usize {
    let (index, readers) = index_and_readers(graph);
    let mut folds: Vec<(usize, usize, [i64; 8])> = Vec::new();
    let mut removed = HashSet::new();
    for (c, conv) in graph.node.iter().enumerate() {
        if !CONVOLUTIONS.contains(&conv.op.as_str())
            || !on_npu(&conv.device)
            || string_attr(conv, "padding") != Some(b"VALID")
            || string_attr(conv, "data_format").is_some_and(|f| f != b"NHWC")
            || exclude.contains(&conv.name)
        {
            continue;
        }
        let Some((name, 0)) = conv.input.first().and_then(|s| parse_input(s)) else {
            continue;
        };
        let Some(&p) = index.get(name) else { continue };
        let pad = &graph.node[p];
        if pad.op != "Pad"
            || pad.device != conv.device
            || readers[p] != 1
            || preserve.contains(&pad.name)
            || exclude.contains(&pad.name)
        {
            continue;
        }
        let Some(&q) = pad
            .input
            .get(1)
            .and_then(|s| parse_input(s))
            .and_then(|(n, _)| index.get(n))
        else {
            continue;
        };
        match const_value(graph, q).and_then(|(dims, v)| pads_of_values(&dims, v)) {
            Some(v) if v[..2] == [0, 0] && v[6..] == [0, 0] && v.iter().all(|&x| x >= 0) => {
                folds.push((c, p, v));
                if readers[q] == 1 {
                    removed.insert(q); // the paddings, read by nothing else
                }
            }
            _ => {}
        }
    }
    for &(c, p, v) in &folds {
        let (source, controls): (String, Vec<String>) = {
            let pad = &graph.node[p];
            let controls = pad.input.iter().filter(|s| s.starts_with('^')).cloned();
            (pad.input[0].clone(), controls.collect())
        };
        let conv = &mut graph.node[c];
        conv.input[0] = source;
        for ctl in controls {
            if !conv.input.contains(&ctl) {
                conv.input.push(ctl);
            }
        }
        conv.attr.insert(
            "padding".into(),
            AttrValue {
                value: Some(attr_value::Value::S(b"EXPLICIT".to_vec())),
            },
        );
        conv.attr.insert(
            "explicit_paddings".into(),
            AttrValue {
                value: Some(attr_value::Value::List(attr_value::ListValue {
                    i: v.to_vec(),
                    ..Default::default()
                })),
            },
        );
        removed.insert(p);
    }
    let mut i = 0;
    graph.node.retain(|_| {
        i += 1;
        !removed.contains(&(i - 1))
    });
    folds.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfa_proto::{tensor_shape_proto::Dim, TensorShapeProto};

    fn tensor(dtype: DataType, dims: &[i64]) -> TensorProto {
        TensorProto {
            dtype: dtype as i32,
            tensor_shape: Some(TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&size| Dim {
                        size,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_paddings_in_every_encoding() {
        let want = [0, 0, 1, 2, 3, 4, 0, 0];
        let mut t = tensor(DataType::DtInt32, &[4, 2]);
        t.tensor_content = want
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect();
        assert_eq!(pads_of(&t), Some(want));
        let mut t = tensor(DataType::DtInt64, &[4, 2]);
        t.tensor_content = want.iter().flat_map(|&v: &i64| v.to_le_bytes()).collect();
        assert_eq!(pads_of(&t), Some(want));
        let mut t = tensor(DataType::DtInt64, &[4, 2]);
        t.int64_val = want.to_vec();
        assert_eq!(pads_of(&t), Some(want));
        // The compact form: a repeated last value left out.
        let mut t = tensor(DataType::DtInt32, &[4, 2]);
        t.int_val = vec![1];
        assert_eq!(pads_of(&t), Some([1; 8]));
        // Another shape or type is not a paddings tensor.
        let mut t = tensor(DataType::DtInt32, &[8]);
        t.int_val = vec![0; 8];
        assert_eq!(pads_of(&t), None);
        let mut t = tensor(DataType::DtFloat, &[4, 2]);
        t.float_val = vec![0.0; 8];
        assert_eq!(pads_of(&t), None);
    }
}
