//! Window attributes and Conv2D/depthwise geometry: output sizes, padding
//! and TensorFlow's errors (`GetWindowedOutputSizeVerbose`, `conv_ops.cc`).

use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result};

// ------------------------------------------------------------ attributes ----

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
    Explicit,
}

impl Padding {
    pub fn parse(s: &str) -> Result<Padding> {
        match s {
            "SAME" => Ok(Padding::Same),
            "VALID" => Ok(Padding::Valid),
            "EXPLICIT" => Ok(Padding::Explicit),
            _ => Err(Error::InvalidArgument(format!("Unknown padding type: {s}"))),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Nhwc,
    Nchw,
}

impl DataFormat {
    pub fn parse(s: &str) -> Result<DataFormat> {
        match s {
            "NHWC" => Ok(DataFormat::Nhwc),
            "NCHW" => Ok(DataFormat::Nchw),
            _ => Err(Error::InvalidArgument("Invalid data format".into())),
        }
    }

    /// Indices of (N, H, W, C) in a 4-D shape of this format.
    pub fn dims(self) -> [usize; 4] {
        match self {
            DataFormat::Nhwc => [0, 1, 2, 3],
            DataFormat::Nchw => [0, 2, 3, 1],
        }
    }

    /// `[n, h, w, c]` of a shape in this format.
    pub fn nhwc(self, shape: &[usize]) -> [usize; 4] {
        let d = self.dims();
        [shape[d[0]], shape[d[1]], shape[d[2]], shape[d[3]]]
    }

    /// The shape in this format of logical `[n, h, w, c]`.
    pub fn shape(self, n: usize, h: usize, w: usize, c: usize) -> Vec<usize> {
        match self {
            DataFormat::Nhwc => vec![n, h, w, c],
            DataFormat::Nchw => vec![n, c, h, w],
        }
    }
}

/// Window attributes shared by convolutions and pools, as the op gives them
/// (lists in data-format order).
#[derive(Copy, Clone, Debug)]
pub struct WindowAttrs<'a> {
    pub strides: &'a [i64],
    /// Empty for ops without dilations (pools).
    pub dilations: &'a [i64],
    pub padding: Padding,
    pub explicit_paddings: &'a [i64],
    pub data_format: DataFormat,
}

/// TensorFlow's `CheckValidPadding` for 4-D tensors: explicit paddings are 8
/// non-negative values, zero in batch and depth; empty otherwise.
pub(crate) fn check_explicit_paddings(
    padding: Padding,
    explicit: &[i64],
    fmt: DataFormat,
) -> Result<()> {
    if padding == Padding::Explicit {
        if explicit.len() != 8 {
            return Err(Error::InvalidArgument(format!(
                "explicit_paddings attribute must contain 8 values, but got: {}",
                explicit.len()
            )));
        }
        if explicit.iter().any(|&p| p < 0) {
            return Err(Error::InvalidArgument(
                "All elements of explicit_paddings must be nonnegative".into(),
            ));
        }
        let [n, _, _, c] = fmt.dims();
        if explicit[2 * n] != 0
            || explicit[2 * n + 1] != 0
            || explicit[2 * c] != 0
            || explicit[2 * c + 1] != 0
        {
            return Err(Error::InvalidArgument(
                "Nonzero explicit padding in the batch or depth dimensions is not supported".into(),
            ));
        }
    } else if !explicit.is_empty() {
        return Err(Error::InvalidArgument(
            "explicit_paddings attribute must be empty if the padding attribute is not EXPLICIT"
                .into(),
        ));
    }
    Ok(())
}

/// One spatial dimension of a window op: output size and padding before.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dim {
    pub out: usize,
    pub pad_before: usize,
}

/// TensorFlow's `GetWindowedOutputSizeVerbose`. Computed in i128: explicit
/// paddings are int64 attributes and may be anything.
pub(crate) fn windowed_output(
    input: usize,
    k: usize,
    dilation: usize,
    stride: i64,
    padding: Padding,
    explicit: (i64, i64),
) -> Result<Dim> {
    if stride <= 0 {
        return Err(Error::InvalidArgument(format!(
            "Stride must be > 0, but got {stride}"
        )));
    }
    if dilation < 1 {
        return Err(Error::InvalidArgument(format!(
            "Dilation rate must be >= 1, but got {dilation}"
        )));
    }
    let (input, k, dilation, stride) = (input as i128, k as i128, dilation as i128, stride as i128);
    let eff = (k - 1) * dilation + 1;
    let (out, pad) = match padding {
        Padding::Valid => ((input - eff + stride) / stride, 0),
        Padding::Explicit => (
            (input + explicit.0 as i128 + explicit.1 as i128 - eff + stride) / stride,
            explicit.0 as i128,
        ),
        Padding::Same => {
            let out = (input + stride - 1) / stride;
            let needed = ((out - 1) * stride + eff - input).max(0);
            (out, needed / 2)
        }
    };
    if out < 0 {
        return Err(Error::InvalidArgument(format!(
            "Computed output size would be negative: {out} [input_size: {input}, effective_filter_size: {eff}, stride: {stride}]"
        )));
    }
    let too_large = || Error::InvalidArgument(format!("Computed output size {out} is too large"));
    Ok(Dim {
        out: usize::try_from(out).map_err(|_| too_large())?,
        pad_before: usize::try_from(pad.max(0)).map_err(|_| too_large())?,
    })
}

