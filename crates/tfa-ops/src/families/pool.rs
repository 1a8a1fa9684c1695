//! Pooling: MaxPool, AvgPool (NHWC/NCHW) and their gradients. Padded
//! positions never count: AvgPool divides by the number of valid elements,
//! as TensorFlow does.

use super::{concat, op_t, spec_op};
use crate::precision::Class;
use crate::spec::{allocate, Host, Kernel, OutputPlan, Spec};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result};
use tfa_kernels::geometry::pool::{
    avg_pool_grad_geometry, max_pool_grad_geometry, pool_geometry, PoolAttrs, PoolGeom, PoolKind,
};
use tfa_kernels::geometry::window::{DataFormat, Padding};
use tfa_kernels::host::pool::pool;
use tfa_kernels::host::pool_argmax::{max_pool_grad_with_argmax, max_pool_with_argmax};
use tfa_kernels::host::pool_grad::{avg_pool_grad, max_pool_grad};

const POOL_TYPES: &[DType] = &[DType::F32, DType::F16, DType::BF16, DType::F64];

/// The pool attributes of this kernel.
fn attrs(ctx: &dyn OpContext, kind: PoolKind) -> Result<PoolAttrs<'_>> {
    let at = ctx.attrs();
    Ok(PoolAttrs {
        ksize: at.ints("ksize")?,
        strides: at.ints("strides")?,
        padding: Padding::parse(at.string("padding")?)?,
        explicit_paddings: match kind {
            PoolKind::Max => at.ints("explicit_paddings")?,
            PoolKind::Avg => &[],
        },
        data_format: DataFormat::parse(at.string("data_format")?)?,
    })
}

/// A pooling plan: the windows (`None`: an empty gradient, nothing to
/// compute) and the outputs.
struct PoolPlan {
    geom: Option<PoolGeom>,
    outs: Vec<OutputPlan>,
}

impl PoolPlan {
    fn new(geom: PoolGeom, outs: Vec<OutputPlan>) -> PoolPlan {
        PoolPlan {
            geom: Some(geom),
            outs,
        }
    }

    fn geom(&self) -> Result<&PoolGeom> {
        self.geom
            .as_ref()
            .ok_or_else(|| Error::Internal("pool plan without windows".into()))
    }
}

/// A max-pool gradient's `what` input (`orig_output`, `grad`) must have the
/// pooled shape `want` (TensorFlow's message; 2-D and 3-D pools).
pub(crate) fn expect_pooled_shape(what: &str, have: &[usize], want: &[usize]) -> Result<()> {
    if have != want {
        return Err(Error::InvalidArgument(format!(
            "Expected {what} shape to be {}, but got {}",
            fmt_shape(want),
            fmt_shape(have)
        )));
    }
    Ok(())
}

/// Pool kinds as types: `Pool<MaxKind>` is MaxPool.
trait Kind {
    const KIND: PoolKind;
}
struct MaxKind;
struct AvgKind;
impl Kind for MaxKind {
    const KIND: PoolKind = PoolKind::Max;
}
impl Kind for AvgKind {
    const KIND: PoolKind = PoolKind::Avg;
}

/// `MaxPool` / `AvgPool`.
struct Pool<K>(std::marker::PhantomData<K>);

impl<K: Kind> Spec for Pool<K> {
    type Plan = PoolPlan;

    fn plan(ctx: &dyn OpContext) -> Result<PoolPlan> {
        let x = ctx.input(0)?;
        let g = pool_geometry(K::KIND, &x.shape, &attrs(ctx, K::KIND)?)?;
        Ok(PoolPlan::new(
            g,
            vec![OutputPlan::new(x.dtype, g.output_shape())],
        ))
    }

    fn outputs(p: &PoolPlan) -> Vec<OutputPlan> {
        p.outs.clone()
    }
}

impl<K: Kind> Kernel<Pool<K>> for Host {
    fn run(ctx: &dyn OpContext, p: &PoolPlan) -> Result<()> {
        let x = ctx.input(0)?;
        pool(K::KIND, &x, &mut allocate(ctx, 0, &p.outs[0])?, p.geom()?)
    }
}

/// `MaxPoolGrad`.
struct MaxPoolGrad;

impl Spec for MaxPoolGrad {
    type Plan = PoolPlan;

    fn plan(ctx: &dyn OpContext) -> Result<PoolPlan> {
        let (x, y, dy) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
        let g = max_pool_grad_geometry(&x.shape, &attrs(ctx, PoolKind::Max)?)?;
        expect_pooled_shape("orig_output", &y.shape, &g.output_shape())?;
        expect_pooled_shape("grad", &dy.shape, &g.output_shape())?;
        Ok(PoolPlan::new(
            g,
            vec![OutputPlan::new(x.dtype, x.shape.clone())],
        ))
    }

