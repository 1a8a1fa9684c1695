//! Pooling gradients (NHWC compute, NCHW transposed in and out; half types
//! in float32, rounded once), as TensorFlow's CPU kernels define them:
//!
//! * MaxPoolGrad routes each gradient to the maximum of its window, taken
//!   in row-major window order with TensorFlow's tie rule: the first valid
//!   element, replaced only by a strictly greater one (so the first of
//!   equal maxima wins, and a NaN wins only where it comes first). Padded
//!   positions never take part. The maxima are recomputed from
//!   `orig_input`, as TensorFlow's CPU kernel does.
//! * AvgPoolGrad spreads each gradient evenly over the non-padded elements
//!   of its window (the forward's divisor).
//!
//! Both scatter into bands of output rows whose input rows do not overlap
//! (see `conv_grad::scatter_bands`).

use super::conv_grad::{float_dispatch, load_nhwc, scatter_bands, with_out_nhwc};
use super::numeric::{Compute, Widen};
use crate::geometry::pool::PoolGeom;
use half::{bf16, f16};
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

fn check_shapes(g: &PoolGeom, dy: &TensorView, dx: &TensorMut, op: &str) -> Result<()> {
    let c = &g.conv;
    if g.depth_window != 1 {
        return Err(Error::Unimplemented(format!(
            "{op} is not yet supported on the depth dimension."
        )));
    }
    if dx.shape != c.format.shape(c.n, c.h, c.w, c.cin) || dy.dtype != dx.dtype {
        return Err(Error::Internal(format!(
            "{op} output {:?} does not match {g:?}",
            dx.shape
        )));
    }
    if dy.shape != g.output_shape() {
        return Err(Error::InvalidArgument(format!(
            "Expected grad shape to be {:?}, but got {:?}",
            g.output_shape(),
            dy.shape
        )));
    }
    Ok(())
}

/// MaxPoolGrad: `dx` (the input's shape) from `orig_input` and `grad`.
pub fn max_pool_grad(
    x: &TensorView,
    dy: &TensorView,
    dx: &mut TensorMut,
    g: &PoolGeom,
) -> Result<()> {
    check_shapes(g, dy, dx, "MaxPoolGrad")?;
    if x.shape != dx.shape || x.dtype != dx.dtype {
        return Err(Error::Internal("MaxPoolGrad input mismatch".into()));
    }
    fn typed<T: Widen>(
        x: &TensorView,
        dy: &TensorView,
        dx: &mut TensorMut,
        g: &PoolGeom,
    ) -> Result<()> {
        let c = &g.conv;
        let x = load_nhwc::<T>(x.data()?, c.n, c.h * c.w, c.cin, c.format);
        let dy = load_nhwc::<T>(dy.data()?, c.n, c.oh * c.ow, c.cout, c.format);
        with_out_nhwc::<T>(dx.data_mut()?, c.n, c.h * c.w, c.cin, c.format, |dx| {
            pool_grad_nhwc::<T::W, true>(&x, &dy, dx, g)
        });
        Ok(())
    }
    float_dispatch!(dx.dtype, "MaxPoolGrad", typed(x, dy, dx, g))
}

/// AvgPoolGrad: `dx` (shape `orig_input_shape`) from `grad`.
pub fn avg_pool_grad(dy: &TensorView, dx: &mut TensorMut, g: &PoolGeom) -> Result<()> {
    check_shapes(g, dy, dx, "AvgPoolGrad")?;
    fn typed<T: Widen>(dy: &TensorView, dx: &mut TensorMut, g: &PoolGeom) -> Result<()> {
        let c = &g.conv;
        let dy = load_nhwc::<T>(dy.data()?, c.n, c.oh * c.ow, c.cout, c.format);
        with_out_nhwc::<T>(dx.data_mut()?, c.n, c.h * c.w, c.cin, c.format, |dx| {
            pool_grad_nhwc::<T::W, false>(&[], &dy, dx, g)
        });
        Ok(())
    }
    float_dispatch!(dx.dtype, "AvgPoolGrad", typed(dy, dx, g))
}

