//! Convolution kernels (NHWC): im2col + GEMM tiles, 1x1 as plain GEMM, depthwise direct.
//!
//! Conv2D splits the `M = N*Ho*Wo` output rows into tiles; each rayon task
//! gathers its tile's patches (im2col) into a task-local buffer and multiplies
//! it by the HWIO filter, which already is the `[kh*kw*cin, cout]` row-major
//! matrix, with a single-threaded `gemm` call writing straight into its rows
//! of the output. A 1x1, stride-1, unpadded convolution reads the input rows
//! directly (no copy). Groups run one GEMM per group on column slices.
//! float16 is widened to float32, computed and rounded once; bfloat16, and
//! float32 with `ConvGeom::lowp` set, multiply through `lowp_gemm` (AMX or
//! AVX512-BF16 where present) with float32 accumulation. Depthwise is direct
//! loops, not a GEMM: it ignores `lowp` (the plugin rounds its inputs
//! instead) and widens bfloat16 to float32 (exact products, float32 sums).
//! NCHW tensors are transposed to NHWC, computed and transposed back.
//!
//! Geometry (output sizes, padding, errors) follows TensorFlow's
//! `GetWindowedOutputSizeVerbose` and the checks of `conv_ops.cc` /
//! `depthwise_conv_op.cc`, with TensorFlow's error messages.

