//! Image resizing (NHWC): ResizeBilinear, ResizeNearestNeighbor,
//! ResizeBicubic and their gradients, ResizeArea — Keras `Resizing`
//! (bilinear, nearest, bicubic, area), `UpSampling2D` with bilinear
//! interpolation, `tf.image.resize`.

use super::FLOAT;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::host::resize::{
    resize_bilinear, resize_bilinear_grad, resize_grad_shape, resize_nearest, resize_nearest_grad,
    resize_nearest_grad_shape, resize_shape, ResizeAttrs,
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

fn bilinear(ctx: &dyn OpContext) -> Result<()> {
    let a = attrs(ctx)?;
    let shape = resized(ctx, a)?;
    let mut out = ctx.allocate_output(0, DType::F32, &shape)?;
    resize_bilinear(&ctx.input(0)?, a, &mut out)
}

fn bilinear_grad(ctx: &dyn OpContext) -> Result<()> {
    let a = attrs(ctx)?;
    let (grads, original) = (ctx.input(0)?, ctx.input(1)?);
    let shape = resize_grad_shape(&grads.shape, grads.dtype, &original.shape, a)?;
    let mut out = ctx.allocate_output(0, original.dtype, &shape)?;
    resize_bilinear_grad(&grads, a, &mut out)
}

fn bicubic(ctx: &dyn OpContext) -> Result<()> {
    let a = attrs(ctx)?;
    let shape = resized(ctx, a)?;
    let mut out = ctx.allocate_output(0, DType::F32, &shape)?;
    resize_bicubic(&ctx.input(0)?, a, &mut out)
}

fn bicubic_grad(ctx: &dyn OpContext) -> Result<()> {
    let a = attrs(ctx)?;
    let (grads, original) = (ctx.input(0)?, ctx.input(1)?);
    let shape = resize_grad_shape(&grads.shape, grads.dtype, &original.shape, a)?;
    let mut out = ctx.allocate_output(0, original.dtype, &shape)?;
    resize_bicubic_grad(&grads, a, &mut out)
}

/// ResizeArea has no `half_pixel_centers` (its cells are always centred).
fn area(ctx: &dyn OpContext) -> Result<()> {
    let a = ResizeAttrs {
        align_corners: ctx.attrs().bool("align_corners")?,
        half_pixel_centers: false,
    };
    let shape = resized(ctx, a)?;
    let mut out = ctx.allocate_output(0, DType::F32, &shape)?;
    resize_area(&ctx.input(0)?, a.align_corners, &mut out)
}

fn nearest(ctx: &dyn OpContext) -> Result<()> {
    let a = attrs(ctx)?;
    let shape = resized(ctx, a)?;
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, x.dtype, &shape)?;
    resize_nearest(&x, a, &mut out)
}

fn nearest_grad(ctx: &dyn OpContext) -> Result<()> {
    let a = attrs(ctx)?;
    let (grads, size) = (ctx.input(0)?, ctx.input(1)?);
    let shape = resize_nearest_grad_shape(&grads.shape, &size.shape, &size.to_i64_vec()?, a)?;
    let mut out = ctx.allocate_output(0, grads.dtype, &shape)?;
    resize_nearest_grad(&grads, a, &mut out)
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
    OpDef {
        name: "ResizeBilinear",
        family: Family::Image,
        summary: "bilinear resize to `size` (host memory), float32 output; align_corners / half_pixel_centers as TensorFlow CPU",
        constraints: T_FLOAT,
        attrs: ATTRS,
        host_memory: &["size"],
        int32_host_memory: &[],
        host: Some(bilinear),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "ResizeBilinearGrad",
        family: Family::Image,
        summary: "gradient of ResizeBilinear: float32 `grads` accumulated into the original image's shape and dtype, in TensorFlow's order",
        constraints: T_FLOAT,
        attrs: ATTRS,
        host_memory: &[],
        int32_host_memory: &[],
        host: Some(bilinear_grad),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "ResizeNearestNeighbor",
        family: Family::Image,
        summary: "nearest-neighbour resize to `size` (host memory); align_corners / half_pixel_centers as TensorFlow CPU",
        constraints: T_FLOAT,
        attrs: ATTRS,
        host_memory: &["size"],
        int32_host_memory: &[],
        host: Some(nearest),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "ResizeNearestNeighborGrad",
        family: Family::Image,
        summary: "gradient of ResizeNearestNeighbor: each resized pixel's gradient summed into the pixel it copied (`size` in host memory)",
        constraints: T_FLOAT,
        attrs: ATTRS,
        host_memory: &["size"],
        int32_host_memory: &[],
        host: Some(nearest_grad),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "ResizeBicubic",
        family: Family::Image,
        summary: "bicubic resize to `size` (host memory), float32 output: TensorFlow's weight table, Keys' kernel with half_pixel_centers, the legacy clamped kernel without",
        constraints: T_FLOAT,
        attrs: ATTRS,
        host_memory: &["size"],
        int32_host_memory: &[],
        host: Some(bicubic),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(bicubic_grad),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "ResizeArea",
        family: Family::Image,
        summary: "area resize to `size` (host memory): coverage-weighted mean of the input cells under each output cell, float32 output",
        constraints: T_FLOAT,
        attrs: &[AttrSpec::new("align_corners", AttrKind::Bool)],
        host_memory: &["size"],
        int32_host_memory: &[],
        host: Some(area),
        shape_rule: None,
        cuda: None,
    },
];
