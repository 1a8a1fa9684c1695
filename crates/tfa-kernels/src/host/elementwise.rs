//! Elementwise kernels: unary, binary with full broadcasting, and AddN.
//!
//! Every kernel can run in place: when TensorFlow forwarded an input buffer to
//! the output (`in_place`), that input is read from the output slice instead
//! of through its own view, so no `&` and `&mut` to the same memory coexist.

use super::arith::{Arith, FloatArith};
use super::broadcast::BroadcastPlan;
use super::numeric::{Accumulate, Compute, Numeric, Widen};
use super::on_widest_simd;
use super::par::for_each_chunk_mut;
use super::par_chunk;
use half::{bf16, f16};
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Floating-point division (TensorFlow's `RealDiv`).
    Div,
    /// `x / y`, 0 where `y == 0` (floats).
    DivNoNan,
    Maximum,
    Minimum,
    /// `(a - b)^2`
    SquaredDifference,
    Pow,
    /// Division rounding toward negative infinity.
    FloorDiv,
    /// Remainder with the sign of the divisor.
    FloorMod,
    /// Division rounding toward zero (integers: C's `/`; floats: trunc(x / y)).
    TruncateDiv,
    /// Remainder with the sign of the dividend (C's `%`, `fmod`).
    TruncateMod,
    /// `x * log(y)`, 0 where `x == 0` (floats).
    Xlogy,
    /// `x * log1p(y)`, 0 where `x == 0` (floats).
    Xlog1py,
    /// `x / y`, 0 where `x == 0` (floats).
    Xdivy,
    /// `atan2(y, x)`, operands in TensorFlow's order (y first).
    Atan2,
    // Activation gradients, operands in TensorFlow's input order.
    /// ReluGrad(gradients, features)
    ReluGrad,
    /// Relu6Grad(gradients, features)
    Relu6Grad,
    /// EluGrad(gradients, outputs)
    EluGrad,
    /// SeluGrad(gradients, outputs)
    SeluGrad,
    /// SoftplusGrad(gradients, features)
    SoftplusGrad,
    /// SigmoidGrad(y, dy)
    SigmoidGrad,
    /// TanhGrad(y, dy)
    TanhGrad,
    /// RsqrtGrad(y, dy); 0 where dy is 0 (see `float_binary`)
    RsqrtGrad,
    /// SqrtGrad(y, dy); 0 where dy is 0
    SqrtGrad,
    /// ReciprocalGrad(y, dy) = -y^2 dy; 0 where dy is 0
    ReciprocalGrad,
    // Integer-only.
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Abs,
    Square,
    Sqrt,
    Rsqrt,
    Reciprocal,
    Exp,
    Expm1,
    Log,
    Log1p,
    Relu,
    Relu6,
    Elu,
    Selu,
    Softplus,
    Sigmoid,
    Tanh,
    Erf,
    Erfc,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
}

impl UnaryOp {
    /// Work per element relative to an add (1), for deciding when a small
    /// tensor is worth splitting across threads: the exp-based functions
    /// run at about 8x an add's time per element (float32, AVX2 Zen 1).
    pub fn cost(self) -> usize {
        use UnaryOp::*;
        match self {
            Exp | Expm1 | Log | Log1p | Elu | Selu | Softplus | Sigmoid | Tanh | Erf | Erfc => 8,
            Sqrt | Rsqrt | Reciprocal => 2,
            _ => 1,
        }
    }
}

impl BinaryOp {
    /// Work per element relative to an add; see [`UnaryOp::cost`].
    pub fn cost(self) -> usize {
        use BinaryOp::*;
        match self {
            Pow | SoftplusGrad | Xlogy | Xlog1py | Atan2 => 8,
            Div | DivNoNan | FloorDiv | FloorMod | TruncateDiv | TruncateMod | Xdivy | SqrtGrad
            | ReciprocalGrad => 2,
            _ => 1,
        }
    }
}

/// Comparisons: their output is bool.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Equal,
    NotEqual,
}

/// Float classification: bool output (IsFinite, IsNan, IsInf).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClassifyOp {
    IsFinite,
    IsNan,
    IsInf,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogicalOp {
    And,
    Or,
}

/// Expands `$float!(T)` for the float dtypes and `$int!(T)` for the integer
/// ones (the per-op macros of `binary` and `unary`), `$other` for the rest.
macro_rules! numeric_dispatch {
    ($dtype:expr, $float:ident, $int:ident, $other:expr) => {
        match $dtype {
            DType::F32 => $float!(f32),
            DType::F64 => $float!(f64),
            DType::F16 => $float!(f16),
            DType::BF16 => $float!(bf16),
            DType::I8 => $int!(i8),
            DType::I16 => $int!(i16),
            DType::I32 => $int!(i32),
            DType::I64 => $int!(i64),
            DType::U8 => $int!(u8),
            DType::U16 => $int!(u16),
            DType::U32 => $int!(u32),
            DType::U64 => $int!(u64),
            _ => $other,
        }
    };
}

