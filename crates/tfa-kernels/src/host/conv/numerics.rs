//! NHWC/NCHW layout moves and the compute types window kernels widen to.

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

// ------------------------------------------------------------- numerics ----

/// Element types the window kernels take, with the type they compute in.
pub(crate) trait Widen: Element {
    type W: Compute;
    fn widen(self) -> Self::W;
    fn narrow(w: Self::W) -> Self;
}

/// The compute types (float32, float64).
pub(crate) trait Compute:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + 'static
{
    /// The convolution by Winograd's method, where the type has one and `g`
    /// suits it (float32: see `winograd`); `None` otherwise.
    fn winograd(
        _x: &[Self],
        _f: &[Self],
        _y: &mut [Self],
        _g: &ConvGeom,
        _epilogue: Option<&RowsEpilogue>,
    ) -> Option<Result<()>> {
        None
    }
    const ZERO: Self;
    const ONE: Self;
    const LOWEST: Self;
    fn from_usize(v: usize) -> Self;
    fn from_f64(v: f64) -> Self;
    /// `self * b + c`, fused (only call where the `fma` feature is enabled:
    /// elsewhere it is a slow library call).
    fn fused(self, b: Self, c: Self) -> Self;
}

impl Compute for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const LOWEST: f32 = f32::MIN;
    fn from_usize(v: usize) -> f32 {
        v as f32
    }
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn fused(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
    fn winograd(
        x: &[f32],
        f: &[f32],
        y: &mut [f32],
        g: &ConvGeom,
        epilogue: Option<&RowsEpilogue>,
    ) -> Option<Result<()>> {
        crate::host::winograd::eligible(g)
            .then(|| crate::host::winograd::conv2d(x, f, y, g, epilogue))
    }
}

impl Compute for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const LOWEST: f64 = f64::MIN;
    fn from_usize(v: usize) -> f64 {
        v as f64
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn fused(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
}

impl Widen for f32 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn narrow(w: f32) -> f32 {
        w
    }
}

impl Widen for f64 {
    type W = f64;
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
    #[inline(always)]
    fn narrow(w: f64) -> f64 {
        w
    }
}

impl Widen for f16 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(w: f32) -> f16 {
        f16::from_f32(w)
    }
}

impl Widen for bf16 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(w: f32) -> bf16 {
        bf16::from_f32(w)
    }
}

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
