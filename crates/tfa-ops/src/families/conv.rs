//! Convolutions: Conv2D (NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations,
//! groups) and DepthwiseConv2dNative, and their input and filter gradients.

use super::{concat, op_t};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorView};
use tfa_kernels::host::conv::{
    conv2d, conv2d_bf16_with_epilogue, conv2d_geometry, conv2d_with_epilogue, depthwise_conv2d,
    depthwise_conv2d_with_epilogue, depthwise_geometry, ConvGeom, ConvPass, DataFormat, Padding,
    RowsEpilogue, RowsEpilogueF32, WindowAttrs,
};
use tfa_kernels::host::conv_grad::{conv_backprop_filter, conv_backprop_input, ConvKind};

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
    conv2d_run(ctx, TileEpilogue::None).map(|_| ())
}

/// What a Conv2D runs on each tile of output rows as soon as it is done.
#[derive(Clone, Copy)]
pub(crate) enum TileEpilogue<'a> {
    None,
    /// On the rows in the output's dtype (float32 outputs).
    Rows(&'a RowsEpilogue<'a>),
    /// On a bfloat16 output's float32 accumulators, before they are rounded.
    Bf16(&'a RowsEpilogueF32<'a>),
}

/// Conv2D of inputs 0 and 1 into output 0; with an epilogue, run on each
/// tile of output rows where the kernel tiles (returns whether it ran).
pub(crate) fn conv2d_run(ctx: &dyn OpContext, epilogue: TileEpilogue) -> Result<bool> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let mut g = with_attrs(ctx, |a| {
        conv2d_geometry(&x.shape, &f.shape, a, ConvPass::Forward)
    })?;
    g.lowp = ctx.matrix_lowp();
    // As TensorFlow: an empty output returns before the launcher's checks.
    if !g.is_empty() {
        g.check_groups()?;
    }
    let mut out = ctx.allocate_output(0, x.dtype, &g.output_shape())?;
    match epilogue {
        TileEpilogue::Rows(e) => conv2d_with_epilogue(&x, &f, &mut out, &g, e),
        TileEpilogue::Bf16(e) => conv2d_bf16_with_epilogue(&x, &f, &mut out, &g, e),
        TileEpilogue::None => conv2d(&x, &f, &mut out, &g).map(|_| false),
    }
}

fn depthwise_kernel(ctx: &dyn OpContext) -> Result<()> {
    depthwise_run(ctx, None).map(|_| ())
}

/// DepthwiseConv2dNative of inputs 0 and 1 into output 0; with an epilogue,
/// run on each task's rows where the kernel has tasks (returns whether it ran).
pub(crate) fn depthwise_run(ctx: &dyn OpContext, epilogue: Option<&RowsEpilogue>) -> Result<bool> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let g = with_attrs(ctx, |a| {
        depthwise_geometry(&x.shape, &f.shape, a, ConvPass::Forward)
    })?;
    let mut out = ctx.allocate_output(0, x.dtype, &g.output_shape())?;
    match epilogue {
        Some(e) => depthwise_conv2d_with_epilogue(&x, &f, &mut out, &g, e),
        None => depthwise_conv2d(&x, &f, &mut out, &g).map(|_| false),
    }
}

/// A shape given as an int32 vector (`input_sizes`, `filter_sizes`).
fn shape_arg(t: &TensorView, label: &str, arg: &str) -> Result<Vec<usize>> {
    super::shape_vector(t, || {
        format!("{label}: {arg} input must be 1-dim, not {}", t.rank())
    })
}

/// The gradients' geometry: the forward's checks, with the gradient
/// kernels' error classes, and (Conv2D) the forward launcher's group checks
/// when there is something to compute.
fn geometry(kind: ConvKind, x: &[usize], f: &[usize], a: &WindowAttrs) -> Result<ConvGeom> {
    match kind {
        ConvKind::Conv2D => {
            let g = conv2d_geometry(x, f, a, ConvPass::Backward)?;
            if !g.is_empty() {
                g.check_groups()?;
            }
            Ok(g)
        }
        ConvKind::Depthwise => depthwise_geometry(x, f, a, ConvPass::Backward),
    }
}

/// `out_backprop` must have the forward's output shape.
fn check_out_backprop(label: &str, dy: &TensorView, g: &ConvGeom) -> Result<()> {
    if dy.rank() != 4 {
        return Err(Error::InvalidArgument(format!(
            "{label}: out_backprop must be 4-dimensional"
        )));
    }
    let want = g.output_shape();
    if dy.shape != want {
        return Err(Error::InvalidArgument(format!(
            "{label}: Size of out_backprop doesn't match computed: actual = {}, computed = {}",
            fmt_shape(&dy.shape),
            fmt_shape(&want)
        )));
    }
    Ok(())
}

