//! The op declaration type and the table built from every family.

use crate::precision::Class;
use crate::spec::ShapeFn;
use crate::{families, AttrSpec, OpContext};
use std::sync::OnceLock;
use tfa_core::{DType, Result};

/// A kernel: reads inputs and attributes from the context, writes outputs.
pub type KernelFn = fn(&dyn OpContext) -> Result<()>;

/// Op families, one file each under `families/`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Elementwise,
    MatMul,
    Conv,
    Pool,
    Reduce,
    Movement,
    InPlace,
    Fused,
    Random,
    Loss,
    Image,
}

impl Family {
    pub fn title(self) -> &'static str {
        match self {
            Family::Elementwise => "Elementwise",
            Family::MatMul => "Matrix multiplication",
            Family::Conv => "Convolution",
            Family::Pool => "Pooling",
            Family::Reduce => "Reductions and softmax",
            Family::Movement => "Data movement",
            Family::InPlace => "In-place updates and new buffers",
            Family::Fused => "Fused ops (written by tf_adapter's graph pass)",
            Family::Random => "Stateless random numbers",
            Family::Loss => "Losses",
            Family::Image => "Image resizing",
        }
    }
}

/// A backend that runs NPU kernels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    Host,
    Cuda,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Host, Backend::Cuda];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Host => "host",
            Backend::Cuda => "cuda",
        }
    }
}

/// The types a type attribute (`T`, `SrcT`, ...) may take for this kernel.
#[derive(Copy, Clone, Debug)]
pub struct TypeConstraint {
    pub attr: &'static str,
    pub types: &'static [DType],
}

/// One TensorFlow op as tf_adapter supports it.
#[derive(Copy, Clone, Debug)]
pub struct OpDef {
    /// TensorFlow op type, e.g. `AddV2`.
    pub name: &'static str,
    pub family: Family,
    /// One line for docs/ops.md.
    pub summary: &'static str,
    pub constraints: &'static [TypeConstraint],
    /// Non-type attributes the kernel reads (type attributes come from `constraints`).
    pub attrs: &'static [AttrSpec],
    /// Arguments kept in host memory (shape vectors, axes).
    pub host_memory: &'static [&'static str],
    /// More arguments kept in host memory by the registrations whose first
    /// type attribute is int32 (all of them, for int32 ops TensorFlow has no
    /// DEFAULT-device kernel for: int32 data stays on the host, as on GPUs).
    pub int32_host_memory: &'static [&'static str],
    /// The op's shape rule (its spec, `crate::spec`): its outputs' dtypes
    /// and shapes from the node's input shapes, host-memory inputs and
    /// attributes, before any kernel runs.
    pub shape_rule: ShapeFn,
    pub host: Option<KernelFn>,
    pub cuda: Option<KernelFn>,
    /// Where the op stands in automatic mixed precision (`precision`'s
    /// allow / infer / clear / deny lists are built from these); `None`: on
    /// no list (keeps its dtype without holding its neighbours).
    pub amp: Option<Class>,
    /// Its kernels multiply in low precision themselves when
    /// `OpContext::matrix_lowp` asks (GEMM-based allow ops); other allow ops
    /// get their float32 inputs rounded for them.
    pub native_low_precision: bool,
}

impl OpDef {
    /// This op on AMP list `class` (a declaration's `.amp(Class::Infer)`).
    pub const fn amp(mut self, class: Class) -> OpDef {
        self.amp = Some(class);
        self
    }

    /// This op's kernels multiply in low precision themselves (see the field).
    pub const fn native_low_precision(mut self) -> OpDef {
        self.native_low_precision = true;
        self
    }

    pub fn kernel(&self, backend: Backend) -> Option<KernelFn> {
        match backend {
            Backend::Host => self.host,
            Backend::Cuda => self.cuda,
        }
    }

