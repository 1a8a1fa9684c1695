//! Keeps every read of a buffer that changes in place ordered across devices.
//!
//! Some TensorFlow kernels write into a buffer that other nodes also read:
//! ref variables (`VariableV2` and every `Assign*`/`Scatter*` on it, and the
//! `Identity` "snapshot" that aliases it), `_ParallelConcatUpdate` (the
//! pieces of `tf.parallel_stack`) and `InplaceUpdate/Add/Sub`. On one device
//! a reader ordered after the writer by a control edge (or by any other
//! input) reads the new values. When the reader is on another device,
//! TensorFlow's partitioner sends the buffer as soon as its producer
//! finishes, without waiting for the writers: the reader silently gets the
//! old contents (zeros or garbage for `tf.parallel_stack`, the old variable).
//!
//! The fix is the one TensorFlow 1 users write by hand: the reader reads
//! through an `Identity` on the buffer's own device that carries the
//! reader's dependencies (its control inputs and the producers of its other
//! inputs), so the copy leaves only once everything that orders the reader
//! has run. Inserted reads carry `_tfa_ordered_read` and are never read
//! through again, so the pass is idempotent (grappler runs it twice).

use super::{arg_count, attr_type, data_edges};
use std::collections::{BTreeSet, HashMap, HashSet};
use tfa_proto::{attr_value, AttrValue, GraphDef, NodeDef, OpDef};

/// Marks the `Identity` nodes this pass inserts.
pub(crate) const ORDERED_READ: &str = "_tfa_ordered_read";

/// Kernels that write into their input 0's buffer and output it.
const MUTATORS: &[&str] = &[
    "_ParallelConcatUpdate",
    "InplaceUpdate",
    "InplaceAdd",
    "InplaceSub",
];

/// Ops whose output `k` is their data input `k`'s buffer (or, for the
/// single-output ones, input 0's): a write through one is a write to all.
const ALIASES: &[&str] = &[
    "Identity",
    "IdentityN",
    "RefIdentity",
    "StopGradient",
    "PreventGradient",
    "Reshape",
    "Squeeze",
    "ExpandDims",
    "EnsureShape",
    "CheckNumerics",
    "CheckNumericsV2",
    "Bitcast",
];

/// Control-flow ops that pass their input's buffer on (aliases too).
const CONTROL_FLOW_ALIASES: &[&str] = &[
    "Switch",
    "RefSwitch",
    "Merge",
    "RefMerge",
    "Enter",
    "RefEnter",
    "Exit",
    "RefExit",
    "NextIteration",
    "RefNextIteration",
];

/// The rest of the control-flow and structure ops. None of these, nor the
/// control-flow aliases, is given a new input or made a control-edge source
/// (a control edge from a `Switch` would carry its deadness).
const CONTROL_FLOW: &[&str] = &[
    "LoopCond",
    "ControlTrigger",
    "_Arg",
    "_Retval",
    "_DeviceArg",
    "_DeviceRetval",
];

fn is_control_flow(op: &str) -> bool {
    CONTROL_FLOW.contains(&op) || CONTROL_FLOW_ALIASES.contains(&op)
}

/// One flat output of a node: is it a ref, and its dtype enum when known.
type Output = (bool, Option<i32>);

/// Every flat output of `n`.
fn outputs(n: &NodeDef, def: &OpDef) -> Option<Vec<Output>> {
    let mut v = Vec::new();
    for a in &def.output_arg {
        let k = arg_count(n, a)?;
        if !a.type_list_attr.is_empty() {
            let types = match n.attr.get(&a.type_list_attr)?.value.as_ref()? {
                attr_value::Value::List(l) => l.r#type.clone(),
                _ => return None,
            };
            v.extend(types.into_iter().map(|t| (a.is_ref, Some(t))));
        } else {
            let t = if a.r#type != 0 {
                Some(a.r#type)
            } else {
                attr_type(n, &a.type_attr)
            };
            v.extend(std::iter::repeat_n((a.is_ref, t), k));
        }
    }
    Some(v)
}

