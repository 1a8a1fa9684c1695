//! Pooling: MaxPool, AvgPool (NHWC/NCHW). Padded positions never count:
//! AvgPool divides by the number of valid elements, as TensorFlow does.

use super::op_t;
use crate::{OpContext, OpDef};
use tfa_core::{DType, Result};
use tfa_kernels::host::conv::{DataFormat, Padding};
use tfa_kernels::host::pool::{pool, pool_geometry, PoolAttrs, PoolKind};

const POOL_TYPES: &[DType] = &[DType::F32, DType::F16, DType::BF16, DType::F64];

fn pool_kernel(ctx: &dyn OpContext, kind: PoolKind) -> Result<()> {
    let x = ctx.input(0)?;
    let at = ctx.attrs();
    let a = PoolAttrs {
        ksize: at.ints("ksize")?,
        strides: at.ints("strides")?,
        padding: Padding::parse(at.string("padding")?)?,
        explicit_paddings: match kind {
            PoolKind::Max => at.ints("explicit_paddings")?,
            PoolKind::Avg => &[],
        },
        data_format: DataFormat::parse(at.string("data_format")?)?,
    };
    let g = pool_geometry(kind, &x.shape, &a)?;
    let mut out = ctx.allocate_output(0, x.dtype, &g.output_shape())?;
    pool(kind, &x, &mut out, &g)
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "MaxPool",
        Pool,
        POOL_TYPES,
        "max over windows, NHWC/NCHW, SAME/VALID/EXPLICIT padding (padded positions ignored); pooling across depth (ksize over channels)",
        attrs: [
            "ksize": IntList,
            "strides": IntList,
            "padding": String,
            "explicit_paddings": IntList,
            "data_format": String
        ],
        |c| pool_kernel(c, PoolKind::Max)
    ),
    op_t!(
        "AvgPool",
        Pool,
        POOL_TYPES,
        "mean over windows, NHWC/NCHW, SAME/VALID; divides by the number of non-padded elements",
        attrs: [
            "ksize": IntList,
            "strides": IntList,
            "padding": String,
            "data_format": String
        ],
        |c| pool_kernel(c, PoolKind::Avg)
    ),
];
