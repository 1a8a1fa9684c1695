//! Ops that move or re-view data. Identity and Reshape never copy: the output
//! is the input's buffer.

use super::{int_scalar, op_t, ALL_C64, ALL_NO_I32, INDEX, REAL};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::{fmt_shape, num_elements};
use tfa_core::{DType, Error, Result, Shape, TensorView};
use tfa_kernels::host::scatter::{self, ScatterOp};
use tfa_kernels::host::{gather, slice, transpose};

/// Every type, int32 included: TensorFlow has no DEVICE_DEFAULT int32 kernel
/// for these ops (int32 tensors still live in host memory on the device).
const ALL: &[DType] = DType::ALL;
/// TensorFlow has DEVICE_DEFAULT (host-memory) Unpack kernels for int32/int64.
const UNPACK: &[DType] = &[
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I8,
    DType::I16,
    DType::U8,
    DType::U16,
    DType::U32,
    DType::U64,
    DType::Bool,
];

fn identity(ctx: &dyn OpContext) -> Result<()> {
    let shape = ctx.input(0)?.shape;
    ctx.alias_output(0, 0, &shape)
}

/// Resolves a requested shape (possibly with one -1) for an input of shape
/// `input`, as TensorFlow's `ReshapeOp` (its messages; zero-sized dims left
/// out of the products, so that [0, -1] reshapes a [0, 3] input to [0, 3]).
pub(crate) fn reshape_target(input: &[usize], requested: &[i64]) -> Result<Shape> {
    let mut unknown = None;
    let mut product: usize = 1;
    let mut has_zero = false;
    for (i, &d) in requested.iter().enumerate() {
        if d == -1 {
            if let Some(j) = unknown {
                return Err(Error::InvalidArgument(format!(
                    "Only one input size may be -1, not both {j} and {i}"
                )));
            }
            unknown = Some(i);
        } else if d < 0 {
            return Err(Error::InvalidArgument(format!(
                "Size {i} must be non-negative, not {d}"
            )));
        } else if d == 0 {
            has_zero = true;
        } else {
            product = product.checked_mul(d as usize).ok_or_else(|| {
                let list: Vec<String> = requested.iter().map(|v| v.to_string()).collect();
                Error::InvalidArgument(format!("Shape [{}] has too many elements", list.join(", ")))
            })?;
        }
    }
    let n = num_elements(input)?;
    let mut shape: Shape = requested.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        let counted = input.iter().filter(|&&d| d > 0 || !has_zero);
        let input_has_zero = has_zero && input.contains(&0);
        let elements: usize = counted.product();
        let missing = elements / product;
        if !input_has_zero && product * missing != elements {
            return Err(Error::InvalidArgument(format!(
                "Input to reshape is a tensor with {elements} values, but the requested shape requires a multiple of {product}"
            )));
        }
        shape[i] = missing;
    }
    let m: usize = shape.iter().product();
    if m != n {
        return Err(Error::InvalidArgument(format!(
            "Input to reshape is a tensor with {n} values, but the requested shape has {m}"
        )));
    }
    Ok(shape)
}

fn reshape(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let requested = ctx.input(1)?;
    // TensorFlow still takes a scalar for a one-element shape.
    if requested.rank() > 1 {
        return Err(Error::InvalidArgument(format!(
            "sizes input must be 1-D, not {}",
            fmt_shape(&requested.shape)
        )));
    }
    let shape = reshape_target(&x.shape, &requested.to_i64_vec()?)?;
    ctx.alias_output(0, 0, &shape)
}

fn transpose_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let perm_t = ctx.input(1)?;
    if perm_t.rank() != 1 {
        return Err(Error::InvalidArgument(format!(
            "perm must be rank 1, got shape {}",
            fmt_shape(&perm_t.shape)
        )));
    }
    let perm = transpose::check_perm(x.rank(), &perm_t.to_i64_vec()?)?;
    let shape = transpose::transposed_shape(&x.shape, &perm);
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return ctx.alias_output(0, 0, &shape);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &shape)?;
    transpose::transpose(&x, &perm, &mut out)
}

