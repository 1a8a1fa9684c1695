//! Concat, Split, SplitV, Pack and Unpack kernels of the movement family.

use super::*;

/// ConcatV2 and Pack: the axis and the output.
pub(super) fn concat_plan(ctx: &dyn OpContext) -> Result<(usize, OutputPlan)> {
    let n = ctx.num_inputs() - 1;
    let axis_t = ctx.input(n)?;
    // TensorFlow still takes the legacy length-1 vector as a scalar.
    if axis_t.rank() > 1 || axis_t.num_elements() != 1 {
        return Err(Error::InvalidArgument(format!(
            "axis tensor should be a scalar integer, but got shape {}",
            fmt_shape(&axis_t.shape)
        )));
    }
    let axis = axis_t.to_i64_vec()?[0];
    let inputs = (0..n).map(|i| ctx.input(i)).collect::<Result<Vec<_>>>()?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let (axis, shape) = geometry::concat_shape(&shapes, axis)?;
    Ok((axis, OutputPlan::new(inputs[0].dtype, shape)))
}

pub(super) fn concat_run(ctx: &dyn OpContext, (axis, out): &(usize, OutputPlan)) -> Result<()> {
    let n = ctx.num_inputs() - 1;
    let inputs = (0..n).map(|i| ctx.input(i)).collect::<Result<Vec<_>>>()?;
    slice::concat(&inputs, *axis, &mut allocate(ctx, 0, out)?)
}

/// Split, SplitV, Unpack: input `source` cut along `axis` into `outs`
/// (`alias`: one piece, the input itself).
pub(super) struct SplitPlan {
    source: usize,
    axis: usize,
    outs: Vec<OutputPlan>,
    alias: bool,
}

impl Outputs for SplitPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        self.outs.clone()
    }
}

/// Input `source` (`x`) along `axis` in pieces of `sizes` (outputs 0..).
fn split_plan(
    source: usize,
    x: &TensorView,
    axis: i64,
    sizes: &[usize],
    keep_axis: bool,
) -> Result<SplitPlan> {
    let rank = x.rank() as i64;
    if !(-rank..rank).contains(&axis) {
        return Err(Error::InvalidArgument(format!(
            "-input rank(-{rank}) <= split_dim < input rank ({rank}), but got {axis}"
        )));
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let outs = sizes
        .iter()
        .map(|&n| {
            let mut shape = x.shape.clone();
            shape[axis] = n;
            if !keep_axis {
                shape.remove(axis);
            }
            OutputPlan::new(x.dtype, shape)
        })
        .collect();
    Ok(SplitPlan {
        source,
        axis,
        outs,
        alias: false,
    })
}

pub(super) fn split_run(ctx: &dyn OpContext, p: &SplitPlan) -> Result<()> {
    if p.alias {
        return ctx.alias_output(0, p.source, &p.outs[0].shape);
    }
    let x = ctx.input(p.source)?;
    // `split` only needs each output's element count.
    let mut outs = (p.outs.iter().enumerate())
        .map(|(k, o)| allocate(ctx, k, o))
        .collect::<Result<Vec<_>>>()?;
    slice::split(&x, p.axis, &mut outs)
}

/// `split_dim` as TensorFlow's split kernels read it: an int32 (the op's
/// type), negative counting from the end.
pub(super) fn split_dim(dim: &TensorView, rank: usize) -> Result<(i64, i64)> {
    let orig = dim.to_i64_vec()?[0];
    let axis = if orig < 0 { orig + rank as i64 } else { orig };
    if !(0..rank as i64).contains(&axis) {
        return Err(Error::InvalidArgument(format!(
            "-input rank(-{rank}) <= split_dim < input rank ({rank}), but got {orig}"
        )));
    }
    Ok((orig, axis))
}

/// Split(split_dim, value): `num_split` equal pieces.
pub(super) fn split_op_plan(ctx: &dyn OpContext) -> Result<SplitPlan> {
    let (dim, x) = (ctx.input(0)?, ctx.input(1)?);
    if dim.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "split_dim must be a scalar but has rank {}",
            dim.rank()
        )));
    }
    let (orig, axis) = split_dim(&dim, x.rank())?;
    let n = usize::try_from(ctx.attrs().int("num_split")?).unwrap_or(0);
    if n == 0 {
        return Err(Error::InvalidArgument(format!(
            "Number of ways to split should be > 0, but got {n}"
        )));
    }
    let len = x.shape[axis as usize];
    if len % n != 0 {
        return Err(Error::InvalidArgument(format!(
            "Number of ways to split should evenly divide the split dimension, but got split_dim {axis} (size = {len}) and num_split {n}"
        )));
    }
    split_plan(1, &x, orig, &vec![len / n; n], true)
}