fn backprop_input_kernel(ctx: &dyn OpContext, kind: ConvKind, label: &str) -> Result<()> {
    let (sizes, f, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let sizes = shape_arg(&sizes, label, "input_sizes")?;
    let fmt = DataFormat::parse(ctx.attrs().string("data_format")?)?;
    let input_shape = match sizes.len() {
        4 => sizes,
        // Spatial sizes only: batch from out_backprop, depth from the filter.
        2 if dy.rank() == 4 && f.rank() == 4 => {
            let [n, ..] = fmt.nhwc(&dy.shape);
            fmt.shape(n, sizes[0], sizes[1], f.shape[2])
        }
        n => {
            return Err(Error::InvalidArgument(format!(
                "{label} requires input_sizes to contain 4 values or 2 values, but got: {n}"
            )))
        }
    };
    let mut g = with_attrs(ctx, |a| geometry(kind, &input_shape, &f.shape, a))?;
    g.lowp = ctx.matrix_lowp();
    check_out_backprop(label, &dy, &g)?;
    let mut dx = ctx.allocate_output(0, dy.dtype, &input_shape)?;
    conv_backprop_input(kind, &f, &dy, &mut dx, &g)
}

fn backprop_filter_kernel(ctx: &dyn OpContext, kind: ConvKind, label: &str) -> Result<()> {
    let (x, sizes, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let filter_shape = shape_arg(&sizes, label, "filter_sizes")?;
    let mut g = with_attrs(ctx, |a| geometry(kind, &x.shape, &filter_shape, a))?;
    g.lowp = ctx.matrix_lowp();
    check_out_backprop(label, &dy, &g)?;
    let mut df = ctx.allocate_output(0, dy.dtype, &filter_shape)?;
    conv_backprop_filter(kind, &x, &dy, &mut df, &g)
}

/// The attributes of a convolution without explicit paddings (2-D and 3-D).
pub(crate) const CONV_ATTRS: &[AttrSpec] = &[
    AttrSpec::new("strides", AttrKind::Int32List),
    AttrSpec::new("padding", AttrKind::String),
    AttrSpec::new("data_format", AttrKind::String),
    AttrSpec::new("dilations", AttrKind::Int32List),
];

/// Conv2D's and DepthwiseConv2dNative's attributes, and their gradients'.
const CONV2D_ATTRS: &[AttrSpec] = &concat::<AttrSpec, 5>(
    CONV_ATTRS,
    &[AttrSpec::new("explicit_paddings", AttrKind::IntList)],
);

/// A convolution gradient op: `sizes` names the host-memory shape argument.
macro_rules! conv_grad {
    ($name:literal, $sizes:literal, $summary:literal, $body:expr) => {
        OpDef {
            name: $name,
            family: Family::Conv,
            summary: $summary,
            constraints: &[TypeConstraint {
                attr: "T",
                types: CONV_TYPES,
            }],
            attrs: CONV2D_ATTRS,
            host_memory: &[$sizes],
            int32_host_memory: &[],
            host: Some({
                fn kernel(ctx: &dyn OpContext) -> Result<()> {
                    $body(ctx)
                }
                kernel
            }),
            cuda: None,
        }
    };
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Conv2D",
        Conv,
        CONV_TYPES,
        "2-D convolution, HWIO filter, NHWC/NCHW, SAME/VALID/EXPLICIT padding, strides, dilations, groups (tiled im2col + gemm; half types accumulate in float32)",
        attr_list: CONV2D_ATTRS,
        |c| conv2d_kernel(c)
    ),
    op_t!(
        "DepthwiseConv2dNative",
        Conv,
        CONV_TYPES,
        "depthwise 2-D convolution, filter [kh, kw, in, multiplier], NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations",
        attr_list: CONV2D_ATTRS,
        |c| depthwise_kernel(c)
    ),
    conv_grad!(
        "Conv2DBackpropInput",
        "input_sizes",
        "Conv2D input gradient: dy · W^T then col2im per band of output rows (1x1 stride 1: one GEMM); all Conv2D attributes, groups; input_sizes of 4 or 2 values",
        |c| backprop_input_kernel(c, ConvKind::Conv2D, "Conv2DBackpropInput")
    ),
    conv_grad!(
        "Conv2DBackpropFilter",
        "filter_sizes",
        "Conv2D filter gradient: im2col(x)^T · dy per tile, partial filters summed across threads (1x1 stride 1: no im2col); all Conv2D attributes, groups",
        |c| backprop_filter_kernel(c, ConvKind::Conv2D, "Conv2DBackpropFilter")
    ),
    conv_grad!(
        "DepthwiseConv2dNativeBackpropInput",
        "input_sizes",
        "depthwise convolution input gradient (direct, per input row), all DepthwiseConv2dNative attributes",
        |c| backprop_input_kernel(c, ConvKind::Depthwise, "DepthwiseConv2dNativeBackpropInput")
    ),
    conv_grad!(
        "DepthwiseConv2dNativeBackpropFilter",
        "filter_sizes",
        "depthwise convolution filter gradient (direct, partial filters summed across threads), all DepthwiseConv2dNative attributes",
        |c| backprop_filter_kernel(c, ConvKind::Depthwise, "DepthwiseConv2dNativeBackpropFilter")
    ),
];
