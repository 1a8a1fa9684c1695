//! Image resizing, NHWC: ResizeBilinear and ResizeNearestNeighbor and their
//! gradients (Keras `Resizing`, `UpSampling2D(interpolation="bilinear")`,
//! `tf.image.resize`).
//!
//! Coordinates follow TensorFlow's CPU kernels exactly (same float32
//! expressions, same order of accumulation in the gradients), so float32
//! results agree with TensorFlow CPU: an output pixel `x` samples the input at
//! `x * scale` (legacy) or `(x + 0.5) * scale - 0.5` (half-pixel centres;
//! nearest neighbour: `(x + 0.5) * scale`), `scale = in / out`, or
//! `(in - 1) / (out - 1)` with `align_corners`. Bilinear computes in float32
//! whatever the input type and outputs float32, as TensorFlow does.

use rayon::prelude::*;
use tfa_core::{bf16, f16, DType, Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::image::ResizeAttrs;

/// TensorFlow's `CalculateResizeScale`.
pub(crate) fn scale(in_size: usize, out_size: usize, align_corners: bool) -> f32 {
    if align_corners && out_size > 1 {
        (in_size as f32 - 1.0) / (out_size as f32 - 1.0)
    } else {
        in_size as f32 / out_size as f32
    }
}

/// One axis of bilinear sampling: (lower, upper, lerp) per output position.
fn bilinear_axis(out: usize, input: usize, a: ResizeAttrs) -> Vec<(usize, usize, f32)> {
    let s = scale(input, out, a.align_corners);
    (0..out)
        .map(|i| {
            let at = if a.half_pixel_centers {
                (i as f32 + 0.5) * s - 0.5
            } else {
                i as f32 * s
            };
            let floor = at.floor();
            let lower = (floor as i64).max(0) as usize;
            let upper = (at.ceil() as i64).min(input as i64 - 1).max(0) as usize;
            (lower, upper, at - floor)
        })
        .collect()
}

/// One axis of nearest-neighbour sampling: the input index per output
/// position (`out_size` positions over `in_size`).
fn nearest_axis(out: usize, input: usize, a: ResizeAttrs) -> Vec<usize> {
    let s = scale(input, out, a.align_corners);
    (0..out)
        .map(|i| {
            let at = if a.half_pixel_centers {
                (i as f32 + 0.5) * s
            } else {
                i as f32 * s
            };
            let idx = if a.align_corners {
                at.round()
            } else {
                at.floor()
            } as i64;
            let idx = idx.min(input as i64 - 1);
            (if a.half_pixel_centers {
                idx.max(0)
            } else {
                idx
            }) as usize
        })
        .collect()
}

/// The input as float32 values (borrowed when it already is).
pub(crate) fn as_f32<'a>(x: &'a TensorView) -> Result<std::borrow::Cow<'a, [f32]>> {
    Ok(match x.dtype {
        DType::F32 => std::borrow::Cow::Borrowed(x.data::<f32>()?),
        DType::F64 => x.data::<f64>()?.iter().map(|&v| v as f32).collect(),
        DType::F16 => x.data::<f16>()?.iter().map(|v| v.to_f32()).collect(),
        DType::BF16 => x.data::<bf16>()?.iter().map(|v| v.to_f32()).collect(),
        d => {
            return Err(Error::Unimplemented(format!(
                "resize is not defined for {d}"
            )))
        }
    })
}

