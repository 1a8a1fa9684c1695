//! ClipByValue: `max(min(t, hi), lo)` with TensorFlow CPU's operand order
//! (Eigen's `t.cwiseMin(hi).cwiseMax(lo)`, std::min/std::max semantics: a
//! NaN `t` stays NaN, a NaN bound leaves `t` alone, `lo > hi` gives `lo`).
//! The bounds are scalars or have `t`'s shape.

use super::PAR_MIN_ELEMENTS;
use rayon::prelude::*;
use tfa_core::{dispatch, Error, Result, TensorMut, TensorView};

/// `out = clip(t, lo, hi)`; `lo`/`hi` have one element or `t`'s.
pub fn clip_by_value(
    t: &TensorView,
    lo: &TensorView,
    hi: &TensorView,
    out: &mut TensorMut,
) -> Result<()> {
    let n = t.num_elements();
    if [lo, hi]
        .iter()
        .any(|b| b.num_elements() != 1 && b.num_elements() != n)
    {
        return Err(Error::Internal("ClipByValue bounds do not match".into()));
    }
    dispatch!(t.dtype, T => {
        let (x, l, h) = (t.data::<T>()?, lo.data::<T>()?, hi.data::<T>()?);
        let at = |b: &[T], i: usize| if b.len() == 1 { b[0] } else { b[i] };
        let one = |(i, o): (usize, &mut T)| {
            let v = if at(h, i) < x[i] { at(h, i) } else { x[i] };
            *o = if v < at(l, i) { at(l, i) } else { v };
        };
        let dst = out.data_mut::<T>()?;
        if n < PAR_MIN_ELEMENTS {
            dst.iter_mut().enumerate().for_each(one);
        } else {
            dst.par_iter_mut().enumerate().for_each(one);
        }
        Ok(())
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])
}
