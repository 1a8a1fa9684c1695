//! Elementwise arithmetic: binary ops broadcast like NumPy, and every kernel
//! reuses an input buffer for its output when TensorFlow allows it. The
//! all-reduce of MirroredStrategy depends on that for `Add`: TensorFlow's ring
//! collective demands that its merge step forwards input 0.

use super::{op_t, ALL_NO_I32, ARITH_C64, FLOAT, INTEGER, NUMERIC_NO_I32, REAL, SIGNED_NO_I32};
use crate::spec::{allocate, Outputs};
use crate::{Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Error, Result, TensorView};
use tfa_kernels::host::clip;
use tfa_kernels::host::complex::{complex_add_n, complex_binary, ComplexOp};
use tfa_kernels::host::elementwise::{
    self as ew, BinaryOp, ClassifyOp, CompareOp, LogicalOp, UnaryOp,
};

/// The broadcast of inputs 0 and 1, in input 0's dtype (binary arithmetic).
fn broadcast(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    Ok(OutputPlan::new(
        a.dtype,
        broadcast_shapes(&a.shape, &b.shape)?,
    ))
}

/// Input 0's dtype and shape (unary ops).
pub(super) fn like_input(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let x = ctx.input(0)?;
    Ok(OutputPlan::new(x.dtype, x.shape.clone()))
}

fn binary(ctx: &dyn OpContext, out: &OutputPlan, op: BinaryOp) -> Result<()> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.dtype == DType::C64 {
        let op = match op {
            BinaryOp::Add => ComplexOp::Add,
            BinaryOp::Sub => ComplexOp::Sub,
            BinaryOp::Mul => ComplexOp::Mul,
            _ => {
                return Err(Error::Unimplemented(format!(
                    "{op:?} is not defined for complex64"
                )))
            }
        };
        return complex_binary(op, &a, &b, &mut allocate(ctx, 0, out)?);
    }
    let candidates: Vec<usize> = [(0, &a.shape), (1, &b.shape)]
        .into_iter()
        .filter(|(_, s)| **s == out.shape)
        .map(|(i, _)| i)
        .collect();
    let (mut y, fwd) = ctx.forward_or_allocate(&candidates, 0, out.dtype, &out.shape)?;
    ew::binary(op, &a, &b, &mut y, fwd)
}

/// The two inputs of an activation gradient, which must have the same shape
/// (TensorFlow's `BinaryElementWiseOp` checks it: ReluGrad, EluGrad, ...).
pub(super) fn same_shape(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.shape != b.shape {
        return Err(Error::InvalidArgument(format!(
            "{}: inputs must have the same shape: {} vs. {}",
            ctx.node_name(),
            fmt_shape(&a.shape),
            fmt_shape(&b.shape)
        )));
    }
    Ok(OutputPlan::new(a.dtype, a.shape.clone()))
}

/// Activation gradients: two same-shape inputs (`same_shape`).
fn activation_grad(ctx: &dyn OpContext, out: &OutputPlan, op: BinaryOp) -> Result<()> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let (mut y, fwd) = ctx.forward_or_allocate(&[0, 1], 0, out.dtype, &out.shape)?;
    ew::binary(op, &a, &b, &mut y, fwd)
}

/// Gradients of TensorFlow's `SimpleBinaryOp` kind (SigmoidGrad, TanhGrad,
/// RsqrtGrad, SqrtGrad): it checks only that the inputs have as many
/// elements, and gives the first one's shape.
fn same_size(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    if a.num_elements() != b.num_elements() {
        return Err(Error::InvalidArgument(format!(
            "The two arguments to a cwise op must have same number of elements, got {} and {}",
            a.num_elements(),
            b.num_elements()
        )));
    }
    Ok(OutputPlan::new(a.dtype, a.shape.clone()))
}

fn flat_grad(ctx: &dyn OpContext, out: &OutputPlan, op: BinaryOp) -> Result<()> {
    let (a, mut b) = (ctx.input(0)?, ctx.input(1)?);
    let candidates: &[usize] = if a.shape == b.shape { &[0, 1] } else { &[0] };
    b.shape = a.shape.clone();
    let (mut y, fwd) = ctx.forward_or_allocate(candidates, 0, out.dtype, &out.shape)?;
    ew::binary(op, &a, &b, &mut y, fwd)
}

