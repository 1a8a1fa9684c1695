//! MirrorPad (REFLECT / SYMMETRIC) and its gradient (their checks and
//! shapes in `geometry::mirror_pad`). The pad moves elements as bytes; the gradient
//! folds each padded dimension back onto the interior, one dimension at a
//! time as TensorFlow's functor does, adding in the element type (half
//! types rounding at every addition, as `Numeric::add_rounded` does).

use super::numeric::{Accumulate, Numeric};
use super::transpose::{by_width, words, words_mut};
use rayon::prelude::*;
use tfa_core::{dispatch, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::mirror_pad::MirrorMode;

/// The source index of padded position `o` of a dimension of `n` elements
/// with `before` leading pads.
fn mirror(o: usize, before: usize, n: usize, mode: MirrorMode) -> usize {
    let j = o as i64 - before as i64;
    let n = n as i64;
    let shift = i64::from(mode == MirrorMode::Reflect);
    (if j < 0 {
        -j - 1 + shift
    } else if j >= n {
        2 * n - 1 - j - shift
    } else {
        j
    }) as usize
}

/// MirrorPad of `x` into `out` (the shape `mirror_pad_shape` gave).
pub fn mirror_pad(
    x: &TensorView,
    before: &[usize],
    mode: MirrorMode,
    out: &mut TensorMut,
) -> Result<()> {
    if out.num_elements() == 0 {
        return Ok(());
    }
    let (shape, out_shape) = (x.shape.clone(), out.shape.clone());
    let size = x.dtype.size();
    let src = &x.bytes()[..x.num_elements() * size];
    let dst = &mut out.bytes_mut()[..out_shape.iter().product::<usize>() * size];
    by_width!(size, W => {
        pad_words::<W>(words(src)?, &shape, before, mode, &out_shape, words_mut(dst)?);
        Ok(())
    })
}

fn pad_words<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    before: &[usize],
    mode: MirrorMode,
    out_shape: &[usize],
    dst: &mut [T],
) {
    let r = shape.len();
    if r == 0 {
        dst[0] = src[0];
        return;
    }
    let maps: Vec<Vec<usize>> = (0..r)
        .map(|d| {
            (0..out_shape[d])
                .map(|o| mirror(o, before[d], shape[d], mode))
                .collect()
        })
        .collect();
    let row = out_shape[r - 1];
    let (inner, last) = (shape[r - 1], &maps[r - 1]);
    dst.par_chunks_mut(row).enumerate().for_each(|(k, d)| {
        // The input row this output row mirrors.
        let (mut idx, mut off, mut stride) = (k, 0usize, inner);
        for dim in (0..r - 1).rev() {
            off += maps[dim][idx % out_shape[dim]] * stride;
            idx /= out_shape[dim];
            stride *= shape[dim];
        }
        let s = &src[off..off + inner];
        for (o, &i) in d.iter_mut().zip(last) {
            *o = s[i];
        }
    });
}

/// MirrorPadGrad: `dx` (the unpadded shape) sums the gradient `dy` of every
/// padded position onto the element it mirrors.
pub fn mirror_pad_grad(
    dy: &TensorView,
    before: &[usize],
    mode: MirrorMode,
    dx: &mut TensorMut,
) -> Result<()> {
    let (padded, shape) = (dy.shape.clone(), dx.shape.clone());
    dispatch!(dy.dtype, T => {
        let mut cur: Vec<T> = dy.data::<T>()?.to_vec();
        let mut cur_shape = padded.clone();
        for d in 0..shape.len() {
            if cur_shape[d] == shape[d] {
                continue;
            }
            cur = fold(&cur, &cur_shape, d, before[d], shape[d], mode);
            cur_shape[d] = shape[d];
        }
        dx.data_mut::<T>()?.copy_from_slice(&cur);
        Ok(())
    }; [F32, F64, F16, BF16, I64])
}

/// Folds dimension `d` of `t` (shape `shape`) from its padded size onto `n`
/// elements: the interior first, then every padded position in order.
fn fold<T: Numeric>(
    t: &[T],
    shape: &[usize],
    d: usize,
    before: usize,
    n: usize,
    mode: MirrorMode,
) -> Vec<T> {
    let inner: usize = shape[d + 1..].iter().product();
    let padded = shape[d];
    let outer: usize = shape[..d].iter().product();
    let mut out = vec![T::narrow(T::W::ZERO); outer * n * inner];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(n * inner)
        .enumerate()
        .for_each(|(b, o)| {
            let src = &t[b * padded * inner..(b + 1) * padded * inner];
            o.copy_from_slice(&src[before * inner..(before + n) * inner]);
            for p in (0..padded).filter(|&p| p < before || p >= before + n) {
                let i = mirror(p, before, n, mode);
                for (x, &v) in o[i * inner..(i + 1) * inner]
                    .iter_mut()
                    .zip(&src[p * inner..(p + 1) * inner])
                {
                    *x = T::add_rounded(*x, v);
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::mirror_pad::*;

    #[test]
    fn mirror_indices() {
        // [a b c] REFLECT by 2: c b | a b c | b a ; SYMMETRIC: b a | a b c | c b
        let reflect: Vec<usize> = (0..7)
            .map(|o| mirror(o, 2, 3, MirrorMode::Reflect))
            .collect();
        assert_eq!(reflect, [2, 1, 0, 1, 2, 1, 0]);
        let symmetric: Vec<usize> = (0..7)
            .map(|o| mirror(o, 2, 3, MirrorMode::Symmetric))
            .collect();
        assert_eq!(symmetric, [1, 0, 0, 1, 2, 2, 1]);
    }

    /// The gradient is the adjoint of the pad: <dy, pad(x)> = <grad(dy), x>.
    #[test]
    fn grad_is_the_adjoint() {
        let (shape, before, after) = ([3usize, 4], [2usize, 1], [1usize, 3]);
        for mode in [MirrorMode::Reflect, MirrorMode::Symmetric] {
            let out_shape = [
                shape[0] + before[0] + after[0],
                shape[1] + before[1] + after[1],
            ];
            let x: Vec<f64> = (0..12).map(|i| (i * 7 % 5) as f64 - 1.5).collect();
            let mut y = vec![0.0; out_shape[0] * out_shape[1]];
            pad_words(&x, &shape, &before, mode, &out_shape, &mut y);
            let dy: Vec<f64> = (0..y.len()).map(|i| (i * 3 % 7) as f64 * 0.25).collect();
            let mut g = fold(&dy, &out_shape, 0, before[0], shape[0], mode);
            g = fold(&g, &[shape[0], out_shape[1]], 1, before[1], shape[1], mode);
            let a: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
            let b: f64 = g.iter().zip(&x).map(|(a, b)| a * b).sum();
            assert!((a - b).abs() < 1e-9, "{mode:?}: {a} vs {b}");
        }
    }
}
