//! TopKV2: `tf.math.top_k`, `tf.sort`/`tf.argsort` (a TopKV2 over the whole
//! last dimension), Keras `ops.top_k`/`ops.sort` and the `sparsemax`
//! activation.

use super::{int_scalar, REAL};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, TypeConstraint};
use tfa_core::{DType, Result};
use tfa_kernels::host::topk::{topk, topk_shape};

const INDEX_TYPES: &[DType] = &[DType::I16, DType::I32, DType::I64];

fn topk_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let k = int_scalar(&ctx.input(1)?, |s| {
        format!("k must be scalar, got shape {s}")
    })?;
    let shape = topk_shape(&x.shape, k)?;
    let mut values = ctx.allocate_output(0, x.dtype, &shape)?;
    let mut indices = ctx.allocate_output(1, ctx.attrs().dtype("index_type")?, &shape)?;
    topk(&x, k as usize, &mut values, &mut indices)
}

pub(crate) const OPS: &[OpDef] = &[OpDef {
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
    host: Some(topk_kernel),
    shape_rule: None,
    cuda: None,
}];
