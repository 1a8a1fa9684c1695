//! ScaleAndTranslate and its gradient (NHWC) — `tf.image.resize` with
//! `lanczos3`, `lanczos5`, `gaussian` or `mitchellcubic`, Keras `Resizing`
//! with those interpolations.

use super::{spec_op, FLOAT};
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::geometry::image::{
    scale_and_translate_grad_shape, scale_and_translate_shape, scale_and_translation,
    SamplingKernel,
};
use tfa_kernels::host::scale_translate::{scale_and_translate, scale_and_translate_grad};

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

/// The sampling kernel, antialias, scale and translation (host memory),
/// and the float32 output.
type SamplePlan = ((SamplingKernel, bool, [f32; 2], [f32; 2]), OutputPlan);

fn forward_plan(ctx: &dyn OpContext) -> Result<SamplePlan> {
    let (kernel, antialias) = attrs(ctx)?;
    let (images, size) = (ctx.input(0)?, ctx.input(1)?);
    let shape = scale_and_translate_shape(&images.shape, &size.shape, &size.to_i64_vec()?)?;
    let (scale, translation) = scale_translation(ctx)?;
    let how = (kernel, antialias, scale, translation);
    Ok((how, OutputPlan::new(DType::F32, shape)))
}

fn grad_plan(ctx: &dyn OpContext) -> Result<SamplePlan> {
    let (kernel, antialias) = attrs(ctx)?;
    let (grads, original) = (ctx.input(0)?, ctx.input(1)?);
    let shape = scale_and_translate_grad_shape(&grads.shape, grads.dtype, &original.shape)?;
    let (scale, translation) = scale_translation(ctx)?;
    let how = (kernel, antialias, scale, translation);
    Ok((how, OutputPlan::new(DType::F32, shape)))
}

/// Resamples input 0 (images, or the gradient when `grad`) as planned.
fn resample(
    ctx: &dyn OpContext,
    ((kernel, antialias, scale, translation), out): &SamplePlan,
    grad: bool,
) -> Result<()> {
    let (x, mut y) = (ctx.input(0)?, allocate(ctx, 0, out)?);
    if grad {
        scale_and_translate_grad(&x, *scale, *translation, *kernel, *antialias, &mut y)
    } else {
        scale_and_translate(&x, *scale, *translation, *kernel, *antialias, &mut y)
    }
}

const ATTRS: &[AttrSpec] = &[
    AttrSpec::new("kernel_type", AttrKind::String),
    AttrSpec::new("antialias", AttrKind::Bool),
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
    spec_op!(
        plan: |c| forward_plan(c) => SamplePlan,
        run: |c, p| resample(c, p, false),
        def: {
            name: "ScaleAndTranslate",
            family: Family::Image,
            summary: "resample by `scale` and `translation` to `size` (all host memory) through `kernel_type` (lanczos1/3/5, gaussian, box, triangle, keyscubic, mitchellcubic), widened when downsampling if `antialias`; float32 output as TensorFlow CPU",
            constraints: T_FLOAT,
            attrs: ATTRS,
            host_memory: &["size", "scale", "translation"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| grad_plan(c) => SamplePlan,
        run: |c, p| resample(c, p, true),
        def: {
            name: "ScaleAndTranslateGrad",
            family: Family::Image,
            summary: "gradient of ScaleAndTranslate: float32 `grads` spread back into the original image's height and width through the forward's spans, in TensorFlow's order",
            constraints: T_F32,
            attrs: ATTRS,
            host_memory: &["scale", "translation"],
            int32_host_memory: &[],
        }
    ),
];

#[cfg(test)]
mod tests {
    use crate::testing::{run, Tensor};
    use crate::AttrValue;
    use tfa_core::DType;

    fn attrs(kernel: &str) -> [(&'static str, AttrValue); 2] {
        [
            ("kernel_type", AttrValue::String(kernel.into())),
            ("antialias", AttrValue::Bool(true)),
        ]
    }

    fn inputs(x: &[f32], size: [i32; 2], scale: &[f32]) -> Vec<Tensor> {
        vec![
            Tensor::new(&[1, 2, 2, 1], x),
            Tensor::new(&[2], &size),
            Tensor::new(&[scale.len()], scale),
            Tensor::new(&[2], &[0f32, 0.0]),
        ]
    }

    #[test]
    fn forward_and_grad_through_the_table() {
        let x = [1f32, 2.0, 3.0, 4.0];
        let ctx = run(
            "ScaleAndTranslate",
            DType::F32,
            inputs(&x, [2, 2], &[1.0, 1.0]),
            &attrs("Triangle"),
        )
        .unwrap();
        assert_eq!(ctx.output(0).data::<f32>(), x);
        // Box, 2x2 -> 1x1 antialiased: the mean; its gradient spreads evenly.
        let ctx = run(
            "ScaleAndTranslate",
            DType::F32,
            inputs(&x, [1, 1], &[0.5, 0.5]),
            &attrs("box"),
        )
        .unwrap();
        assert_eq!(ctx.output(0).data::<f32>(), [2.5]);
        let grad = vec![
            Tensor::new(&[1, 1, 1, 1], &[1f32]),
            Tensor::new(&[1, 2, 2, 1], &x),
            Tensor::new(&[2], &[0.5f32, 0.5]),
            Tensor::new(&[2], &[0f32, 0.0]),
        ];
        let ctx = run("ScaleAndTranslateGrad", DType::F32, grad, &attrs("box")).unwrap();
        assert_eq!(ctx.output(0).data::<f32>(), [0.25; 4]);
    }

    #[test]
    fn tensorflow_messages() {
        let x = [1f32, 2.0, 3.0, 4.0];
        let err = |kernel: &str, size: [i32; 2], scale: &[f32]| {
            run(
                "ScaleAndTranslate",
                DType::F32,
                inputs(&x, size, scale),
                &attrs(kernel),
            )
            .err()
            .map(|e| e.to_string())
        };
        assert_eq!(
            err("cubic", [2, 2], &[1.0, 1.0]).as_deref(),
            Some("Unrecognized kernel type: cubic")
        );
        assert_eq!(
            err("box", [0, 2], &[1.0, 1.0]).as_deref(),
            Some("output dimensions must be positive")
        );
        assert_eq!(
            err("box", [2, 2], &[1.0, 1.0, 1.0]).as_deref(),
            Some("t must have two elements[3]")
        );
        assert_eq!(
            err("box", [2, 2], &[1.0, 0.0]).as_deref(),
            Some("Scale must be greater than zero.")
        );
    }
}
