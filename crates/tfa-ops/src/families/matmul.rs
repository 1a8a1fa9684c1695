//! Matrix multiplication.

use super::{op_t, FLOAT};
use crate::precision::Class;
use crate::spec::{allocate, Host, Kernel, OutputPlan, Spec};
use crate::{OpContext, OpDef};
use tfa_core::{DType, Error, Result};
use tfa_kernels::geometry::einsum::{einsum_shape, einsum_spec, EinsumSpec};
use tfa_kernels::geometry::matmul::{
    batch_matmul_plan, matmul_dims, BatchMatMulParams, BatchPlan, MatMulParams,
};
use tfa_kernels::host::batch_matmul::batch_matmul;
use tfa_kernels::host::einsum::einsum_lowp;
use tfa_kernels::host::matmul::matmul;

/// `MatMul`.
struct MatMul;

impl Spec for MatMul {
    type Plan = (MatMulParams, OutputPlan);

    fn plan(ctx: &dyn OpContext) -> Result<Self::Plan> {
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        let p = MatMulParams {
            transpose_a: ctx.attrs().bool("transpose_a")?,
            transpose_b: ctx.attrs().bool("transpose_b")?,
            lowp: ctx.matrix_lowp(),
        };
        let (m, _, n) = matmul_dims(&a.shape, &b.shape, p)?;
        Ok((p, OutputPlan::new(a.dtype, vec![m, n])))
    }

    fn outputs((_, out): &Self::Plan) -> Vec<OutputPlan> {
        vec![out.clone()]
    }
}

impl Kernel<MatMul> for Host {
    fn run(ctx: &dyn OpContext, (p, out): &(MatMulParams, OutputPlan)) -> Result<()> {
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        matmul(&a, &b, &mut allocate(ctx, 0, out)?, *p)
    }
}

/// `BatchMatMulV2`.
struct BatchMatMul;

impl Spec for BatchMatMul {
    type Plan = (BatchPlan, DType);

    fn plan(ctx: &dyn OpContext) -> Result<Self::Plan> {
        let (x, y) = (ctx.input(0)?, ctx.input(1)?);
        let p = BatchMatMulParams {
            adj_x: ctx.attrs().bool("adj_x")?,
            adj_y: ctx.attrs().bool("adj_y")?,
            lowp: ctx.matrix_lowp(),
        };
        Ok((batch_matmul_plan(&x.shape, &y.shape, p)?, x.dtype))
    }

    fn outputs((plan, dtype): &Self::Plan) -> Vec<OutputPlan> {
        vec![OutputPlan::new(*dtype, plan.out_shape.clone())]
    }
}

impl Kernel<BatchMatMul> for Host {
    fn run(ctx: &dyn OpContext, (plan, dtype): &(BatchPlan, DType)) -> Result<()> {
        let (x, y) = (ctx.input(0)?, ctx.input(1)?);
        let mut out = ctx.allocate_output(0, *dtype, &plan.out_shape)?;
        batch_matmul(&x, &y, plan, &mut out)
    }
}

/// Einsum: the parsed equation and the output.
fn einsum_plan(ctx: &dyn OpContext) -> Result<(EinsumSpec, OutputPlan)> {
    let inputs = (0..ctx.num_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    if inputs.is_empty() || inputs.len() > 2 {
        return Err(Error::InvalidArgument(format!(
            "Einsum takes 1 or 2 inputs, got {}",
            inputs.len()
        )));
    }
    let ranks: Vec<usize> = inputs.iter().map(|t| t.rank()).collect();
    let spec = einsum_spec(ctx.attrs().string("equation")?, &ranks)?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let shape = einsum_shape(&spec, &shapes)?;
    Ok((spec, OutputPlan::new(inputs[0].dtype, shape)))
}

fn einsum_run(ctx: &dyn OpContext, (spec, out): &(EinsumSpec, OutputPlan)) -> Result<()> {
    let inputs = (0..ctx.num_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    einsum_lowp(
        spec,
        &inputs,
        &mut allocate(ctx, 0, out)?,
        ctx.matrix_lowp(),
    )
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "MatMul",
        MatMul,
        &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64],
        "2-D matrix product with transpose_a/transpose_b (gemm; half types accumulate in float32)",
        attrs: ["transpose_a": Bool, "transpose_b": Bool],
        spec: MatMul
    ).amp(Class::Allow).native_low_precision(),
    op_t!(
        "BatchMatMulV2",
        MatMul,
        &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I32, DType::I64],
        "batched matrix product with adj_x/adj_y and broadcast batch dims (gemm per batch; half types in float32)",
        attrs: ["adj_x": Bool, "adj_y": Bool],
        spec: BatchMatMul
    ).amp(Class::Allow).native_low_precision(),
    op_t!(
        "Einsum",
        MatMul,
        FLOAT,
        "1 or 2 operands, `...` broadcasting, repeated labels (diagonals); two operands become transpose + batched gemm",
        attrs: ["equation": String],
        plan: |c| einsum_plan(c) => (EinsumSpec, OutputPlan),
        run: |c, p| einsum_run(c, p)
    ).amp(Class::Allow).native_low_precision(),
];
