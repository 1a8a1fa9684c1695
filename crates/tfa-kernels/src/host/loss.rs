//! Softmax cross-entropy losses (TensorFlow's `xent_op` / `sparse_xent_op`):
//! per row, `loss = sum(labels * (log(sum(exp(l - max))) - (l - max)))` and
//! `backprop = exp(l - max) / sum(exp(l - max)) - labels`. float16 and
//! bfloat16 compute in float32.

use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{Element, Error, Result};

/// Accumulator arithmetic (float32 or float64).
pub trait AccFloat:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INF: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
}

macro_rules! acc_float {
    ($t:ty) => {
        impl AccFloat for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INF: Self = <$t>::NEG_INFINITY;
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
        }
    };
}
acc_float!(f32);
acc_float!(f64);

/// An element type the losses take, with its accumulator.
pub trait XentElem: Element + Copy + Send + Sync {
    type A: AccFloat;
    fn load(self) -> Self::A;
    fn store(a: Self::A) -> Self;
}

impl XentElem for f32 {
    type A = f32;
    fn load(self) -> f32 {
        self
    }
    fn store(a: f32) -> f32 {
        a
    }
}
impl XentElem for f64 {
    type A = f64;
    fn load(self) -> f64 {
        self
    }
    fn store(a: f64) -> f64 {
        a
    }
}
impl XentElem for f16 {
    type A = f32;
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(a: f32) -> f16 {
        f16::from_f32(a)
    }
}
impl XentElem for bf16 {
    type A = f32;
    fn load(self) -> f32 {
        self.to_f32()
    }
    fn store(a: f32) -> bf16 {
        bf16::from_f32(a)
    }
}

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

fn max_shift<A: AccFloat>(row: impl Iterator<Item = A> + Clone) -> (A, A) {
    let max = row
        .clone()
        .fold(A::NEG_INF, |m, x| if x > m { x } else { m });
    let sum = row.fold(A::ZERO, |s, x| s + (x - max).exp());
    (max, sum)
}

/// Dense labels: `loss[rows]`, `backprop[rows, cols]`.
pub fn softmax_xent<T: XentElem>(
    logits: Strided2<T>,
    labels: Strided2<T>,
    cols: usize,
    loss: &mut [T],
    backprop: &mut [T],
) {
    if cols == 0 {
        loss.iter_mut().for_each(|l| *l = T::store(T::A::ZERO));
        return;
    }
    let row = |r: usize, loss: &mut T, back: &mut [T]| {
        let xs = (0..cols).map(|c| logits.at(r, c).load());
        let (max, sum) = max_shift(xs.clone());
        let lse = sum.ln();
        let mut acc = T::A::ZERO;
        for (c, (x, b)) in xs.zip(back.iter_mut()).enumerate() {
            let y = labels.at(r, c).load();
            let shifted = x - max;
            acc = acc + y * (lse - shifted);
            *b = T::store(shifted.exp() / sum - y);
        }
        *loss = T::store(acc);
    };
    loss.par_iter_mut()
        .zip(backprop.par_chunks_mut(cols))
        .enumerate()
        .with_min_len((1 << 14) / cols + 1)
        .for_each(|(r, (l, b))| row(r, l, b));
}

/// Sparse labels (class indices, already checked to lie in `[0, cols)`).
pub fn sparse_softmax_xent<T: XentElem>(
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
            let xs = x.iter().map(|v| v.load());
            let (max, sum) = max_shift(xs.clone());
            let label = label as usize;
            *l = T::store(sum.ln() - (x[label].load() - max));
            for (c, (v, o)) in xs.zip(b.iter_mut()).enumerate() {
                let hot = if c == label { T::A::ONE } else { T::A::ZERO };
                *o = T::store((v - max).exp() / sum - hot);
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
