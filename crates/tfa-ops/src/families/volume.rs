//! 3-D window ops on NDHWC volumes: Conv3D and its gradients, MaxPool3D,
//! AvgPool3D and theirs. Argument checks and messages are those of
//! TensorFlow's CPU kernels (conv_ops_3d.cc, conv_grad_ops_3d.cc,
//! pooling_ops_3d.cc), except that dilations are supported (TensorFlow's CPU
//! kernels reject them; its GPU kernels do not). NCDHW is rejected as on CPU.

use super::conv::CONV_ATTRS;
use super::pool::{expect_pooled_shape, POOL_ATTRS};
use super::{op_t, shape_vector, spec_op, FLOAT, INDEX};
use crate::precision::Class;
use crate::spec::{allocate, Outputs};
use crate::{Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorView};
use tfa_kernels::geometry::volume::VolGeom;
use tfa_kernels::geometry::window::Padding;
use tfa_kernels::host::conv3d::{conv3d, conv3d_backprop, Conv3dGrad};
use tfa_kernels::host::pool3d::{avg_pool3d_grad, max_pool3d_grad, pool3d, Pool3dKind};

fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(Error::InvalidArgument(msg.into()))
}

/// `data_format`: true for NDHWC; NCDHW is valid but has no NPU kernel.
fn ndhwc(ctx: &dyn OpContext) -> Result<bool> {
    match ctx.attrs().string("data_format")? {
        "NDHWC" => Ok(true),
        "NCDHW" => Ok(false),
        _ => invalid("Invalid data format"),
    }
}

/// `v` (5 values in data-format order) in NDHWC order.
fn to_ndhwc<T: Copy>(v: &[T], ndhwc: bool) -> Vec<T> {
    if ndhwc || v.len() != 5 {
        v.to_vec()
    } else {
        vec![v[0], v[2], v[3], v[4], v[1]]
    }
}

/// `v` (NDHWC order) in data-format order.
fn from_ndhwc(v: &[usize], ndhwc: bool) -> Vec<usize> {
    if ndhwc {
        v.to_vec()
    } else {
        vec![v[0], v[4], v[1], v[2], v[3]]
    }
}

/// A 5-element list attribute with one in batch and channels.
fn five(v: &[i64], field: &str, what: &str) -> Result<()> {
    if v.len() != 5 {
        return invalid(format!("{field} field must specify 5 dimensions"));
    }
    if v[0] != 1 || v[4] != 1 {
        return invalid(format!(
            "Current implementation does not yet support {what} in the batch and depth dimensions."
        ));
    }
    Ok(())
}

/// The window attributes of a 3-D convolution (strides, dilations in NDHWC
/// order) after the constructor checks of the op, forward or gradient.
struct ConvAttrs {
    strides: Vec<i64>,
    dilations: Vec<i64>,
    padding: Padding,
    ndhwc: bool,
}

fn conv_attrs(ctx: &dyn OpContext, gradient: Option<&str>) -> Result<ConvAttrs> {
    let at = ctx.attrs();
    let ndhwc = ndhwc(ctx)?;
    let strides = to_ndhwc(at.ints("strides")?, ndhwc);
    let dilations = to_ndhwc(at.ints("dilations")?, ndhwc);
    let stride_field = "Sliding window strides";
    if let Some(op) = gradient {
        if !ndhwc {
            return invalid(format!("{op} only supports NDHWC on the NPU."));
        }
        five(&dilations, "Dilation rates", "dilation rates")?;
        five(&strides, stride_field, "strides")?;
    } else {
        five(&strides, stride_field, "strides")?;
        if strides[1..4].iter().any(|&s| s <= 0) {
            return invalid("Spatial strides should be larger than 0.");
        }
        five(&dilations, "Dilation rates", "dilation rates")?;
        if dilations[1..4].iter().any(|&d| d <= 0) {
            return invalid("Dilated rates should be larger than 0.");
        }
    }
    let padding = Padding::parse(at.string("padding")?)?;
    if padding == Padding::Explicit {
        return invalid("Conv3D does not support EXPLICIT padding");
    }
    Ok(ConvAttrs {
        strides,
        dilations,
        padding,
        ndhwc,
    })
}

