//! One file per op family; each exposes `OPS`.

mod cast;
mod complex;
pub(crate) mod conv;
mod elementwise;
pub(crate) mod fused;
mod inplace;
mod loss;
mod maps;
mod matmul;
mod mirror_pad;
mod movement;
pub(crate) mod pool;
mod random;
mod rearrange;
mod reduce;
mod resize;
mod scale_translate;
mod scan;
mod segment;
mod sequence;
mod topk;
mod volume;

use crate::OpDef;
use tfa_core::DType;

pub(crate) fn all() -> Vec<&'static [OpDef]> {
    vec![
        elementwise::OPS,
        maps::OPS,
        cast::OPS,
        complex::OPS,
        matmul::OPS,
        conv::OPS,
        pool::OPS,
        volume::OPS,
        reduce::OPS,
        scan::OPS,
        topk::OPS,
        sequence::OPS,
        segment::OPS,
        loss::OPS,
        movement::OPS,
        mirror_pad::OPS,
        rearrange::OPS,
        resize::OPS,
        scale_translate::OPS,
        inplace::OPS,
        fused::OPS,
        random::OPS,
    ]
}

pub(crate) fn custom_ops() -> &'static [crate::registry::CustomOpDef] {
    static ALL: std::sync::OnceLock<Vec<crate::registry::CustomOpDef>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| [fused::CUSTOM_OPS, matmul::CUSTOM_OPS].concat())
}

/// Floating-point types.
pub(crate) const FLOAT: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16];

/// Numeric types for arithmetic on the NPU. int32 is absent on purpose:
/// TensorFlow runs int32 (shape) arithmetic on its own host-memory kernels.
pub(crate) const NUMERIC_NO_I32: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];

/// `a` then `b` (`N` = their total length, at least 1), for type and
/// attribute lists built from others.
pub(crate) const fn concat<T: Copy, const N: usize>(a: &[T], b: &[T]) -> [T; N] {
    let mut out = [if a.is_empty() { b[0] } else { a[0] }; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// `NUMERIC_NO_I32` and complex64: the arithmetic complex gradients emit.
pub(crate) const ARITH_C64: &[DType] =
    &concat::<DType, { NUMERIC_NO_I32.len() + 1 }>(NUMERIC_NO_I32, DType::COMPLEX);

/// Every real type and complex64 (casts; byte movers that complex tensors
/// pass through).
pub(crate) const ALL_C64: &[DType] =
    &concat::<DType, { DType::ALL.len() + 1 }>(DType::ALL, DType::COMPLEX);

/// Real number types, int32 included: for ops TensorFlow has no host-memory
/// int32 kernel for (Relu, Relu6).
pub(crate) const REAL: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];

/// Integer types, int32 included: TensorFlow has no host-memory int32
/// kernel for the bitwise ops (random-seed arithmetic in training graphs).
pub(crate) const INTEGER: &[DType] = &[
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
];

/// Signed numeric types (Neg, Square), int32 left to TensorFlow as above.
pub(crate) const SIGNED_NO_I32: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I64,
];

/// Every type, int32 left to TensorFlow's host-memory kernels.
pub(crate) const ALL_NO_I32: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::I64,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
];

/// Index types (`Tidx`, `Tperm`, `Tindices`...).
pub(crate) const INDEX: &[DType] = &[DType::I32, DType::I64];

/// A 1-D integer tensor's values; `not_vector(rank)` words the error when it
/// is not 1-D.
pub(crate) fn int_vector(
    t: &tfa_core::TensorView,
    not_vector: impl FnOnce(usize) -> String,
) -> tfa_core::Result<Vec<i64>> {
    if t.rank() != 1 {
        return Err(tfa_core::Error::InvalidArgument(not_vector(t.rank())));
    }
    t.to_i64_vec()
}

/// A scalar integer tensor's value; `not_scalar(shape)` words the error
/// (given the shape as TensorFlow prints it) when it is not a scalar.
pub(crate) fn int_scalar(
    t: &tfa_core::TensorView,
    not_scalar: impl FnOnce(String) -> String,
) -> tfa_core::Result<i64> {
    if t.rank() != 0 {
        return Err(tfa_core::Error::InvalidArgument(not_scalar(
            tfa_core::shape::fmt_shape(&t.shape),
        )));
    }
    Ok(t.to_i64_vec()?[0])
}

/// A shape given as a 1-D integer tensor (`input_sizes`, `shape`, ...):
/// `not_vector` words the error when it is not 1-D.
pub(crate) fn shape_vector(
    t: &tfa_core::TensorView,
    not_vector: impl FnOnce() -> String,
) -> tfa_core::Result<Vec<usize>> {
    if t.rank() != 1 {
        return Err(tfa_core::Error::InvalidArgument(not_vector()));
    }
    t.to_i64_vec()?
        .into_iter()
        .map(|d| {
            usize::try_from(d).map_err(|_| {
                tfa_core::Error::InvalidArgument(format!("Dimension {d} must be >= 0"))
            })
        })
        .collect()
}

