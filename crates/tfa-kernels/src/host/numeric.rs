//! The numeric family every kernel shares, in three layers:
//! - [`Accumulate`]: the types partial results are carried in (float32,
//!   float64 and the integers, which wrap on overflow as TensorFlow's kernels
//!   do in practice): identities, sum, product, NaN-propagating extremes.
//! - [`Numeric`]: an element type, the type it widens to for arithmetic and
//!   its finite extremes. float16 and bfloat16 widen to float32, as
//!   TensorFlow's CPU kernels compute half types; the others are their own.
//! - [`Compute`]: the float types arithmetic happens in (float32, float64),
//!   with the math functions the kernels need; [`Widen`] names the element
//!   types that widen to one (the four float types).
//!
//! Reductions, segment sums, padding gradients, the all-reduce,
//! convolutions, pooling, their gradients, the losses and the elementwise
//! float ops all take their arithmetic from here. (`arith::Arith` is
//! arithmetic *in* the element type with TensorFlow's per-op rounding, and
//! builds on this family.)

use half::{bf16, f16};
use tfa_core::{Element, Result};

use super::arith::{erf_f32, erfc_f32, exp_f32, tanh_f32};
use super::conv::{ConvGeom, RowsEpilogue};

/// Accumulator arithmetic.
pub trait Accumulate: Copy + Send + Sync + PartialOrd + 'static {
    const ZERO: Self;
    const ONE: Self;
    /// The identity of Max: -inf for floats, the minimum for integers.
    const MAX_IDENTITY: Self;
    /// The identity of Min: +inf for floats, the maximum for integers.
    const MIN_IDENTITY: Self;
    fn add(a: Self, b: Self) -> Self;
    fn sub(a: Self, b: Self) -> Self;
    fn mul(a: Self, b: Self) -> Self;
    fn is_nan(self) -> bool;
    /// `self / n` (Mean); 0 for an integer with `n == 0`.
    fn div_count(self, n: usize) -> Self;
    /// The larger of `a` and `b`, NaN once either was NaN (running `a`).
    #[inline(always)]
    fn max(a: Self, b: Self) -> Self {
        if b.is_nan() || b > a {
            b
        } else {
            a
        }
    }
    /// The smaller, as [`Accumulate::max`].
    #[inline(always)]
    fn min(a: Self, b: Self) -> Self {
        if b.is_nan() || b < a {
            b
        } else {
            a
        }
    }
}

macro_rules! float_accumulate {
    ($($t:ty),*) => {$(
        impl Accumulate for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const MAX_IDENTITY: Self = <$t>::NEG_INFINITY;
            const MIN_IDENTITY: Self = <$t>::INFINITY;
            #[inline(always)]
            fn add(a: Self, b: Self) -> Self {
                a + b
            }
            #[inline(always)]
            fn sub(a: Self, b: Self) -> Self {
                a - b
            }
            #[inline(always)]
            fn mul(a: Self, b: Self) -> Self {
                a * b
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn div_count(self, n: usize) -> Self {
                self / n as $t
            }
        }
    )*};
}
float_accumulate!(f32, f64);

macro_rules! int_accumulate {
    ($($t:ty),*) => {$(
        impl Accumulate for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const MAX_IDENTITY: Self = <$t>::MIN;
            const MIN_IDENTITY: Self = <$t>::MAX;
            #[inline(always)]
            fn add(a: Self, b: Self) -> Self {
                a.wrapping_add(b)
            }
            #[inline(always)]
            fn sub(a: Self, b: Self) -> Self {
                a.wrapping_sub(b)
            }
            #[inline(always)]
            fn mul(a: Self, b: Self) -> Self {
                a.wrapping_mul(b)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                false
            }
            fn div_count(self, n: usize) -> Self {
                if n == 0 {
                    0
                } else {
                    self / n as $t
                }
            }
        }
    )*};
}
int_accumulate!(i8, i16, i32, i64, u8, u16, u32, u64);

