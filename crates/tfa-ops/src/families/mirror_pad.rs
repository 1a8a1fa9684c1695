//! MirrorPad and MirrorPadGrad (`tf.pad` with mode REFLECT or SYMMETRIC;
//! Keras `MelSpectrogram` and `STFTSpectrogram` centre their frames with it).

use super::{spec_op, INDEX};
use crate::precision::Class;
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::geometry::mirror_pad::{mirror_pad_grad_shape, mirror_pad_shape, MirrorMode};
use tfa_kernels::host::mirror_pad::{mirror_pad, mirror_pad_grad};

/// The mode and the paddings (`[rank, 2]`, host memory) of either op.
fn args(ctx: &dyn OpContext) -> Result<(MirrorMode, Vec<usize>, Vec<i64>)> {
    let mode = MirrorMode::parse(ctx.attrs().string("mode")?)?;
    let pads = ctx.input(1)?;
    Ok((mode, pads.shape.clone(), pads.to_i64_vec()?))
}

fn before(pads: &[i64]) -> Vec<usize> {
    pads.iter().step_by(2).map(|&b| b as usize).collect()
}

/// Either op's mode, padding before each dim, and output.
type MirrorPlan = ((MirrorMode, Vec<usize>), OutputPlan);

fn pad_plan(ctx: &dyn OpContext) -> Result<MirrorPlan> {
    let (mode, pad_shape, pads) = args(ctx)?;
    let x = ctx.input(0)?;
    let shape = mirror_pad_shape(&x.shape, &pad_shape, &pads, mode)?;
    Ok(((mode, before(&pads)), OutputPlan::new(x.dtype, shape)))
}

fn grad_plan(ctx: &dyn OpContext) -> Result<MirrorPlan> {
    let (mode, pad_shape, pads) = args(ctx)?;
    let dy = ctx.input(0)?;
    let shape = mirror_pad_grad_shape(&dy.shape, &pad_shape, &pads, mode)?;
    Ok(((mode, before(&pads)), OutputPlan::new(dy.dtype, shape)))
}

fn mirror_run(ctx: &dyn OpContext, ((mode, before), out): &MirrorPlan, grad: bool) -> Result<()> {
    let (x, mut y) = (ctx.input(0)?, allocate(ctx, 0, out)?);
    if grad {
        mirror_pad_grad(&x, before, *mode, &mut y)
    } else {
        mirror_pad(&x, before, *mode, &mut y)
    }
}

const ATTRS: &[AttrSpec] = &[AttrSpec::new("mode", AttrKind::String)];

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| pad_plan(c) => MirrorPlan,
        run: |c, p| mirror_run(c, p, false),
        def: {
            name: "MirrorPad",
            family: Family::Movement,
            summary: "REFLECT / SYMMETRIC padding (`paddings` [rank, 2] in host memory), rank 0 to 5; elements moved as bytes",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: DType::ALL,
                },
                TypeConstraint {
                    attr: "Tpaddings",
                    types: INDEX,
                },
            ],
            attrs: ATTRS,
            host_memory: &["paddings"],
            int32_host_memory: &[],
        }
    ).amp(Class::Clear),
    spec_op!(
        plan: |c| grad_plan(c) => MirrorPlan,
        run: |c, p| mirror_run(c, p, true),
        def: {
            name: "MirrorPadGrad",
            family: Family::Movement,
            summary: "gradient of MirrorPad: each padded dimension folded back onto the interior, adding in the element type",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64],
                },
                TypeConstraint {
                    attr: "Tpaddings",
                    types: INDEX,
                },
            ],
            attrs: ATTRS,
            host_memory: &["paddings"],
            int32_host_memory: &[],
        }
    ),
];
