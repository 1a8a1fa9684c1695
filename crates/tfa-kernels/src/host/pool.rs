//! Pooling kernels (NHWC): direct loops over each window, vectorised over
//! channels, parallel over output rows. NCHW is transposed to NHWC and back;
//! float16/bfloat16 compute in float32 and round once.
//!
//! Semantics follow TensorFlow's CPU kernels: padded positions never take
//! part (MaxPool ignores them, AvgPool divides by the number of valid input
//! elements in the window); MaxPool also pools across depth
//! (`ksize[depth] > 1`, spatial window 1x1).

use super::conv::{par_rows, Compute, ConvGeom, DataFormat, Widen};
use crate::geometry::pool::{PoolGeom, PoolKind};
use half::{bf16, f16};
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

/// MaxPool or AvgPool of `input` into `out` (shape `g.output_shape()`).
pub fn pool(kind: PoolKind, input: &TensorView, out: &mut TensorMut, g: &PoolGeom) -> Result<()> {
    let c = &g.conv;
    if input.shape != c.format.shape(c.n, c.h, c.w, c.cin)
        || out.shape != g.output_shape()
        || input.dtype != out.dtype
    {
        return Err(Error::Internal(format!(
            "{} shapes {:?} -> {:?} do not match {g:?}",
            kind.op(),
            input.shape,
            out.shape
        )));
    }
    match out.dtype {
        DType::F32 => pool_typed::<f32>(kind, input.data()?, out.data_mut()?, g),
        DType::F64 => pool_typed::<f64>(kind, input.data()?, out.data_mut()?, g),
        DType::F16 => pool_typed::<f16>(kind, input.data()?, out.data_mut()?, g),
        DType::BF16 => pool_typed::<bf16>(kind, input.data()?, out.data_mut()?, g),
        d => {
            return Err(Error::Unimplemented(format!(
                "{} is not defined for {d}",
                kind.op()
            )))
        }
    }
    Ok(())
}

fn pool_typed<T: Widen>(kind: PoolKind, x: &[T], y: &mut [T], g: &PoolGeom) {
    if y.is_empty() {
        return;
    }
    let c = &g.conv;
    let row = c.ow * c.cout;
    let f = |x: &[T::W], r: usize, out: &mut [T::W]| {
        if g.depth_window > 1 {
            depth_max_row(x, g, r, out)
        } else {
            match kind {
                PoolKind::Max => pool_row::<_, true>(x, c, r, out),
                PoolKind::Avg => pool_row::<_, false>(x, c, r, out),
            }
        }
    };
    if c.format == DataFormat::Nhwc && std::any::TypeId::of::<T>() == std::any::TypeId::of::<T::W>()
    {
        // SAFETY: T and T::W are the same type (checked just above), so the
        // same pointer and length describe the same elements.
        let x: &[T::W] = unsafe { std::slice::from_raw_parts(x.as_ptr() as *const T::W, x.len()) };
        // SAFETY: as for `x`; the new slice reborrows `y` exclusively.
        let y: &mut [T::W] =
            unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut T::W, y.len()) };
        par_rows(y, row, c, |r, out| f(x, r, out));
        return;
    }
    if c.format == DataFormat::Nhwc && g.depth_window <= 1 {
        // float16/bfloat16 NHWC: each output row widens just the input rows
        // its windows read, and is narrowed while in cache. Widening the
        // whole input first wrote and read a float32 copy of it (ResNet50's
        // bfloat16 MaxPool at batch 32: 63 ms, against 23 in float32).
        let row_len = c.w * c.cin;
        par_rows(y, row, c, |r, out| {
            let (n, oy) = (r / c.oh, r % c.oh);
            let iy0 = (oy * c.sh) as isize - c.pad_top as isize;
            let y0 = (iy0.max(0) as usize).min(c.h);
            let y1 = ((iy0 + c.kh as isize).max(0) as usize).clamp(y0, c.h);
            let rows = &x[(n * c.h + y0) * row_len..(n * c.h + y1) * row_len];
            let wide: Vec<T::W> = rows.iter().map(|&v| v.widen()).collect();
            // The same windows over an image of rows y0..y1: padding grows
            // by y0 so that every window starts where it did.
            let band = ConvGeom {
                n: 1,
                h: y1 - y0,
                pad_top: c.pad_top + y0,
                ..*c
            };
            let mut acc = vec![T::W::default(); out.len()];
            match kind {
                PoolKind::Max => pool_row::<_, true>(&wide, &band, oy, &mut acc),
                PoolKind::Avg => pool_row::<_, false>(&wide, &band, oy, &mut acc),
            }
            for (o, &v) in out.iter_mut().zip(&acc) {
                *o = T::narrow(v);
            }
        });
        return;
    }
    let xt = super::conv::widened_nhwc(x, c);
    let mut yt = vec![T::W::default(); y.len()];
    par_rows(&mut yt, row, c, |r, out| f(&xt, r, out));
    super::conv::store_nhwc::<T>(yt, y, c);
}

