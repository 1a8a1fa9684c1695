//! Scalar arithmetic with TensorFlow CPU semantics per element type.
//!
//! float16/bfloat16 compute in float32 and round once, as Eigen's `half` and
//! `bfloat16` operators do, so single ops agree bit-for-bit with TensorFlow.
//! Integers wrap on overflow (what TensorFlow's C++ kernels do in practice).

use super::numeric::{Accumulate, Compute, Numeric, Widen};
use half::{bf16, f16};

/// Binary and unary arithmetic every numeric type has, in the element type:
/// widened, computed, rounded once (the numeric family's `*_rounded`).
pub trait Arith: Numeric {
    #[inline(always)]
    fn add(a: Self, b: Self) -> Self {
        Self::add_rounded(a, b)
    }
    #[inline(always)]
    fn sub(a: Self, b: Self) -> Self {
        Self::sub_rounded(a, b)
    }
    #[inline(always)]
    fn mul(a: Self, b: Self) -> Self {
        Self::mul_rounded(a, b)
    }
    #[inline(always)]
    fn zero() -> Self {
        Self::narrow(Self::W::ZERO)
    }
    #[inline(always)]
    fn one() -> Self {
        Self::narrow(Self::W::ONE)
    }
    /// Maximum that propagates NaN (TensorFlow's `Maximum`).
    fn max(a: Self, b: Self) -> Self;
    fn min(a: Self, b: Self) -> Self;
    fn neg(a: Self) -> Self;
    fn relu(a: Self) -> Self;
}

/// Ops that only floating-point types have. Types narrower than f32 compute
/// in f32 (`Widen`); the default methods do exactly that, so each op is
/// written once, on f32/f64 values.
pub trait FloatArith: Arith + Widen {
    #[inline(always)]
    fn map(a: Self, f: impl Fn(Self::W) -> Self::W) -> Self {
        Self::narrow(f(a.widen()))
    }
    #[inline(always)]
    fn zip(a: Self, b: Self, f: impl Fn(Self::W, Self::W) -> Self::W) -> Self {
        Self::narrow(f(a.widen(), b.widen()))
    }
    /// log(epsilon of this type) + 2: TensorFlow's Softplus cut-over points.
    fn softplus_threshold() -> Self::W;
    #[inline(always)]
    fn div(a: Self, b: Self) -> Self {
        Self::zip(a, b, |x, y| x / y)
    }
    #[inline(always)]
    fn sqrt(a: Self) -> Self {
        Self::map(a, Compute::sqrt)
    }
    #[inline(always)]
    fn rsqrt(a: Self) -> Self {
        Self::map(a, |x| Self::W::ONE / x.sqrt())
    }
    #[inline(always)]
    fn exp(a: Self) -> Self {
        Self::map(a, Compute::exp)
    }
    #[inline(always)]
    fn log(a: Self) -> Self {
        Self::map(a, Compute::ln)
    }
}

/// `e^x` for float32 without a libm call, so loops vectorise: Cephes'
/// polynomial on `x - n ln2` (about 1 ulp), scaled by `2^n` in two normal
/// steps so results in the subnormal range round correctly. NaN stays NaN;
/// inputs above ~88.7 saturate near the largest finite value (softmax only
/// passes `x - max <= 0`).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-104.0, 88.72);
    let big = fma(x, std::f32::consts::LOG2_E, EXP_MAGIC);
    let n = big - EXP_MAGIC;
    exp_reduced(big, fma(n, LN2_LO, fma(-n, LN2_HI, x)))
}

/// `a * b + c` rounded once. The polynomials below are written with it and
/// in Estrin's form (independent pairs, then powers of the argument) rather
/// than Horner's: their loops are bound by the latency of one long chain of
/// dependent operations per vector, not by throughput, so fewer and shorter
/// chains pay (erfc 5.8 -> 3.8 ns per element on one Zen 1 core, a one-off
/// microbenchmark). Every loop that calls these functions is compiled with
/// FMA enabled where the CPU has it (`map_chunk`, `softmax_rows`); on a CPU
/// without FMA `mul_add` is a libm call: correct, slower.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// Round-to-integer constant for [`exp_f32`]: x/ln2 + 1.5 * 2^23 rounds to
/// the nearest integer without floor/cvt calls (vectorises on plain SSE2);
/// |x/ln2| < 151.
const EXP_MAGIC: f32 = 12_582_912.0;
/// ln 2 in two parts (Cody-Waite): `n * LN2_HI` is exact for |n| < 2^15.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = 2.121_944_4e-4;