fn unary(ctx: &dyn OpContext, out: &OutputPlan, op: UnaryOp) -> Result<()> {
    let x = ctx.input(0)?;
    let (mut y, fwd) = ctx.forward_or_allocate(&[0], 0, out.dtype, &out.shape)?;
    ew::unary(op, &x, &mut y, fwd.is_some())
}

/// A comparison's bool output; `Some(answer)`: Equal/NotEqual with
/// `incompatible_shape_error=false` on shapes that do not broadcast, which
/// answer with one scalar.
struct ComparePlan {
    out: OutputPlan,
    constant: Option<bool>,
}

impl Outputs for ComparePlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

fn compare_plan(ctx: &dyn OpContext, op: CompareOp) -> Result<ComparePlan> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    match broadcast_shapes(&a.shape, &b.shape) {
        Ok(shape) => Ok(ComparePlan {
            out: OutputPlan::new(DType::Bool, shape),
            constant: None,
        }),
        Err(_)
            if matches!(op, CompareOp::Equal | CompareOp::NotEqual)
                && !ctx.attrs().bool("incompatible_shape_error")? =>
        {
            Ok(ComparePlan {
                out: OutputPlan::new(DType::Bool, vec![]),
                constant: Some(op == CompareOp::NotEqual),
            })
        }
        Err(e) => Err(e),
    }
}

fn compare(ctx: &dyn OpContext, p: &ComparePlan, op: CompareOp) -> Result<()> {
    let mut out = allocate(ctx, 0, &p.out)?;
    if let Some(answer) = p.constant {
        out.data_mut::<bool>()?[0] = answer;
        return Ok(());
    }
    ew::compare(op, &ctx.input(0)?, &ctx.input(1)?, &mut out)
}

fn logical(ctx: &dyn OpContext, op: LogicalOp) -> Result<()> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    let shape = broadcast_shapes(&a.shape, &b.shape)?;
    let mut out = ctx.allocate_output(0, DType::Bool, &shape)?;
    ew::logical(op, &a, &b, &mut out)
}

fn classify(ctx: &dyn OpContext, op: ClassifyOp) -> Result<()> {
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, DType::Bool, &x.shape)?;
    ew::classify(op, &x, &mut out)
}

fn logical_not(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, DType::Bool, &x.shape)?;
    ew::logical_not(&x, &mut out)
}

fn select_v2(ctx: &dyn OpContext) -> Result<()> {
    let (c, t, e) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let shape = broadcast_shapes(&broadcast_shapes(&c.shape, &t.shape)?, &e.shape)?;
    let mut out = ctx.allocate_output(0, t.dtype, &shape)?;
    ew::select(&c, &t, &e, &mut out)
}

/// Select (v1): `condition` has the shape of `t`, is a scalar, or is a vector
/// that picks whole rows of `t`.
fn select_v1(ctx: &dyn OpContext) -> Result<()> {
    let (c, t, e) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    if t.shape != e.shape {
        return Err(Error::InvalidArgument(format!(
            "'then' and 'else' must have the same size.  but received: {} vs. {}",
            fmt_shape(&t.shape),
            fmt_shape(&e.shape)
        )));
    }
    let rows_pick = c.rank() == 1 && t.rank() > 1;
    if !(c.shape == t.shape || c.rank() == 0 || (rows_pick && c.shape[0] == t.shape[0])) {
        return Err(Error::InvalidArgument(format!(
            "'cond' must be a scalar, a vector of length {} or have the shape {}, got {}",
            t.shape.first().copied().unwrap_or(0),
            fmt_shape(&t.shape),
            fmt_shape(&c.shape)
        )));
    }
    let c = if rows_pick {
        let mut s = vec![1; t.rank()];
        s[0] = c.shape[0];
        // SAFETY: the same bytes viewed with a broadcastable shape.
        unsafe { TensorView::from_raw(c.dtype, s, c.bytes().as_ptr(), c.bytes().len()) }
    } else {
        c
    };
    let mut out = ctx.allocate_output(0, t.dtype, &t.shape)?;
    ew::select(&c, &t, &e, &mut out)
}

/// BiasAdd: the bias runs along the channel axis (dim 1 for NCHW inputs of
/// rank > 2, else the last). BiasAddV1 has no data_format: always the last.
fn bias_add(ctx: &dyn OpContext) -> Result<()> {
    let nchw = ctx.attrs().string("data_format")? == "NCHW";
    add_bias(ctx, nchw)
}

