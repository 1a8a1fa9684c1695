//! Elementwise arithmetic: binary ops broadcast like NumPy, and every kernel
//! reuses an input buffer for its output when TensorFlow allows it. The
//! all-reduce of MirroredStrategy depends on that for `Add`: TensorFlow's ring
//! collective demands that its merge step forwards input 0.

use super::{
    op_t, spec_op, ALL_NO_I32, ARITH_C64, FLOAT, INTEGER, NUMERIC_NO_I32, REAL, SIGNED_NO_I32,
};
use crate::precision::Class;
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

/// The broadcast of inputs 0 and 1, as bool (logical ops).
fn broadcast_bool(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    Ok(OutputPlan::new(
        DType::Bool,
        broadcast_shapes(&a.shape, &b.shape)?,
    ))
}

/// Input 0's shape, as bool (IsNan, LogicalNot...).
fn like_input_bool(ctx: &dyn OpContext) -> Result<OutputPlan> {
    Ok(OutputPlan::new(DType::Bool, ctx.input(0)?.shape))
}

fn logical(ctx: &dyn OpContext, out: &OutputPlan, op: LogicalOp) -> Result<()> {
    let (a, b) = (ctx.input(0)?, ctx.input(1)?);
    ew::logical(op, &a, &b, &mut allocate(ctx, 0, out)?)
}

fn classify(ctx: &dyn OpContext, out: &OutputPlan, op: ClassifyOp) -> Result<()> {
    ew::classify(op, &ctx.input(0)?, &mut allocate(ctx, 0, out)?)
}

fn logical_not(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    ew::logical_not(&ctx.input(0)?, &mut allocate(ctx, 0, out)?)
}

fn select_v2_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let (c, t, e) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let shape = broadcast_shapes(&broadcast_shapes(&c.shape, &t.shape)?, &e.shape)?;
    Ok(OutputPlan::new(t.dtype, shape))
}

/// Select and SelectV2: the condition `c` picks from `t` and `e`.
fn select(ctx: &dyn OpContext, c: &TensorView, out: &OutputPlan) -> Result<()> {
    let (t, e) = (ctx.input(1)?, ctx.input(2)?);
    ew::select(c, &t, &e, &mut allocate(ctx, 0, out)?)
}

/// Select (v1): `condition` has the shape of `t`, is a scalar, or is a vector
/// that picks whole rows of `t` (then the plan says so).
fn select_v1_plan(ctx: &dyn OpContext) -> Result<(bool, OutputPlan)> {
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
    Ok((rows_pick, OutputPlan::new(t.dtype, t.shape.clone())))
}

fn select_v1(ctx: &dyn OpContext, (rows_pick, out): &(bool, OutputPlan)) -> Result<()> {
    let c = ctx.input(0)?;
    if !rows_pick {
        return select(ctx, &c, out);
    }
    let mut s = vec![1; out.shape.len()];
    s[0] = c.shape[0];
    // SAFETY: the same bytes viewed with a broadcastable shape.
    let rows = unsafe { TensorView::from_raw(c.dtype, s, c.bytes().as_ptr(), c.bytes().len()) };
    select(ctx, &rows, out)
}

/// BiasAdd: the bias runs along the channel axis (dim 1 for NCHW inputs of
/// rank > 2, else the last). BiasAddV1 has no data_format: always the last.
fn bias_add_plan(ctx: &dyn OpContext, channels_first: bool) -> Result<(usize, OutputPlan)> {
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
    Ok((axis, OutputPlan::new(x.dtype, x.shape.clone())))
}

fn add_bias(ctx: &dyn OpContext, (axis, out): &(usize, OutputPlan)) -> Result<()> {
    let (x, bias) = (ctx.input(0)?, ctx.input(1)?);
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
    let (mut y, fwd) = ctx.forward_or_allocate(&[0], 0, out.dtype, &out.shape)?;
    ew::binary(BinaryOp::Add, &x, &b, &mut y, fwd)
}

/// Fill(dims, value): `dims` (host memory) is the shape.
fn fill_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
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
    Ok(OutputPlan::new(ctx.input(1)?.dtype, shape))
}

fn fill(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    ew::fill(&ctx.input(1)?, &mut allocate(ctx, 0, out)?)
}

