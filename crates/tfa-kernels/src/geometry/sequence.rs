//! Range's length (`tf.range` of int64 and float types), with TensorFlow's
//! checks: `(|limit - start| + |delta| - 1) / |delta|` for integers (wrapping,
//! as the C++ does) or `ceil(|(limit - start) / delta|)` for floats, computed
//! in the element type as TensorFlow's CPU kernel does (the element types'
//! rounding comes from the numeric family; it is arithmetic, not a kernel).

use crate::host::numeric::{Accumulate, Numeric};
use std::cmp::Ordering;
use tfa_core::{bf16, f16, Error, Result};

/// What Range needs beyond the numeric family's arithmetic in the element
/// type (`Numeric::add_rounded`, `sub_rounded`).
trait RangeElement: Numeric + std::fmt::Display {
    /// The length: integers `(|d| + |delta| - 1) / |delta|` (wrapping, as
    /// the C++ does), floats `ceil(|d / delta|)`; None past int64.
    fn count(d: Self, delta: Self) -> Option<i64>;
}

impl RangeElement for i64 {
    fn count(d: Self, delta: Self) -> Option<i64> {
        let step = delta.wrapping_abs();
        Some(d.wrapping_abs().wrapping_add(step).wrapping_sub(1) / step)
    }
}

macro_rules! float_range {
    ($($t:ty),*) => {$(
        impl RangeElement for $t {
            fn count(d: Self, delta: Self) -> Option<i64> {
                // The quotient, abs and ceil each in the element type.
                let q = <$t>::narrow(d.widen() / delta.widen()).widen().abs();
                let n = <$t>::narrow(q.ceil()).widen() as f64;
                (n <= i64::MAX as f64).then_some(n as i64)
            }
        }
    )*};
}
float_range!(f32, f64, f16, bf16);

fn length<T: RangeElement>(start: T, limit: T, delta: T) -> Result<usize> {
    let inv = |m: String| Err(Error::InvalidArgument(m));
    let zero = T::narrow(T::W::ZERO);
    if delta == zero {
        return inv(format!("Requires delta != 0: {delta}"));
    }
    // NaN compares as neither: it fails the check, as in TensorFlow.
    let ordered = |a: T, b: T| matches!(a.partial_cmp(&b), Some(Ordering::Less | Ordering::Equal));
    if delta > zero {
        if !ordered(start, limit) {
            return inv(format!(
                "Requires start <= limit when delta > 0: {start}/{limit}"
            ));
        }
    } else if !ordered(limit, start) {
        return inv(format!(
            "Requires start >= limit when delta < 0: {start}/{limit}"
        ));
    }
    let Some(n) = T::count(T::sub_rounded(limit, start), delta) else {
        return inv(format!(
            "Requires ((limit - start) / delta) <= {}",
            i64::MAX
        ));
    };
    usize::try_from(n).or_else(|_| inv(format!("Expected a non-negative size, got {n}")))
}

/// The scalars of one Range call, in its type.
#[derive(Clone, Copy, Debug)]
pub enum RangeArgs {
    I64(i64, i64, i64),
    F32(f32, f32, f32),
    F64(f64, f64, f64),
    F16(f16, f16, f16),
    BF16(bf16, bf16, bf16),
}

/// The output length of `Range(args)`, with TensorFlow's checks.
pub fn range_len(args: &RangeArgs) -> Result<usize> {
    match *args {
        RangeArgs::I64(s, l, d) => length(s, l, d),
        RangeArgs::F32(s, l, d) => length(s, l, d),
        RangeArgs::F64(s, l, d) => length(s, l, d),
        RangeArgs::F16(s, l, d) => length(s, l, d),
        RangeArgs::BF16(s, l, d) => length(s, l, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_checks_follow_tensorflow() {
        assert_eq!(range_len(&RangeArgs::I64(0, 10, 3)).unwrap(), 4);
        assert_eq!(range_len(&RangeArgs::I64(10, 0, -3)).unwrap(), 4);
        assert_eq!(range_len(&RangeArgs::F32(0.0, 1.0, 0.3)).unwrap(), 4);
        assert_eq!(range_len(&RangeArgs::F32(1.0, 1.0, 0.3)).unwrap(), 0);
        let e = range_len(&RangeArgs::I64(5, 0, 1)).unwrap_err().to_string();
        assert_eq!(e, "Requires start <= limit when delta > 0: 5/0");
        assert!(range_len(&RangeArgs::F32(0.0, 1.0, 0.0)).is_err());
        assert!(range_len(&RangeArgs::F32(0.0, f32::INFINITY, 1.0)).is_err());
        assert!(range_len(&RangeArgs::F32(0.0, 1.0, f32::NAN)).is_err());
    }
}