/// Union-find over tensors `(node, output)`.
#[derive(Default)]
struct Buffers {
    id: HashMap<(usize, usize), usize>,
    parent: Vec<usize>,
}

impl Buffers {
    fn key(&mut self, t: (usize, usize)) -> usize {
        let next = self.parent.len();
        let id = *self.id.entry(t).or_insert(next);
        if id == next {
            self.parent.push(next);
        }
        id
    }

    fn find(&mut self, t: (usize, usize)) -> usize {
        let mut x = self.key(t);
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: (usize, usize), b: (usize, usize)) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.parent[ra] = rb;
    }
}

/// Which tensors of a graph are buffers something writes in place.
struct Written {
    /// Data inputs per node: (position in `input`, producer, producer output).
    edges: Vec<Vec<(usize, usize, usize)>>,
    outs: Vec<Option<Vec<Output>>>,
    buffers: Buffers,
    /// Union-find roots of the written buffers.
    roots: HashSet<usize>,
}

impl Written {
    /// `None` when nothing in the graph writes in place.
    fn analyse<'a>(graph: &GraphDef, opdef: &dyn Fn(&str) -> Option<&'a OpDef>) -> Option<Self> {
        let nodes = &graph.node;
        let edges = data_edges(nodes);
        let outs: Vec<Option<Vec<Output>>> = nodes
            .iter()
            .map(|n| opdef(&n.op).and_then(|d| outputs(n, d)))
            .collect();
        let mut buffers = Buffers::default();
        let mut written: Vec<(usize, usize)> = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            for (k, &(is_ref, _)) in outs[i].iter().flatten().enumerate() {
                if is_ref {
                    written.push((i, k));
                }
            }
            let op = n.op.as_str();
            let mutator = MUTATORS.contains(&op);
            if mutator || ALIASES.contains(&op) || CONTROL_FLOW_ALIASES.contains(&op) {
                // Output `j` aliases input `j` (IdentityN), every input
                // (Merge), or input 0 (the rest; both outputs of a Switch).
                let per_output = op == "IdentityN";
                let merge = op.ends_with("Merge");
                let switch = op.ends_with("Switch");
                for (j, &(_, p, k)) in edges[i].iter().enumerate() {
                    if per_output {
                        buffers.union((i, j), (p, k));
                    } else if j == 0 || merge {
                        buffers.union((i, 0), (p, k));
                        if switch {
                            buffers.union((i, 1), (p, k));
                        }
                    }
                }
            }
            if mutator {
                if let Some(&(_, p, k)) = edges[i].first() {
                    written.push((p, k));
                }
            }
        }
        if written.is_empty() {
            return None;
        }
        let roots = written.iter().map(|&t| buffers.find(t)).collect();
        Some(Written {
            edges,
            outs,
            buffers,
            roots,
        })
    }

    fn is_written(&mut self, t: (usize, usize)) -> bool {
        let r = self.buffers.find(t);
        self.roots.contains(&r)
    }
}

/// Names of the nodes that read a buffer something writes in place. The
/// precision pass keeps their dtypes: a `Cast` in front of one would read
/// the buffer unordered, before the writes.
pub(crate) fn readers_of_written_buffers<'a>(
    graph: &GraphDef,
    opdef: &dyn Fn(&str) -> Option<&'a OpDef>,
) -> HashSet<String> {
    let Some(mut w) = Written::analyse(graph, opdef) else {
        return HashSet::new();
    };
    let mut out = HashSet::new();
    for (i, n) in graph.node.iter().enumerate() {
        let edges = w.edges[i].clone();
        if edges.iter().any(|&(_, p, k)| w.is_written((p, k))) {
            out.insert(n.name.clone());
        }
    }
    out
}