/// ZerosLike, OnesLike (planned as `like_input`).
fn fill_like(ctx: &dyn OpContext, out: &OutputPlan, one: bool) -> Result<()> {
    let dtype = out.dtype;
    let v: [u8; 8] = if one { one_bytes(dtype) } else { [0; 8] };
    // SAFETY: a scalar view of `v`, which outlives the call.
    let value = unsafe { TensorView::from_raw(dtype, vec![], v.as_ptr(), dtype.size()) };
    ew::fill(&value, &mut allocate(ctx, 0, out)?)
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

/// AddN: N inputs of one shape.
fn add_n_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let first = ctx
        .input(0)
        .map_err(|_| Error::InvalidArgument("AddN needs at least one input".into()))?;
    for i in 1..ctx.num_inputs() {
        let t = ctx.input(i)?;
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
    Ok(OutputPlan::new(first.dtype, first.shape.clone()))
}

fn add_n(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    let inputs = (0..ctx.num_inputs())
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    if out.dtype == DType::C64 {
        return complex_add_n(&inputs, &mut allocate(ctx, 0, out)?);
    }
    let candidates: Vec<usize> = (0..inputs.len()).collect();
    let (mut y, fwd) = ctx.forward_or_allocate(&candidates, 0, out.dtype, &out.shape)?;
    ew::add_n(&inputs, &mut y, fwd)
}

/// ClipByValue: the bounds are scalars or have `t`'s shape, as TensorFlow's
/// kernel checks.
fn clip_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
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
    Ok(OutputPlan::new(t.dtype, t.shape.clone()))
}

fn clip_by_value(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    let (t, lo, hi) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    clip::clip_by_value(&t, &lo, &hi, &mut allocate(ctx, 0, out)?)
}

/// An op whose plan is one of the shape rules above (`like_input`,
/// `broadcast`, `same_shape`, `same_size`, `like_input_bool`) and whose host
/// kernel is one of the runners above on an `ew` op:
/// `ew_op!("Neg", TYPES, "-x", like_input => unary(UnaryOp::Neg))`.
macro_rules! ew_op {
    ($name:literal, $types:expr, $summary:literal, $plan:ident => $run:ident($op:expr)) => {
        op_t!($name, Elementwise, $types, $summary,
              plan: |c| $plan(c) => OutputPlan, run: |c, p| $run(c, p, $op))
    };
}

