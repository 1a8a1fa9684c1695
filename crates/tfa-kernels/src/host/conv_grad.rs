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
use std::any::TypeId;
use std::borrow::Cow;
use std::ops::Range;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

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
unsafe fn gemm_acc<W: Compute>(
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
pub(super) fn is_direct(g: &ConvGeom) -> bool {
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
    if kind == ConvKind::Conv2D && dx.dtype == DType::BF16 && g.format == DataFormat::Nhwc {
        let (f, dy) = (filter.data::<bf16>()?, dy.data::<bf16>()?);
        return input_grad_lowp(dy, f, dx.data_mut::<bf16>()?, g, LowpType::Bf16);
    }
    fn typed<T: Widen>(
        kind: ConvKind,
        f: &TensorView,
        dy: &TensorView,
        dx: &mut TensorMut,
        g: &ConvGeom,
        lowp: Option<LowpType>,
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
                ConvKind::Conv2D => input_grad(&dy, &f, dx, g, lowp),
                ConvKind::Depthwise => depthwise_input_grad(&dy, &f, dx, g),
            },
        );
        Ok(())
    }
    let lowp = grad_lowp(dx.dtype, g);
    float_dispatch!(
        dx.dtype,
        "convolution backprop",
        typed(kind, filter, dy, dx, g, lowp)
    )
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
    if kind == ConvKind::Conv2D && df.dtype == DType::BF16 && g.format == DataFormat::Nhwc {
        let mut sums = vec![0f32; df.num_elements()];
        let (x, dy) = (input.data::<bf16>()?, dy.data::<bf16>()?);
        filter_grad_lowp(x, dy, &mut sums, g, LowpType::Bf16);
        narrow_bf16(&sums, df.data_mut::<bf16>()?);
        return Ok(());
    }
    fn typed<T: Widen>(
        kind: ConvKind,
        x: &TensorView,
        dy: &TensorView,
        df: &mut TensorMut,
        g: &ConvGeom,
        lowp: Option<LowpType>,
    ) -> Result<()> {
        let x = load_nhwc::<T>(x.data()?, g.n, g.h * g.w, g.cin, g.format);
        let dy = load_nhwc::<T>(dy.data()?, g.n, g.oh * g.ow, g.cout, g.format);
        let out = df.data_mut::<T>()?;
        let len = out.len();
        with_out_nhwc::<T>(out, 1, len, 1, DataFormat::Nhwc, |df| match kind {
            ConvKind::Conv2D => filter_grad(&x, &dy, df, g, lowp),
            ConvKind::Depthwise => depthwise_filter_grad(&x, &dy, df, g),
        });
        Ok(())
    }
    let lowp = grad_lowp(df.dtype, g);
    float_dispatch!(
        df.dtype,
        "convolution backprop",
        typed(kind, input, dy, df, g, lowp)
    )
}

