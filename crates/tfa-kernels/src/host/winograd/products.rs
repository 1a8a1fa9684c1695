//! The A² products of a Winograd job, `M[i] = V[i] @ U[i]` (tiles x c by
//! c x k), on AVX-512 with the transformed filter `U` written once per call
//! in the layout the kernel reads ("packed": for each point, panels of
//! [`PANEL`] output channels, each `c` rows of 64 contiguous floats).
//!
//! The gemm crate repacks both operands on every call: a job's A² calls
//! repacked the whole transformed filter once per job, 22-25 % of a batch-32
//! 14x14x256 or 7x7x512 layer in `perf` (its micro-kernel itself ran at 95 %
//! of the FMA peak). Here a register block of [`ROWS`] tiles by 64 output
//! channels accumulates `acc += v * u` over the input channels, `v`
//! broadcast from the transformed inputs as the input transform wrote them
//! and `u` loaded from the panel, so nothing is copied (2-core Zen 4, batch
//! 32, F(4x4) layers, gemm crate and this alternating in one process:
//! 14x14x256 and 7x7x512 9-10 % faster, 28x28x128 0-6 %, 56x56x64 within
//! noise; the kernel runs below the gemm crate's micro-kernel, ~80 % of it,
//! so what it gains is most of the packing). Hand-written because no GEMM
//! crate takes a caller's pre-packed operand.

/// Output channels per panel and register block (4 AVX-512 vectors).
pub(crate) const PANEL: usize = 64;

/// Tiles per register block: `ROWS * 4` accumulators and 4 filter vectors
/// fill 28 of AVX-512's 32 registers.
pub(crate) const ROWS: usize = 6;

/// Whether products to `k` output channels run on this register block
/// (Winograd's jobs, with the filter transformed into panels; pointwise
/// convolutions, `conv::pointwise`): on CPUs with AVX-512 and whole panels.
pub(crate) fn packs(k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        k > 0
            && k.is_multiple_of(PANEL)
            && crate::host::cpu::simd_level() == crate::host::cpu::Simd::Avx512
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = k;
        false
    }
}

/// Largest right operand, in bytes, that [`pack_panels`] and
/// [`rows_times_packed`] take (pointwise convolutions, tall matrix
/// products): each task of a few rows streams every panel once, from L3
/// while the operand fits there. 2-core Zen 4 (32 MB L3), against the gemm
/// crate in one process: operands of 8-16 MB 3-8 % faster (4096 x 2048 x
/// 2048 211 -> 223 GFLOP/s), 36 MB 134 against 211, 64 MB 125 against 211.
pub(crate) const MAX_PACKED_BYTES: usize = 16 << 20;

/// Bytes of a task's left-operand rows: the task's output rows (a few
/// hundred KB at most on ResNet50's shapes) stay in L2 for a convolution's
/// epilogue (2-core Zen 4, batch 32, 64 KB to 1 MB alternating in one
/// process: 64-256 KB alike, 1 MB 2 % slower).
const TILE_BYTES: usize = 64 << 10;

/// Bytes of panels one block of rows runs before the next block, so they
/// stay in L2 (2-core Zen 4, batch 32: 64 KB, 256 KB and the whole filter
/// alike while the shared L3 was quiet; reading a 4 MB filter once per
/// block took a 7x7 2048 -> 512 layer from 16 to 30 ms in a noisy spell).
const CHUNK_BYTES: usize = 256 << 10;

/// Whether a `[c, k]` right operand is packed into panels for
/// [`rows_times_packed`]: on AVX-512 with whole panels, at most
/// [`MAX_PACKED_BYTES`].
pub(crate) fn packs_operand(c: usize, k: usize) -> bool {
    packs(k) && c > 0 && c.saturating_mul(k).saturating_mul(4) <= MAX_PACKED_BYTES
}

/// Rows per task for `m` rows of depth `c` on `threads`: [`TILE_BYTES`] of
/// left-operand rows, at least two tasks per thread, whole register blocks.
pub(crate) fn tile_rows(m: usize, c: usize, threads: usize) -> usize {
    let by_cache = (TILE_BYTES / (c.max(1) * 4)).max(ROWS);
    let by_balance = m.div_ceil(threads.max(1) * 2).max(ROWS);
    by_cache.min(by_balance).div_ceil(ROWS) * ROWS
}

