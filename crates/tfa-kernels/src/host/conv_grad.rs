//! Convolution gradients (NHWC compute, NCHW transposed in and out; half
//! types in float32, rounded once):
//!
//! * backprop-filter: `dW[kh*kw*cin_g, cout_g] = im2col(x)^T · dy` per
//!   group, the `M = n*oh*ow` rows split into parts (one per thread when M
//!   is large), each part accumulating tile GEMMs into its own partial
//!   filter, the partials summed at the end. 1x1 stride-1 unpadded
//!   convolutions read the input rows directly (no im2col).
//! * backprop-input: `dcol = dy · W^T` per tile of output pixels, then
//!   col2im (scatter-add) into dx. Tiles are bands of output rows; bands
//!   whose input footprints cannot overlap run in parallel (every image,
//!   even bands first, then odd bands). 1x1 stride-1 unpadded is one GEMM.
//! * depthwise: direct loops vectorised over channels; input gradient as a
//!   gather per input row, filter gradient with per-part partial filters.
//!
//! Conv2D gradients of bfloat16 data, and of float32 with `ConvGeom::lowp`,
//! run their GEMMs through `lowp_gemm` (see `grad_lowp`); bfloat16 NHWC
//! filter gradients and stride-1 input gradients read the bfloat16 tensors
//! as stored (`conv_grad_lowp`).

use super::conv::{
    conv2d_nhwc, im2col, transpose_images, Compute, ConvGeom, DataFormat, Widen, TILE_BYTES,
};
use super::conv::{depthwise_row, par_rows};
use super::conv_grad_lowp::{filter_grad_lowp, input_grad_lowp};
#[cfg(target_arch = "x86_64")]
use super::cpu::{simd_level, Simd};
use super::lowp_gemm::{narrow_bf16, LowpType};
use half::{bf16, f16};
use rayon::prelude::*;
use std::borrow::Cow;
use std::ops::Range;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

mod depthwise;
mod input;
pub(in crate::host) mod winograd;
use depthwise::{depthwise_filter_grad, depthwise_input_grad};
use input::input_grad;
pub(super) use input::{col2im, flip_transpose, transposed_geometry};

// -------------------------------------------------------------- layouts ----

/// `x` (`[n, hw, c]` in `fmt`) as NHWC compute-type data, borrowed when it
/// already is.
pub(crate) fn load_nhwc<T: Widen>(
    x: &[T],
    n: usize,
    hw: usize,
    c: usize,
    fmt: DataFormat,
) -> Cow<'_, [T::W]> {
    if fmt == DataFormat::Nchw {
        let mut t = vec![T::W::default(); x.len()];
        transpose_images(x, &mut t, n, c, hw, T::widen);
        return Cow::Owned(t);
    }
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<T::W>() {
        // SAFETY: T and T::W are the same type (checked just above).
        return Cow::Borrowed(unsafe {
            std::slice::from_raw_parts(x.as_ptr() as *const T::W, x.len())
        });
    }
    Cow::Owned(x.par_iter().map(|&v| v.widen()).collect())
}

/// Calls `f` with an NHWC compute-type buffer for `out` (`[n, hw, c]` in
/// `fmt`): `out` itself when the types and layout allow, else a temporary
/// stored back (narrowed, transposed) afterwards. `f` must write every element.
pub(crate) fn with_out_nhwc<T: Widen>(
    out: &mut [T],
    n: usize,
    hw: usize,
    c: usize,
    fmt: DataFormat,
    f: impl FnOnce(&mut [T::W]),
) {
    if fmt == DataFormat::Nhwc && std::any::TypeId::of::<T>() == std::any::TypeId::of::<T::W>() {
        // SAFETY: T and T::W are the same type (checked just above).
        let o = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut T::W, out.len()) };
        return f(o);
    }
    let mut t = vec![T::W::default(); out.len()];
    f(&mut t);
    if fmt == DataFormat::Nchw {
        transpose_images(&t, out, n, hw, c, T::narrow);
    } else {
        out.par_iter_mut()
            .zip(t.par_iter())
            .for_each(|(o, &v)| *o = T::narrow(v));
    }
}

fn widen_all<T: Widen>(x: &[T]) -> Cow<'_, [T::W]> {
    load_nhwc(x, 1, x.len(), 1, DataFormat::Nhwc)
}

struct SyncPtr<W>(*mut W);
impl<W> Clone for SyncPtr<W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W> Copy for SyncPtr<W> {}
// SAFETY: only used to hand disjoint row ranges of one live buffer to
// parallel tasks (as `&mut [W]` split into chunks would), and W is Send.
unsafe impl<W: Send> Send for SyncPtr<W> {}
// SAFETY: as for Send: tasks sharing the pointer write disjoint rows only.
unsafe impl<W: Send> Sync for SyncPtr<W> {}