/// An element type and the type its arithmetic happens in.
pub trait Numeric: Element + PartialOrd {
    type W: Accumulate;
    fn widen(self) -> Self::W;
    fn narrow(w: Self::W) -> Self;
    /// Eigen's `NumTraits::lowest()` / `highest()`: finite also for floats.
    const LOWEST: Self;
    const HIGHEST: Self;
    /// `a + b` in the element type: widened, added, rounded back (how Eigen's
    /// half operators round after every step).
    #[inline(always)]
    fn add_rounded(a: Self, b: Self) -> Self {
        Self::narrow(Accumulate::add(a.widen(), b.widen()))
    }
    /// `a - b` in the element type, as [`Numeric::add_rounded`].
    #[inline(always)]
    fn sub_rounded(a: Self, b: Self) -> Self {
        Self::narrow(Accumulate::sub(a.widen(), b.widen()))
    }
    /// `a * b` in the element type, as [`Numeric::add_rounded`].
    #[inline(always)]
    fn mul_rounded(a: Self, b: Self) -> Self {
        Self::narrow(Accumulate::mul(a.widen(), b.widen()))
    }
}

macro_rules! own_width {
    ($($t:ty),*) => {$(
        impl Numeric for $t {
            type W = $t;
            #[inline(always)]
            fn widen(self) -> $t {
                self
            }
            #[inline(always)]
            fn narrow(w: $t) -> $t {
                w
            }
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
        }
    )*};
}
own_width!(f32, f64, i8, i16, i32, i64, u8, u16, u32, u64);

impl Numeric for f16 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(w: f32) -> f16 {
        f16::from_f32(w)
    }
    const LOWEST: Self = f16::MIN;
    const HIGHEST: Self = f16::MAX;
}

impl Numeric for bf16 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    /// The branch-light rounding that vectorises (same bits as
    /// `bf16::from_f32`, NaN included).
    #[inline(always)]
    fn narrow(w: f32) -> bf16 {
        bf16::from_bits(super::lowp_gemm::bf16_bits(w))
    }
    const LOWEST: Self = bf16::MIN;
    const HIGHEST: Self = bf16::MAX;
}

/// The float element types: those that widen to a [`Compute`] type.
pub trait Widen: Numeric<W: Compute> {}
impl<T: Numeric<W: Compute>> Widen for T {}