/// Where a kernel reads an operand from.
#[derive(Copy, Clone)]
pub(super) enum Src<'a, T> {
    Data(&'a [T]),
    /// The operand was forwarded into the output buffer.
    Out,
}

pub(super) fn src<'a, T: Element>(v: &TensorView<'a>, aliased: bool) -> Result<Src<'a, T>> {
    Ok(if aliased {
        Src::Out
    } else {
        Src::Data(v.data::<T>()?)
    })
}

/// Splits `out` into chunks and calls `f(chunk_start, chunk)` on each, in
/// parallel when the tensor is large enough to pay for it.
fn for_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    for_chunks_costed(out, 1, f)
}

/// [`for_chunks`] for a loop of `cost` adds' work per element: a costly
/// function over a small tensor (an LSTM gate's sigmoid on 32x256) is split
/// too, once the work pays for waking the other threads.
fn for_chunks_costed<T: Send>(out: &mut [T], cost: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let chunk = par_chunk(out.len(), cost);
    if chunk >= out.len() {
        f(0, out);
    } else {
        for_each_chunk_mut(out, chunk, |i, c| f(i * chunk, c));
    }
}

// ---------------------------------------------------------------- binary ----

/// The element function of the binary ops every numeric type has, handed to
/// `$go!(T, f)`; `$other` for the rest (one table for the tensor kernel and
/// the float32 chunks of fused programs, so both compute the same bits).
macro_rules! common_binary_table {
    ($t:ty, $op:expr, $go:ident, $other:expr) => {
        match $op {
            BinaryOp::Add => $go!($t, <$t as Arith>::add),
            BinaryOp::Sub => $go!($t, <$t as Arith>::sub),
            BinaryOp::Mul => $go!($t, <$t as Arith>::mul),
            BinaryOp::Maximum => $go!($t, <$t as Arith>::max),
            BinaryOp::Minimum => $go!($t, <$t as Arith>::min),
            BinaryOp::SquaredDifference => $go!($t, |x, y| {
                let d = <$t as Arith>::sub(x, y);
                <$t as Arith>::mul(d, d)
            }),
            _ => $other,
        }
    };
}

/// `out = a (op) b` with broadcasting. `in_place` names the input (0 or 1) whose
/// buffer is `out`'s, if any; that input must have the output's shape.
// The sign tests in the integer FloorDiv/FloorMod are moot for unsigned types.
#[allow(unused_comparisons)]
pub fn binary(
    op: BinaryOp,
    a: &TensorView,
    b: &TensorView,
    out: &mut TensorMut,
    in_place: Option<usize>,
) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&a.shape, &b.shape]);
    if let Some(i) = in_place {
        let shape = if i == 0 { &a.shape } else { &b.shape };
        if *shape != out.shape {
            return Err(Error::Internal(
                "in-place operand must have the output's shape".into(),
            ));
        }
    }
    let (al, bl) = (in_place == Some(0), in_place == Some(1));
    let dtype = out.dtype;
    let unsupported = || Error::Unimplemented(format!("{op:?} is not defined for {dtype}"));
    macro_rules! go {
        ($t:ty, $f:expr) => {
            run_binary::<$t, _>(&plan, src(a, al)?, src(b, bl)?, out.data_mut::<$t>()?, $f)
        };
    }
    macro_rules! float_ops {
        ($t:ty) => {
            common_binary_table!(
                $t,
                op,
                go,
                if !float_binary::<$t, _>(
                    op,
                    &plan,
                    src(a, al)?,
                    src(b, bl)?,
                    out.data_mut::<$t>()?
                ) {
                    return Err(unsupported());
                }
            )
        };
    }
    macro_rules! int_ops {
        ($t:ty) => {
            common_binary_table!(
                $t,
                op,
                go,
                match op {
                    BinaryOp::FloorDiv
                    | BinaryOp::FloorMod
                    | BinaryOp::Div
                    | BinaryOp::TruncateDiv
                    | BinaryOp::TruncateMod => {
                        // Checked up front: the element loop cannot fail.
                        let divisor = if bl {
                            out.as_view().data::<$t>()?
                        } else {
                            b.data::<$t>()?
                        };
                        if divisor.iter().any(|&v| v == 0) {
                            return Err(Error::InvalidArgument("Integer division by zero".into()));
                        }
                        // C's truncating `/` and `%` (TensorFlow's safe_div/safe_mod);
                        // wrapping as FloorDiv below.
                        if matches!(op, BinaryOp::Div | BinaryOp::TruncateDiv) {
                            go!($t, |x: $t, y: $t| x.wrapping_div(y))
                        } else if op == BinaryOp::TruncateMod {
                            go!($t, |x: $t, y: $t| x.wrapping_rem(y))
                        } else if op == BinaryOp::FloorDiv {
                            go!($t, |x: $t, y: $t| {
                                // Wrapping: MIN / -1 overflows (to MIN, as in TensorFlow).
                                let q = x.wrapping_div(y);
                                if (x.wrapping_rem(y) != 0) && ((x < 0) != (y < 0)) {
                                    q - 1
                                } else {
                                    q
                                }
                            })
                        } else {
                            go!($t, |x: $t, y: $t| {
                                let m = x.wrapping_rem(y);
                                if m != 0 && ((y < 0) != (m < 0)) {
                                    m + y
                                } else {
                                    m
                                }
                            })
                        }
                    }
                    BinaryOp::BitwiseAnd => go!($t, |x: $t, y: $t| x & y),
                    BinaryOp::BitwiseOr => go!($t, |x: $t, y: $t| x | y),
                    BinaryOp::BitwiseXor => go!($t, |x: $t, y: $t| x ^ y),
                    _ => return Err(unsupported()),
                }
            )
        };
    }
    numeric_dispatch!(out.dtype, float_ops, int_ops, return Err(unsupported()));
    Ok(())
}

