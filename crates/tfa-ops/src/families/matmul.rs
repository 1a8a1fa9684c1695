//! Matrix multiplication.

use super::{op_t, FLOAT};
use crate::precision::Class;
use crate::registry::CustomOpDef;
use crate::spec::{allocate, Host, Kernel, OutputPlan, Spec};
use crate::{OpContext, OpDef};
use tfa_core::{DType, Error, Result};
use tfa_kernels::geometry::einsum::{einsum_shape, einsum_spec, EinsumSpec};
use tfa_kernels::geometry::matmul::{
    batch_matmul_plan, matmul_dims, BatchMatMulParams, BatchPlan, MatMulParams,
};
use tfa_kernels::host::batch_matmul::{batch_matmul, batch_matmul_permuted};
use tfa_kernels::host::einsum::einsum_lowp;
use tfa_kernels::host::matmul::matmul;
use tfa_kernels::host::transpose::{check_perm, transposed_shape};

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

/// `_TfaTransposedBatchMatMul`: `BatchMatMulV2` of `transpose(x, perm_x)`
/// and `transpose(y, perm_y)`, its result's last two dims swapped when
/// `transpose_out`: the transposes around a product folded into it by the
/// plugin's graph pass (`tfa-plugin/src/graph/transpose_fold.rs`). An empty
/// perm is the identity.
struct TransposedBatchMatMul;

/// The permutations, the plan on the permuted shapes and the output shape.
struct TransposedPlan {
    perms: (Vec<usize>, Vec<usize>),
    transpose_out: bool,
    plan: BatchPlan,
    out: OutputPlan,
}

impl Spec for TransposedBatchMatMul {
    type Plan = TransposedPlan;

    fn plan(ctx: &dyn OpContext) -> Result<Self::Plan> {
        let (x, y) = (ctx.input(0)?, ctx.input(1)?);
        let perm = |name: &str, rank: usize| -> Result<Vec<usize>> {
            match ctx.attrs().ints(name)? {
                [] => Ok((0..rank).collect()),
                p => check_perm(rank, p),
            }
        };
        let perms = (perm("perm_x", x.rank())?, perm("perm_y", y.rank())?);
        // float32 throughout: the pass folds only products the precision
        // mode leaves in float32.
        let p = BatchMatMulParams {
            adj_x: ctx.attrs().bool("adj_x")?,
            adj_y: ctx.attrs().bool("adj_y")?,
            lowp: None,
        };
        let plan = batch_matmul_plan(
            &transposed_shape(&x.shape, &perms.0),
            &transposed_shape(&y.shape, &perms.1),
            p,
        )?;
        let transpose_out = ctx.attrs().bool("transpose_out")?;
        let mut shape = plan.out_shape.clone();
        if transpose_out {
            let r = shape.len();
            shape.swap(r - 2, r - 1);
        }
        let out = OutputPlan::new(x.dtype, shape);
        Ok(TransposedPlan {
            perms,
            transpose_out,
            plan,
            out,
        })
    }

    fn outputs(p: &Self::Plan) -> Vec<OutputPlan> {
        vec![p.out.clone()]
    }
}

impl Kernel<TransposedBatchMatMul> for Host {
    fn run(ctx: &dyn OpContext, p: &TransposedPlan) -> Result<()> {
        let (x, y) = (ctx.input(0)?, ctx.input(1)?);
        batch_matmul_permuted(
            &x,
            &y,
            (&p.perms.0, &p.perms.1),
            p.transpose_out,
            &p.plan,
            &mut allocate(ctx, 0, &p.out)?,
        )
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
        "_TfaTransposedBatchMatMul",
        MatMul,
        &[DType::F32],
        "tf_adapter's BatchMatMulV2 reading its operands through the Transposes before it (and writing the Transpose of its last two dims after it) as strides, without the copies",
        attrs: ["adj_x": Bool, "adj_y": Bool, "perm_x": IntList, "perm_y": IntList, "transpose_out": Bool],
        spec: TransposedBatchMatMul
    ),
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

/// The OpDef of `_TfaTransposedBatchMatMul` (TensorFlow has no such op).
pub(crate) const CUSTOM_OPS: &[CustomOpDef] = &[CustomOpDef {
    name: "_TfaTransposedBatchMatMul",
    inputs: &["x: T", "y: T"],
    outputs: &["output: T"],
    attrs: &[
        "T: {float}",
        "adj_x: bool = false",
        "adj_y: bool = false",
        "perm_x: list(int) = []",
        "perm_y: list(int) = []",
        "transpose_out: bool = false",
    ],
}];