fn geometry(x: &[usize], f: &[usize], a: &ConvAttrs) -> Result<VolGeom> {
    VolGeom::new(
        x,
        [f[0], f[1], f[2]],
        f[4],
        &a.strides,
        &a.dilations,
        a.padding,
    )
}

/// A 3-D window op's plan: its geometry and its one output.
struct VolPlan {
    geom: VolGeom,
    out: OutputPlan,
}

impl Outputs for VolPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

fn conv3d_plan(ctx: &dyn OpContext) -> Result<VolPlan> {
    let (x, f) = (ctx.input(0)?, ctx.input(1)?);
    let a = conv_attrs(ctx, None)?;
    if x.rank() != 5 {
        return invalid("input must be 5-dimensional");
    }
    if f.rank() != 5 {
        return invalid("filter must be 5-dimensional");
    }
    let xs = to_ndhwc(&x.shape, a.ndhwc);
    let (in_depth, filter_depth) = (xs[4], f.shape[3]);
    if filter_depth == 0 {
        return invalid("filter_depth must be non-zero");
    }
    if in_depth % filter_depth != 0 {
        return invalid(format!(
            "Input depth must be evenly divisible by filter depth: {in_depth} vs {filter_depth}"
        ));
    }
    if f.num_elements() == 0 {
        return invalid(
            "filter must not have zero elements (i.e. all dimensions must be non-zero)",
        );
    }
    let g = geometry(&xs, &f.shape, &a)?;
    let out = OutputPlan::new(x.dtype, from_ndhwc(&g.output_shape(), a.ndhwc));
    // As TensorFlow, an empty output is returned before the checks below.
    if out.shape.contains(&0) {
        return Ok(VolPlan { geom: g, out });
    }
    if !a.ndhwc {
        return invalid(
            "NPU implementation of Conv3D currently only supports the NHWC tensor format.",
        );
    }
    if in_depth != filter_depth {
        return invalid(format!(
            "Number of channels in filter ({filter_depth}) must match last dimension of input ({in_depth})"
        ));
    }
    Ok(VolPlan { geom: g, out })
}

fn conv3d_run(ctx: &dyn OpContext, p: &VolPlan) -> Result<()> {
    let mut out = allocate(ctx, 0, &p.out)?;
    if out.num_elements() == 0 {
        return Ok(());
    }
    conv3d(&ctx.input(0)?, &ctx.input(1)?, &mut out, &p.geom)
}

/// The shape checks both gradients share (`ConvBackpropComputeDimensions`
/// with TensorFlow's label) and their geometry.
fn grad_geometry(
    label: &str,
    x: &[usize],
    f: &[usize],
    dy: &TensorView,
    a: &ConvAttrs,
) -> Result<VolGeom> {
    if x.len() != 5 {
        return invalid("input tensor must have 5 dimensions");
    }
    if f.len() != 5 {
        return invalid("filter_sizes tensor must have 5 dimensions");
    }
    if dy.rank() != 5 {
        return invalid("out_backprop tensor must have 5 dimensions");
    }
    if x[4] != f[3] {
        return invalid(format!(
            "input and filter_sizes must have the same number of channels. Got {} for input and {} for filter_sizes",
            x[4], f[3]
        ));
    }
    if dy.shape[4] != f[4] {
        return invalid(format!(
            "out_backprop and filter_sizes must have the same number of channels. Got {} for out_backprop and {} for filter_sizes",
            dy.shape[4], f[4]
        ));
    }
    if x[0] != dy.shape[0] {
        return invalid(format!(
            "{label}: input and out_backprop must have the same batch size. Input batch: {}, outbackprop batch: {}, batch_dim: 0",
            x[0], dy.shape[0]
        ));
    }
    if f[3] == 0 {
        return invalid(format!(
            "{label}: filter depth must be strictly greated than zero"
        ));
    }
    let g = geometry(x, f, a)?;
    for i in 0..3 {
        if dy.shape[i + 1] != g.output[i] {
            return invalid(format!(
                "{label}: Size of out_backprop doesn't match computed: actual = {}, computed = {} spatial_dim: {} input: {} filter: {} output: {} stride: {} dilation: {}",
                dy.shape[i + 1],
                g.output[i],
                i + 1,
                x[i + 1],
                f[i],
                g.output[i],
                g.strides[i],
                g.dilations[i]
            ));
        }
    }
    Ok(g)
}

