//! Slice, StridedSlice and StridedSliceGrad kernels of the movement family.

use super::*;

pub(super) fn strided_slice_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let (b, e, s) = (ctx.input(1)?, ctx.input(2)?, ctx.input(3)?);
    if b.rank() != 1 || e.rank() != 1 || s.rank() != 1 {
        return Err(Error::InvalidArgument(format!(
            "Expected begin, end, and strides to be 1D equal size tensors, but got shapes {}, {}, and {} instead.",
            fmt_shape(&b.shape),
            fmt_shape(&e.shape),
            fmt_shape(&s.shape)
        )));
    }
    let a = ctx.attrs();
    let masks = slice::SliceMasks {
        begin: a.int("begin_mask")?,
        end: a.int("end_mask")?,
        ellipsis: a.int("ellipsis_mask")?,
        new_axis: a.int("new_axis_mask")?,
        shrink_axis: a.int("shrink_axis_mask")?,
    };
    let plan = slice::strided_slice_plan(
        &x.shape,
        &b.to_i64_vec()?,
        &e.to_i64_vec()?,
        &s.to_i64_vec()?,
        masks,
    )?;
    if plan.is_identity {
        return ctx.alias_output(0, 0, &plan.final_shape);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &plan.final_shape)?;
    slice::strided_slice(&x, &plan, &mut out)
}

pub(super) fn slice_masks(ctx: &dyn OpContext) -> Result<slice::SliceMasks> {
    let a = ctx.attrs();
    Ok(slice::SliceMasks {
        begin: a.int("begin_mask")?,
        end: a.int("end_mask")?,
        ellipsis: a.int("ellipsis_mask")?,
        new_axis: a.int("new_axis_mask")?,
        shrink_axis: a.int("shrink_axis_mask")?,
    })
}

/// StridedSliceGrad(shape, begin, end, strides, dy): `dy` scattered into
/// zeros of `shape` where StridedSlice of that shape would read.
pub(super) fn strided_slice_grad_kernel(ctx: &dyn OpContext) -> Result<()> {
    let shape_t = ctx.input(0)?;
    let shape = crate::families::shape_vector(&shape_t, || {
        format!(
            "shape must be 1-D, got shape.shape = {}",
            fmt_shape(&shape_t.shape)
        )
    })?;
    let (b, e, s) = (ctx.input(1)?, ctx.input(2)?, ctx.input(3)?);
    if b.rank() != 1 || e.rank() != 1 || s.rank() != 1 {
        return Err(Error::InvalidArgument(format!(
            "Expected begin, end, and strides to be 1D equal size tensors, but got shapes {}, {}, and {} instead.",
            fmt_shape(&b.shape),
            fmt_shape(&e.shape),
            fmt_shape(&s.shape)
        )));
    }
    let plan = slice::strided_slice_plan(
        &shape,
        &b.to_i64_vec()?,
        &e.to_i64_vec()?,
        &s.to_i64_vec()?,
        slice_masks(ctx)?,
    )?;
    let dy = ctx.input(4)?;
    if dy.shape != plan.final_shape {
        return Err(Error::InvalidArgument(format!(
            "shape of dy was {} instead of {}",
            fmt_shape(&dy.shape),
            fmt_shape(&plan.final_shape)
        )));
    }
    let mut out = ctx.allocate_output(0, dy.dtype, &shape)?;
    slice::strided_slice_grad(&dy, &plan, &mut out)
}

/// Slice(input, begin, size): TensorFlow's `SharedSliceValidation` checks and
/// messages; size -1 takes the rest of the dimension.
pub(super) fn slice_kernel(ctx: &dyn OpContext) -> Result<()> {
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
    if is_identity {
        return ctx.alias_output(0, 0, &out_shape);
    }
    let plan = slice::SlicePlan {
        begin,
        stride: vec![1; r],
        processing_shape: out_shape.clone(),
        final_shape: out_shape.clone(),
        is_identity,
    };
    let mut out = ctx.allocate_output(0, x.dtype, &out_shape)?;
    slice::strided_slice(&x, &plan, &mut out)
}