/// The binary ops only float types have, on `T` (computed in `W`);
/// false for any other op.
fn float_binary<T: FloatArith + Numeric<W = W>, W: Compute>(
    op: BinaryOp,
    plan: &BroadcastPlan<2>,
    a: Src<T>,
    b: Src<T>,
    out: &mut [T],
) -> bool {
    macro_rules! go {
        ($f:expr) => {
            run_binary::<T, _>(plan, a, b, out, $f)
        };
    }
    match op {
        BinaryOp::Div => go!(T::div),
        BinaryOp::DivNoNan => go!(|x, y| T::zip(x, y, |x: W, y: W| if y == W::ZERO {
            W::ZERO
        } else {
            x / y
        })),
        // A scalar exponent of 2, 3 or 4 (tanh-GELU's x^3) by products, which
        // vectorise: `powf` per element took 80 ms on a [4096, 3072] tensor.
        BinaryOp::Pow => match small_power(b) {
            Some(2) => go!(|x, _| T::map(x, |x: W| x.powi_exact::<2>())),
            Some(3) => go!(|x, _| T::map(x, |x: W| x.powi_exact::<3>())),
            Some(4) => go!(|x, _| T::map(x, |x: W| x.powi_exact::<4>())),
            _ => go!(|x, y| T::zip(x, y, |x: W, y: W| x.powf(y))),
        },
        BinaryOp::FloorDiv => go!(|x, y| T::zip(x, y, |x: W, y: W| (x / y).floor())),
        BinaryOp::TruncateDiv => go!(|x, y| T::zip(x, y, |x: W, y: W| (x / y).trunc())),
        BinaryOp::TruncateMod => go!(|x, y| T::zip(x, y, |x: W, y: W| x.fmod(y))),
        // TensorFlow selects x itself where x == 0 (its vector path), so
        // 0 * log(0) and 0 / 0 are 0 and a NaN or infinite y is ignored there.
        BinaryOp::Xlogy => {
            go!(|x, y| T::zip(x, y, |x: W, y: W| if x == W::ZERO { x } else { x * y.ln() }))
        }
        BinaryOp::Xlog1py => go!(|x, y| T::zip(x, y, |x: W, y: W| if x == W::ZERO {
            x
        } else {
            x * y.ln_1p()
        })),
        BinaryOp::Xdivy => {
            go!(|x, y| T::zip(x, y, |x: W, y: W| if x == W::ZERO { x } else { x / y }))
        }
        BinaryOp::Atan2 => go!(|y, x| T::zip(y, x, |y: W, x: W| y.atan2(x))),
        // TensorFlow multiplies by the mask (`gradients * (features > 0)`),
        // so an infinite or NaN gradient gives NaN where the mask is 0, as
        // here, rather than being stopped there.
        BinaryOp::ReluGrad => go!(|g, f| T::zip(g, f, |g: W, f: W| g * mask(f > W::ZERO))),
        BinaryOp::Relu6Grad => go!(|g, f| T::zip(g, f, |g: W, f: W| {
            g * mask(f > W::ZERO && f < W::from_f64(6.0))
        })),
        BinaryOp::EluGrad => go!(|g, y| T::zip(g, y, |g: W, y: W| if y < W::ZERO {
            (y + W::ONE) * g
        } else {
            g
        })),
        BinaryOp::SeluGrad => go!(|g, y| T::zip(g, y, |g: W, y: W| {
            if y < W::ZERO {
                g * (y + W::from_f64(1.758_099_340_847_376_8))
            } else {
                g * W::from_f64(1.050_700_987_355_480_5)
            }
        })),
        BinaryOp::SoftplusGrad => go!(|g, f| T::zip(g, f, |g: W, f: W| g / ((-f).exp() + W::ONE))),
        // Grouped as TensorFlow's vector path groups it (dy * (y * (1 - y))).
        BinaryOp::SigmoidGrad => go!(|y, dy| T::zip(y, dy, |y: W, dy: W| dy * (y * (W::ONE - y)))),
        BinaryOp::TanhGrad => go!(|y, dy| T::zip(y, dy, |y: W, dy: W| dy * (W::ONE - y * y))),
        // TensorFlow's gradients of Rsqrt, Sqrt and Reciprocal give 0 where
        // the incoming gradient is 0, even where y is 0 or infinite (its
        // `mul_no_nan`): a masked `tf.where(x > 0, tf.sqrt(x), 0)` at x = 0
        // has a zero gradient there, not NaN.
        BinaryOp::RsqrtGrad => go!(|y, dy| T::zip(y, dy, |y: W, dy: W| {
            no_nan_grad(dy, || W::from_f64(-0.5) * (dy * y) * (y * y))
        })),
        BinaryOp::SqrtGrad => go!(|y, dy| T::zip(y, dy, |y: W, dy: W| {
            no_nan_grad(dy, || W::from_f64(0.5) * dy / y)
        })),
        BinaryOp::ReciprocalGrad => {
            go!(|y, dy| T::zip(y, dy, |y: W, dy: W| no_nan_grad(dy, || -(y * y) * dy)))
        }
        BinaryOp::FloorMod => go!(|x, y| T::zip(x, y, |x: W, y: W| {
            let m = x.fmod(y);
            if m != W::ZERO && ((y < W::ZERO) != (m < W::ZERO)) {
                m + y
            } else {
                m
            }
        })),
        _ => return false,
    }
    true
}

