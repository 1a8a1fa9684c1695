//! ScaleAndTranslate and its gradient (NHWC) — `tf.image.resize` with
//! `lanczos3`, `lanczos5`, `gaussian` or `mitchellcubic`, Keras `Resizing`
//! with those interpolations.

use super::FLOAT;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::host::scale_translate::{
    scale_and_translate, scale_and_translate_grad, scale_and_translate_grad_shape,
    scale_and_translate_shape, scale_and_translation, SamplingKernel,
};

/// `kernel_type` (checked first: TensorFlow refuses it when it builds the
/// kernel) and `antialias`.
fn attrs(ctx: &dyn OpContext) -> Result<(SamplingKernel, bool)> {
    Ok((
        SamplingKernel::parse(ctx.attrs().string("kernel_type")?)?,
        ctx.attrs().bool("antialias")?,
    ))
}

/// Inputs 2 and 3, `scale` and `translation`: float32 vectors of two values.
fn scale_translation(ctx: &dyn OpContext) -> Result<([f32; 2], [f32; 2])> {
    let (s, t) = (ctx.input(2)?, ctx.input(3)?);
    scale_and_translation(&s.shape, s.data::<f32>()?, &t.shape, t.data::<f32>()?)
}

fn forward(ctx: &dyn OpContext) -> Result<()> {
    let (kernel, antialias) = attrs(ctx)?;
    let (images, size) = (ctx.input(0)?, ctx.input(1)?);
    let shape = scale_and_translate_shape(&images.shape, &size.shape, &size.to_i64_vec()?)?;
    let (scale, translation) = scale_translation(ctx)?;
    let mut out = ctx.allocate_output(0, DType::F32, &shape)?;
    scale_and_translate(&images, scale, translation, kernel, antialias, &mut out)
}

fn grad(ctx: &dyn OpContext) -> Result<()> {
    let (kernel, antialias) = attrs(ctx)?;
    let (grads, original) = (ctx.input(0)?, ctx.input(1)?);
    let shape = scale_and_translate_grad_shape(&grads.shape, grads.dtype, &original.shape)?;
    let (scale, translation) = scale_translation(ctx)?;
    let mut out = ctx.allocate_output(0, DType::F32, &shape)?;
    scale_and_translate_grad(&grads, scale, translation, kernel, antialias, &mut out)
}

const ATTRS: &[AttrSpec] = &[
    AttrSpec {
        name: "kernel_type",
        kind: AttrKind::String,
    },
    AttrSpec {
        name: "antialias",
        kind: AttrKind::Bool,
    },
];

const T_FLOAT: &[TypeConstraint] = &[TypeConstraint {
    attr: "T",
    types: FLOAT,
}];

const T_F32: &[TypeConstraint] = &[TypeConstraint {
    attr: "T",
    types: &[DType::F32],
}];

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
        name: "ScaleAndTranslate",
        family: Family::Image,
        summary: "resample by `scale` and `translation` to `size` (all host memory) through `kernel_type` (lanczos1/3/5, gaussian, box, triangle, keyscubic, mitchellcubic), widened when downsampling if `antialias`; float32 output as TensorFlow CPU",
        constraints: T_FLOAT,
        attrs: ATTRS,
        host_memory: &["size", "scale", "translation"],
        int32_host_memory: &[],
        host: Some(forward),
        cuda: None,
    },
    OpDef {
        name: "ScaleAndTranslateGrad",
        family: Family::Image,
        summary: "gradient of ScaleAndTranslate: float32 `grads` spread back into the original image's height and width through the forward's spans, in TensorFlow's order",
        constraints: T_F32,
        attrs: ATTRS,
        host_memory: &["scale", "translation"],
        int32_host_memory: &[],
        host: Some(grad),
        cuda: None,
    },
];
