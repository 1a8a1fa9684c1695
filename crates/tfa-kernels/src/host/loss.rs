//! Softmax cross-entropy losses (TensorFlow's `xent_op` / `sparse_xent_op`):
//! per row, `loss = sum(labels * (log(sum(exp(l - max))) - (l - max)))` and
//! `backprop = exp(l - max) / sum(exp(l - max)) - labels`. float16 and
//! bfloat16 compute in float32.

use rayon::prelude::*;
use tfa_core::{Error, Result};

use super::numeric::{Accumulate, Compute, Widen};

/// A `[rows, cols]` operand seen through broadcasting strides (0 for a
/// broadcast dimension).
#[derive(Copy, Clone, Debug)]
pub struct Strided2<'a, T> {
    pub data: &'a [T],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<T: Copy> Strided2<'_, T> {
    #[inline(always)]
    fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.row_stride + c * self.col_stride]
    }
}

fn max_shift<A: Compute>(row: impl Iterator<Item = A> + Clone) -> (A, A) {
    let max = row
        .clone()
        .fold(A::MAX_IDENTITY, |m, x| if x > m { x } else { m });
    let sum = row.fold(A::ZERO, |s, x| s + (x - max).exp());
    (max, sum)
}

/// Dense labels: `loss[rows]`, `backprop[rows, cols]`.
pub fn softmax_xent<T: Widen>(
    logits: Strided2<T>,
    labels: Strided2<T>,
    cols: usize,
    loss: &mut [T],
    backprop: &mut [T],
) {
    if cols == 0 {
        loss.iter_mut().for_each(|l| *l = T::narrow(T::W::ZERO));
        return;
    }
    let row = |r: usize, loss: &mut T, back: &mut [T]| {
        let xs = (0..cols).map(|c| logits.at(r, c).widen());
        let (max, sum) = max_shift(xs.clone());
        let lse = sum.ln();
        let mut acc = T::W::ZERO;
        for (c, (x, b)) in xs.zip(back.iter_mut()).enumerate() {
            let y = labels.at(r, c).widen();
            let shifted = x - max;
            acc = acc + y * (lse - shifted);
            *b = T::narrow(shifted.exp() / sum - y);
        }
        *loss = T::narrow(acc);
    };
    loss.par_iter_mut()
        .zip(backprop.par_chunks_mut(cols))
        .enumerate()
        .with_min_len((1 << 14) / cols + 1)
        .for_each(|(r, (l, b))| row(r, l, b));
}

/// Sparse labels (class indices, already checked to lie in `[0, cols)`).
pub fn sparse_softmax_xent<T: Widen>(
    logits: &[T],
    labels: &[i64],
    cols: usize,
    loss: &mut [T],
    backprop: &mut [T],
) -> Result<()> {
    if cols == 0 {
        return Err(Error::Internal("no classes".into()));
    }
    loss.par_iter_mut()
        .zip(backprop.par_chunks_mut(cols))
        .zip(logits.par_chunks(cols))
        .zip(labels.par_iter())
        .with_min_len((1 << 14) / cols + 1)
        .for_each(|(((l, b), x), &label)| {
            let xs = x.iter().map(|v| v.widen());
            let (max, sum) = max_shift(xs.clone());
            let label = label as usize;
            *l = T::narrow(sum.ln() - (x[label].widen() - max));
            for (c, (v, o)) in xs.zip(b.iter_mut()).enumerate() {
                let hot = if c == label { T::W::ONE } else { T::W::ZERO };
                *o = T::narrow((v - max).exp() / sum - hot);
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_matches_reference() {
        let x = [1.0f64, 2.0, 3.0, -1.0, 0.0, 5.0];
        let y = [0.2f64, 0.3, 0.5, 1.0, 0.0, 0.0];
        let mut loss = [0.0; 2];
        let mut back = [0.0; 6];
        let s = |d| Strided2 {
            data: d,
            row_stride: 3,
            col_stride: 1,
        };
        softmax_xent(s(&x), s(&y), 3, &mut loss, &mut back);
        for r in 0..2 {
            let row = &x[r * 3..r * 3 + 3];
            let z: f64 = row.iter().map(|v| v.exp()).sum();
            let want: f64 = (0..3)
                .map(|c| -y[r * 3 + c] * (row[c].exp() / z).ln())
                .sum();
            assert!((loss[r] - want).abs() < 1e-12);
            for c in 0..3 {
                assert!((back[r * 3 + c] - (row[c].exp() / z - y[r * 3 + c])).abs() < 1e-12);
            }
        }
        let mut sl = [0.0; 2];
        let mut sb = [0.0; 6];
        sparse_softmax_xent(&x, &[2, 0], 3, &mut sl, &mut sb).unwrap();
        let mut dl = [0.0; 2];
        let mut db = [0.0; 6];
        let onehot = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        softmax_xent(s(&x), s(&onehot), 3, &mut dl, &mut db);
        for i in 0..2 {
            assert!((sl[i] - dl[i]).abs() < 1e-12);
        }
        for i in 0..6 {
            assert!((sb[i] - db[i]).abs() < 1e-12);
        }
    }
}