/// The type Conv2D gradients multiply in: `g.lowp` for float32, bfloat16
/// for bfloat16 data (widened to float32 first: the rounding inside
/// `lowp_gemm` is then exact, so the numerics are TensorFlow's), none else.
/// Every product is of an input element and a `dy` element (sums come after),
/// so rounding inside the GEMMs equals rounding the inputs.
fn grad_lowp(dtype: DType, g: &ConvGeom) -> Option<LowpType> {
    match dtype {
        DType::F32 => g.lowp.and_then(LowpType::from_dtype),
        DType::BF16 => Some(LowpType::Bf16),
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

/// `df[kh*kw*cin_g, cout]` (HWIO) from NHWC `x` and `dy` (the products
/// rounded to `lowp` in `filter_grad_lowp`, for float32).
fn filter_grad<W: Compute>(x: &[W], dy: &[W], df: &mut [W], g: &ConvGeom, lowp: Option<LowpType>) {
    if let Some(l) = lowp.filter(|_| TypeId::of::<W>() == TypeId::of::<f32>()) {
        // SAFETY: W is f32 (checked just above).
        let (x, dy, df) = unsafe {
            (
                std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()),
                std::slice::from_raw_parts(dy.as_ptr().cast::<f32>(), dy.len()),
                std::slice::from_raw_parts_mut(df.as_mut_ptr().cast::<f32>(), df.len()),
            )
        };
        return filter_grad_lowp(x, dy, df, g, l);
    }
    let m = g.n * g.oh * g.ow;
    let (cout, groups) = (g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (g.cin / groups, cout / groups);
    let k = g.kh * g.kw * cin_g;
    if m == 0 || k == 0 || cout == 0 {
        df.fill(W::ZERO);
        return;
    }
    let direct = is_direct(g);
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

// ------------------------------------------------------- Conv2D: input ----

/// NHWC `dx` from NHWC `dy` and the HWIO filter (the products rounded to
/// `lowp` in `input_grad_lowp`, for float32).
fn input_grad<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &ConvGeom, lowp: Option<LowpType>) {
    if let Some(l) = lowp.filter(|_| TypeId::of::<W>() == TypeId::of::<f32>()) {
        // SAFETY: W is f32 (checked just above).
        let (dy, f, dx) = unsafe {
            (
                std::slice::from_raw_parts(dy.as_ptr().cast::<f32>(), dy.len()),
                std::slice::from_raw_parts(f.as_ptr().cast::<f32>(), f.len()),
                std::slice::from_raw_parts_mut(dx.as_mut_ptr().cast::<f32>(), dx.len()),
            )
        };
        return super::conv::lowp_infallible(input_grad_lowp(dy, f, dx, g, l));
    }
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let k = g.kh * g.kw * cin_g;
    let m = g.n * g.oh * g.ow;
    let threads = rayon::current_num_threads().max(1);
    if k == 0 {
        dx.fill(W::ZERO);
        return;
    }
    if is_direct(g) && m > 0 && cout_g > 0 {
        for grp in 0..groups {
            // SAFETY: dx rows of this group's columns (row stride cin), dy
            // rows (stride cout) and the filter's transposed group block
            // ([cout_g, cin_g] with strides (1, cout)) are all in bounds.
            unsafe {
                gemm_acc(
                    m,
                    cin_g,
                    cout_g,
                    dx.as_mut_ptr().add(grp * cin_g),
                    cin,
                    false,
                    dy[grp * cout_g..].as_ptr(),
                    (cout, 1),
                    f[grp * cout_g..].as_ptr(),
                    (1, cout),
                    threads,
                );
            }
        }
        return;
    }
    if let Some(t) = transposed_geometry(g) {
        // Stride 1: the input gradient is the forward convolution of dy
        // with the flipped, transposed filter (no col2im, one write of dx).
        return conv2d_nhwc(dy, &flip_transpose(f, g), dx, &t);
    }
    dx.par_chunks_mut(1 << 16).for_each(|c| c.fill(W::ZERO));
    if m == 0 || k == 0 || cout_g == 0 {
        return;
    }
    let elem = std::mem::size_of::<W>();
    let img_px = g.oh * g.ow;
    let img_len = g.h * g.w * cin;
    let reach = (g.kh - 1) * g.dh;
    if k * cout_g * elem > RHS_IN_CACHE {
        // A large filter: packing it for every small tile would dominate.
        // Chunks of whole images: one parallel GEMM for the chunk's patch
        // gradients, then col2im in parallel bands.
        let per = (CHUNK_ELEMS / (img_px * k).max(1)).clamp(1, g.n);
        let mut dcol = vec![W::ZERO; per * img_px * k];
        for i0 in (0..g.n).step_by(per) {
            let imgs = per.min(g.n - i0);
            let rows = imgs * img_px;
            for grp in 0..groups {
                // SAFETY: dcol holds rows x k; dy rows [i0*img_px, +rows)
                // and the group's transposed filter block are in bounds.
                unsafe {
                    gemm_acc(
                        rows,
                        k,
                        cout_g,
                        dcol.as_mut_ptr(),
                        k,
                        false,
                        dy[i0 * img_px * cout + grp * cout_g..].as_ptr(),
                        (cout, 1),
                        f[grp * cout_g..].as_ptr(),
                        (1, cout),
                        threads,
                    );
                }
                let dcol = &dcol;
                scatter_bands(
                    &mut dx[i0 * img_len..(i0 + imgs) * img_len],
                    imgs,
                    g.h,
                    g.w * cin,
                    g.oh,
                    g.sh,
                    g.pad_top,
                    reach,
                    rows * k,
                    |n, oys, row0, out| {
                        let p = n * img_px + oys.start * g.ow;
                        let r = oys.len() * g.ow;
                        let c = &dcol[p * k..(p + r) * k];
                        col2im(c, g, oys.start * g.ow, r, grp * cin_g, cin_g, row0, out);
                    },
                );
            }
        }
        return;
    }
    // A small filter: tiles of patch gradients that stay in cache.
    let tile = (TILE_BYTES / (k * elem)).clamp(64, 4096);
    let work = m * k * cout_g;
    scatter_bands(
        dx,
        g.n,
        g.h,
        g.w * cin,
        g.oh,
        g.sh,
        g.pad_top,
        reach,
        work,
        |n, oys, row0, rows| {
            let mut dcol = vec![W::ZERO; tile.min(oys.len() * g.ow) * k];
            let p0 = oys.start * g.ow;
            let p1 = oys.end * g.ow;
            let mut p = p0;
            while p < p1 {
                let r = tile.min(p1 - p);
                let m0 = n * img_px + p;
                for grp in 0..groups {
                    // SAFETY: dcol holds r x k; dy rows [m0, m0 + r) and the
                    // group's filter block transposed ([cout_g, k] with
                    // strides (1, cout)) are in bounds; dcol is private.
                    unsafe {
                        gemm_acc(
                            r,
                            k,
                            cout_g,
                            dcol.as_mut_ptr(),
                            k,
                            false,
                            dy[m0 * cout + grp * cout_g..].as_ptr(),
                            (cout, 1),
                            f[grp * cout_g..].as_ptr(),
                            (1, cout),
                            1,
                        );
                    }
                    col2im(&dcol[..r * k], g, p, r, grp * cin_g, cin_g, row0, rows);
                }
                p += r;
            }
        },
    );
}

/// The stride-1 input gradient's filter: HWIO `f` flipped in both spatial
/// axes with input and output channels swapped per group,
/// `[kh, kw, cout_g, cin]`.
pub(super) fn flip_transpose<T: Copy + Default>(f: &[T], g: &ConvGeom) -> Vec<T> {
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let mut ft = vec![T::default(); f.len()];
    for ky in 0..g.kh {
        for kx in 0..g.kw {
            let src = &f[((g.kh - 1 - ky) * g.kw + (g.kw - 1 - kx)) * cin_g * cout..];
            let dst = &mut ft[(ky * g.kw + kx) * cout_g * cin..][..cout_g * cin];
            for grp in 0..groups {
                for co in 0..cout_g {
                    for ci in 0..cin_g {
                        dst[co * cin + grp * cin_g + ci] = src[ci * cout + grp * cout_g + co];
                    }
                }
            }
        }
    }
    ft
}

/// Filter bytes (one group, `k x cout_g`) cheap enough to repack per tile.
const RHS_IN_CACHE: usize = 256 * 1024;

/// Patch-gradient elements per chunk of images (large-filter path).
const CHUNK_ELEMS: usize = 4 << 20;

/// For stride 1 (and padding no larger than the dilated window), the
/// forward convolution over `dy` whose output is `dx`: filter
/// `[kh, kw, cout_g, cin]` (flipped, transposed per group).
pub(super) fn transposed_geometry(g: &ConvGeom) -> Option<ConvGeom> {
    let (eh, ew) = ((g.kh - 1) * g.dh, (g.kw - 1) * g.dw);
    if g.sh != 1 || g.sw != 1 || g.pad_top > eh || g.pad_left > ew || g.n * g.h * g.w == 0 {
        return None;
    }
    Some(ConvGeom {
        h: g.oh,
        w: g.ow,
        cin: g.cout,
        cout: g.cin,
        oh: g.h,
        ow: g.w,
        pad_top: eh - g.pad_top,
        pad_left: ew - g.pad_left,
        ..*g
    })
}

/// Adds patch rows (pixels `[p0, p0 + r)` of one image, each `(ky, kx, c)`)
/// into the input rows starting at input row `row0`, channels `[c0, c0+cg)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn col2im<W: Compute>(
    dcol: &[W],
    g: &ConvGeom,
    p0: usize,
    r: usize,
    c0: usize,
    cg: usize,
    row0: usize,
    rows: &mut [W],
) {
    let k = g.kh * g.kw * cg;
    let row_len = g.w * g.cin;
    for (i, col) in dcol.chunks_exact(k).take(r).enumerate() {
        let (oy, ox) = ((p0 + i) / g.ow, (p0 + i) % g.ow);
        let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        for ky in 0..g.kh {
            let iy = iy0 + (ky * g.dh) as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let dst_row = &mut rows[(iy as usize - row0) * row_len..][..row_len];
            for kx in 0..g.kw {
                let ix = ix0 + (kx * g.dw) as isize;
                if ix < 0 || ix >= g.w as isize {
                    continue;
                }
                let src = &col[(ky * g.kw + kx) * cg..][..cg];
                let dst = &mut dst_row[ix as usize * g.cin + c0..][..cg];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = *d + s;
                }
            }
        }
    }
}

