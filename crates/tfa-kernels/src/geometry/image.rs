//! Image shape rules: the resizes' and their gradients' checks
//! (`ImageResizerState`, `ImageResizerGradientState`, messages included)
//! and output shapes.

use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result};

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ResizeAttrs {
    pub align_corners: bool,
    pub half_pixel_centers: bool,
}

fn invalid<T>(m: String) -> Result<T> {
    Err(Error::InvalidArgument(m))
}

/// Both `ImageResizerState` and `ImageResizerGradientState` refuse the two
/// flags together (ResizeNearestNeighborGrad's kernel does not check them).
fn check_flags(a: ResizeAttrs) -> Result<()> {
    if a.half_pixel_centers && a.align_corners {
        return invalid("If half_pixel_centers is True, align_corners must be False.".into());
    }
    Ok(())
}

/// The forward checks (`ImageResizerState`): returns `[batch, out_h, out_w,
/// channels]` for input `shape` and the requested `size` (of tensor shape
/// `size_shape`).
pub fn resize_shape(
    shape: &[usize],
    size_shape: &[usize],
    size: &[i64],
    a: ResizeAttrs,
) -> Result<Vec<usize>> {
    check_flags(a)?;
    if shape.len() != 4 {
        return invalid(format!("input must be 4-dimensional{}", fmt_shape(shape)));
    }
    if shape[3] == 0 {
        return invalid("image must have at least one channel".into());
    }
    if shape[1] == 0 || shape[2] == 0 {
        return invalid("input image must be of non-zero size".into());
    }
    if shape[1] > i32::MAX as usize || shape[2] > i32::MAX as usize {
        return invalid("input sizes must be between 0 and max int32".into());
    }
    let (oh, ow) = output_size(size_shape, size)?;
    Ok(vec![shape[0], oh, ow, shape[3]])
}

/// The `size` input of a resize: a 1-D tensor of two positive values.
fn output_size(size_shape: &[usize], size: &[i64]) -> Result<(usize, usize)> {
    if size_shape.len() != 1 {
        return invalid(format!(
            "shape_t must be 1-dimensional{}",
            fmt_shape(size_shape)
        ));
    }
    if size.len() != 2 {
        return invalid(format!(
            "shape_t must have two elements{}",
            fmt_shape(size_shape)
        ));
    }
    if size[0] <= 0 || size[1] <= 0 {
        return invalid("output dimensions must be positive".into());
    }
    Ok((size[0] as usize, size[1] as usize))
}

/// The gradient checks (`ImageResizerGradientState`): `grads` is the float32
/// gradient of the resized image, `original` the original image's shape.
pub fn resize_grad_shape(
    grads: &[usize],
    grads_dtype: DType,
    original: &[usize],
    a: ResizeAttrs,
) -> Result<Vec<usize>> {
    check_flags(a)?;
    if grads.len() != 4 {
        return invalid(format!(
            "input_grad must be 4-dimensional{}",
            fmt_shape(grads)
        ));
    }
    if grads_dtype != DType::F32 {
        return invalid(format!("input_grad must be of type float{grads_dtype}"));
    }
    if grads[1] == 0 || grads[2] == 0 {
        return invalid("resized dimensions must be positive".into());
    }
    if original.len() != 4 {
        return invalid(format!(
            "original_image must be 4-dimensional{}",
            fmt_shape(original)
        ));
    }
    if original[1] == 0 || original[2] == 0 {
        return invalid("original dimensions must be positive".into());
    }
    Ok(vec![grads[0], original[1], original[2], grads[3]])
}

/// ResizeNearestNeighborGrad's checks: `grads` 4-D, `size` two positive
/// values; returns the output shape.
pub fn resize_nearest_grad_shape(
    grads: &[usize],
    size_shape: &[usize],
    size: &[i64],
    _a: ResizeAttrs,
) -> Result<Vec<usize>> {
    if grads.len() != 4 {
        return invalid(format!("input must be 4-dimensional{}", fmt_shape(grads)));
    }
    let (h, w) = output_size(size_shape, size)?;
    Ok(vec![grads[0], h, w, grads[3]])
}

/// TensorFlow's `SamplingKernelType`: the filter both passes sample with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SamplingKernel {
    Lanczos1,
    Lanczos3,
    Lanczos5,
    /// Radius 1.5, sigma 0.5.
    Gaussian,
    Box,
    Triangle,
    KeysCubic,
    MitchellCubic,
}