fn add_bias(ctx: &dyn OpContext, channels_first: bool) -> Result<()> {
    let (x, bias) = (ctx.input(0)?, ctx.input(1)?);
    if bias.rank() != 1 {
        return Err(Error::InvalidArgument(format!(
            "Biases must be 1D: {}",
            fmt_shape(&bias.shape)
        )));
    }
    if x.rank() < 2 {
        return Err(Error::InvalidArgument(format!(
            "Input tensor must be at least 2D: {}",
            fmt_shape(&x.shape)
        )));
    }
    let axis = if channels_first && x.rank() > 2 {
        1
    } else {
        x.rank() - 1
    };
    if x.shape[axis] != bias.shape[0] {
        return Err(Error::InvalidArgument(format!(
            "Must provide as many biases as the channel dimension of the input tensor: {} vs. {} in {}",
            fmt_shape(&bias.shape),
            x.shape[axis],
            fmt_shape(&x.shape)
        )));
    }
    let mut bshape = vec![1; x.rank() - axis];
    bshape[0] = bias.shape[0];
    // SAFETY: the bias bytes viewed as [C, 1, ...] so it broadcasts along `axis`.
    let b = unsafe {
        TensorView::from_raw(
            bias.dtype,
            bshape,
            bias.bytes().as_ptr(),
            bias.bytes().len(),
        )
    };
    let (mut out, fwd) = ctx.forward_or_allocate(&[0], 0, x.dtype, &x.shape)?;
    ew::binary(BinaryOp::Add, &x, &b, &mut out, fwd)
}

/// Fill(dims, value), ZerosLike, OnesLike.
fn fill(ctx: &dyn OpContext) -> Result<()> {
    let dims_t = ctx.input(0)?;
    if dims_t.rank() > 1 {
        return Err(Error::InvalidArgument(format!(
            "dims must represent a vector, got shape {}",
            fmt_shape(&dims_t.shape)
        )));
    }
    let dims = dims_t.to_i64_vec()?;
    if let Some(d) = dims.iter().find(|&&d| d < 0) {
        return Err(Error::InvalidArgument(format!(
            "Dimension {d} must be >= 0"
        )));
    }
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let value = ctx.input(1)?;
    let mut out = ctx.allocate_output(0, value.dtype, &shape)?;
    ew::fill(&value, &mut out)
}

fn fill_like(ctx: &dyn OpContext, one: bool) -> Result<()> {
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, x.dtype, &x.shape)?;
    let v: [u8; 8] = if one { one_bytes(x.dtype) } else { [0; 8] };
    // SAFETY: a scalar view of `v`, which outlives the call.
    let value = unsafe { TensorView::from_raw(x.dtype, vec![], v.as_ptr(), x.dtype.size()) };
    ew::fill(&value, &mut out)
}

/// The bytes of 1 in `dtype` (little-endian).
fn one_bytes(dtype: DType) -> [u8; 8] {
    let mut b = [0u8; 8];
    match dtype {
        DType::F32 => b[..4].copy_from_slice(&1f32.to_le_bytes()),
        DType::F64 => b.copy_from_slice(&1f64.to_le_bytes()),
        DType::F16 => b[..2].copy_from_slice(&tfa_core::f16::ONE.to_bits().to_le_bytes()),
        DType::BF16 => b[..2].copy_from_slice(&tfa_core::bf16::ONE.to_bits().to_le_bytes()),
        _ => b[0] = 1,
    }
    b
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
    if dtype == DType::C64 {
        let mut out = ctx.allocate_output(0, dtype, &first.shape)?;
        return complex_add_n(&inputs, &mut out);
    }
    let candidates: Vec<usize> = (0..inputs.len()).collect();
    let (mut out, fwd) = ctx.forward_or_allocate(&candidates, 0, dtype, &first.shape)?;
    ew::add_n(&inputs, &mut out, fwd)
}

