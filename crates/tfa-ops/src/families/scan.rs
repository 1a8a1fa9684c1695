//! Cumsum and Cumprod (`tf.math.cumsum`/`cumprod`, Keras `ops.cumsum`: the
//! causal mask of `MultiHeadAttention(use_causal_mask=True)` is two int32
//! cumsums).

use super::{INDEX, REAL};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};
use tfa_kernels::host::scan::{scan, scan_axis, ScanOp, ScanParams};

fn scan_kernel(ctx: &dyn OpContext, op: ScanOp) -> Result<()> {
    let (x, axis_t) = (ctx.input(0)?, ctx.input(1)?);
    if axis_t.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "ScanOp: axis must be a scalar, not {}",
            fmt_shape(&axis_t.shape)
        )));
    }
    let axis = scan_axis(x.rank(), axis_t.to_i64_vec()?[0])?;
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
    AttrSpec {
        name: "exclusive",
        kind: AttrKind::Bool,
    },
    AttrSpec {
        name: "reverse",
        kind: AttrKind::Bool,
    },
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
        cuda: None,
    },
];