impl SamplingKernel {
    /// TensorFlow's `SamplingKernelTypeFromString` (ASCII case-insensitive)
    /// and the error its kernels' constructors give for anything else.
    pub fn parse(name: &str) -> Result<SamplingKernel> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "lanczos1" => SamplingKernel::Lanczos1,
            "lanczos3" => SamplingKernel::Lanczos3,
            "lanczos5" => SamplingKernel::Lanczos5,
            "gaussian" => SamplingKernel::Gaussian,
            "box" => SamplingKernel::Box,
            "triangle" => SamplingKernel::Triangle,
            "keyscubic" => SamplingKernel::KeysCubic,
            "mitchellcubic" => SamplingKernel::MitchellCubic,
            _ => return invalid(format!("Unrecognized kernel type: {name}")),
        })
    }
}

/// The forward checks of `ScaleAndTranslateOp::Compute` up to the `scale`
/// input, in its order and words: `images` 4-D, `size` (of tensor shape
/// `size_shape`) two positive values, a non-empty image with channels.
/// Returns the output shape `[batch, size[0], size[1], channels]`.
pub fn scale_and_translate_shape(
    images: &[usize],
    size_shape: &[usize],
    size: &[i64],
) -> Result<Vec<usize>> {
    if images.len() != 4 {
        return invalid(format!("input must be 4-dimensional{}", fmt_shape(images)));
    }
    if size_shape.len() != 1 {
        return invalid(format!(
            "output_shape_t must be 1-dimensional{}",
            fmt_shape(size_shape)
        ));
    }
    if size.len() != 2 {
        return invalid(format!(
            "output_shape_t must have two elements{}",
            fmt_shape(size_shape)
        ));
    }
    // FastBoundsCheck: strictly below int32's maximum.
    if images[1] >= i32::MAX as usize || images[2] >= i32::MAX as usize {
        return invalid("input sizes must be between 0 and max int32".into());
    }
    let (oh, ow) = (size[0], size[1]);
    if oh <= 0 || ow <= 0 {
        return invalid("output dimensions must be positive".into());
    }
    if images[3] == 0 {
        return invalid("image must have at least one channel".into());
    }
    if images[1] == 0 || images[2] == 0 {
        return invalid("input image must be of non-zero size".into());
    }
    let (Ok(oh), Ok(ow)) = (usize::try_from(oh), usize::try_from(ow)) else {
        return invalid("output dimensions must be positive".into());
    };
    Ok(vec![images[0], oh, ow, images[3]])
}

/// TensorFlow's `DataTypeString`, for the one message that prints a dtype.
fn tf_type_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::F16 => "half",
        d => d.name(),
    }
}

/// The gradient checks of `ScaleAndTranslateGradOp::Compute` before its
/// `scale` input: `grads` 4-D float32, `original` (the original image's
/// shape) 4-D. Returns the output shape `[grads batch, original height,
/// original width, grads channels]`; as in TensorFlow, the original's batch
/// and channels are not compared with the gradient's.
pub fn scale_and_translate_grad_shape(
    grads: &[usize],
    grads_dtype: DType,
    original: &[usize],
) -> Result<Vec<usize>> {
    if grads.len() != 4 {
        return invalid(format!(
            "input_grad must be 4-dimensional{}",
            fmt_shape(grads)
        ));
    }
    if grads_dtype != DType::F32 {
        return invalid(format!(
            "input_grad must be of type float{}",
            tf_type_name(grads_dtype)
        ));
    }
    if original.len() != 4 {
        return invalid(format!(
            "original_image must be 4-dimensional{}",
            fmt_shape(original)
        ));
    }
    if original[1] >= i32::MAX as usize || original[2] >= i32::MAX as usize {
        return invalid("original sizes must be between 0 and max int32".into());
    }
    Ok(vec![grads[0], original[1], original[2], grads[3]])
}

/// The `scale` and `translation` inputs (TensorFlow's `GetValues` and the
/// positive-scale check, in its order): each a 1-D float32 tensor of two
/// values, `[rows, columns]`. Returns `(scale, translation)`.
pub fn scale_and_translation(
    scale_shape: &[usize],
    scale: &[f32],
    translation_shape: &[usize],
    translation: &[f32],
) -> Result<([f32; 2], [f32; 2])> {
    let pair = |shape: &[usize], v: &[f32]| -> Result<[f32; 2]> {
        if shape.len() != 1 {
            return invalid(format!("t must be 1-dimensional{}", fmt_shape(shape)));
        }
        match v {
            &[a, b] => Ok([a, b]),
            _ => invalid(format!("t must have two elements{}", fmt_shape(shape))),
        }
    };
    let s = pair(scale_shape, scale)?;
    // `> 0` is false for NaN: NaN is refused too.
    let positive = s[0] > 0.0 && s[1] > 0.0;
    if !positive {
        return invalid("Scale must be greater than zero.".into());
    }
    let t = pair(translation_shape, translation)?;
    Ok((s, t))
}
