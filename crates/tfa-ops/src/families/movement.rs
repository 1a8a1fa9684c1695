//! Ops that move or re-view data. Identity and Reshape never copy: the output
//! is the input's buffer.

use super::elementwise::like_input;
use super::{int_scalar, op_t, spec_op, ALL_C64, ALL_NO_I32, INDEX, REAL};
use crate::precision::Class;
use crate::spec::{allocate, Outputs};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::{fmt_shape, num_elements};
use tfa_core::{DType, Error, Result, Shape, TensorView};
use tfa_kernels::geometry::index::{self, GatherPlan, ScatterPlan};
use tfa_kernels::geometry::slice::{self as geometry, SliceMasks, SlicePlan};
use tfa_kernels::host::scatter::{self, ScatterOp};
use tfa_kernels::host::{gather, slice, transpose};

mod concat_split;
mod indexing;
mod slicing;
use concat_split::*;
use indexing::*;
use slicing::*;

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

fn reshape_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
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
    Ok(OutputPlan::new(x.dtype, shape))
}

/// Output 0 is input 0's buffer with the planned shape (no copy).
fn alias(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    ctx.alias_output(0, 0, &out.shape)
}

/// The permutation (checked) and the output.
fn transpose_plan(ctx: &dyn OpContext) -> Result<(Vec<usize>, OutputPlan)> {
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
    Ok((perm, OutputPlan::new(x.dtype, shape)))
}

fn transpose_run(ctx: &dyn OpContext, (perm, out): &(Vec<usize>, OutputPlan)) -> Result<()> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return alias(ctx, out);
    }
    transpose::transpose(&ctx.input(0)?, perm, &mut allocate(ctx, 0, out)?)
}

/// Pad/PadV2: the padding before each dim, the fill value's bytes, the output.
struct PadPlan {
    before: Vec<usize>,
    value: Vec<u8>,
    out: OutputPlan,
}

impl Outputs for PadPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

fn pad_plan(ctx: &dyn OpContext) -> Result<PadPlan> {
    let x = ctx.input(0)?;
    let p = ctx.input(1)?;
    let pads = p.to_i64_vec()?;
    let shape = geometry::pad_shape(&x.shape, &p.shape, &pads)?;
    let before: Vec<usize> = (0..x.rank()).map(|d| pads[2 * d] as usize).collect();
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
        vec![0u8; x.dtype.size()]
    };
    Ok(PadPlan {
        before,
        value,
        out: OutputPlan::new(x.dtype, shape),
    })
}

fn pad_run(ctx: &dyn OpContext, p: &PadPlan) -> Result<()> {
    slice::pad(
        &ctx.input(0)?,
        &p.before,
        &p.value,
        &mut allocate(ctx, 0, &p.out)?,
    )
}

const SLICE_MASKS: &[AttrSpec] = &[
    AttrSpec::new("begin_mask", AttrKind::Int32),
    AttrSpec::new("end_mask", AttrKind::Int32),
    AttrSpec::new("ellipsis_mask", AttrKind::Int32),
    AttrSpec::new("new_axis_mask", AttrKind::Int32),
    AttrSpec::new("shrink_axis_mask", AttrKind::Int32),
];

/// BroadcastTo(input, shape): `shape` (host memory) is the broadcast shape.
fn broadcast_to_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
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
    Ok(OutputPlan::new(x.dtype, target))
}

fn broadcast_to_run(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    let x = ctx.input(0)?;
    if out.shape == x.shape {
        return alias(ctx, out);
    }
    tfa_kernels::host::broadcast::broadcast_to(&x, &mut allocate(ctx, 0, out)?)
}

/// Bitcast copies: in training graphs it reinterprets random seeds (a few
/// bytes), where sharing the buffer would buy nothing.
fn bitcast_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
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
    Ok(OutputPlan::new(to, shape))
}

fn bitcast_run(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    let x = ctx.input(0)?;
    allocate(ctx, 0, out)?
        .bytes_mut()
        .copy_from_slice(x.bytes());
    Ok(())
}

/// int32 data stays in host memory, as TensorFlow registers it for GPUs:
/// the gradients of Mean/Sum stitch shapes with it.
macro_rules! stitch_op {
    ($name:literal, $summary:literal) => {
        spec_op!(
            plan: |c| stitch_plan(c) => StitchPlan,
            run: |c, p| stitch_run(c, p),
            def: {
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
            }
        )
    };
}

