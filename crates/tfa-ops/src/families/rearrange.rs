//! Moves by an index pattern: ReverseV2 (`tf.reverse`: Keras's
//! `go_backwards` recurrent layers and `Bidirectional` run it on every
//! sequence), MatrixBandPart (`tf.linalg.band_part`: Keras `ops.tril` and
//! `ops.triu`), SpaceToBatchND/BatchToSpaceND (dilated convolutions).

use super::{int_scalar, int_vector, INDEX};
use crate::{Family, OpContext, OpDef, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::host::band_part::{band_part, check_band};
use tfa_kernels::host::reverse::{reverse, reverse_axes};
use tfa_kernels::host::space_batch::{space_batch, space_batch_plan, Direction};

fn reverse_v2(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    // A scalar is its own reverse, whatever `axis` says (as on the CPU).
    if x.rank() == 0 {
        return ctx.alias_output(0, 0, &[]);
    }
    let axis = int_vector(&ctx.input(1)?, |rank| {
        format!("'dims' must be 1-dimension, not {rank}")
    })?;
    let flags = reverse_axes(x.rank(), &axis)?;
    if !flags.iter().zip(&x.shape).any(|(&f, &s)| f && s > 1) {
        return ctx.alias_output(0, 0, &x.shape);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &x.shape)?;
    reverse(&x, &flags, &mut out)
}

fn matrix_band_part(ctx: &dyn OpContext) -> Result<()> {
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
    let mut out = ctx.allocate_output(0, x.dtype, &x.shape)?;
    band_part(&x, lower, upper, &mut out)
}

/// SpaceToBatchND (`pairs`: paddings) or BatchToSpaceND (`pairs`: crops).
fn space_batch_kernel(ctx: &dyn OpContext, dir: Direction) -> Result<()> {
    let (x, block, pairs) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let plan = space_batch_plan(
        dir,
        &x.shape,
        block.rank(),
        &block.to_i64_vec()?,
        &pairs.shape,
        &pairs.to_i64_vec()?,
    )?;
    if plan.identity {
        return ctx.alias_output(0, 0, &x.shape);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &plan.out_shape)?;
    space_batch(&x, &plan, &mut out)
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

pub(crate) const OPS: &[OpDef] = &[OpDef {
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
    host: Some(reverse_v2),
    shape_rule: None,
    cuda: None,
},
OpDef {
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
    host: Some(matrix_band_part),
    shape_rule: None,
    cuda: None,
},
OpDef {
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
    host: Some(|c| space_batch_kernel(c, Direction::ToBatch)),
    shape_rule: None,
    cuda: None,
},
OpDef {
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
    host: Some(|c| space_batch_kernel(c, Direction::ToSpace)),
    shape_rule: None,
    cuda: None,
}];
