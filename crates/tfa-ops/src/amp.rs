//! Graph-level precision: which nodes of a `tf.function` change their compute
//! dtype under a precision mode. Pure and TensorFlow-free: the plugin's graph
//! pass (`tfa-plugin/src/graph.rs`) turns a GraphDef into [`Node`]s, calls
//! [`paint`], then rewrites type attributes and inserts `Cast`s.
//!
//! `allow_mix_precision_*` follows TensorFlow's grappler
//! `auto_mixed_precision` (tensorflow/core/grappler/optimizers/
//! auto_mixed_precision.cc), simplified to one float type per node:
//!
//! 1. allow-list float32 NPU nodes go low precision;
//! 2. deny propagates forward from deny-list ops through the clear/infer nodes
//!    that lie upstream of a deny or infer op (through clear nodes only);
//! 3. clear/infer nodes both downstream and upstream of allow nodes (through
//!    clear/infer nodes, not denied) go low precision;
//! 4. infer nodes with an allow input and no denied input go low precision
//!    (in topological order, so chains such as MatMul -> BiasAdd -> Add
//!    follow);
//! 5. clear nodes connected to allow nodes through clear nodes, in either
//!    direction, go low precision.
//!
//! Only float32 nodes on the NPU whose op has an NPU kernel for the
//! low-precision type change. Deny roots are the ops on the deny list (as in
//! TensorFlow); ops on no list never change but do not start deny propagation.
//!
//! `force_fp32`: float16/bfloat16 NPU nodes whose op has a float32 kernel go
//! float32, `Cast`s to float16/bfloat16 included (they become float32 ->
//! float32), so activations stay float32 between NPU ops.
//!
//! Other modes change nothing here: they act per kernel call
//! ([`crate::precision::plan`]).

use crate::precision::{Class, Lists, Mode};
use tfa_core::DType;

/// One node of the graph as the painter sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// TensorFlow op type.
    pub op: String,
    /// Placed on an NPU device.
    pub on_npu: bool,
    /// Its float type attribute (`T`; for `Cast`, `DstT`), `None` when it has
    /// none or the node is opaque (function calls, unknown ops).
    pub dtype: Option<DType>,
    /// Producers of its data inputs typed by that attribute (indices into
    /// the node slice; for `Cast`, empty).
    pub inputs: Vec<usize>,
}

fn kernel_supports(op: &str, dtype: DType) -> bool {
    crate::find(op).is_some_and(|(_, d)| d.supports(dtype))
}

/// Is `op` excluded from `force_fp32` although it has an f16 type attribute
/// and an NPU kernel: stateful ops whose dtype is fixed by a variable.
fn fixed_dtype(op: &str) -> bool {
    op.contains("Variable") || op.starts_with("ResourceApply") || op.starts_with("ResourceSparse")
}

/// The new compute dtype of each node under `mode` (`None`: unchanged).
pub fn paint(nodes: &[Node], mode: Mode, lists: &Lists) -> Vec<Option<DType>> {
    match mode {
        Mode::ForceFp32 => nodes
            .iter()
            .map(|n| {
                let lowp = matches!(n.dtype, Some(DType::F16 | DType::BF16));
                let eligible = n.op == "Cast" || !n.inputs.is_empty();
                (n.on_npu
                    && lowp
                    && eligible
                    && !fixed_dtype(&n.op)
                    && kernel_supports(&n.op, DType::F32))
                .then_some(DType::F32)
            })
            .collect(),
        Mode::AllowMixPrecisionBf16 | Mode::AllowMixPrecisionFp16 => {
            let Some(lowp) = mode.low_precision() else {
                return vec![None; nodes.len()];
            };
            let allow = Painter::new(nodes, lists, lowp).run();
            allow.into_iter().map(|a| a.then_some(lowp)).collect()
        }
        Mode::MustKeepOriginDtype | Mode::AllowFp32ToBf16 | Mode::AllowFp32ToFp16 => {
            vec![None; nodes.len()]
        }
    }
}

struct Painter<'a> {
    nodes: &'a [Node],
    fanin: Vec<Vec<usize>>,
    fanout: Vec<Vec<usize>>,
    class: Vec<Class>,
    /// On an explicit deny list (deny propagation roots).
    denylisted: Vec<bool>,
    /// float32 NPU node whose op has a low-precision kernel.
    changeable: Vec<bool>,
}

