//! Elementwise arithmetic: binary ops broadcast like NumPy, and every kernel
//! reuses an input buffer for its output when TensorFlow allows it. The
//! all-reduce of MirroredStrategy depends on that for `Add`: TensorFlow's ring
//! collective demands that its merge step forwards input 0.

use super::{op_t, FLOAT, NUMERIC_NO_I32, SIGNED_NO_I32};
use crate::{OpContext, OpDef};
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Error, Result};
use tfa_kernels::host::elementwise::{self as ew, BinaryOp, UnaryOp};

fn binary(ctx: &dyn OpContext, op: BinaryOp) -> Result<()> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let shape = broadcast_shapes(&a.shape, &b.shape)?;
    let candidates: Vec<usize> = [(0, &a.shape), (1, &b.shape)]
        .into_iter()
        .filter(|(_, s)| **s == shape)
        .map(|(i, _)| i)
        .collect();
    let (mut out, fwd) = ctx.forward_or_allocate(&candidates, 0, a.dtype, &shape)?;
    ew::binary(op, &a, &b, &mut out, fwd)
}

fn unary(ctx: &dyn OpContext, op: UnaryOp) -> Result<()> {
    let x = ctx.input(0)?;
    let (mut out, fwd) = ctx.forward_or_allocate(&[0], 0, x.dtype, &x.shape)?;
    ew::unary(op, &x, &mut out, fwd.is_some())
}

fn add_n(ctx: &dyn OpContext) -> Result<()> {
    let inputs = (0..ctx.num_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    let first = inputs
        .first()
        .ok_or_else(|| Error::InvalidArgument("AddN needs at least one input".into()))?;
    for (i, t) in inputs.iter().enumerate().skip(1) {
        if t.shape != first.shape {
            return Err(Error::InvalidArgument(format!(
                "Inputs to operation {} of type AddN must have the same size and shape.  Input 0: {} != input {}: {}",
                ctx.node_name(),
                fmt_shape(&first.shape),
                i,
                fmt_shape(&t.shape)
            )));
        }
    }
    let dtype: DType = first.dtype;
    let candidates: Vec<usize> = (0..inputs.len()).collect();
    let (mut out, fwd) = ctx.forward_or_allocate(&candidates, 0, dtype, &first.shape)?;
    ew::add_n(&inputs, &mut out, fwd)
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Add",
        Elementwise,
        NUMERIC_NO_I32,
        "x + y with broadcasting (legacy op; TensorFlow's collectives merge with it)",
        |c| binary(c, BinaryOp::Add)
    ),
    op_t!(
        "AddV2",
        Elementwise,
        NUMERIC_NO_I32,
        "x + y with broadcasting",
        |c| binary(c, BinaryOp::Add)
    ),
    op_t!(
        "Sub",
        Elementwise,
        NUMERIC_NO_I32,
        "x - y with broadcasting",
        |c| binary(c, BinaryOp::Sub)
    ),
    op_t!(
        "Mul",
        Elementwise,
        NUMERIC_NO_I32,
        "x * y with broadcasting",
        |c| binary(c, BinaryOp::Mul)
    ),
    op_t!(
        "RealDiv",
        Elementwise,
        FLOAT,
        "x / y with broadcasting",
        |c| binary(c, BinaryOp::Div)
    ),
    op_t!(
        "Maximum",
        Elementwise,
        NUMERIC_NO_I32,
        "max(x, y) with broadcasting; NaN propagates",
        |c| binary(c, BinaryOp::Maximum)
    ),
    op_t!(
        "Minimum",
        Elementwise,
        NUMERIC_NO_I32,
        "min(x, y) with broadcasting; NaN propagates",
        |c| binary(c, BinaryOp::Minimum)
    ),
    op_t!(
        "SquaredDifference",
        Elementwise,
        &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64],
        "(x - y)^2 with broadcasting",
        |c| binary(c, BinaryOp::SquaredDifference)
    ),
    op_t!("Neg", Elementwise, SIGNED_NO_I32, "-x", |c| unary(
        c,
        UnaryOp::Neg
    )),
    op_t!("Square", Elementwise, SIGNED_NO_I32, "x * x", |c| unary(
        c,
        UnaryOp::Square
    )),
    op_t!("Sqrt", Elementwise, FLOAT, "sqrt(x)", |c| unary(
        c,
        UnaryOp::Sqrt
    )),
    op_t!("Rsqrt", Elementwise, FLOAT, "1 / sqrt(x)", |c| unary(
        c,
        UnaryOp::Rsqrt
    )),
    op_t!("Exp", Elementwise, FLOAT, "e^x", |c| unary(c, UnaryOp::Exp)),
    op_t!("Log", Elementwise, FLOAT, "natural logarithm", |c| unary(
        c,
        UnaryOp::Log
    )),
    op_t!(
        "Relu",
        Elementwise,
        &[
            DType::F32,
            DType::F64,
            DType::F16,
            DType::BF16,
            DType::I8,
            DType::I16,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::U16,
            DType::U32,
            DType::U64
        ],
        "max(x, 0); NaN stays NaN",
        |c| unary(c, UnaryOp::Relu)
    ),
    op_t!(
        "AddN",
        Elementwise,
        NUMERIC_NO_I32,
        "sum of N same-shape tensors (grappler folds add chains into it)",
        |c| add_n(c)
    ),
];
