//! Convolutions: Conv2D (NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations,
//! groups) and DepthwiseConv2dNative, and their input and filter gradients.

use super::{concat, op_t, spec_op};
use crate::precision::Class;
use crate::spec::{allocate, Host, Kernel, OutputPlan, Spec};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorView};
use tfa_kernels::geometry::window::{
    conv2d_geometry, depthwise_geometry, ConvGeom, ConvPass, DataFormat, Padding, WindowAttrs,
};
use tfa_kernels::host::conv::{
    conv2d, conv2d_bf16_with_epilogue, conv2d_with_epilogue, depthwise_conv2d,
    depthwise_conv2d_with_epilogue, RowsEpilogue, RowsEpilogueF32,
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

/// A convolution's plan: its geometry and its one output.
struct ConvPlan {
    geom: ConvGeom,
    out: OutputPlan,
}

impl ConvPlan {
    fn new(geom: ConvGeom, dtype: DType, shape: Vec<usize>) -> ConvPlan {
        ConvPlan {
            geom,
            out: OutputPlan::new(dtype, shape),
        }
    }
}

/// `Conv2D` (and the fused ops built on it).
struct Conv2D;

impl Spec for Conv2D {
    type Plan = ConvPlan;

    fn plan(ctx: &dyn OpContext) -> Result<ConvPlan> {
        let (x, f) = (ctx.input(0)?, ctx.input(1)?);
        let mut g = with_attrs(ctx, |a| {
            conv2d_geometry(&x.shape, &f.shape, a, ConvPass::Forward)
        })?;
        g.lowp = ctx.matrix_lowp();
        // As TensorFlow: an empty output returns before the launcher's checks.
        if !g.is_empty() {
            g.check_groups()?;
        }
        Ok(ConvPlan::new(g, x.dtype, g.output_shape()))
    }

    fn outputs(p: &ConvPlan) -> Vec<OutputPlan> {
        vec![p.out.clone()]
    }
}

impl Kernel<Conv2D> for Host {
    fn run(ctx: &dyn OpContext, plan: &ConvPlan) -> Result<()> {
        conv2d_host(ctx, plan, TileEpilogue::None).map(|_| ())
    }
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

/// Conv2D of inputs 0 and 1 into output 0 as planned; with an epilogue, run
/// on each tile of output rows where the kernel tiles (returns whether it ran).
fn conv2d_host(ctx: &dyn OpContext, plan: &ConvPlan, epilogue: TileEpilogue) -> Result<bool> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let g = &plan.geom;
    let mut out = allocate(ctx, 0, &plan.out)?;
    match epilogue {
        TileEpilogue::Rows(e) => conv2d_with_epilogue(&x, &f, &mut out, g, e),
        TileEpilogue::Bf16(e) => conv2d_bf16_with_epilogue(&x, &f, &mut out, g, e),
        TileEpilogue::None => conv2d(&x, &f, &mut out, g).map(|_| false),
    }
}

/// `DepthwiseConv2dNative` (and the fused ops built on it).
struct Depthwise;

impl Spec for Depthwise {
    type Plan = ConvPlan;

    fn plan(ctx: &dyn OpContext) -> Result<ConvPlan> {
        let (x, f) = (ctx.input(0)?, ctx.input(1)?);
        let g = with_attrs(ctx, |a| {
            depthwise_geometry(&x.shape, &f.shape, a, ConvPass::Forward)
        })?;
        Ok(ConvPlan::new(g, x.dtype, g.output_shape()))
    }

    fn outputs(p: &ConvPlan) -> Vec<OutputPlan> {
        vec![p.out.clone()]
    }
}

impl Kernel<Depthwise> for Host {
    fn run(ctx: &dyn OpContext, plan: &ConvPlan) -> Result<()> {
        depthwise_host(ctx, plan, None).map(|_| ())
    }
}

/// DepthwiseConv2dNative of inputs 0 and 1 into output 0 as planned; with an
/// epilogue, run on each task's rows where the kernel has tasks (returns
/// whether it ran).
fn depthwise_host(
    ctx: &dyn OpContext,
    plan: &ConvPlan,
    epilogue: Option<&RowsEpilogue>,
) -> Result<bool> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let mut out = allocate(ctx, 0, &plan.out)?;
    match epilogue {
        Some(e) => depthwise_conv2d_with_epilogue(&x, &f, &mut out, &plan.geom, e),
        None => depthwise_conv2d(&x, &f, &mut out, &plan.geom).map(|_| false),
    }
}

/// A fused op's Conv2D (inputs 0 and 1, its attributes): planned, then run
/// on the host with `epilogue` on each tile (returns whether it ran).
pub(crate) fn conv2d_run(ctx: &dyn OpContext, epilogue: TileEpilogue) -> Result<bool> {
    conv2d_host(ctx, &Conv2D::plan(ctx)?, epilogue)
}

