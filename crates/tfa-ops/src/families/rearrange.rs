//! Moves by an index pattern: ReverseV2 (`tf.reverse`: Keras's
//! `go_backwards` recurrent layers and `Bidirectional` run it on every
//! sequence), Roll (`tf.roll`: shifted windows), DepthToSpace/SpaceToDepth (pixel shuffle), MatrixBandPart (`tf.linalg.band_part`: Keras `ops.tril` and
//! `ops.triu`), SpaceToBatchND/BatchToSpaceND (dilated convolutions).

use super::{int_scalar, int_vector, spec_op, ALL_C64, INDEX};
use crate::precision::Class;
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result};
use tfa_kernels::geometry::axes::{check_band, reverse_axes};
use tfa_kernels::geometry::space_batch::{space_batch_plan, Direction, SpaceBatchPlan};
use tfa_kernels::host::band_part::band_part;
use tfa_kernels::host::depth_space::depth_space;
use tfa_kernels::host::reverse::reverse;
use tfa_kernels::host::roll::roll;
use tfa_kernels::host::space_batch::space_batch;

/// ReverseV2: which axes flip (`None`: nothing moves, the output is the
/// input's buffer) and the output.
fn reverse_plan(ctx: &dyn OpContext) -> Result<(Option<Vec<bool>>, OutputPlan)> {
    let x = ctx.input(0)?;
    let out = OutputPlan::new(x.dtype, x.shape.clone());
    // A scalar is its own reverse, whatever `axis` says (as on the CPU).
    if x.rank() == 0 {
        return Ok((None, out));
    }
    let axis = int_vector(&ctx.input(1)?, |rank| {
        format!("'dims' must be 1-dimension, not {rank}")
    })?;
    let flags = reverse_axes(x.rank(), &axis)?;
    let moves = flags.iter().zip(&x.shape).any(|(&f, &s)| f && s > 1);
    Ok((moves.then_some(flags), out))
}

fn reverse_run(ctx: &dyn OpContext, (flags, out): &(Option<Vec<bool>>, OutputPlan)) -> Result<()> {
    match flags {
        None => ctx.alias_output(0, 0, &out.shape),
        Some(flags) => reverse(&ctx.input(0)?, flags, &mut allocate(ctx, 0, out)?),
    }
}

/// Roll: the shift of each dim, in `[0, size)` (shifts on one axis add up;
/// `None`: nothing moves, the output is the input's buffer), and the
/// output. TensorFlow's checks and messages (roll_op.cc).
fn roll_plan(ctx: &dyn OpContext) -> Result<(Option<Vec<usize>>, OutputPlan)> {
    let x = ctx.input(0)?;
    let inv = |m: String| Err(Error::InvalidArgument(m));
    if x.rank() == 0 {
        return inv("input must be 1-D or higher".into());
    }
    let (shift, axis) = (ctx.input(1)?, ctx.input(2)?);
    for (t, what) in [(&shift, "shift"), (&axis, "axis")] {
        if t.rank() > 1 {
            return inv(format!(
                "{what} must be a scalar or a 1-D vector. Found: {}",
                fmt_shape(&t.shape)
            ));
        }
    }
    let (shift, axis) = (shift.to_i64_vec()?, axis.to_i64_vec()?);
    if shift.len() != axis.len() {
        return inv("shift and axis must have the same size".into());
    }
    let rank = x.rank() as i64;
    let mut shifts = vec![0usize; x.rank()];
    for (&s, &a) in shift.iter().zip(&axis) {
        let a = if a < 0 { a + rank } else { a };
        if !(0..rank).contains(&a) {
            return inv(format!("axis {a} is out of range"));
        }
        let n = x.shape[a as usize] as i64;
        if n > 0 {
            shifts[a as usize] = (shifts[a as usize] as i64 + s % n).rem_euclid(n) as usize;
        }
    }
    let out = OutputPlan::new(x.dtype, x.shape.clone());
    Ok((shifts.iter().any(|&s| s != 0).then_some(shifts), out))
}

