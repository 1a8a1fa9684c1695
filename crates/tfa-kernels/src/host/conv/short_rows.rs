//! Direct float32 Conv2D for windows with short rows (`kw * cin` up to 64
//! floats): an image's RGB stem (ResNet50's 7x7 stride-2 layer from 3
//! channels to 64: rows of 21) and pointwise layers from up to 64 channels.
//!
//! im2col + GEMM suits these badly: a stem's patch row is `kh` runs of only
//! 21 floats, copied one `memcpy` at a time, which the GEMM then packs once
//! more; a pointwise layer with an epilogue is cut into tiles whose GEMMs
//! each repack the filter. Here the products read the input rows
//! themselves: for one output row, the `kh` input rows it needs are copied
//! once into a zero-padded strip (a pointwise layer reads its input row in
//! place), and a register block of [`PX`] output pixels by 64 output
//! channels accumulates `acc += x * w` over `(ky, kx, c)` in order, the input
//! value broadcast from the strip and the filter row loaded from the HWIO
//! filter, which already is `[kh][kw * cin][cout]` (no packing). The fused
//! epilogue runs on each task's two output rows while they are in cache.

use super::{for_each_tile, run_epilogue, ConvGeom, DataFormat, RowsEpilogue};
use tfa_core::Result;

/// Output pixels per register block: `PX * 4` accumulators and 4 filter
/// vectors fill 28 of AVX-512's 32 registers.
const PX: usize = 6;

/// Output channels per register block (4 AVX-512 vectors).
const CO: usize = 64;

/// Longest window row (`kw * cin`) taken here: beyond it the GEMM path's
/// packing and blocking of `k` pay (`conv_layers_bench -- 32 5 1`, ResNet50
/// layers at batch 32 with a Relu epilogue, Zen 4: 64 -> 256 pointwise 24.4
/// -> 21.2 ms here; from 256 channels within noise, 19.1 vs 18.9 ms; 14x14
/// layers to 1024 or 2048 channels slower here, 16.3 -> 19.5 ms).
const MAX_RUN: usize = 64;

/// Output rows per task: enough to keep two threads busy at batch 1 (112
/// rows for the stem) in blocks whose output (28 KB a row for the stem, 56
/// KB for a 56x56 layer to 256 channels) stays in L2.
const ROWS_PER_TASK: usize = 2;

/// Whether [`conv2d`] computes `g`.
fn suits(g: &ConvGeom) -> bool {
    g.format == DataFormat::Nhwc
        && g.lowp.is_none()
        && g.groups == 1
        && g.dh == 1
        && g.dw == 1
        && g.kw * g.cin <= MAX_RUN
        && g.cout.is_multiple_of(CO)
        && g.ow > 0
}

/// The convolution `y = conv(x, f)` for a shape that [`suits`] this kernel,
/// on a CPU with AVX-512, then `epilogue` on each task's rows; `None` (and
/// nothing written) otherwise.
pub(crate) fn conv2d(
    x: &[f32],
    f: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Option<Result<()>> {
    #[cfg(target_arch = "x86_64")]
    {
        if !suits(g) || super::super::cpu::simd_level() != super::super::cpu::Simd::Avx512 {
            return None;
        }
        let row = g.ow * g.cout;
        let run = |(t, rows): (usize, &mut [f32]), strip: &mut Vec<f32>| -> Result<()> {
            let r0 = t * ROWS_PER_TASK;
            for (i, out) in rows.chunks_exact_mut(row).enumerate() {
                let strip = fill_strip(x, g, r0 + i, strip);
                // SAFETY: simd_level() is Avx512 (checked above); `strip`
                // holds kh rows of the padded span output row `r0 + i`
                // reads, `out` is that output row.
                unsafe { row_avx512(strip, f, g, out) };
            }
            run_epilogue(epilogue, r0 * g.ow, rows)
        };
        // As the tiled path: tiny convolutions stay on the calling thread.
        let flops = g.n * g.oh * g.ow * g.kh * g.kw * g.cin * g.cout;
        let parallel = rayon::current_num_threads() > 1 && flops >= 1 << 16;
        Some(for_each_tile(y, ROWS_PER_TASK * row, parallel, run))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, f, y, g, epilogue);
        None
    }
}

/// Floats in one row of the strip: the input columns output row's window
/// spans, padding included, times the channels.
fn strip_row(g: &ConvGeom) -> usize {
    ((g.ow - 1) * g.sw + g.kw) * g.cin
}