/// A fused op's DepthwiseConv2dNative, as `conv2d_run`.
pub(crate) fn depthwise_run(ctx: &dyn OpContext, epilogue: Option<&RowsEpilogue>) -> Result<bool> {
    depthwise_host(ctx, &Depthwise::plan(ctx)?, epilogue)
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

/// Which convolution a gradient spec differentiates, and its op name (for
/// TensorFlow's messages).
trait Grad {
    const KIND: ConvKind;
    const LABEL: &'static str;
}

/// `Conv2DBackpropInput` / `DepthwiseConv2dNativeBackpropInput`.
struct InputGrad<G>(std::marker::PhantomData<G>);
/// `Conv2DBackpropFilter` / `DepthwiseConv2dNativeBackpropFilter`.
struct FilterGrad<G>(std::marker::PhantomData<G>);

struct OfConv2D;
struct OfDepthwise;

impl Grad for OfConv2D {
    const KIND: ConvKind = ConvKind::Conv2D;
    const LABEL: &'static str = "Conv2DBackprop";
}

impl Grad for OfDepthwise {
    const KIND: ConvKind = ConvKind::Depthwise;
    const LABEL: &'static str = "DepthwiseConv2dNativeBackprop";
}

impl<G: Grad> Spec for InputGrad<G> {
    type Plan = ConvPlan;

    fn plan(ctx: &dyn OpContext) -> Result<ConvPlan> {
        let label = &format!("{}Input", G::LABEL);
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
        let mut g = with_attrs(ctx, |a| geometry(G::KIND, &input_shape, &f.shape, a))?;
        g.lowp = ctx.matrix_lowp();
        check_out_backprop(label, &dy, &g)?;
        Ok(ConvPlan::new(g, dy.dtype, input_shape))
    }

    fn outputs(p: &ConvPlan) -> Vec<OutputPlan> {
        vec![p.out.clone()]
    }
}

impl<G: Grad> Kernel<InputGrad<G>> for Host {
    fn run(ctx: &dyn OpContext, plan: &ConvPlan) -> Result<()> {
        let (f, dy) = (ctx.input(1)?, ctx.input(2)?);
        let mut dx = allocate(ctx, 0, &plan.out)?;
        conv_backprop_input(G::KIND, &f, &dy, &mut dx, &plan.geom)
    }
}

impl<G: Grad> Spec for FilterGrad<G> {
    type Plan = ConvPlan;

    fn plan(ctx: &dyn OpContext) -> Result<ConvPlan> {
        let label = &format!("{}Filter", G::LABEL);
        let (x, sizes, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let filter_shape = shape_arg(&sizes, label, "filter_sizes")?;
        let mut g = with_attrs(ctx, |a| geometry(G::KIND, &x.shape, &filter_shape, a))?;
        g.lowp = ctx.matrix_lowp();
        check_out_backprop(label, &dy, &g)?;
        Ok(ConvPlan::new(g, dy.dtype, filter_shape))
    }

    fn outputs(p: &ConvPlan) -> Vec<OutputPlan> {
        vec![p.out.clone()]
    }
}

impl<G: Grad> Kernel<FilterGrad<G>> for Host {
    fn run(ctx: &dyn OpContext, plan: &ConvPlan) -> Result<()> {
        let (x, dy) = (ctx.input(0)?, ctx.input(2)?);
        let mut df = allocate(ctx, 0, &plan.out)?;
        conv_backprop_filter(G::KIND, &x, &dy, &mut df, &plan.geom)
    }
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

/// A convolution gradient op (spec `$spec`): `sizes` names the host-memory
/// shape argument.
macro_rules! conv_grad {
    ($name:literal, $sizes:literal, $summary:literal, $spec:ty) => {
        spec_op!(
            spec: $spec,
            def: {
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
            }
        )
    };
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Conv2D",
        Conv,
        CONV_TYPES,
        "2-D convolution, HWIO filter, NHWC/NCHW, SAME/VALID/EXPLICIT padding, strides, dilations, groups (tiled im2col + gemm; half types accumulate in float32)",
        attr_list: CONV2D_ATTRS,
        spec: Conv2D
    ).amp(Class::Allow).native_low_precision(),
    op_t!(
        "DepthwiseConv2dNative",
        Conv,
        CONV_TYPES,
        "depthwise 2-D convolution, filter [kh, kw, in, multiplier], NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations",
        attr_list: CONV2D_ATTRS,
        spec: Depthwise
    ).amp(Class::Allow),
    conv_grad!(
        "Conv2DBackpropInput",
        "input_sizes",
        "Conv2D input gradient: dy · W^T then col2im per band of output rows (1x1 stride 1: one GEMM); all Conv2D attributes, groups; input_sizes of 4 or 2 values",
        InputGrad<OfConv2D>
    ).amp(Class::Allow).native_low_precision(),
    conv_grad!(
        "Conv2DBackpropFilter",
        "filter_sizes",
        "Conv2D filter gradient: im2col(x)^T · dy per tile, partial filters summed across threads (1x1 stride 1: no im2col); all Conv2D attributes, groups",
        FilterGrad<OfConv2D>
    ).amp(Class::Allow).native_low_precision(),
    conv_grad!(
        "DepthwiseConv2dNativeBackpropInput",
        "input_sizes",
        "depthwise convolution input gradient (direct, per input row), all DepthwiseConv2dNative attributes",
        InputGrad<OfDepthwise>
    ).amp(Class::Allow),
    conv_grad!(
        "DepthwiseConv2dNativeBackpropFilter",
        "filter_sizes",
        "depthwise convolution filter gradient (direct, partial filters summed across threads), all DepthwiseConv2dNative attributes",
        FilterGrad<OfDepthwise>
    ).amp(Class::Allow),
];