fn strided_slice_kernel(ctx: &dyn OpContext) -> Result<()> {
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

fn slice_masks(ctx: &dyn OpContext) -> Result<slice::SliceMasks> {
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
fn strided_slice_grad_kernel(ctx: &dyn OpContext) -> Result<()> {
    let shape_t = ctx.input(0)?;
    let shape = super::shape_vector(&shape_t, || {
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
fn slice_kernel(ctx: &dyn OpContext) -> Result<()> {
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

fn concat_kernel(ctx: &dyn OpContext) -> Result<()> {
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
    let (axis, shape) = slice::concat_shape(&shapes, axis)?;
    let mut out = ctx.allocate_output(0, inputs[0].dtype, &shape)?;
    slice::concat(&inputs, axis, &mut out)
}

/// Splits input `x` along `axis` into pieces of `sizes` (outputs 0..).
fn split_into(
    ctx: &dyn OpContext,
    x: &TensorView,
    axis: i64,
    sizes: &[usize],
    keep_axis: bool,
) -> Result<()> {
    let rank = x.rank() as i64;
    if !(-rank..rank).contains(&axis) {
        return Err(Error::InvalidArgument(format!(
            "-input rank(-{rank}) <= split_dim < input rank ({rank}), but got {axis}"
        )));
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let mut outs = Vec::with_capacity(sizes.len());
    for (k, &n) in sizes.iter().enumerate() {
        let mut shape = x.shape.clone();
        shape[axis] = n;
        if !keep_axis {
            shape.remove(axis);
        }
        // `split` only needs each output's element count.
        outs.push(ctx.allocate_output(k, x.dtype, &shape)?);
    }
    slice::split(x, axis, &mut outs)
}

/// `split_dim` as TensorFlow's split kernels read it: an int32 (the op's
/// type), negative counting from the end.
fn split_dim(dim: &TensorView, rank: usize) -> Result<(i64, i64)> {
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
fn split_kernel(ctx: &dyn OpContext) -> Result<()> {
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
    split_into(ctx, &x, orig, &vec![len / n; n], true)
}

/// The sizes of SplitV's pieces, with TensorFlow's checks, messages and
/// arithmetic: `size_splits` summed in its own type (int32 or int64), which
/// wraps around as TensorFlow's sum does, one -1 standing for the rest.
/// Sizes that pass those checks yet do not add up to `len` (only a wrapped
/// sum gets there) make TensorFlow allocate an output of the huge size and
/// fail for lack of memory: ResourceExhausted here too, without trying.
fn split_v_sizes(sizes: &[i64], wide: bool, len: usize) -> Result<Vec<usize>> {
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
fn split_v_kernel(ctx: &dyn OpContext) -> Result<()> {
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
        return ctx.alias_output(0, 0, &x.shape);
    }
    let sizes = split_v_sizes(&sizes, sizes_t.dtype == DType::I64, len)?;
    split_into(ctx, &x, orig, &sizes, true)
}

/// Unpack (tf.unstack): `num` pieces of size 1 along `axis`, that dim dropped.
fn unpack_kernel(ctx: &dyn OpContext) -> Result<()> {
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
    split_into(ctx, &x, axis, &vec![1; len], false)
}

fn pack_kernel(ctx: &dyn OpContext) -> Result<()> {
    let inputs = (0..ctx.num_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let (axis, shape) = slice::pack_shape(&shapes, ctx.attrs().int("axis")?)?;
    // Each input is the output's slice at one index of `axis`: a concat of
    // the inputs seen with a size-1 dim there.
    let views: Vec<TensorView> = inputs
        .iter()
        .map(|t| {
            let mut v = t.clone();
            v.shape.insert(axis, 1);
            v
        })
        .collect();
    let mut out = ctx.allocate_output(0, inputs[0].dtype, &shape)?;
    slice::concat(&views, axis, &mut out)
}

fn pad_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let p = ctx.input(1)?;
    let pads = p.to_i64_vec()?;
    let shape = slice::pad_shape(&x.shape, &p.shape, &pads)?;
    let before: Vec<usize> = (0..x.rank()).map(|d| pads[2 * d] as usize).collect();
    let zero = vec![0u8; x.dtype.size()];
    let value = if ctx.num_inputs() > 2 {
        let c = ctx.input(2)?;
        if c.rank() != 0 {
            return Err(Error::InvalidArgument(format!(
                "constant_values must be a scalar. Found: {}",
                fmt_shape(&c.shape)
            )));
        }
        c.bytes()[..x.dtype.size()].to_vec()
    } else {
        zero
    };
    let mut out = ctx.allocate_output(0, x.dtype, &shape)?;
    slice::pad(&x, &before, &value, &mut out)
}

fn gather_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (params, indices) = (ctx.input(0)?, ctx.input(1)?);
    let axis = int_scalar(&ctx.input(2)?, |shape| {
        format!("axis must be scalar, but got shape {shape}")
    })
    .map_err(|_| Error::InvalidArgument("axis must be scalar".into()))?;
    let plan = gather::gather_plan(
        &params.shape,
        &indices.shape,
        axis,
        ctx.attrs().int("batch_dims")?,
    )?;
    let mut out = ctx.allocate_output(0, params.dtype, &plan.out_shape)?;
    gather::gather(&params, &indices, &plan, &mut out)
}

const SLICE_MASKS: &[AttrSpec] = &[
    AttrSpec {
        name: "begin_mask",
        kind: AttrKind::Int32,
    },
    AttrSpec {
        name: "end_mask",
        kind: AttrKind::Int32,
    },
    AttrSpec {
        name: "ellipsis_mask",
        kind: AttrKind::Int32,
    },
    AttrSpec {
        name: "new_axis_mask",
        kind: AttrKind::Int32,
    },
    AttrSpec {
        name: "shrink_axis_mask",
        kind: AttrKind::Int32,
    },
];

/// Tile(input, multiples): `multiples` (host memory) repeats each dim.
fn broadcast_to_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let shape_t = ctx.input(1)?;
    let target = super::shape_vector(&shape_t, || {
        format!("shape must be a vector, got {}", fmt_shape(&shape_t.shape))
    })?;
    let ok = tfa_core::shape::broadcast_shapes(&x.shape, &target).is_ok_and(|s| s == target);
    if !ok {
        return Err(Error::InvalidArgument(format!(
            "Unable to broadcast tensor of shape {} to tensor of shape {}",
            fmt_shape(&x.shape),
            fmt_shape(&target)
        )));
    }
    if target == x.shape {
        return ctx.alias_output(0, 0, &target);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &target)?;
    tfa_kernels::host::broadcast::broadcast_to(&x, &mut out)
}

/// Bitcast copies: in training graphs it reinterprets random seeds (a few
/// bytes), where sharing the buffer would buy nothing.
fn bitcast_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let to = ctx.attrs().dtype("type")?;
    let (a, b) = (x.dtype.size(), to.size());
    let mut shape = x.shape.clone();
    if a > b {
        shape.push(a / b);
    } else if a < b {
        if shape.last() != Some(&(b / a)) {
            return Err(Error::InvalidArgument(format!(
                "Cannot bitcast from {} to {}: shape {} does not end in {}",
                x.dtype,
                to,
                fmt_shape(&x.shape),
                b / a
            )));
        }
        shape.pop();
    }
    let mut out = ctx.allocate_output(0, to, &shape)?;
    out.bytes_mut().copy_from_slice(x.bytes());
    Ok(())
}

/// int32 data stays in host memory, as TensorFlow registers it for GPUs:
/// the gradients of Mean/Sum stitch shapes with it.
macro_rules! stitch_op {
    ($name:literal, $summary:literal) => {
        OpDef {
            name: $name,
            family: Family::Movement,
            summary: $summary,
            constraints: &[TypeConstraint {
                attr: "T",
                types: ALL,
            }],
            attrs: &[],
            host_memory: &["indices"],
            int32_host_memory: &["data", "merged"],
            host: Some(stitch_kernel),
            cuda: None,
        }
    };
}

fn one_hot_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (indices, depth) = (ctx.input(0)?, ctx.input(1)?);
    let (on, off) = (ctx.input(2)?, ctx.input(3)?);
    for (t, what) in [(&depth, "depth"), (&on, "on_value"), (&off, "off_value")] {
        if t.rank() != 0 {
            return Err(Error::InvalidArgument(format!(
                "{what} must be a scalar, but got: {}",
                fmt_shape(&t.shape)
            )));
        }
    }
    let depth = depth.to_i64_vec()?[0];
    let depth = usize::try_from(depth)
        .map_err(|_| Error::InvalidArgument(format!("depth must be non-negative, got: {depth}")))?;
    let rank = indices.rank() as i64;
    let axis = ctx.attrs().int("axis")?;
    if axis != -1 && !(0..=rank).contains(&axis) {
        return Err(Error::InvalidArgument(format!(
            "Expected axis to be -1 or between [0, {}).  But received: {axis}",
            rank + 1
        )));
    }
    let axis = if axis == -1 { rank } else { axis } as usize;
    let mut shape = indices.shape.clone();
    shape.insert(axis, depth);
    let inner: usize = indices.shape[axis..].iter().product();
    let mut out = ctx.allocate_output(0, on.dtype, &shape)?;
    let idx = match indices.dtype {
        DType::U8 => indices.data::<u8>()?.iter().map(|&i| i as i64).collect(),
        _ => indices.to_i64_vec()?,
    };
    gather::one_hot(&idx, inner, depth, on.bytes(), off.bytes(), &mut out)
}

/// DynamicStitch / ParallelDynamicStitch: `merged[indices[i]] = data[i]`.
fn stitch_kernel(ctx: &dyn OpContext) -> Result<()> {
    let n = ctx.num_inputs() / 2;
    let (mut indices, mut data) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        indices.push(ctx.input(i)?);
        data.push(ctx.input(n + i)?);
    }
    let Some(first) = indices.first() else {
        return Err(Error::InvalidArgument(
            "DynamicStitch needs at least one input".into(),
        ));
    };
    let suffix = data[0].shape.get(first.rank()..).unwrap_or(&[]).to_vec();
    let mut flat = Vec::with_capacity(n);
    let mut max = -1i64;
    for (i, (ix, d)) in indices.iter().zip(&data).enumerate() {
        let mut want = ix.shape.clone();
        want.extend_from_slice(&suffix);
        if d.shape != want {
            return Err(Error::InvalidArgument(format!(
                "data[{i}].shape = {} does not start with indices[{i}].shape = {}",
                fmt_shape(&d.shape),
                fmt_shape(&ix.shape)
            )));
        }
        let v = ix.to_i64_vec()?;
        if let Some(bad) = v.iter().find(|&&k| k < 0) {
            return Err(Error::InvalidArgument(format!(
                "indices[{i}] contains a negative index: {bad}"
            )));
        }
        max = v.iter().copied().fold(max, i64::max);
        flat.push(v);
    }
    let mut shape = vec![(max + 1) as usize];
    shape.extend_from_slice(&suffix);
    let mut out = ctx.allocate_output(0, data[0].dtype, &shape)?;
    let row = num_elements(&suffix)? * data[0].dtype.size();
    let bytes: Vec<&[u8]> = data.iter().map(|d| d.bytes()).collect();
    gather::stitch(&flat, &bytes, row, out.bytes_mut());
    Ok(())
}

fn tile_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let multiples = ctx.input(1)?;
    let m = multiples.to_i64_vec()?;
    if multiples.rank() != 1 || m.len() != x.rank() {
        return Err(Error::InvalidArgument(format!(
            "Expected multiples argument to be a vector of length {} but got length {}",
            x.rank(),
            m.len()
        )));
    }
    let mut shape = Vec::with_capacity(m.len());
    for (i, (&d, &k)) in x.shape.iter().zip(&m).enumerate() {
        if k < 0 {
            return Err(Error::InvalidArgument(format!(
                "Expected multiples[{i}] >= 0, but got {k}"
            )));
        }
        shape.push(d * k as usize);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &shape)?;
    slice::tile(&x, &mut out)
}

/// TensorScatter{Update,Add,Sub}(tensor, indices, updates): a copy of
/// `tensor` (its buffer reused when TensorFlow allows) with the updates
/// applied in index order, as on TensorFlow's CPU.
fn tensor_scatter_kernel(ctx: &dyn OpContext, op: ScatterOp) -> Result<()> {
    let (tensor, indices, updates) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let ignore_bad = match ctx.attrs().string("bad_indices_policy")? {
        "" | "DEFAULT" | "ERROR" => false,
        "IGNORE" => true,
        other => {
            return Err(Error::InvalidArgument(format!(
                "Unknown bad indices handling attribute: {other}"
            )))
        }
    };
    let plan = scatter::tensor_scatter_plan(&tensor.shape, &indices.shape, &updates.shape)?;
    let (mut out, fwd) = ctx.forward_or_allocate(&[0], 0, tensor.dtype, &tensor.shape)?;
    if fwd.is_none() {
        let n = tensor.num_elements() * tensor.dtype.size();
        out.bytes_mut()[..n].copy_from_slice(&tensor.bytes()[..n]);
    }
    scatter::tensor_scatter(op, &indices, &updates, &plan, ignore_bad, &mut out)
}

/// `ScatterNd(indices, updates, shape)`: zeros of `shape` (host memory) with
/// `updates` added at `indices` (repeated indices accumulate), TensorFlow's
/// checks and bad-index error.
fn scatter_nd_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (indices, updates, shape_t) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let shape = super::shape_vector(&shape_t, || {
        format!(
            "Shape must be a vector, got shape {}",
            fmt_shape(&shape_t.shape)
        )
    })?;
    let ignore_bad = ctx.attrs().string("bad_indices_policy")? == "IGNORE";
    let plan = scatter::tensor_scatter_plan(&shape, &indices.shape, &updates.shape)?;
    let mut out = ctx.allocate_output(0, updates.dtype, &shape)?;
    out.bytes_mut().fill(0);
    scatter::tensor_scatter(
        ScatterOp::Add,
        &indices,
        &updates,
        &plan,
        ignore_bad,
        &mut out,
    )
}

/// The tensor scatter ops: `T` and `Tindices` (int32/int64), int32 data in
/// host memory (TensorFlow has no DEVICE_DEFAULT kernel for it here).
macro_rules! tensor_scatter_op {
    ($name:literal, $types:expr, $summary:literal, $op:expr) => {
        OpDef {
            name: $name,
            family: Family::Movement,
            summary: $summary,
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: $types,
                },
                TypeConstraint {
                    attr: "Tindices",
                    types: INDEX,
                },
            ],
            attrs: &[AttrSpec {
                name: "bad_indices_policy",
                kind: AttrKind::String,
            }],
            host_memory: &[],
            int32_host_memory: &["tensor", "indices", "updates", "output"],
            host: Some({
                fn kernel(ctx: &dyn OpContext) -> Result<()> {
                    tensor_scatter_kernel(ctx, $op)
                }
                kernel
            }),
            cuda: None,
        }
    };
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Identity",
        Movement,
        ALL_NO_I32,
        "the input itself (no copy)",
        |c| identity(c)
    ),
    OpDef {
        name: "Reshape",
        family: Family::Movement,
        summary: "same buffer, new shape (one -1 inferred); `shape` in host memory",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL_NO_I32,
            },
            TypeConstraint {
                attr: "Tshape",
                types: &[DType::I32, DType::I64],
            },
        ],
        attrs: &[],
        host_memory: &["shape"],
        int32_host_memory: &[],
        host: Some(reshape),
        cuda: None,
    },
    OpDef {
        name: "Transpose",
        family: Family::Movement,
        summary: "permutes dims (`perm` in host memory); adjacent dims merged, blocked 2-D tiles, no copy for the identity",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL,
            },
            TypeConstraint {
                attr: "Tperm",
                types: INDEX,
            },
        ],
        attrs: &[],
        host_memory: &["perm"],
        int32_host_memory: &[],
        host: Some(transpose_kernel),
        cuda: None,
    },
    OpDef {
        name: "StridedSlice",
        family: Family::Movement,
        summary: "x[begin:end:strides] with all five masks and negative strides (`begin`/`end`/`strides` in host memory)",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL_C64,
            },
            TypeConstraint {
                attr: "Index",
                types: INDEX,
            },
        ],
        attrs: SLICE_MASKS,
        host_memory: &["begin", "end", "strides"],
        int32_host_memory: &[],
        host: Some(strided_slice_kernel),
        cuda: None,
    },
    OpDef {
        name: "StridedSliceGrad",
        family: Family::Movement,
        summary: "gradient of StridedSlice: `dy` scattered into zeros of `shape` (`shape`/`begin`/`end`/`strides` in host memory), all masks",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL,
            },
            TypeConstraint {
                attr: "Index",
                types: INDEX,
            },
        ],
        attrs: SLICE_MASKS,
        host_memory: &["shape", "begin", "end", "strides"],
        int32_host_memory: &[],
        host: Some(strided_slice_grad_kernel),
        cuda: None,
    },
    OpDef {
        name: "Slice",
        family: Family::Movement,
        summary: "input[begin:begin+size] (`begin`/`size` in host memory; size -1 = to the end); int32 stays with TensorFlow's host kernel",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL_NO_I32,
            },
            TypeConstraint {
                attr: "Index",
                types: INDEX,
            },
        ],
        attrs: &[],
        host_memory: &["begin", "size"],
        int32_host_memory: &[],
        host: Some(slice_kernel),
        cuda: None,
    },
    OpDef {
        name: "ConcatV2",
        family: Family::Movement,
        summary: "concatenation along `axis` (host memory; negative counts from the end)",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL_NO_I32,
            },
            TypeConstraint {
                attr: "Tidx",
                types: INDEX,
            },
        ],
        attrs: &[],
        host_memory: &["axis"],
        int32_host_memory: &[],
        host: Some(concat_kernel),
        cuda: None,
    },
    op_t!(
        "Pack",
        Movement,
        ALL,
        "tf.stack: N same-shape tensors along a new `axis`",
        attrs: ["axis": Int32],
        |c| pack_kernel(c)
    ),
    OpDef {
        name: "Pad",
        family: Family::Movement,
        summary: "zero padding (`paddings` [rank, 2] in host memory)",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL,
            },
            TypeConstraint {
                attr: "Tpaddings",
                types: INDEX,
            },
        ],
        attrs: &[],
        host_memory: &["paddings"],
        int32_host_memory: &[],
        host: Some(pad_kernel),
        cuda: None,
    },
    OpDef {
        name: "PadV2",
        family: Family::Movement,
        summary: "constant padding with scalar `constant_values` (`paddings` in host memory)",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL,
            },
            TypeConstraint {
                attr: "Tpaddings",
                types: INDEX,
            },
        ],
        attrs: &[],
        host_memory: &["paddings"],
        int32_host_memory: &[],
        host: Some(pad_kernel),
        cuda: None,
    },
    OpDef {
        name: "GatherV2",
        family: Family::Movement,
        summary: "gather along `axis` (host memory) with `batch_dims`; out-of-range indices raise InvalidArgument",
        constraints: &[
            TypeConstraint {
                attr: "Tparams",
                types: ALL,
            },
            TypeConstraint {
                attr: "Tindices",
                types: INDEX,
            },
            TypeConstraint {
                attr: "Taxis",
                types: INDEX,
            },
        ],
        attrs: &[AttrSpec {
            name: "batch_dims",
            kind: AttrKind::Int32,
        }],
        host_memory: &["axis"],
        int32_host_memory: &[],
        host: Some(gather_kernel),
        cuda: None,
    },
    OpDef {
        name: "Tile",
        family: Family::Movement,
        summary: "repeat along each dim by `multiples` (host memory)",
        constraints: &[
            TypeConstraint { attr: "T", types: ALL },
            TypeConstraint { attr: "Tmultiples", types: INDEX },
        ],
        attrs: &[],
        host_memory: &["multiples"],
        int32_host_memory: &[],
        host: Some(tile_kernel),
        cuda: None,
    },
    OpDef {
        name: "OneHot",
        family: Family::Movement,
        summary: "one-hot rows of `depth` (host memory) at `axis`; out-of-range indices give all `off_value`",
        constraints: &[
            TypeConstraint { attr: "T", types: ALL },
            TypeConstraint {
                attr: "TI",
                types: &[DType::U8, DType::I32, DType::I64],
            },
        ],
        attrs: &[AttrSpec {
            name: "axis",
            kind: AttrKind::Int32,
        }],
        host_memory: &["depth"],
        int32_host_memory: &[],
        host: Some(one_hot_kernel),
        cuda: None,
    },
    stitch_op!(
        "DynamicStitch",
        "interleave `data` into rows `indices` (host memory); later pieces win on repeated indices"
    ),
    stitch_op!(
        "ParallelDynamicStitch",
        "DynamicStitch with unspecified order on repeated indices (here: later pieces win)"
    ),
    OpDef {
        name: "Split",
        family: Family::Movement,
        summary: "`num_split` equal pieces along `split_dim` (host memory)",
        constraints: &[TypeConstraint { attr: "T", types: ALL }],
        attrs: &[AttrSpec {
            name: "num_split",
            kind: AttrKind::Int,
        }],
        host_memory: &["split_dim"],
        int32_host_memory: &[],
        host: Some(split_kernel),
        cuda: None,
    },
    OpDef {
        name: "SplitV",
        family: Family::Movement,
        summary: "pieces of `size_splits` (host memory, one may be -1) along `split_dim` (host memory)",
        constraints: &[
            TypeConstraint { attr: "T", types: ALL },
            TypeConstraint { attr: "Tlen", types: INDEX },
        ],
        attrs: &[AttrSpec {
            name: "num_split",
            kind: AttrKind::Int,
        }],
        host_memory: &["size_splits", "split_dim"],
        int32_host_memory: &[],
        host: Some(split_v_kernel),
        cuda: None,
    },
    OpDef {
        name: "Unpack",
        family: Family::Movement,
        summary: "unstack along `axis` (int32/int64 stay with TensorFlow's host-memory kernels)",
        constraints: &[TypeConstraint { attr: "T", types: UNPACK }],
        attrs: &[
            AttrSpec {
                name: "axis",
                kind: AttrKind::Int32,
            },
            AttrSpec {
                name: "num",
                kind: AttrKind::Int,
            },
        ],
        host_memory: &[],
        int32_host_memory: &[],
        host: Some(unpack_kernel),
        cuda: None,
    },
    OpDef {
        name: "BroadcastTo",
        family: Family::Movement,
        summary: "broadcast to `shape` (host memory) with NumPy rules",
        constraints: &[
            TypeConstraint { attr: "T", types: ALL },
            TypeConstraint { attr: "Tidx", types: INDEX },
        ],
        attrs: &[],
        host_memory: &["shape"],
        int32_host_memory: &[],
        host: Some(broadcast_to_kernel),
        cuda: None,
    },
    OpDef {
        name: "Bitcast",
        family: Family::Movement,
        summary: "reinterpret the bytes as `type`; the last dim grows or shrinks by the size ratio",
        constraints: &[
            TypeConstraint { attr: "T", types: REAL },
            TypeConstraint { attr: "type", types: REAL },
        ],
        attrs: &[],
        host_memory: &[],
        int32_host_memory: &[],
        host: Some(bitcast_kernel),
        cuda: None,
    },
    tensor_scatter_op!(
        "TensorScatterUpdate",
        ALL,
        "copy of `tensor` with `updates` written at `indices` (in order: the last of repeated indices wins); bad indices raise as on CPU, or are skipped with bad_indices_policy IGNORE",
        ScatterOp::Update
    ),
    tensor_scatter_op!(
        "TensorScatterAdd",
        REAL, // arithmetic types (the Add/Sub scatters; no bool)
        "copy of `tensor` with `updates` added at `indices` (repeated indices accumulate in order)",
        ScatterOp::Add
    ),
    OpDef {
        name: "ScatterNd",
        family: Family::Movement,
        summary: "zeros of `shape` (host memory) with `updates` added at `indices` (repeated indices accumulate in order); the gradient of gathers and of `top_k`/`sort`",
        constraints: &[
            TypeConstraint { attr: "T", types: REAL },
            TypeConstraint { attr: "Tindices", types: INDEX },
        ],
        attrs: &[AttrSpec {
            name: "bad_indices_policy",
            kind: AttrKind::String,
        }],
        host_memory: &["shape"],
        int32_host_memory: &[],
        host: Some(scatter_nd_kernel),
        cuda: None,
    },
    tensor_scatter_op!(
        "TensorScatterSub",
        REAL,
        "copy of `tensor` with `updates` subtracted at `indices` (in order)",
        ScatterOp::Sub
    ),
];