widest_simd_fn! {
    /// One output row `r = n * oh + oy` of a spatial pool (NHWC), vectorised
    /// for the CPU.
    fn pool_row[W: Compute, const MAX: bool][W, MAX](x: &[W], g: &ConvGeom, r: usize, out: &mut [W])
        => pool_row_impl::<W, MAX>
}

#[inline(always)]
fn pool_row_impl<W: Compute, const MAX: bool>(x: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    let (n, oy) = (r / g.oh, r % g.oh);
    let ch = g.cin;
    let img = &x[n * g.h * g.w * ch..(n + 1) * g.h * g.w * ch];
    let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
    let y0 = iy0.max(0) as usize;
    let y1 = ((iy0 + g.kh as isize).max(0) as usize).min(g.h);
    for (ox, acc) in out.chunks_exact_mut(ch).enumerate() {
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        let x0 = ix0.max(0) as usize;
        let x1 = ((ix0 + g.kw as isize).max(0) as usize).min(g.w);
        acc.fill(if MAX { W::LOWEST } else { W::ZERO });
        for iy in y0..y1 {
            let src = &img[(iy * g.w + x0) * ch..(iy * g.w + x1.max(x0)) * ch];
            for xs in src.chunks_exact(ch) {
                if MAX {
                    for (a, &v) in acc.iter_mut().zip(xs) {
                        *a = if v > *a { v } else { *a };
                    }
                } else {
                    for (a, &v) in acc.iter_mut().zip(xs) {
                        *a = *a + v;
                    }
                }
            }
        }
        if !MAX {
            let count = y1.saturating_sub(y0) * x1.saturating_sub(x0);
            let d = W::from_usize(count.max(1));
            for a in acc.iter_mut() {
                *a = *a / d;
            }
        }
    }
}

