//! Float32 products of many rows on AVX-512, `lhs[m, k] @ rhs[k, n]` with
//! `lhs` rows contiguous and `n` in whole panels of 64: `rhs` packed once
//! into panels (`winograd::products`' layout), `lhs` rows read where they
//! lie, the pointwise convolutions' kernel (`conv::pointwise`). A BERT
//! encoder's projections and feed-forward products (4096 rows by 768 or
//! 3072) are these.
//!
//! The gemm crate packs both operands, `lhs` once per block of rows; this
//! register block reads `lhs` in place and ran closer to the FMA peak
//! (2-core Zen 4, whole calls, best of 10, alternating in one process:
//! 4096 x 768 x 768 211 -> 217 GFLOP/s, 4096 x 768 x 3072 213 -> 221, the
//! same with `rhs` stored transposed 206 -> 215, 4096 x 3072 x 768 214 ->
//! 224, 4096 x 8192 x 256 209 -> 225).

use crate::host::transpose::SendPtr;
use crate::host::winograd::products::{pack_panels, packs_operand, rows_times_packed, tile_rows};
use rayon::prelude::*;

/// Fewest rows taken: packing `rhs` is a pass over it per call, which
/// only pays over enough rows (same machine: 1024 x 768 x 768 and 1024 x
/// 64 x 64 2-3 % slower than the gemm crate, 4096 rows 3-5 % faster).
const MIN_ROWS: usize = 2048;

/// Computes `dst[m, n] = lhs[m, k] @ rhs[k, n]` (`lhs` row stride `lhs_rs`
/// with unit column stride, `rhs` strides `rhs_s`, `dst` row-major) if
/// this kernel takes it: AVX-512, at least [`MIN_ROWS`] rows, `n` in whole
/// panels and `rhs` small enough to pack (`packs_operand`); false (nothing
/// written) otherwise. `threads > 1` splits the rows over the rayon pool.
///
/// # Safety
/// Every element the pointers address at their strides for `i < m`,
/// `p < k`, `j < n` must be valid; `dst` holds `m * n` floats and aliases
/// neither source.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    rhs_s: (usize, usize),
    threads: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if m < MIN_ROWS || !packs_operand(k, n) || dst.len() < m * n {
            return false;
        }
        // SAFETY: `rhs` addresses a `[k, n]` matrix at `rhs_s` (the
        // contract); `n` is a multiple of 64 (`packs_operand`).
        let packed = unsafe { pack_panels(rhs, rhs_s, k, n) };
        let tile = tile_rows(m, k, threads);
        let lhs = SendPtr(lhs as *mut f32);
        let task = |(t, out): (usize, &mut [f32])| {
            let rows = out.len() / n;
            // SAFETY: AVX-512F (`packs_operand`); rows `t * tile + i` of
            // `lhs` are rows of the product, `k` contiguous floats (the
            // contract); `out` holds those rows of `dst`.
            unsafe {
                rows_times_packed(
                    rows,
                    |i| lhs.get().add((t * tile + i) * lhs_rs) as *const f32,
                    k,
                    &packed,
                    out,
                )
            }
        };
        let dst = &mut dst[..m * n];
        if threads > 1 {
            dst.par_chunks_mut(tile * n).enumerate().for_each(task);
        } else {
            dst.chunks_mut(tile * n).enumerate().for_each(task);
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (m, n, k, dst, lhs, lhs_rs, rhs, rhs_s, threads);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::winograd::products::{packs, MAX_PACKED_BYTES, PANEL};
    use rand::Rng;

    /// Random tall products, `rhs` row-major and stored transposed, `lhs`
    /// rows with gaps, one thread and three: every output equals the sum
    /// over `p` in order, one fused multiply-add each, bit for bit.
    #[test]
    fn tall_products_equal_ordered_fma_sums() {
        if !packs(PANEL) {
            return; // No AVX-512: `run` declines (checked below).
        }
        let mut rng = crate::test_rng();
        for case in 0..4 {
            let m = MIN_ROWS + rng.random_range(0..60);
            let k = rng.random_range(1..90);
            let n = PANEL * rng.random_range(1..4);
            let lhs_rs = k + rng.random_range(0..4);
            let transposed = case % 2 == 1;
            let threads = if case < 2 { 1 } else { 3 };
            let a: Vec<f32> = (0..m * lhs_rs)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            // Element (p, j) of `rhs`.
            let rhs_s = if transposed { (1, k) } else { (n, 1) };
            let mut c = vec![f32::NAN; m * n];
            let ran = crate::test_pool(threads).install(|| {
                // SAFETY: `a` holds `m` rows of `lhs_rs >= k` floats, `b`
                // the `[k, n]` matrix at `rhs_s`, `c` `m * n` floats.
                unsafe {
                    run(
                        m,
                        n,
                        k,
                        &mut c,
                        a.as_ptr(),
                        lhs_rs,
                        b.as_ptr(),
                        rhs_s,
                        threads,
                    )
                }
            });
            assert!(ran, "case {case}: {m}x{k}x{n} declined");
            for i in 0..m {
                for j in 0..n {
                    let want = (0..k).fold(0f32, |s, p| {
                        a[i * lhs_rs + p].mul_add(b[p * rhs_s.0 + j * rhs_s.1], s)
                    });
                    let got = c[i * n + j];
                    assert!(
                        got.to_bits() == want.to_bits(),
                        "case {case} {m}x{k}x{n} transposed {transposed}: ({i}, {j}) {got} vs {want}"
                    );
                }
            }
        }
    }

    /// What `run` declines: too few rows, columns not in whole panels, an
    /// operand too large to pack.
    #[test]
    fn tall_products_decline_what_they_do_not_take() {
        let (m, k, n) = (MIN_ROWS - 1, 8, 64);
        let a = vec![1f32; MIN_ROWS * k];
        let b = vec![1f32; k * (n + 1)];
        let mut c = vec![0f32; MIN_ROWS * (n + 1)];
        // SAFETY: every operand holds its shape.
        unsafe {
            assert!(!run(m, n, k, &mut c, a.as_ptr(), k, b.as_ptr(), (n, 1), 1));
            assert!(!run(
                m + 1,
                n + 1,
                k,
                &mut c,
                a.as_ptr(),
                k,
                b.as_ptr(),
                (n + 1, 1),
                1
            ));
            let took = run(m + 1, n, k, &mut c, a.as_ptr(), k, b.as_ptr(), (n, 1), 1);
            assert_eq!(took, packs(n));
            // Sums of `k` ones where it ran, untouched where it declined.
            let want = if took { k as f32 } else { 0.0 };
            assert!(c[..MIN_ROWS * n].iter().all(|&v| v == want));
        }
        let limit = MAX_PACKED_BYTES / 4;
        assert_eq!(packs_operand(limit / 1024, 1024), packs(1024));
        assert!(!packs_operand(limit / 1024 + 1, 1024));
    }
}