/// An op on bool tensors (no type attribute), every argument in host
/// memory: boolean logic mostly combines the results of int32 comparisons
/// (host memory, as on GPUs) into a loop condition (host memory too), and a
/// device-memory kernel between them costs three copies through
/// TensorFlow's event thread per loop iteration.
macro_rules! logical_op {
    ($name:literal, $summary:literal, $args:expr, plan: |$pc:ident| $plan:expr, run: |$c:ident, $p:ident| $body:expr) => {
        spec_op!(
            plan: |$pc| $plan => OutputPlan,
            run: |$c, $p| $body,
            def: {
                name: $name,
                family: Family::Elementwise,
                summary: $summary,
                constraints: &[],
                attrs: &[],
                host_memory: $args,
                int32_host_memory: &[],
            }
        )
    };
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "ClipByValue",
        Elementwise,
        NUMERIC_NO_I32,
        "min(max) clipping by scalar or same-shape bounds, in TensorFlow's order (a NaN input stays NaN, lo > hi gives lo)",
        plan: |c| clip_plan(c) => OutputPlan,
        run: |c, p| clip_by_value(c, p)
    ).amp(Class::Clear),
    ew_op!("Add", ARITH_C64, "x + y with broadcasting (legacy op; TensorFlow's collectives merge with it)", broadcast => binary(BinaryOp::Add)).amp(Class::Infer),
    ew_op!("AddV2", ARITH_C64, "x + y with broadcasting", broadcast => binary(BinaryOp::Add)).amp(Class::Infer),
    ew_op!("Sub", ARITH_C64, "x - y with broadcasting", broadcast => binary(BinaryOp::Sub)).amp(Class::Infer),
    ew_op!("Mul", ARITH_C64, "x * y with broadcasting", broadcast => binary(BinaryOp::Mul)).amp(Class::Infer),
    ew_op!("RealDiv", FLOAT, "x / y with broadcasting", broadcast => binary(BinaryOp::Div)).amp(Class::Infer),
    ew_op!("Maximum", NUMERIC_NO_I32, "max(x, y) with broadcasting; NaN propagates", broadcast => binary(BinaryOp::Maximum)).amp(Class::Clear),
    ew_op!("Minimum", NUMERIC_NO_I32, "min(x, y) with broadcasting; NaN propagates", broadcast => binary(BinaryOp::Minimum)).amp(Class::Clear),
    ew_op!("SquaredDifference", &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64], "(x - y)^2 with broadcasting", broadcast => binary(BinaryOp::SquaredDifference)),
    ew_op!("Neg", SIGNED_NO_I32, "-x", like_input => unary(UnaryOp::Neg)).amp(Class::Clear),
    ew_op!("Square", SIGNED_NO_I32, "x * x", like_input => unary(UnaryOp::Square)).amp(Class::Infer),
    ew_op!("Sqrt", FLOAT, "sqrt(x)", like_input => unary(UnaryOp::Sqrt)).amp(Class::Infer),
    ew_op!("Rsqrt", FLOAT, "1 / sqrt(x)", like_input => unary(UnaryOp::Rsqrt)),
    ew_op!("Exp", FLOAT, "e^x", like_input => unary(UnaryOp::Exp)).amp(Class::Deny),
    ew_op!("Log", FLOAT, "natural logarithm", like_input => unary(UnaryOp::Log)).amp(Class::Deny),
    ew_op!("Relu", REAL, "max(x, 0); NaN stays NaN", like_input => unary(UnaryOp::Relu)).amp(Class::Clear),
    op_t!(
        "AddN",
        Elementwise,
        ARITH_C64,
        "sum of N same-shape tensors (grappler folds add chains into it)",
        plan: |c| add_n_plan(c) => OutputPlan,
        run: |c, p| add_n(c, p)
    ).amp(Class::Infer),
    ew_op!("DivNoNan", FLOAT, "x / y, 0 where y == 0", broadcast => binary(BinaryOp::DivNoNan)),
    ew_op!("Pow", FLOAT, "x^y with broadcasting", broadcast => binary(BinaryOp::Pow)).amp(Class::Deny),
    ew_op!("FloorDiv", NUMERIC_NO_I32, "division rounded toward -inf; integer division by zero is an error", broadcast => binary(BinaryOp::FloorDiv)).amp(Class::Infer),
    ew_op!("FloorMod", NUMERIC_NO_I32, "remainder with the divisor's sign", broadcast => binary(BinaryOp::FloorMod)),
    ew_op!("Div", NUMERIC_NO_I32, "x / y (legacy op): floats divide, integers truncate; integer division by zero is an error", broadcast => binary(BinaryOp::Div)),
    ew_op!("TruncateDiv", NUMERIC_NO_I32, "division rounded toward zero; integer division by zero is an error", broadcast => binary(BinaryOp::TruncateDiv)),
    ew_op!("TruncateMod", &[DType::F32, DType::F64, DType::I64], "remainder with the dividend's sign (C's fmod / %)", broadcast => binary(BinaryOp::TruncateMod)),
    ew_op!("Xlogy", FLOAT, "x * log(y), 0 where x == 0", broadcast => binary(BinaryOp::Xlogy)),
    ew_op!("Xlog1py", FLOAT, "x * log1p(y), 0 where x == 0", broadcast => binary(BinaryOp::Xlog1py)),
    ew_op!("Xdivy", FLOAT, "x / y, 0 where x == 0", broadcast => binary(BinaryOp::Xdivy)),
    ew_op!("Atan2", FLOAT, "atan2(y, x) with broadcasting", broadcast => binary(BinaryOp::Atan2)),
    ew_op!("BitwiseAnd", INTEGER, "x & y with broadcasting", broadcast => binary(BinaryOp::BitwiseAnd)),
    ew_op!("BitwiseOr", INTEGER, "x | y with broadcasting", broadcast => binary(BinaryOp::BitwiseOr)),
    ew_op!("BitwiseXor", INTEGER, "x ^ y with broadcasting", broadcast => binary(BinaryOp::BitwiseXor)),
    ew_op!("Abs", SIGNED_NO_I32, "|x|", like_input => unary(UnaryOp::Abs)).amp(Class::Clear),
    ew_op!("Reciprocal", FLOAT, "1 / x", like_input => unary(UnaryOp::Reciprocal)).amp(Class::Infer),
    ew_op!("Inv", FLOAT, "1 / x (legacy name)", like_input => unary(UnaryOp::Reciprocal)),
    ew_op!("Expm1", FLOAT, "e^x - 1", like_input => unary(UnaryOp::Expm1)).amp(Class::Deny),
    ew_op!("Log1p", FLOAT, "log(1 + x)", like_input => unary(UnaryOp::Log1p)).amp(Class::Deny),
    ew_op!("Relu6", REAL, "min(max(x, 0), 6)", like_input => unary(UnaryOp::Relu6)).amp(Class::Clear),
    ew_op!("Elu", FLOAT, "x < 0 ? e^x - 1 : x", like_input => unary(UnaryOp::Elu)).amp(Class::Infer),
    ew_op!("Selu", FLOAT, "scaled ELU (TensorFlow's constants)", like_input => unary(UnaryOp::Selu)).amp(Class::Infer),
    ew_op!("Softplus", FLOAT, "log(1 + e^x) with TensorFlow's cut-over thresholds", like_input => unary(UnaryOp::Softplus)).amp(Class::Infer),
    ew_op!("Sigmoid", FLOAT, "1 / (1 + e^-x)", like_input => unary(UnaryOp::Sigmoid)).amp(Class::Infer),
    ew_op!("Tanh", FLOAT, "tanh(x)", like_input => unary(UnaryOp::Tanh)).amp(Class::Infer),
    ew_op!("Erf", FLOAT, "error function", like_input => unary(UnaryOp::Erf)).amp(Class::Infer),
    ew_op!("Erfc", FLOAT, "complementary error function (Keras GELU)", like_input => unary(UnaryOp::Erfc)).amp(Class::Infer),
    ew_op!("Floor", FLOAT, "floor(x)", like_input => unary(UnaryOp::Floor)).amp(Class::Clear),
    ew_op!("Ceil", FLOAT, "ceil(x)", like_input => unary(UnaryOp::Ceil)).amp(Class::Clear),
    ew_op!("Round", FLOAT, "round half to even", like_input => unary(UnaryOp::Round)).amp(Class::Clear),
    op_t!(
        "Less",
        Elementwise,
        NUMERIC_NO_I32,
        "x < y -> bool, with broadcasting",
        plan: |c| compare_plan(c, CompareOp::Less) => ComparePlan, run: |c, p| compare(c, p, CompareOp::Less)
    ).amp(Class::Clear),
    op_t!(
        "LessEqual",
        Elementwise,
        NUMERIC_NO_I32,
        "x <= y -> bool",
        plan: |c| compare_plan(c, CompareOp::LessEqual) => ComparePlan, run: |c, p| compare(c, p, CompareOp::LessEqual)
    ).amp(Class::Clear),
    op_t!(
        "Greater",
        Elementwise,
        NUMERIC_NO_I32,
        "x > y -> bool",
        plan: |c| compare_plan(c, CompareOp::Greater) => ComparePlan, run: |c, p| compare(c, p, CompareOp::Greater)
    ).amp(Class::Clear),
    op_t!(
        "GreaterEqual",
        Elementwise,
        NUMERIC_NO_I32,
        "x >= y -> bool",
        plan: |c| compare_plan(c, CompareOp::GreaterEqual) => ComparePlan, run: |c, p| compare(c, p, CompareOp::GreaterEqual)
    ).amp(Class::Clear),
    op_t!("Equal", Elementwise, ALL_NO_I32, "x == y -> bool (incompatible_shape_error honoured)", attrs: ["incompatible_shape_error": Bool], plan: |c| compare_plan(c, CompareOp::Equal) => ComparePlan, run: |c, p| compare(c, p, CompareOp::Equal)).amp(Class::Clear),
    op_t!("NotEqual", Elementwise, ALL_NO_I32, "x != y -> bool (incompatible_shape_error honoured)", attrs: ["incompatible_shape_error": Bool], plan: |c| compare_plan(c, CompareOp::NotEqual) => ComparePlan, run: |c, p| compare(c, p, CompareOp::NotEqual)).amp(Class::Clear),
    logical_op!("LogicalAnd", "x && y with broadcasting; arguments in host memory (loop conditions)", &["x", "y", "z"], plan: |c| broadcast_bool(c), run: |c, p| logical(c, p, LogicalOp::And)),
    logical_op!("LogicalOr", "x || y with broadcasting; arguments in host memory", &["x", "y", "z"], plan: |c| broadcast_bool(c), run: |c, p| logical(c, p, LogicalOp::Or)),
    logical_op!("LogicalNot", "!x; arguments in host memory", &["x", "y"], plan: |c| like_input_bool(c), run: |c, p| logical_not(c, p)),
    ew_op!("IsFinite", FLOAT, "x is neither infinite nor NaN -> bool (loss-scale checks)", like_input_bool => classify(ClassifyOp::IsFinite)).amp(Class::Clear),
    ew_op!("IsNan", FLOAT, "x is NaN -> bool", like_input_bool => classify(ClassifyOp::IsNan)).amp(Class::Clear),
    ew_op!("IsInf", FLOAT, "x is +-inf -> bool", like_input_bool => classify(ClassifyOp::IsInf)).amp(Class::Clear),
    op_t!(
        "SelectV2",
        Elementwise,
        DType::ALL,
        "cond ? t : e with three-way broadcasting",
        plan: |c| select_v2_plan(c) => OutputPlan,
        run: |c, p| select(c, &c.input(0)?, p)
    ).amp(Class::Clear),
    op_t!(
        "Select",
        Elementwise,
        DType::ALL,
        "cond ? t : e; cond the shape of t, a scalar, or a row selector",
        plan: |c| select_v1_plan(c) => (bool, OutputPlan),
        run: |c, p| select_v1(c, p)
    ).amp(Class::Clear),
    op_t!("BiasAdd", Elementwise, NUMERIC_NO_I32, "x + bias along the channel axis (NHWC or NCHW)", attrs: ["data_format": String], plan: |c| bias_add_plan(c, c.attrs().string("data_format")? == "NCHW") => (usize, OutputPlan), run: |c, p| add_bias(c, p)).amp(Class::Infer),
    op_t!(
        "BiasAddV1",
        Elementwise,
        NUMERIC_NO_I32,
        "x + bias along the last axis (legacy)",
        plan: |c| bias_add_plan(c, false) => (usize, OutputPlan),
        run: |c, p| add_bias(c, p)
    ).amp(Class::Infer),
    spec_op!(
        plan: |c| fill_plan(c) => OutputPlan,
        run: |c, p| fill(c, p),
        def: {
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
        }
    ).amp(Class::Clear),
    ew_op!("ReluGrad", FLOAT, "gradients * (features > 0)", same_shape => activation_grad(BinaryOp::ReluGrad)).amp(Class::Clear),
    ew_op!("Relu6Grad", FLOAT, "gradients * (0 < features < 6)", same_shape => activation_grad(BinaryOp::Relu6Grad)).amp(Class::Clear),
    ew_op!("EluGrad", FLOAT, "gradients, times (outputs + 1) where outputs < 0", same_shape => activation_grad(BinaryOp::EluGrad)).amp(Class::Infer),
    ew_op!("SeluGrad", FLOAT, "SELU gradient from its outputs", same_shape => activation_grad(BinaryOp::SeluGrad)).amp(Class::Infer),
    ew_op!("SoftplusGrad", FLOAT, "gradients / (1 + e^-features)", same_shape => activation_grad(BinaryOp::SoftplusGrad)).amp(Class::Infer),
    ew_op!("SigmoidGrad", FLOAT, "dy * y * (1 - y)", same_size => flat_grad(BinaryOp::SigmoidGrad)).amp(Class::Infer),
    ew_op!("TanhGrad", FLOAT, "dy * (1 - y^2)", same_size => flat_grad(BinaryOp::TanhGrad)).amp(Class::Infer),
    ew_op!("RsqrtGrad", FLOAT, "-dy * y^3 / 2, 0 where dy is 0", same_size => flat_grad(BinaryOp::RsqrtGrad)),
    ew_op!("SqrtGrad", FLOAT, "dy / (2 y), 0 where dy is 0", same_size => flat_grad(BinaryOp::SqrtGrad)).amp(Class::Infer),
    ew_op!("ReciprocalGrad", FLOAT, "-dy * y^2, 0 where dy is 0", same_size => flat_grad(BinaryOp::ReciprocalGrad)).amp(Class::Infer),
    ew_op!("InvGrad", FLOAT, "-dy * y^2, 0 where dy is 0 (legacy name)", same_size => flat_grad(BinaryOp::ReciprocalGrad)),
    op_t!(
        "ZerosLike",
        Elementwise,
        ALL_NO_I32,
        "zeros of x's shape and type",
        plan: |c| like_input(c) => OutputPlan,
        run: |c, p| fill_like(c, p, false)
    ).amp(Class::Clear),
    op_t!(
        "OnesLike",
        Elementwise,
        ALL_NO_I32,
        "ones of x's shape and type",
        plan: |c| like_input(c) => OutputPlan,
        run: |c, p| fill_like(c, p, true)
    ).amp(Class::Clear),
];