/// Runs `f(image, output_rows, first_input_row, input_rows)` over bands of
/// output rows of every image, where `input_rows` (`row_len` elements per
/// input row, starting at input row `first_input_row`) are all the input
/// rows a band's windows touch (`reach` = extent of a window minus one,
/// `pad_top` rows of padding). Bands that run at the same time never share
/// an input row: one band per image when there are images enough, else
/// bands at least a window apart (even bands, then odd bands).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_bands<W: Send>(
    dx: &mut [W],
    n: usize,
    h: usize,
    row_len: usize,
    oh: usize,
    sh: usize,
    pad_top: usize,
    reach: usize,
    work: usize,
    f: impl Fn(usize, Range<usize>, usize, &mut [W]) + Sync,
) {
    if n == 0 || oh == 0 || h == 0 || row_len == 0 {
        return;
    }
    let threads = rayon::current_num_threads().max(1);
    let serial = threads == 1 || work < (1 << 16);
    let img = h * row_len;
    let min_band = reach.div_ceil(sh).max(1);
    let want = if serial || n >= 2 * threads {
        1
    } else {
        (2 * threads).div_ceil(n)
    };
    let nb = want.min((oh / min_band).max(1));
    let band = oh.div_ceil(nb);
    let nb = oh.div_ceil(band);
    let span = |b: usize| -> (Range<usize>, Range<usize>) {
        let oys = b * band..((b + 1) * band).min(oh);
        let lo = (oys.start * sh) as isize - pad_top as isize;
        let hi = ((oys.end - 1) * sh + reach) as isize - pad_top as isize + 1;
        let (lo, hi) = (
            lo.clamp(0, h as isize) as usize,
            hi.clamp(0, h as isize) as usize,
        );
        (oys, lo..hi.max(lo))
    };
    if serial {
        for i in 0..n {
            for b in 0..nb {
                let (oys, rows) = span(b);
                let s = &mut dx[i * img + rows.start * row_len..i * img + rows.end * row_len];
                f(i, oys, rows.start, s);
            }
        }
        return;
    }
    let base = SyncPtr(dx.as_mut_ptr());
    let phases: &[usize] = if nb == 1 { &[0] } else { &[0, 1] };
    for &phase in phases {
        let items: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (phase..nb).step_by(2.min(nb)).map(move |b| (i, b)))
            .collect();
        items.into_par_iter().for_each(|(i, b)| {
            let (oys, rows) = span(b);
            let p = base;
            // SAFETY: the rows lie inside image i of dx; bands of one phase
            // are at least `reach + 1` input rows apart (band * sh > reach),
            // so no two tasks of this phase get overlapping rows.
            let s = unsafe {
                std::slice::from_raw_parts_mut(
                    p.0.add(i * img + rows.start * row_len),
                    (rows.end - rows.start) * row_len,
                )
            };
            f(i, oys, rows.start, s);
        });
    }
}

/// `dst[m, n] (+)= a[m, k] · b[k, n]`; operands by first element and
/// (row, column) strides, `dst` by first element and row stride.
///
/// # Safety
/// Every addressed element must be in bounds; `dst` aliases neither source.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_acc<W: Compute>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut W,
    dst_rs: usize,
    accumulate: bool,
    a: *const W,
    a_s: (usize, usize),
    b: *const W,
    b_s: (usize, usize),
    threads: usize,
) {
    let threads = if m * n * k >= (1 << 18) { threads } else { 1 };
    // SAFETY: every element `a`, `b` and `dst` address for i < m, j < n,
    // p < k at these strides is in bounds, and `dst` aliases neither source
    // (this function's contract).
    unsafe {
        super::gemm_threads::gemm(
            m,
            n,
            k,
            (dst, dst_rs as isize),
            accumulate,
            (a, (a_s.0 as isize, a_s.1 as isize)),
            (b, (b_s.0 as isize, b_s.1 as isize)),
            W::ONE,
            W::ONE,
            threads,
        );
    }
}

/// A 1x1 stride-1 unpadded convolution: the input rows are the GEMM rows.
fn is_direct(g: &ConvGeom) -> bool {
    g.kh == 1
        && g.kw == 1
        && g.sh == 1
        && g.sw == 1
        && g.pad_top == 0
        && g.pad_left == 0
        && g.oh == g.h
        && g.ow == g.w
}

// ------------------------------------------------------------ dispatch ----

