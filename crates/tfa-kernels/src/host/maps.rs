//! Float elementwise ops declared in one line each: the scalar body on the
//! float the tensor type computes in (f32 for float32/float16/bfloat16, f64
//! for float64). The loop, the AVX-512/AVX2 code paths, the reuse of an
//! input buffer, the dtype dispatch and the rounding to the tensor type are
//! shared (in the spirit of candle's `unary_op!` and tract's
//! `element_wise!`). The op table declares each TensorFlow op on one of
//! these with one line (`tfa-ops` `families/maps.rs`).
//!
//! A body gets `x` (and `g` for gradients) widened, and `r`, which rounds a
//! partial result to the tensor type: TensorFlow evaluates Eigen expressions
//! per operator in the tensor's own type, so for float16/bfloat16 a body
//! rounds where Eigen does (identity for float32/float64). The result is
//! rounded once more at the end.

use super::arith::FloatArith;
use super::broadcast::BroadcastPlan;
use super::elementwise::{run_binary, run_unary, src};
use super::numeric::{Compute, Numeric};
use half::{bf16, f16};
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

/// A one-argument map; `p` is the op's float attribute where it has one
/// (LeakyRelu's alpha), widened from float32.
pub trait Map1: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    fn apply<W: Compute>(x: W, p: W, r: impl Fn(W) -> W + Copy) -> W;
}

/// A two-argument map on same-shape operands (activation gradients:
/// `g` the incoming gradient, `x` the forward op's input), `p` as for Map1.
pub trait Map2: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    fn apply<W: Compute>(g: W, x: W, p: W, r: impl Fn(W) -> W + Copy) -> W;
}