/// A `[c, k]` matrix, element `(i, j)` at `src + i * rs + j * cs`, packed
/// into `k / 64` panels: panel `p`, row `i` holds columns `[64p, 64p + 64)`
/// of row `i`.
///
/// # Safety
/// `src` must be valid for reading every element `(i, j)`, `i < c`, `j < k`,
/// at those strides; `k` is a multiple of [`PANEL`].
pub(crate) unsafe fn pack_panels(
    src: *const f32,
    (rs, cs): (usize, usize),
    c: usize,
    k: usize,
) -> Vec<f32> {
    use crate::host::transpose::SendPtr;
    use rayon::prelude::*;
    let mut packed = vec![0f32; c * k];
    let src = SendPtr(src as *mut f32);
    let fill = |(p, panel): (usize, &mut [f32])| {
        for (i, row) in panel.chunks_exact_mut(PANEL).enumerate() {
            let at = i * rs + p * PANEL * cs;
            // SAFETY: row `i`, columns `64p..64p + 64` are elements of the
            // matrix (this function's contract).
            unsafe {
                if cs == 1 {
                    row.copy_from_slice(std::slice::from_raw_parts(src.get().add(at), PANEL));
                } else {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = *src.get().add(at + j * cs);
                    }
                }
            }
        }
    };
    if c * k >= 1 << 18 {
        packed.par_chunks_mut(c * PANEL).enumerate().for_each(fill);
    } else {
        packed.chunks_mut(c * PANEL).enumerate().for_each(fill);
    }
    packed
}

/// `out[i] = row(i) @ B` for the `rows` rows of one task, `B` a `[c, k]`
/// matrix packed by [`pack_panels`] and `out` row-major with rows of `k`:
/// blocks of [`ROWS`] rows run a chunk of panels while their rows are in
/// L1 and the chunk in L2; `B` streams from L3 once per chunk and task,
/// not once per block. Each sum runs over `c` in order.
///
/// # Safety
/// The CPU must have AVX-512F; `row(i)` must be valid for `c` reads for
/// every `i < rows`; `packed` holds `c * k` floats (`k` a multiple of
/// [`PANEL`]) and `out` at least `rows * k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn rows_times_packed(
    rows: usize,
    row: impl Fn(usize) -> *const f32,
    c: usize,
    packed: &[f32],
    out: &mut [f32],
) {
    let k = packed.len() / c.max(1);
    assert!(
        k.is_multiple_of(PANEL) && out.len() >= rows * k,
        "rows_times_packed: operands shorter than their shapes"
    );
    let panels = k / PANEL;
    let per_chunk = (CHUNK_BYTES / (c * PANEL * 4)).max(1);
    for c0 in (0..panels).step_by(per_chunk) {
        for r in (0..rows).step_by(ROWS) {
            let n = ROWS.min(rows - r);
            let at = |i: usize| row(r + i.min(n - 1));
            for p in c0..(c0 + per_chunk).min(panels) {
                let panel = packed[p * c * PANEL..(p + 1) * c * PANEL].as_ptr();
                let o = out[r * k + p * PANEL..].as_mut_ptr();
                // SAFETY: AVX-512F and the rows (this function's contract);
                // the panel holds `c` rows of 64 and rows `r..r + n` of
                // `out` 64 floats from column `64p` (asserted above).
                unsafe { rows_by_panel(n, at, c, (panel, Packed), o, k) }
            }
        }
    }
}

/// A panel's row stride: [`PANEL`] for packed panels ([`Packed`], a
/// constant in the compiled loop, as before the stride was a parameter),
/// or the row length of a matrix read in place (`usize`, `matmul::few_rows`).
pub(crate) trait PanelStride: Copy {
    fn get(self) -> usize;
}

/// The row stride of packed panels, [`PANEL`].
#[derive(Clone, Copy)]
pub(crate) struct Packed;

impl PanelStride for Packed {
    #[inline]
    fn get(self) -> usize {
        PANEL
    }
}

impl PanelStride for usize {
    #[inline]
    fn get(self) -> usize {
        self
    }
}

/// Where the transformed filter's element (input channel `c`, output
/// channel `k`) of one point's plane lies in the packed plane of `c_in`
/// rows: panel `k / 64`, row `c`, column `k % 64`.
pub(super) fn packed_at(c: usize, k: usize, c_in: usize) -> usize {
    (k / PANEL * c_in + c) * PANEL + k % PANEL
}

