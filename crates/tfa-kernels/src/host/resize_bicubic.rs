//! ResizeBicubic and its gradient, ResizeArea (NHWC), as TensorFlow's CPU
//! kernels compute them (resize_bicubic_op.cc, resize_area_op.cc): the same
//! float32 expressions, the cubic weights read from the same 1024-entry
//! table (so results agree to the last bits, not just to the formula), and
//! the gradient accumulated in the same order. Outputs are float32 (the
//! gradient: the original image's float32/float64).
//!
//! Bicubic with `half_pixel_centers` uses Keys' kernel (a = -0.5) with the
//! taps outside the image dropped and the weights renormalised; without it,
//! a = -0.75 and the taps are clamped to the edge (the legacy behaviour).

use super::resize::{as_f32, ResizeAttrs};
use rayon::prelude::*;
use std::sync::OnceLock;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

const TABLE: usize = 1 << 10;

/// `InitCoeffsTable(a)`: pairs (w(x), w(x + 1)) for x = i / 1024.
fn table(a: f64) -> Vec<f32> {
    let mut t = vec![0f32; (TABLE + 1) * 2];
    for i in 0..=TABLE {
        // As TensorFlow: x is a float, the polynomial evaluated in double.
        let x = (i as f64 / TABLE as f64) as f32;
        let xd = x as f64;
        t[i * 2] = (((a + 2.0) * xd - (a + 3.0)) * xd * xd + 1.0) as f32;
        let x1 = (x + 1.0) as f64;
        t[i * 2 + 1] = (((a * x1 - 5.0 * a) * x1 + 8.0 * a) * x1 - 4.0 * a) as f32;
    }
    t
}

fn coeffs(keys: bool) -> &'static [f32] {
    static KEYS: OnceLock<Vec<f32>> = OnceLock::new();
    static LEGACY: OnceLock<Vec<f32>> = OnceLock::new();
    if keys {
        KEYS.get_or_init(|| table(-0.5))
    } else {
        LEGACY.get_or_init(|| table(-0.75))
    }
}

/// The four taps of one output position: input indices and weights.
#[derive(Copy, Clone, Debug, Default)]
struct Taps {
    index: [usize; 4],
    weight: [f32; 4],
}

fn bound(v: i64, limit: usize) -> usize {
    v.clamp(0, limit as i64 - 1) as usize
}

/// `GetWeightsAndIndices` for output position `out` over `limit` inputs.
fn taps(scale: f32, out: usize, limit: usize, half_pixel: bool) -> Taps {
    let at = if half_pixel {
        (out as f32 + 0.5) * scale - 0.5
    } else {
        out as f32 * scale
    };
    let floor = at.floor();
    let (base, delta) = (floor as i64, at - floor);
    // lrintf: round half to even.
    let offset = (delta * TABLE as f32).round_ties_even() as usize;
    let t = coeffs(half_pixel);
    let w = [
        t[offset * 2 + 1],
        t[offset * 2],
        t[(TABLE - offset) * 2],
        t[(TABLE - offset) * 2 + 1],
    ];
    let mut taps = Taps::default();
    for (k, &wk) in w.iter().enumerate() {
        let want = base - 1 + k as i64;
        taps.index[k] = bound(want, limit);
        // Keys: taps outside the image weigh nothing (legacy: clamped).
        taps.weight[k] = if !half_pixel || taps.index[k] as i64 == want {
            wk
        } else {
            0.0
        };
    }
    if half_pixel {
        let [a, b, c, d] = taps.weight;
        let sum = a + b + c + d;
        if sum.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv = 1.0 / sum;
            taps.weight.iter_mut().for_each(|w| *w *= inv);
        }
    }
    taps
}

fn axis(out: usize, input: usize, a: ResizeAttrs) -> Vec<Taps> {
    let s = super::resize::scale(input, out, a.align_corners);
    (0..out)
        .map(|i| taps(s, i, input, a.half_pixel_centers))
        .collect()
}

#[inline]
fn dot4(w: [f32; 4], v: [f32; 4]) -> f32 {
    v[0] * w[0] + v[1] * w[1] + v[2] * w[2] + v[3] * w[3]
}

