//! Convolution kernels (NHWC): im2col + GEMM tiles, 1x1 as plain GEMM, depthwise direct,
//! windows with short rows direct (`short_rows`: RGB stems, pointwise from
//! up to 64 channels), pointwise layers of 1024 pixels or more to whole
//! panels of 64 channels on AVX-512 by a packed-filter kernel
//! (`pointwise`).
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
use super::lowp_gemm::{lowp_gemm_packed, selected_path, LowpPath, LowpSrc, LowpType, PackedB};
pub(crate) use super::numeric::{Compute, Numeric, Widen};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

mod depthwise;
mod numerics;
pub(crate) mod pointwise;
pub(crate) mod rounded;
pub(crate) mod short_rows;
pub(crate) use crate::geometry::window::*;
pub use depthwise::*;
pub(crate) use numerics::*;

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
    if selected_path(lowp) == LowpPath::Portable {
        return rounded::conv2d_nhwc_rounded(x, f, y, g, lowp, epilogue, rounded::CHUNK_BYTES);
    }
    let cin_g = g.cin / g.groups;
    let cout_g = cout / g.groups;
    let k = g.kh * g.kw * cin_g;
    let direct = g.is_pointwise();
    let threads = rayon::current_num_threads().max(1);
    let flops = m * k * cout;
    let filters = pack_filters(f, g, lowp, flops >= 1 << 18);
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
    let tile = lowp_tile_rows::<S, O>(g, k, threads);
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

/// Each group's filter columns, rounded to `lowp` and packed for `lowp_gemm`
/// (none when the product is empty).
fn pack_filters<S: LowpSrc>(f: &[S], g: &ConvGeom, lowp: LowpType, parallel: bool) -> Vec<PackedB> {
    let (cout, cout_g) = (g.cout, g.cout / g.groups);
    let k = g.kh * g.kw * (g.cin / g.groups);
    if k == 0 || cout_g == 0 {
        return Vec::new();
    }
    let path = selected_path(lowp);
    (0..g.groups)
        .map(|grp| {
            // SAFETY: group grp's filter columns [grp*cout_g, +cout_g) of k
            // rows of stride cout lie inside `f` (validated HWIO shape).
            unsafe {
                PackedB::new(
                    path,
                    k,
                    cout_g,
                    f[grp * cout_g..].as_ptr(),
                    (cout as isize, 1),
                    lowp,
                    parallel,
                )
            }
        })
        .collect()
}

/// Output rows per task of `conv2d_nhwc_lowp`: an im2col tile that fits the
/// cache, but enough tasks to keep every thread busy; a low-precision
/// output's float32 accumulators stay in L2.
fn lowp_tile_rows<S, O: LowpOut>(g: &ConvGeom, k: usize, threads: usize) -> usize {
    let m = g.n * g.oh * g.ow;
    let by_cache = (TILE_BYTES / (k.max(1) * std::mem::size_of::<S>())).clamp(32, 4096);
    let by_balance = m.div_ceil(threads * 4).max(32);
    let tile = if g.is_pointwise() {
        by_balance.min(1024)
    } else {
        by_cache.min(by_balance)
    };
    if O::as_f32(&mut []).is_none() {
        tile.min((LOWP_ACC_BYTES / (4 * g.cout)).max(32))
    } else {
        tile
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

/// [`conv2d_nhwc`] without Winograd's method, whatever the shape (the
/// reference Winograd is measured and timed against).
pub(crate) fn conv2d_nhwc_direct<T: Compute>(x: &[T], f: &[T], y: &mut [T], g: &ConvGeom) {
    let _ = conv2d_nhwc_tiles_with(x, f, y, g, None, false);
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
    conv2d_nhwc_tiles_with(x, f, y, g, epilogue, true)
}

/// [`conv2d_nhwc_tiles`], Winograd's method allowed where it is cheaper or
/// not at all.
fn conv2d_nhwc_tiles_with<T: Compute>(
    x: &[T],
    f: &[T],
    y: &mut [T],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
    winograd: bool,
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
    if let Some(done) = T::own_conv(x, f, y, g, epilogue, winograd) {
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
    // Tiles of a few dozen rows (batch 1 on 14x14 maps) would each repack
    // the filter for a small GEMM: one GEMM sharing its packed filter, and
    // the epilogue after it, costs less while the output is this small.
    let few_rows = tile < MIN_TILE_ROWS && threads > 1;
    if direct
        && g.groups == 1
        && (epilogue.is_none() || k * cout * elem > TILED_POINTWISE_BYTES || few_rows)
    {
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
    if !direct && g.groups == 1 && (k * cout * elem > BIG_FILTER_BYTES || few_rows) && threads > 1 {
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
    for_each_tile(y, tile * cout, threads > 1 && flops >= (1 << 16), run)?;
    Ok(true)
}

/// Runs `run((i, tile), scratch)` on each `len`-element tile `i` of `y`
/// (the last may be shorter): on rayon's threads when `parallel`, each
/// thread with scratch of its own, else in order on the calling thread.
pub(crate) fn for_each_tile<T: Send, S: Default>(
    y: &mut [T],
    len: usize,
    parallel: bool,
    run: impl Fn((usize, &mut [T]), &mut S) -> Result<()> + Sync + Send,
) -> Result<()> {
    if parallel {
        y.par_chunks_mut(len)
            .enumerate()
            .try_for_each_init(S::default, |scratch, item| run(item, scratch))
    } else {
        let mut scratch = S::default();
        y.chunks_mut(len)
            .enumerate()
            .try_for_each(|item| run(item, &mut scratch))
    }
}

/// Fewest rows per tile for which [`conv2d_nhwc_tiles`] repacks the filter
/// per tile (measured at batch 1 with a Relu epilogue, 2 cores: 14x14
/// 256 -> 1024 pointwise took 2.33 ms in tiles of 25 rows against 1.45 ms
/// as one GEMM; 28x28 layers, tiles of 98 rows, ran as fast tiled).
const MIN_TILE_ROWS: usize = 64;

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

#[cfg(test)]
mod tests;