/// `m[i] = v[i] @ u[i]` for the `points` products of a job: `v` is
/// `points x tiles x c`, `u` `points` packed planes of `c x k`, `m`
/// `points x tiles x k`, all row-major. Needs [`packs`]`(k)`.
pub(super) fn multiply(
    points: usize,
    tiles: usize,
    c: usize,
    k: usize,
    v: &[f32],
    u: &[f32],
    m: &mut [f32],
) {
    assert!(
        k.is_multiple_of(PANEL)
            && v.len() >= points * tiles * c
            && u.len() >= points * c * k
            && m.len() >= points * tiles * k,
        "winograd products: operands shorter than their shapes"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::host::cpu::simd_level() == crate::host::cpu::Simd::Avx512 {
        // SAFETY: the CPU has AVX-512F (checked); the operands hold their
        // shapes (asserted above).
        unsafe { multiply_avx512(points, tiles, c, k, v, u, m) };
        return;
    }
    // Any other CPU (only the tests come here: `packs` is false there): the
    // same sums in the same order.
    for i in 0..points {
        for t in 0..tiles {
            for kk in 0..k {
                let mut s = 0f32;
                for cc in 0..c {
                    s = v[(i * tiles + t) * c + cc].mul_add(u[i * c * k + packed_at(cc, kk, c)], s);
                }
                m[(i * tiles + t) * k + kk] = s;
            }
        }
    }
}

/// [`multiply`] on AVX-512: for each point and panel, the job's tiles in
/// blocks of [`ROWS`].
///
/// # Safety
/// The CPU must have AVX-512F; the operands hold their shapes and `k` is a
/// multiple of [`PANEL`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn multiply_avx512(
    points: usize,
    tiles: usize,
    c: usize,
    k: usize,
    v: &[f32],
    u: &[f32],
    m: &mut [f32],
) {
    for i in 0..points {
        let vi = &v[i * tiles * c..(i + 1) * tiles * c];
        let mi = &mut m[i * tiles * k..(i + 1) * tiles * k];
        for p in 0..k / PANEL {
            let panel = &u[(i * k / PANEL + p) * c * PANEL..][..c * PANEL];
            let mut t = 0;
            while t < tiles {
                let n = ROWS.min(tiles - t);
                let at = Block {
                    c,
                    k,
                    t,
                    col: p * PANEL,
                };
                // SAFETY: AVX-512F (this function's contract); tiles
                // `t..t + n` and the panel's columns lie inside `vi`,
                // `panel` and `mi`.
                unsafe {
                    match n {
                        6 => block::<6>(vi, panel, &at, mi),
                        5 => block::<5>(vi, panel, &at, mi),
                        4 => block::<4>(vi, panel, &at, mi),
                        3 => block::<3>(vi, panel, &at, mi),
                        2 => block::<2>(vi, panel, &at, mi),
                        _ => block::<1>(vi, panel, &at, mi),
                    }
                }
                t += n;
            }
        }
    }
}

/// One register block's place: tiles `t..` by output channels
/// `col..col + 64` of a product of `c` input and `k` output channels.
/// (Blocking the input channels so that a panel's rows stay in L1 measured
/// no faster: the panel streams from L2.)
#[derive(Clone, Copy)]
struct Block {
    c: usize,
    k: usize,
    t: usize,
    col: usize,
}

/// Tiles `at.t..at.t + R` by output channels `at.col..at.col + 64` of one
/// product, summed over the input channels in order.
///
/// # Safety
/// As for [`multiply_avx512`], with the block inside `v` (rows of `c`),
/// `m` (rows of `k`) and `panel` (`c` rows of 64).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const R: usize>(v: &[f32], panel: &[f32], at: &Block, m: &mut [f32]) {
    let Block { c, k, t, col } = *at;
    assert!(
        (t + R) * c <= v.len()
            && c * PANEL <= panel.len()
            && (t + R - 1) * k + col + PANEL <= m.len()
    );
    let rows: [*const f32; R] = std::array::from_fn(|r| v[(t + r) * c..].as_ptr());
    // SAFETY: AVX-512F (this function's contract); each tile's row holds
    // `c` floats, the panel `c` rows of 64 and each output row 64 floats
    // from `col` (asserted above).
    unsafe {
        panel_block(
            &rows,
            c,
            panel.as_ptr(),
            PANEL,
            m[t * k + col..].as_mut_ptr(),
            k,
        )
    };
}

