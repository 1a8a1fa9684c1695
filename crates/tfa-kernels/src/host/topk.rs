//! TopKV2 (`tf.math.top_k`, `tf.sort`/`tf.argsort`, Keras `ops.top_k`/`sort`
//! and the `sparsemax` activation): the `k` largest entries of every row of
//! the last dimension, largest first, and their indices.
//!
//! Ties go to the lower index first, as TensorFlow's CPU kernel orders them
//! (it ranks `(value, -index)` pairs). NaN has no place in TensorFlow's
//! ordering (its result depends on the sort it takes); here NaN ranks above
//! every number, so the order is a total one and the same on every run.
//! With `sorted=False` TensorFlow leaves the order unspecified; the NPU
//! returns the sorted order then too.

use rayon::prelude::*;
use std::cmp::Ordering;
use tfa_core::{dispatch, DType, Error, Result, TensorMut, TensorView};

/// Descending order with NaN first; equal values keep index order (the
/// caller breaks ties by index).
fn descending<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    #[allow(clippy::eq_op)] // x != x: NaN
    let (a_nan, b_nan) = (a != a, b != b);
    match (a_nan, b_nan) {
        (false, false) => b.partial_cmp(a).unwrap_or(Ordering::Equal),
        _ => b_nan.cmp(&a_nan),
    }
}

/// `values`/`indices` (`[rows, k]`, indices of any int type) from `x`
/// (`[rows, cols]` viewed flat).
pub fn topk(
    x: &TensorView,
    k: usize,
    values: &mut TensorMut,
    indices: &mut TensorMut,
) -> Result<()> {
    let cols = *x
        .shape
        .last()
        .ok_or_else(|| Error::Internal("top_k of a scalar".into()))?;
    if k == 0 || values.num_elements() == 0 {
        return Ok(());
    }
    let mut order = vec![0usize; values.num_elements()];
    dispatch!(x.dtype, T => {
        let (src, dst) = (x.data::<T>()?, values.data_mut::<T>()?);
        dst.par_chunks_mut(k)
            .zip(order.par_chunks_mut(k))
            .enumerate()
            .for_each(|(r, (vals, idx))| {
                let row = &src[r * cols..][..cols];
                top_of_row(row, vals, idx);
            });
        Ok::<(), Error>(())
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])?;
    match indices.dtype {
        DType::I32 => write_indices::<i32>(&order, indices.data_mut()?),
        DType::I64 => write_indices::<i64>(&order, indices.data_mut()?),
        DType::I16 => write_indices::<i16>(&order, indices.data_mut()?),
        d => Err(Error::Unimplemented(format!("TopKV2 index_type {d}"))),
    }
}

fn top_of_row<T: Copy + PartialOrd>(row: &[T], vals: &mut [T], idx: &mut [usize]) {
    let k = vals.len();
    let by = |&a: &usize, &b: &usize| descending(&row[a], &row[b]).then(a.cmp(&b));
    let mut all: Vec<usize> = (0..row.len()).collect();
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, by);
        all.truncate(k);
    }
    all.sort_unstable_by(by);
    for ((v, i), &c) in vals.iter_mut().zip(idx.iter_mut()).zip(&all) {
        *v = row[c];
        *i = c;
    }
}

fn write_indices<I: TryFrom<usize>>(order: &[usize], out: &mut [I]) -> Result<()> {
    for (o, &c) in out.iter_mut().zip(order) {
        *o = I::try_from(c).map_err(|_| {
            Error::InvalidArgument(format!("TopKV2: index {c} does not fit index_type"))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::axes::*;

    fn run(x: &[f32], cols: usize, k: usize) -> (Vec<f32>, Vec<i32>) {
        let rows = x.len() / cols;
        let (mut v, mut i) = (vec![0f32; rows * k], vec![0i32; rows * k]);
        let xv = TensorView::from_slice(vec![rows, cols], x);
        topk(
            &xv,
            k,
            &mut TensorMut::from_slice(vec![rows, k], &mut v),
            &mut TensorMut::from_slice(vec![rows, k], &mut i),
        )
        .unwrap();
        (v, i)
    }

    #[test]
    fn ties_go_to_the_lower_index_and_nan_ranks_first() {
        let (v, i) = run(&[1.0, 3.0, 3.0, 2.0, 5.0, f32::NAN, 5.0, -1.0], 4, 3);
        assert_eq!(v[..3], [3.0, 3.0, 2.0]);
        assert_eq!(i, [1, 2, 3, 1, 0, 2]);
        assert!(v[3].is_nan() && v[4] == 5.0 && v[5] == 5.0);
        let (v, i) = run(&[0.5, -2.0, 7.0], 3, 3);
        assert_eq!((v, i), (vec![7.0, 0.5, -2.0], vec![2, 0, 1]));
    }

    #[test]
    fn checks() {
        assert_eq!(topk_shape(&[2, 5], 5).unwrap(), [2, 5]);
        assert!(topk_shape(&[2, 5], 6)
            .unwrap_err()
            .to_string()
            .contains("Had 5, needed 6"));
        assert!(topk_shape(&[], 0).is_err());
        assert!(topk_shape(&[3], -1).is_err());
    }
}