/// 1 where `on`, else 0.
#[inline(always)]
fn mask<W: Compute>(on: bool) -> W {
    if on {
        W::ONE
    } else {
        W::ZERO
    }
}

/// `grad()`, or 0 where the incoming gradient `dy` is 0.
#[inline(always)]
fn no_nan_grad<W: Compute>(dy: W, grad: impl Fn() -> W) -> W {
    if dy == W::ZERO {
        W::ZERO
    } else {
        grad()
    }
}

/// The exponent `y` of `Pow` when it is one value equal to 2, 3 or 4.
fn small_power<T: Widen>(y: Src<T>) -> Option<u32> {
    match y {
        Src::Data(&[y]) => [2, 3, 4]
            .into_iter()
            .find(|&n| y.widen() == T::W::from_usize(n as usize)),
        _ => None,
    }
}

pub(super) fn run_binary<T: Element, F: Fn(T, T) -> T + Sync + Copy>(
    plan: &BroadcastPlan<2>,
    a: Src<T>,
    b: Src<T>,
    out: &mut [T],
    f: F,
) {
    let [ia, ib] = plan.inner_strides();
    for_chunks(out, |start, chunk| {
        let runs = |chunk: &mut [T]| {
            plan.for_each_run(start, start + chunk.len(), |o, [ao, bo], len| {
                let o = &mut chunk[o - start..o - start + len];
                binary_run(o, a, ao, ia, b, bo, ib, f);
            })
        };
        on_widest_simd(chunk, runs)
    });
}

/// One contiguous output run. Operand strides are 0 (broadcast) or 1.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn binary_run<T: Copy, F: Fn(T, T) -> T>(
    o: &mut [T],
    a: Src<T>,
    ao: usize,
    ia: usize,
    b: Src<T>,
    bo: usize,
    ib: usize,
    f: F,
) {
    let n = o.len();
    match (a, b) {
        (Src::Data(a), Src::Data(b)) => match (ia, ib) {
            (1, 1) => {
                for ((o, &x), &y) in o.iter_mut().zip(&a[ao..ao + n]).zip(&b[bo..bo + n]) {
                    *o = f(x, y);
                }
            }
            (1, _) => {
                let y = b[bo];
                for (o, &x) in o.iter_mut().zip(&a[ao..ao + n]) {
                    *o = f(x, y);
                }
            }
            (_, 1) => {
                let x = a[ao];
                for (o, &y) in o.iter_mut().zip(&b[bo..bo + n]) {
                    *o = f(x, y);
                }
            }
            _ => o.fill(f(a[ao], b[bo])),
        },
        (Src::Out, Src::Data(b)) => {
            if ib == 1 {
                for (o, &y) in o.iter_mut().zip(&b[bo..bo + n]) {
                    *o = f(*o, y);
                }
            } else {
                let y = b[bo];
                o.iter_mut().for_each(|o| *o = f(*o, y));
            }
        }
        (Src::Data(a), Src::Out) => {
            if ia == 1 {
                for (o, &x) in o.iter_mut().zip(&a[ao..ao + n]) {
                    *o = f(x, *o);
                }
            } else {
                let x = a[ao];
                o.iter_mut().for_each(|o| *o = f(x, *o));
            }
        }
        (Src::Out, Src::Out) => o.iter_mut().for_each(|o| *o = f(*o, *o)),
    }
}