fn conv3d_backprop_input_plan(ctx: &dyn OpContext) -> Result<VolPlan> {
    let (sizes, f, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let a = conv_attrs(ctx, Some("Conv3DBackpropInputOpV2"))?;
    let x = shape_vector(&sizes, || {
        format!(
            "shape must be a vector of {{int32,int64}}, got shape {}",
            fmt_shape(&sizes.shape)
        )
    })?;
    let geom = grad_geometry("Conv3DBackpropInputOp", &x, &f.shape, &dy, &a)?;
    Ok(VolPlan {
        geom,
        out: OutputPlan::new(dy.dtype, x),
    })
}

/// A Conv3D gradient: `Input` from (filter, dy), `Filter` from (x, dy).
fn conv3d_backprop_run(ctx: &dyn OpContext, p: &VolPlan, grad: Conv3dGrad) -> Result<()> {
    let operand = ctx.input(if grad == Conv3dGrad::Input { 1 } else { 0 })?;
    let dy = ctx.input(2)?;
    conv3d_backprop(grad, &operand, &dy, &mut allocate(ctx, 0, &p.out)?, &p.geom)
}

fn conv3d_backprop_filter_plan(ctx: &dyn OpContext) -> Result<VolPlan> {
    let (x, sizes, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let a = conv_attrs(ctx, Some("Conv3DBackpropFilterOpV2"))?;
    let f = shape_vector(&sizes, || {
        format!(
            "filter_sizes shape must be rank 1 but is rank {}",
            sizes.rank()
        )
    })?;
    let geom = grad_geometry("Conv3DBackpropFilterOp", &x.shape, &f, &dy, &a)?;
    Ok(VolPlan {
        geom,
        out: OutputPlan::new(dy.dtype, f),
    })
}

// ---------------------------------------------------------------- pools ----

/// `ksize` and `strides` after the constructor checks of a 3-D pool
/// (`ksize_positive`: the forward ops reject non-positive windows there).
fn pool_attrs(
    ctx: &dyn OpContext,
    op: &str,
    ksize_positive: bool,
) -> Result<(Vec<i64>, Vec<i64>, Padding)> {
    let at = ctx.attrs();
    if !ndhwc(ctx)? {
        return invalid(format!("{op} only supports NDHWC on the NPU"));
    }
    let (ksize, strides) = (at.ints("ksize")?, at.ints("strides")?);
    if ksize.len() != 5 {
        return invalid("Sliding window ksize field must specify 5 dimensions");
    }
    if ksize_positive && ksize.iter().any(|&k| k <= 0) {
        return invalid("Sliding window ksize field must have non-negative dimensions");
    }
    if strides.len() != 5 {
        return invalid("Sliding window stride field must specify 5 dimensions");
    }
    if ksize[0] != 1 || strides[0] != 1 {
        return Err(Error::Unimplemented(
            "Pooling is not yet supported on the batch dimension.".into(),
        ));
    }
    if ksize[4] != 1 || strides[4] != 1 {
        return Err(Error::Unimplemented(
            "Pooling is not yet supported on the depth dimension.".into(),
        ));
    }
    let padding = Padding::parse(at.string("padding")?)?;
    if padding == Padding::Explicit {
        return invalid("3-D pooling does not support EXPLICIT padding");
    }
    Ok((ksize.to_vec(), strides.to_vec(), padding))
}

fn pool_geometry(
    input: &[usize],
    ksize: &[i64],
    strides: &[i64],
    padding: Padding,
) -> Result<VolGeom> {
    // ksize is checked non-negative where TensorFlow checks it; a negative
    // window left to here can only come from the unchecked gradient.
    let k = |i: usize| {
        usize::try_from(ksize[i]).map_err(|_| {
            Error::InvalidArgument(format!("ksize must be positive, got: {}", ksize[i]))
        })
    };
    VolGeom::new(
        input,
        [k(1)?, k(2)?, k(3)?],
        input[4],
        strides,
        &[],
        padding,
    )
}

fn pool3d_plan(ctx: &dyn OpContext) -> Result<VolPlan> {
    let x = ctx.input(0)?;
    let (ksize, strides, padding) = pool_attrs(ctx, "Pooling3DOp", true)?;
    if x.rank() != 5 {
        return invalid("tensor_in must be 5-dimensional");
    }
    let geom = pool_geometry(&x.shape, &ksize, &strides, padding)?;
    let out = OutputPlan::new(x.dtype, geom.output_shape());
    Ok(VolPlan { geom, out })
}

fn max_pool3d_grad_plan(ctx: &dyn OpContext) -> Result<VolPlan> {
    let (x, y, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let (ksize, strides, padding) = pool_attrs(ctx, "MaxPooling3dGradOp", false)?;
    for (t, what) in [(&x, "tensor_in"), (&y, "tensor_out"), (&dy, "out_backprop")] {
        if t.rank() != 5 {
            return invalid(format!("{what} must be 5-dimensional"));
        }
    }
    if x.dtype != dy.dtype || y.dtype != dy.dtype {
        return Err(Error::Unimplemented(
            "MaxPool3DGrad on the NPU needs orig_input, orig_output and grad of one type".into(),
        ));
    }
    let g = pool_geometry(&x.shape, &ksize, &strides, padding)?;
    expect_pooled_shape("orig_output", &y.shape, &g.output_shape())?;
    expect_pooled_shape("grad", &dy.shape, &g.output_shape())?;
    Ok(VolPlan {
        geom: g,
        out: OutputPlan::new(dy.dtype, x.shape.clone()),
    })
}

fn max_pool3d_grad_run(ctx: &dyn OpContext, p: &VolPlan) -> Result<()> {
    let (x, y, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    max_pool3d_grad(&x, &y, &dy, &mut allocate(ctx, 0, &p.out)?, &p.geom)
}

fn avg_pool3d_grad_plan(ctx: &dyn OpContext) -> Result<VolPlan> {
    let (sizes, dy) = (ctx.input(0)?, ctx.input(1)?);
    let (ksize, strides, padding) = pool_attrs(ctx, "AvgPooling3dGradOp", false)?;
    if let Some(k) = ksize.iter().find(|&&k| k <= 0) {
        return invalid(format!("ksize must be positive, got: {k}"));
    }
    let not_5 = || "tensor_in must be 1-dimensional and 5 elements".to_string();
    if sizes.rank() != 1 || sizes.num_elements() != 5 {
        return invalid(not_5());
    }
    if dy.rank() != 5 {
        return invalid("out_backprop must be 5-dimensional");
    }
    let shape = shape_vector(&sizes, not_5)?;
    let mut g = pool_geometry(&shape, &ksize, &strides, padding)?;
    for (i, what) in [(0, "first"), (4, "last")] {
        if shape[i] != dy.shape[i] {
            return invalid(format!(
                "Expected {what} dimension of tensor_in_shape and out_backprop to match, got {} and {}",
                shape[i], dy.shape[i]
            ));
        }
    }
    // As TensorFlow, the gradient's own spatial size drives the loop: its
    // windows must start inside the input.
    for i in 0..3 {
        let o = dy.shape[i + 1];
        if o > 0 && (o - 1) * g.strides[i] > g.input[i] {
            return invalid("index * stride must be less than or equal to input size");
        }
        g.output[i] = o;
    }
    Ok(VolPlan {
        geom: g,
        out: OutputPlan::new(dy.dtype, shape),
    })
}

const HALF_FLOAT: &[DType] = &[DType::F32, DType::F16, DType::BF16];

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Conv3D",
        Conv,
        FLOAT,
        "3-D convolution, NDHWC, DHWIO filter, SAME/VALID, strides, dilations (im2col + GEMM per band of output rows; half types in float32)",
        attr_list: CONV_ATTRS,
        plan: |c| conv3d_plan(c) => VolPlan,
        run: |c, p| conv3d_run(c, p)
    ).amp(Class::Allow),
    spec_op!(
        plan: |c| conv3d_backprop_input_plan(c) => VolPlan,
        run: |c, p| conv3d_backprop_run(c, p, Conv3dGrad::Input),
        def: {
            name: "Conv3DBackpropInputV2",
            family: Family::Conv,
            summary: "Conv3D input gradient (Conv3DTranspose): dy · Wᵀ per band, then col2im per image; input_sizes int32/int64 in host memory",
            constraints: &[
                TypeConstraint { attr: "T", types: FLOAT },
                TypeConstraint { attr: "Tshape", types: INDEX },
            ],
            attrs: CONV_ATTRS,
            host_memory: &["input_sizes"],
            int32_host_memory: &[],
        }
    ).amp(Class::Allow),
    spec_op!(
        plan: |c| conv3d_backprop_filter_plan(c) => VolPlan,
        run: |c, p| conv3d_backprop_run(c, p, Conv3dGrad::Filter),
        def: {
            name: "Conv3DBackpropFilterV2",
            family: Family::Conv,
            summary: "Conv3D filter gradient: im2col(x)ᵀ · dy accumulated over bands of output rows; filter_sizes in host memory",
            constraints: &[TypeConstraint { attr: "T", types: FLOAT }],
            attrs: CONV_ATTRS,
            host_memory: &["filter_sizes"],
            int32_host_memory: &[],
        }
    ).amp(Class::Allow),
    op_t!(
        "MaxPool3D",
        Pool,
        HALF_FLOAT,
        "max over 3-D windows, NDHWC, SAME/VALID (padding counts as the lowest finite value, as Eigen's)",
        attr_list: POOL_ATTRS,
        plan: |c| pool3d_plan(c) => VolPlan,
        run: |c, p| pool3d(Pool3dKind::Max, &c.input(0)?, &mut allocate(c, 0, &p.out)?, &p.geom)
    ),
    op_t!(
        "AvgPool3D",
        Pool,
        FLOAT,
        "mean over 3-D windows, NDHWC, SAME/VALID; divides by the in-bounds elements",
        attr_list: POOL_ATTRS,
        plan: |c| pool3d_plan(c) => VolPlan,
        run: |c, p| pool3d(Pool3dKind::Avg, &c.input(0)?, &mut allocate(c, 0, &p.out)?, &p.geom)
    ).amp(Class::Infer),
    spec_op!(
        plan: |c| max_pool3d_grad_plan(c) => VolPlan,
        run: |c, p| max_pool3d_grad_run(c, p),
        def: {
            name: "MaxPool3DGrad",
            family: Family::Pool,
            summary: "MaxPool3D gradient with TensorFlow's CPU rule: every element within 1e-5 of the window's orig_output takes the gradient",
            constraints: &[
                TypeConstraint { attr: "T", types: HALF_FLOAT },
                TypeConstraint { attr: "TInput", types: HALF_FLOAT },
            ],
            attrs: POOL_ATTRS,
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| avg_pool3d_grad_plan(c) => VolPlan,
        run: |c, p| avg_pool3d_grad(&c.input(1)?, &mut allocate(c, 0, &p.out)?, &p.geom),
        def: {
            name: "AvgPool3DGrad",
            family: Family::Pool,
            summary: "AvgPool3D gradient: spread over the in-bounds elements of each window; orig_input_shape in host memory",
            constraints: &[TypeConstraint { attr: "T", types: FLOAT }],
            attrs: POOL_ATTRS,
            host_memory: &["orig_input_shape"],
            int32_host_memory: &[],
        }
    ),
];