/// One output row of a depth max pool: channel groups of `depth_window`.
fn depth_max_row<W: Compute>(x: &[W], g: &PoolGeom, r: usize, out: &mut [W]) {
    let c = &g.conv;
    let src = &x[r * c.w * c.cin..(r + 1) * c.w * c.cin];
    for (o, win) in out.iter_mut().zip(src.chunks_exact(g.depth_window)) {
        *o = win
            .iter()
            .fold(W::LOWEST, |a, &v| if v > a { v } else { a });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::pool::{pool_geometry, PoolAttrs};
    use crate::geometry::window::Padding;
    use rand::Rng;
    use tfa_core::Element;

    fn reference(kind: PoolKind, x: &[f64], g: &ConvGeom) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.oh * g.ow * g.cout];
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for c in 0..g.cout {
                        let (mut m, mut s, mut cnt) = (f64::MIN, 0.0, 0usize);
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let v =
                                    x[((n * g.h + iy as usize) * g.w + ix as usize) * g.cin + c];
                                m = m.max(v);
                                s += v;
                                cnt += 1;
                            }
                        }
                        y[((n * g.oh + oy) * g.ow + ox) * g.cout + c] = match kind {
                            PoolKind::Max => m,
                            PoolKind::Avg => s / cnt.max(1) as f64,
                        };
                    }
                }
            }
        }
        y
    }

    fn check<T: Element>(cases: usize, from: fn(f64) -> T, to: fn(T) -> f64, tol: f64) {
        let mut rng = crate::test_rng();
        let mut done = 0;
        while done < cases {
            let kind = if rng.random_bool(0.5) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let fmt = if rng.random_bool(0.3) {
                DataFormat::Nchw
            } else {
                DataFormat::Nhwc
            };
            let padding = match rng.random_range(0..3) {
                0 => Padding::Same,
                1 => Padding::Valid,
                _ if kind == PoolKind::Max => Padding::Explicit,
                _ => Padding::Same,
            };
            let (n, h, w, c) = (
                rng.random_range(0..3),
                rng.random_range(1..12),
                rng.random_range(1..12),
                rng.random_range(1..9),
            );
            let d = fmt.dims();
            let mut ksize = [1i64; 4];
            let mut strides = [1i64; 4];
            ksize[d[1]] = rng.random_range(1..5);
            ksize[d[2]] = rng.random_range(1..5);
            strides[d[1]] = rng.random_range(1..5);
            strides[d[2]] = rng.random_range(1..5);
            let mut explicit = vec![];
            if padding == Padding::Explicit {
                explicit = vec![0i64; 8];
                for i in [d[1], d[2]] {
                    explicit[2 * i] = rng.random_range(0..ksize[i]);
                    explicit[2 * i + 1] = rng.random_range(0..ksize[i]);
                }
            }
            let shape = fmt.shape(n, h, w, c);
            let a = PoolAttrs {
                ksize: &ksize,
                strides: &strides,
                padding,
                explicit_paddings: &explicit,
                data_format: fmt,
            };
            let Ok(g) = pool_geometry(kind, &shape, &a) else {
                continue;
            };
            done += 1;
            let xn: Vec<f64> = (0..n * h * w * c)
                .map(|_| to(from(rng.random_range(-1.0..1.0))))
                .collect();
            let mut want = reference(kind, &xn, &g.conv);
            let mut x_in = xn.clone();
            if fmt == DataFormat::Nchw {
                super::super::conv::nhwc_to_nchw(&xn, &mut x_in, n, c, h * w);
                let mut t = want.clone();
                super::super::conv::nhwc_to_nchw(&want, &mut t, n, c, g.conv.oh * g.conv.ow);
                want = t;
            }
            let xt: Vec<T> = x_in.iter().map(|&v| from(v)).collect();
            let mut y = vec![from(f64::NAN); want.len()];
            pool(
                kind,
                &TensorView::from_slice(shape, &xt),
                &mut TensorMut::from_slice(g.output_shape(), &mut y),
                &g,
            )
            .unwrap();
            for (a, b) in y.iter().zip(&want) {
                let a = to(*a);
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{kind:?} {g:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn pools_match_reference() {
        check::<f32>(400, |v| v as f32, |v| v as f64, 1e-6);
        check::<f64>(100, |v| v, |v| v, 1e-12);
        check::<f16>(60, f16::from_f64, |v| v.to_f64(), 2e-3);
        check::<bf16>(60, bf16::from_f64, |v| v.to_f64(), 1e-2);
    }

    #[test]
    fn depth_max_pool() {
        let x: Vec<f32> = (0..2 * 3 * 6).map(|i| ((i * 7) % 11) as f32).collect();
        let a = PoolAttrs {
            ksize: &[1, 1, 1, 3],
            strides: &[1, 1, 1, 3],
            padding: Padding::Valid,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let g = pool_geometry(PoolKind::Max, &[1, 2, 3, 6], &a).unwrap();
        assert_eq!(g.output_shape(), vec![1, 2, 3, 2]);
        let mut y = vec![0f32; 12];
        pool(
            PoolKind::Max,
            &TensorView::from_slice(vec![1, 2, 3, 6], &x),
            &mut TensorMut::from_slice(vec![1, 2, 3, 2], &mut y),
            &g,
        )
        .unwrap();
        let want: Vec<f32> = x
            .chunks(3)
            .map(|w| w.iter().cloned().fold(f32::MIN, f32::max))
            .collect();
        assert_eq!(y, want);
        assert!(pool_geometry(PoolKind::Avg, &[1, 2, 3, 6], &a).is_err());
    }
}