#[derive(Copy, Clone)]
enum Dir {
    In,
    Out,
    Both,
}

impl<'a> Painter<'a> {
    fn new(nodes: &'a [Node], lists: &Lists, lowp: DType) -> Self {
        let n = nodes.len();
        let mut fanin = vec![Vec::new(); n];
        let mut fanout = vec![Vec::new(); n];
        for (i, node) in nodes.iter().enumerate() {
            for &p in &node.inputs {
                if p < n && p != i {
                    fanin[i].push(p);
                    fanout[p].push(i);
                }
            }
        }
        for v in fanin.iter_mut().chain(fanout.iter_mut()) {
            v.sort_unstable();
            v.dedup();
        }
        Painter {
            nodes,
            fanin,
            fanout,
            class: nodes.iter().map(|x| lists.class(&x.op)).collect(),
            denylisted: nodes.iter().map(|x| lists.deny.contains(&x.op)).collect(),
            changeable: nodes
                .iter()
                .map(|x| x.on_npu && x.dtype == Some(DType::F32) && kernel_supports(&x.op, lowp))
                .collect(),
        }
    }

    /// Depth-first from `root` (always entered), entering the nodes `enter`
    /// accepts; returns the visited set in visit order.
    fn dfs(&self, root: usize, dir: Dir, enter: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = vec![root];
        let mut out = Vec::new();
        while let Some(i) = stack.pop() {
            if seen[i] {
                continue;
            }
            seen[i] = true;
            if i != root && !enter(i) {
                continue;
            }
            out.push(i);
            let next: &[Vec<usize>] = match dir {
                Dir::In => &self.fanin,
                Dir::Out => &self.fanout,
                Dir::Both => &self.fanin,
            };
            stack.extend(next[i].iter().copied().filter(|&j| !seen[j]));
            if matches!(dir, Dir::Both) {
                stack.extend(self.fanout[i].iter().copied().filter(|&j| !seen[j]));
            }
        }
        out
    }

    /// Topological order (Kahn); nodes on cycles (loops) come last in index
    /// order.
    fn topo(&self) -> Vec<usize> {
        let n = self.nodes.len();
        let mut indeg: Vec<usize> = self.fanin.iter().map(Vec::len).collect();
        let mut ready: Vec<usize> = (0..n).rev().filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        let mut placed = vec![false; n];
        while let Some(i) = ready.pop() {
            order.push(i);
            placed[i] = true;
            for &j in self.fanout[i].iter().rev() {
                indeg[j] -= 1;
                if indeg[j] == 0 {
                    ready.push(j);
                }
            }
        }
        order.extend((0..n).filter(|&i| !placed[i]));
        order
    }

