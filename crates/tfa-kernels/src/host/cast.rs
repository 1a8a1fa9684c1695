//! Cast between element types with TensorFlow CPU's (x86) conversion rules:
//! float -> int truncates toward zero and gives the minimum int on overflow or
//! NaN (`cvttss2si`), narrower ints wrap through int32, bool is `x != 0`, and
//! float -> float16/bfloat16 rounds to nearest even (or truncates bfloat16
//! when `truncate` is set, as the `Truncate` attribute asks).

use super::PAR_MIN_ELEMENTS;
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{c64, dispatch, DType, Element, Error, Result, TensorMut, TensorView};

/// A value on its way between two element types.
trait Convert: Element {
    fn to_f64(self) -> f64;
    fn to_i64(self) -> i64;
    /// Exact for every source type except u64 above i64::MAX, which keeps its bits.
    fn from_f64(v: f64) -> Self;
    fn from_i64(v: i64) -> Self;
    const IS_FLOAT: bool;
}

/// 2^63 as f64.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

/// x86 `cvttsd2si` (64-bit): truncation, i64::MIN when out of range or NaN.
fn cvtt64(v: f64) -> i64 {
    if (-TWO_63..TWO_63).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// x86 `cvttsd2si` (32-bit).
fn cvtt32(v: f64) -> i32 {
    if (-2147483648.0..2147483648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

macro_rules! convert_float {
    ($t:ty, $to:expr, $from:expr) => {
        impl Convert for $t {
            fn to_f64(self) -> f64 {
                ($to)(self)
            }
            fn to_i64(self) -> i64 {
                cvtt64(($to)(self))
            }
            fn from_f64(v: f64) -> Self {
                ($from)(v)
            }
            fn from_i64(v: i64) -> Self {
                ($from)(v as f64)
            }
            const IS_FLOAT: bool = true;
        }
    };
}
convert_float!(f32, |v: f32| v as f64, |v: f64| v as f32);
convert_float!(f64, |v: f64| v, |v: f64| v);
convert_float!(f16, |v: f16| v.to_f64(), f16::from_f64);
convert_float!(bf16, |v: bf16| v.to_f64(), bf16::from_f64);

macro_rules! convert_int {
    ($t:ty, $from_float:expr) => {
        impl Convert for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_f64(v: f64) -> Self {
                ($from_float)(v)
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            const IS_FLOAT: bool = false;
        }
    };
}
// Narrow ints: the compiler converts through a 32-bit int, then wraps.
convert_int!(i8, |v: f64| cvtt32(v) as i8);
convert_int!(i16, |v: f64| cvtt32(v) as i16);
convert_int!(i32, cvtt32);
convert_int!(u8, |v: f64| cvtt32(v) as u8);
convert_int!(u16, |v: f64| cvtt32(v) as u16);
// 32-bit unsigned goes through a 64-bit conversion.
convert_int!(u32, |v: f64| cvtt64(v) as u32);
convert_int!(i64, cvtt64);
convert_int!(u64, |v: f64| if v >= TWO_63 {
    (cvtt64(v - TWO_63) as u64) ^ (1u64 << 63)
} else {
    cvtt64(v) as u64
});

impl Convert for bool {
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    const IS_FLOAT: bool = false;
}

#[inline(always)]
fn convert<S: Convert, D: Convert>(v: S) -> D {
    if S::IS_FLOAT {
        // A float32 -> float16/bfloat16 cast must round once from the float32 value,
        // which going through f64 preserves (f64 holds every f32 exactly).
        D::from_f64(v.to_f64())
    } else if D::IS_FLOAT {
        // int -> float: u64 above i64::MAX must not go negative.
        if S::DTYPE == DType::U64 {
            D::from_f64(v.to_f64())
        } else {
            D::from_i64(v.to_i64())
        }
    } else {
        D::from_i64(v.to_i64())
    }
}

/// `out = cast(x)`; `out.dtype` is the destination type.
pub fn cast(x: &TensorView, out: &mut TensorMut, truncate: bool) -> Result<()> {
    if x.dtype == out.dtype {
        out.bytes_mut()[..x.bytes().len()].copy_from_slice(x.bytes());
        return Ok(());
    }
    if truncate && x.dtype == DType::F32 && out.dtype == DType::BF16 {
        let src = x.data::<f32>()?;
        // Truncation keeps the top 16 bits (NaN stays NaN: its top bits are set).
        return map(src, out.data_mut::<bf16>()?, |v: f32| {
            bf16::from_bits((v.to_bits() >> 16) as u16)
        });
    }
    if x.dtype == DType::C64 || out.dtype == DType::C64 {
        return cast_complex(x, out);
    }
    if let Some(r) = cast_float_fast(x, out) {
        return r;
    }
    let dst = out.dtype;
    dispatch!(x.dtype, S => {
        let src = x.data::<S>()?;
        dispatch!(dst, D => map(src, out.data_mut::<D>()?, convert::<S, D>))
    })
}

/// Casts to and from complex64 (the other side real): a real value `v`
/// becomes `v + 0i` (through float32), a complex value gives its real part,
/// as TensorFlow's Cast does.
fn cast_complex(x: &TensorView, out: &mut TensorMut) -> Result<()> {
    let dst = out.dtype;
    if x.dtype == DType::C64 {
        let src = x.data::<c64>()?;
        return dispatch!(dst, D => map(src, out.data_mut::<D>()?, |v: c64| convert::<f32, D>(v.re)));
    }
    dispatch!(x.dtype, S => {
        let src = x.data::<S>()?;
        map(src, out.data_mut::<c64>()?, |v: S| c64::new(convert::<S, f32>(v), 0.0))
    })
}

/// float32 <-> bfloat16/float16, the casts mixed precision inserts around
/// every low-precision op: bit arithmetic and F16C slice conversion that
/// vectorise, instead of the generic per-element path through f64 (same
/// results: round to nearest even, NaN kept).
fn cast_float_fast(x: &TensorView, out: &mut TensorMut) -> Option<Result<()>> {
    fn chunks<S: Sync, D: Send>(src: &[S], dst: &mut [D], f: impl Fn(&[S], &mut [D]) + Sync) {
        if dst.len() < PAR_MIN_ELEMENTS {
            f(src, dst)
        } else {
            src.par_chunks(PAR_MIN_ELEMENTS)
                .zip(dst.par_chunks_mut(PAR_MIN_ELEMENTS))
                .for_each(|(s, d)| f(s, d))
        }
    }
    fn run<S: Element, D: Element>(
        x: &TensorView,
        out: &mut TensorMut,
        f: impl Fn(&[S], &mut [D]) + Sync,
    ) -> Result<()> {
        let (src, dst) = (x.data::<S>()?, out.data_mut::<D>()?);
        if src.len() != dst.len() {
            return Err(Error::Internal("cast: element counts differ".into()));
        }
        chunks(src, dst, f);
        Ok(())
    }
    use half::slice::HalfFloatSliceExt;
    Some(match (x.dtype, out.dtype) {
        (DType::F32, DType::BF16) => run(x, out, |s: &[f32], d: &mut [bf16]| {
            d.iter_mut()
                .zip(s)
                .for_each(|(d, &v)| *d = bf16::from_bits(super::lowp_gemm::bf16_bits(v)))
        }),
        (DType::BF16, DType::F32) => run(x, out, |s: &[bf16], d: &mut [f32]| {
            d.iter_mut()
                .zip(s)
                .for_each(|(d, v)| *d = f32::from_bits((v.to_bits() as u32) << 16))
        }),
        (DType::F32, DType::F16) => run(x, out, |s: &[f32], d: &mut [f16]| {
            d.convert_from_f32_slice(s)
        }),
        (DType::F16, DType::F32) => {
            run(x, out, |s: &[f16], d: &mut [f32]| s.convert_to_f32_slice(d))
        }
        _ => return None,
    })
}

/// Rounds float32 values in place to the nearest `lowp` (bfloat16 or
/// float16) value, ties to even: what a cast to `lowp` and back does.
pub fn round_f32_to(lowp: DType, data: &mut [f32]) -> Result<()> {
    fn each(data: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
        if data.len() < PAR_MIN_ELEMENTS {
            data.iter_mut().for_each(|v| *v = f(*v));
        } else {
            data.par_chunks_mut(PAR_MIN_ELEMENTS)
                .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
        }
    }
    match lowp {
        DType::BF16 => each(data, |v| bf16::from_f32(v).to_f32()),
        DType::F16 => each(data, |v| f16::from_f32(v).to_f32()),
        DType::F32 => {}
        d => {
            return Err(Error::Internal(format!(
                "cannot round float32 to {d}: not a low-precision float"
            )))
        }
    }
    Ok(())
}

fn map<S: Element, D: Element>(src: &[S], dst: &mut [D], f: impl Fn(S) -> D + Sync) -> Result<()> {
    if src.len() != dst.len() {
        return Err(Error::Internal("cast: element counts differ".into()));
    }
    if dst.len() < PAR_MIN_ELEMENTS {
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = f(s));
    } else {
        dst.par_iter_mut()
            .zip(src.par_iter())
            .for_each(|(d, &s)| *d = f(s));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast_vec<S: Element, D: Element>(src: &[S], truncate: bool) -> Vec<D> {
        let mut out = vec![D::default(); src.len()];
        cast(
            &TensorView::from_slice(vec![src.len()], src),
            &mut TensorMut::from_slice(vec![src.len()], &mut out),
            truncate,
        )
        .unwrap();
        out
    }

    #[test]
    fn float_to_int_follows_x86() {
        let v = [1e10f32, -1e10, f32::NAN, 2.7, -2.7];
        assert_eq!(
            cast_vec::<f32, i32>(&v, false),
            vec![i32::MIN, i32::MIN, i32::MIN, 2, -2]
        );
        assert_eq!(
            cast_vec::<f32, u8>(&[300.0, -3.0, 2.7], false),
            vec![44, 253, 2]
        );
    }

    #[test]
    fn bf16_rounds_or_truncates() {
        let x = 1.0 + 2f32.powi(-8) + 2f32.powi(-9);
        assert_eq!(cast_vec::<f32, bf16>(&[x], false)[0].to_f32(), 1.0078125);
        assert_eq!(cast_vec::<f32, bf16>(&[x], true)[0].to_f32(), 1.0);
    }

    #[test]
    fn bools_and_big_unsigned() {
        assert_eq!(
            cast_vec::<f32, bool>(&[0.0, -0.5, f32::NAN], false),
            vec![false, true, true]
        );
        assert_eq!(cast_vec::<bool, f32>(&[true, false], false), vec![1.0, 0.0]);
        assert_eq!(
            cast_vec::<u64, f64>(&[u64::MAX], false),
            vec![u64::MAX as f64]
        );
        assert_eq!(cast_vec::<i64, i8>(&[300], false), vec![44]);
    }
}