// ------------------------------------------------------------ depthwise ----

/// Output positions `o` (and kernel taps) with `o * s + t * d - pad == i`.
#[inline]
fn taps(
    i: usize,
    pad: usize,
    k: usize,
    d: usize,
    s: usize,
    out: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..k).filter_map(move |t| {
        let v = (i + pad) as isize - (t * d) as isize;
        if v < 0 || !(v as usize).is_multiple_of(s) {
            return None;
        }
        let o = v as usize / s;
        (o < out).then_some((t, o))
    })
}

/// Depthwise input gradient, gathered per input row (NHWC).
fn depthwise_input_grad<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &ConvGeom) {
    let (cin, cout, mult) = (g.cin, g.cout, g.multiplier);
    let row = g.w * cin;
    if row == 0 || dx.is_empty() {
        return;
    }
    if let Some(t) = transposed_geometry(g).filter(|_| mult == 1) {
        // Stride 1, multiplier 1: the forward depthwise convolution of dy
        // with the flipped filter.
        let mut ft = vec![W::ZERO; f.len()];
        for (t_, dst) in ft.chunks_exact_mut(cin).enumerate() {
            let src = g.kh * g.kw - 1 - t_;
            dst.copy_from_slice(&f[src * cin..(src + 1) * cin]);
        }
        return par_rows(dx, row, &t, |r, out| depthwise_row(dy, &ft, &t, r, out));
    }
    let body = |r: usize, out: &mut [W]| {
        let (n, iy) = (r / g.h, r % g.h);
        out.fill(W::ZERO);
        for (ky, oy) in taps(iy, g.pad_top, g.kh, g.dh, g.sh, g.oh) {
            let dy_row = &dy[(n * g.oh + oy) * g.ow * cout..][..g.ow * cout];
            for (ix, acc) in out.chunks_exact_mut(cin).enumerate() {
                for (kx, ox) in taps(ix, g.pad_left, g.kw, g.dw, g.sw, g.ow) {
                    let d = &dy_row[ox * cout..][..cout];
                    let fk = &f[(ky * g.kw + kx) * cout..][..cout];
                    if mult == 1 {
                        for ((a, &dv), &fv) in acc.iter_mut().zip(d).zip(fk) {
                            *a = *a + dv * fv;
                        }
                    } else {
                        for ((a, dm), fm) in acc
                            .iter_mut()
                            .zip(d.chunks_exact(mult))
                            .zip(fk.chunks_exact(mult))
                        {
                            let mut s = *a;
                            for (&dv, &fv) in dm.iter().zip(fm) {
                                s = s + dv * fv;
                            }
                            *a = s;
                        }
                    }
                }
            }
        }
    };
    let work = dx.len() * g.kh * g.kw * mult;
    if work < (1 << 16) || rayon::current_num_threads() == 1 {
        dx.chunks_mut(row).enumerate().for_each(|(r, o)| body(r, o));
    } else {
        dx.par_chunks_mut(row)
            .enumerate()
            .for_each(|(r, o)| body(r, o));
    }
}