#[cfg(test)]
mod tests {
    use super::{reshape_target, split_v_sizes};
    use tfa_core::Error;

    #[test]
    fn split_v_sizes_follow_tensorflow() {
        assert_eq!(split_v_sizes(&[2, -1, 6], true, 10).unwrap(), vec![2, 2, 6]);
        let msg = |r: tfa_core::Result<Vec<usize>>| r.unwrap_err().to_string();
        assert_eq!(
            msg(split_v_sizes(&[-1, -1, 6], true, 10)),
            "There can only be one -1 in the input."
        );
        assert_eq!(
            msg(split_v_sizes(&[-2, 6, 6], true, 10)),
            "Split size at index 0 must be >= 0. Got: -2"
        );
        // The sum wraps in the sizes' own type, as TensorFlow's does.
        assert!(msg(split_v_sizes(&[(1 << 31) - 1, 2], false, 10)).ends_with("Got: -2147483647"));
        assert!(msg(split_v_sizes(&[i64::MAX, 2], true, 10)).ends_with("Got: -9223372036854775807"));
        // Sizes that only add up by wrapping: TensorFlow runs out of memory.
        let e = split_v_sizes(&[1 << 62, 1 << 62, 1 << 62, -1], true, 10).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted(_)), "{e}");
        let e = split_v_sizes(&[(1 << 31) - 1, (1 << 31) - 1, 4, -1], false, 10).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted(_)), "{e}");
    }

    #[test]
    fn reshape_rules() {
        assert_eq!(reshape_target(&[6], &[2, -1]).unwrap(), vec![2, 3]);
        assert_eq!(reshape_target(&[0], &[0, 5]).unwrap(), vec![0, 5]);
        assert_eq!(reshape_target(&[1], &[]).unwrap(), Vec::<usize>::new());
        assert!(reshape_target(&[6], &[4])
            .unwrap_err()
            .to_string()
            .contains("6 values, but the requested shape has 4"));
        assert!(reshape_target(&[6], &[-1, -1])
            .unwrap_err()
            .to_string()
            .contains("Only one input size may be -1"));
        // Zero-sized dims stay out of the products (TensorFlow's rule).
        assert_eq!(reshape_target(&[0, 3], &[0, -1]).unwrap(), vec![0, 3]);
        assert_eq!(reshape_target(&[2, 0], &[-1, 0]).unwrap(), vec![2, 0]);
        assert_eq!(reshape_target(&[0, 3], &[-1]).unwrap(), vec![0]);
        assert_eq!(reshape_target(&[0, 3], &[0, -1, 4]).unwrap(), vec![0, 0, 4]);
    }

    #[test]
    fn concat_leaves_int32_to_tensorflows_default_kernel() {
        // TensorFlow registers a DEVICE_DEFAULT int32 ConcatV2 (host memory).
        let (_, d) = crate::find("ConcatV2").unwrap();
        assert!(!d.supports(tfa_core::DType::I32));
        for name in [
            "Transpose",
            "StridedSlice",
            "Pack",
            "Pad",
            "PadV2",
            "GatherV2",
        ] {
            assert!(crate::find(name).is_some(), "{name}");
        }
    }
}