    fn outputs(p: &PoolPlan) -> Vec<OutputPlan> {
        p.outs.clone()
    }
}

impl Kernel<MaxPoolGrad> for Host {
    fn run(ctx: &dyn OpContext, p: &PoolPlan) -> Result<()> {
        let (x, dy) = (ctx.input(0)?, ctx.input(2)?);
        max_pool_grad(&x, &dy, &mut allocate(ctx, 0, &p.outs[0])?, p.geom()?)
    }
}

/// `AvgPoolGrad`.
struct AvgPoolGrad;

impl Spec for AvgPoolGrad {
    type Plan = PoolPlan;

    fn plan(ctx: &dyn OpContext) -> Result<PoolPlan> {
        let (sizes, dy) = (ctx.input(0)?, ctx.input(1)?);
        let not_4 = || {
            format!(
                "orig_input_shape must be 1-dimensional and 4 elements, got {}",
                fmt_shape(&sizes.shape)
            )
        };
        if sizes.rank() != 1 || sizes.num_elements() != 4 {
            return Err(Error::InvalidArgument(not_4()));
        }
        if dy.rank() != 4 {
            return Err(Error::InvalidArgument(
                "out_backprop must be 4-dimensional".into(),
            ));
        }
        let shape = super::shape_vector(&sizes, not_4)?;
        let geom = avg_pool_grad_geometry(&shape, &dy.shape, &attrs(ctx, PoolKind::Avg)?)?;
        Ok(PoolPlan {
            geom,
            outs: vec![OutputPlan::new(dy.dtype, shape)],
        })
    }

    fn outputs(p: &PoolPlan) -> Vec<OutputPlan> {
        p.outs.clone()
    }
}

impl Kernel<AvgPoolGrad> for Host {
    fn run(ctx: &dyn OpContext, p: &PoolPlan) -> Result<()> {
        let dy = ctx.input(1)?;
        let mut dx = allocate(ctx, 0, &p.outs[0])?;
        let Some(g) = &p.geom else { return Ok(()) };
        if g.conv.n == dx.shape[0] {
            return avg_pool_grad(&dy, &mut dx, g);
        }
        // A grad with fewer images: no gradient for the others.
        dx.bytes_mut().fill(0);
        avg_pool_grad(&dy, &mut dx.outer_prefix(g.conv.n)?, g)
    }
}

/// The window of MaxPoolWithArgmax and its gradient (NHWC, no depth
/// window: TensorFlow's argmax kernel pools spatially only).
fn argmax_geometry(ctx: &dyn OpContext, shape: &[usize]) -> Result<PoolGeom> {
    let at = ctx.attrs();
    let a = PoolAttrs {
        ksize: at.ints("ksize")?,
        strides: at.ints("strides")?,
        padding: Padding::parse(at.string("padding")?)?,
        explicit_paddings: &[],
        data_format: DataFormat::Nhwc,
    };
    for (v, field) in [(a.ksize, "ksize"), (a.strides, "stride")] {
        if v.len() != 4 {
            return Err(Error::InvalidArgument(format!(
                "Sliding window {field} field must specify 4 dimensions"
            )));
        }
    }
    if a.ksize[3] != 1 || a.strides[3] != 1 {
        return Err(Error::Unimplemented(
            "MaxPoolWithArgmax pools across width/height only on the NPU".into(),
        ));
    }
    pool_geometry(PoolKind::Max, shape, &a)
}

/// `MaxPoolWithArgmax`: the pooled values and the int64 argmax.
struct MaxPoolWithArgmax;

impl Spec for MaxPoolWithArgmax {
    type Plan = PoolPlan;

    fn plan(ctx: &dyn OpContext) -> Result<PoolPlan> {
        let x = ctx.input(0)?;
        let g = argmax_geometry(ctx, &x.shape)?;
        if x.num_elements() == 0 {
            return Err(Error::InvalidArgument("tensor_in must not be empty".into()));
        }
        let shape = g.output_shape();
        let outs = vec![
            OutputPlan::new(x.dtype, shape.clone()),
            OutputPlan::new(DType::I64, shape),
        ];
        Ok(PoolPlan::new(g, outs))
    }

    fn outputs(p: &PoolPlan) -> Vec<OutputPlan> {
        p.outs.clone()
    }
}

impl Kernel<MaxPoolWithArgmax> for Host {
    fn run(ctx: &dyn OpContext, p: &PoolPlan) -> Result<()> {
        let x = ctx.input(0)?;
        let batch = ctx.attrs().bool("include_batch_in_index")?;
        let mut out = allocate(ctx, 0, &p.outs[0])?;
        let mut argmax = allocate(ctx, 1, &p.outs[1])?;
        max_pool_with_argmax(&x, p.geom()?, batch, &mut out, &mut argmax)
    }
}

/// `MaxPoolGradWithArgmax`.
struct MaxPoolGradWithArgmax;