/// Depthwise filter gradient `[kh, kw, cin, mult]`: partial filters per part
/// of the output rows.
fn depthwise_filter_grad<W: Compute>(x: &[W], dy: &[W], df: &mut [W], g: &ConvGeom) {
    let cout = g.cout;
    let rows = g.n * g.oh;
    if df.is_empty() {
        return;
    }
    let min_rows = (4096 / (g.ow * g.kh * g.kw * cout).max(1)).max(1);
    partial_sums(rows, min_rows.max(8), df, |part, acc, _| {
        dw_filter_rows(x, dy, g, part, acc)
    });
}

/// Accumulates the depthwise filter gradient of output rows `part` into
/// `acc`, with the widest vector instructions the CPU has.
fn dw_filter_rows<W: Compute>(x: &[W], dy: &[W], g: &ConvGeom, part: Range<usize>, acc: &mut [W]) {
    #[cfg(target_arch = "x86_64")]
    match simd_level() {
        // SAFETY: simd_level() reports Avx512 only where the CPU has
        // AVX-512 F/DQ/VL/BW, AVX2 and FMA (cpu::probe).
        Simd::Avx512 => return unsafe { dw_filter_rows_avx512(x, dy, g, part, acc) },
        // SAFETY: Avx2 only where the CPU has AVX2 and FMA.
        Simd::Avx2 => return unsafe { dw_filter_rows_avx2(x, dy, g, part, acc) },
        Simd::Base => {}
    }
    dw_filter_rows_impl(x, dy, g, part, acc)
}

