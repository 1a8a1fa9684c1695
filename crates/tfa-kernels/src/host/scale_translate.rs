//! ScaleAndTranslate and ScaleAndTranslateGrad, NHWC (`tf.image.resize` with
//! `lanczos3`, `lanczos5`, `gaussian`, `mitchellcubic`, ...; Keras `Resizing`
//! with those interpolations).
//!
//! A port of TensorFlow's CPU kernel (`scale_and_translate_op.cc`,
//! `sampling_kernels.h`): the same float32 expressions in the same order, so
//! results agree with TensorFlow CPU bit for bit.
//!
//! Each axis is resampled separately through a precomputed "span" per output
//! position: the first input index and `span_size` normalised weights. Rows
//! are resampled first (into a float32 `[b, out_h, in_w, c]` buffer), then
//! columns; every output value starts at 0.0 and adds `weight * input` over
//! its whole span in order, zero weights included (so NaN and infinity
//! spread exactly as in TensorFlow). The gradient inverts the forward spans
//! (for each input pixel: the output pixels it fed, with their weights) and
//! runs the same two passes on the incoming gradient.
//!
//! Usage, in TensorFlow's order of checks (the first three in
//! `geometry::image`): `SamplingKernel::parse` (the kernel's construction),
//! `scale_and_translate_shape` (or `scale_and_translate_grad_shape`),
//! `scale_and_translation`, then [`scale_and_translate`] (or
//! [`scale_and_translate_grad`]).

use super::for_row_chunks;
use tfa_core::shape::fmt_shape;
use tfa_core::{bf16, f16, DType, Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::image::SamplingKernel;

fn invalid<T>(m: String) -> Result<T> {
    Err(Error::InvalidArgument(m))
}

/// The filters' values, in `sampling_kernels.h`'s float arithmetic.
impl SamplingKernel {
    /// The filter's support radius (`Radius()`).
    pub fn radius(self) -> f32 {
        match self {
            SamplingKernel::Lanczos1 => 1.0,
            SamplingKernel::Lanczos3 => 3.0,
            SamplingKernel::Lanczos5 => 5.0,
            SamplingKernel::Gaussian => 1.5,
            SamplingKernel::Box | SamplingKernel::Triangle => 1.0,
            SamplingKernel::KeysCubic | SamplingKernel::MitchellCubic => 2.0,
        }
    }

    /// The filter at `x`, with `sampling_kernels.h`'s expressions (float32,
    /// except the Gaussian's exponent, which TensorFlow computes in double).
    pub fn weight(self, x: f32) -> f32 {
        let x = x.abs();
        match self {
            SamplingKernel::Lanczos1 | SamplingKernel::Lanczos3 | SamplingKernel::Lanczos5 => {
                // TensorFlow's `constexpr float kPI = 3.14159265359`, the
                // same float.
                const PI: f32 = std::f32::consts::PI;
                let radius = self.radius();
                if x > radius {
                    return 0.0;
                }
                // The limit of sin(x) / x at 0 (`1e-3` is a double there).
                if f64::from(x) <= 1e-3 {
                    return 1.0;
                }
                radius * (PI * x).sin() * (PI * x / radius).sin() / (PI * PI * x * x)
            }
            SamplingKernel::Gaussian => {
                let radius = 1.5f32;
                let sigma = radius / 3.0;
                if x >= radius {
                    return 0.0;
                }
                // `std::exp(-x * x / (2.0 * sigma * sigma))`: 2.0 is a double.
                let s = f64::from(sigma);
                (f64::from(-x * x) / (2.0 * s * s)).exp() as f32
            }
            SamplingKernel::Box => {
                if x < 0.5 {
                    1.0
                } else if x == 0.5 {
                    0.5
                } else {
                    0.0
                }
            }
            SamplingKernel::Triangle => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            SamplingKernel::KeysCubic => {
                if x >= 2.0 {
                    0.0
                } else if x >= 1.0 {
                    ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
                } else {
                    ((1.5 * x - 2.5) * x) * x + 1.0
                }
            }
            SamplingKernel::MitchellCubic => {
                if x >= 2.0 {
                    0.0
                } else if x >= 1.0 {
                    (((-7.0f32 / 18.0) * x + 2.0) * x - 10.0f32 / 3.0) * x + 16.0f32 / 9.0
                } else {
                    (((7.0f32 / 6.0) * x - 2.0) * x) * x + 8.0f32 / 9.0
                }
            }
        }
    }
}

/// A float to int32 conversion as x86's `cvttss2si` does it (TensorFlow's
/// `static_cast<int>`): NaN and out-of-range values give `i32::MIN`, where
/// Rust's `as` would saturate. Only reachable with absurdly small scales.
fn x86_f32_to_i32(v: f32) -> i32 {
    if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        v as i32
    } else {
        i32::MIN
    }
}

