//! Float elementwise ops that are one map of `tfa_kernels::host::maps`:
//! one line each (TensorFlow name, map, docs/ops.md summary). Adding such an
//! op is this line plus the map's one-line body in the kernels crate; the
//! registration, docs/ops.md and the coverage report come from the table.
//! (docs/ops.md, "How to add an op", walks through it with Softsign.)

use super::elementwise::same_shape;
use super::spec_op;
use super::FLOAT;
use crate::precision::Class;
use crate::spec::Outputs;
use crate::{Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::host::maps::{self, Map1, Map2};

/// A map's output (input 0's dtype and shape) and its attribute value.
struct MapPlan {
    out: OutputPlan,
    p: f32,
}

impl Outputs for MapPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

/// `y = M(x)` with attribute value `p`, reusing `x`'s buffer when
/// TensorFlow allows it.
fn unary<M: Map1>(ctx: &dyn OpContext, plan: &MapPlan) -> Result<()> {
    let x = ctx.input(0)?;
    let (mut out, fwd) = ctx.forward_or_allocate(&[0], 0, plan.out.dtype, &plan.out.shape)?;
    maps::map1::<M>(&x, plan.p, &mut out, fwd.is_some())
}

/// `dx = M(gradients, features)`: two same-shape inputs, as TensorFlow's
/// `BinaryElementWiseOp` gradients check (`same_shape`).
fn grad<M: Map2>(ctx: &dyn OpContext, plan: &MapPlan) -> Result<()> {
    let (g, x) = (ctx.input(0)?, ctx.input(1)?);
    let (mut out, fwd) = ctx.forward_or_allocate(&[0, 1], 0, plan.out.dtype, &plan.out.shape)?;
    maps::map2::<M>(&g, &x, plan.p, &mut out, fwd)
}

/// The plan of a `unary` map: input 0 as it is.
fn unary_plan(ctx: &dyn OpContext, p: f32) -> Result<MapPlan> {
    let x = ctx.input(0)?;
    Ok(MapPlan {
        out: OutputPlan::new(x.dtype, x.shape.clone()),
        p,
    })
}

/// The plan of a `grad` map: two inputs of one shape.
fn grad_plan(ctx: &dyn OpContext, p: f32) -> Result<MapPlan> {
    Ok(MapPlan {
        out: same_shape(ctx)?,
        p,
    })
}

/// One float op on a map: `map!("TfName", kind: MapType, "summary")`, kind
/// `unary` (one input) or `grad` (gradients, features); `attr "name"` before
/// the summary passes that float attribute to the map.
macro_rules! map {
    ($name:literal, $kind:ident: $map:ident, $summary:literal) => {
        map!(@def $name, FLOAT, $kind, $map, $summary, [], |_c| Ok(0.0))
    };
    ($name:literal, $kind:ident: $map:ident, attr $attr:literal, $summary:literal) => {
        map!(@def $name, FLOAT, $kind, $map, $summary,
             [crate::AttrSpec { name: $attr, kind: crate::AttrKind::Float }],
             |c| c.attrs().float($attr))
    };
    // Fewer types than the four float ones: those TensorFlow's CPU kernel has.
    ($name:literal, $kind:ident: $map:ident, types $types:expr, $summary:literal) => {
        map!(@def $name, $types, $kind, $map, $summary, [], |_c| Ok(0.0))
    };
    (@def $name:literal, $types:expr, $kind:ident, $map:ident, $summary:literal, [$($attrs:expr)?], |$c:ident| $p:expr) => {
        spec_op!(
            plan: |$c| map_plan!($kind)($c, $p?) => MapPlan,
            run: |c, p| $kind::<maps::$map>(c, p),
            def: {
                name: $name,
                family: Family::Elementwise,
                summary: $summary,
                constraints: &[TypeConstraint {
                    attr: "T",
                    types: $types,
                }],
                attrs: &[$($attrs)?],
                host_memory: &[],
                int32_host_memory: &[],
            }
        )
    };
}

/// The plan function of a map kind.
macro_rules! map_plan {
    (unary) => {
        unary_plan
    };
    (grad) => {
        grad_plan
    };
}

pub(super) const OPS: &[OpDef] = &[
    map!("Softsign", unary: Softsign, "x / (abs(x) + 1)").amp(Class::Infer),
    map!("SoftsignGrad", grad: SoftsignGrad, "softsign gradient: g / (abs(x) + 1)^2").amp(Class::Infer),
    map!("LeakyRelu", unary: LeakyRelu, attr "alpha", "x > 0 ? x : alpha * x").amp(Class::Infer),
    map!("LeakyReluGrad", grad: LeakyReluGrad, attr "alpha", "x > 0 ? g : alpha * g").amp(Class::Infer),
    map!("Sign", unary: Sign, "-1, 0 or 1 by the sign of x; NaN stays NaN (float types; integer Sign stays with TensorFlow)").amp(Class::Clear),
    map!("Rint", unary: Rint, types &[DType::F32, DType::F64], "round half to even (float32/float64, as TensorFlow's CPU kernel)"),
    map!("Sin", unary: Sin, "sine"),
    map!("Cos", unary: Cos, "cosine"),
    map!("Tan", unary: Tan, "tangent"),
    map!("Asin", unary: Asin, "inverse sine (NaN outside [-1, 1])"),
    map!("Acos", unary: Acos, "inverse cosine (NaN outside [-1, 1])"),
    map!("Atan", unary: Atan, "inverse tangent"),
    map!("Sinh", unary: Sinh, "hyperbolic sine"),
    map!("Cosh", unary: Cosh, "hyperbolic cosine"),
    map!("Asinh", unary: Asinh, "inverse hyperbolic sine"),
    map!("Acosh", unary: Acosh, "inverse hyperbolic cosine (NaN below 1)"),
    map!("Atanh", unary: Atanh, "inverse hyperbolic tangent (±inf at ±1)"),
];