fn check(t: &[usize], want: &[usize], what: &str) -> Result<()> {
    if t != want {
        return Err(Error::Internal(format!(
            "{what} shape {t:?} does not match {want:?}"
        )));
    }
    Ok(())
}

macro_rules! float_dispatch {
    ($dt:expr, $name:literal, $f:ident($($a:expr),*)) => {
        match $dt {
            DType::F32 => $f::<f32>($($a),*),
            DType::F64 => $f::<f64>($($a),*),
            DType::F16 => $f::<f16>($($a),*),
            DType::BF16 => $f::<bf16>($($a),*),
            d => Err(Error::Unimplemented(format!("{} is not defined for {d}", $name))),
        }
    };
}
pub(crate) use float_dispatch;

/// Which convolution a gradient belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConvKind {
    Conv2D,
    Depthwise,
}

impl ConvKind {
    fn filter_shape(self, g: &ConvGeom) -> Vec<usize> {
        match self {
            ConvKind::Conv2D => vec![g.kh, g.kw, g.cin / g.groups.max(1), g.cout],
            ConvKind::Depthwise => vec![g.kh, g.kw, g.cin, g.multiplier],
        }
    }
}

/// An empty gradient, or one nothing flows into (no output positions, no
/// output channels): zeros (all-zero bits are 0.0 in every float type).
/// True when there is nothing else to compute.
fn empty_grad(out: &mut TensorMut, inputs: [&TensorView; 2]) -> bool {
    if out.num_elements() != 0 && inputs.iter().all(|t| t.num_elements() != 0) {
        return false;
    }
    out.bytes_mut().fill(0);
    true
}

/// Gradient with respect to the input: `dx` has the input shape of `g`.
pub fn conv_backprop_input(
    kind: ConvKind,
    filter: &TensorView,
    dy: &TensorView,
    dx: &mut TensorMut,
    g: &ConvGeom,
) -> Result<()> {
    if empty_grad(dx, [filter, dy]) {
        return Ok(());
    }
    check(&filter.shape, &kind.filter_shape(g), "filter")?;
    check(&dy.shape, &g.output_shape(), "out_backprop")?;
    check(&dx.shape, &g.format.shape(g.n, g.h, g.w, g.cin), "input")?;
    match grad_lowp(kind, dx.dtype, g) {
        Some(l) if dx.dtype == DType::BF16 && g.format == DataFormat::Nhwc => {
            let (f, dy) = (filter.data::<bf16>()?, dy.data::<bf16>()?);
            return input_grad_lowp(dy, f, dx.data_mut::<bf16>()?, g, l);
        }
        Some(l) if dx.dtype == DType::BF16 => {
            return input_grad_widened::<bf16>(filter, dy, dx, g, l)
        }
        Some(l) => return input_grad_widened::<f32>(filter, dy, dx, g, l),
        None => {}
    }
    fn typed<T: Widen>(
        kind: ConvKind,
        f: &TensorView,
        dy: &TensorView,
        dx: &mut TensorMut,
        g: &ConvGeom,
    ) -> Result<()> {
        let f = widen_all::<T>(f.data()?);
        let dy = load_nhwc::<T>(dy.data()?, g.n, g.oh * g.ow, g.cout, g.format);
        with_out_nhwc::<T>(
            dx.data_mut()?,
            g.n,
            g.h * g.w,
            g.cin,
            g.format,
            |dx| match kind {
                ConvKind::Conv2D => input_grad(&dy, &f, dx, g),
                ConvKind::Depthwise => depthwise_input_grad(&dy, &f, dx, g),
            },
        );
        Ok(())
    }
    float_dispatch!(
        dx.dtype,
        "convolution backprop",
        typed(kind, filter, dy, dx, g)
    )
}

/// A low-precision Conv2D input gradient of data other than bfloat16 NHWC:
/// widened to float32 NHWC, then `input_grad_lowp`.
fn input_grad_widened<T: Widen<W = f32>>(
    f: &TensorView,
    dy: &TensorView,
    dx: &mut TensorMut,
    g: &ConvGeom,
    lowp: LowpType,
) -> Result<()> {
    let f = widen_all::<T>(f.data()?);
    let dy = load_nhwc::<T>(dy.data()?, g.n, g.oh * g.ow, g.cout, g.format);
    let mut result = Ok(());
    with_out_nhwc::<T>(dx.data_mut()?, g.n, g.h * g.w, g.cin, g.format, |dx| {
        result = input_grad_lowp(&dy, &f, dx, g, lowp);
    });
    result
}

