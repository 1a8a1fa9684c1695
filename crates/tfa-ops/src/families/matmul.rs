//! Matrix multiplication.

use super::op_t;
use crate::{OpContext, OpDef};
use tfa_core::{DType, Result};
use tfa_kernels::host::matmul::{matmul, matmul_dims, MatMulParams};

fn matmul_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let p = MatMulParams {
        transpose_a: ctx.attrs().bool("transpose_a")?,
        transpose_b: ctx.attrs().bool("transpose_b")?,
    };
    let (m, _, n) = matmul_dims(&a.shape, &b.shape, p)?;
    let mut out = ctx.allocate_output(0, a.dtype, &[m, n])?;
    matmul(&a, &b, &mut out, p)
}

pub(crate) const OPS: &[OpDef] = &[op_t!(
    "MatMul",
    MatMul,
    &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64],
    "2-D matrix product with transpose_a/transpose_b (gemm; half types accumulate in float32)",
    attrs: ["transpose_a": Bool, "transpose_b": Bool],
    |c| matmul_kernel(c)
)];