/// Which error a stride or a dilation in the batch or depth dimension is.
/// TensorFlow's default float32 kernels (oneDNN) raise UnimplementedError
/// for strides in the forward convolutions, InvalidArgumentError for
/// dilations and for everything in the gradients.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConvPass {
    Forward,
    Backward,
}

/// Strides and dilations checks of `InitConv2DParameters`; returns
/// `(stride_h, stride_w, dilation_h, dilation_w)`.
fn conv_strides_dilations(a: &WindowAttrs, pass: ConvPass) -> Result<(usize, usize, usize, usize)> {
    let unsupported: fn(String) -> Error = match pass {
        ConvPass::Forward => Error::Unimplemented,
        ConvPass::Backward => Error::InvalidArgument,
    };
    let [n, h, w, c] = a.data_format.dims();
    if a.dilations.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window dilations field must specify 4 dimensions".into(),
        ));
    }
    if a.strides.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window strides field must specify 4 dimensions".into(),
        ));
    }
    if a.strides[n] != 1 || a.strides[c] != 1 {
        return Err(unsupported(
            "Current implementation does not yet support strides in the batch and depth dimensions."
                .into(),
        ));
    }
    if a.strides[h] <= 0 || a.strides[w] <= 0 {
        return Err(Error::InvalidArgument(
            "Row and column strides should be larger than 0.".into(),
        ));
    }
    if a.dilations[n] != 1 || a.dilations[c] != 1 {
        return Err(Error::InvalidArgument(
            "Current implementation does not yet support dilations in the batch and depth dimensions."
                .into(),
        ));
    }
    if a.dilations[h] <= 0 || a.dilations[w] <= 0 {
        return Err(Error::InvalidArgument(
            "Dilated rates should be larger than 0.".into(),
        ));
    }
    check_explicit_paddings(a.padding, a.explicit_paddings, a.data_format)?;
    Ok((
        a.strides[h] as usize,
        a.strides[w] as usize,
        a.dilations[h] as usize,
        a.dilations[w] as usize,
    ))
}

/// Explicit paddings `(before, after)` of the H and W dimensions.
fn explicit_hw(a: &WindowAttrs) -> ((i64, i64), (i64, i64)) {
    if a.padding != Padding::Explicit {
        return ((0, 0), (0, 0));
    }
    let [_, h, w, _] = a.data_format.dims();
    let e = a.explicit_paddings;
    ((e[2 * h], e[2 * h + 1]), (e[2 * w], e[2 * w + 1]))
}

// -------------------------------------------------------------- geometry ----

/// Everything a convolution kernel needs, in NHWC terms.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub kh: usize,
    pub kw: usize,
    /// Output channels (Conv2D: filter's last dim; depthwise: cin * multiplier).
    pub cout: usize,
    /// Conv2D: input channels / filter in-channels. Depthwise: unused (1).
    pub groups: usize,
    /// Depthwise channel multiplier (1 for Conv2D).
    pub multiplier: usize,
    pub oh: usize,
    pub ow: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub format: DataFormat,
    /// Conv2D on float32 only: multiply in this type (BF16/F16: inputs
    /// rounded, float32 accumulation and output). `None`: the graph dtype.
    /// Depthwise and the gradients ignore it (see `conv2d`).
    pub lowp: Option<DType>,
}

impl ConvGeom {
    /// A 1x1, stride-1, unpadded convolution: the input is already the
    /// im2col matrix, so one GEMM on it does.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.sh == 1
            && self.sw == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.oh == self.h
            && self.ow == self.w
    }

    /// The output shape in the op's data format.
    pub fn output_shape(&self) -> Vec<usize> {
        self.format.shape(self.n, self.oh, self.ow, self.cout)
    }
}

