//! ArgMax / ArgMin along one axis, as TensorFlow CPU computes them: the first
//! index of the extreme value, NaN ignored (an all-NaN run gives 0).

use super::PAR_MIN_ELEMENTS;
use rayon::prelude::*;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

/// `outer × n × inner` view of a tensor reduced along `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// `out[o, i] = argmax/argmin_k x[o, k, i]`; `out` is int32 or int64.
pub fn arg_reduce(x: &TensorView, axis: usize, max: bool, out: &mut TensorMut) -> Result<()> {
    let (outer, n, inner) = split(&x.shape, axis);
    let mut idx = vec![0i64; outer * inner];
    tfa_core::dispatch!(x.dtype, T => {
        run::<T>(x.data::<T>()?, outer, n, inner, max, &mut idx);
        Ok(())
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])?;
    match out.dtype {
        DType::I64 => out.data_mut::<i64>()?.copy_from_slice(&idx),
        DType::I32 => {
            for (o, &i) in out.data_mut::<i32>()?.iter_mut().zip(&idx) {
                *o = i32::try_from(i).map_err(|_| {
                    Error::InvalidArgument(format!("index {i} does not fit output_type int32"))
                })?;
            }
        }
        other => return Err(Error::InvalidArgument(format!("output_type {other}"))),
    }
    Ok(())
}

fn run<T: Element + PartialOrd>(
    x: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    max: bool,
    idx: &mut [i64],
) {
    // `best != best` holds only for NaN: any number replaces a NaN best.
    #[allow(clippy::eq_op)]
    let better =
        |v: T, best: T| (if max { v > best } else { v < best }) || (best != best && v == v);
    let row = |o: usize, out: &mut [i64]| {
        let base = &x[o * n * inner..(o + 1) * n * inner];
        let mut best: Vec<T> = base[..inner].to_vec();
        out.fill(0);
        for k in 1..n {
            let vals = &base[k * inner..(k + 1) * inner];
            for ((b, o), &v) in best.iter_mut().zip(out.iter_mut()).zip(vals) {
                if better(v, *b) {
                    *b = v;
                    *o = k as i64;
                }
            }
        }
    };
    if outer * n * inner < PAR_MIN_ELEMENTS || outer == 1 {
        for (o, chunk) in idx.chunks_mut(inner.max(1)).enumerate() {
            row(o, chunk);
        }
    } else {
        idx.par_chunks_mut(inner.max(1))
            .enumerate()
            .for_each(|(o, chunk)| row(o, chunk));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::axes::*;
    use tfa_core::{TensorMut, TensorView};

    fn argmax(data: &[f32], shape: &[usize], axis: usize) -> Vec<i64> {
        let x = TensorView::from_slice(shape.to_vec(), data);
        let (_, out_shape) = arg_reduce_shape(shape, axis as i64).unwrap();
        let mut buf = vec![0i64; out_shape.iter().product::<usize>()];
        arg_reduce(
            &x,
            axis,
            true,
            &mut TensorMut::from_slice(out_shape, &mut buf),
        )
        .unwrap();
        buf
    }

    #[test]
    fn first_extreme_nan_ignored() {
        let n = f32::NAN;
        assert_eq!(argmax(&[1.0, n, 3.0], &[3], 0), vec![2]);
        assert_eq!(argmax(&[n, 1.0, 2.0], &[3], 0), vec![2]);
        assert_eq!(argmax(&[n, n], &[2], 0), vec![0]);
        assert_eq!(argmax(&[2.0, 2.0, 1.0], &[3], 0), vec![0]);
        // axis 0 of a 2x3: per column
        assert_eq!(
            argmax(&[1.0, 5.0, 0.0, 4.0, 2.0, 0.0], &[2, 3], 0),
            vec![1, 0, 0]
        );
        assert_eq!(
            argmax(&[1.0, 5.0, 0.0, 4.0, 2.0, 9.0], &[2, 3], 1),
            vec![1, 2]
        );
    }
}
