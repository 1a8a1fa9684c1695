//! MaxPoolWithArgmax and MaxPoolGradWithArgmax (NHWC), as TensorFlow's CPU
//! kernel (`SpatialMaxPoolWithArgMaxHelper`) computes them: each window is
//! scanned in row-major order and the first element that is greater than
//! the running maximum wins (so the first of tied maxima, and a NaN only
//! when it comes first); the argmax is the flat NHWC index of the winner,
//! counted from the start of its image unless `include_batch_in_index`.

use super::conv_grad::float_dispatch;
use super::numeric::{Accumulate, Numeric, Widen};
use crate::geometry::pool::PoolGeom;
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

/// MaxPoolWithArgmax of `x` into `out` and `argmax` (int64), both of
/// `g`'s output shape.
pub fn max_pool_with_argmax(
    x: &TensorView,
    g: &PoolGeom,
    include_batch: bool,
    out: &mut TensorMut,
    argmax: &mut TensorMut,
) -> Result<()> {
    fn typed<T: Widen>(
        x: &TensorView,
        g: &PoolGeom,
        batch: bool,
        out: &mut TensorMut,
        idx: &mut TensorMut,
    ) -> Result<()> {
        let c = &g.conv;
        let (src, dst, arg) = (x.data::<T>()?, out.data_mut::<T>()?, idx.data_mut::<i64>()?);
        let (image, rows) = (c.h * c.w * c.cin, c.oh * c.ow * c.cin);
        if dst.is_empty() {
            return Ok(());
        }
        dst.par_chunks_mut(rows)
            .zip(arg.par_chunks_mut(rows))
            .enumerate()
            .for_each(|(n, (o, a))| {
                let img = &src[n * image..(n + 1) * image];
                let base = if batch { (n * image) as i64 } else { 0 };
                for oy in 0..c.oh {
                    for ox in 0..c.ow {
                        let at = (oy * c.ow + ox) * c.cin;
                        let y0 = (oy * c.sh) as isize - c.pad_top as isize;
                        let x0 = (ox * c.sw) as isize - c.pad_left as isize;
                        for ch in 0..c.cin {
                            let mut best: Option<(T::W, usize)> = None;
                            for ky in 0..c.kh as isize {
                                let y = y0 + ky;
                                if y < 0 || y >= c.h as isize {
                                    continue;
                                }
                                for kx in 0..c.kw as isize {
                                    let xx = x0 + kx;
                                    if xx < 0 || xx >= c.w as isize {
                                        continue;
                                    }
                                    let i = (y as usize * c.w + xx as usize) * c.cin + ch;
                                    let v = img[i].widen();
                                    if best.is_none_or(|(b, _)| b < v) {
                                        best = Some((v, i));
                                    }
                                }
                            }
                            // A window always holds an input element (the
                            // geometry's padding is less than the window).
                            let (v, i) = best.unwrap_or((T::W::LOWEST, 0));
                            o[at + ch] = T::narrow(v);
                            a[at + ch] = base + i as i64;
                        }
                    }
                }
            });
        Ok(())
    }
    if out.dtype != x.dtype || argmax.dtype != DType::I64 {
        return Err(Error::Internal("MaxPoolWithArgmax output types".into()));
    }
    float_dispatch!(
        x.dtype,
        "MaxPoolWithArgmax",
        typed(x, g, include_batch, out, argmax)
    )
}

/// MaxPoolGradWithArgmax: `dx` (the input's shape, `images` images) gets
/// each `grad` element added at its `argmax` position.
pub fn max_pool_grad_with_argmax(
    grad: &TensorView,
    argmax: &TensorView,
    include_batch: bool,
    dx: &mut TensorMut,
) -> Result<()> {
    fn typed<T: Widen>(
        grad: &TensorView,
        argmax: &TensorView,
        batch: bool,
        dx: &mut TensorMut,
    ) -> Result<()> {
        let images = dx.shape.first().copied().unwrap_or(0);
        let (g, idx, out) = (grad.data::<T>()?, argmax.to_i64_vec()?, dx.data_mut::<T>()?);
        out.iter_mut().for_each(|v| *v = T::narrow(T::W::ZERO));
        if images == 0 || out.is_empty() {
            return Ok(());
        }
        let (image, per) = (out.len() / images, g.len() / images);
        out.par_chunks_mut(image)
            .enumerate()
            .try_for_each(|(n, o)| {
                for k in n * per..(n + 1) * per {
                    let at = idx[k] - if batch { (n * image) as i64 } else { 0 };
                    let slot =
                        usize::try_from(at)
                            .ok()
                            .filter(|&a| a < image)
                            .ok_or_else(|| {
                                Error::InvalidArgument(format!(
                                    "Invalid input backprop index: {}, {}, {}",
                                    idx[k],
                                    if batch { n * image } else { 0 },
                                    if batch { (n + 1) * image } else { image }
                                ))
                            })?;
                    o[slot] = T::narrow(o[slot].widen() + g[k].widen());
                }
                Ok(())
            })
    }
    if grad.num_elements() != argmax.num_elements() {
        return Err(Error::InvalidArgument(format!(
            "Expected argmax to have the shape of grad, but got {} and {} elements",
            argmax.num_elements(),
            grad.num_elements()
        )));
    }
    float_dispatch!(
        dx.dtype,
        "MaxPoolGradWithArgmax",
        typed(grad, argmax, include_batch, dx)
    )
}