fn check_rank4(input: &[usize], filter: &[usize]) -> Result<()> {
    if input.len() != 4 {
        return Err(Error::InvalidArgument(format!(
            "input must be 4-dimensional{}",
            fmt_shape(input)
        )));
    }
    if filter.len() != 4 {
        return Err(Error::InvalidArgument(format!(
            "filter must be 4-dimensional: {}",
            fmt_shape(filter)
        )));
    }
    Ok(())
}

/// Conv2D geometry: input in `a.data_format`, filter HWIO `[kh, kw, cin/groups, cout]`.
/// The checks of TensorFlow's `ComputeConv2DDimension`; those its launcher
/// makes only when there is something to compute are `check_groups`.
pub fn conv2d_geometry(
    input: &[usize],
    filter: &[usize],
    a: &WindowAttrs,
    pass: ConvPass,
) -> Result<ConvGeom> {
    let (sh, sw, dh, dw) = conv_strides_dilations(a, pass)?;
    check_rank4(input, filter)?;
    let [n, h, w, cin] = a.data_format.nhwc(input);
    let (kh, kw, fin, cout) = (filter[0], filter[1], filter[2], filter[3]);
    if fin == 0 {
        return Err(Error::InvalidArgument(format!(
            "filter depth must be stricly positive, got {fin}"
        )));
    }
    if cin % fin != 0 {
        return Err(Error::InvalidArgument(format!(
            "input depth must be evenly divisible by filter depth: {cin} vs {fin}"
        )));
    }
    let (eh, ew) = explicit_hw(a);
    let dy = windowed_output(h, kh, dh, sh as i64, a.padding, eh)?;
    let dx = windowed_output(w, kw, dw, sw as i64, a.padding, ew)?;
    Ok(ConvGeom {
        n,
        h,
        w,
        cin,
        kh,
        kw,
        cout,
        groups: cin / fin,
        multiplier: 1,
        oh: dy.out,
        ow: dx.out,
        sh,
        sw,
        dh,
        dw,
        pad_top: dy.pad_before,
        pad_left: dx.pad_before,
        format: a.data_format,
        lowp: None,
    })
}

impl ConvGeom {
    /// Does the output (`ConvGeom::output_shape`) have no elements?
    pub fn is_empty(&self) -> bool {
        self.n * self.oh * self.ow * self.cout == 0
    }

    /// The checks TensorFlow's Conv2D launcher makes once there is output to
    /// compute (an empty output skips them): a filter with elements, and
    /// output channels that split into the groups.
    pub fn check_groups(&self) -> Result<()> {
        if self.cin == 0 {
            // No input channels (TensorFlow 2.21 takes it): zeros.
            return Ok(());
        }
        if self.kh * self.kw * self.cout == 0 {
            return Err(Error::InvalidArgument(
                "filter must not have zero elements (i.e. all dimensions must be non-zero)".into(),
            ));
        }
        if !self.cout.is_multiple_of(self.groups) || self.cout < self.groups {
            return Err(Error::InvalidArgument(format!(
                "output depth must be evenly divisible by number of groups: {} vs {}",
                self.cout, self.groups
            )));
        }
        Ok(())
    }
}

/// DepthwiseConv2dNative geometry: filter `[kh, kw, cin, multiplier]`.
pub fn depthwise_geometry(
    input: &[usize],
    filter: &[usize],
    a: &WindowAttrs,
    pass: ConvPass,
) -> Result<ConvGeom> {
    let (sh, sw, dh, dw) = conv_strides_dilations(a, pass)?;
    check_rank4(input, filter)?;
    let [n, h, w, cin] = a.data_format.nhwc(input);
    let (kh, kw, fin, mult) = (filter[0], filter[1], filter[2], filter[3]);
    if cin != fin {
        return Err(Error::InvalidArgument(format!(
            "input and filter must have the same depth: {cin} vs {fin}"
        )));
    }
    let (eh, ew) = explicit_hw(a);
    let dy = windowed_output(h, kh, dh, sh as i64, a.padding, eh)?;
    let dx = windowed_output(w, kw, dw, sw as i64, a.padding, ew)?;
    Ok(ConvGeom {
        n,
        h,
        w,
        cin,
        kh,
        kw,
        cout: cin * mult,
        groups: 1,
        multiplier: mult,
        oh: dy.out,
        ow: dx.out,
        sh,
        sw,
        dh,
        dw,
        pad_top: dy.pad_before,
        pad_left: dx.pad_before,
        format: a.data_format,
        lowp: None,
    })
}
