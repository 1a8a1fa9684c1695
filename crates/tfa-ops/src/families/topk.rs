//! TopKV2: `tf.math.top_k`, `tf.sort`/`tf.argsort` (a TopKV2 over the whole
//! last dimension), Keras `ops.top_k`/`ops.sort` and the `sparsemax`
//! activation.

use super::{int_scalar, spec_op, REAL};
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::geometry::axes::topk_shape;
use tfa_kernels::host::topk::topk;

const INDEX_TYPES: &[DType] = &[DType::I16, DType::I32, DType::I64];

/// `k`, and the values and indices outputs.
fn topk_plan(ctx: &dyn OpContext) -> Result<(usize, Vec<OutputPlan>)> {
    let x = ctx.input(0)?;
    let k = int_scalar(&ctx.input(1)?, |s| {
        format!("k must be scalar, got shape {s}")
    })?;
    let shape = topk_shape(&x.shape, k)?;
    let index_type = ctx.attrs().dtype("index_type")?;
    let outs = vec![
        OutputPlan::new(x.dtype, shape.clone()),
        OutputPlan::new(index_type, shape),
    ];
    Ok((k as usize, outs))
}

fn topk_run(ctx: &dyn OpContext, (k, outs): &(usize, Vec<OutputPlan>)) -> Result<()> {
    let mut values = allocate(ctx, 0, &outs[0])?;
    let mut indices = allocate(ctx, 1, &outs[1])?;
    topk(&ctx.input(0)?, *k, &mut values, &mut indices)
}

pub(crate) const OPS: &[OpDef] = &[spec_op!(
    plan: |c| topk_plan(c) => (usize, Vec<OutputPlan>),
    run: |c, p| topk_run(c, p),
    def: {
        name: "TopKV2",
        family: Family::Reduce,
        summary: "the `k` (host memory) largest entries of each row of the last dimension, largest first, and their indices; ties to the lower index (as TensorFlow CPU), NaN above every number; `sorted=False` gives the sorted order too",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: REAL,
            },
            TypeConstraint {
                attr: "Tk",
                types: INDEX_TYPES,
            },
            TypeConstraint {
                attr: "index_type",
                types: INDEX_TYPES,
            },
        ],
        attrs: &[AttrSpec::new("sorted", AttrKind::Bool)],
        host_memory: &["k"],
        int32_host_memory: &[],
    }
)];