/// Declares an op whose only type attribute is `T`, as spec + kernels
/// (`crate::spec`): inline (`plan: |c| ... => Plan, run: |c, p| ...`, the
/// plan a type implementing `spec::Outputs`) or by a type (`spec: S`, `S`
/// implementing `Spec` and the host backend's `Kernel`). Attributes are
/// listed inline (`attrs: ["axis": Int32]`) or shared (`attr_list: X`).
macro_rules! op_t {
    ($name:literal, $family:ident, $types:expr, $summary:literal, plan: |$pc:ident| $plan:expr => $P:ty, run: |$c:ident, $p:ident| $body:expr) => {
        op_t!($name, $family, $types, $summary, attr_list: &[], plan: |$pc| $plan => $P, run: |$c, $p| $body)
    };
    ($name:literal, $family:ident, $types:expr, $summary:literal, attrs: [$($a:literal: $k:ident),*], plan: |$pc:ident| $plan:expr => $P:ty, run: |$c:ident, $p:ident| $body:expr) => {
        op_t!($name, $family, $types, $summary,
              attr_list: &[$($crate::AttrSpec::new($a, $crate::AttrKind::$k)),*],
              plan: |$pc| $plan => $P, run: |$c, $p| $body)
    };
    ($name:literal, $family:ident, $types:expr, $summary:literal, attr_list: $attrs:expr, plan: |$pc:ident| $plan:expr => $P:ty, run: |$c:ident, $p:ident| $body:expr) => {
        $crate::families::spec_op!(
            plan: |$pc| $plan => $P,
            run: |$c, $p| $body,
            def: {
                name: $name,
                family: $crate::Family::$family,
                summary: $summary,
                constraints: &[$crate::TypeConstraint { attr: "T", types: $types }],
                attrs: $attrs,
                host_memory: &[],
                int32_host_memory: &[],
            }
        )
    };
    ($name:literal, $family:ident, $types:expr, $summary:literal, attr_list: $attrs:expr, spec: $spec:ty) => {
        $crate::families::spec_op!(
            spec: $spec,
            def: {
                name: $name,
                family: $crate::Family::$family,
                summary: $summary,
                constraints: &[$crate::TypeConstraint { attr: "T", types: $types }],
                attrs: $attrs,
                host_memory: &[],
                int32_host_memory: &[],
            }
        )
    };
    ($name:literal, $family:ident, $types:expr, $summary:literal, attrs: [$($a:literal: $k:ident),*], spec: $spec:ty) => {
        op_t!($name, $family, $types, $summary,
              attr_list: &[$($crate::AttrSpec::new($a, $crate::AttrKind::$k)),*], spec: $spec)
    };
}
pub(crate) use op_t;

/// An `OpDef` (every field but the shape rule, kernels and precision
/// properties in `def`; those are set after it: `.amp(Class::Infer)`) for a
/// spec: a type (`spec: S`, implementing `Spec` and the host backend's
/// `Kernel`), or declared inline (`plan: |c| ... => Plan, run: |c, p| ...`:
/// the plan a type implementing `spec::Outputs`, the host kernel on it).
macro_rules! spec_op {
    (spec: $spec:ty, def: { $($field:ident: $value:expr),* $(,)? }) => {
        $crate::OpDef {
            $($field: $value,)*
            shape_rule: $crate::spec::shape_rule::<$spec>,
            host: Some($crate::spec::planned::<$spec, $crate::spec::Host>),
            cuda: None,
            amp: None,
            native_low_precision: false,
        }
    };
    (plan: |$pc:ident| $plan:expr => $P:ty, run: |$c:ident, $p:ident| $body:expr, def: { $($field:ident: $value:expr),* $(,)? }) => {{
        struct Op;
        impl $crate::spec::Spec for Op {
            type Plan = $P;
            fn plan($pc: &dyn $crate::OpContext) -> tfa_core::Result<$P> {
                $plan
            }
            fn outputs(p: &$P) -> Vec<$crate::OutputPlan> {
                $crate::spec::Outputs::outputs(p)
            }
        }
        impl $crate::spec::Kernel<Op> for $crate::spec::Host {
            fn run($c: &dyn $crate::OpContext, $p: &$P) -> tfa_core::Result<()> {
                $body
            }
        }
        $crate::families::spec_op!(spec: Op, def: { $($field: $value),* })
    }};
}
pub(crate) use spec_op;