/// As [`x86_f32_to_i32`], to int64 (`cvttss2si` with a 64-bit destination).
fn x86_f32_to_i64(v: f32) -> i64 {
    const LIMIT: f32 = 9_223_372_036_854_775_808.0; // 2^63
    if (-LIMIT..LIMIT).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// TensorFlow's `Clamp(low, high, value)`, whose order matters when
/// `high < low` (an empty input axis).
fn tf_clamp(low: i64, high: i64, value: i64) -> i64 {
    if high < value {
        high
    } else if value < low {
        low
    } else {
        value
    }
}

/// The spans of one axis (TensorFlow's `Spans`): output position `x` is the
/// dot product of `weights[x * span_size..][..span_size]` with the inputs
/// from `starts[x]` (cut at the end of the input axis).
#[derive(Debug, Clone, PartialEq)]
struct Spans {
    span_size: usize,
    starts: Vec<usize>,
    weights: Vec<f32>,
}

/// `ComputeSpansCore`: `output_size` positions sampling an input axis of
/// `input_size` (output `x` maps to input `(x + 0.5) / scale - translate /
/// scale`).
fn compute_spans(
    kernel: SamplingKernel,
    output_size: usize,
    input_size: usize,
    scale: f32,
    translate: f32,
    antialias: bool,
) -> Result<Spans> {
    // TensorFlow divides in double (`1.0 / scale`), then stores a float.
    let inv_scale = (1.0f64 / f64::from(scale)) as f32;
    let inv_translate = -inv_scale * translate;
    // Downsampling widens the kernel (a low-pass filter); upsampling only
    // interpolates. `std::max(inv_scale, 1.0f)`.
    let kernel_scale = if antialias && inv_scale >= 1.0 {
        inv_scale
    } else {
        1.0
    };
    let radius = kernel.radius();
    let reach = radius * kernel_scale;
    // `2 * static_cast<int>(ceil(reach)) + 1` in int (wrapping as x86 does),
    // at most the input size.
    let span = x86_f32_to_i32(reach.ceil())
        .wrapping_mul(2)
        .wrapping_add(1)
        .min(i32::try_from(input_size).unwrap_or(i32::MAX));
    // TensorFlow aborts the process here (a tensor of negative size).
    let Ok(span_size) = usize::try_from(span) else {
        return invalid(format!(
            "scale {scale} is too small: the {}-wide kernel spans more than 2^31 pixels",
            2.0 * reach
        ));
    };
    let mut starts = vec![0usize; output_size];
    let mut weights = vec![0f32; span_size * output_size];
    let one_over_kernel_scale = 1.0f32 / kernel_scale;
    let mut temp = Vec::with_capacity(span_size);
    for x in 0..output_size {
        let sample = (x as f32 + 0.5) * inv_scale + inv_translate;
        // No sampling outside the source image: an empty span (all zero
        // weights from 0). NaN goes on, as in TensorFlow.
        if sample < 0.0 || sample > input_size as f32 {
            continue;
        }
        let last = input_size as i64 - 1;
        let start = tf_clamp(0, last, x86_f32_to_i64((sample - reach - 0.5).ceil()));
        let end = tf_clamp(0, last, x86_f32_to_i64((sample + reach - 0.5).floor())) + 1;
        let this_span = end - start;
        if this_span > span as i64 {
            return Err(Error::Internal(format!(
                "Span is too large: {this_span} vs {span}."
            )));
        }
        let mut total = 0.0f32;
        temp.clear();
        for source in start..end {
            let pos = source as f32 + 0.5 - sample;
            let w = kernel.weight((pos * one_over_kernel_scale).abs());
            total += w;
            temp.push(w);
        }
        // Weights that sum to (almost) nothing stay zero.
        if total.abs() >= 1000.0 * f32::MIN_POSITIVE {
            let inv_total = 1.0f32 / total;
            let row = &mut weights[x * span_size..][..temp.len()];
            for (o, &w) in row.iter_mut().zip(&temp) {
                *o = w * inv_total;
            }
        }
        // `start` is at least 0 here: `tf_clamp` gives -1 only when the
        // input is empty and the sample past its end, which returned above.
        starts[x] = start.max(0) as usize;
    }
    Ok(Spans {
        span_size,
        starts,
        weights,
    })
}

/// `ComputeGradSpansCore`: the forward spans (from `forward_input_size` to
/// `forward_output_size`) turned around: for each forward input position,
/// the forward outputs it fed and with which weights.
fn grad_spans(fwd: &Spans, forward_output_size: usize, forward_input_size: usize) -> Spans {
    // Per forward input: (forward output, weight), by increasing output (the
    // order of the scan, which TensorFlow's sort keeps).
    let mut parts: Vec<Vec<(usize, f32)>> = vec![Vec::new(); forward_input_size];
    for out in 0..forward_output_size {
        let row = &fwd.weights[out * fwd.span_size..][..fwd.span_size];
        for (j, &w) in row.iter().enumerate() {
            let input = fwd.starts[out] + j;
            if w != 0.0 && input < forward_input_size {
                parts[input].push((out, w));
            }
        }
    }
    let span_size = parts
        .iter()
        .filter_map(|p| Some(p.last()?.0 - p.first()?.0 + 1))
        .max()
        .unwrap_or(0);
    let mut starts = vec![0usize; forward_input_size];
    let mut weights = vec![0f32; span_size * forward_input_size];
    for (input, p) in parts.iter().enumerate() {
        if let Some(&(first, _)) = p.first() {
            starts[input] = first;
            for &(out, w) in p {
                weights[input * span_size + out - first] += w;
            }
        }
    }
    Spans {
        span_size,
        starts,
        weights,
    }
}

/// The values as float32 (`static_cast<float>`), borrowed when they are.
fn as_f32<'a>(x: &'a TensorView) -> Result<std::borrow::Cow<'a, [f32]>> {
    use std::borrow::Cow;
    fn conv<T: Copy>(v: &[T], f: impl Fn(T) -> f32) -> Cow<'static, [f32]> {
        Cow::Owned(v.iter().map(|&x| f(x)).collect())
    }
    Ok(match x.dtype {
        DType::F32 => Cow::Borrowed(x.data::<f32>()?),
        DType::F64 => conv(x.data::<f64>()?, |v| v as f32),
        DType::F16 => conv(x.data::<f16>()?, f16::to_f32),
        DType::BF16 => conv(x.data::<bf16>()?, bf16::to_f32),
        DType::I8 => conv(x.data::<i8>()?, f32::from),
        DType::I16 => conv(x.data::<i16>()?, f32::from),
        DType::I32 => conv(x.data::<i32>()?, |v| v as f32),
        DType::I64 => conv(x.data::<i64>()?, |v| v as f32),
        DType::U8 => conv(x.data::<u8>()?, f32::from),
        DType::U16 => conv(x.data::<u16>()?, f32::from),
        DType::U32 => conv(x.data::<u32>()?, |v| v as f32),
        DType::U64 => conv(x.data::<u64>()?, |v| v as f32),
        d => {
            return Err(Error::Unimplemented(format!(
                "ScaleAndTranslate is not defined for {d}"
            )))
        }
    })
}