// ----------------------------------------------------------------- unary ----

/// `f` on the float the type computes in; a closure type of its own (not a fn
/// pointer) so every op's loop is inlined and vectorised.
#[inline(always)]
fn mapped<T: FloatArith, F: Fn(T::W) -> T::W + Copy>(f: F) -> impl Fn(T) -> T + Copy {
    move |v| T::map(v, f)
}

/// The element function of every unary op on float type `$t`, handed to
/// `$go!(T, f)` (one table for the tensor kernel and the float32 chunks of
/// fused programs, so both compute the same bits).
macro_rules! float_unary_table {
    ($t:ty, $op:expr, $go:ident) => {{
        type W = <$t as Numeric>::W;
        match $op {
            UnaryOp::Neg => $go!($t, <$t as Arith>::neg),
            UnaryOp::Square => $go!($t, |v| <$t as Arith>::mul(v, v)),
            UnaryOp::Relu => $go!($t, <$t as Arith>::relu),
            UnaryOp::Sqrt => $go!($t, <$t as FloatArith>::sqrt),
            UnaryOp::Rsqrt => $go!($t, <$t as FloatArith>::rsqrt),
            UnaryOp::Exp => $go!($t, mapped::<$t, _>(|v: W| v.exp_vec())),
            UnaryOp::Log => $go!($t, <$t as FloatArith>::log),
            // The sign bit cleared: |-0| is +0 (a compare-and-negate kept -0).
            UnaryOp::Abs => $go!($t, mapped::<$t, _>(|v: W| v.abs())),
            UnaryOp::Reciprocal => $go!($t, mapped::<$t, _>(|v: W| W::ONE / v)),
            UnaryOp::Expm1 => $go!($t, mapped::<$t, _>(|v: W| v.exp_m1())),
            UnaryOp::Log1p => $go!($t, mapped::<$t, _>(|v: W| v.ln_1p())),
            UnaryOp::Relu6 => $go!(
                $t,
                mapped::<$t, _>(|v: W| {
                    let six = W::from_f64(6.0);
                    if v < W::ZERO {
                        W::ZERO
                    } else if v > six {
                        six
                    } else {
                        v
                    }
                })
            ),
            // TensorFlow evaluates these per Eigen op in the tensor's own type, so
            // exp(x) and the -1 round separately for float16/bfloat16.
            UnaryOp::Elu => $go!($t, |v: $t| {
                if v.widen() < W::ZERO {
                    <$t as Arith>::sub(<$t>::map(v, |x| x.exp()), <$t>::narrow(W::ONE))
                } else {
                    v
                }
            }),
            UnaryOp::Selu => $go!($t, |v: $t| {
                if v.widen() < W::ZERO {
                    let em1 = <$t as Arith>::sub(<$t>::map(v, |x| x.exp()), <$t>::narrow(W::ONE));
                    <$t as Arith>::mul(<$t>::narrow(W::from_f64(1.758_099_340_847_376_8)), em1)
                } else {
                    <$t as Arith>::mul(<$t>::narrow(W::from_f64(1.050_700_987_355_480_5)), v)
                }
            }),
            UnaryOp::Softplus => {
                let t = <$t as FloatArith>::softplus_threshold();
                $go!($t, move |v: $t| <$t>::map(v, |v: W| {
                    if v > -t {
                        v
                    } else if v < t {
                        v.exp()
                    } else {
                        v.exp().ln_1p()
                    }
                }))
            }
            UnaryOp::Sigmoid => $go!(
                $t,
                mapped::<$t, _>(|v: W| W::ONE / (W::ONE + (-v).exp_vec()))
            ),
            // The trait's tanh (vectorisable for float32), not f32::tanh (libm).
            UnaryOp::Tanh => $go!($t, mapped::<$t, _>(|v: W| Compute::tanh(v))),
            UnaryOp::Erf => $go!($t, mapped::<$t, _>(|v: W| v.error_fn())),
            UnaryOp::Erfc => $go!($t, mapped::<$t, _>(|v: W| v.error_fn_c())),
            UnaryOp::Floor => $go!($t, mapped::<$t, _>(|v: W| v.floor())),
            UnaryOp::Ceil => $go!($t, mapped::<$t, _>(|v: W| v.ceil())),
            UnaryOp::Round => $go!($t, mapped::<$t, _>(|v: W| v.round_even())),
        }
    }};
}