fn roll_run(ctx: &dyn OpContext, (shifts, out): &(Option<Vec<usize>>, OutputPlan)) -> Result<()> {
    match shifts {
        None => ctx.alias_output(0, 0, &out.shape),
        Some(shifts) => roll(&ctx.input(0)?, shifts, &mut allocate(ctx, 0, out)?),
    }
}

/// DepthToSpace (`to_space`) / SpaceToDepth: TensorFlow's CPU checks and
/// messages (NHWC only, as its CPU kernels), the block size and the output.
fn depth_space_plan(ctx: &dyn OpContext, to_space: bool) -> Result<(usize, OutputPlan)> {
    let x = ctx.input(0)?;
    let inv = |m: String| Err(Error::InvalidArgument(m));
    let format = ctx.attrs().string("data_format")?;
    if format != "NHWC" {
        return inv(format!(
            "Only NHWC data_format supported on CPU. Got {format}"
        ));
    }
    if x.rank() != 4 {
        return inv(format!("Input rank should be: 4 instead of: {}", x.rank()));
    }
    let block = ctx.attrs().int("block_size")?;
    if block < 2 {
        return inv(format!("Block size should be > 1, but was: {block}"));
    }
    let b = block as usize;
    let [n, h, w, c] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    let shape = if to_space {
        if c % (b * b) != 0 {
            return inv(format!(
                "Input depth dimension {c} should be divisible by: {}",
                b * b
            ));
        }
        vec![n, h * b, w * b, c / (b * b)]
    } else {
        if h % b != 0 || w % b != 0 {
            return inv(format!(
                "Image width {w} and height {h} should be divisible by block_size: {block}"
            ));
        }
        vec![n, h / b, w / b, c * b * b]
    };
    Ok((b, OutputPlan::new(x.dtype, shape)))
}

fn depth_space_run(
    ctx: &dyn OpContext,
    (block, out): &(usize, OutputPlan),
    to_space: bool,
) -> Result<()> {
    depth_space(
        &ctx.input(0)?,
        *block,
        to_space,
        &mut allocate(ctx, 0, out)?,
    )
}

/// MatrixBandPart: `(num_lower, num_upper)` and the output.
fn band_part_plan(ctx: &dyn OpContext) -> Result<((i64, i64), OutputPlan)> {
    let x = ctx.input(0)?;
    // TensorFlow's order: the input's rank, then each limit in turn.
    check_band(&x.shape, -1, -1)?;
    let lower = int_scalar(&ctx.input(1)?, |s| {
        format!("num_lower must be scalar, got shape {s}")
    })?;
    check_band(&x.shape, lower, -1)?;
    let upper = int_scalar(&ctx.input(2)?, |s| {
        format!("num_upper must be scalar, got shape {s}")
    })?;
    Ok(((lower, upper), OutputPlan::new(x.dtype, x.shape.clone())))
}

fn band_part_run(
    ctx: &dyn OpContext,
    ((lower, upper), out): &((i64, i64), OutputPlan),
) -> Result<()> {
    band_part(&ctx.input(0)?, *lower, *upper, &mut allocate(ctx, 0, out)?)
}

/// SpaceToBatchND (`pairs`: paddings) or BatchToSpaceND (`pairs`: crops).
fn space_batch_plan_of(
    ctx: &dyn OpContext,
    dir: Direction,
) -> Result<(SpaceBatchPlan, OutputPlan)> {
    let (x, block, pairs) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let plan = space_batch_plan(
        dir,
        &x.shape,
        block.rank(),
        &block.to_i64_vec()?,
        &pairs.shape,
        &pairs.to_i64_vec()?,
    )?;
    let out = OutputPlan::new(x.dtype, plan.out_shape.clone());
    Ok((plan, out))
}

fn space_batch_run(ctx: &dyn OpContext, (plan, out): &(SpaceBatchPlan, OutputPlan)) -> Result<()> {
    if plan.identity {
        return ctx.alias_output(0, 0, &out.shape);
    }
    space_batch(&ctx.input(0)?, plan, &mut allocate(ctx, 0, out)?)
}

