//! Float elementwise ops that are one map of `tfa_kernels::host::maps`:
//! one line each (TensorFlow name, map, docs/ops.md summary). Adding such an
//! op is this line plus the map's one-line body in the kernels crate; the
//! registration, docs/ops.md and the coverage report come from the table.
//! (docs/ops.md, "How to add an op", walks through it with Softsign.)

use super::FLOAT;
use crate::{Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};
use tfa_kernels::host::maps::{self, Map1, Map2};

/// `y = M(x)`, reusing `x`'s buffer when TensorFlow allows it.
fn unary<M: Map1>(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let (mut out, fwd) = ctx.forward_or_allocate(&[0], 0, x.dtype, &x.shape)?;
    maps::map1::<M>(&x, &mut out, fwd.is_some())
}

/// `dx = M(gradients, features)`: two same-shape inputs, as TensorFlow's
/// `BinaryElementWiseOp` gradients check.
fn grad<M: Map2>(ctx: &dyn OpContext) -> Result<()> {
    let (g, x) = (ctx.input(0)?, ctx.input(1)?);
    if g.shape != x.shape {
        return Err(Error::InvalidArgument(format!(
            "{}: inputs must have the same shape: {} vs. {}",
            ctx.node_name(),
            fmt_shape(&g.shape),
            fmt_shape(&x.shape)
        )));
    }
    let (mut out, fwd) = ctx.forward_or_allocate(&[0, 1], 0, g.dtype, &g.shape)?;
    maps::map2::<M>(&g, &x, &mut out, fwd)
}

/// One float op on a map: `map!("TfName", Kind: MapType, "summary")` with
/// Kind `unary` (one input) or `grad` (gradients, features).
macro_rules! map {
    ($name:literal, $kind:ident: $map:ident, $summary:literal) => {
        OpDef {
            name: $name,
            family: Family::Elementwise,
            summary: $summary,
            constraints: &[TypeConstraint {
                attr: "T",
                types: FLOAT,
            }],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
            host: Some($kind::<maps::$map>),
            cuda: None,
        }
    };
}

pub(super) const OPS: &[OpDef] = &[
    map!("Softsign", unary: Softsign, "x / (abs(x) + 1)"),
    map!("SoftsignGrad", grad: SoftsignGrad, "softsign gradient: g / (abs(x) + 1)^2"),
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