/// `out[r * stride + j] = sum over cc of rows[r][cc] * panel[cc * panel_stride + j]`
/// for `R` rows and the 64 columns of one panel, the sum in order of `cc`
/// (one fused multiply-add each): `R * 4` accumulators, the panel row's 4
/// vectors loaded and each row's value broadcast where it lies. A packed
/// panel has `panel_stride` [`Packed`]; a matrix read in place
/// (`matmul::few_rows`) its row length.
///
/// # Safety
/// The CPU must have AVX-512F; each `rows[r]` is valid for `c` reads,
/// `panel + cc * panel_stride` for 64 reads for every `cc < c` and
/// `out + r * stride` for 64 writes, for every `r < R`; `out` aliases no
/// source.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) unsafe fn panel_block<const R: usize, S: PanelStride>(
    rows: &[*const f32; R],
    c: usize,
    panel: *const f32,
    panel_stride: S,
    out: *mut f32,
    stride: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 4]; R];
    let step = |acc: &mut [[__m512; 4]; R], cc: usize| {
        // SAFETY: row `cc` of the panel and element `cc` of each row lie
        // inside them (the contract); unaligned loads.
        unsafe {
            let wp = panel.add(cc * panel_stride.get());
            let u = [
                _mm512_loadu_ps(wp),
                _mm512_loadu_ps(wp.add(16)),
                _mm512_loadu_ps(wp.add(32)),
                _mm512_loadu_ps(wp.add(48)),
            ];
            for (a, row) in acc.iter_mut().zip(rows) {
                let x = _mm512_set1_ps(*row.add(cc));
                for (aq, uq) in a.iter_mut().zip(&u) {
                    *aq = _mm512_fmadd_ps(x, *uq, *aq);
                }
            }
        }
    };
    // Two steps per iteration: about 3 % faster than one on the 7x7x512
    // layer (fewer address computations per multiply-add), even elsewhere.
    let mut cc = 0;
    while cc + 2 <= c {
        step(&mut acc, cc);
        step(&mut acc, cc + 1);
        cc += 2;
    }
    if cc < c {
        step(&mut acc, cc);
    }
    for (r, a) in acc.iter().enumerate() {
        for (q, aq) in a.iter().enumerate() {
            // SAFETY: row `r` of `out` holds 64 floats (the contract).
            unsafe { _mm512_storeu_ps(out.add(r * stride + 16 * q), *aq) };
        }
    }
}

/// `n` rows (1 to [`ROWS`]) by one panel, row `i` at `at(i)`:
/// [`panel_block`] for that many rows (pointwise convolutions, few-row
/// matrix products).
///
/// # Safety
/// As for [`panel_block`], with `rows[i] = at(i)` for `i < n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn rows_by_panel<S: PanelStride>(
    n: usize,
    at: impl Fn(usize) -> *const f32,
    c: usize,
    panel: (*const f32, S),
    out: *mut f32,
    stride: usize,
) {
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows<const R: usize, S: PanelStride>(
        at: impl Fn(usize) -> *const f32,
        c: usize,
        (panel, panel_stride): (*const f32, S),
        out: *mut f32,
        stride: usize,
    ) {
        let rows: [*const f32; R] = std::array::from_fn(at);
        // SAFETY: this function's contract.
        unsafe { panel_block(&rows, c, panel, panel_stride, out, stride) }
    }
    // SAFETY: this function's contract, for the block size `n`.
    unsafe {
        match n {
            6 => rows::<6, S>(at, c, panel, out, stride),
            5 => rows::<5, S>(at, c, panel, out, stride),
            4 => rows::<4, S>(at, c, panel, out, stride),
            3 => rows::<3, S>(at, c, panel, out, stride),
            2 => rows::<2, S>(at, c, panel, out, stride),
            _ => rows::<1, S>(at, c, panel, out, stride),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::winograd::tests::{data, test_seed};

    /// Every register block size, one panel and several, depths odd and
    /// even: the products equal float64 sums to float32 rounding, whichever
    /// way this CPU runs them.
    #[test]
    fn multiply_matches_float64_sums() {
        let seed = test_seed(5);
        for (case, &(points, tiles, c, k)) in [
            (1, 1, 1, 64),
            (2, 13, 7, 128),
            (3, 6, 64, 64),
            (1, 11, 130, 192),
        ]
        .iter()
        .enumerate()
        {
            let v = data(points * tiles * c, seed + case as u64);
            let plain = data(points * c * k, seed + 50 + case as u64);
            let mut u = vec![0f32; plain.len()];
            for i in 0..points {
                for cc in 0..c {
                    for kk in 0..k {
                        u[i * c * k + packed_at(cc, kk, c)] = plain[(i * c + cc) * k + kk];
                    }
                }
            }
            let mut m = vec![f32::NAN; points * tiles * k];
            multiply(points, tiles, c, k, &v, &u, &mut m);
            for i in 0..points {
                for t in 0..tiles {
                    for kk in 0..k {
                        let want: f64 = (0..c)
                            .map(|cc| {
                                v[(i * tiles + t) * c + cc] as f64
                                    * plain[(i * c + cc) * k + kk] as f64
                            })
                            .sum();
                        let got = m[(i * tiles + t) * k + kk] as f64;
                        assert!(
                            (got - want).abs() <= 1e-6 * c as f64,
                            "seed {seed} case {case}: point {i} tile {t} channel {kk}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
