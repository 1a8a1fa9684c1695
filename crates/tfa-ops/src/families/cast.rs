//! Cast between every pair of supported types.

use super::ALL_C64;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::Result;
use tfa_kernels::host::cast::cast;

fn cast_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let dst = ctx.attrs().dtype("DstT")?;
    let truncate = ctx.attrs().bool("Truncate")?;
    let mut out = ctx.allocate_output(0, dst, &x.shape)?;
    cast(&x, &mut out, truncate)
}

pub(crate) const OPS: &[OpDef] = &[OpDef {
    name: "Cast",
    family: Family::Elementwise,
    summary: "type conversion with TensorFlow CPU's rounding/overflow rules (Truncate honoured for float32->bfloat16)",
    constraints: &[
        TypeConstraint { attr: "SrcT", types: ALL_C64 },
        TypeConstraint { attr: "DstT", types: ALL_C64 },
    ],
    attrs: &[AttrSpec { name: "Truncate", kind: AttrKind::Bool }],
    host_memory: &[],
    int32_host_memory: &[],
    host: Some(cast_kernel),
    shape_rule: None,
    cuda: None,
}];
