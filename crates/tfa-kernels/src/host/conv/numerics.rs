//! NHWC/NCHW layout moves, widening to the compute type on the way.

use super::*;

// ---------------------------------------------------------------- layout ----

/// `[n, hw, c]` -> `[n, c, hw]` (NHWC to NCHW), parallel over images.
#[cfg(test)]
pub(crate) fn nhwc_to_nchw<T: Copy + Send + Sync>(
    src: &[T],
    dst: &mut [T],
    n: usize,
    c: usize,
    hw: usize,
) {
    transpose_images(src, dst, n, hw, c, |v| v);
}

/// Transposes each of `n` row-major `[rows, cols]` images, mapping elements
/// (widening or narrowing) on the way.
pub(crate) fn transpose_images<S: Copy + Send + Sync, D: Copy + Send>(
    src: &[S],
    dst: &mut [D],
    n: usize,
    rows: usize,
    cols: usize,
    map: impl Fn(S) -> D + Sync,
) {
    let img = rows * cols;
    if img == 0 || n == 0 {
        return;
    }
    dst[..n * img]
        .par_chunks_mut(img)
        .zip(src[..n * img].par_chunks(img))
        .for_each(|(d, s)| transpose_2d(s, d, rows, cols, &map));
}

/// Row-major `[rows, cols]` -> `[cols, rows]`, blocked for the cache.
fn transpose_2d<S: Copy, D: Copy>(
    src: &[S],
    dst: &mut [D],
    rows: usize,
    cols: usize,
    map: &impl Fn(S) -> D,
) {
    const B: usize = 32;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    dst[c * rows + r] = map(src[r * cols + c]);
                }
            }
        }
    }
}

// ------------------------------------------------------- widened windows ----

/// Input (NHWC or NCHW) widened to the compute type, in NHWC.
pub(crate) fn widened_nhwc<T: Widen>(x: &[T], g: &ConvGeom) -> Vec<T::W> {
    if g.format == DataFormat::Nchw {
        let mut t = vec![T::W::default(); x.len()];
        transpose_images(x, &mut t, g.n, g.cin, g.h * g.w, T::widen);
        t
    } else {
        x.par_iter().map(|&v| v.widen()).collect()
    }
}

/// Writes an NHWC compute-type result into `out` (in `g.format`), narrowing.
pub(crate) fn store_nhwc<T: Widen>(y: Vec<T::W>, out: &mut [T], g: &ConvGeom) {
    if g.format == DataFormat::Nchw {
        transpose_images(&y, out, g.n, g.oh * g.ow, g.cout, T::narrow);
    } else {
        out.par_iter_mut()
            .zip(y.par_iter())
            .for_each(|(o, &v)| *o = T::narrow(v));
    }
}