/// float32 values written into `out` of its own float dtype.
fn store_f32(v: &[f32], out: &mut TensorMut) -> Result<()> {
    match out.dtype {
        DType::F32 => out.data_mut::<f32>()?.copy_from_slice(v),
        DType::F64 => out
            .data_mut::<f64>()?
            .iter_mut()
            .zip(v)
            .for_each(|(o, &x)| *o = x as f64),
        DType::F16 => out
            .data_mut::<f16>()?
            .iter_mut()
            .zip(v)
            .for_each(|(o, &x)| *o = f16::from_f32(x)),
        DType::BF16 => out
            .data_mut::<bf16>()?
            .iter_mut()
            .zip(v)
            .for_each(|(o, &x)| *o = bf16::from_f32(x)),
        d => {
            return Err(Error::Unimplemented(format!(
                "resize is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// ResizeBilinear: `out` (float32, `[b, oh, ow, c]`) from `x` (`[b, ih, iw, c]`).
pub fn resize_bilinear(x: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()> {
    let [_, ih, iw, c] = x.shape[..] else {
        return Err(Error::Internal("resize input is not 4-D".into()));
    };
    let (oh, ow) = (out.shape[1], out.shape[2]);
    let src = as_f32(x)?;
    let (ys, xs) = (bilinear_axis(oh, ih, a), bilinear_axis(ow, iw, a));
    let dst = out.data_mut::<f32>()?;
    if dst.is_empty() {
        return Ok(());
    }
    dst.par_chunks_mut(ow * c)
        .enumerate()
        .for_each(|(row, out_row)| {
            let (n, y) = (row / oh, row % oh);
            let (top, bottom, y_lerp) = ys[y];
            let img = &src[n * ih * iw * c..][..ih * iw * c];
            let (top, bottom) = (
                &img[top * iw * c..][..iw * c],
                &img[bottom * iw * c..][..iw * c],
            );
            for (x, px) in out_row.chunks_mut(c).enumerate() {
                let (l, r, x_lerp) = xs[x];
                for (ch, o) in px.iter_mut().enumerate() {
                    let (tl, tr) = (top[l * c + ch], top[r * c + ch]);
                    let (bl, br) = (bottom[l * c + ch], bottom[r * c + ch]);
                    let t = tl + (tr - tl) * x_lerp;
                    let bo = bl + (br - bl) * x_lerp;
                    *o = t + (bo - t) * y_lerp;
                }
            }
        });
    Ok(())
}

/// ResizeBilinearGrad: `out` (`[b, ih, iw, c]`, the original image's dtype)
/// accumulates `grads` (`[b, oh, ow, c]`, float32) as TensorFlow does, pixel
/// by pixel in order, images in parallel: each float32 product is added in
/// the output type (float32, float64); float16 and bfloat16 are accumulated
/// in float32 and rounded once at the end, as TensorFlow's CPU kernel does.
pub fn resize_bilinear_grad(grads: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()> {
    let [_, oh, ow, c] = grads.shape[..] else {
        return Err(Error::Internal("resize gradient is not 4-D".into()));
    };
    let g = grads.data::<f32>()?;
    let [_, ih, iw, _] = out.shape[..] else {
        return Err(Error::Internal("resize output is not 4-D".into()));
    };
    let (ys, xs) = (bilinear_axis(oh, ih, a), bilinear_axis(ow, iw, a));
    let geometry = BilinearGrad {
        g,
        ys: &ys,
        xs: &xs,
        image: (ih, iw, c),
        resized: (oh, ow),
    };
    match out.dtype {
        DType::F32 => geometry.accumulate(out.data_mut::<f32>()?, |v| v),
        DType::F64 => geometry.accumulate(out.data_mut::<f64>()?, f64::from),
        _ => {
            let mut acc = vec![0f32; out.num_elements()];
            geometry.accumulate(&mut acc, |v| v);
            store_f32(&acc, out)?;
        }
    }
    Ok(())
}

/// The sampling of one ResizeBilinearGrad call.
struct BilinearGrad<'a> {
    g: &'a [f32],
    ys: &'a [(usize, usize, f32)],
    xs: &'a [(usize, usize, f32)],
    image: (usize, usize, usize),
    resized: (usize, usize),
}

impl BilinearGrad<'_> {
    /// Zeroes `out` and adds every gradient's four shares, each float32
    /// product widened by `widen` before it is added.
    fn accumulate<T>(&self, out: &mut [T], widen: impl Fn(f32) -> T + Sync)
    where
        T: Copy + Default + Send + std::ops::AddAssign,
    {
        let (ih, iw, c) = self.image;
        let (oh, ow) = self.resized;
        out.fill(T::default());
        if out.is_empty() {
            return;
        }
        out.par_chunks_mut(ih * iw * c)
            .enumerate()
            .for_each(|(n, img)| {
                let gi = &self.g[n * oh * ow * c..][..oh * ow * c];
                for (y, &(top, bottom, y_lerp)) in self.ys.iter().enumerate() {
                    for (x, &(l, r, x_lerp)) in self.xs.iter().enumerate() {
                        let (iy, ix) = (1.0 - y_lerp, 1.0 - x_lerp);
                        for ch in 0..c {
                            let v = gi[(y * ow + x) * c + ch];
                            img[(top * iw + l) * c + ch] += widen(v * iy * ix);
                            img[(top * iw + r) * c + ch] += widen(v * iy * x_lerp);
                            img[(bottom * iw + l) * c + ch] += widen(v * y_lerp * ix);
                            img[(bottom * iw + r) * c + ch] += widen(v * y_lerp * x_lerp);
                        }
                    }
                }
            });
    }
}

/// ResizeNearestNeighbor: `out` (`x`'s dtype, `[b, oh, ow, c]`); whole pixels
/// move as bytes.
pub fn resize_nearest(x: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()> {
    let [_, ih, iw, c] = x.shape[..] else {
        return Err(Error::Internal("resize input is not 4-D".into()));
    };
    let (oh, ow) = (out.shape[1], out.shape[2]);
    let (ys, xs) = (nearest_axis(oh, ih, a), nearest_axis(ow, iw, a));
    let px = c * x.dtype.size();
    let src = x.bytes();
    let dst = out.bytes_mut();
    if dst.is_empty() {
        return Ok(());
    }
    dst.par_chunks_mut(ow * px)
        .enumerate()
        .for_each(|(row, out_row)| {
            let (n, y) = (row / oh, row % oh);
            let in_row = &src[(n * ih + ys[y]) * iw * px..][..iw * px];
            for (o, &ix) in out_row.chunks_mut(px).zip(&xs) {
                o.copy_from_slice(&in_row[ix * px..][..px]);
            }
        });
    Ok(())
}

/// ResizeNearestNeighborGrad: `out` (`[b, ih, iw, c]` of `size`) sums the
/// gradient of every resized pixel into the input pixel it copied, in the
/// element type (float16 and bfloat16 rounded at every addition), in
/// TensorFlow's order.
pub fn resize_nearest_grad(grads: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()> {
    match grads.dtype {
        DType::F32 => nearest_grad_typed::<f32>(grads, a, out),
        DType::F64 => nearest_grad_typed::<f64>(grads, a, out),
        DType::F16 => nearest_grad_typed::<f16>(grads, a, out),
        DType::BF16 => nearest_grad_typed::<bf16>(grads, a, out),
        d => Err(Error::Unimplemented(format!(
            "ResizeNearestNeighborGrad is not defined for {d}"
        ))),
    }
}

fn nearest_grad_typed<T>(grads: &TensorView, a: ResizeAttrs, out: &mut TensorMut) -> Result<()>
where
    T: tfa_core::Element + Default + std::ops::Add<Output = T>,
{
    let [_, gh, gw, c] = grads.shape[..] else {
        return Err(Error::Internal("resize gradient is not 4-D".into()));
    };
    let (ih, iw) = (out.shape[1], out.shape[2]);
    // The forward's sampling from the original (ih x iw) to the resized size.
    let (ys, xs) = (nearest_axis(gh, ih, a), nearest_axis(gw, iw, a));
    let g = grads.data::<T>()?;
    let dst = out.data_mut::<T>()?;
    dst.fill(T::default());
    if dst.is_empty() {
        return Ok(());
    }
    dst.par_chunks_mut(ih * iw * c)
        .enumerate()
        .for_each(|(n, img)| {
            let gi = &g[n * gh * gw * c..][..gh * gw * c];
            for (y, &oy) in ys.iter().enumerate() {
                for (x, &ox) in xs.iter().enumerate() {
                    let (from, to) = ((y * gw + x) * c, (oy * iw + ox) * c);
                    for ch in 0..c {
                        img[to + ch] = img[to + ch] + gi[from + ch];
                    }
                }
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::image::*;

    #[test]
    fn bilinear_doubles_a_row_like_tensorflow() {
        // [1, 1, 2, 1] -> [1, 1, 4, 1], half-pixel centres: samples at
        // -0.25, 0.25, 0.75, 1.25 -> 1, 1.25, 1.75, 2.
        let x = [1.0f32, 2.0];
        let mut y = [0f32; 4];
        let a = ResizeAttrs {
            align_corners: false,
            half_pixel_centers: true,
        };
        let v = TensorView::from_slice(vec![1, 1, 2, 1], &x);
        resize_bilinear(&v, a, &mut TensorMut::from_slice(vec![1, 1, 4, 1], &mut y)).unwrap();
        assert_eq!(y, [1.0, 1.25, 1.75, 2.0]);
        // Gradients of ones: each input pixel gets its share (2 each).
        let g = [1.0f32; 4];
        let mut dx = [0f32; 2];
        let gv = TensorView::from_slice(vec![1, 1, 4, 1], &g);
        resize_bilinear_grad(
            &gv,
            a,
            &mut TensorMut::from_slice(vec![1, 1, 2, 1], &mut dx),
        )
        .unwrap();
        assert_eq!(dx, [2.0, 2.0]);
    }

    #[test]
    fn nearest_and_checks() {
        let a = ResizeAttrs::default();
        assert_eq!(nearest_axis(4, 2, a), [0, 0, 1, 1]);
        let hp = ResizeAttrs {
            align_corners: false,
            half_pixel_centers: true,
        };
        assert_eq!(nearest_axis(3, 2, hp), [0, 1, 1]);
        let e = resize_shape(&[1, 2, 2], &[2], &[3, 3], a)
            .unwrap_err()
            .to_string();
        assert!(e.contains("input must be 4-dimensional[1,2,2]"), "{e}");
        let both = ResizeAttrs {
            align_corners: true,
            half_pixel_centers: true,
        };
        assert!(resize_shape(&[1, 2, 2, 1], &[2], &[3, 3], both).is_err());
        assert!(resize_shape(&[1, 2, 2, 1], &[2], &[0, 3], a).is_err());
    }
}