    /// Every combination of constraint types: one TensorFlow kernel
    /// registration each (the C API takes one type per attribute).
    pub fn registrations(&self) -> Vec<Vec<(&'static str, DType)>> {
        let mut combos: Vec<Vec<(&'static str, DType)>> = vec![Vec::new()];
        for c in self.constraints {
            combos = combos
                .into_iter()
                .flat_map(|prefix| {
                    c.types.iter().map(move |&t| {
                        let mut v = prefix.clone();
                        v.push((c.attr, t));
                        v
                    })
                })
                .collect();
        }
        combos
    }

    /// The arguments registration `combo` keeps in host memory.
    pub fn host_memory_for(&self, combo: &[(&'static str, DType)]) -> Vec<&'static str> {
        let mut v = self.host_memory.to_vec();
        if combo.first().is_some_and(|&(_, t)| t == DType::I32) {
            v.extend_from_slice(self.int32_host_memory);
        }
        v
    }

    /// Does this op accept `dtype` for its first type attribute?
    pub fn supports(&self, dtype: DType) -> bool {
        self.constraints
            .first()
            .is_none_or(|c| c.types.contains(&dtype))
    }
}

/// An op the NPU serves outside the kernel table (a Python composite in
/// `composites`, plugin glue in `glue`): its TensorFlow op type and what
/// serves it, one line for docs/ops.md.
#[derive(Copy, Clone, Debug)]
pub struct OutsideOp {
    pub name: &'static str,
    pub summary: &'static str,
}

/// An op tf_adapter defines itself (TensorFlow has none by that name): the
/// plugin registers its OpDef, in TensorFlow's `TF_OpDefinitionBuilder`
/// syntax, before the kernels. Its shape function leaves shapes unknown.
#[derive(Copy, Clone, Debug)]
pub struct CustomOpDef {
    pub name: &'static str,
    pub inputs: &'static [&'static str],
    pub outputs: &'static [&'static str],
    pub attrs: &'static [&'static str],
}

/// Every op tf_adapter defines.
pub fn custom_ops() -> &'static [CustomOpDef] {
    families::custom_ops()
}

/// The whole table, in family order then declaration order.
pub fn table() -> &'static [OpDef] {
    static TABLE: OnceLock<Vec<OpDef>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut v: Vec<OpDef> = families::all().into_iter().flatten().copied().collect();
        v.sort_by_key(|d| d.family);
        v
    })
}

/// Index in `table()` and declaration of op type `name`.
pub fn find(name: &str) -> Option<(usize, &'static OpDef)> {
    table().iter().enumerate().find(|(_, d)| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn each_op_is_declared_once() {
        let mut seen = HashSet::new();
        for d in table() {
            assert!(seen.insert(d.name), "{} is declared twice", d.name);
        }
    }

    #[test]
    fn registrations_are_unique_and_complete() {
        for d in table() {
            assert!(
                d.host.is_some() || d.cuda.is_some(),
                "{} has no kernel",
                d.name
            );
            let regs = d.registrations();
            let want: usize = d.constraints.iter().map(|c| c.types.len()).product();
            assert_eq!(regs.len(), want, "{}", d.name);
            let unique: HashSet<_> = regs.iter().collect();
            assert_eq!(
                unique.len(),
                regs.len(),
                "{} registers a type twice",
                d.name
            );
        }
    }

    #[test]
    fn int32_stays_with_tensorflows_host_memory_kernels() {
        // TensorFlow registers DEVICE_DEFAULT int32 kernels (host memory) for
        // these; an NPU int32 kernel would shadow them and move shape math.
        for name in [
            "Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum", "Neg", "Square", "AddN",
            "Identity", "Reshape", "Slice",
        ] {
            let (_, d) = find(name).unwrap();
            assert!(!d.supports(DType::I32), "{name} must not take int32");
        }
    }

    #[test]
    fn int32_host_memory_only_on_int32_registrations() {
        for d in table() {
            if d.int32_host_memory.is_empty() {
                continue;
            }
            assert!(d.supports(DType::I32), "{}", d.name);
            for combo in d.registrations() {
                let n = d.host_memory_for(&combo).len();
                let extra = d.int32_host_memory.len();
                let want = d.host_memory.len() + if combo[0].1 == DType::I32 { extra } else { 0 };
                assert_eq!(n, want, "{} {combo:?}", d.name);
            }
        }
    }
}