/// `Name(x; r) = body;` or, with the op's float attribute, `Name(x, p; r)`.
macro_rules! maps1 {
    ($($(#[$doc:meta])* $name:ident($x:ident $(, $p:ident)?; $r:ident) = $body:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Copy, Clone, Debug)]
        pub struct $name;
        impl Map1 for $name {
            const NAME: &'static str = stringify!($name);
            #[inline(always)]
            #[allow(unused_variables)]
            fn apply<W: Compute>($x: W, p: W, $r: impl Fn(W) -> W + Copy) -> W {
                $(let $p = p;)?
                $body
            }
        }
    )*};
}

/// `Name(g, x; r) = body;` or `Name(g, x, p; r)`.
macro_rules! maps2 {
    ($($(#[$doc:meta])* $name:ident($g:ident, $x:ident $(, $p:ident)?; $r:ident) = $body:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Copy, Clone, Debug)]
        pub struct $name;
        impl Map2 for $name {
            const NAME: &'static str = stringify!($name);
            #[inline(always)]
            #[allow(unused_variables)]
            fn apply<W: Compute>($g: W, $x: W, p: W, $r: impl Fn(W) -> W + Copy) -> W {
                $(let $p = p;)?
                $body
            }
        }
    )*};
}

maps1! {
    /// x / (|x| + 1): Eigen rounds |x| + 1, then the quotient.
    Softsign(x; r) = x / r(x.abs() + W::ONE);
    /// x > 0 ? x : x * alpha, alpha in the tensor type (NaN stays NaN).
    LeakyRelu(x, alpha; r) = if x > W::ZERO { x } else { x * r(alpha) };
    /// -1, 0 or 1 (0 for both zeros); NaN stays NaN, as TensorFlow's.
    Sign(x; r) = if x > W::ZERO {
        W::ONE
    } else if x < W::ZERO {
        -W::ONE
    } else if x.is_nan() {
        x
    } else {
        W::ZERO
    };
    /// Round half to even (TensorFlow's Rint is Round for floats).
    Rint(x; r) = x.round_even();
    Sin(x; r) = x.sin();
    Cos(x; r) = x.cos();
    Tan(x; r) = x.tan();
    Asin(x; r) = x.asin();
    Acos(x; r) = x.acos();
    Atan(x; r) = x.atan();
    Sinh(x; r) = x.sinh();
    Cosh(x; r) = x.cosh();
    Asinh(x; r) = x.asinh();
    Acosh(x; r) = x.acosh();
    Atanh(x; r) = x.atanh();
}

maps2! {
    /// g / (|x| + 1)^2, rounding as Eigen's `(|x| + 1).square()` then the quotient.
    SoftsignGrad(g, x; r) = {
        let d = r(x.abs() + W::ONE);
        g / r(d * d)
    };
    /// x > 0 ? g : g * alpha.
    LeakyReluGrad(g, x, alpha; r) = if x > W::ZERO { g } else { g * r(alpha) };
}

/// Rounds `w` to `T` and back: what Eigen's per-operator evaluation in `T` does.
#[inline(always)]
fn round_to<T: FloatArith>(w: T::W) -> T::W {
    T::narrow(w).widen()
}

fn unsupported(name: &str, dtype: DType) -> Error {
    Error::Unimplemented(format!("{name} is not defined for {dtype}"))
}

/// `$go!(T)` for the float dtype `$dtype`; Unimplemented naming `$name` for
/// the others.
macro_rules! for_float_dtype {
    ($dtype:expr, $name:expr, $go:ident) => {
        match $dtype {
            DType::F32 => $go!(f32),
            DType::F64 => $go!(f64),
            DType::F16 => $go!(f16),
            DType::BF16 => $go!(bf16),
            d => return Err(unsupported($name, d)),
        }
    };
}

/// `out = M(x)` with attribute `p` (0 when the op has none); `in_place`
/// when `x`'s buffer is `out`'s.
pub fn map1<M: Map1>(x: &TensorView, p: f32, out: &mut TensorMut, in_place: bool) -> Result<()> {
    macro_rules! go {
        ($t:ty) => {{
            let p = <$t as Numeric>::W::from_f64(p as f64);
            run_unary::<$t, _>(src(x, in_place)?, out.data_mut::<$t>()?, 1, |v: $t| {
                <$t>::narrow(M::apply(v.widen(), p, round_to::<$t>))
            })
        }};
    }
    for_float_dtype!(out.dtype, M::NAME, go);
    Ok(())
}

/// `out = M(g, x)` with attribute `p` for same-shape `g` and `x`;
/// `in_place` names the operand whose buffer is `out`'s.
pub fn map2<M: Map2>(
    g: &TensorView,
    x: &TensorView,
    p: f32,
    out: &mut TensorMut,
    in_place: Option<usize>,
) -> Result<()> {
    if g.shape != out.shape || x.shape != out.shape {
        return Err(Error::Internal(format!(
            "{}: operands must have the output's shape",
            M::NAME
        )));
    }
    let plan = BroadcastPlan::new(&out.shape, [&g.shape, &x.shape]);
    let (ga, xa) = (in_place == Some(0), in_place == Some(1));
    macro_rules! go {
        ($t:ty) => {{
            let p = <$t as Numeric>::W::from_f64(p as f64);
            run_binary::<$t, _>(
                &plan,
                src(g, ga)?,
                src(x, xa)?,
                out.data_mut::<$t>()?,
                |a: $t, b: $t| <$t>::narrow(M::apply(a.widen(), b.widen(), p, round_to::<$t>)),
            )
        }};
    }
    for_float_dtype!(out.dtype, M::NAME, go);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run1<M: Map1>(xs: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; xs.len()];
        let x = TensorView::from_slice(vec![xs.len()], xs);
        map1::<M>(
            &x,
            0.0,
            &mut TensorMut::from_slice(vec![xs.len()], &mut out),
            false,
        )
        .unwrap();
        out
    }

    #[test]
    fn softsign_rounds_like_eigen_in_half_types() {
        let xs = [-3.0f32, -0.5, 0.0, 0.1, 1.0, 7.5, 1e4, f32::NAN];
        for (&x, &y) in xs.iter().zip(&run1::<Softsign>(&xs)) {
            let want = x / (x.abs() + 1.0);
            assert!(
                y == want || (y.is_nan() && want.is_nan()),
                "{x}: {y} vs {want}"
            );
        }
        // bfloat16: |x| + 1 rounds to bfloat16 before the division.
        let x = [bf16::from_f32(0.1)];
        let mut out = [bf16::ZERO];
        map1::<Softsign>(
            &TensorView::from_slice(vec![1], &x),
            0.0,
            &mut TensorMut::from_slice(vec![1], &mut out),
            false,
        )
        .unwrap();
        let d = bf16::from_f32(x[0].to_f32() + 1.0).to_f32();
        assert_eq!(out[0], bf16::from_f32(x[0].to_f32() / d));
    }

    #[test]
    fn leaky_relu_takes_alpha_in_the_tensor_type() {
        let xs = [-2.0f32, -0.0, 0.0, 3.0, f32::NAN];
        let mut out = [0f32; 5];
        map1::<LeakyRelu>(
            &TensorView::from_slice(vec![5], &xs),
            0.2,
            &mut TensorMut::from_slice(vec![5], &mut out),
            false,
        )
        .unwrap();
        assert_eq!(out[..4], [-2.0 * 0.2f32, -0.0, 0.0, 3.0]);
        assert!(out[4].is_nan());
        let x = [f16::from_f32(-1.0)];
        let mut o = [f16::ZERO];
        map1::<LeakyRelu>(
            &TensorView::from_slice(vec![1], &x),
            0.1,
            &mut TensorMut::from_slice(vec![1], &mut o),
            false,
        )
        .unwrap();
        assert_eq!(o[0], -f16::from_f32(0.1));
    }

    #[test]
    fn sign_keeps_nan_and_gives_positive_zero() {
        let got = run1::<Sign>(&[f32::NAN, -0.0, 0.0, -2.0, 3.0, f32::NEG_INFINITY]);
        assert!(got[0].is_nan());
        assert_eq!(got[1..], [0.0, 0.0, -1.0, 1.0, -1.0]);
        assert!(got[1].is_sign_positive());
        assert_eq!(run1::<Rint>(&[0.5, 1.5, -0.5, 2.5]), [0.0, 2.0, -0.0, 2.0]);
    }

    #[test]
    fn trig_maps_match_the_standard_library() {
        let xs = [-0.9f32, -0.3, 0.0, 0.4, 0.99];
        for (got, f) in [
            (run1::<Sin>(&xs), f32::sin as fn(f32) -> f32),
            (run1::<Atanh>(&xs), f32::atanh),
            (run1::<Acos>(&xs), f32::acos),
        ] {
            for (&x, &y) in xs.iter().zip(&got) {
                assert_eq!(y, f(x), "{x}");
            }
        }
    }

    #[test]
    fn softsign_grad_in_place_and_rejects_integers() {
        let g = [1.0f32, 2.0, -1.0];
        let mut x = [0.0f32, 1.0, -3.0];
        let mut out = [0f32; 3];
        map2::<SoftsignGrad>(
            &TensorView::from_slice(vec![3], &g),
            &TensorView::from_slice(vec![3], &x),
            0.0,
            &mut TensorMut::from_slice(vec![3], &mut out),
            None,
        )
        .unwrap();
        assert_eq!(out, [1.0, 0.5, -1.0 / 16.0]);
        // In place over x: the operand is read from the output buffer.
        let xv = TensorView::from_slice(vec![3], &[0.0f32; 3]);
        map2::<SoftsignGrad>(
            &TensorView::from_slice(vec![3], &g),
            &xv,
            0.0,
            &mut TensorMut::from_slice(vec![3], &mut x),
            Some(1),
        )
        .unwrap();
        assert_eq!(x, [1.0, 0.5, -1.0 / 16.0]);
        let i = [0i64; 3];
        let mut o = [0i64; 3];
        let e = map1::<Sin>(
            &TensorView::from_slice(vec![3], &i),
            0.0,
            &mut TensorMut::from_slice(vec![3], &mut o),
            false,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("Sin is not defined for int64"),
            "{e}"
        );
    }
}
