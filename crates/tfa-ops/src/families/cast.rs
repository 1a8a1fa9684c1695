//! Cast between every pair of supported types.

use super::spec_op;
use super::ALL_C64;
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::Result;
use tfa_kernels::host::cast::cast;

/// `Truncate` and the output: input 0's shape in `DstT`.
fn cast_plan(ctx: &dyn OpContext) -> Result<(bool, OutputPlan)> {
    let x = ctx.input(0)?;
    let dst = ctx.attrs().dtype("DstT")?;
    Ok((
        ctx.attrs().bool("Truncate")?,
        OutputPlan::new(dst, x.shape.clone()),
    ))
}

pub(crate) const OPS: &[OpDef] = &[spec_op!(
    plan: |c| cast_plan(c) => (bool, OutputPlan),
    run: |c, p| cast(&c.input(0)?, &mut allocate(c, 0, &p.1)?, p.0),
    def: {
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
    }
)];