/// `out = op(x)`; `in_place` when `x`'s buffer is `out`'s.
pub fn unary(op: UnaryOp, x: &TensorView, out: &mut TensorMut, in_place: bool) -> Result<()> {
    let unsupported = || Error::Unimplemented(format!("{op:?} is not defined for {}", out.dtype));
    macro_rules! go {
        ($t:ty, $f:expr) => {
            run_unary::<$t, _>(src(x, in_place)?, out.data_mut::<$t>()?, op.cost(), $f)
        };
    }
    macro_rules! int_ops {
        ($t:ty) => {
            match op {
                UnaryOp::Neg => go!($t, <$t as Arith>::neg),
                UnaryOp::Abs => go!($t, |v: $t| if v < <$t as Arith>::zero() {
                    <$t as Arith>::neg(v)
                } else {
                    v
                }),
                UnaryOp::Square => go!($t, |v| <$t as Arith>::mul(v, v)),
                UnaryOp::Relu => go!($t, <$t as Arith>::relu),
                UnaryOp::Relu6 => go!($t, |v: $t| Ord::min(<$t as Arith>::relu(v), 6)),
                _ => return Err(unsupported()),
            }
        };
    }
    macro_rules! float_ops {
        ($t:ty) => {
            float_unary_table!($t, op, go)
        };
    }
    numeric_dispatch!(out.dtype, float_ops, int_ops, return Err(unsupported()));
    Ok(())
}

pub(super) fn run_unary<T: Element, F: Fn(T) -> T + Sync + Copy>(
    x: Src<T>,
    out: &mut [T],
    cost: usize,
    f: F,
) {
    for_chunks_costed(out, cost, |start, chunk| {
        let input = match x {
            Src::Data(x) => Some(&x[start..start + chunk.len()]),
            Src::Out => None,
        };
        map_chunk(input, chunk, f)
    });
}

widest_simd_fn! {
    /// `chunk[i] = f(input[i])` (or `f(chunk[i])` in place), vectorised for
    /// the CPU: without it the math-heavy ops (exp, erfc, sigmoid) would run
    /// on SSE2.
    fn map_chunk[T: Copy, F: Fn(T) -> T](input: Option<&[T]>, chunk: &mut [T], f: F) => map_chunk_plain
}

#[inline(always)]
fn map_chunk_plain<T: Copy, F: Fn(T) -> T>(input: Option<&[T]>, chunk: &mut [T], f: F) {
    match input {
        Some(x) => {
            for (o, &v) in chunk.iter_mut().zip(x) {
                *o = f(v);
            }
        }
        None => chunk.iter_mut().for_each(|o| *o = f(*o)),
    }
}

// ------------------------------------------------- compare, logic, select ----

/// Runs `out[i] = f(ops...)` over broadcast operands into a fresh output.
fn run_mapped<const N: usize, T: Copy + Sync, O: Send>(
    plan: &BroadcastPlan<N>,
    inputs: [&[T]; N],
    out: &mut [O],
    f: impl Fn([T; N]) -> O + Sync,
) {
    let is = plan.inner_strides();
    for_chunks(out, |start, chunk| {
        plan.for_each_run(start, start + chunk.len(), |o, offs, len| {
            for (i, slot) in chunk[o - start..o - start + len].iter_mut().enumerate() {
                *slot = f(std::array::from_fn(|k| inputs[k][offs[k] + i * is[k]]));
            }
        });
    });
}

/// `out = a (op) b` as bool, with broadcasting.
pub fn compare(op: CompareOp, a: &TensorView, b: &TensorView, out: &mut TensorMut) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&a.shape, &b.shape]);
    let o = out.data_mut::<bool>()?;
    fn cmp<T: PartialOrd>(op: CompareOp) -> fn([T; 2]) -> bool {
        match op {
            CompareOp::Less => |[x, y]| x < y,
            CompareOp::LessEqual => |[x, y]| x <= y,
            CompareOp::Greater => |[x, y]| x > y,
            CompareOp::GreaterEqual => |[x, y]| x >= y,
            CompareOp::Equal => |[x, y]| x == y,
            CompareOp::NotEqual => |[x, y]| x != y,
        }
    }
    tfa_core::dispatch!(a.dtype, T => {
        run_mapped(&plan, [a.data::<T>()?, b.data::<T>()?], o, cmp::<T>(op));
        Ok(())
    })
}

/// Boolean and/or with broadcasting.
pub fn logical(op: LogicalOp, a: &TensorView, b: &TensorView, out: &mut TensorMut) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&a.shape, &b.shape]);
    let (x, y) = (a.data::<bool>()?, b.data::<bool>()?);
    match op {
        LogicalOp::And => run_mapped(&plan, [x, y], out.data_mut::<bool>()?, |[p, q]| p && q),
        LogicalOp::Or => run_mapped(&plan, [x, y], out.data_mut::<bool>()?, |[p, q]| p || q),
    }
    Ok(())
}