/// `e^(hi + lo)` where `hi` is exact and `lo` small: `lo` joins the reduced
/// argument after the exact `hi - n ln2_hi`, so the rounding of `hi + lo`
/// (up to 8e-6 relative for |hi| near 100) never enters the result.
/// `hi` is clamped as in [`exp_f32`].
#[inline(always)]
fn exp_f32_sum(hi: f32, lo: f32) -> f32 {
    let hi = hi.clamp(-104.0, 88.72);
    let big = fma(hi + lo, std::f32::consts::LOG2_E, EXP_MAGIC);
    let n = big - EXP_MAGIC;
    exp_reduced(big, fma(n, LN2_LO, fma(-n, LN2_HI, hi) + lo))
}

/// `2^n e^r` for |r| <= ln2/2, `n` read from the rounding register `big`:
/// Cephes' polynomial (about 1 ulp), scaled by `2^n` in two normal steps so
/// results in the subnormal range round correctly.
#[inline(always)]
fn exp_reduced(big: f32, r: f32) -> f32 {
    let z = r * r;
    let p01 = fma(0.166_666_65, r, 0.5);
    let p23 = fma(8.333_452e-3, r, 4.166_579_6e-2);
    let p45 = fma(1.987_569_2e-4, r, 1.398_199_9e-3);
    let p = fma(fma(p45, z, p23), z, p01);
    let y = fma(p, z, r) + 1.0;
    let n = big.to_bits() as i32 - EXP_MAGIC.to_bits() as i32;
    let n1 = n >> 1;
    let n2 = n - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    y * s1 * s2
}

/// `tanh` for float32 without a libm call, so loops vectorise (libm's
/// `tanhf` calls `expm1f` per element: it was most of an LSTM cell's time).
/// Cephes' `tanhf`: an odd polynomial below 0.625, else `1 - 2 / (e^2|x| + 1)`
/// with the sign of `x` (about 2 ulp; TensorFlow's Eigen kernel uses its own
/// rational approximation of similar accuracy). NaN stays NaN, ±inf gives ±1.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let z = x.abs();
    let big = 1.0 - 2.0 / (exp_f32(2.0 * z) + 1.0);
    let x2 = x * x;
    let x4 = x2 * x2;
    let q01 = fma(0.133_314_42, x2, -0.333_332_8);
    let q23 = fma(2.063_909e-2, x2, -5.373_971_6e-2);
    let q = fma(fma(-5.704_988_7e-3, x4, q23), x4, q01);
    let small = fma(q, x2 * x, x);
    // The sign of x also for -0.0 (odd function).
    (if z < 0.625 { small } else { big }).copysign(x)
}