/// Inserts an ordered read for every cross-device data edge that carries a
/// buffer something writes in place, where the reader has dependencies to
/// wait for. Returns how many reads it inserted.
pub(crate) fn order_mutable_reads<'a>(
    graph: &mut GraphDef,
    opdef: &dyn Fn(&str) -> Option<&'a OpDef>,
) -> usize {
    let Some(mut w) = Written::analyse(graph, opdef) else {
        return 0;
    };
    let nodes = &graph.node;
    let ours = |n: &NodeDef| n.attr.contains_key(ORDERED_READ);

    let mut names: HashSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut reads: Vec<NodeDef> = Vec::new();
    let mut rewired: Vec<(usize, usize, String)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.device.is_empty() || is_control_flow(&n.op) || MUTATORS.contains(&n.op.as_str()) {
            continue;
        }
        let edges = w.edges[i].clone();
        for (j, &(pos, p, k)) in edges.iter().enumerate() {
            let producer = &nodes[p];
            if producer.device.is_empty()
                || producer.device == n.device
                || ours(producer)
                || !w.is_written((p, k))
            {
                continue;
            }
            let Some(dtype) = w.outs[p].as_ref().and_then(|o| o.get(k)).and_then(|o| o.1) else {
                continue;
            };
            // What orders the reader: its control inputs and the producers of
            // its other data inputs.
            let mut deps: BTreeSet<String> = n
                .input
                .iter()
                .filter(|s| s.starts_with('^'))
                .cloned()
                .collect();
            for (jj, &(_, q, _)) in edges.iter().enumerate() {
                let other = &nodes[q];
                if jj != j && q != p && !is_control_flow(&other.op) {
                    deps.insert(format!("^{}", other.name));
                }
            }
            deps.remove(&format!("^{}", producer.name));
            if deps.is_empty() {
                continue;
            }
            let base = format!("{}/tfa_ordered_read", producer.name);
            let mut name = base.clone();
            let mut c = 1;
            while !names.insert(name.clone()) {
                name = format!("{base}_{c}");
                c += 1;
            }
            let mut attr = std::collections::BTreeMap::new();
            attr.insert(
                "T".to_string(),
                AttrValue {
                    value: Some(attr_value::Value::Type(dtype)),
                },
            );
            attr.insert(
                ORDERED_READ.to_string(),
                AttrValue {
                    value: Some(attr_value::Value::B(true)),
                },
            );
            let mut input = vec![n.input[pos].clone()];
            input.extend(deps);
            reads.push(NodeDef {
                name: name.clone(),
                op: "Identity".into(),
                input,
                device: producer.device.clone(),
                attr: attr.into_iter().collect(),
                ..Default::default()
            });
            rewired.push((i, pos, name));
        }
    }
    for (i, pos, name) in &rewired {
        graph.node[*i].input[*pos] = name.clone();
    }
    let added = reads.len();
    graph.node.extend(reads);
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfa_proto::op_def::ArgDef;

    const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";
    const NPU: &str = "/job:localhost/replica:0/task:0/device:NPU:0";

    fn t_attr(t: i32) -> (String, AttrValue) {
        (
            "T".into(),
            AttrValue {
                value: Some(attr_value::Value::Type(t)),
            },
        )
    }

    fn node(name: &str, op: &str, inputs: &[&str], device: &str) -> NodeDef {
        NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            device: device.into(),
            attr: [t_attr(1)].into_iter().collect(),
            ..Default::default()
        }
    }

    fn defs() -> HashMap<String, OpDef> {
        let arg = |name: &str, is_ref: bool| ArgDef {
            name: name.into(),
            type_attr: "T".into(),
            is_ref,
            ..Default::default()
        };
        let def = |name: &str, ins: Vec<ArgDef>, outs: Vec<ArgDef>| OpDef {
            name: name.into(),
            input_arg: ins,
            output_arg: outs,
            ..Default::default()
        };
        [
            def("Const", vec![], vec![arg("output", false)]),
            def("Start", vec![], vec![arg("output", false)]),
            def(
                "_ParallelConcatUpdate",
                vec![arg("value", false), arg("update", false)],
                vec![arg("output", false)],
            ),
            def(
                "Identity",
                vec![arg("input", false)],
                vec![arg("output", false)],
            ),
            def(
                "Mul",
                vec![arg("x", false), arg("y", false)],
                vec![arg("z", false)],
            ),
            def("VariableV2", vec![], vec![arg("ref", true)]),
            def(
                "Assign",
                vec![arg("ref", true), arg("value", false)],
                vec![arg("output_ref", true)],
            ),
        ]
        .into_iter()
        .map(|d| (d.name.clone(), d))
        .collect()
    }

    fn run(g: &mut GraphDef) -> usize {
        let d = defs();
        order_mutable_reads(g, &|op| d.get(op))
    }

    #[test]
    fn parallel_stack_reader_on_another_device_reads_after_the_updates() {
        let mut g = GraphDef {
            node: vec![
                node("start", "Start", &[], CPU),
                node("v0", "Const", &[], CPU),
                node("u0", "_ParallelConcatUpdate", &["start", "v0"], CPU),
                node("u1", "_ParallelConcatUpdate", &["start", "v0"], CPU),
                node("out", "Identity", &["start", "^u0", "^u1"], NPU),
            ],
            ..Default::default()
        };
        assert_eq!(run(&mut g), 1);
        let read = g
            .node
            .iter()
            .find(|n| n.attr.contains_key(ORDERED_READ))
            .unwrap();
        assert_eq!(read.device, CPU);
        assert_eq!(read.input, ["start", "^u0", "^u1"]);
        let out = g.node.iter().find(|n| n.name == "out").unwrap();
        assert_eq!(out.input, [read.name.as_str(), "^u0", "^u1"]);
        // Idempotent: grappler runs the pass again on its own output.
        assert_eq!(run(&mut g), 0);
    }

    #[test]
    fn ref_variable_snapshot_read_is_ordered_by_the_other_inputs() {
        let mut g = GraphDef {
            node: vec![
                node("v", "VariableV2", &[], CPU),
                node("read", "Identity", &["v"], CPU),
                node("val", "Const", &[], CPU),
                node("assign", "Assign", &["v", "val"], CPU),
                node("y", "Const", &["^assign"], NPU),
                node("mul", "Mul", &["read", "y"], NPU),
            ],
            ..Default::default()
        };
        assert_eq!(run(&mut g), 1);
        let mul = g.node.iter().find(|n| n.name == "mul").unwrap();
        let read = g.node.iter().find(|n| n.name == mul.input[0]).unwrap();
        assert_eq!(
            (read.device.as_str(), read.input.clone()),
            (CPU, vec!["read".to_string(), "^y".to_string()])
        );
    }

    #[test]
    fn readers_of_written_buffers_and_their_aliases_are_found() {
        let g = GraphDef {
            node: vec![
                node("start", "Start", &[], NPU),
                node("v0", "Const", &[], NPU),
                node("u0", "_ParallelConcatUpdate", &["start", "v0"], NPU),
                node("out", "Identity", &["start", "^u0"], NPU),
                node("mul", "Mul", &["out", "v0"], NPU),
                node("other", "Mul", &["v0", "v0"], NPU),
            ],
            ..Default::default()
        };
        let d = defs();
        let mut r: Vec<String> = readers_of_written_buffers(&g, &|op| d.get(op))
            .into_iter()
            .collect();
        r.sort();
        assert_eq!(r, ["mul", "out", "u0"]);
    }

    #[test]
    fn same_device_unordered_or_immutable_reads_are_left_alone() {
        let mut g = GraphDef {
            node: vec![
                node("start", "Start", &[], CPU),
                node("v0", "Const", &[], CPU),
                node("u0", "_ParallelConcatUpdate", &["start", "v0"], CPU),
                node("same", "Identity", &["start", "^u0"], CPU),
                node("unordered", "Identity", &["start"], NPU),
                node("c", "Const", &[], CPU),
                node("plain", "Identity", &["c", "^u0"], NPU),
            ],
            ..Default::default()
        };
        assert_eq!(run(&mut g), 0);
    }
}