/// `out = is_finite(x)` (or is_nan, is_inf) for the float types.
pub fn classify(op: ClassifyOp, x: &TensorView, out: &mut TensorMut) -> Result<()> {
    fn run<T: Copy + Sync>(x: &[T], out: &mut [bool], f: impl Fn(T) -> bool + Sync) {
        for_chunks(out, |start, chunk| {
            for (o, &v) in chunk.iter_mut().zip(&x[start..]) {
                *o = f(v);
            }
        });
    }
    let o = out.data_mut::<bool>()?;
    macro_rules! go {
        ($t:ty) => {{
            let v = x.data::<$t>()?;
            match op {
                ClassifyOp::IsFinite => run(v, o, |a: $t| a.is_finite()),
                ClassifyOp::IsNan => run(v, o, |a: $t| a.is_nan()),
                ClassifyOp::IsInf => run(v, o, |a: $t| a.is_infinite()),
            }
            Ok(())
        }};
    }
    match x.dtype {
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        DType::F16 => go!(f16),
        DType::BF16 => go!(bf16),
        d => Err(Error::Unimplemented(format!(
            "{op:?} is defined for float types, got {d}"
        ))),
    }
}

pub fn logical_not(x: &TensorView, out: &mut TensorMut) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&x.shape]);
    run_mapped(&plan, [x.data::<bool>()?], out.data_mut::<bool>()?, |[p]| {
        !p
    });
    Ok(())
}

/// `out = cond ? t : e` with three-way broadcasting (SelectV2).
pub fn select(
    cond: &TensorView,
    t: &TensorView,
    e: &TensorView,
    out: &mut TensorMut,
) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&cond.shape, &t.shape, &e.shape]);
    let c = cond.data::<bool>()?;
    let is = plan.inner_strides();
    tfa_core::dispatch!(out.dtype, T => {
        let (tv, ev) = (t.data::<T>()?, e.data::<T>()?);
        let o = out.data_mut::<T>()?;
        for_chunks(o, |start, chunk| {
            plan.for_each_run(start, start + chunk.len(), |pos, [co, to, eo], len| {
                for (i, slot) in chunk[pos - start..pos - start + len].iter_mut().enumerate() {
                    *slot = if c[co + i * is[0]] { tv[to + i * is[1]] } else { ev[eo + i * is[2]] };
                }
            });
        });
        Ok(())
    })
}

/// Fills `out` with the scalar `value` (Fill, ZerosLike, OnesLike).
pub fn fill(value: &TensorView, out: &mut TensorMut) -> Result<()> {
    if value.num_elements() != 1 {
        return Err(Error::InvalidArgument(format!(
            "value must be a scalar, got shape {:?}",
            value.shape
        )));
    }
    tfa_core::dispatch!(out.dtype, T => {
        let v = value.data::<T>()?[0];
        for_chunks(out.data_mut::<T>()?, |_, c| c.fill(v));
        Ok(())
    })
}

// ------------------------------------------------------------------ AddN ----

/// `out = sum(inputs)`, all of the output's shape. `in_place` names the input
/// whose buffer is `out`'s.
pub fn add_n(inputs: &[TensorView], out: &mut TensorMut, in_place: Option<usize>) -> Result<()> {
    macro_rules! go {
        ($t:ty) => {{
            let srcs = inputs
                .iter()
                .enumerate()
                .map(|(i, v)| src::<$t>(v, in_place == Some(i)))
                .collect::<Result<Vec<_>>>()?;
            run_add_n::<$t>(&srcs, out.data_mut::<$t>()?)
        }};
    }
    match out.dtype {
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        DType::F16 => go!(f16),
        DType::BF16 => go!(bf16),
        DType::I8 => go!(i8),
        DType::I16 => go!(i16),
        DType::I32 => go!(i32),
        DType::I64 => go!(i64),
        DType::U8 => go!(u8),
        DType::U16 => go!(u16),
        DType::U32 => go!(u32),
        DType::U64 => go!(u64),
        d => return Err(Error::Unimplemented(format!("AddN is not defined for {d}"))),
    }
    Ok(())
}

fn run_add_n<T: Arith>(srcs: &[Src<T>], out: &mut [T]) {
    // The aliased input (if any) is already in `out`; the others are added to it.
    let aliased = srcs.iter().any(|s| matches!(s, Src::Out));
    for_chunks(out, |start, chunk| {
        let range = start..start + chunk.len();
        let mut rest = srcs.iter().filter_map(|s| match s {
            Src::Data(d) => Some(&d[range.clone()]),
            Src::Out => None,
        });
        if !aliased {
            match rest.next() {
                Some(first) => chunk.copy_from_slice(first),
                None => chunk.fill(T::zero()),
            }
        }
        for d in rest {
            for (o, &v) in chunk.iter_mut().zip(d) {
                *o = T::add(*o, v);
            }
        }
    });
}

#[cfg(test)]
mod tests;

// ------------------------------------------- float32 chunks of fused programs ----