/// `erfc` for float32 without a libm call, so loops vectorise (libm's
/// `erfcf` branches per element: TensorFlow's `gelu` is `0.5 x erfc(-x/√2)`,
/// and a BERT-base encoder spent a tenth of its time in it).
/// Numerical Recipes' `erfcc` form, `t·exp(-z² + P(t))` with `t = 1/(1+z/2)`
/// for `z = |x|`, and `2 - erfc(z)` below zero; `-z²` is split as
/// `-zh² - zl(z+zh)` with `zh` the top 12 bits of `z` (`zh²` exact) and
/// given to [`exp_f32_sum`] in those two parts, so the tail keeps its
/// relative accuracy. At most 4.5e-7 relative error
/// against float64 over [-10, 10] (tested); NaN stays NaN, erfc(±inf) = 0, 2.
#[inline(always)]
pub fn erfc_f32(x: f32) -> f32 {
    // Past 10.5 the result is below the smallest subnormal; clamping (with a
    // comparison that lets NaN through) keeps inf - inf out of `zl`.
    let a = x.abs();
    let z = if a > 10.5 { 10.5 } else { a };
    let t = 1.0 / fma(0.5, z, 1.0);
    let t2 = t * t;
    let t4 = t2 * t2;
    let p01 = fma(1.000_023_7, t, -1.265_512_2);
    let p23 = fma(0.096_784_18, t, 0.374_091_96);
    let p45 = fma(0.278_868_07, t, -0.186_288_06);
    let p67 = fma(1.488_515_9, t, -1.135_204);
    let p89 = fma(0.170_872_77, t, -0.822_152_23);
    let p = fma(fma(p89, t4, fma(p67, t2, p45)), t4, fma(p23, t2, p01));
    let zh = f32::from_bits(z.to_bits() & 0xffff_f000);
    let zl = z - zh;
    let r = t * exp_f32_sum(-zh * zh, fma(-zl, z + zh, p));
    if x < 0.0 {
        2.0 - r
    } else {
        r
    }
}

/// `erf` for float32 without a libm call: an odd polynomial (least-squares
/// fit of erf(x)/x in x², degree 6) below |x| = 1, `1 - erfc(|x|)` with the
/// sign of `x` above. At most 2e-7 relative error against float64 (tested);
/// NaN stays NaN, erf(±inf) = ±1.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x2 = x * x;
    // Horner's form: Estrin's loses a bit near |x| = 0.6 here (2.1e-7).
    let mut q = 7.971_049e-5;
    for c in [
        -8.043_374e-4,
        5.191_833_3e-3,
        -2.685_551e-2,
        0.112_836_22,
        -0.376_126_3,
        std::f32::consts::FRAC_2_SQRT_PI,
    ] {
        q = fma(q, x2, c);
    }
    let small = x * q;
    let big = (1.0 - erfc_f32(x.abs())).copysign(x);
    if x.abs() < 1.0 || x.is_nan() {
        small
    } else {
        big
    }
}