/// The inputs of `x`'s span (`span_size` from `start`, cut at `len`).
fn span_len(spans: &Spans, x: usize, len: usize) -> usize {
    (spans.starts[x] + spans.span_size).min(len) - spans.starts[x].min(len)
}

/// `GatherSpans`: `src` (`[b, ih, iw, c]`) resampled by `rows` (ih -> oh)
/// then `cols` (iw -> ow) into `dst` (`[b, oh, ow, c]`), as TensorFlow's
/// `GatherRows` then `GatherColumns`; rows of the outputs in parallel.
fn gather(
    src: &[f32],
    (b, ih, iw, c): (usize, usize, usize, usize),
    rows: &Spans,
    cols: &Spans,
    dst: &mut [f32],
) {
    let (oh, ow) = (rows.starts.len(), cols.starts.len());
    // Rows: intermediate[n, y] = sum_j w_j * src[n, start_y + j], in order.
    let in_row = iw * c;
    let mut mid = vec![0f32; b * oh * in_row];
    if in_row > 0 {
        for_row_chunks(&mut mid, in_row, |first, chunk| {
            for (i, out) in chunk.chunks_mut(in_row).enumerate() {
                let (n, y) = ((first + i) / oh, (first + i) % oh);
                let img = &src[n * ih * in_row..][..ih * in_row];
                let ws = &rows.weights[y * rows.span_size..];
                let start = rows.starts[y];
                for (j, &w) in ws[..span_len(rows, y, ih)].iter().enumerate() {
                    let line = &img[(start + j) * in_row..][..in_row];
                    for (o, &v) in out.iter_mut().zip(line) {
                        *o += w * v;
                    }
                }
            }
        });
    }
    // Columns: out[n, y, x] = sum_j w_j * intermediate[n, y, start_x + j].
    let out_row = ow * c;
    if out_row == 0 {
        return;
    }
    for_row_chunks(dst, out_row, |first, chunk| {
        for (i, out) in chunk.chunks_mut(out_row).enumerate() {
            let line = &mid[(first + i) * in_row..][..in_row];
            for (x, px) in out.chunks_mut(c).enumerate() {
                px.fill(0.0);
                let ws = &cols.weights[x * cols.span_size..];
                let start = cols.starts[x];
                for (j, &w) in ws[..span_len(cols, x, iw)].iter().enumerate() {
                    let v = &line[(start + j) * c..][..c];
                    for (o, &v) in px.iter_mut().zip(v) {
                        *o += w * v;
                    }
                }
            }
        }
    });
}