/// [`dw_filter_rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dw_filter_rows_avx512<W: Compute>(
    x: &[W],
    dy: &[W],
    g: &ConvGeom,
    part: Range<usize>,
    acc: &mut [W],
) {
    dw_filter_rows_impl(x, dy, g, part, acc)
}

/// [`dw_filter_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_filter_rows_avx2<W: Compute>(
    x: &[W],
    dy: &[W],
    g: &ConvGeom,
    part: Range<usize>,
    acc: &mut [W],
) {
    dw_filter_rows_impl(x, dy, g, part, acc)
}

#[inline(always)]
fn dw_filter_rows_impl<W: Compute>(
    x: &[W],
    dy: &[W],
    g: &ConvGeom,
    part: Range<usize>,
    acc: &mut [W],
) {
    let (cin, cout, mult) = (g.cin, g.cout, g.multiplier);
    acc.fill(W::ZERO);
    for r in part {
        let (n, oy) = (r / g.oh, r % g.oh);
        let img = &x[n * g.h * g.w * cin..][..g.h * g.w * cin];
        for ky in 0..g.kh {
            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let xrow = &img[iy as usize * g.w * cin..][..g.w * cin];
            for ox in 0..g.ow {
                let d = &dy[(r * g.ow + ox) * cout..][..cout];
                for kx in 0..g.kw {
                    let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                    if ix < 0 || ix >= g.w as isize {
                        continue;
                    }
                    let xs = &xrow[ix as usize * cin..][..cin];
                    let a = &mut acc[(ky * g.kw + kx) * cout..][..cout];
                    if mult == 1 {
                        for ((a, &xv), &dv) in a.iter_mut().zip(xs).zip(d) {
                            *a = *a + xv * dv;
                        }
                    } else {
                        for ((am, &xv), dm) in
                            a.chunks_exact_mut(mult).zip(xs).zip(d.chunks_exact(mult))
                        {
                            for (a, &dv) in am.iter_mut().zip(dm) {
                                *a = *a + xv * dv;
                            }
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
    use crate::host::conv::{conv2d_geometry, depthwise_geometry, ConvPass, Padding, WindowAttrs};
    use rand::Rng;

    /// Naive NHWC f64 gradients `(dx, df)` of a convolution.
    fn reference(x: &[f64], f: &[f64], dy: &[f64], g: &ConvGeom, dw: bool) -> (Vec<f64>, Vec<f64>) {
        let mut dx = vec![0.0; x.len()];
        let mut df = vec![0.0; f.len()];
        let cg = g.cin / g.groups;
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for co in 0..g.cout {
                        let d = dy[((n * g.oh + oy) * g.ow + ox) * g.cout + co];
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let px = ((n * g.h + iy as usize) * g.w + ix as usize) * g.cin;
                                if dw {
                                    let c = co / g.multiplier;
                                    let fi = (ky * g.kw + kx) * g.cout + co;
                                    dx[px + c] += d * f[fi];
                                    df[fi] += d * x[px + c];
                                } else {
                                    let grp = co / (g.cout / g.groups);
                                    for ci in 0..cg {
                                        let fi = ((ky * g.kw + kx) * cg + ci) * g.cout + co;
                                        dx[px + grp * cg + ci] += d * f[fi];
                                        df[fi] += d * x[px + grp * cg + ci];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (dx, df)
    }

    fn to_nchw(x: &[f64], n: usize, hw: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; x.len()];
        transpose_images(x, &mut t, n, hw, c, |v| v);
        t
    }

    #[allow(clippy::type_complexity)]
    fn random_geom(
        rng: &mut impl Rng,
        kind: ConvKind,
        big: bool,
    ) -> (Vec<usize>, Vec<usize>, ConvGeom) {
        loop {
            let fmt = if rng.random_bool(0.3) {
                DataFormat::Nchw
            } else {
                DataFormat::Nhwc
            };
            let padding =
                [Padding::Same, Padding::Valid, Padding::Explicit][rng.random_range(0..3)];
            let s = if big { 24 } else { 10 };
            let (n, h, w) = (
                rng.random_range(0..4),
                rng.random_range(1..s),
                rng.random_range(1..s),
            );
            let groups = if kind == ConvKind::Depthwise || rng.random_bool(0.5) {
                1
            } else {
                rng.random_range(2..4)
            };
            let cg = rng.random_range(1..if big { 20 } else { 5 });
            let (kh, kw) = (rng.random_range(1..5), rng.random_range(1..5));
            let last = match kind {
                ConvKind::Depthwise => rng.random_range(1..4),
                ConvKind::Conv2D => groups * rng.random_range(1..if big { 20 } else { 5 }),
            };
            let d = fmt.dims();
            let mut strides = [1i64; 4];
            let mut dil = [1i64; 4];
            strides[d[1]] = rng.random_range(1..4);
            strides[d[2]] = rng.random_range(1..4);
            if rng.random_bool(0.3) {
                dil[d[1]] = rng.random_range(1..4);
                dil[d[2]] = rng.random_range(1..4);
            }
            let mut explicit = vec![];
            if padding == Padding::Explicit {
                explicit = vec![0i64; 8];
                for i in [d[1], d[2]] {
                    explicit[2 * i] = rng.random_range(0..4);
                    explicit[2 * i + 1] = rng.random_range(0..4);
                }
            }
            let a = WindowAttrs {
                strides: &strides,
                dilations: &dil,
                padding,
                explicit_paddings: &explicit,
                data_format: fmt,
            };
            let shape = fmt.shape(n, h, w, groups * cg);
            let fshape = vec![kh, kw, cg, last];
            let g = match kind {
                ConvKind::Conv2D => conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward),
                ConvKind::Depthwise => depthwise_geometry(&shape, &fshape, &a, ConvPass::Forward),
            };
            if let Ok(g) = g {
                return (shape, fshape, g);
            }
        }
    }

    /// Conv2D gradients with `lowp` BF16/F16 equal the float32 gradients of
    /// pre-rounded inputs; bfloat16 data equals them up to one rounding.
    #[test]
    fn lowp_grads_match_f32_on_rounded_inputs() {
        let mut rng = crate::test_rng();
        let mut cases: Vec<(Vec<usize>, Vec<usize>, ConvGeom)> = (0..30)
            .map(|i| random_geom(&mut rng, ConvKind::Conv2D, i % 3 == 0))
            .collect();
        for (x, f, s, pad) in [
            (vec![2, 9, 9, 64], vec![3, 3, 64, 128], 2, Padding::Same), // large filter
            (vec![2, 9, 9, 32], vec![3, 3, 32, 48], 1, Padding::Same),  // stride 1
            (vec![2, 7, 7, 40], vec![1, 1, 40, 24], 1, Padding::Valid), // 1x1
            (vec![3, 12, 12, 8], vec![3, 3, 8, 16], 2, Padding::Valid), // small tiles
            (vec![1, 11, 11, 24], vec![3, 3, 24, 40], 2, Padding::Same), // batch 1
            (vec![1, 10, 10, 32], vec![1, 1, 32, 48], 2, Padding::Valid), // 1x1 stride 2
        ] {
            let st = [1, s, s, 1];
            let a = WindowAttrs {
                strides: &st,
                dilations: &[1, 1, 1, 1],
                padding: pad,
                explicit_paddings: &[],
                data_format: DataFormat::Nhwc,
            };
            let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
            cases.push((x, f, g));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (i, (xs, fs, g)) in cases.into_iter().enumerate() {
            let lowp = if i % 4 == 1 { DType::F16 } else { DType::BF16 };
            let round = |v: f32| match lowp {
                DType::F16 => f16::from_f32(v).to_f32(),
                _ => bf16::from_f32(v).to_f32(),
            };
            let ys = g.output_shape();
            let rand_vec = |rng: &mut rand::rngs::StdRng, s: &[usize]| -> Vec<f32> {
                (0..s.iter().product::<usize>())
                    .map(|_| rng.random_range(-2.0..2.0))
                    .collect()
            };
            let (x, f, dy) = (
                rand_vec(&mut rng, &xs),
                rand_vec(&mut rng, &fs),
                rand_vec(&mut rng, &ys),
            );
            let r = |v: &[f32]| v.iter().map(|&a| round(a)).collect::<Vec<f32>>();
            let (rx, rf, rdy) = (r(&x), r(&f), r(&dy));
            let grads = |x: &[f32], f: &[f32], dy: &[f32], lowp: Option<DType>| {
                let g = ConvGeom { lowp, ..g };
                let mut dx = vec![f32::NAN; x.len()];
                let mut df = vec![f32::NAN; f.len()];
                pool.install(|| {
                    conv_backprop_input(
                        ConvKind::Conv2D,
                        &TensorView::from_slice(fs.clone(), f),
                        &TensorView::from_slice(ys.clone(), dy),
                        &mut TensorMut::from_slice(xs.clone(), &mut dx),
                        &g,
                    )
                    .unwrap();
                    conv_backprop_filter(
                        ConvKind::Conv2D,
                        &TensorView::from_slice(xs.clone(), x),
                        &TensorView::from_slice(ys.clone(), dy),
                        &mut TensorMut::from_slice(fs.clone(), &mut df),
                        &g,
                    )
                    .unwrap();
                });
                (dx, df)
            };
            let (gx, gf) = grads(&x, &f, &dy, Some(lowp));
            let (wx, wf) = grads(&rx, &rf, &rdy, None);
            // Sums of at most kh*kw*cout (dx) or n*oh*ow (df) products <= 4.
            let tol_x = 1e-5 * 4.0 * (g.kh * g.kw * g.cout) as f32;
            let tol_f = 1e-5 * 4.0 * (g.n * g.oh * g.ow) as f32;
            for (a, b) in gx.iter().zip(&wx) {
                assert!((a - b).abs() <= tol_x, "dx {lowp} {g:?}: {a} vs {b}");
            }
            for (a, b) in gf.iter().zip(&wf) {
                assert!((a - b).abs() <= tol_f, "df {lowp} {g:?}: {a} vs {b}");
            }
            if g.cin == 64 {
                // The float32 gradients of unrounded inputs differ: lowp ran.
                let (ux, uf) = grads(&x, &f, &dy, None);
                assert_ne!(ux, gx);
                assert_ne!(uf, gf);
            }
            if lowp == DType::BF16 {
                let h = |v: &[f32]| v.iter().map(|&a| bf16::from_f32(a)).collect::<Vec<bf16>>();
                let (hx, hf, hdy) = (h(&x), h(&f), h(&dy));
                let mut dx = vec![bf16::NAN; x.len()];
                let mut df = vec![bf16::NAN; f.len()];
                pool.install(|| {
                    conv_backprop_input(
                        ConvKind::Conv2D,
                        &TensorView::from_slice(fs.clone(), &hf),
                        &TensorView::from_slice(ys.clone(), &hdy),
                        &mut TensorMut::from_slice(xs.clone(), &mut dx),
                        &g,
                    )
                    .unwrap();
                    conv_backprop_filter(
                        ConvKind::Conv2D,
                        &TensorView::from_slice(xs.clone(), &hx),
                        &TensorView::from_slice(ys.clone(), &hdy),
                        &mut TensorMut::from_slice(fs.clone(), &mut df),
                        &g,
                    )
                    .unwrap();
                });
                for (a, b) in dx.iter().zip(&wx) {
                    let a = a.to_f32();
                    assert!(
                        (a - b).abs() <= b.abs() / 256.0 + tol_x,
                        "bf16 dx {a} vs {b}"
                    );
                }
                for (a, b) in df.iter().zip(&wf) {
                    let a = a.to_f32();
                    assert!(
                        (a - b).abs() <= b.abs() / 256.0 + tol_f,
                        "bf16 df {a} vs {b}"
                    );
                }
            }
        }
    }

    fn check(kind: ConvKind, cases: usize, big: bool, threads: usize) {
        let mut rng = crate::test_rng();
        for _ in 0..cases {
            let (shape, fshape, g) = random_geom(&mut rng, kind, big);
            check_case(kind, &shape, &fshape, &g, threads);
        }
    }

    fn check_case(kind: ConvKind, shape: &[usize], fshape: &[usize], g: &ConvGeom, threads: usize) {
        let (shape, fshape, g) = (shape.to_vec(), fshape.to_vec(), *g);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut rng = crate::test_rng();
        {
            let mut r = |len: usize| -> Vec<f64> {
                (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
            };
            let x = r(shape.iter().product());
            let f = r(fshape.iter().product());
            let dy = r(g.output_shape().iter().product());
            let (want_dx, want_df) = reference(&x, &f, &dy, &g, kind == ConvKind::Depthwise);
            let nchw = g.format == DataFormat::Nchw;
            let fmt = |v: &[f64], hw: usize, c: usize| {
                if nchw {
                    to_nchw(v, g.n, hw, c)
                } else {
                    v.to_vec()
                }
            };
            let xs: Vec<f32> = fmt(&x, g.h * g.w, g.cin)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let fs: Vec<f32> = f.iter().map(|&v| v as f32).collect();
            let dys: Vec<f32> = fmt(&dy, g.oh * g.ow, g.cout)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let want_dx = fmt(&want_dx, g.h * g.w, g.cin);
            let mut dx = vec![f32::NAN; x.len()];
            let mut df = vec![f32::NAN; f.len()];
            pool.install(|| {
                let dyv = TensorView::from_slice(g.output_shape(), &dys);
                conv_backprop_input(
                    kind,
                    &TensorView::from_slice(fshape.clone(), &fs),
                    &dyv,
                    &mut TensorMut::from_slice(shape.clone(), &mut dx),
                    &g,
                )
                .unwrap();
                conv_backprop_filter(
                    kind,
                    &TensorView::from_slice(shape.clone(), &xs),
                    &dyv,
                    &mut TensorMut::from_slice(fshape.clone(), &mut df),
                    &g,
                )
                .unwrap();
            });
            for (got, want, what) in [(&dx, &want_dx, "dx"), (&df, &want_df, "df")] {
                let scale = want.iter().fold(1.0f64, |a, &b| a.max(b.abs()));
                for (i, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
                    assert!(
                        (a as f64 - b).abs() <= 1e-5 * scale,
                        "{what} {g:?} at {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn large_filters_and_stride_one_paths() {
        // Filters too large to repack per tile (chunked GEMM + col2im),
        // stride 1 (transposed forward convolution), both with groups.
        for (shape, fshape, s, pad, fmt) in [
            (
                vec![3, 9, 8, 64],
                vec![3, 3, 64, 128],
                2,
                Padding::Same,
                DataFormat::Nhwc,
            ),
            (
                vec![2, 7, 7, 64],
                vec![3, 3, 32, 128],
                2,
                Padding::Valid,
                DataFormat::Nhwc,
            ),
            (
                vec![2, 64, 7, 9],
                vec![3, 3, 64, 128],
                1,
                Padding::Same,
                DataFormat::Nchw,
            ),
            (
                vec![2, 7, 9, 64],
                vec![3, 2, 16, 96],
                1,
                Padding::Valid,
                DataFormat::Nhwc,
            ),
            (
                vec![5, 6, 9, 64],
                vec![1, 1, 64, 128],
                3,
                Padding::Valid,
                DataFormat::Nhwc,
            ),
        ] {
            let d = fmt.dims();
            let mut strides = [1i64; 4];
            strides[d[1]] = s;
            strides[d[2]] = s;
            let a = WindowAttrs {
                strides: &strides,
                dilations: &[1, 1, 1, 1],
                padding: pad,
                explicit_paddings: &[],
                data_format: fmt,
            };
            let g = conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward).unwrap();
            for threads in [1, 3] {
                check_case(ConvKind::Conv2D, &shape, &fshape, &g, threads);
            }
        }
    }

    #[test]
    fn conv2d_grads_match_reference() {
        check(ConvKind::Conv2D, 200, false, 1);
        check(ConvKind::Conv2D, 100, false, 3);
        check(ConvKind::Conv2D, 20, true, 4);
    }

    #[test]
    fn depthwise_grads_match_reference() {
        check(ConvKind::Depthwise, 200, false, 1);
        check(ConvKind::Depthwise, 100, false, 3);
        check(ConvKind::Depthwise, 20, true, 4);
    }

    #[test]
    fn half_types_compute_in_f32() {
        let a = WindowAttrs {
            strides: &[1, 1, 1, 1],
            dilations: &[1, 1, 1, 1],
            padding: Padding::Same,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let g = conv2d_geometry(&[1, 3, 3, 2], &[3, 3, 2, 1], &a, ConvPass::Forward).unwrap();
        let f = vec![f16::from_f32(0.5); 18];
        let dy = vec![f16::from_f32(1.0); 9];
        let mut dx = vec![f16::ZERO; 18];
        conv_backprop_input(
            ConvKind::Conv2D,
            &TensorView::from_slice(vec![3, 3, 2, 1], &f),
            &TensorView::from_slice(vec![1, 3, 3, 1], &dy),
            &mut TensorMut::from_slice(vec![1, 3, 3, 2], &mut dx),
            &g,
        )
        .unwrap();
        // The centre pixel is in all 9 windows.
        assert_eq!(dx[8].to_f32(), 4.5);
        assert_eq!(dx[0].to_f32(), 2.0);
    }
}
