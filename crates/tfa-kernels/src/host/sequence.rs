//! Range's values (`tf.range` of int64 and float types; int32 stays with
//! TensorFlow's device-agnostic host-memory kernel): `start, start + delta,
//! ...`, each value by adding `delta` to the previous one in the element type
//! (float16 and bfloat16 round at every step), as TensorFlow's CPU kernel
//! does, so results agree bit for bit. The length and its checks are the
//! shape rule (`geometry::sequence`).

use super::numeric::Numeric;
use crate::geometry::sequence::RangeArgs;
use tfa_core::{DType, Error, Result, TensorMut};

fn fill<T: Numeric>(start: T, delta: T, out: &mut [T]) {
    let mut v = start;
    for o in out {
        *o = v;
        v = T::add_rounded(v, delta);
    }
}

/// Writes the values of `Range(args)` into `out` (of `range_len` elements).
pub fn range(args: &RangeArgs, out: &mut TensorMut) -> Result<()> {
    match (*args, out.dtype) {
        (RangeArgs::I64(s, _, d), DType::I64) => fill(s, d, out.data_mut()?),
        (RangeArgs::F32(s, _, d), DType::F32) => fill(s, d, out.data_mut()?),
        (RangeArgs::F64(s, _, d), DType::F64) => fill(s, d, out.data_mut()?),
        (RangeArgs::F16(s, _, d), DType::F16) => fill(s, d, out.data_mut()?),
        (RangeArgs::BF16(s, _, d), DType::BF16) => fill(s, d, out.data_mut()?),
        _ => return Err(Error::Internal("Range output of another type".into())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_add_delta_in_the_element_type() {
        let mut v = [0f32; 4];
        range(
            &RangeArgs::F32(0.0, 1.0, 0.3),
            &mut TensorMut::from_slice(vec![4], &mut v),
        )
        .unwrap();
        assert_eq!(v, [0.0, 0.3, 0.6, 0.90000004]);
    }
}