/// `[b, h, w, c]` of a 4-D shape, or an internal error (the checks come
/// first, in [`scale_and_translate_shape`] and its gradient's).
fn dims4(shape: &[usize], what: &str) -> Result<(usize, usize, usize, usize)> {
    match shape {
        &[b, h, w, c] => Ok((b, h, w, c)),
        _ => Err(Error::Internal(format!(
            "ScaleAndTranslate {what} is not 4-D: {}",
            fmt_shape(shape)
        ))),
    }
}

/// ScaleAndTranslate: `out` (float32 `[b, oh, ow, c]`) samples `images`
/// (`[b, ih, iw, c]`, any real type, read as float32) at `(y + 0.5) /
/// scale[0] - translation[0] / scale[0]` (rows) and likewise for columns
/// with index 1, through `kernel` (widened when downsampling if
/// `antialias`). Positions outside the image give 0.
pub fn scale_and_translate(
    images: &TensorView,
    scale: [f32; 2],
    translation: [f32; 2],
    kernel: SamplingKernel,
    antialias: bool,
    out: &mut TensorMut,
) -> Result<()> {
    let (b, ih, iw, c) = dims4(&images.shape, "input")?;
    let (ob, oh, ow, oc) = dims4(&out.shape, "output")?;
    if (ob, oc) != (b, c) || out.dtype != DType::F32 {
        return Err(Error::Internal(format!(
            "ScaleAndTranslate output {} {} does not fit input {}",
            out.dtype,
            fmt_shape(&out.shape),
            fmt_shape(&images.shape)
        )));
    }
    // TensorFlow returns before computing anything when the output is empty.
    if out.num_elements() == 0 {
        return Ok(());
    }
    let src = as_f32(images)?;
    if src.len() != b * ih * iw * c {
        return Err(Error::Internal("ScaleAndTranslate input is short".into()));
    }
    // Columns first, as TensorFlow (their errors come first).
    let cols = compute_spans(kernel, ow, iw, scale[1], translation[1], antialias)?;
    let rows = compute_spans(kernel, oh, ih, scale[0], translation[0], antialias)?;
    gather(&src, (b, ih, iw, c), &rows, &cols, out.data_mut::<f32>()?);
    Ok(())
}

/// ScaleAndTranslateGrad: `out` (float32 `[b, ih, iw, c]`, the original
/// image's height and width) from `grads` (float32 `[b, oh, ow, c]`, the
/// gradient of ScaleAndTranslate's output) with the forward's `scale`,
/// `translation`, `kernel` and `antialias`: the forward's adjoint, summed in
/// TensorFlow's order.
pub fn scale_and_translate_grad(
    grads: &TensorView,
    scale: [f32; 2],
    translation: [f32; 2],
    kernel: SamplingKernel,
    antialias: bool,
    out: &mut TensorMut,
) -> Result<()> {
    let (b, oh, ow, c) = dims4(&grads.shape, "gradient")?;
    let (ob, ih, iw, oc) = dims4(&out.shape, "output")?;
    if (ob, oc) != (b, c) || out.dtype != DType::F32 {
        return Err(Error::Internal(format!(
            "ScaleAndTranslateGrad output {} {} does not fit gradient {}",
            out.dtype,
            fmt_shape(&out.shape),
            fmt_shape(&grads.shape)
        )));
    }
    let g = grads.data::<f32>()?;
    if g.len() != b * oh * ow * c {
        return Err(Error::Internal(
            "ScaleAndTranslateGrad gradient is short".into(),
        ));
    }
    let cols = compute_spans(kernel, ow, iw, scale[1], translation[1], antialias)?;
    let cols = grad_spans(&cols, ow, iw);
    let rows = compute_spans(kernel, oh, ih, scale[0], translation[0], antialias)?;
    let rows = grad_spans(&rows, oh, ih);
    gather(g, (b, oh, ow, c), &rows, &cols, out.data_mut::<f32>()?);
    Ok(())
}

#[cfg(test)]
mod tests;