impl Spec for MaxPoolGradWithArgmax {
    type Plan = PoolPlan;

    fn plan(ctx: &dyn OpContext) -> Result<PoolPlan> {
        let (x, grad) = (ctx.input(0)?, ctx.input(1)?);
        let g = argmax_geometry(ctx, &x.shape)?;
        expect_pooled_shape("grad", &grad.shape, &g.output_shape())?;
        Ok(PoolPlan::new(
            g,
            vec![OutputPlan::new(grad.dtype, x.shape.clone())],
        ))
    }

    fn outputs(p: &PoolPlan) -> Vec<OutputPlan> {
        p.outs.clone()
    }
}

impl Kernel<MaxPoolGradWithArgmax> for Host {
    fn run(ctx: &dyn OpContext, p: &PoolPlan) -> Result<()> {
        let (grad, argmax) = (ctx.input(1)?, ctx.input(2)?);
        let batch = ctx.attrs().bool("include_batch_in_index")?;
        max_pool_grad_with_argmax(&grad, &argmax, batch, &mut allocate(ctx, 0, &p.outs[0])?)
    }
}

/// Every pooling window's attributes.
const WINDOW_ATTRS: &[AttrSpec] = &[
    AttrSpec::new("ksize", AttrKind::Int32List),
    AttrSpec::new("strides", AttrKind::Int32List),
    AttrSpec::new("padding", AttrKind::String),
];

const ARGMAX_ATTRS: &[AttrSpec] = &concat::<AttrSpec, 4>(
    WINDOW_ATTRS,
    &[AttrSpec::new("include_batch_in_index", AttrKind::Bool)],
);

/// The attributes of a pool without explicit paddings (2-D and 3-D).
pub(crate) const POOL_ATTRS: &[AttrSpec] = &concat::<AttrSpec, 4>(
    WINDOW_ATTRS,
    &[AttrSpec::new("data_format", AttrKind::String)],
);

/// MaxPool's and MaxPoolGrad's attributes (explicit paddings too).
const MAX_POOL_ATTRS: &[AttrSpec] = &concat::<AttrSpec, 5>(
    POOL_ATTRS,
    &[AttrSpec::new("explicit_paddings", AttrKind::IntList)],
);

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "MaxPool",
        Pool,
        POOL_TYPES,
        "max over windows, NHWC/NCHW, SAME/VALID/EXPLICIT padding (padded positions ignored); pooling across depth (ksize over channels)",
        attr_list: MAX_POOL_ATTRS,
        spec: Pool<MaxKind>
    ).amp(Class::Clear),
    op_t!(
        "AvgPool",
        Pool,
        POOL_TYPES,
        "mean over windows, NHWC/NCHW, SAME/VALID; divides by the number of non-padded elements",
        attr_list: POOL_ATTRS,
        spec: Pool<AvgKind>
    ).amp(Class::Infer),
    op_t!(
        "MaxPoolGrad",
        Pool,
        POOL_TYPES,
        "MaxPool gradient: routed to the first maximum of each window in row-major order (TensorFlow's CPU tie rule, maxima recomputed from orig_input), NHWC/NCHW, SAME/VALID/EXPLICIT",
        attr_list: MAX_POOL_ATTRS,
        spec: MaxPoolGrad
    ).amp(Class::Clear),
    spec_op!(
        spec: AvgPoolGrad,
        def: {
            name: "AvgPoolGrad",
            family: Family::Pool,
            summary: "AvgPool gradient: spread over the non-padded elements of each window, NHWC/NCHW, SAME/VALID",
            constraints: &[TypeConstraint {
                attr: "T",
                types: POOL_TYPES,
            }],
            attrs: POOL_ATTRS,
            host_memory: &["orig_input_shape"],
            int32_host_memory: &[],
        }
    ).amp(Class::Infer),
    spec_op!(
        spec: MaxPoolWithArgmax,
        def: {
            name: "MaxPoolWithArgmax",
            family: Family::Pool,
            summary: "MaxPool (NHWC, SAME/VALID) and the flat index of each maximum (int64; first maximum in row-major window order, batch in the index or not), as TensorFlow CPU",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: POOL_TYPES,
                },
                TypeConstraint {
                    attr: "Targmax",
                    types: &[DType::I64],
                },
            ],
            attrs: ARGMAX_ATTRS,
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        spec: MaxPoolGradWithArgmax,
        def: {
            name: "MaxPoolGradWithArgmax",
            family: Family::Pool,
            summary: "gradient of MaxPoolWithArgmax: each gradient added at its argmax; out-of-range indices raise InvalidArgument",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: POOL_TYPES,
                },
                TypeConstraint {
                    attr: "Targmax",
                    types: &[DType::I64],
                },
            ],
            attrs: ARGMAX_ATTRS,
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
];