/// Gradient with respect to the filter: `df` has the filter shape of `g`.
pub fn conv_backprop_filter(
    kind: ConvKind,
    input: &TensorView,
    dy: &TensorView,
    df: &mut TensorMut,
    g: &ConvGeom,
) -> Result<()> {
    if empty_grad(df, [input, dy]) {
        return Ok(());
    }
    check(&input.shape, &g.format.shape(g.n, g.h, g.w, g.cin), "input")?;
    check(&dy.shape, &g.output_shape(), "out_backprop")?;
    check(&df.shape, &kind.filter_shape(g), "filter")?;
    match grad_lowp(kind, df.dtype, g) {
        Some(l) if df.dtype == DType::BF16 => {
            let mut sums = vec![0f32; df.num_elements()];
            if g.format == DataFormat::Nhwc {
                let (x, dy) = (input.data::<bf16>()?, dy.data::<bf16>()?);
                filter_grad_lowp(x, dy, &mut sums, g, l);
            } else {
                let (x, dy) = widened_nhwc::<bf16>(input, dy, g)?;
                filter_grad_lowp(&x, &dy, &mut sums, g, l);
            }
            narrow_bf16(&sums, df.data_mut::<bf16>()?);
            return Ok(());
        }
        Some(l) => {
            let (x, dy) = widened_nhwc::<f32>(input, dy, g)?;
            filter_grad_lowp(&x, &dy, df.data_mut::<f32>()?, g, l);
            return Ok(());
        }
        None => {}
    }
    fn typed<T: Widen>(
        kind: ConvKind,
        x: &TensorView,
        dy: &TensorView,
        df: &mut TensorMut,
        g: &ConvGeom,
    ) -> Result<()> {
        let x = load_nhwc::<T>(x.data()?, g.n, g.h * g.w, g.cin, g.format);
        let dy = load_nhwc::<T>(dy.data()?, g.n, g.oh * g.ow, g.cout, g.format);
        let out = df.data_mut::<T>()?;
        let len = out.len();
        with_out_nhwc::<T>(out, 1, len, 1, DataFormat::Nhwc, |df| match kind {
            ConvKind::Conv2D => filter_grad(&x, &dy, df, g),
            ConvKind::Depthwise => depthwise_filter_grad(&x, &dy, df, g),
        });
        Ok(())
    }
    float_dispatch!(
        df.dtype,
        "convolution backprop",
        typed(kind, input, dy, df, g)
    )
}

/// `x` and `dy` as float32 NHWC (borrowed when they already are).
type Nhwc32<'a> = (Cow<'a, [f32]>, Cow<'a, [f32]>);

fn widened_nhwc<'a, T: Widen<W = f32>>(
    x: &'a TensorView,
    dy: &'a TensorView,
    g: &ConvGeom,
) -> Result<Nhwc32<'a>> {
    Ok((
        load_nhwc::<T>(x.data()?, g.n, g.h * g.w, g.cin, g.format),
        load_nhwc::<T>(dy.data()?, g.n, g.oh * g.ow, g.cout, g.format),
    ))
}

/// The type a Conv2D gradient multiplies in, through `lowp_gemm`: `g.lowp`
/// for float32, bfloat16 for bfloat16 data (as stored, so the numerics are
/// TensorFlow's), none else (depthwise gradients neither).
/// Every product is of an input element and a `dy` element (sums come after),
/// so rounding inside the GEMMs equals rounding the inputs.
fn grad_lowp(kind: ConvKind, dtype: DType, g: &ConvGeom) -> Option<LowpType> {
    match (kind, dtype) {
        (ConvKind::Conv2D, DType::F32) => g.lowp.and_then(LowpType::from_dtype),
        (ConvKind::Conv2D, DType::BF16) => Some(LowpType::Bf16),
        _ => None,
    }
}

// ------------------------------------------------------ Conv2D: filter ----

/// Splits `m` rows into parts for per-part partial sums of `out_len`
/// elements; runs `part(range, acc, threads_per_part)` (acc uninitialised:
/// the part must overwrite it) and sums the partials into `out`.
pub(super) fn partial_sums<W: Compute>(
    m: usize,
    min_rows: usize,
    out: &mut [W],
    part: impl Fn(Range<usize>, &mut [W], usize) + Sync,
) {
    let threads = rayon::current_num_threads().max(1);
    let parts = (m / min_rows.max(1)).clamp(1, threads);
    if parts == 1 {
        return part(0..m, out, threads);
    }
    let per = threads / parts;
    let len = out.len();
    let mut bufs: Vec<Vec<W>> = (1..parts).map(|_| vec![W::ZERO; len]).collect();
    let mut accs: Vec<&mut [W]> = vec![&mut *out];
    accs.extend(bufs.iter_mut().map(|b| &mut b[..]));
    accs.into_par_iter()
        .enumerate()
        .for_each(|(p, acc)| part(p * m / parts..(p + 1) * m / parts, acc, per.max(1)));
    let chunk = (len / (threads * 4)).max(4096);
    out.par_chunks_mut(chunk).enumerate().for_each(|(c, o)| {
        for b in &bufs {
            for (a, &v) in o.iter_mut().zip(&b[c * chunk..]) {
                *a = *a + v;
            }
        }
    });
}

