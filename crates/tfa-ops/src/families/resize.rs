//! Image resizing (NHWC): ResizeBilinear, ResizeNearestNeighbor,
//! ResizeBicubic and their gradients, ResizeArea — Keras `Resizing`
//! (bilinear, nearest, bicubic, area), `UpSampling2D` with bilinear
//! interpolation, `tf.image.resize`.

use super::{spec_op, FLOAT};
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::{DType, Result, TensorMut, TensorView};
use tfa_kernels::geometry::image::{
    resize_grad_shape, resize_nearest_grad_shape, resize_shape, ResizeAttrs,
};
use tfa_kernels::host::resize::{
    resize_bilinear, resize_bilinear_grad, resize_nearest, resize_nearest_grad,
};
use tfa_kernels::host::resize_bicubic::{resize_area, resize_bicubic, resize_bicubic_grad};

fn attrs(ctx: &dyn OpContext) -> Result<ResizeAttrs> {
    Ok(ResizeAttrs {
        align_corners: ctx.attrs().bool("align_corners")?,
        half_pixel_centers: ctx.attrs().bool("half_pixel_centers")?,
    })
}

/// The forward output shape from input 0 and the `size` input 1.
fn resized(ctx: &dyn OpContext, a: ResizeAttrs) -> Result<Vec<usize>> {
    let (x, size) = (ctx.input(0)?, ctx.input(1)?);
    resize_shape(&x.shape, &size.shape, &size.to_i64_vec()?, a)
}

/// A resize's attributes and output.
type ResizePlan = (ResizeAttrs, OutputPlan);

/// The forward ops: float32 (Nearest: the input's type) of the `size`d shape.
fn resize_plan(ctx: &dyn OpContext, a: ResizeAttrs, keep_type: bool) -> Result<ResizePlan> {
    let dtype = if keep_type {
        ctx.input(0)?.dtype
    } else {
        DType::F32
    };
    Ok((a, OutputPlan::new(dtype, resized(ctx, a)?)))
}

/// Bilinear and bicubic gradients: the original image's shape and type.
fn grad_plan(ctx: &dyn OpContext) -> Result<ResizePlan> {
    let a = attrs(ctx)?;
    let (grads, original) = (ctx.input(0)?, ctx.input(1)?);
    let shape = resize_grad_shape(&grads.shape, grads.dtype, &original.shape, a)?;
    Ok((a, OutputPlan::new(original.dtype, shape)))
}

/// ResizeArea has no `half_pixel_centers` (its cells are always centred).
fn area_attrs(ctx: &dyn OpContext) -> Result<ResizeAttrs> {
    Ok(ResizeAttrs {
        align_corners: ctx.attrs().bool("align_corners")?,
        half_pixel_centers: false,
    })
}

fn nearest_grad_plan(ctx: &dyn OpContext) -> Result<ResizePlan> {
    let a = attrs(ctx)?;
    let (grads, size) = (ctx.input(0)?, ctx.input(1)?);
    let shape = resize_nearest_grad_shape(&grads.shape, &size.shape, &size.to_i64_vec()?, a)?;
    Ok((a, OutputPlan::new(grads.dtype, shape)))
}

/// Runs `kernel` from input 0 into the planned output.
fn resize_run(
    ctx: &dyn OpContext,
    (a, out): &ResizePlan,
    kernel: fn(&TensorView, ResizeAttrs, &mut TensorMut) -> Result<()>,
) -> Result<()> {
    kernel(&ctx.input(0)?, *a, &mut allocate(ctx, 0, out)?)
}

const ATTRS: &[AttrSpec] = &[
    AttrSpec::new("align_corners", AttrKind::Bool),
    AttrSpec::new("half_pixel_centers", AttrKind::Bool),
];

const T_FLOAT: &[TypeConstraint] = &[TypeConstraint {
    attr: "T",
    types: FLOAT,
}];

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| resize_plan(c, attrs(c)?, false) => ResizePlan,
        run: |c, p| resize_run(c, p, resize_bilinear),
        def: {
            name: "ResizeBilinear",
            family: Family::Image,
            summary: "bilinear resize to `size` (host memory), float32 output; align_corners / half_pixel_centers as TensorFlow CPU",
            constraints: T_FLOAT,
            attrs: ATTRS,
            host_memory: &["size"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| grad_plan(c) => ResizePlan,
        run: |c, p| resize_run(c, p, resize_bilinear_grad),
        def: {
            name: "ResizeBilinearGrad",
            family: Family::Image,
            summary: "gradient of ResizeBilinear: float32 `grads` accumulated into the original image's shape and dtype, in TensorFlow's order",
            constraints: T_FLOAT,
            attrs: ATTRS,
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| resize_plan(c, attrs(c)?, true) => ResizePlan,
        run: |c, p| resize_run(c, p, resize_nearest),
        def: {
            name: "ResizeNearestNeighbor",
            family: Family::Image,
            summary: "nearest-neighbour resize to `size` (host memory); align_corners / half_pixel_centers as TensorFlow CPU",
            constraints: T_FLOAT,
            attrs: ATTRS,
            host_memory: &["size"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| nearest_grad_plan(c) => ResizePlan,
        run: |c, p| resize_run(c, p, resize_nearest_grad),
        def: {
            name: "ResizeNearestNeighborGrad",
            family: Family::Image,
            summary: "gradient of ResizeNearestNeighbor: each resized pixel's gradient summed into the pixel it copied (`size` in host memory)",
            constraints: T_FLOAT,
            attrs: ATTRS,
            host_memory: &["size"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| resize_plan(c, attrs(c)?, false) => ResizePlan,
        run: |c, p| resize_run(c, p, resize_bicubic),
        def: {
            name: "ResizeBicubic",
            family: Family::Image,
            summary: "bicubic resize to `size` (host memory), float32 output: TensorFlow's weight table, Keys' kernel with half_pixel_centers, the legacy clamped kernel without",
            constraints: T_FLOAT,
            attrs: ATTRS,
            host_memory: &["size"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| grad_plan(c) => ResizePlan,
        run: |c, p| resize_run(c, p, resize_bicubic_grad),
        def: {
            name: "ResizeBicubicGrad",
            family: Family::Image,
            summary: "gradient of ResizeBicubic: float32 `grads` spread over the sixteen taps, in the original image's float32/float64, in TensorFlow's order",
            constraints: &[TypeConstraint {
                attr: "T",
                types: &[DType::F32, DType::F64],
            }],
            attrs: ATTRS,
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| resize_plan(c, area_attrs(c)?, false) => ResizePlan,
        run: |c, p| resize_area(&c.input(0)?, p.0.align_corners, &mut allocate(c, 0, &p.1)?),
        def: {
            name: "ResizeArea",
            family: Family::Image,
            summary: "area resize to `size` (host memory): coverage-weighted mean of the input cells under each output cell, float32 output",
            constraints: T_FLOAT,
            attrs: &[AttrSpec::new("align_corners", AttrKind::Bool)],
            host_memory: &["size"],
            int32_host_memory: &[],
        }
    ),
];
