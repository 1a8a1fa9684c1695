//! Cumsum and Cumprod (`tf.math.cumsum`/`cumprod`, Keras `ops.cumsum`: the
//! causal mask of `MultiHeadAttention(use_causal_mask=True)` is two int32
//! cumsums).

use super::{int_scalar, spec_op, INDEX, REAL};
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::Result;
use tfa_kernels::geometry::axes::scan_axis;
use tfa_kernels::host::scan::{scan, ScanOp, ScanParams};

/// The axis, the scan's parameters and the output.
fn scan_plan(ctx: &dyn OpContext, op: ScanOp) -> Result<((usize, ScanParams), OutputPlan)> {
    let x = ctx.input(0)?;
    let axis = int_scalar(&ctx.input(1)?, |s| {
        format!("ScanOp: axis must be a scalar, not {s}")
    })?;
    let axis = scan_axis(x.rank(), axis)?;
    let p = ScanParams {
        op,
        exclusive: ctx.attrs().bool("exclusive")?,
        reverse: ctx.attrs().bool("reverse")?,
    };
    Ok(((axis, p), OutputPlan::new(x.dtype, x.shape.clone())))
}

fn scan_run(
    ctx: &dyn OpContext,
    ((axis, p), out): &((usize, ScanParams), OutputPlan),
) -> Result<()> {
    scan(&ctx.input(0)?, *axis, *p, &mut allocate(ctx, 0, out)?)
}

const CONSTRAINTS: &[TypeConstraint] = &[
    TypeConstraint {
        attr: "T",
        types: REAL,
    },
    TypeConstraint {
        attr: "Tidx",
        types: INDEX,
    },
];

const ATTRS: &[AttrSpec] = &[
    AttrSpec::new("exclusive", AttrKind::Bool),
    AttrSpec::new("reverse", AttrKind::Bool),
];

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| scan_plan(c, ScanOp::Sum) => ((usize, ScanParams), OutputPlan),
        run: |c, p| scan_run(c, p),
        def: {
            name: "Cumsum",
            family: Family::Reduce,
            summary: "running sum along `axis` (in host memory), `exclusive`/`reverse`; accumulates in the element type as TensorFlow CPU does",
            constraints: CONSTRAINTS,
            attrs: ATTRS,
            host_memory: &["axis"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| scan_plan(c, ScanOp::Prod) => ((usize, ScanParams), OutputPlan),
        run: |c, p| scan_run(c, p),
        def: {
            name: "Cumprod",
            family: Family::Reduce,
            summary: "running product along `axis` (in host memory), `exclusive`/`reverse`; accumulates in the element type as TensorFlow CPU does",
            constraints: CONSTRAINTS,
            attrs: ATTRS,
            host_memory: &["axis"],
            int32_host_memory: &[],
        }
    ),
];
