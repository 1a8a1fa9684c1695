//! Cumsum and Cumprod: running sums or products along one axis, optionally
//! exclusive (each element left out of its own result) and reversed (from
//! the end).
//!
//! The tensor is viewed as `[outer, len, inner]`; each step along the axis
//! combines a whole row of `inner` elements with the previous one, so the
//! inner loop is contiguous. Values accumulate in the element type, one step
//! after another, as TensorFlow's Eigen scan does (float16/bfloat16 round at
//! every step), so results agree with TensorFlow CPU bit for bit.

use super::arith::Arith;
use rayon::prelude::*;
use tfa_core::{dispatch, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ScanOp {
    Sum,
    Prod,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ScanParams {
    pub op: ScanOp,
    pub exclusive: bool,
    pub reverse: bool,
}

/// `out = scan(x)` along dim `axis` (validated, see [`scan_axis`]); `out` has
/// `x`'s dtype and shape.
pub fn scan(x: &TensorView, axis: usize, p: ScanParams, out: &mut TensorMut) -> Result<()> {
    if x.dtype != out.dtype || x.shape != out.shape || axis >= x.rank() {
        return Err(Error::Internal("scan output mismatch".into()));
    }
    let outer = x.shape[..axis].iter().product();
    let len = x.shape[axis];
    let inner = x.shape[axis + 1..].iter().product();
    dispatch!(x.dtype, T => {
        scan_typed::<T>(x.data()?, [outer, len, inner], p, out.data_mut()?);
        Ok(())
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])
}

fn scan_typed<T: Arith + Send + Sync>(
    src: &[T],
    [outer, len, inner]: [usize; 3],
    p: ScanParams,
    dst: &mut [T],
) {
    let block = len * inner;
    if block == 0 || outer == 0 {
        return;
    }
    let (combine, identity): (fn(T, T) -> T, T) = match p.op {
        ScanOp::Sum => (T::add, T::zero()),
        ScanOp::Prod => (T::mul, T::one()),
    };
    let one_block = |(src, dst): (&[T], &mut [T])| {
        let mut acc = vec![identity; inner];
        for step in 0..len {
            let k = if p.reverse { len - 1 - step } else { step };
            let (x, y) = (&src[k * inner..][..inner], &mut dst[k * inner..][..inner]);
            if p.exclusive {
                y.copy_from_slice(&acc);
                acc.iter_mut()
                    .zip(x)
                    .for_each(|(a, &v)| *a = combine(*a, v));
            } else {
                acc.iter_mut()
                    .zip(x)
                    .for_each(|(a, &v)| *a = combine(*a, v));
                y.copy_from_slice(&acc);
            }
        }
    };
    if outer > 1 && outer * block >= super::PAR_MIN_ELEMENTS {
        src.par_chunks(block)
            .zip(dst.par_chunks_mut(block))
            .for_each(one_block);
    } else {
        src.chunks(block)
            .zip(dst.chunks_mut(block))
            .for_each(one_block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::axes::*;

    #[test]
    fn exclusive_and_reverse_follow_tensorflow() {
        let x = [1i64, 2, 3, 4, 5, 6];
        let run = |axis, op, exclusive, reverse| {
            let mut y = [0i64; 6];
            let p = ScanParams {
                op,
                exclusive,
                reverse,
            };
            let v = TensorView::from_slice(vec![2, 3], &x);
            scan(&v, axis, p, &mut TensorMut::from_slice(vec![2, 3], &mut y)).unwrap();
            y
        };
        assert_eq!(run(1, ScanOp::Sum, false, false), [1, 3, 6, 4, 9, 15]);
        assert_eq!(run(1, ScanOp::Sum, true, false), [0, 1, 3, 0, 4, 9]);
        assert_eq!(run(1, ScanOp::Sum, false, true), [6, 5, 3, 15, 11, 6]);
        assert_eq!(run(1, ScanOp::Sum, true, true), [5, 3, 0, 11, 6, 0]);
        assert_eq!(run(0, ScanOp::Sum, false, false), [1, 2, 3, 5, 7, 9]);
        assert_eq!(run(0, ScanOp::Prod, true, false), [1, 1, 1, 1, 2, 3]);
        assert_eq!(run(1, ScanOp::Prod, false, true), [6, 6, 3, 120, 30, 6]);
    }

    #[test]
    fn axis_check_matches_tensorflow() {
        assert_eq!(scan_axis(3, -1).unwrap(), 2);
        let e = scan_axis(3, -5).unwrap_err().to_string();
        assert!(
            e.contains("ScanOp: Expected scan axis in the range [-3, 3), but got -2"),
            "{e}"
        );
        assert!(scan_axis(0, 0).is_err());
    }
}