/// One operand of [`binary_f32`] over a chunk of `n` rows of `w` columns.
#[derive(Copy, Clone)]
pub(crate) enum Lane<'a> {
    /// Every element (`n * w`).
    Each(&'a [f32]),
    /// One value per column (`w`), the same in every row.
    PerCol(&'a [f32]),
    /// One value per row (`n`).
    PerRow(&'a [f32]),
    /// One value.
    One(f32),
}

/// Row `r` of a lane: a run of `w` values or one value.
#[derive(Copy, Clone)]
enum RowLane<'a> {
    Run(&'a [f32]),
    Val(f32),
}

impl<'a> Lane<'a> {
    #[inline(always)]
    fn row(self, r: usize, w: usize) -> RowLane<'a> {
        match self {
            Lane::Each(s) => RowLane::Run(&s[r * w..(r + 1) * w]),
            Lane::PerCol(c) => RowLane::Run(c),
            Lane::PerRow(v) => RowLane::Val(v[r]),
            Lane::One(v) => RowLane::Val(v),
        }
    }
}

/// `out[i] = f(a[i], b[i])` over one run; `Val` operands broadcast.
#[inline(always)]
fn zip_run<F: Fn(f32, f32) -> f32>(o: &mut [f32], a: RowLane, b: RowLane, f: F) {
    match (a, b) {
        (RowLane::Run(x), RowLane::Run(y)) => {
            for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                *o = f(x, y);
            }
        }
        (RowLane::Run(x), RowLane::Val(y)) => {
            for (o, &x) in o.iter_mut().zip(x) {
                *o = f(x, y);
            }
        }
        (RowLane::Val(x), RowLane::Run(y)) => {
            for (o, &y) in o.iter_mut().zip(y) {
                *o = f(x, y);
            }
        }
        (RowLane::Val(x), RowLane::Val(y)) => o.fill(f(x, y)),
    }
}

/// `out[i] = f(a[i], b[i])` over a chunk of rows of `w` columns.
#[inline(always)]
fn zip_lanes_plain<F: Fn(f32, f32) -> f32 + Copy>(
    a: Lane,
    b: Lane,
    w: usize,
    out: &mut [f32],
    f: F,
) {
    match (a, b) {
        (Lane::Each(_) | Lane::One(_), Lane::Each(_) | Lane::One(_)) => {
            let n = out.len();
            zip_run(out, a.row(0, n), b.row(0, n), f)
        }
        _ => {
            for (r, o) in out.chunks_exact_mut(w.max(1)).enumerate() {
                zip_run(o, a.row(r, w), b.row(r, w), f);
            }
        }
    }
}

widest_simd_fn! {
    /// [`zip_lanes_plain`] vectorised for the CPU.
    fn zip_lanes[F: Fn(f32, f32) -> f32 + Copy](a: Lane, b: Lane, w: usize, out: &mut [f32], f: F) => zip_lanes_plain
}

/// `out = a (op) b` on a chunk of `out.len() / w` rows of `w` columns, with
/// the lanes' broadcasting, vectorised for the widest unit the CPU has:
/// the fused programs' float32 path, with none of [`binary`]'s per-call
/// set-up (a broadcast plan, shape checks) because it runs on chunks small
/// enough to stay in L1. False (and `out` untouched) for an op outside the
/// table every numeric type shares or `Div`.
pub(crate) fn binary_f32(op: BinaryOp, a: Lane, b: Lane, w: usize, out: &mut [f32]) -> bool {
    macro_rules! go {
        ($t:ty, $f:expr) => {{
            zip_lanes(a, b, w, out, $f);
            true
        }};
    }
    common_binary_table!(
        f32,
        op,
        go,
        match op {
            BinaryOp::Div => go!(f32, <f32 as FloatArith>::div),
            _ => false,
        }
    )
}

/// Whether [`binary_f32`] computes `op`.
pub(crate) fn binary_f32_has(op: BinaryOp) -> bool {
    binary_f32(op, Lane::One(1.0), Lane::One(1.0), 1, &mut [0.0])
}

/// Something generic over a float32 unary function: see [`visit_unary_f32`].
pub(crate) trait UnaryVisitor {
    type Out;
    fn visit<F: Fn(f32) -> f32>(self, f: F) -> Self::Out;
}

/// Calls `v` with `op`'s float32 function, the one [`unary_f32`] and the
/// tensor kernels apply (the same bits), so other kernels can inline it.
pub(crate) fn visit_unary_f32<V: UnaryVisitor>(op: UnaryOp, v: V) -> V::Out {
    macro_rules! go {
        ($t:ty, $f:expr) => {
            v.visit($f)
        };
    }
    float_unary_table!(f32, op, go)
}

/// `out[i] = op(x[i])` (or in place) on a float32 chunk, vectorised, without
/// [`unary`]'s per-call set-up: the fused programs' float32 path.
pub(crate) fn unary_f32(op: UnaryOp, x: Option<&[f32]>, out: &mut [f32]) {
    macro_rules! go {
        ($t:ty, $f:expr) => {
            map_chunk(x, out, $f)
        };
    }
    float_unary_table!(f32, op, go)
}
