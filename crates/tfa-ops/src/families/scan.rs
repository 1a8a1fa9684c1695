//! Cumsum and Cumprod (`tf.math.cumsum`/`cumprod`, Keras `ops.cumsum`: the
//! causal mask of `MultiHeadAttention(use_causal_mask=True)` is two int32
//! cumsums).

use super::{int_scalar, INDEX, REAL};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::Result;
use tfa_kernels::host::scan::{scan, scan_axis, ScanOp, ScanParams};

fn scan_kernel(ctx: &dyn OpContext, op: ScanOp) -> Result<()> {
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
    let mut out = ctx.allocate_output(0, x.dtype, &x.shape)?;
    scan(&x, axis, p, &mut out)
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
    OpDef {
        name: "Cumsum",
        family: Family::Reduce,
        summary: "running sum along `axis` (in host memory), `exclusive`/`reverse`; accumulates in the element type as TensorFlow CPU does",
        constraints: CONSTRAINTS,
        attrs: ATTRS,
        host_memory: &["axis"],
        int32_host_memory: &[],
        host: Some(|c| scan_kernel(c, ScanOp::Sum)),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "Cumprod",
        family: Family::Reduce,
        summary: "running product along `axis` (in host memory), `exclusive`/`reverse`; accumulates in the element type as TensorFlow CPU does",
        constraints: CONSTRAINTS,
        attrs: ATTRS,
        host_memory: &["axis"],
        int32_host_memory: &[],
        host: Some(|c| scan_kernel(c, ScanOp::Prod)),
        shape_rule: None,
        cuda: None,
    },
];
