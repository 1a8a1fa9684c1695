//! Slice, StridedSlice and StridedSliceGrad specs of the movement family
//! (their shape rules in `tfa_kernels::geometry::slice`).

use super::*;

/// A slice's plan; `identity`: the output is the input's buffer.
pub(super) struct SlicePlanned {
    plan: SlicePlan,
    out: OutputPlan,
}

impl Outputs for SlicePlanned {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

/// `begin`, `end` and `strides` (inputs `first`..`first + 3`), which must be
/// 1-D, as TensorFlow's `ValidateStridedSliceOp` reads them.
fn strided_args(ctx: &dyn OpContext, first: usize) -> Result<[Vec<i64>; 3]> {
    let (b, e, s) = (
        ctx.input(first)?,
        ctx.input(first + 1)?,
        ctx.input(first + 2)?,
    );
    if b.rank() != 1 || e.rank() != 1 || s.rank() != 1 {
        return Err(Error::InvalidArgument(format!(
            "Expected begin, end, and strides to be 1D equal size tensors, but got shapes {}, {}, and {} instead.",
            fmt_shape(&b.shape),
            fmt_shape(&e.shape),
            fmt_shape(&s.shape)
        )));
    }
    Ok([b.to_i64_vec()?, e.to_i64_vec()?, s.to_i64_vec()?])
}

pub(super) fn slice_masks(ctx: &dyn OpContext) -> Result<SliceMasks> {
    let a = ctx.attrs();
    Ok(SliceMasks {
        begin: a.int("begin_mask")?,
        end: a.int("end_mask")?,
        ellipsis: a.int("ellipsis_mask")?,
        new_axis: a.int("new_axis_mask")?,
        shrink_axis: a.int("shrink_axis_mask")?,
    })
}

pub(super) fn strided_slice_plan(ctx: &dyn OpContext) -> Result<SlicePlanned> {
    let x = ctx.input(0)?;
    let [b, e, s] = strided_args(ctx, 1)?;
    let plan = geometry::strided_slice_plan(&x.shape, &b, &e, &s, slice_masks(ctx)?)?;
    let out = OutputPlan::new(x.dtype, plan.final_shape.clone());
    Ok(SlicePlanned { plan, out })
}

/// StridedSlice and Slice: a copy of the planned elements, or the input's
/// buffer itself.
pub(super) fn slice_run(ctx: &dyn OpContext, p: &SlicePlanned) -> Result<()> {
    if p.plan.is_identity {
        return ctx.alias_output(0, 0, &p.out.shape);
    }
    slice::strided_slice(&ctx.input(0)?, &p.plan, &mut allocate(ctx, 0, &p.out)?)
}

/// StridedSliceGrad(shape, begin, end, strides, dy): `dy` scattered into
/// zeros of `shape` where StridedSlice of that shape would read.
pub(super) fn strided_slice_grad_plan(ctx: &dyn OpContext) -> Result<SlicePlanned> {
    let shape_t = ctx.input(0)?;
    let shape = crate::families::shape_vector(&shape_t, || {
        format!(
            "shape must be 1-D, got shape.shape = {}",
            fmt_shape(&shape_t.shape)
        )
    })?;
    let [b, e, s] = strided_args(ctx, 1)?;
    let plan = geometry::strided_slice_plan(&shape, &b, &e, &s, slice_masks(ctx)?)?;
    let dy = ctx.input(4)?;
    if dy.shape != plan.final_shape {
        return Err(Error::InvalidArgument(format!(
            "shape of dy was {} instead of {}",
            fmt_shape(&dy.shape),
            fmt_shape(&plan.final_shape)
        )));
    }
    Ok(SlicePlanned {
        plan,
        out: OutputPlan::new(dy.dtype, shape),
    })
}

pub(super) fn strided_slice_grad_run(ctx: &dyn OpContext, p: &SlicePlanned) -> Result<()> {
    slice::strided_slice_grad(&ctx.input(4)?, &p.plan, &mut allocate(ctx, 0, &p.out)?)
}

/// Slice(input, begin, size): TensorFlow's `SharedSliceValidation` checks and
/// messages; size -1 takes the rest of the dimension.
pub(super) fn slice_plan(ctx: &dyn OpContext) -> Result<SlicePlanned> {
    let x = ctx.input(0)?;
    let (b, z) = (ctx.input(1)?, ctx.input(2)?);
    let r = x.rank();
    if b.rank() != 1 || z.rank() != 1 || b.shape[0] != r || z.shape[0] != r {
        return Err(Error::InvalidArgument(format!(
            "Expected begin and size arguments to be 1-D tensors of size {r}, but got shapes {} and {} instead.",
            fmt_shape(&b.shape),
            fmt_shape(&z.shape)
        )));
    }
    let begin = b.to_i64_vec()?;
    let mut size = z.to_i64_vec()?;
    let mut is_identity = true;
    for i in 0..r {
        let dim = x.shape[i] as i64;
        if size[i] == -1 {
            size[i] = dim - begin[i];
        }
        let (bi, si) = (begin[i], size[i]);
        if dim == 0 {
            if bi != 0 || si != 0 {
                return Err(Error::InvalidArgument(format!(
                    "Expected begin[{i}] == 0 (got {bi}) and size[{i}] == 0 (got {si}) when input.dim_size({i}) == 0"
                )));
            }
        } else {
            if !(0..=dim).contains(&bi) {
                return Err(Error::InvalidArgument(format!(
                    "Expected begin[{i}] in [0, {dim}], but got {bi}"
                )));
            }
            if si < 0 || bi + si > dim {
                return Err(Error::InvalidArgument(format!(
                    "Expected size[{i}] in [0, {}], but got {si}",
                    dim - bi
                )));
            }
        }
        is_identity &= bi == 0 && si == dim;
    }
    let out_shape: Vec<usize> = size.iter().map(|&s| s as usize).collect();
    let plan = SlicePlan {
        begin,
        stride: vec![1; r],
        processing_shape: out_shape.clone(),
        final_shape: out_shape.clone(),
        is_identity,
    };
    Ok(SlicePlanned {
        plan,
        out: OutputPlan::new(x.dtype, out_shape),
    })
}