fn pool_grad_nhwc<W: Compute, const MAX: bool>(x: &[W], dy: &[W], dx: &mut [W], g: &PoolGeom) {
    let c = &g.conv;
    let ch = c.cin;
    dx.iter_mut().for_each(|v| *v = W::ZERO);
    let row_len = c.w * ch;
    let work = c.n * c.oh * c.ow * ch * c.kh * c.kw;
    scatter_bands(
        dx,
        c.n,
        c.h,
        row_len,
        c.oh,
        c.sh,
        c.pad_top,
        c.kh - 1,
        work,
        |n, oys, row0, rows| {
            let img = if MAX {
                &x[n * c.h * row_len..(n + 1) * c.h * row_len]
            } else {
                &[]
            };
            let mut best = vec![W::ZERO; ch];
            let mut arg = vec![0usize; ch];
            for oy in oys {
                let iy0 = (oy * c.sh) as isize - c.pad_top as isize;
                let y0 = iy0.max(0) as usize;
                let y1 = ((iy0 + c.kh as isize).max(0) as usize).min(c.h);
                for ox in 0..c.ow {
                    let ix0 = (ox * c.sw) as isize - c.pad_left as isize;
                    let x0 = ix0.max(0) as usize;
                    let x1 = ((ix0 + c.kw as isize).max(0) as usize).min(c.w);
                    if y0 >= y1 || x0 >= x1 {
                        continue;
                    }
                    let d = &dy[((n * c.oh + oy) * c.ow + ox) * ch..][..ch];
                    if MAX {
                        best.copy_from_slice(&img[(y0 * c.w + x0) * ch..][..ch]);
                        arg.fill(y0 * c.w + x0);
                        for iy in y0..y1 {
                            for ix in x0..x1 {
                                let p = iy * c.w + ix;
                                let xs = &img[p * ch..][..ch];
                                for ((b, a), &v) in best.iter_mut().zip(arg.iter_mut()).zip(xs) {
                                    if *b < v {
                                        *b = v;
                                        *a = p;
                                    }
                                }
                            }
                        }
                        for (ci, (&a, &dv)) in arg.iter().zip(d).enumerate() {
                            let o = &mut rows[(a - row0 * c.w) * ch + ci];
                            *o = *o + dv;
                        }
                    } else {
                        let count = (y1 - y0) * (x1 - x0);
                        let div = W::from_usize(count);
                        for (b, &dv) in best.iter_mut().zip(d) {
                            *b = dv / div;
                        }
                        for iy in y0..y1 {
                            let r = &mut rows[(iy - row0) * row_len..][..row_len];
                            for o in r[x0 * ch..x1 * ch].chunks_exact_mut(ch) {
                                for (o, &v) in o.iter_mut().zip(&best) {
                                    *o = *o + v;
                                }
                            }
                        }
                    }
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::pool::{pool_geometry, PoolAttrs, PoolKind};
    use crate::geometry::window::{DataFormat, Padding};
    use rand::Rng;

    /// Naive NHWC reference with TensorFlow's tie rule.
    fn reference(max: bool, x: &[f64], dy: &[f64], g: &PoolGeom) -> Vec<f64> {
        let c = &g.conv;
        let mut dx = vec![0.0; c.n * c.h * c.w * c.cin];
        for n in 0..c.n {
            for oy in 0..c.oh {
                for ox in 0..c.ow {
                    for ch in 0..c.cin {
                        let mut cells = vec![];
                        for ky in 0..c.kh {
                            for kx in 0..c.kw {
                                let iy = (oy * c.sh + ky) as isize - c.pad_top as isize;
                                let ix = (ox * c.sw + kx) as isize - c.pad_left as isize;
                                if iy >= 0 && ix >= 0 && iy < c.h as isize && ix < c.w as isize {
                                    cells.push(
                                        ((n * c.h + iy as usize) * c.w + ix as usize) * c.cin + ch,
                                    );
                                }
                            }
                        }
                        let d = dy[((n * c.oh + oy) * c.ow + ox) * c.cin + ch];
                        if cells.is_empty() {
                            continue;
                        }
                        if max {
                            let mut best = cells[0];
                            for &i in &cells[1..] {
                                if x[best] < x[i] {
                                    best = i;
                                }
                            }
                            dx[best] += d;
                        } else {
                            for &i in &cells {
                                dx[i] += d / cells.len() as f64;
                            }
                        }
                    }
                }
            }
        }
        dx
    }

    #[test]
    fn pool_grads_match_reference() {
        let mut rng = crate::test_rng();
        for threads in [1, 3] {
            let tp = crate::test_pool(threads);
            for case in 0..300 {
                let max = case % 2 == 0;
                let padding = [Padding::Same, Padding::Valid, Padding::Explicit]
                    [rng.random_range(0..if max { 3 } else { 2 })];
                let big = case % 10 == 0;
                let s = if big { 40 } else { 10 };
                let (n, h, w, c) = (
                    rng.random_range(0..4),
                    rng.random_range(1..s),
                    rng.random_range(1..s),
                    rng.random_range(1..6),
                );
                let ksize = [1, rng.random_range(1..5), rng.random_range(1..5), 1];
                let strides = [1, rng.random_range(1..4), rng.random_range(1..4), 1];
                let explicit: Vec<i64> = if padding == Padding::Explicit {
                    vec![
                        0,
                        0,
                        rng.random_range(0..ksize[1]),
                        rng.random_range(0..ksize[1]),
                        rng.random_range(0..ksize[2]),
                        rng.random_range(0..ksize[2]),
                        0,
                        0,
                    ]
                } else {
                    vec![]
                };
                let a = PoolAttrs {
                    ksize: &ksize,
                    strides: &strides,
                    padding,
                    explicit_paddings: &explicit,
                    data_format: DataFormat::Nhwc,
                };
                let kind = if max { PoolKind::Max } else { PoolKind::Avg };
                let Ok(g) = pool_geometry(kind, &[n, h, w, c], &a) else {
                    continue;
                };
                // Small integers: many ties.
                let x: Vec<f64> = (0..n * h * w * c)
                    .map(|_| rng.random_range(0..4) as f64)
                    .collect();
                let dy: Vec<f64> = (0..g.output_shape().iter().product())
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let want = reference(max, &x, &dy, &g);
                let mut got = vec![f64::NAN; x.len()];
                tp.install(|| {
                    let dyv = TensorView::from_slice(g.output_shape(), &dy);
                    let mut dxv = TensorMut::from_slice(vec![n, h, w, c], &mut got);
                    if max {
                        max_pool_grad(
                            &TensorView::from_slice(vec![n, h, w, c], &x),
                            &dyv,
                            &mut dxv,
                            &g,
                        )
                        .unwrap();
                    } else {
                        avg_pool_grad(&dyv, &mut dxv, &g).unwrap();
                    }
                });
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() <= 1e-12, "{g:?} at {i}: {a} vs {b}");
                }
            }
        }
    }
}