/// T, and the block_shape and paddings/crops index types.
const SPACE_BATCH_TYPES: &[TypeConstraint] = &[
    TypeConstraint {
        attr: "T",
        types: DType::ALL,
    },
    TypeConstraint {
        attr: "Tblock_shape",
        types: INDEX,
    },
];

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| reverse_plan(c) => (Option<Vec<bool>>, OutputPlan),
        run: |c, p| reverse_run(c, p),
        def: {
            name: "ReverseV2",
            family: Family::Movement,
            summary: "elements reversed along `axis` (in host memory; negative entries count from the end); no copy when nothing moves",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: DType::ALL,
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
    spec_op!(
        plan: |c| roll_plan(c) => (Option<Vec<usize>>, OutputPlan),
        run: |c, p| roll_run(c, p),
        def: {
            name: "Roll",
            family: Family::Movement,
            summary: "elements shifted cyclically by `shift` along `axis` (both host memory; shifts on one axis add up); no copy when nothing moves",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: ALL_C64,
                },
                TypeConstraint {
                    attr: "Tshift",
                    types: INDEX,
                },
                TypeConstraint {
                    attr: "Taxis",
                    types: INDEX,
                },
            ],
            attrs: &[],
            host_memory: &["shift", "axis"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| depth_space_plan(c, true) => (usize, OutputPlan),
        run: |c, p| depth_space_run(c, p, true),
        def: {
            name: "DepthToSpace",
            family: Family::Movement,
            summary: "channels moved into `block_size` x `block_size` pixel blocks (NHWC, as TensorFlow's CPU kernel); the gradient of SpaceToDepth",
            constraints: &[TypeConstraint {
                attr: "T",
                types: ALL_C64,
            }],
            attrs: &[
                AttrSpec::new("block_size", AttrKind::Int),
                AttrSpec::new("data_format", AttrKind::String),
            ],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| depth_space_plan(c, false) => (usize, OutputPlan),
        run: |c, p| depth_space_run(c, p, false),
        def: {
            name: "SpaceToDepth",
            family: Family::Movement,
            summary: "`block_size` x `block_size` pixel blocks moved into the channels (NHWC, as TensorFlow's CPU kernel); the gradient of DepthToSpace",
            constraints: &[TypeConstraint {
                attr: "T",
                types: ALL_C64,
            }],
            attrs: &[
                AttrSpec::new("block_size", AttrKind::Int),
                AttrSpec::new("data_format", AttrKind::String),
            ],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| band_part_plan(c) => ((i64, i64), OutputPlan),
        run: |c, p| band_part_run(c, p),
        def: {
            name: "MatrixBandPart",
            family: Family::Movement,
            summary: "innermost matrices with everything outside the band of `num_lower`/`num_upper` diagonals (host memory; negative: all) set to zero",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: DType::ALL,
                },
                TypeConstraint {
                    attr: "Tindex",
                    types: INDEX,
                },
            ],
            attrs: &[],
            host_memory: &["num_lower", "num_upper"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| space_batch_plan_of(c, Direction::ToBatch) => (SpaceBatchPlan, OutputPlan),
        run: |c, p| space_batch_run(c, p),
        def: {
            name: "SpaceToBatchND",
            family: Family::Movement,
            summary: "zero-pads the spatial dims and moves `block_shape` blocks of them into the batch dim (`block_shape`, `paddings` in host memory); no copy when every block is 1",
            constraints: &[
                SPACE_BATCH_TYPES[0],
                SPACE_BATCH_TYPES[1],
                TypeConstraint {
                    attr: "Tpaddings",
                    types: INDEX,
                },
            ],
            attrs: &[],
            host_memory: &["block_shape", "paddings"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| space_batch_plan_of(c, Direction::ToSpace) => (SpaceBatchPlan, OutputPlan),
        run: |c, p| space_batch_run(c, p),
        def: {
            name: "BatchToSpaceND",
            family: Family::Movement,
            summary: "the inverse of SpaceToBatchND: batch blocks back into the spatial dims, then `crops` removed (`block_shape`, `crops` in host memory)",
            constraints: &[
                SPACE_BATCH_TYPES[0],
                SPACE_BATCH_TYPES[1],
                TypeConstraint {
                    attr: "Tcrops",
                    types: INDEX,
                },
            ],
            attrs: &[],
            host_memory: &["block_shape", "crops"],
            int32_host_memory: &[],
        }
    ),
];
