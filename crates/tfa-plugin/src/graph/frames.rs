//! Reading a graph whose while loops TensorFlow has lowered to frames
//! (`Enter`/`Merge`/`Switch`/`NextIteration`/`Exit`): the helpers the loop
//! rewrites share.

use super::{attr_type, parse_input, string_attr};
use std::collections::{BTreeMap, HashMap};
use tfa_core::DType;
use tfa_proto::{attr_value, AttrValue, DataType, NodeDef, TensorProto, TensorShapeProto};

pub(super) fn attr(v: attr_value::Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

pub(super) fn bool_attr(n: &NodeDef, name: &str) -> Option<bool> {
    match n.attr.get(name)?.value.as_ref()? {
        attr_value::Value::B(b) => Some(*b),
        _ => None,
    }
}

pub(super) fn dtype(n: &NodeDef, name: &str) -> Option<DType> {
    DType::from_tf(u32::try_from(attr_type(n, name)?).ok()?)
}

/// `name:k` for an input string (`name` means output 0); None for control.
pub(super) fn tensor_ref(s: &str) -> Option<String> {
    parse_input(s).map(|(n, k)| format!("{n}:{k}"))
}

/// The graph with its name index and each node's data readers.
pub(super) struct View<'g> {
    pub(super) nodes: &'g [NodeDef],
    pub(super) index: HashMap<&'g str, usize>,
    /// For each node: (reader, output read).
    pub(super) readers: Vec<Vec<(usize, usize)>>,
}

impl<'g> View<'g> {
    pub(super) fn new(nodes: &'g [NodeDef]) -> Self {
        let index: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect();
        let mut readers = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for (p, k) in n.input.iter().filter_map(|s| parse_input(s)) {
                if let Some(&p) = index.get(p) {
                    readers[p].push((i, k));
                }
            }
        }
        View {
            nodes,
            index,
            readers,
        }
    }

    /// The producer of a data input and its output index.
    pub(super) fn producer(&self, input: &str) -> Option<(usize, usize)> {
        let (name, k) = parse_input(input)?;
        Some((*self.index.get(name)?, k))
    }

    /// Follows `Identity` nodes back to the tensor they forward.
    pub(super) fn through_identities(&self, input: &str) -> Option<(usize, usize)> {
        let (mut p, mut k) = self.producer(input)?;
        for _ in 0..64 {
            let n = &self.nodes[p];
            if n.op != "Identity" || k != 0 {
                return Some((p, k));
            }
            (p, k) = self.producer(n.input.first()?)?;
        }
        None
    }

    /// When the tensor `input` (read inside a loop frame) is the same every
    /// iteration: the `Enter` it comes through. Either an `Enter` with
    /// `is_constant`, or a loop variable whose body passes it back unchanged:
    /// `Switch(Merge(Enter, NextIteration))` output 1, the `NextIteration`
    /// fed by that same `Switch` output.
    pub(super) fn invariant_enter(&self, input: &str) -> Option<usize> {
        let (p, k) = self.through_identities(input)?;
        let n = &self.nodes[p];
        if n.op == "Enter" {
            return (k == 0 && bool_attr(n, "is_constant") == Some(true)).then_some(p);
        }
        if n.op != "Switch" || k != 1 {
            return None;
        }
        let (m, 0) = self.producer(n.input.first()?)? else {
            return None;
        };
        let merge = &self.nodes[m];
        let data: Vec<&String> = merge.input.iter().filter(|s| !s.starts_with('^')).collect();
        if merge.op != "Merge" || data.len() != 2 {
            return None;
        }
        let (mut enter, mut next) = (None, None);
        for s in data {
            let (q, 0) = self.producer(s)? else {
                return None;
            };
            match self.nodes[q].op.as_str() {
                "Enter" => enter = Some(q),
                "NextIteration" => next = Some(q),
                _ => return None,
            }
        }
        let back = self.through_identities(self.nodes[next?].input.first()?)?;
        (back == (p, 1)).then_some(enter?)
    }

    /// The frame an `Exit` leaves: its `Switch`'s `Merge`'s `Enter`'s.
    pub(super) fn frame_left_by(&self, exit: &NodeDef) -> Option<Vec<u8>> {
        let (switch, _) = self.producer(exit.input.first()?)?;
        let (merge, _) = self.producer(self.nodes[switch].input.first()?)?;
        let enter = self.nodes[merge]
            .input
            .iter()
            .filter_map(|s| self.producer(s))
            .map(|(q, _)| &self.nodes[q])
            .find(|q| q.op == "Enter")?;
        string_attr(enter, "frame_name").map(<[u8]>::to_vec)
    }

    /// The length of a 1-D constant (a shape with that many dims).
    pub(super) fn const_len(&self, input: &str) -> Option<i64> {
        let (p, 0) = self.producer(input)? else {
            return None;
        };
        let n = &self.nodes[p];
        match n.attr.get("value")?.value.as_ref()? {
            attr_value::Value::Tensor(t) if n.op == "Const" => {
                let dims = &t.tensor_shape.as_ref()?.dim;
                (dims.len() == 1).then(|| dims[0].size)
            }
            _ => None,
        }
    }
}

pub(super) fn controls(n: &NodeDef) -> impl Iterator<Item = &String> {
    n.input.iter().filter(|s| s.starts_with('^'))
}

pub(super) fn scalar_minus_one(name: String, device: &str, control: Vec<String>) -> NodeDef {
    int_const(name, device, DataType::DtInt32, &[], &[-1], control)
}

/// An int32 or int64 constant of shape `dims` holding `values`, with the
/// control inputs `control` (which put it in their frame).
pub(super) fn int_const(
    name: String,
    device: &str,
    dtype: DataType,
    dims: &[i64],
    values: &[i64],
    control: Vec<String>,
) -> NodeDef {
    let mut value = TensorProto {
        dtype: dtype as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: dims
                .iter()
                .map(|&size| tfa_proto::tensor_shape_proto::Dim {
                    size,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    if dtype == DataType::DtInt64 {
        value.int64_val = values.to_vec();
    } else {
        value.int_val = values.iter().map(|&v| v as i32).collect();
    }
    NodeDef {
        name,
        op: "Const".into(),
        input: control,
        device: device.into(),
        attr: BTreeMap::from([
            ("dtype".into(), attr(attr_value::Value::Type(dtype as i32))),
            ("value".into(), attr(attr_value::Value::Tensor(value))),
        ]),
        ..Default::default()
    }
}

/// A node from its parts.
pub(super) fn node(
    name: &str,
    op: &str,
    input: Vec<String>,
    device: &str,
    attrs: &[(&str, attr_value::Value)],
) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input,
        device: device.into(),
        attr: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), attr(v.clone())))
            .collect(),
        ..Default::default()
    }
}