#[cfg(target_arch = "x86_64")]
use super::cpu::Simd;
use super::gemm_threads;
use super::lowp_gemm::{lowp_gemm_packed, selected_path, LowpSrc, LowpType, PackedB};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

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
    fn is_pointwise(&self) -> bool {
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
        super::winograd::eligible(g).then(|| super::winograd::conv2d(x, f, y, g, epilogue))
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

// ---------------------------------------------------------------- Conv2D ----

/// Finishes rows `[row0, row0 + rows)` of an NHWC Conv2D output (the
/// `[n*oh*ow, cout]` matrix), given as their bytes, while they are in cache:
/// the fused epilogue of `_TfaFused`.
pub type RowsEpilogue<'a> = dyn Fn(usize, &mut [u8]) -> Result<()> + Sync + 'a;

/// Conv2D with an epilogue run on each output tile right after its GEMM.
/// Returns whether it ran: only the float32 NHWC path (not low precision)
/// has tiles to run it on; elsewhere the caller finishes the output itself.
pub fn conv2d_with_epilogue(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &ConvGeom,
    epilogue: &RowsEpilogue,
) -> Result<bool> {
    let tiled = out.dtype == DType::F32 && g.format == DataFormat::Nhwc && g.lowp.is_none();
    if !tiled {
        conv2d(input, filter, out, g)?;
        return Ok(false);
    }
    let y = checked_output::<f32>(input, filter, out, g)?;
    if y.is_empty() {
        return Ok(true);
    }
    conv2d_nhwc_tiles(input.data::<f32>()?, filter.data()?, y, g, Some(epilogue))
}

/// Conv2D: `out` has `g.output_shape()`, `filter` is HWIO.
pub fn conv2d(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &ConvGeom,
) -> Result<()> {
    if out.num_elements() == 0 {
        return Ok(());
    }
    if g.cin == 0 {
        // Sums over no input channels.
        out.bytes_mut().fill(0);
        return Ok(());
    }
    check_shapes(
        input,
        filter,
        out,
        g,
        &[g.kh, g.kw, g.cin / g.groups, g.cout],
    )?;
    match out.dtype {
        DType::F32 => conv2d_typed(input.data::<f32>()?, filter.data()?, out.data_mut()?, g),
        DType::F64 => conv2d_typed(input.data::<f64>()?, filter.data()?, out.data_mut()?, g),
        DType::F16 => conv2d_typed(input.data::<f16>()?, filter.data()?, out.data_mut()?, g),
        DType::BF16 => conv2d_typed(input.data::<bf16>()?, filter.data()?, out.data_mut()?, g),
        d => {
            return Err(Error::Unimplemented(format!(
                "Conv2D is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// A tiled Conv2D's output elements, after the shape and dtype checks.
fn checked_output<'o, T: tfa_core::Element>(
    input: &TensorView,
    filter: &TensorView,
    out: &'o mut TensorMut,
    g: &ConvGeom,
) -> Result<&'o mut [T]> {
    let filter_shape = [g.kh, g.kw, g.cin / g.groups.max(1), g.cout];
    check_shapes(input, filter, out, g, &filter_shape)?;
    out.data_mut::<T>()
}

fn check_shapes(
    input: &TensorView,
    filter: &TensorView,
    out: &TensorMut,
    g: &ConvGeom,
    filter_shape: &[usize],
) -> Result<()> {
    let want_in = g.format.shape(g.n, g.h, g.w, g.cin);
    if input.shape != want_in || filter.shape != filter_shape || out.shape != g.output_shape() {
        return Err(Error::Internal(format!(
            "convolution shapes {:?} * {:?} -> {:?} do not match {g:?}",
            input.shape, filter.shape, out.shape
        )));
    }
    if input.dtype != out.dtype || filter.dtype != out.dtype {
        return Err(Error::Internal("convolution dtypes differ".into()));
    }
    Ok(())
}

trait ConvCompute: Widen {
    fn nhwc(x: &[Self], f: &[Self], y: &mut [Self], g: &ConvGeom);
}

fn conv2d_typed<T: ConvCompute>(x: &[T], f: &[T], y: &mut [T], g: &ConvGeom) {
    if y.is_empty() {
        return;
    }
    T::nhwc(x, f, y, g);
}

macro_rules! conv_direct {
    ($t:ty) => {
        impl ConvCompute for $t {
            fn nhwc(x: &[$t], f: &[$t], y: &mut [$t], g: &ConvGeom) {
                if g.format == DataFormat::Nhwc {
                    conv2d_nhwc(x, f, y, g);
                } else {
                    let xt = widened_nhwc(x, g);
                    let mut yt = vec![0.0; y.len()];
                    conv2d_nhwc(&xt, f, &mut yt, g);
                    store_nhwc(yt, y, g);
                }
            }
        }
    };
}
conv_direct!(f64);

impl ConvCompute for f32 {
    fn nhwc(x: &[f32], f: &[f32], y: &mut [f32], g: &ConvGeom) {
        let lowp = g.lowp.and_then(LowpType::from_dtype);
        match (g.format, lowp) {
            (DataFormat::Nhwc, None) => conv2d_nhwc(x, f, y, g),
            (DataFormat::Nhwc, Some(l)) => lowp_infallible(conv2d_nhwc_lowp(x, f, y, g, l, None)),
            (DataFormat::Nchw, _) => {
                let xt = widened_nhwc(x, g);
                let mut yt = vec![0.0; y.len()];
                match lowp {
                    Some(l) => lowp_infallible(conv2d_nhwc_lowp(&xt, f, &mut yt, g, l, None)),
                    None => conv2d_nhwc(&xt, f, &mut yt, g),
                }
                store_nhwc(yt, y, g);
            }
        }
    }
}

impl ConvCompute for f16 {
    fn nhwc(x: &[f16], f: &[f16], y: &mut [f16], g: &ConvGeom) {
        let xt = widened_nhwc(x, g);
        let ft: Vec<f32> = f.par_iter().map(|&v| v.widen()).collect();
        let mut yt = vec![0f32; y.len()];
        conv2d_nhwc(&xt, &ft, &mut yt, g);
        store_nhwc(yt, y, g);
    }
}

/// A low-precision convolution without an epilogue cannot fail.
pub(crate) fn lowp_infallible(r: Result<()>) {
    debug_assert!(r.is_ok(), "{r:?}");
}

/// bfloat16 multiplies as stored (AMX/AVX512-BF16 where present), float32
/// accumulation, output rounded once.
impl ConvCompute for bf16 {
    fn nhwc(x: &[bf16], f: &[bf16], y: &mut [bf16], g: &ConvGeom) {
        if g.format == DataFormat::Nhwc {
            // Tile by tile, each rounded once: no float32 copy of the output.
            return lowp_infallible(conv2d_nhwc_lowp(x, f, y, g, LowpType::Bf16, None));
        }
        let mut yt = vec![0f32; y.len()];
        let mut xt = vec![bf16::ZERO; x.len()];
        transpose_images(x, &mut xt, g.n, g.cin, g.h * g.w, |v| v);
        lowp_infallible(conv2d_nhwc_lowp(&xt, f, &mut yt, g, LowpType::Bf16, None));
        store_nhwc(yt, y, g);
    }
}

/// Finishes rows `[row0, row0 + rows)` of a bfloat16 Conv2D output (NHWC,
/// `[n*oh*ow, cout]`) on their float32 accumulators, before they are
/// rounded to bfloat16: the fused epilogue of a bfloat16 `_TfaFused`.
pub type RowsEpilogueF32<'a> = dyn Fn(usize, &mut [f32]) -> Result<()> + Sync + 'a;

/// bfloat16 Conv2D computed tile by tile: each tile's float32 accumulators
/// get `epilogue` and are then rounded to bfloat16 once (as oneDNN's and
/// XLA's bfloat16 fusions do), with no float32 copy of the whole output.
/// Returns whether the epilogue ran: NHWC only; elsewhere the caller
/// finishes the output itself.
pub fn conv2d_bf16_with_epilogue(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &ConvGeom,
    epilogue: &RowsEpilogueF32,
) -> Result<bool> {
    if out.dtype != DType::BF16 || g.format != DataFormat::Nhwc || g.cin == 0 {
        conv2d(input, filter, out, g)?;
        return Ok(false);
    }
    let y = checked_output::<bf16>(input, filter, out, g)?;
    if y.is_empty() {
        return Ok(true);
    }
    conv2d_nhwc_lowp(
        input.data::<bf16>()?,
        filter.data()?,
        y,
        g,
        LowpType::Bf16,
        Some(epilogue),
    )?;
    Ok(true)
}

/// What a low-precision convolution writes: float32 (the accumulators
/// themselves) or bfloat16 (each tile's accumulators rounded once).
pub(crate) trait LowpOut: Copy + Default + Send + Sync {
    /// The tile itself when it holds float32.
    fn as_f32(tile: &mut [Self]) -> Option<&mut [f32]>;
    /// Stores finished accumulators.
    fn store(acc: &[f32], tile: &mut [Self]);
}

impl LowpOut for f32 {
    fn as_f32(tile: &mut [f32]) -> Option<&mut [f32]> {
        Some(tile)
    }
    fn store(acc: &[f32], tile: &mut [f32]) {
        tile.copy_from_slice(acc);
    }
}

impl LowpOut for bf16 {
    fn as_f32(_: &mut [bf16]) -> Option<&mut [f32]> {
        None
    }
    fn store(acc: &[f32], tile: &mut [bf16]) {
        super::lowp_gemm::narrow_bf16(acc, tile);
    }
}

/// Bytes of float32 accumulators one tile of a bfloat16 output holds (the
/// tile is rounded while in L2).
const LOWP_ACC_BYTES: usize = 1 << 20;

/// NHWC Conv2D through `lowp_gemm`: `y[n*oh*ow, cout] = round(im2col(x)) @
/// round(f)`, float32 accumulation, `epilogue` on each tile's accumulators.
/// Same tiling as [`conv2d_nhwc`]; the filter is rounded and packed once per
/// group and shared by every tile.
pub(crate) fn conv2d_nhwc_lowp<S: LowpSrc + Default, O: LowpOut>(
    x: &[S],
    f: &[S],
    y: &mut [O],
    g: &ConvGeom,
    lowp: LowpType,
    epilogue: Option<&RowsEpilogueF32>,
) -> Result<()> {
    let m = g.n * g.oh * g.ow;
    let cout = g.cout;
    if m == 0 || cout == 0 {
        return Ok(());
    }
    let cin_g = g.cin / g.groups;
    let cout_g = cout / g.groups;
    let k = g.kh * g.kw * cin_g;
    let direct = g.is_pointwise();
    let threads = rayon::current_num_threads().max(1);
    let flops = m * k * cout;
    let path = selected_path(lowp);
    let filters: Vec<PackedB> = if k == 0 || cout_g == 0 {
        Vec::new()
    } else {
        (0..g.groups)
            .map(|grp| {
                // SAFETY: group grp's filter columns [grp*cout_g, +cout_g) of
                // k rows of stride cout lie inside `f` (validated HWIO shape).
                unsafe {
                    PackedB::new(
                        path,
                        k,
                        cout_g,
                        f[grp * cout_g..].as_ptr(),
                        (cout as isize, 1),
                        lowp,
                        flops >= 1 << 18,
                    )
                }
            })
            .collect()
    };
    if filters.is_empty() && epilogue.is_none() {
        y.fill(O::default());
        return Ok(());
    }
    if direct && g.groups == 1 && epilogue.is_none() {
        if let Some(y) = O::as_f32(y) {
            // SAFETY: x is [m, k] row-major; y is [m, cout] and aliases neither.
            unsafe {
                lowp_gemm_packed(
                    m,
                    x.as_ptr(),
                    (k as isize, 1),
                    &filters[0],
                    y,
                    cout,
                    flops >= 1 << 18,
                )
            };
            return Ok(());
        }
    }
    // Rows per task: an im2col tile that fits the cache, but enough tasks
    // to keep every thread busy; a bfloat16 output's accumulators stay in L2.
    let by_cache = (TILE_BYTES / (k.max(1) * std::mem::size_of::<S>())).clamp(32, 4096);
    let by_balance = m.div_ceil(threads * 4).max(32);
    let mut tile = if direct {
        by_balance.min(1024)
    } else {
        by_cache.min(by_balance)
    };
    if O::as_f32(&mut []).is_none() {
        tile = tile.min((LOWP_ACC_BYTES / (4 * cout)).max(32));
    }
    // One tile: im2col (unless pointwise), the products of every group into
    // `acc`, the epilogue on them.
    let compute = |m0: usize, acc: &mut [f32], buf: &mut Vec<S>| -> Result<()> {
        let rows = acc.len() / cout;
        if filters.is_empty() {
            acc.fill(0.0);
        }
        for (grp, pb) in filters.iter().enumerate() {
            let (lhs, lhs_rs): (*const S, usize) = if direct {
                (x[m0 * g.cin + grp * cin_g..].as_ptr(), g.cin)
            } else {
                buf.resize(rows * k, S::default());
                im2col(x, g, m0, rows, grp * cin_g, cin_g, buf);
                (buf.as_ptr(), k)
            };
            // SAFETY: lhs addresses rows x k elements with row stride lhs_rs
            // inside `x` or `buf`; the destination, rows x cout_g at row
            // stride cout from column grp*cout_g, lies inside `acc`, which
            // aliases neither.
            unsafe {
                lowp_gemm_packed(
                    rows,
                    lhs,
                    (lhs_rs as isize, 1),
                    pb,
                    &mut acc[grp * cout_g..],
                    cout,
                    false,
                )
            };
        }
        match epilogue {
            Some(e) => e(m0, acc),
            None => Ok(()),
        }
    };
    let run = |(t, yc): (usize, &mut [O]), (buf, acc): &mut (Vec<S>, Vec<f32>)| -> Result<()> {
        let m0 = t * tile;
        if let Some(direct_acc) = O::as_f32(yc) {
            return compute(m0, direct_acc, buf);
        }
        acc.resize(yc.len(), 0.0);
        compute(m0, acc, buf)?;
        O::store(acc, yc);
        Ok(())
    };
    if threads == 1 || flops < (1 << 16) {
        let mut bufs = Default::default();
        for (t, yc) in y.chunks_mut(tile * cout).enumerate() {
            run((t, yc), &mut bufs)?;
        }
        Ok(())
    } else {
        y.par_chunks_mut(tile * cout)
            .enumerate()
            .try_for_each_init(Default::default, |bufs, item| run(item, bufs))
    }
}

/// Target bytes of one im2col tile (in L2 with the packed filter on current
/// server cores; measured: 0.5-1 MiB beats 192 KiB by a few percent).
pub(crate) const TILE_BYTES: usize = 768 * 1024;

/// NHWC Conv2D on compute types: `y[n*oh*ow, cout] = im2col(x) @ f`.
pub(crate) fn conv2d_nhwc<T: Compute>(x: &[T], f: &[T], y: &mut [T], g: &ConvGeom) {
    // Without an epilogue nothing can fail.
    let _ = conv2d_nhwc_tiles(x, f, y, g, None);
}

/// `dst[m, n] = lhs[m, k] @ rhs[k, n]`, each operand row-major with the row
/// stride given beside its pointer (a column block of a wider matrix when
/// the stride exceeds its width).
///
/// # Safety
/// Each pointer must be valid for every element its rows address, and `dst`
/// must alias neither source.
pub(crate) unsafe fn gemm_rows<T: Compute>(
    m: usize,
    n: usize,
    k: usize,
    dst: (*mut T, usize),
    lhs: (*const T, usize),
    rhs: (*const T, usize),
    threads: usize,
) {
    // SAFETY: each operand is `rows x cols` row-major at its given row stride
    // (unit column stride), valid for every element those rows address, and
    // `dst` aliases neither source (this function's contract). `read_dst` is
    // false, so `dst` is only written.
    unsafe {
        gemm_threads::gemm(
            m,
            n,
            k,
            (dst.0, dst.1 as isize),
            false,
            (lhs.0, (lhs.1 as isize, 1)),
            (rhs.0, (rhs.1 as isize, 1)),
            T::ZERO,
            T::ONE,
            threads,
        )
    }
}

/// Runs `epilogue` (if any) on output rows `[row0, row0 + rows)`, given as
/// their bytes.
pub(crate) fn run_epilogue<T: Copy>(
    epilogue: Option<&RowsEpilogue>,
    row0: usize,
    rows: &mut [T],
) -> Result<()> {
    match epilogue {
        // SAFETY: plain numbers viewed as their bytes.
        Some(e) => e(row0, unsafe {
            std::slice::from_raw_parts_mut(
                rows.as_mut_ptr() as *mut u8,
                std::mem::size_of_val(rows),
            )
        }),
        None => Ok(()),
    }
}

/// Pointwise filters up to this size are repacked per tile so that the
/// epilogue runs in cache (measured at batch 32 on ResNet50 shapes: 1.04-1.13x
/// up to 256 x 1024; a 512 x 2048 filter ran 0.77x).
const TILED_POINTWISE_BYTES: usize = 1 << 20;

/// [`conv2d_nhwc`], running `epilogue` on each tile of output rows as soon
/// as its GEMM is done. Returns whether it ran: an ungrouped pointwise
/// convolution with a filter above [`TILED_POINTWISE_BYTES`] stays one GEMM,
/// whose packed filter all threads share (per tile, repacking a 2048 x 512
/// filter would cost more than the epilogue's pass over memory saves), and
/// leaves the epilogue to the caller.
fn conv2d_nhwc_tiles<T: Compute>(
    x: &[T],
    f: &[T],
    y: &mut [T],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Result<bool> {
    let m = g.n * g.oh * g.ow;
    let cout = g.cout;
    if m == 0 || cout == 0 {
        return Ok(true);
    }
    let cin_g = g.cin / g.groups;
    let cout_g = cout / g.groups;
    let k = g.kh * g.kw * cin_g;
    let finish = |row0: usize, rows: &mut [T]| run_epilogue(epilogue, row0, rows);
    if k == 0 {
        y.fill(T::ZERO);
        return finish(0, y).map(|_| true);
    }
    if let Some(done) = T::winograd(x, f, y, g, epilogue) {
        return done.map(|()| true);
    }
    let direct = g.is_pointwise();
    let threads = rayon::current_num_threads().max(1);
    // Rows per task: a tile that fits the cache, but enough tasks to keep
    // every thread busy (and balanced) on small problems.
    let elem = std::mem::size_of::<T>();
    let by_cache = (TILE_BYTES / (k * elem)).clamp(16, 2048);
    let by_balance = m.div_ceil(threads * 4).max(16);
    let tile = if direct {
        (TILE_BYTES / (cout * elem)).clamp(64, 1024).min(by_balance)
    } else {
        by_cache.min(by_balance)
    };
    let flops = m * k * cout;
    if direct && g.groups == 1 && (epilogue.is_none() || k * cout * elem > TILED_POINTWISE_BYTES) {
        // One GEMM on the input itself; gemm shares its packed filter
        // between threads.
        let par = if flops >= (1 << 18) { threads } else { 1 };
        // SAFETY: x is [m, k] and f is [k, cout] row-major, y is [m, cout];
        // y aliases neither.
        unsafe {
            gemm_rows(
                m,
                cout,
                k,
                (y.as_mut_ptr(), cout),
                (x.as_ptr(), k),
                (f.as_ptr(), cout),
                par,
            );
        }
        return Ok(false);
    }
    if !direct && g.groups == 1 && k * cout * elem > BIG_FILTER_BYTES && threads > 1 {
        return big_filter_gemm(x, f, y, g, epilogue).map(|()| true);
    }
    let run = |(t, yc): (usize, &mut [T]), buf: &mut Vec<T>| {
        let m0 = t * tile;
        let rows = yc.len() / cout;
        for grp in 0..g.groups {
            let (lhs, lhs_rs): (*const T, usize) = if direct {
                (x[m0 * g.cin + grp * cin_g..].as_ptr(), g.cin)
            } else {
                buf.resize(rows * k, T::ZERO);
                im2col(x, g, m0, rows, grp * cin_g, cin_g, buf);
                (buf.as_ptr(), k)
            };
            // SAFETY: lhs addresses rows x k elements with row stride lhs_rs
            // inside `x` or `buf`; the filter columns [grp*cout_g, +cout_g)
            // of k rows of stride cout lie inside `f`; the destination rows
            // x cout_g block with row stride cout lies inside `yc`, which
            // aliases neither source.
            unsafe {
                gemm_rows(
                    rows,
                    cout_g,
                    k,
                    (yc.as_mut_ptr().add(grp * cout_g), cout),
                    (lhs, lhs_rs),
                    (f.as_ptr().add(grp * cout_g), cout),
                    1,
                );
            }
        }
        finish(m0, yc)
    };
    if threads == 1 || flops < (1 << 16) {
        let mut buf = Vec::new();
        for (t, yc) in y.chunks_mut(tile * cout).enumerate() {
            run((t, yc), &mut buf)?;
        }
    } else {
        y.par_chunks_mut(tile * cout)
            .enumerate()
            .try_for_each_init(Vec::new, |buf, item| run(item, buf))?;
    }
    Ok(true)
}

/// Filters above this size take [`big_filter_gemm`]: gemm packs the filter
/// on every call, and in cache-sized tiles of a few dozen rows (512 input
/// channels at 3x3) repacking megabytes per tile costs more than the GEMM
/// (measured: a 3x3 512->512 layer at 7x7 ran at half the speed).
const BIG_FILTER_BYTES: usize = 2 * TILE_BYTES;

/// Bytes of patches one [`big_filter_gemm`] step materialises.
const BIG_PATCH_BYTES: usize = 64 << 20;

/// An ungrouped im2col convolution with a large filter: patches of many rows
/// at once (filled in parallel), one GEMM over them whose packed filter all
/// threads share, then the epilogue on the finished rows in parallel.
fn big_filter_gemm<T: Compute>(
    x: &[T],
    f: &[T],
    y: &mut [T],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Result<()> {
    let (cout, k) = (g.cout, g.kh * g.kw * g.cin);
    let m = g.n * g.oh * g.ow;
    let elem = std::mem::size_of::<T>();
    let step = (BIG_PATCH_BYTES / (k * elem)).max(256).min(m);
    let threads = rayon::current_num_threads().max(1);
    let mut patches = vec![T::ZERO; step * k];
    for (s, ys) in y.chunks_mut(step * cout).enumerate() {
        let (m0, rows) = (s * step, ys.len() / cout);
        let part = rows.div_ceil(threads * 4).max(1);
        patches[..rows * k]
            .par_chunks_mut(part * k)
            .enumerate()
            .for_each(|(i, buf)| im2col(x, g, m0 + i * part, buf.len() / k, 0, g.cin, buf));
        // SAFETY: patches is [rows, k], f is [k, cout], ys is [rows, cout],
        // all row-major; ys aliases neither. (With few rows, batch 1,
        // gemm_threads gives each thread bands of output channels.)
        unsafe {
            gemm_rows(
                rows,
                cout,
                k,
                (ys.as_mut_ptr(), cout),
                (patches.as_ptr(), k),
                (f.as_ptr(), cout),
                threads,
            );
        }
        if epilogue.is_some() {
            ys.par_chunks_mut(part * cout)
                .enumerate()
                .try_for_each(|(i, rows)| run_epilogue(epilogue, m0 + i * part, rows))?;
        }
    }
    Ok(())
}

/// Patches of output rows `[m0, m0 + rows)` for input channels
/// `[c0, c0 + cg)`: row r holds (ky, kx, c) at `(ky * kw + kx) * cg + c`,
/// zeros where the window hangs over the padding.
pub(crate) fn im2col<T: Copy + Default>(
    x: &[T],
    g: &ConvGeom,
    m0: usize,
    rows: usize,
    c0: usize,
    cg: usize,
    buf: &mut [T],
) {
    let k = g.kh * g.kw * cg;
    let (mut ox, rest) = (m0 % g.ow, m0 / g.ow);
    let (mut oy, mut n) = (rest % g.oh, rest / g.oh);
    for r in 0..rows {
        let row = &mut buf[r * k..(r + 1) * k];
        let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        let img = &x[n * g.h * g.w * g.cin..];
        for ky in 0..g.kh {
            let iy = iy0 + (ky * g.dh) as isize;
            let dst_ky = &mut row[ky * g.kw * cg..(ky + 1) * g.kw * cg];
            if iy < 0 || iy >= g.h as isize {
                dst_ky.fill(T::default());
                continue;
            }
            let src_row = &img[iy as usize * g.w * g.cin..];
            if cg == g.cin && g.dw == 1 && ix0 >= 0 && ix0 as usize + g.kw <= g.w {
                // The whole kw x cin run is contiguous in the input.
                let s = ix0 as usize * g.cin;
                dst_ky.copy_from_slice(&src_row[s..s + g.kw * cg]);
                continue;
            }
            for kx in 0..g.kw {
                let ix = ix0 + (kx * g.dw) as isize;
                let dst = &mut dst_ky[kx * cg..(kx + 1) * cg];
                if ix < 0 || ix >= g.w as isize {
                    dst.fill(T::default());
                } else {
                    let s = ix as usize * g.cin + c0;
                    dst.copy_from_slice(&src_row[s..s + cg]);
                }
            }
        }
        ox += 1;
        if ox == g.ow {
            ox = 0;
            oy += 1;
            if oy == g.oh {
                oy = 0;
                n += 1;
            }
        }
    }
}

// ------------------------------------------------------------- depthwise ----

/// DepthwiseConv2dNative: filter `[kh, kw, cin, multiplier]`, output channel
/// `c * multiplier + m`.
pub fn depthwise_conv2d(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &ConvGeom,
) -> Result<()> {
    if out.num_elements() == 0 {
        return Ok(());
    }
    check_shapes(input, filter, out, g, &[g.kh, g.kw, g.cin, g.multiplier])?;
    match out.dtype {
        DType::F32 => depthwise_typed(input.data::<f32>()?, filter.data()?, out.data_mut()?, g),
        DType::F64 => depthwise_typed(input.data::<f64>()?, filter.data()?, out.data_mut()?, g),
        DType::F16 => depthwise_typed(input.data::<f16>()?, filter.data()?, out.data_mut()?, g),
        DType::BF16 => depthwise_typed(input.data::<bf16>()?, filter.data()?, out.data_mut()?, g),
        d => {
            return Err(Error::Unimplemented(format!(
                "DepthwiseConv2dNative is not defined for {d}"
            )))
        }
    }
    Ok(())
}

fn depthwise_typed<T: Widen>(x: &[T], f: &[T], y: &mut [T], g: &ConvGeom) {
    if y.is_empty() {
        return;
    }
    let ft: Vec<T::W> = f.iter().map(|&v| v.widen()).collect();
    let row = g.ow * g.cout;
    if g.format == DataFormat::Nhwc && std::any::TypeId::of::<T>() == std::any::TypeId::of::<T::W>()
    {
        // SAFETY: T and T::W are the same type (checked just above), so the
        // same pointer and length describe the same elements.
        let x: &[T::W] = unsafe { std::slice::from_raw_parts(x.as_ptr() as *const T::W, x.len()) };
        // SAFETY: as for `x`; the new slice reborrows `y` exclusively.
        let y: &mut [T::W] =
            unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut T::W, y.len()) };
        par_rows(y, row, g, |r, out| depthwise_row(x, &ft, g, r, out));
        return;
    }
    let xt = widened_nhwc(x, g);
    let mut yt = vec![T::W::default(); y.len()];
    par_rows(&mut yt, row, g, |r, out| depthwise_row(&xt, &ft, g, r, out));
    store_nhwc::<T>(yt, y, g);
}

/// Runs `f(row_index, row)` over the `n * oh` output rows, in parallel when
/// the work pays for it.
pub(crate) fn par_rows<W: Send>(
    y: &mut [W],
    row: usize,
    g: &ConvGeom,
    f: impl Fn(usize, &mut [W]) + Sync,
) {
    if row == 0 {
        return;
    }
    let work = y.len() * g.kh * g.kw;
    if work < (1 << 15) || rayon::current_num_threads() == 1 {
        y.chunks_mut(row).enumerate().for_each(|(r, o)| f(r, o));
    } else {
        y.par_chunks_mut(row).enumerate().for_each(|(r, o)| f(r, o));
    }
}

/// One output row `r = n * oh + oy` of a depthwise convolution (NHWC), with
/// the widest vector instructions the CPU has.
pub(crate) fn depthwise_row<W: Compute>(x: &[W], f: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    #[cfg(target_arch = "x86_64")]
    match super::cpu::simd_level() {
        // SAFETY: simd_level() reports Avx512 only where the CPU has
        // AVX-512 F/DQ/VL/BW, AVX2 and FMA (cpu::probe).
        Simd::Avx512 => return unsafe { depthwise_row_avx512(x, f, g, r, out) },
        // SAFETY: Avx2 only where the CPU has AVX2 and FMA.
        Simd::Avx2 => return unsafe { depthwise_row_avx2(x, f, g, r, out) },
        Simd::Base => {}
    }
    depthwise_row_impl::<W, false>(x, f, g, r, out)
}

/// [`depthwise_row`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn depthwise_row_avx512<W: Compute>(
    x: &[W],
    f: &[W],
    g: &ConvGeom,
    r: usize,
    out: &mut [W],
) {
    depthwise_row_impl::<W, true>(x, f, g, r, out)
}

/// [`depthwise_row`] compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_row_avx2<W: Compute>(x: &[W], f: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    depthwise_row_impl::<W, true>(x, f, g, r, out)
}

/// Channels per register block.
const CB: usize = 64;

#[inline(always)]
fn madd<W: Compute, const FMA: bool>(a: W, b: W, c: W) -> W {
    if FMA {
        a.fused(b, c)
    } else {
        a * b + c
    }
}

/// The valid kernel taps of output pixels and their window's first row.
struct Window {
    ky: std::ops::Range<usize>,
    kx: std::ops::Range<usize>,
    iy0: isize,
}

/// Channels `[c0, c0 + B)` of `P` neighbouring depthwise output pixels
/// (multiplier 1) that share the valid taps of `win` (pixel p's window
/// starts at column `ix0s[p]`), accumulated in registers; each filter load
/// serves all P pixels. `out` starts at channel c0 of the first pixel.
#[inline(always)]
fn dw_block<W: Compute, const FMA: bool, const B: usize, const P: usize>(
    img: &[W],
    f: &[W],
    g: &ConvGeom,
    win: &Window,
    ix0s: [isize; P],
    c0: usize,
    out: &mut [W],
) {
    let mut acc = [[W::ZERO; B]; P];
    for ky in win.ky.clone() {
        let iy = (win.iy0 + (ky * g.dh) as isize) as usize;
        for kx in win.kx.clone() {
            let fo = (ky * g.kw + kx) * g.cout + c0;
            let fs: &[W; B] = f[fo..fo + B].try_into().unwrap();
            for p in 0..P {
                let ix = (ix0s[p] + (kx * g.dw) as isize) as usize;
                let xo = (iy * g.w + ix) * g.cin + c0;
                let xs: &[W; B] = img[xo..xo + B].try_into().unwrap();
                for j in 0..B {
                    acc[p][j] = madd::<W, FMA>(xs[j], fs[j], acc[p][j]);
                }
            }
        }
    }
    for (p, a) in acc.iter().enumerate() {
        out[p * g.cout..p * g.cout + B].copy_from_slice(a);
    }
}

/// All channels of `P` neighbouring output pixels (multiplier 1), in
/// register blocks of `BIG`, 16, 4 and 1 channels.
#[inline(always)]
fn dw_pixels<W: Compute, const FMA: bool, const P: usize, const BIG: usize>(
    img: &[W],
    f: &[W],
    g: &ConvGeom,
    win: &Window,
    ix0s: [isize; P],
    out: &mut [W],
) {
    let cin = g.cin;
    let mut c0 = 0;
    while c0 + BIG <= cin {
        dw_block::<W, FMA, BIG, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += BIG;
    }
    while c0 + 16 <= cin {
        dw_block::<W, FMA, 16, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += 16;
    }
    while c0 + 4 <= cin {
        dw_block::<W, FMA, 4, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += 4;
    }
    while c0 < cin {
        dw_block::<W, FMA, 1, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += 1;
    }
}

#[inline(always)]
fn depthwise_row_impl<W: Compute, const FMA: bool>(
    x: &[W],
    f: &[W],
    g: &ConvGeom,
    r: usize,
    out: &mut [W],
) {
    let (n, oy) = (r / g.oh, r % g.oh);
    let (cin, cout, mult) = (g.cin, g.cout, g.multiplier);
    let img = &x[n * g.h * g.w * cin..(n + 1) * g.h * g.w * cin];
    let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
    // Valid kernel rows for this output row.
    let ky0 = if iy0 < 0 {
        ((-iy0) as usize).div_ceil(g.dh)
    } else {
        0
    };
    let ky1 = g.kh.min(
        if iy0 >= g.h as isize {
            0
        } else {
            (g.h as isize - iy0) as usize
        }
        .div_ceil(g.dh),
    );
    // Window origin column and valid kernel columns of output column ox.
    let cols = |ox: usize| {
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        let kx0 = if ix0 < 0 {
            ((-ix0) as usize).div_ceil(g.dw)
        } else {
            0
        };
        let kx1 = g.kw.min(
            if ix0 >= g.w as isize {
                0
            } else {
                (g.w as isize - ix0) as usize
            }
            .div_ceil(g.dw),
        );
        (ix0, kx0, kx1)
    };
    let mut ox = 0;
    while ox < g.ow {
        let (ix0, kx0, kx1) = cols(ox);
        if mult == 1 {
            let full = |k0: usize, k1: usize| k0 == 0 && k1 == g.kw;
            let pair = ox + 1 < g.ow && full(kx0, kx1) && {
                let (_, a, b) = cols(ox + 1);
                full(a, b)
            };
            let win = Window {
                ky: ky0..ky1,
                kx: kx0..kx1,
                iy0,
            };
            let px = &mut out[ox * cout..];
            if pair {
                let ix1 = ix0 + g.sw as isize;
                dw_pixels::<W, FMA, 2, 32>(img, f, g, &win, [ix0, ix1], px);
                ox += 2;
            } else {
                dw_pixels::<W, FMA, 1, CB>(img, f, g, &win, [ix0], px);
                ox += 1;
            }
            continue;
        }
        let acc_px = &mut out[ox * cout..(ox + 1) * cout];
        ox += 1;
        {
            acc_px.fill(W::ZERO);
            for ky in ky0..ky1 {
                let iy = (iy0 + (ky * g.dh) as isize) as usize;
                for kx in kx0..kx1 {
                    let ix = (ix0 + (kx * g.dw) as isize) as usize;
                    let xs = &img[(iy * g.w + ix) * cin..][..cin];
                    let fk = &f[(ky * g.kw + kx) * cout..][..cout];
                    for ((a, &xv), fm) in acc_px
                        .chunks_exact_mut(mult)
                        .zip(xs)
                        .zip(fk.chunks_exact(mult))
                    {
                        for (ai, &fv) in a.iter_mut().zip(fm) {
                            *ai = madd::<W, FMA>(xv, fv, *ai);
                        }
                    }
                }
            }
        }
    }
}

// ----------------------------------------------------------------- tests ----

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn attrs<'a>(
        strides: &'a [i64],
        dilations: &'a [i64],
        padding: Padding,
        explicit: &'a [i64],
        fmt: DataFormat,
    ) -> WindowAttrs<'a> {
        WindowAttrs {
            strides,
            dilations,
            padding,
            explicit_paddings: explicit,
            data_format: fmt,
        }
    }

    /// Naive reference on NHWC f64 data; `depthwise` selects the filter meaning.
    fn reference(x: &[f64], f: &[f64], g: &ConvGeom, depthwise: bool) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.oh * g.ow * g.cout];
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for co in 0..g.cout {
                        let mut s = 0.0;
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let px = ((n * g.h + iy as usize) * g.w + ix as usize) * g.cin;
                                if depthwise {
                                    let c = co / g.multiplier;
                                    s += x[px + c] * f[(ky * g.kw + kx) * g.cout + co];
                                } else {
                                    let cg = g.cin / g.groups;
                                    let grp = co / (g.cout / g.groups);
                                    for ci in 0..cg {
                                        s += x[px + grp * cg + ci]
                                            * f[((ky * g.kw + kx) * cg + ci) * g.cout + co];
                                    }
                                }
                            }
                        }
                        y[((n * g.oh + oy) * g.ow + ox) * g.cout + co] = s;
                    }
                }
            }
        }
        y
    }

    fn to_format(x: &[f64], n: usize, h: usize, w: usize, c: usize, fmt: DataFormat) -> Vec<f64> {
        if fmt == DataFormat::Nhwc {
            return x.to_vec();
        }
        let mut t = vec![0.0; x.len()];
        nhwc_to_nchw(x, &mut t, n, c, h * w);
        t
    }

    /// Conv2D with `lowp` BF16/F16 equals the float32 convolution of
    /// pre-rounded inputs; bfloat16 data (always through `lowp_gemm`) equals
    /// it up to one output rounding.
    #[test]
    fn lowp_conv2d_matches_f32_on_rounded_inputs() {
        let mut rng = crate::test_rng();
        let mut cases: Vec<(Vec<usize>, Vec<usize>, ConvGeom)> =
            (0..40).map(|_| random_case(&mut rng, false)).collect();
        let a = attrs(
            &[1, 1, 1, 1],
            &[1, 1, 1, 1],
            Padding::Same,
            &[],
            DataFormat::Nhwc,
        );
        for (x, f) in [
            (vec![2, 9, 9, 64], vec![3, 3, 64, 70]), // im2col tiles
            (vec![2, 7, 7, 96], vec![1, 1, 96, 40]), // 1x1: one GEMM
            (vec![1, 6, 6, 48], vec![1, 1, 16, 33]), // 1x1, 3 groups
            (vec![1, 30, 30, 8], vec![3, 3, 8, 16]), // many tiles
        ] {
            let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
            cases.push((x, f, g));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (i, (shape, fshape, g)) in cases.into_iter().enumerate() {
            let lowp = if i % 4 == 3 { DType::F16 } else { DType::BF16 };
            let round = |v: f32| match lowp {
                DType::F16 => f16::from_f32(v).to_f32(),
                _ => bf16::from_f32(v).to_f32(),
            };
            let x: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let f: Vec<f32> = (0..fshape.iter().product::<usize>())
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let (rx, rf): (Vec<f32>, Vec<f32>) = (
                x.iter().map(|&v| round(v)).collect(),
                f.iter().map(|&v| round(v)).collect(),
            );
            let oshape = g.output_shape();
            let len: usize = oshape.iter().product();
            let run = |x: &[f32], f: &[f32], lowp: Option<DType>| {
                let mut y = vec![f32::NAN; len];
                pool.install(|| {
                    conv2d(
                        &TensorView::from_slice(shape.clone(), x),
                        &TensorView::from_slice(fshape.clone(), f),
                        &mut TensorMut::from_slice(oshape.clone(), &mut y),
                        &ConvGeom { lowp, ..g },
                    )
                    .unwrap()
                });
                y
            };
            let got = run(&x, &f, Some(lowp));
            let want = run(&rx, &rf, None);
            // Each output sums at most kh*kw*cin_g products of size <= 4.
            let tol = 1e-5 * 4.0 * (g.kh * g.kw * g.cin / g.groups) as f32;
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= tol, "{lowp} {g:?}: {a} vs {b}");
            }
            if lowp == DType::BF16 {
                let bx: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
                let bf: Vec<bf16> = f.iter().map(|&v| bf16::from_f32(v)).collect();
                let mut y = vec![bf16::NAN; len];
                pool.install(|| {
                    conv2d(
                        &TensorView::from_slice(shape.clone(), &bx),
                        &TensorView::from_slice(fshape.clone(), &bf),
                        &mut TensorMut::from_slice(oshape.clone(), &mut y),
                        &g,
                    )
                    .unwrap()
                });
                for (a, b) in y.iter().zip(&want) {
                    let a = a.to_f32();
                    assert!(
                        (a - b).abs() <= b.abs() / 256.0 + tol,
                        "bf16 {g:?}: {a} vs {b}"
                    );
                }
                bf16_epilogue_matches_rounded_f32(&pool, &bx, &bf, &shape, &fshape, &g);
            }
        }
    }

    /// The bfloat16 tiled convolution with a float32 epilogue equals the
    /// float32 accumulators, finished whole, rounded once: every row gets the
    /// epilogue once, with its own row index.
    fn bf16_epilogue_matches_rounded_f32(
        pool: &rayon::ThreadPool,
        x: &[bf16],
        f: &[bf16],
        shape: &[usize],
        fshape: &[usize],
        g: &ConvGeom,
    ) {
        let oshape = g.output_shape();
        let len: usize = oshape.iter().product();
        let cout = g.cout.max(1);
        let finish = |row: usize, v: &mut [f32]| {
            for (j, e) in v.iter_mut().enumerate() {
                *e = (*e + 1e-3 * (row * cout + j) as f32).max(0.0);
            }
        };
        let epilogue = |row0: usize, rows: &mut [f32]| -> Result<()> {
            for (r, v) in rows.chunks_mut(cout).enumerate() {
                finish(row0 + r, v);
            }
            Ok(())
        };
        let mut got = vec![bf16::NAN; len];
        let ran = pool.install(|| {
            conv2d_bf16_with_epilogue(
                &TensorView::from_slice(shape.to_vec(), x),
                &TensorView::from_slice(fshape.to_vec(), f),
                &mut TensorMut::from_slice(oshape.clone(), &mut got),
                g,
                &epilogue,
            )
            .unwrap()
        });
        assert_eq!(ran, g.format == DataFormat::Nhwc && g.cin > 0, "{g:?}");
        if !ran || len == 0 {
            return;
        }
        let mut acc = vec![f32::NAN; len];
        lowp_infallible(conv2d_nhwc_lowp(x, f, &mut acc, g, LowpType::Bf16, None));
        for (r, v) in acc.chunks_mut(cout).enumerate() {
            finish(r, v);
        }
        let mut want = vec![bf16::NAN; len];
        crate::host::lowp_gemm::narrow_bf16(&acc, &mut want);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{g:?} element {i}: {a} vs {b}");
        }
    }

    fn random_case(rng: &mut impl Rng, depthwise: bool) -> (Vec<usize>, Vec<usize>, ConvGeom) {
        loop {
            let fmt = if rng.random_bool(0.3) {
                DataFormat::Nchw
            } else {
                DataFormat::Nhwc
            };
            let padding =
                [Padding::Same, Padding::Valid, Padding::Explicit][rng.random_range(0..3)];
            let (n, h, w) = (
                rng.random_range(0..3),
                rng.random_range(1..12),
                rng.random_range(1..12),
            );
            let groups = if depthwise || rng.random_bool(0.6) {
                1
            } else {
                rng.random_range(1..4)
            };
            let cg = rng.random_range(1..5);
            let cin = groups * cg;
            let (kh, kw) = (rng.random_range(1..5), rng.random_range(1..5));
            let last = if depthwise {
                rng.random_range(1..4)
            } else {
                groups * rng.random_range(1..5)
            };
            let (sh, sw) = (rng.random_range(1..5), rng.random_range(1..5));
            let (dh, dw) = if rng.random_bool(0.3) {
                (rng.random_range(1..4), rng.random_range(1..4))
            } else {
                (1, 1)
            };
            let shape = fmt.shape(n, h, w, cin);
            let filter = vec![kh, kw, if depthwise { cin } else { cg }, last];
            let d = fmt.dims();
            let mut strides = [1i64; 4];
            strides[d[1]] = sh;
            strides[d[2]] = sw;
            let mut dil = [1i64; 4];
            dil[d[1]] = dh;
            dil[d[2]] = dw;
            let mut explicit = vec![];
            if padding == Padding::Explicit {
                explicit = vec![0i64; 8];
                for i in [d[1], d[2]] {
                    explicit[2 * i] = rng.random_range(0..4);
                    explicit[2 * i + 1] = rng.random_range(0..4);
                }
            }
            let a = attrs(&strides, &dil, padding, &explicit, fmt);
            let geom = if depthwise {
                depthwise_geometry(&shape, &filter, &a, ConvPass::Forward)
            } else {
                conv2d_geometry(&shape, &filter, &a, ConvPass::Forward)
            };
            if let Ok(g) = geom {
                return (shape, filter, g);
            }
        }
    }

    fn check<T: Element>(
        depthwise: bool,
        cases: usize,
        from: fn(f64) -> T,
        to: fn(T) -> f64,
        tol: f64,
    ) {
        let mut rng = crate::test_rng();
        for _ in 0..cases {
            let (shape, fshape, g) = random_case(&mut rng, depthwise);
            let xn: Vec<f64> = (0..shape.iter().product::<usize>())
                .map(|_| to(from(rng.random_range(-1.0..1.0))))
                .collect();
            let fv: Vec<f64> = (0..fshape.iter().product::<usize>())
                .map(|_| to(from(rng.random_range(-1.0..1.0))))
                .collect();
            let want_nhwc = reference(&xn, &fv, &g, depthwise);
            let want = to_format(&want_nhwc, g.n, g.oh, g.ow, g.cout, g.format);
            let x_in = to_format(&xn, g.n, g.h, g.w, g.cin, g.format);
            let xt: Vec<T> = x_in.iter().map(|&v| from(v)).collect();
            let ft: Vec<T> = fv.iter().map(|&v| from(v)).collect();
            let oshape = g.output_shape();
            let mut y = vec![from(f64::NAN); oshape.iter().product()];
            {
                let xv = TensorView::from_slice(shape.clone(), &xt);
                let fvv = TensorView::from_slice(fshape.clone(), &ft);
                let mut yv = TensorMut::from_slice(oshape.clone(), &mut y);
                if depthwise {
                    depthwise_conv2d(&xv, &fvv, &mut yv, &g).unwrap();
                } else {
                    conv2d(&xv, &fvv, &mut yv, &g).unwrap();
                }
            }
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                let a = to(*a);
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{g:?} at {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn conv2d_matches_reference() {
        check::<f32>(false, 300, |v| v as f32, |v| v as f64, 1e-5);
        check::<f64>(false, 100, |v| v, |v| v, 1e-12);
        check::<f16>(false, 50, f16::from_f64, |v| v.to_f64(), 1e-2);
        check::<bf16>(false, 50, bf16::from_f64, |v| v.to_f64(), 5e-2);
    }

    #[test]
    fn depthwise_matches_reference() {
        check::<f32>(true, 300, |v| v as f32, |v| v as f64, 1e-5);
        check::<f64>(true, 100, |v| v, |v| v, 1e-12);
        check::<f16>(true, 50, f16::from_f64, |v| v.to_f64(), 1e-2);
        check::<bf16>(true, 50, bf16::from_f64, |v| v.to_f64(), 5e-2);
    }

    #[test]
    fn large_convs_use_parallel_tiles() {
        // Big enough for the tiled parallel path, 1x1 direct and 3x3 im2col.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            for (k, pad) in [(1usize, Padding::Valid), (3, Padding::Same)] {
                let shape = vec![2, 17, 19, 24];
                let fshape = vec![k, k, 24, 40];
                let a = attrs(&[1, 1, 1, 1], &[1, 1, 1, 1], pad, &[], DataFormat::Nhwc);
                let g = conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward).unwrap();
                let mut rng = crate::test_rng();
                let x: Vec<f64> = (0..2 * 17 * 19 * 24)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let f: Vec<f64> = (0..k * k * 24 * 40)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let want = reference(&x, &f, &g, false);
                let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let fs: Vec<f32> = f.iter().map(|&v| v as f32).collect();
                let mut y = vec![0f32; want.len()];
                conv2d(
                    &TensorView::from_slice(shape, &xs),
                    &TensorView::from_slice(fshape, &fs),
                    &mut TensorMut::from_slice(g.output_shape(), &mut y),
                    &g,
                )
                .unwrap();
                for (a, b) in y.iter().zip(&want) {
                    assert!((*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()));
                }
            }
        });
    }

    #[test]
    fn wide_depthwise_uses_channel_blocks() {
        let mut rng = crate::test_rng();
        for (c, mult, s, pad) in [
            (40, 1, 1, Padding::Same),
            (150, 1, 1, Padding::Same),
            (130, 1, 2, Padding::Valid),
            (37, 1, 2, Padding::Valid),
            (19, 3, 2, Padding::Same),
        ] {
            let shape = vec![2, 9, 11, c];
            let fshape = vec![3, 3, c, mult];
            let strides = [1, s, s, 1];
            let a = attrs(&strides, &[1, 1, 1, 1], pad, &[], DataFormat::Nhwc);
            let g = depthwise_geometry(&shape, &fshape, &a, ConvPass::Forward).unwrap();
            let x: Vec<f64> = (0..2 * 9 * 11 * c)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let f: Vec<f64> = (0..9 * c * mult)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let want = reference(&x, &f, &g, true);
            let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let fs: Vec<f32> = f.iter().map(|&v| v as f32).collect();
            let mut y = vec![f32::NAN; want.len()];
            depthwise_conv2d(
                &TensorView::from_slice(shape, &xs),
                &TensorView::from_slice(fshape, &fs),
                &mut TensorMut::from_slice(g.output_shape(), &mut y),
                &g,
            )
            .unwrap();
            for (a, b) in y.iter().zip(&want) {
                assert!(
                    (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{a} vs {b}"
                );
            }
        }
    }

    /// The im2col paths for large filters (one shared-packing GEMM, or bands
    /// of output channels) and the pointwise ones (tiled, or one GEMM): same
    /// values as the reference, and the epilogue sees every row once with
    /// its true row index.
    #[test]
    fn gemm_paths_match_reference_and_run_epilogue_once() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let nhwc = DataFormat::Nhwc;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (x, f, s) in [
            ([2, 9, 7, 160], [3, 3, 160, 300], 2), // stride 2: not Winograd
            ([4, 16, 16, 160], [3, 3, 160, 300], 2), // 256 rows: gemm's threads
            ([2, 9, 7, 64], [1, 1, 64, 96], 1),    // pointwise, tiled
            ([1, 4, 5, 600], [1, 1, 600, 600], 1), // pointwise, one GEMM
            ([1, 5, 6, 300], [3, 3, 300, 300], 1), // too few tiles for Winograd
        ] {
            let strides = [1, s, s, 1];
            let a = attrs(&strides, &[1, 1, 1, 1], Padding::Same, &[], nhwc);
            let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
            assert!(!crate::host::winograd::eligible(&g));
            let xs: Vec<f32> = (0..x.iter().product::<usize>())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let fs: Vec<f32> = (0..f.iter().product::<usize>())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let wide = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
            let want = reference(&wide(&xs), &wide(&fs), &g, false);
            let mut y = vec![f32::NAN; want.len()];
            let seen = std::sync::Mutex::new(vec![0u32; g.n * g.oh * g.ow]);
            // Adds the row index to every value of the row.
            let e = |row0: usize, bytes: &mut [u8]| -> Result<()> {
                // SAFETY: the bytes of whole f32 rows, f32-aligned.
                let rows = unsafe {
                    std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut f32, bytes.len() / 4)
                };
                for (i, r) in rows.chunks_mut(g.cout).enumerate() {
                    seen.lock().unwrap()[row0 + i] += 1;
                    r.iter_mut().for_each(|v| *v += (row0 + i) as f32);
                }
                Ok(())
            };
            let ran = pool
                .install(|| conv2d_nhwc_tiles(&xs, &fs, &mut y, &g, Some(&e)))
                .unwrap();
            if !ran {
                // One GEMM: the caller finishes the output.
                assert!(g.is_pointwise() && f[2] * f[3] * 4 > TILED_POINTWISE_BYTES);
                // SAFETY: plain numbers viewed as their bytes.
                e(0, unsafe {
                    std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut u8, y.len() * 4)
                })
                .unwrap();
            }
            assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
            for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                let b = b + (i / g.cout) as f64;
                assert!(
                    (*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn geometry_follows_tensorflow() {
        let nhwc = DataFormat::Nhwc;
        let a = attrs(&[1, 2, 2, 1], &[1, 1, 1, 1], Padding::Same, &[], nhwc);
        let g = conv2d_geometry(&[1, 7, 8, 3], &[3, 3, 3, 5], &a, ConvPass::Forward).unwrap();
        assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (4, 4, 1, 0));
        let a = attrs(&[1, 1, 1, 1], &[1, 1, 1, 1], Padding::Valid, &[], nhwc);
        let e =
            conv2d_geometry(&[1, 15, 15, 3], &[18, 1, 3, 5], &a, ConvPass::Forward).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Computed output size would be negative: -2 [input_size: 15, effective_filter_size: 18, stride: 1]"
        );
        let e = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 3, 6], &a, ConvPass::Forward).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input depth must be evenly divisible by filter depth: 4 vs 3"
        );
        let g = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 2, 3], &a, ConvPass::Forward).unwrap();
        assert!(g
            .check_groups()
            .unwrap_err()
            .to_string()
            .contains("output depth must be evenly divisible by number of groups: 3 vs 2"));
        // No output channels: nothing to compute, no group check (as TensorFlow).
        let g = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 4, 0], &a, ConvPass::Forward).unwrap();
        assert!(g.is_empty() && g.check_groups().is_err());
        let e = conv2d_geometry(&[5, 5, 4], &[1, 1, 2, 3], &a, ConvPass::Forward).unwrap_err();
        assert_eq!(e.to_string(), "input must be 4-dimensional[5,5,4]");
        let a = attrs(&[2, 1, 1, 1], &[1, 1, 1, 1], Padding::Valid, &[], nhwc);
        let e = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 4, 3], &a, ConvPass::Forward).unwrap_err();
        assert!(
            matches!(e, Error::Unimplemented(ref m) if m.contains("strides in the batch and depth"))
        );
        let e =
            depthwise_geometry(&[1, 5, 5, 4], &[1, 1, 4, 3], &a, ConvPass::Backward).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(ref m) if m.contains("strides in the batch and depth"))
        );
        let a = attrs(
            &[1, 1, 1, 1],
            &[1, 1, 1, 1],
            Padding::Explicit,
            &[0, 0, 1, 1, 1, 1],
            nhwc,
        );
        assert!(
            conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 4, 3], &a, ConvPass::Forward)
                .unwrap_err()
                .to_string()
                .contains("must contain 8 values")
        );
        let a = attrs(&[1, 1, 1, 1], &[1, 1, 1, 1], Padding::Valid, &[], nhwc);
        let e =
            depthwise_geometry(&[1, 5, 5, 4], &[1, 1, 3, 2], &a, ConvPass::Forward).unwrap_err();
        assert_eq!(
            e.to_string(),
            "input and filter must have the same depth: 4 vs 3"
        );
    }
}