/// The tensor scatter ops: `T` and `Tindices` (int32/int64), int32 data in
/// host memory (TensorFlow has no DEVICE_DEFAULT kernel for it here).
macro_rules! tensor_scatter_op {
    ($name:literal, $types:expr, $summary:literal, $op:expr) => {
        spec_op!(
            plan: |c| tensor_scatter_plan(c) => ((ScatterPlan, bool), OutputPlan),
            run: |c, p| tensor_scatter_run(c, p, $op),
            def: {
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
                attrs: &[AttrSpec::new("bad_indices_policy", AttrKind::String)],
                host_memory: &[],
                int32_host_memory: &["tensor", "indices", "updates", "output"],
            }
        )
    };
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Identity",
        Movement,
        ALL_NO_I32,
        "the input itself (no copy)",
        plan: |c| like_input(c) => OutputPlan,
        run: |c, p| alias(c, p)
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| reshape_plan(c) => OutputPlan,
        run: |c, p| alias(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| transpose_plan(c) => (Vec<usize>, OutputPlan),
        run: |c, p| transpose_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| strided_slice_plan(c) => SlicePlanned,
        run: |c, p| slice_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| strided_slice_grad_plan(c) => SlicePlanned,
        run: |c, p| strided_slice_grad_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| slice_plan(c) => SlicePlanned,
        run: |c, p| slice_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| concat_plan(c) => (usize, OutputPlan),
        run: |c, p| concat_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    op_t!(
        "Pack",
        Movement,
        ALL,
        "tf.stack: N same-shape tensors along a new `axis`",
        attrs: ["axis": Int32],
        plan: |c| pack_plan(c) => (usize, OutputPlan),
        run: |c, p| pack_run(c, p)
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| pad_plan(c) => PadPlan,
        run: |c, p| pad_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| pad_plan(c) => PadPlan,
        run: |c, p| pad_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| gather_plan(c) => (GatherPlan, OutputPlan),
        run: |c, p| gather_run(c, p),
        def: {
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
            attrs: &[AttrSpec::new("batch_dims", AttrKind::Int32)],
            host_memory: &["axis"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| gather_nd_plan(c) => ((usize, bool), OutputPlan),
        run: |c, p| gather_nd_run(c, p),
        def: {
            name: "GatherNd",
            family: Family::Movement,
            summary: "slices of `params` at the coordinate tuples of `indices` (last dim); out-of-range tuples raise InvalidArgument, or give zeros with bad_indices_policy IGNORE",
            constraints: &[
                TypeConstraint {
                    attr: "Tparams",
                    types: ALL_C64,
                },
                TypeConstraint {
                    attr: "Tindices",
                    types: INDEX,
                },
            ],
            attrs: &[AttrSpec::new("bad_indices_policy", AttrKind::String)],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| tile_plan(c) => OutputPlan,
        run: |c, p| slice::tile(&c.input(0)?, &mut allocate(c, 0, p)?),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| one_hot_plan(c) => ((usize, usize), OutputPlan),
        run: |c, p| one_hot_run(c, p),
        def: {
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
            attrs: &[AttrSpec::new("axis", AttrKind::Int32)],
            host_memory: &["depth"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    stitch_op!(
        "DynamicStitch",
        "interleave `data` into rows `indices` (host memory); later pieces win on repeated indices"
    ).amp(Class::Clear),
    stitch_op!(
        "ParallelDynamicStitch",
        "DynamicStitch with unspecified order on repeated indices (here: later pieces win)"
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| split_op_plan(c) => SplitPlan,
        run: |c, p| split_run(c, p),
        def: {
            name: "Split",
            family: Family::Movement,
            summary: "`num_split` equal pieces along `split_dim` (host memory)",
            constraints: &[TypeConstraint { attr: "T", types: ALL }],
            attrs: &[AttrSpec::new("num_split", AttrKind::Int)],
            host_memory: &["split_dim"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| split_v_plan(c) => SplitPlan,
        run: |c, p| split_run(c, p),
        def: {
            name: "SplitV",
            family: Family::Movement,
            summary: "pieces of `size_splits` (host memory, one may be -1) along `split_dim` (host memory)",
            constraints: &[
                TypeConstraint { attr: "T", types: ALL },
                TypeConstraint { attr: "Tlen", types: INDEX },
            ],
            attrs: &[AttrSpec::new("num_split", AttrKind::Int)],
            host_memory: &["size_splits", "split_dim"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| unpack_plan(c) => SplitPlan,
        run: |c, p| split_run(c, p),
        def: {
            name: "Unpack",
            family: Family::Movement,
            summary: "unstack along `axis` (int32/int64 stay with TensorFlow's host-memory kernels)",
            constraints: &[TypeConstraint { attr: "T", types: UNPACK }],
            attrs: &[
                AttrSpec::new("axis", AttrKind::Int32),
                AttrSpec::new("num", AttrKind::Int),
            ],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| broadcast_to_plan(c) => OutputPlan,
        run: |c, p| broadcast_to_run(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| bitcast_plan(c) => OutputPlan,
        run: |c, p| bitcast_run(c, p),
        def: {
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
        }
    ),
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
    spec_op!(
        plan: |c| scatter_nd_plan(c) => ((ScatterPlan, bool), OutputPlan),
        run: |c, p| scatter_nd_run(c, p),
        def: {
            name: "ScatterNd",
            family: Family::Movement,
            summary: "zeros of `shape` (host memory) with `updates` added at `indices` (repeated indices accumulate in order); the gradient of gathers and of `top_k`/`sort`",
            constraints: &[
                TypeConstraint { attr: "T", types: REAL },
                TypeConstraint { attr: "Tindices", types: INDEX },
            ],
            attrs: &[AttrSpec::new("bad_indices_policy", AttrKind::String)],
            host_memory: &["shape"],
            int32_host_memory: &[],
        }
    ),
    tensor_scatter_op!(
        "TensorScatterSub",
        REAL,
        "copy of `tensor` with `updates` subtracted at `indices` (in order)",
        ScatterOp::Sub
    ),
];

#[cfg(test)]
mod tests;