/// The filter gradient's GEMM per group: `df_g[k, cout_g] = lhs^T · dy_g`
/// summed over `m` output pixels, `k = kh*kw*cin_g`; `direct` when the
/// patches are `x`'s rows themselves (1x1, stride 1, no padding).
pub(super) struct FilterGradDims {
    pub m: usize,
    pub groups: usize,
    pub cin_g: usize,
    pub cout_g: usize,
    pub k: usize,
    pub direct: bool,
}

impl FilterGradDims {
    /// None when the product is empty (`df` is then all zeros).
    pub fn of(g: &ConvGeom) -> Option<Self> {
        let m = g.n * g.oh * g.ow;
        let groups = g.groups.max(1);
        let (cin_g, cout_g) = (g.cin / groups, g.cout / groups);
        let k = g.kh * g.kw * cin_g;
        let direct = is_direct(g);
        (m > 0 && k > 0 && g.cout > 0).then_some(Self {
            m,
            groups,
            cin_g,
            cout_g,
            k,
            direct,
        })
    }
}

/// `df[kh*kw*cin_g, cout]` (HWIO) from NHWC `x` and `dy`, in the compute
/// type (low-precision products: `filter_grad_lowp`).
fn filter_grad<W: Compute>(x: &[W], dy: &[W], df: &mut [W], g: &ConvGeom) {
    let Some(FilterGradDims {
        m,
        groups,
        cin_g,
        cout_g,
        k,
        direct,
    }) = FilterGradDims::of(g)
    else {
        df.fill(W::ZERO);
        return;
    };
    if W::own_filter_grad(x, dy, df, g) {
        return;
    }
    let cout = g.cout;
    let elem = std::mem::size_of::<W>();
    // Tile rows are the GEMM's depth: long enough to amortise the passes
    // over the partial filter.
    let tile = if direct {
        m
    } else {
        (4 * TILE_BYTES / (k * elem)).clamp(256, 2048)
    };
    partial_sums(m, 512, df, |rows, acc, threads| {
        let mut buf = Vec::new();
        let mut first = true;
        let mut m0 = rows.start;
        while m0 < rows.end {
            let r = tile.min(rows.end - m0);
            if !direct {
                buf.resize(r * k, W::ZERO);
            }
            for grp in 0..groups {
                let (lhs, lrs) = if direct {
                    (x[m0 * g.cin + grp * cin_g..].as_ptr(), g.cin)
                } else {
                    fill_cols(x, g, m0, r, grp * cin_g, cin_g, &mut buf, threads);
                    (buf.as_ptr(), k)
                };
                // SAFETY: lhs^T is k x r with column stride lrs inside x or
                // buf; dy rows [m0, m0 + r) columns of this group lie in dy;
                // the destination k x cout_g block (row stride cout) lies in
                // acc, which aliases neither.
                unsafe {
                    gemm_acc(
                        k,
                        cout_g,
                        r,
                        acc.as_mut_ptr().add(grp * cout_g),
                        cout,
                        !first,
                        lhs,
                        (1, lrs),
                        dy[m0 * cout + grp * cout_g..].as_ptr(),
                        (cout, 1),
                        threads,
                    );
                }
            }
            first = false;
            m0 += r;
        }
    });
}

/// im2col of rows `[m0, m0 + r)`, channels `[c0, c0 + cg)`, on `threads`.
#[allow(clippy::too_many_arguments)]
pub(super) fn fill_cols<T: Copy + Default + Send + Sync>(
    x: &[T],
    g: &ConvGeom,
    m0: usize,
    r: usize,
    c0: usize,
    cg: usize,
    buf: &mut [T],
    threads: usize,
) {
    let k = g.kh * g.kw * cg;
    if threads <= 1 || r < 64 {
        return im2col(x, g, m0, r, c0, cg, &mut buf[..r * k]);
    }
    let per = r.div_ceil(threads);
    buf[..r * k]
        .par_chunks_mut(per * k)
        .enumerate()
        .for_each(|(i, b)| im2col(x, g, m0 + i * per, b.len() / k, c0, cg, b));
}

#[cfg(test)]
mod tests;
