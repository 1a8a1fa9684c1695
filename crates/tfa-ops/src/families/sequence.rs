//! Range: `tf.range` of int64 and float types (the position vectors of
//! Keras ops such as `sparsemax`, the flat indices of `top_k`'s gradient).
//! int32 Range stays with TensorFlow's device-agnostic host-memory kernel.

use super::spec_op;
use crate::spec::allocate;
use crate::{Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorView};
use tfa_kernels::geometry::sequence::{range_len, RangeArgs};
use tfa_kernels::host::sequence::range;

/// One scalar input (a 1-element vector is taken too, as TensorFlow does).
fn scalar<T: tfa_core::Element>(t: &TensorView, name: &str) -> Result<T> {
    if !(t.rank() == 0 || (t.rank() == 1 && t.shape[0] == 1)) {
        return Err(Error::InvalidArgument(format!(
            "{name} must be a scalar, not shape {}",
            fmt_shape(&t.shape)
        )));
    }
    Ok(t.data::<T>()?[0])
}

/// The arguments (read once) and the output.
fn range_plan(ctx: &dyn OpContext) -> Result<(RangeArgs, OutputPlan)> {
    let (s, l, d) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    macro_rules! args {
        ($v:ident, $t:ty) => {
            RangeArgs::$v(
                scalar::<$t>(&s, "start")?,
                scalar::<$t>(&l, "limit")?,
                scalar::<$t>(&d, "delta")?,
            )
        };
    }
    let args = match s.dtype {
        DType::I64 => args!(I64, i64),
        DType::F32 => args!(F32, f32),
        DType::F64 => args!(F64, f64),
        DType::F16 => args!(F16, tfa_core::f16),
        DType::BF16 => args!(BF16, tfa_core::bf16),
        other => return Err(Error::Unimplemented(format!("Range of {other}"))),
    };
    let n = range_len(&args)?;
    Ok((args, OutputPlan::new(s.dtype, vec![n])))
}

pub(crate) const OPS: &[OpDef] = &[spec_op!(
    plan: |c| range_plan(c) => (RangeArgs, OutputPlan),
    run: |c, p| range(&p.0, &mut allocate(c, 0, &p.1)?),
    def: {
        name: "Range",
        family: Family::Movement,
        summary: "`start, start + delta, ...` below `limit` (scalars in host memory), length and values computed in the element type as TensorFlow CPU does (int32: TensorFlow's own host-memory kernel)",
        constraints: &[TypeConstraint {
            attr: "Tidx",
            types: &[DType::I64, DType::F32, DType::F64, DType::F16, DType::BF16],
        }],
        attrs: &[],
        host_memory: &["start", "limit", "delta"],
        int32_host_memory: &[],
    }
)];