fn dims(shape: &[usize], what: &str) -> Result<[usize; 4]> {
    shape
        .try_into()
        .map_err(|_| Error::Internal(format!("{what} is not 4-D")))
}

/// ResizeBicubic: `out` (float32, `[b, oh, ow, c]`) from `x` (`[b, ih, iw,
/// c]`): each column tap interpolated down the rows first, then across.
pub fn resize_bicubic(x: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()> {
    let [_, ih, iw, c] = dims(&x.shape, "resize input")?;
    let [_, oh, ow, _] = dims(&out.shape, "resize output")?;
    let src = as_f32(x)?;
    let (ys, xs) = (axis(oh, ih, a), axis(ow, iw, a));
    let dst = out.data_mut::<f32>()?;
    if dst.is_empty() {
        return Ok(());
    }
    dst.par_chunks_mut(ow * c)
        .enumerate()
        .for_each(|(row, out_row)| {
            let (n, y) = (row / oh, row % oh);
            let img = &src[n * ih * iw * c..][..ih * iw * c];
            let yt = ys[y];
            let rows = yt.index.map(|r| &img[r * iw * c..][..iw * c]);
            for (px, xt) in out_row.chunks_mut(c).zip(&xs) {
                for (ch, o) in px.iter_mut().enumerate() {
                    let col = |k: usize| {
                        let i = xt.index[k] * c + ch;
                        dot4(yt.weight, rows.map(|r| r[i]))
                    };
                    *o = dot4(xt.weight, [col(0), col(1), col(2), col(3)]);
                }
            }
        });
    Ok(())
}

/// ResizeBicubicGrad: `out` (`[b, ih, iw, c]`, float32 or float64) from the
/// float32 gradient `grads` (`[b, oh, ow, c]`): each gradient's sixteen
/// shares added in TensorFlow's order, in the output type.
pub fn resize_bicubic_grad(grads: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()> {
    let [_, oh, ow, c] = dims(&grads.shape, "resize gradient")?;
    let [_, ih, iw, _] = dims(&out.shape, "resize output")?;
    let g = grads.data::<f32>()?;
    let (ys, xs) = (axis(oh, ih, a), axis(ow, iw, a));
    fn run<T>(
        g: &[f32],
        out: &mut [T],
        ys: &[Taps],
        xs: &[Taps],
        sizes: [usize; 5],
        widen: fn(f32) -> T,
    ) where
        T: Copy + Default + Send + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
    {
        let [ih, iw, oh, ow, c] = sizes;
        out.fill(T::default());
        if out.is_empty() {
            return;
        }
        out.par_chunks_mut(ih * iw * c)
            .enumerate()
            .for_each(|(n, img)| {
                let gi = &g[n * oh * ow * c..][..oh * ow * c];
                for (y, yt) in ys.iter().enumerate() {
                    for (x, xt) in xs.iter().enumerate() {
                        for ch in 0..c {
                            let v = widen(gi[(y * ow + x) * c + ch]);
                            for (&r, &wy) in yt.index.iter().zip(&yt.weight) {
                                for (&q, &wx) in xt.index.iter().zip(&xt.weight) {
                                    let o = &mut img[(r * iw + q) * c + ch];
                                    *o = *o + v * widen(wy) * widen(wx);
                                }
                            }
                        }
                    }
                }
            });
    }
    let sizes = [ih, iw, oh, ow, c];
    match out.dtype {
        DType::F32 => run(g, out.data_mut::<f32>()?, &ys, &xs, sizes, |v| v),
        DType::F64 => run(g, out.data_mut::<f64>()?, &ys, &xs, sizes, f64::from),
        d => {
            return Err(Error::Unimplemented(format!(
                "ResizeBicubicGrad is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// One output cell of an area resize along one axis: the input cells it
/// covers and the covered fraction of the first and the last.
#[derive(Copy, Clone, Debug)]
struct Span {
    start: i64,
    end: i64,
    start_scale: f32,
    end_scale: f32,
}

/// The fraction of input cell `v` covered by `[lo, hi)` (TensorFlow's
/// expression, including its `scale` for a cell covering the whole span).
fn covered(v: i64, lo: f32, hi: f32, scale: f32) -> f32 {
    let vf = v as f32;
    if vf < lo {
        if vf + 1.0 > hi {
            scale
        } else {
            vf + 1.0 - lo
        }
    } else if vf + 1.0 > hi {
        hi - vf
    } else {
        1.0
    }
}

fn area_axis(out: usize, input: usize, align_corners: bool) -> Vec<Span> {
    let s = super::resize::scale(input, out, align_corners);
    (0..out)
        .map(|x| {
            let (lo, hi) = (x as f32 * s, (x + 1) as f32 * s);
            let (start, end) = (lo.floor() as i64, hi.ceil() as i64);
            Span {
                start,
                end,
                start_scale: covered(start, lo, hi, s),
                end_scale: covered(end - 1, lo, hi, s),
            }
        })
        .collect()
}

/// ResizeArea: `out` (float32) is the coverage-weighted mean of the input
/// cells under each output cell (indices past the edge clamped).
pub fn resize_area(x: &TensorView, align_corners: bool, out: &mut TensorMut) -> Result<()> {
    let [_, ih, iw, c] = dims(&x.shape, "resize input")?;
    let [_, oh, ow, _] = dims(&out.shape, "resize output")?;
    let src = as_f32(x)?;
    let (hs, ws) = (
        super::resize::scale(ih, oh, align_corners),
        super::resize::scale(iw, ow, align_corners),
    );
    // As TensorFlow: 1.0 / (float * float) in double, then rounded.
    let norm = (1.0 / f64::from(hs * ws)) as f32;
    let (ys, xs) = (
        area_axis(oh, ih, align_corners),
        area_axis(ow, iw, align_corners),
    );
    let dst = out.data_mut::<f32>()?;
    if dst.is_empty() {
        return Ok(());
    }
    dst.par_chunks_mut(ow * c)
        .enumerate()
        .for_each(|(row, out_row)| {
            let (n, y) = (row / oh, row % oh);
            let img = &src[n * ih * iw * c..][..ih * iw * c];
            let ysp = ys[y];
            let (lo, hi) = (y as f32 * hs, (y + 1) as f32 * hs);
            for (px, xsp) in out_row.chunks_mut(c).zip(&xs) {
                for (ch, o) in px.iter_mut().enumerate() {
                    let at = |r: usize, x: i64| img[(r * iw + bound(x, iw)) * c + ch];
                    let mut sum = 0f32;
                    for i in ysp.start..ysp.end {
                        let r = bound(i, ih);
                        let mut sum_y = at(r, xsp.start) * xsp.start_scale;
                        if xsp.start + 1 != xsp.end {
                            for x in xsp.start + 1..xsp.end - 1 {
                                sum_y += at(r, x);
                            }
                            sum_y += at(r, xsp.end - 1) * xsp.end_scale;
                        }
                        sum += sum_y * covered(i, lo, hi, hs);
                    }
                    *o = sum * norm;
                }
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weights of every tap set sum to one (Keys renormalises; the
    /// legacy kernel's table rows sum to one by construction).
    #[test]
    fn weights_sum_to_one() {
        for half_pixel in [false, true] {
            for out in 0..9 {
                let t = taps(5.0 / 9.0, out, 5, half_pixel);
                let sum: f32 = t.weight.iter().sum();
                assert!((sum - 1.0).abs() < 1e-3, "{half_pixel} {out}: {t:?}");
            }
        }
    }

    /// Resizing to the same size samples each pixel exactly.
    #[test]
    fn same_size_is_the_identity_tap() {
        for half_pixel in [false, true] {
            let t = taps(1.0, 3, 7, half_pixel);
            assert_eq!(t.index[1], 3);
            assert_eq!(t.weight, [0.0, 1.0, 0.0, 0.0]);
        }
    }

    /// Area spans cover each output cell's share of the input: the scales
    /// of a cell sum to the scale (in / out).
    #[test]
    fn area_spans_cover_the_scale() {
        let s = 7.0 / 3.0;
        for sp in area_axis(3, 7, false) {
            let middle = (sp.end - sp.start - 2).max(0) as f32;
            let total = if sp.start + 1 == sp.end {
                sp.start_scale
            } else {
                sp.start_scale + middle + sp.end_scale
            };
            assert!((total - s).abs() < 1e-5, "{sp:?}");
        }
    }
}