    fn run(&self) -> Vec<bool> {
        let n = self.nodes.len();
        // 1. Allow list.
        let mut allow: Vec<bool> = (0..n)
            .map(|i| self.changeable[i] && self.class[i] == Class::Allow)
            .collect();

        // 2. Deny propagates forward through clear/infer nodes upstream of
        //    a deny or infer op.
        let mut upstream_of_deny_or_infer = vec![false; n];
        for root in 0..n {
            if !(self.denylisted[root] || self.class[root] == Class::Infer) {
                continue;
            }
            for i in self.dfs(root, Dir::In, |i| {
                !upstream_of_deny_or_infer[i] && self.class[i] == Class::Clear
            }) {
                upstream_of_deny_or_infer[i] = true;
            }
        }
        let mut deny = vec![false; n];
        for root in 0..n {
            if deny[root] || !self.denylisted[root] {
                continue;
            }
            for i in self.dfs(root, Dir::Out, |i| upstream_of_deny_or_infer[i] && !deny[i]) {
                deny[i] = true;
            }
        }
        // An allow node is never denied (TensorFlow: deny propagation only
        // enters clear/infer nodes).
        for i in 0..n {
            if deny[i] {
                allow[i] = false;
            }
        }

        // 3. Clear/infer nodes between allow nodes.
        let mut downstream_of_allow = vec![false; n];
        for root in (0..n).filter(|&i| allow[i]) {
            for i in self.dfs(root, Dir::Out, |i| {
                !downstream_of_allow[i]
                    && !allow[i]
                    && !deny[i]
                    && self.changeable[i]
                    && matches!(self.class[i], Class::Clear | Class::Infer)
            }) {
                downstream_of_allow[i] = true;
            }
        }
        let mut between = Vec::new();
        for root in (0..n).filter(|&i| allow[i]) {
            between.extend(self.dfs(root, Dir::In, |i| downstream_of_allow[i]));
        }
        for i in between {
            allow[i] = true;
        }

        // 4. Infer nodes following an allow input (and no denied one).
        for i in self.topo() {
            if !self.changeable[i] || deny[i] || allow[i] || self.class[i] != Class::Infer {
                continue;
            }
            let ins = &self.fanin[i];
            if ins.iter().any(|&p| allow[p]) && !ins.iter().any(|&p| deny[p]) {
                allow[i] = true;
            }
        }

        // 5. Clear nodes connected to allow nodes through clear nodes.
        let mut clear_prop = vec![false; n];
        for root in 0..n {
            if !allow[root] || clear_prop[root] {
                continue;
            }
            for i in self.dfs(root, Dir::Both, |i| {
                !deny[i]
                    && !allow[i]
                    && !clear_prop[i]
                    && self.changeable[i]
                    && self.class[i] == Class::Clear
            }) {
                if i != root {
                    clear_prop[i] = true;
                }
            }
        }
        for i in 0..n {
            allow[i] = (allow[i] || clear_prop[i]) && self.changeable[i];
        }
        allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, dtype: Option<DType>, inputs: &[usize]) -> Node {
        Node {
            op: op.into(),
            on_npu: true,
            dtype,
            inputs: inputs.to_vec(),
        }
    }
    const F: Option<DType> = Some(DType::F32);
    const H: Option<DType> = Some(DType::F16);
    const B: Option<DType> = Some(DType::BF16);

    fn mixed(nodes: &[Node]) -> Vec<Option<DType>> {
        paint(nodes, Mode::AllowMixPrecisionBf16, &Lists::default())
    }

    #[test]
    fn dense_chain_matmul_biasadd_relu_low_softmax_f32() {
        // x, W, b -> MatMul -> BiasAdd -> Relu -> Softmax -> _Retval
        let g = [
            node("_Arg", F, &[]),
            node("ReadVariableOp", F, &[]),
            node("ReadVariableOp", F, &[]),
            node("MatMul", F, &[0, 1]),
            node("BiasAdd", F, &[3, 2]),
            node("Relu", F, &[4]),
            node("Softmax", F, &[5]),
            node("_Retval", F, &[6]),
        ];
        let p = mixed(&g);
        assert_eq!(p, vec![None, None, None, B, B, B, None, None]);
        let p16 = paint(&g, Mode::AllowMixPrecisionFp16, &Lists::default());
        assert_eq!(p16[3], H);
        assert_eq!(p16[6], None);
    }

    #[test]
    fn other_modes_change_nothing() {
        let g = [node("_Arg", F, &[]), node("MatMul", F, &[0, 0])];
        for m in [
            Mode::MustKeepOriginDtype,
            Mode::AllowFp32ToBf16,
            Mode::AllowFp32ToFp16,
        ] {
            assert_eq!(paint(&g, m, &Lists::default()), vec![None, None]);
        }
        assert_eq!(
            paint(&g, Mode::ForceFp32, &Lists::default()),
            vec![None, None]
        );
    }

    #[test]
    fn deny_propagates_through_clear_into_infer() {
        // Exp (deny) -> Relu (clear) -> Add (infer) <- MatMul (allow)
        // Relu is upstream of an infer op through clear nodes, so the deny
        // reaches it; the Add has a denied input and stays f32.
        let g = [
            node("_Arg", F, &[]),
            node("Exp", F, &[0]),
            node("Relu", F, &[1]),
            node("MatMul", F, &[0, 0]),
            node("AddV2", F, &[2, 3]),
        ];
        let p = mixed(&g);
        assert_eq!(p, vec![None, None, None, B, None]);
        // Without the deny the Add follows the MatMul, and the clear Neg
        // feeding the now low-precision Add goes with it (step 5).
        let g2 = [
            node("_Arg", F, &[]),
            node("Neg", F, &[0]),
            node("MatMul", F, &[0, 0]),
            node("AddV2", F, &[1, 2]),
        ];
        assert_eq!(mixed(&g2), vec![None, B, B, B]);
    }