/// The sizes of SplitV's pieces, with TensorFlow's checks, messages and
/// arithmetic: `size_splits` summed in its own type (int32 or int64), which
/// wraps around as TensorFlow's sum does, one -1 standing for the rest.
/// Sizes that pass those checks yet do not add up to `len` (only a wrapped
/// sum gets there) make TensorFlow allocate an output of the huge size and
/// fail for lack of memory: ResourceExhausted here too, without trying.
pub(super) fn split_v_sizes(sizes: &[i64], wide: bool, len: usize) -> Result<Vec<usize>> {
    let wrap = |v: i128| -> i64 {
        if wide {
            v as i64
        } else {
            v as i32 as i64
        }
    };
    let len = len as i64;
    let mut unknown = None;
    let mut determined = 0i64;
    for (d, &size) in sizes.iter().enumerate() {
        if size == -1 {
            if unknown.is_some() {
                return Err(Error::InvalidArgument(
                    "There can only be one -1 in the input.".into(),
                ));
            }
            unknown = Some(d);
        } else {
            determined = wrap(determined as i128 + size as i128);
        }
    }
    let fits = match unknown {
        None => determined == len,
        Some(_) => determined <= len,
    };
    if !fits {
        return Err(Error::InvalidArgument(format!(
            "Determined shape must either match input shape along split_dim exactly if fully specified, or be less than the size of the input along split_dim if not fully specified.  Got: {determined}"
        )));
    }
    let mut sizes = sizes.to_vec();
    if let Some(d) = unknown {
        sizes[d] = wrap(len as i128 - determined as i128);
    }
    if let Some((i, &size)) = sizes.iter().enumerate().find(|(_, &v)| v < 0) {
        return Err(Error::InvalidArgument(format!(
            "Split size at index {i} must be >= 0. Got: {size}"
        )));
    }
    if sizes.iter().map(|&v| v as i128).sum::<i128>() != len as i128 {
        let (i, &size) = sizes
            .iter()
            .enumerate()
            .max_by_key(|(_, &v)| v)
            .unwrap_or((0, &0));
        return Err(Error::ResourceExhausted(format!(
            "SplitV output {i} would have size {size} along split_dim (size = {len}): size_splits add up to {determined} only by wrapping around"
        )));
    }
    Ok(sizes.iter().map(|&v| v as usize).collect())
}

/// SplitV(value, size_splits, split_dim): pieces of the given sizes (one
/// may be -1: the rest), TensorFlow's `SplitVOpBase` checks in its order.
pub(super) fn split_v_plan(ctx: &dyn OpContext) -> Result<SplitPlan> {
    let (x, sizes_t, dim) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let num_split = ctx.attrs().int("num_split")?;
    if dim.num_elements() != 1 {
        return Err(Error::InvalidArgument(
            "split_dim_tensor must have exactly one element.".into(),
        ));
    }
    if sizes_t.rank() != 1 || sizes_t.num_elements() as i64 != num_split {
        return Err(Error::InvalidArgument(format!(
            "size of the split_tensor must be 1-D and have the same elements as outputs got {} -D and {} elements",
            sizes_t.rank(),
            sizes_t.num_elements()
        )));
    }
    let (orig, axis) = split_dim(&dim, x.rank())?;
    let len = x.shape[axis as usize];
    let sizes = sizes_t.to_i64_vec()?;
    if num_split == 1 {
        if sizes[0] != len as i64 {
            return Err(Error::InvalidArgument(format!(
                "If there is only one output, it must have the same size as the input. Input size: {len} output size: {}",
                sizes[0]
            )));
        }
        return Ok(SplitPlan {
            source: 0,
            axis: axis as usize,
            outs: vec![OutputPlan::new(x.dtype, x.shape.clone())],
            alias: true,
        });
    }
    let sizes = split_v_sizes(&sizes, sizes_t.dtype == DType::I64, len)?;
    split_plan(0, &x, orig, &sizes, true)
}

/// Unpack (tf.unstack): `num` pieces of size 1 along `axis`, that dim dropped.
pub(super) fn unpack_plan(ctx: &dyn OpContext) -> Result<SplitPlan> {
    let x = ctx.input(0)?;
    let (axis, num) = (ctx.attrs().int("axis")?, ctx.attrs().int("num")?);
    let rank = x.rank() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&a) {
        return Err(Error::InvalidArgument(format!(
            "axis = {axis} not in [{}, {rank})",
            -rank
        )));
    }
    let len = x.shape[a as usize];
    if len as i64 != num {
        return Err(Error::InvalidArgument(format!(
            "Input shape axis {a} must equal {num}, got shape {}",
            fmt_shape(&x.shape)
        )));
    }
    split_plan(0, &x, axis, &vec![1; len], false)
}

pub(super) fn pack_plan(ctx: &dyn OpContext) -> Result<(usize, OutputPlan)> {
    let inputs = (0..ctx.num_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let (axis, shape) = geometry::pack_shape(&shapes, ctx.attrs().int("axis")?)?;
    Ok((axis, OutputPlan::new(inputs[0].dtype, shape)))
}

pub(super) fn pack_run(ctx: &dyn OpContext, (axis, out): &(usize, OutputPlan)) -> Result<()> {
    // Each input is the output's slice at one index of `axis`: a concat of
    // the inputs seen with a size-1 dim there.
    let views: Vec<TensorView> = (0..ctx.num_inputs())
        .map(|i| {
            let mut v = ctx.input(i)?;
            v.shape.insert(*axis, 1);
            Ok(v)
        })
        .collect::<Result<_>>()?;
    slice::concat(&views, *axis, &mut allocate(ctx, 0, out)?)
}