/// ClipByValue: the bounds are scalars or have `t`'s shape, as TensorFlow's
/// kernel checks.
fn clip_by_value(ctx: &dyn OpContext) -> Result<()> {
    let (t, lo, hi) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let fits = |b: &TensorView| b.shape == t.shape || b.rank() == 0;
    if !fits(&lo) || !fits(&hi) {
        return Err(Error::InvalidArgument(format!(
            "clip_value_min and clip_value_max must be either scalars or have the same shape as input t: t shape: {}, clip_value_min shape: {}, clip_value_max shape: {}",
            fmt_shape(&t.shape),
            fmt_shape(&lo.shape),
            fmt_shape(&hi.shape)
        )));
    }
    let mut out = ctx.allocate_output(0, t.dtype, &t.shape)?;
    clip::clip_by_value(&t, &lo, &hi, &mut out)
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "ClipByValue",
        Elementwise,
        NUMERIC_NO_I32,
        "min(max) clipping by scalar or same-shape bounds, in TensorFlow's order (a NaN input stays NaN, lo > hi gives lo)",
        |c| clip_by_value(c)
    ),
    op_t!(
        "Add",
        Elementwise,
        ARITH_C64,
        "x + y with broadcasting (legacy op; TensorFlow's collectives merge with it)",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Add)
    ),
    op_t!(
        "AddV2",
        Elementwise,
        ARITH_C64,
        "x + y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Add)
    ),
    op_t!(
        "Sub",
        Elementwise,
        ARITH_C64,
        "x - y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Sub)
    ),
    op_t!(
        "Mul",
        Elementwise,
        ARITH_C64,
        "x * y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Mul)
    ),
    op_t!(
        "RealDiv",
        Elementwise,
        FLOAT,
        "x / y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Div)
    ),
    op_t!(
        "Maximum",
        Elementwise,
        NUMERIC_NO_I32,
        "max(x, y) with broadcasting; NaN propagates",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Maximum)
    ),
    op_t!(
        "Minimum",
        Elementwise,
        NUMERIC_NO_I32,
        "min(x, y) with broadcasting; NaN propagates",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Minimum)
    ),
    op_t!(
        "SquaredDifference",
        Elementwise,
        &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64],
        "(x - y)^2 with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::SquaredDifference)
    ),
    op_t!("Neg", Elementwise, SIGNED_NO_I32, "-x", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Neg)),
    op_t!("Square", Elementwise, SIGNED_NO_I32, "x * x", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Square)),
    op_t!("Sqrt", Elementwise, FLOAT, "sqrt(x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Sqrt)),
    op_t!("Rsqrt", Elementwise, FLOAT, "1 / sqrt(x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Rsqrt)),
    op_t!("Exp", Elementwise, FLOAT, "e^x", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Exp)),
    op_t!("Log", Elementwise, FLOAT, "natural logarithm", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Log)),
    op_t!("Relu", Elementwise, REAL, "max(x, 0); NaN stays NaN", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Relu)),
    op_t!(
        "AddN",
        Elementwise,
        ARITH_C64,
        "sum of N same-shape tensors (grappler folds add chains into it)",
        |c| add_n(c)
    ),
    op_t!(
        "DivNoNan",
        Elementwise,
        FLOAT,
        "x / y, 0 where y == 0",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::DivNoNan)
    ),
    op_t!("Pow", Elementwise, FLOAT, "x^y with broadcasting", plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Pow)),
    op_t!(
        "FloorDiv",
        Elementwise,
        NUMERIC_NO_I32,
        "division rounded toward -inf; integer division by zero is an error",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::FloorDiv)
    ),
    op_t!(
        "FloorMod",
        Elementwise,
        NUMERIC_NO_I32,
        "remainder with the divisor's sign",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::FloorMod)
    ),
    op_t!(
        "BitwiseAnd",
        Elementwise,
        INTEGER,
        "x & y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::BitwiseAnd)
    ),
    op_t!(
        "BitwiseOr",
        Elementwise,
        INTEGER,
        "x | y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::BitwiseOr)
    ),
    op_t!(
        "BitwiseXor",
        Elementwise,
        INTEGER,
        "x ^ y with broadcasting",
        plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::BitwiseXor)
    ),
    op_t!("Abs", Elementwise, SIGNED_NO_I32, "|x|", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Abs)),
    op_t!("Reciprocal", Elementwise, FLOAT, "1 / x", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Reciprocal)),
    op_t!("Inv", Elementwise, FLOAT, "1 / x (legacy name)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Reciprocal)),
    op_t!("Expm1", Elementwise, FLOAT, "e^x - 1", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Expm1)),
    op_t!("Log1p", Elementwise, FLOAT, "log(1 + x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Log1p)),
    op_t!("Relu6", Elementwise, REAL, "min(max(x, 0), 6)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Relu6)),
    op_t!("Elu", Elementwise, FLOAT, "x < 0 ? e^x - 1 : x", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Elu)),
    op_t!(
        "Selu",
        Elementwise,
        FLOAT,
        "scaled ELU (TensorFlow's constants)",
        plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Selu)
    ),
    op_t!(
        "Softplus",
        Elementwise,
        FLOAT,
        "log(1 + e^x) with TensorFlow's cut-over thresholds",
        plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Softplus)
    ),
    op_t!("Sigmoid", Elementwise, FLOAT, "1 / (1 + e^-x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Sigmoid)),
    op_t!("Tanh", Elementwise, FLOAT, "tanh(x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Tanh)),
    op_t!("Erf", Elementwise, FLOAT, "error function", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Erf)),
    op_t!(
        "Erfc",
        Elementwise,
        FLOAT,
        "complementary error function (Keras GELU)",
        plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Erfc)
    ),
    op_t!("Floor", Elementwise, FLOAT, "floor(x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Floor)),
    op_t!("Ceil", Elementwise, FLOAT, "ceil(x)", plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Ceil)),
    op_t!(
        "Round",
        Elementwise,
        FLOAT,
        "round half to even",
        plan: |c| like_input(c) => OutputPlan, run: |c, p| unary(c, p, UnaryOp::Round)
    ),
    op_t!(
        "Less",
        Elementwise,
        NUMERIC_NO_I32,
        "x < y -> bool, with broadcasting",
        plan: |c| compare_plan(c, CompareOp::Less) => ComparePlan, run: |c, p| compare(c, p, CompareOp::Less)
    ),
    op_t!(
        "LessEqual",
        Elementwise,
        NUMERIC_NO_I32,
        "x <= y -> bool",
        plan: |c| compare_plan(c, CompareOp::LessEqual) => ComparePlan, run: |c, p| compare(c, p, CompareOp::LessEqual)
    ),
    op_t!(
        "Greater",
        Elementwise,
        NUMERIC_NO_I32,
        "x > y -> bool",
        plan: |c| compare_plan(c, CompareOp::Greater) => ComparePlan, run: |c, p| compare(c, p, CompareOp::Greater)
    ),
    op_t!(
        "GreaterEqual",
        Elementwise,
        NUMERIC_NO_I32,
        "x >= y -> bool",
        plan: |c| compare_plan(c, CompareOp::GreaterEqual) => ComparePlan, run: |c, p| compare(c, p, CompareOp::GreaterEqual)
    ),
    op_t!("Equal", Elementwise, ALL_NO_I32, "x == y -> bool (incompatible_shape_error honoured)", attrs: ["incompatible_shape_error": Bool], plan: |c| compare_plan(c, CompareOp::Equal) => ComparePlan, run: |c, p| compare(c, p, CompareOp::Equal)),
    op_t!("NotEqual", Elementwise, ALL_NO_I32, "x != y -> bool (incompatible_shape_error honoured)", attrs: ["incompatible_shape_error": Bool], plan: |c| compare_plan(c, CompareOp::NotEqual) => ComparePlan, run: |c, p| compare(c, p, CompareOp::NotEqual)),
    in_host_memory(
        untyped("LogicalAnd", "x && y with broadcasting; arguments in host memory (loop conditions)", |c| {
            logical(c, LogicalOp::And)
        }),
        &["x", "y", "z"],
    ),
    in_host_memory(
        untyped("LogicalOr", "x || y with broadcasting; arguments in host memory", |c| {
            logical(c, LogicalOp::Or)
        }),
        &["x", "y", "z"],
    ),
    in_host_memory(untyped("LogicalNot", "!x; arguments in host memory", logical_not), &["x", "y"]),
    op_t!(
        "IsFinite",
        Elementwise,
        FLOAT,
        "x is neither infinite nor NaN -> bool (loss-scale checks)",
        |c| classify(c, ClassifyOp::IsFinite)
    ),
    op_t!("IsNan", Elementwise, FLOAT, "x is NaN -> bool", |c| {
        classify(c, ClassifyOp::IsNan)
    }),
    op_t!("IsInf", Elementwise, FLOAT, "x is +-inf -> bool", |c| {
        classify(c, ClassifyOp::IsInf)
    }),
    op_t!(
        "SelectV2",
        Elementwise,
        DType::ALL,
        "cond ? t : e with three-way broadcasting",
        |c| select_v2(c)
    ),
    op_t!(
        "Select",
        Elementwise,
        DType::ALL,
        "cond ? t : e; cond the shape of t, a scalar, or a row selector",
        |c| select_v1(c)
    ),
    op_t!("BiasAdd", Elementwise, NUMERIC_NO_I32, "x + bias along the channel axis (NHWC or NCHW)", attrs: ["data_format": String], |c| bias_add(c)),
    op_t!(
        "BiasAddV1",
        Elementwise,
        NUMERIC_NO_I32,
        "x + bias along the last axis (legacy)",
        |c| add_bias(c, false)
    ),
    OpDef {
        name: "Fill",
        family: Family::Elementwise,
        summary: "a tensor of shape `dims` filled with `value`; `dims` in host memory",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL_NO_I32,
            },
            TypeConstraint {
                attr: "index_type",
                types: &[DType::I32, DType::I64],
            },
        ],
        attrs: &[],
        host_memory: &["dims"],
        int32_host_memory: &[],
        host: Some(fill),
        shape_rule: None,
        cuda: None,
    },
    op_t!(
        "ReluGrad",
        Elementwise,
        FLOAT,
        "gradients * (features > 0)",
        plan: |c| same_shape(c) => OutputPlan, run: |c, p| activation_grad(c, p, BinaryOp::ReluGrad)
    ),
    op_t!(
        "Relu6Grad",
        Elementwise,
        FLOAT,
        "gradients * (0 < features < 6)",
        plan: |c| same_shape(c) => OutputPlan, run: |c, p| activation_grad(c, p, BinaryOp::Relu6Grad)
    ),
    op_t!(
        "EluGrad",
        Elementwise,
        FLOAT,
        "gradients, times (outputs + 1) where outputs < 0",
        plan: |c| same_shape(c) => OutputPlan, run: |c, p| activation_grad(c, p, BinaryOp::EluGrad)
    ),
    op_t!(
        "SeluGrad",
        Elementwise,
        FLOAT,
        "SELU gradient from its outputs",
        plan: |c| same_shape(c) => OutputPlan, run: |c, p| activation_grad(c, p, BinaryOp::SeluGrad)
    ),
    op_t!(
        "SoftplusGrad",
        Elementwise,
        FLOAT,
        "gradients / (1 + e^-features)",
        plan: |c| same_shape(c) => OutputPlan, run: |c, p| activation_grad(c, p, BinaryOp::SoftplusGrad)
    ),
    op_t!("SigmoidGrad", Elementwise, FLOAT, "dy * y * (1 - y)", plan: |c| same_size(c) => OutputPlan, run: |c, p| flat_grad(c, p, BinaryOp::SigmoidGrad)),
    op_t!("TanhGrad", Elementwise, FLOAT, "dy * (1 - y^2)", plan: |c| same_size(c) => OutputPlan, run: |c, p| flat_grad(c, p, BinaryOp::TanhGrad)),
    op_t!("RsqrtGrad", Elementwise, FLOAT, "-dy * y^3 / 2", plan: |c| same_size(c) => OutputPlan, run: |c, p| flat_grad(c, p, BinaryOp::RsqrtGrad)),
    op_t!("SqrtGrad", Elementwise, FLOAT, "dy / (2 y)", plan: |c| same_size(c) => OutputPlan, run: |c, p| flat_grad(c, p, BinaryOp::SqrtGrad)),
    op_t!(
        "ZerosLike",
        Elementwise,
        ALL_NO_I32,
        "zeros of x's shape and type",
        |c| fill_like(c, false)
    ),
    op_t!(
        "OnesLike",
        Elementwise,
        ALL_NO_I32,
        "ones of x's shape and type",
        |c| fill_like(c, true)
    ),
];

/// An op on bool tensors (no type attribute).
/// `def` with every argument in host memory: boolean logic mostly combines
/// the results of int32 comparisons (host memory, as on GPUs) into a loop
/// condition (host memory too), and a device-memory kernel between them costs
/// three copies through TensorFlow's event thread per loop iteration.
const fn in_host_memory(def: OpDef, args: &'static [&'static str]) -> OpDef {
    OpDef {
        host_memory: args,
        ..def
    }
}

const fn untyped(name: &'static str, summary: &'static str, kernel: crate::KernelFn) -> OpDef {
    OpDef {
        name,
        family: Family::Elementwise,
        summary,
        constraints: &[],
        attrs: &[],
        host_memory: &[],
        int32_host_memory: &[],
        host: Some(kernel),
        shape_rule: None,
        cuda: None,
    }
}