    #[test]
    fn clear_passes_through_between_allow_nodes() {
        // MatMul -> Reshape -> Transpose -> MatMul: the clear nodes in
        // between go low precision; a clear node after a deny stays f32.
        let g = [
            node("_Arg", F, &[]),
            node("MatMul", F, &[0, 0]),
            node("Reshape", F, &[1]),
            node("Transpose", F, &[2]),
            node("MatMul", F, &[3, 0]),
            node("Exp", F, &[4]),
            node("Identity", F, &[5]),
        ];
        assert_eq!(mixed(&g), vec![None, B, B, B, B, None, None]);
    }

    #[test]
    fn infer_between_allow_nodes_and_following_chain() {
        // MatMul -> Tanh -> MatMul: Tanh (infer) between allow nodes; then
        // BiasAdd -> AddV2 follow the second MatMul.
        let g = [
            node("_Arg", F, &[]),
            node("MatMul", F, &[0, 0]),
            node("Tanh", F, &[1]),
            node("MatMul", F, &[2, 0]),
            node("BiasAdd", F, &[3, 0]),
            node("AddV2", F, &[4, 0]),
            node("Log", F, &[5]),
        ];
        assert_eq!(mixed(&g), vec![None, B, B, B, B, B, None]);
    }

    #[test]
    fn only_f32_npu_nodes_with_kernels_change() {
        let mut cpu = node("MatMul", F, &[0, 0]);
        cpu.on_npu = false;
        let g = [
            node("_Arg", F, &[]),
            cpu,
            node("MatMul", Some(DType::F64), &[0, 0]),
            node("MatMul", H, &[0, 0]),
            node("NoSuchOpAnywhere", F, &[0]),
        ];
        assert_eq!(mixed(&g), vec![None; 5]);
        // A clear node next to a CPU MatMul is not pulled in.
        let mut cpu = node("MatMul", F, &[0, 0]);
        cpu.on_npu = false;
        let g = [node("_Arg", F, &[]), cpu, node("Relu", F, &[1])];
        assert_eq!(mixed(&g), vec![None; 3]);
    }

    #[test]
    fn user_lists_are_honoured() {
        let mut l = Lists::default();
        l.remove(Class::Allow, "MatMul");
        let g = [node("_Arg", F, &[]), node("MatMul", F, &[0, 0])];
        assert_eq!(paint(&g, Mode::AllowMixPrecisionBf16, &l), vec![None, None]);
        l.add(Class::Allow, "Exp");
        let g = [node("_Arg", F, &[]), node("Exp", F, &[0])];
        assert_eq!(paint(&g, Mode::AllowMixPrecisionBf16, &l), vec![None, B]);
    }

    #[test]
    fn loops_do_not_hang() {
        // A cycle (while-loop back edge) through clear and allow nodes.
        let g = [
            node("Merge", F, &[3]),
            node("MatMul", F, &[0, 0]),
            node("Relu", F, &[1]),
            node("Identity", F, &[2]),
        ];
        assert_eq!(mixed(&g), vec![None, B, B, B]);
    }

    #[test]
    fn force_fp32_lifts_f16_nodes_and_casts() {
        // x(f32) -> Cast(f32->f16) -> MatMul -> Relu -> MatMul -> Cast(f16->f32)
        // plus an f16 variable read (fixed dtype) and an f16 op on the CPU.
        let mut cpu_relu = node("Relu", H, &[4]);
        cpu_relu.on_npu = false;
        let g = [
            node("_Arg", F, &[]),
            node("Cast", H, &[]),
            node("ReadVariableOp", H, &[]),
            node("MatMul", H, &[1, 2]),
            node("Relu", H, &[3]),
            node("MatMul", H, &[4, 2]),
            node("Cast", F, &[]),
            cpu_relu,
            node("Softmax", B, &[5]),
        ];
        let p = paint(&g, Mode::ForceFp32, &Lists::default());
        assert_eq!(p, vec![None, F, None, F, F, F, None, None, F]);
    }
}
