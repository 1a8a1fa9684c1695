//! MirrorPad and MirrorPadGrad (`tf.pad` with mode REFLECT or SYMMETRIC;
//! Keras `MelSpectrogram` and `STFTSpectrogram` centre their frames with it).

use super::INDEX;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::host::mirror_pad::{
    mirror_pad, mirror_pad_grad, mirror_pad_grad_shape, mirror_pad_shape, MirrorMode,
};

/// The mode and the paddings (`[rank, 2]`, host memory) of either op.
fn args(ctx: &dyn OpContext) -> Result<(MirrorMode, Vec<usize>, Vec<i64>)> {
    let mode = MirrorMode::parse(ctx.attrs().string("mode")?)?;
    let pads = ctx.input(1)?;
    Ok((mode, pads.shape.clone(), pads.to_i64_vec()?))
}

fn before(pads: &[i64]) -> Vec<usize> {
    pads.iter().step_by(2).map(|&b| b as usize).collect()
}

fn pad_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (mode, pad_shape, pads) = args(ctx)?;
    let x = ctx.input(0)?;
    let shape = mirror_pad_shape(&x.shape, &pad_shape, &pads, mode)?;
    let mut out = ctx.allocate_output(0, x.dtype, &shape)?;
    mirror_pad(&x, &before(&pads), mode, &mut out)
}

fn grad_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (mode, pad_shape, pads) = args(ctx)?;
    let dy = ctx.input(0)?;
    let shape = mirror_pad_grad_shape(&dy.shape, &pad_shape, &pads, mode)?;
    let mut dx = ctx.allocate_output(0, dy.dtype, &shape)?;
    mirror_pad_grad(&dy, &before(&pads), mode, &mut dx)
}

const ATTRS: &[AttrSpec] = &[AttrSpec::new("mode", AttrKind::String)];

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
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
        host: Some(pad_kernel),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(grad_kernel),
        shape_rule: None,
        cuda: None,
    },
];