/// The compute types (float32, float64).
pub trait Compute:
    Accumulate
    + Numeric
    + Default
    + std::ops::Neg<Output = Self>
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    /// The convolution by a kernel of the type's own where one suits `g`
    /// better than im2col + GEMM, `None` otherwise. float32: Winograd's
    /// method (where `winograd` allows it and its cost rule picks it, see
    /// `winograd`), else the packed-filter pointwise kernel (see
    /// `conv::pointwise`), else the direct kernel for windows with short rows
    /// (see `conv::short_rows`).
    fn own_conv(
        _x: &[Self],
        _f: &[Self],
        _y: &mut [Self],
        _g: &ConvGeom,
        _epilogue: Option<&RowsEpilogue>,
        _winograd: bool,
    ) -> Option<Result<()>> {
        None
    }
    /// The Conv2D filter gradient (`df`, HWIO, from NHWC `x` and `dy`) by a
    /// kernel of the type's own where one suits `g` better than im2col +
    /// GEMM; false (nothing written) otherwise. float32: Winograd's method
    /// (`conv_grad::winograd`).
    fn own_filter_grad(_x: &[Self], _dy: &[Self], _df: &mut [Self], _g: &ConvGeom) -> bool {
        false
    }
    const NAN: Self;
    fn from_usize(v: usize) -> Self;
    fn from_f64(v: f64) -> Self;
    /// `self * b + c`, fused (only call where the `fma` feature is enabled:
    /// elsewhere it is a slow library call).
    fn fused(self, b: Self, c: Self) -> Self;
    /// `self^N` by products, for the small powers `Pow` meets with a scalar
    /// exponent (2, 3, 4): vectorises where `powf` is a libm call per
    /// element. float32 multiplies in float64 (x^2 exact there, x^3 and x^4
    /// within one float64 rounding), so its result is the correctly rounded
    /// one but for rare double-rounding ties (1 ulp), as good as `powf`.
    fn powi_exact<const N: u32>(self) -> Self;
    fn exp(self) -> Self;
    /// `exp` without a libm call for float32 (vectorises); libm for f64.
    fn exp_vec(self) -> Self;
    /// `tanh` without a libm call for float32 (vectorises); libm for f64.
    fn tanh(self) -> Self;
    fn error_fn(self) -> Self;
    fn error_fn_c(self) -> Self;
    fn round_even(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn fmod(self, d: Self) -> Self;
    /// `atan2(self, x)`: the angle of the point (x, self).
    fn atan2(self, x: Self) -> Self;
    fn trunc(self) -> Self;
    fn exp_m1(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    fn abs(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tan(self) -> Self;
    fn asin(self) -> Self;
    fn acos(self) -> Self;
    fn atan(self) -> Self;
    fn sinh(self) -> Self;
    fn cosh(self) -> Self;
    fn asinh(self) -> Self;
    fn acosh(self) -> Self;
    fn atanh(self) -> Self;
}

/// Methods that are the standard library's own of the same name.
macro_rules! std_methods {
    ($t:ty: $($f:ident),*) => {$(
        #[inline(always)]
        fn $f(self) -> Self {
            <$t>::$f(self)
        }
    )*};
}

macro_rules! compute {
    ($t:ty, $erf:path, $erfc:path, $exp_vec:expr, $tanh:path) => {
        const NAN: Self = <$t>::NAN;
        #[inline(always)]
        fn from_usize(v: usize) -> Self {
            v as $t
        }
        #[inline(always)]
        fn from_f64(v: f64) -> Self {
            v as $t
        }
        #[inline(always)]
        fn fused(self, b: Self, c: Self) -> Self {
            self.mul_add(b, c)
        }
        #[inline(always)]
        fn exp_vec(self) -> Self {
            ($exp_vec)(self)
        }
        #[inline(always)]
        fn tanh(self) -> Self {
            $tanh(self)
        }
        #[inline(always)]
        fn error_fn(self) -> Self {
            $erf(self)
        }
        #[inline(always)]
        fn error_fn_c(self) -> Self {
            $erfc(self)
        }
        #[inline(always)]
        fn round_even(self) -> Self {
            <$t>::round_ties_even(self)
        }
        #[inline(always)]
        fn powf(self, e: Self) -> Self {
            <$t>::powf(self, e)
        }
        #[inline(always)]
        fn fmod(self, d: Self) -> Self {
            self % d
        }
        #[inline(always)]
        fn atan2(self, x: Self) -> Self {
            <$t>::atan2(self, x)
        }
        std_methods!($t: trunc, exp, exp_m1, ln, ln_1p, sqrt, floor, ceil, abs, sin, cos, tan, asin, acos,
            atan, sinh, cosh, asinh, acosh, atanh);
    };
}

impl Compute for f32 {
    #[inline(always)]
    fn powi_exact<const N: u32>(self) -> f32 {
        let x = f64::from(self);
        let mut p = x;
        for _ in 1..N {
            p *= x;
        }
        p as f32
    }
    compute!(
        f32,
        erf_f32,
        erfc_f32,
        |v: f32| if v > 88.722_84 {
            f32::INFINITY
        } else {
            exp_f32(v)
        },
        tanh_f32
    );
    fn own_conv(
        x: &[f32],
        f: &[f32],
        y: &mut [f32],
        g: &ConvGeom,
        epilogue: Option<&RowsEpilogue>,
        winograd: bool,
    ) -> Option<Result<()>> {
        if winograd {
            if let Some(done) = crate::host::winograd::conv2d(x, f, y, g, epilogue) {
                return Some(done);
            }
        }
        if let Some(done) = crate::host::conv::pointwise::conv2d(x, f, y, g, epilogue) {
            return Some(done);
        }
        crate::host::conv::short_rows::conv2d(x, f, y, g, epilogue)
    }
    fn own_filter_grad(x: &[f32], dy: &[f32], df: &mut [f32], g: &ConvGeom) -> bool {
        crate::host::conv_grad::winograd::filter_grad(x, dy, df, g)
    }
}

impl Compute for f64 {
    #[inline(always)]
    fn powi_exact<const N: u32>(self) -> f64 {
        let mut p = self;
        for _ in 1..N {
            p *= self;
        }
        p
    }
    compute!(f64, libm::erf, libm::erfc, f64::exp, f64::tanh);
}