/// The `kh` input rows output row `r = n * oh + oy` reads, as one strip
/// with zeros where the window hangs over the padding: copied into `strip`,
/// or the input row itself when one row without padding is all it reads (a
/// pointwise convolution).
fn fill_strip<'a>(x: &'a [f32], g: &ConvGeom, r: usize, strip: &'a mut Vec<f32>) -> &'a [f32] {
    let (n, oy) = (r / g.oh, r % g.oh);
    let len = strip_row(g);
    let img = &x[n * g.h * g.w * g.cin..(n + 1) * g.h * g.w * g.cin];
    let iy = oy * g.sh;
    if g.kh == 1 && g.pad_top == 0 && g.pad_left == 0 && iy < g.h && len <= g.w * g.cin {
        return &img[iy * g.w * g.cin..iy * g.w * g.cin + len];
    }
    strip.clear();
    strip.resize(g.kh * len, 0.0);
    // Input columns [ix0, ix0 + span) land at strip column 0 onwards.
    let ix0 = -(g.pad_left as isize);
    let first = (-ix0).max(0) as usize; // strip columns left of the input
    let last = (len / g.cin).min((g.w as isize - ix0).max(0) as usize);
    for ky in 0..g.kh {
        let iy = (oy * g.sh + ky) as isize - g.pad_top as isize;
        if iy < 0 || iy >= g.h as isize || first >= last {
            continue;
        }
        let src = &img[iy as usize * g.w * g.cin..];
        let s = (first as isize + ix0) as usize * g.cin;
        strip[ky * len + first * g.cin..ky * len + last * g.cin]
            .copy_from_slice(&src[s..s + (last - first) * g.cin]);
    }
    strip
}

/// One output row: every pixel by every output channel.
///
/// # Safety
/// The CPU must have AVX-512F; `strip` is [`fill_strip`]'s for this row and
/// `out` is the row (`ow * cout` floats).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_avx512(strip: &[f32], f: &[f32], g: &ConvGeom, out: &mut [f32]) {
    let mut ox = 0;
    while ox < g.ow {
        let px = PX.min(g.ow - ox);
        for co in (0..g.cout).step_by(CO) {
            // SAFETY: the CPU has AVX-512F (this function's contract); the
            // block's pixels and channels lie inside the row.
            unsafe {
                match px {
                    6 => block::<6>(strip, f, g, ox, co, out),
                    5 => block::<5>(strip, f, g, ox, co, out),
                    4 => block::<4>(strip, f, g, ox, co, out),
                    3 => block::<3>(strip, f, g, ox, co, out),
                    2 => block::<2>(strip, f, g, ox, co, out),
                    _ => block::<1>(strip, f, g, ox, co, out),
                }
            }
        }
        ox += px;
    }
}

/// `P` output pixels from `ox` by channels `[co, co + 64)`, summed over
/// `(ky, kx, c)` in order (one fused multiply-add each).
///
/// # Safety
/// As for [`row_avx512`], with `ox + P <= ow` and `co + 64 <= cout`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const P: usize>(
    strip: &[f32],
    f: &[f32],
    g: &ConvGeom,
    ox: usize,
    co: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let run = g.kw * g.cin;
    let len = strip_row(g);
    let step = g.sw * g.cin; // strip floats between neighbouring pixels
    let mut acc = [[_mm512_setzero_ps(); 4]; P];
    for ky in 0..g.kh {
        let xs = &strip[ky * len + ox * step..];
        let fs = &f[ky * run * g.cout + co..];
        // The last pixel's window ends inside the strip row, the last
        // filter row inside the filter: bounds checked once here.
        assert!((P - 1) * step + run <= xs.len() && (run - 1) * g.cout + CO <= fs.len());
        for j in 0..run {
            // SAFETY: in bounds (asserted above); unaligned loads.
            unsafe {
                let wp = fs.as_ptr().add(j * g.cout);
                let w = [
                    _mm512_loadu_ps(wp),
                    _mm512_loadu_ps(wp.add(16)),
                    _mm512_loadu_ps(wp.add(32)),
                    _mm512_loadu_ps(wp.add(48)),
                ];
                for (p, a) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*xs.get_unchecked(p * step + j));
                    for (q, aq) in a.iter_mut().enumerate() {
                        *aq = _mm512_fmadd_ps(v, w[q], *aq);
                    }
                }
            }
        }
    }
    for (p, a) in acc.iter().enumerate() {
        let o = &mut out[(ox + p) * g.cout + co..(ox + p) * g.cout + co + CO];
        for (q, aq) in a.iter().enumerate() {
            // SAFETY: `o` holds 64 floats.
            unsafe { _mm512_storeu_ps(o.as_mut_ptr().add(16 * q), *aq) };
        }
    }
}