macro_rules! float_arith {
    ($t:ty) => {
        impl Arith for $t {
            #[inline(always)]
            fn max(a: Self, b: Self) -> Self {
                if a.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if a > b {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn min(a: Self, b: Self) -> Self {
                if a.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if a < b {
                    a
                } else {
                    b
                }
            }
            #[inline(always)]
            fn neg(a: Self) -> Self {
                -a
            }
            #[inline(always)]
            fn relu(a: Self) -> Self {
                // NaN stays NaN, as in TensorFlow.
                if a < 0.0 {
                    0.0
                } else {
                    a
                }
            }
        }
        impl FloatArith for $t {
            #[inline(always)]
            fn softplus_threshold() -> $t {
                <$t>::EPSILON.ln() + 2.0
            }
        }
    };
}
float_arith!(f32);
float_arith!(f64);

macro_rules! half_arith {
    ($t:ty) => {
        impl Arith for $t {
            #[inline(always)]
            fn max(a: Self, b: Self) -> Self {
                Self::narrow(f32::max_nan(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn min(a: Self, b: Self) -> Self {
                Self::narrow(f32::min_nan(a.to_f32(), b.to_f32()))
            }
            #[inline(always)]
            fn neg(a: Self) -> Self {
                -a
            }
            #[inline(always)]
            fn relu(a: Self) -> Self {
                if a.to_f32() < 0.0 {
                    <$t>::ZERO
                } else {
                    a
                }
            }
        }
        impl FloatArith for $t {
            #[inline(always)]
            fn softplus_threshold() -> f32 {
                <$t>::EPSILON.to_f32().ln() + 2.0
            }
        }
    };
}
half_arith!(f16);
half_arith!(bf16);

trait NanMinMax {
    fn max_nan(a: Self, b: Self) -> Self;
    fn min_nan(a: Self, b: Self) -> Self;
}
impl NanMinMax for f32 {
    #[inline(always)]
    fn max_nan(a: f32, b: f32) -> f32 {
        <f32 as Arith>::max(a, b)
    }
    #[inline(always)]
    fn min_nan(a: f32, b: f32) -> f32 {
        <f32 as Arith>::min(a, b)
    }
}

macro_rules! int_arith {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            #[inline(always)]
            fn max(a: Self, b: Self) -> Self { Ord::max(a, b) }
            #[inline(always)]
            fn min(a: Self, b: Self) -> Self { Ord::min(a, b) }
            #[inline(always)]
            fn neg(a: Self) -> Self { (0 as $t).wrapping_sub(a) }
            #[inline(always)]
            fn relu(a: Self) -> Self { Ord::max(a, 0) }
        }
    )*};
}
int_arith!(i8, i16, i32, i64, u8, u16, u32, u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_propagates_through_max_min() {
        assert!(<f32 as Arith>::max(f32::NAN, 1.0).is_nan());
        assert!(<f32 as Arith>::min(1.0, f32::NAN).is_nan());
        assert!(<bf16 as Arith>::max(bf16::NAN, bf16::ONE).is_nan());
        assert!(<f32 as Arith>::relu(f32::NAN).is_nan());
        assert_eq!(<f32 as Arith>::relu(-2.0), 0.0);
    }

    #[test]
    fn half_rounds_once() {
        let a = f16::from_f32(1.0);
        let b = f16::from_f32(0.0004);
        assert_eq!(<f16 as Arith>::add(a, b), f16::from_f32(1.0 + b.to_f32()));
    }

    #[test]
    fn fast_exp_is_accurate() {
        let mut x = -104.0f32;
        while x < 88.0 {
            let (g, w) = (exp_f32(x) as f64, (x as f64).exp());
            let tol = if w < f32::MIN_POSITIVE as f64 {
                1.5e-45
            } else {
                3e-7 * w
            };
            assert!((g - w).abs() <= tol, "exp({x}) = {g}, want {w}");
            x += 0.001_37;
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }

    #[test]
    fn fast_tanh_is_accurate() {
        let mut x = -12.0f32;
        while x < 12.0 {
            let (g, w) = (tanh_f32(x) as f64, (x as f64).tanh());
            assert!(
                (g - w).abs() <= 3e-7 * w.abs().max(1e-30),
                "tanh({x}) = {g}, want {w}"
            );
            x += 0.000_731;
        }
        for tiny in [1e-30f32, -1e-30, 1e-41] {
            assert_eq!(tanh_f32(tiny), tiny);
        }
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(-0.0).is_sign_negative());
        assert_eq!(tanh_f32(200.0), 1.0);
    }

    #[test]
    fn fast_erf_and_erfc_are_accurate() {
        // A dense sweep plus the points near the branch switches.
        let mut xs: Vec<f32> = (0..=400_000).map(|i| -10.0 + i as f32 * 5e-5).collect();
        xs.extend([-1.0, 1.0, 1e-30, -1e-30, 1e-41, 0.0, -0.0]);
        for x in xs {
            let w = libm::erfc(x as f64);
            let g = erfc_f32(x) as f64;
            // Relative error, plus one subnormal step below f32::MIN_POSITIVE.
            let tol = 4.5e-7 * w + 1.5e-45;
            assert!((g - w).abs() <= tol, "erfc({x}) = {g}, want {w}");
            let (g, w) = (erf_f32(x) as f64, libm::erf(x as f64));
            assert!(
                (g - w).abs() <= 2e-7 * w.abs().max(1e-38),
                "erf({x}) = {g}, want {w}"
            );
        }
        assert!(erfc_f32(f32::NAN).is_nan() && erf_f32(f32::NAN).is_nan());
        assert_eq!(erfc_f32(f32::INFINITY), 0.0);
        assert_eq!(erfc_f32(f32::NEG_INFINITY), 2.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert!(erf_f32(-0.0).is_sign_negative());
    }

    #[test]
    fn ints_wrap() {
        assert_eq!(<i64 as Arith>::add(i64::MAX, 1), i64::MIN);
        assert_eq!(<u8 as Arith>::neg(1), 255);
    }
}
