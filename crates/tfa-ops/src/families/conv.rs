//! Convolutions: Conv2D (NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations,
//! groups) and DepthwiseConv2dNative.

use super::op_t;
use crate::{OpContext, OpDef};
use tfa_core::{DType, Result};
use tfa_kernels::host::conv::{
    conv2d, conv2d_geometry, depthwise_conv2d, depthwise_geometry, DataFormat, Padding, WindowAttrs,
};

const CONV_TYPES: &[DType] = &[DType::F32, DType::F16, DType::BF16, DType::F64];

/// Reads the window attributes both convolutions share and calls `f`.
fn with_attrs<R>(ctx: &dyn OpContext, f: impl FnOnce(&WindowAttrs) -> Result<R>) -> Result<R> {
    let at = ctx.attrs();
    let a = WindowAttrs {
        strides: at.ints("strides")?,
        dilations: at.ints("dilations")?,
        padding: Padding::parse(at.string("padding")?)?,
        explicit_paddings: at.ints("explicit_paddings")?,
        data_format: DataFormat::parse(at.string("data_format")?)?,
    };
    f(&a)
}

fn conv2d_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let g = with_attrs(ctx, |a| conv2d_geometry(&x.shape, &f.shape, a))?;
    let mut out = ctx.allocate_output(0, x.dtype, &g.output_shape())?;
    conv2d(&x, &f, &mut out, &g)
}

fn depthwise_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let g = with_attrs(ctx, |a| depthwise_geometry(&x.shape, &f.shape, a))?;
    let mut out = ctx.allocate_output(0, x.dtype, &g.output_shape())?;
    depthwise_conv2d(&x, &f, &mut out, &g)
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Conv2D",
        Conv,
        CONV_TYPES,
        "2-D convolution, HWIO filter, NHWC/NCHW, SAME/VALID/EXPLICIT padding, strides, dilations, groups (tiled im2col + gemm; half types accumulate in float32)",
        attrs: [
            "strides": IntList,
            "padding": String,
            "explicit_paddings": IntList,
            "data_format": String,
            "dilations": IntList
        ],
        |c| conv2d_kernel(c)
    ),
    op_t!(
        "DepthwiseConv2dNative",
        Conv,
        CONV_TYPES,
        "depthwise 2-D convolution, filter [kh, kw, in, multiplier], NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations",
        attrs: [
            "strides": IntList,
            "padding": String,
            "explicit_paddings": IntList,
            "data_format": String,
            "dilations": IntList
        ],
        |c| depthwise_kernel(c)
    ),
];
