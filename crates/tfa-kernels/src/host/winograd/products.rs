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
