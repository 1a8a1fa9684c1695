//! Float32 products of few output rows on AVX-512 with both operands read
//! where they lie: a recurrent cell's `h @ U` (32 x 256 by 256 x 1024) and
//! its input gradient `dz @ U^T`, a batch-1 Dense layer.
//!
//! The gemm crate packs the right operand on every call, a pass over all of
//! it for every few rows of output (a recurrent weight is 1 MB, its product
//! with 32 rows 17 MFLOP); in a loop of such products that costs as much as
//! the multiply-adds. Here nothing is copied:
//! - `rhs` row-major (`[k, n]`, unit column stride): register blocks of
//!   [`ROWS`] output rows by 64 columns, `lhs` values broadcast from its
//!   rows and `rhs` rows loaded in place (`winograd::products`' block, its
//!   panel stride the row length);
//! - `rhs` stored transposed (`[n, k]`, unit row stride): every output is a
//!   dot product of two contiguous rows, so register blocks of [`DOT_ROWS`]
//!   x [`DOT_COLS`] outputs keep 16-lane partial sums over `k`, added
//!   across lanes at the end.
//!
//! Hand-written because no GEMM crate multiplies without packing.

use crate::host::par::for_each_task;
use crate::host::transpose::SendPtr;
use crate::host::winograd::products::{rows_by_panel, PANEL, ROWS};

/// Most output rows taken with `rhs` row-major: from 128 the gemm crate was
/// as fast (2-core Zen 4, k = 256, n = 1024, alternating in one process:
/// 32 rows 1.00-1.09x, 64 and 96 1.04-1.16x faster here; 128 alike).
const MAX_ROWS: usize = 96;

/// Most output rows taken with `rhs` stored transposed, which the gemm
/// crate packs whole on every call (same machine, k = 1024, n = 256: 32
/// rows 4.0x faster here, 96 4.4x, 128 2.3-4.0x, 256 1.6-1.9x; 512 rows by
/// 1024 columns alike, 4096 rows 2-3x slower: this form has no blocking for
/// `lhs` to stay in cache).
const MAX_DOT_ROWS: usize = 256;

/// Least depth taken with `rhs` stored transposed: each output's 16 partial
/// sums are added across lanes at the end, which shallower products do not
/// amortise (same machine: k = 64 up to 2.5x slower than the gemm crate,
/// k = 128 to 1024 1.0-4.4x faster).
const MIN_DOT_DEPTH: usize = 128;

/// Output rows and columns of the dot-product register block (24 of
/// AVX-512's 32 registers accumulate, 10 hold the operands).
const DOT_ROWS: usize = 4;
const DOT_COLS: usize = 6;

/// Output columns per task of the dot-product form (whole register blocks).
const DOT_TASK_COLS: usize = 8 * DOT_COLS;

/// One product `dst[m, n] = lhs[m, k] @ rhs[k, n]`: `lhs` with unit column
/// stride (row stride `lhs_rs`), `dst` row-major with row stride `dst_rs`,
/// `rhs` with strides `rhs_s` (row, column).
pub(super) struct FewRows {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub dst: SendPtr<f32>,
    pub dst_rs: usize,
    pub lhs: SendPtr<f32>,
    pub lhs_rs: usize,
    pub rhs: SendPtr<f32>,
    pub rhs_s: (usize, usize),
}

impl FewRows {
    /// Computes the product if this kernel takes it (AVX-512, `lhs` rows
    /// contiguous, and `rhs` row-major with whole panels of 64 columns and at
    /// most [`MAX_ROWS`] rows, or stored transposed with at most
    /// [`MAX_DOT_ROWS`] rows and a depth of [`MIN_DOT_DEPTH`] or more); false
    /// (nothing written) otherwise.
    ///
    /// # Safety
    /// Every element the pointers address at their strides for `i < m`,
    /// `p < k`, `j < n` must be valid (`dst` for writing) and `dst` must
    /// alias neither source.
    pub unsafe fn run(&self, threads: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::host::cpu::{simd_level, Simd};
            if self.m == 0 || self.k == 0 || simd_level() != Simd::Avx512 {
                return false;
            }
            if self.rhs_s.1 == 1 && self.n.is_multiple_of(PANEL) && self.m <= MAX_ROWS {
                // SAFETY: AVX-512F (checked) and this function's contract.
                unsafe { self.by_panels(threads) };
                return true;
            }
            if self.rhs_s.0 == 1 && self.n > 0 && self.m <= MAX_DOT_ROWS && self.k >= MIN_DOT_DEPTH
            {
                // SAFETY: as above.
                unsafe { self.by_dots(threads) };
                return true;
            }
            false
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = threads;
            false
        }
    }

    /// `rhs` row-major: one task per panel of 64 columns, its row blocks
    /// in turn (the panel, `k` rows of 256 bytes, stays in L2 across them).
    ///
    /// # Safety
    /// As for [`run`](Self::run), on a CPU with AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn by_panels(&self, threads: usize) {
        let (dst, lhs, rhs) = (&self.dst, &self.lhs, &self.rhs);
        for_each_task(self.n / PANEL, threads, |p| {
            for r in (0..self.m).step_by(ROWS) {
                let rows = ROWS.min(self.m - r);
                // SAFETY: rows `r..r + rows` of `lhs` hold `k` elements,
                // `rhs` columns `64p..64p + 64` of rows `0..k` and the same
                // columns of those rows of `dst` lie in the product (the
                // contract); tasks write disjoint panels.
                unsafe {
                    let at =
                        |i: usize| lhs.get().add((r + i.min(rows - 1)) * self.lhs_rs) as *const f32;
                    let panel = rhs.get().add(p * PANEL) as *const f32;
                    let out = dst.get().add(r * self.dst_rs + p * PANEL);
                    rows_by_panel(rows, at, self.k, (panel, self.rhs_s.0), out, self.dst_rs)
                }
            }
        });
    }

    /// `rhs` stored transposed: one task per [`DOT_TASK_COLS`] output
    /// columns, register blocks of rows within them.
    ///
    /// # Safety
    /// As for [`run`](Self::run), on a CPU with AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn by_dots(&self, threads: usize) {
        let (dst, lhs, rhs) = (&self.dst, &self.lhs, &self.rhs);
        let (m, n) = (self.m, self.n);
        for_each_task(n.div_ceil(DOT_TASK_COLS), threads, |t| {
            let cols = t * DOT_TASK_COLS..((t + 1) * DOT_TASK_COLS).min(n);
            for j in cols.step_by(DOT_COLS) {
                for i in (0..m).step_by(DOT_ROWS) {
                    // A block at the edge repeats its last row or column
                    // (in bounds) and stores only the real ones.
                    let a: [*const f32; DOT_ROWS] = std::array::from_fn(|r| {
                        // SAFETY: row min(i + r, m - 1) of `lhs` (contract).
                        unsafe { lhs.get().add((i + r).min(m - 1) * self.lhs_rs) as *const f32 }
                    });
                    let b: [*const f32; DOT_COLS] = std::array::from_fn(|c| {
                        // SAFETY: column min(j + c, n - 1) of `rhs`, stored
                        // as a contiguous row (contract).
                        unsafe { rhs.get().add((j + c).min(n - 1) * self.rhs_s.1) as *const f32 }
                    });
                    let live = (DOT_ROWS.min(m - i), DOT_COLS.min(n - j));
                    // SAFETY: AVX-512F; every row pointer addresses `k`
                    // elements; the live block lies in `dst`; tasks write
                    // disjoint columns.
                    unsafe {
                        dot_block(
                            &a,
                            &b,
                            self.k,
                            dst.get().add(i * self.dst_rs + j),
                            self.dst_rs,
                            live,
                        )
                    };
                }
            }
        });
    }
}

/// `out[r * stride + c] = sum over p < k of a[r][p] * b[c][p]` for the
/// `live.0 x live.1` leading outputs of a [`DOT_ROWS`] x [`DOT_COLS`] block:
/// 16 partial sums per output over `k` (a masked load for the last
/// `k % 16`), added across lanes at the end.
///
/// # Safety
/// The CPU must have AVX-512F; every `a[r]` and `b[c]` is valid for `k`
/// reads and `out + r * stride + c` for writing for `r < live.0`,
/// `c < live.1`; `out` aliases no source.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_block(
    a: &[*const f32; DOT_ROWS],
    b: &[*const f32; DOT_COLS],
    k: usize,
    out: *mut f32,
    stride: usize,
    live: (usize, usize),
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); DOT_COLS]; DOT_ROWS];
    let step = |acc: &mut [[__m512; DOT_COLS]; DOT_ROWS], p: usize, mask: __mmask16| {
        // SAFETY: elements `p..p + 16` (those `mask` selects) of every row
        // lie within its `k` (the contract); masked-off lanes are not read.
        unsafe {
            let bv: [__m512; DOT_COLS] =
                std::array::from_fn(|c| _mm512_maskz_loadu_ps(mask, b[c].add(p)));
            for (row, ar) in acc.iter_mut().zip(a) {
                let av = _mm512_maskz_loadu_ps(mask, ar.add(p));
                for (s, bc) in row.iter_mut().zip(&bv) {
                    *s = _mm512_fmadd_ps(av, *bc, *s);
                }
            }
        }
    };
    let whole = k / 16 * 16;
    let mut p = 0;
    while p < whole {
        step(&mut acc, p, 0xffff);
        p += 16;
    }
    if whole < k {
        step(&mut acc, whole, (1u16 << (k - whole)) - 1);
    }
    for (r, row) in acc.iter().enumerate().take(live.0) {
        for (c, s) in row.iter().enumerate().take(live.1) {
            // SAFETY: a live output (the contract).
            unsafe { *out.add(r * stride + c) = _mm512_reduce_add_ps(*s) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Both forms, every edge of the register blocks (rows 1 to the most
    /// taken, columns not a whole block, depths not a whole vector), strided
    /// operands and destination, on 1 and 2 threads, against float64.
    #[test]
    fn few_row_products_match_float64() {
        if !crate::host::winograd::products::packs(crate::host::winograd::products::PANEL) {
            return;
        }
        let mut rng = crate::test_rng();
        for case in 0..48 {
            let transposed = case % 2 == 1;
            let most = if transposed { MAX_DOT_ROWS } else { MAX_ROWS };
            // The first cases: edges of the row blocks, the most rows taken
            // and one more (refused); transposed, some too shallow (refused).
            let m = match case / 2 {
                e @ 0..5 => [1, 2, 5, 6, 7][e],
                5 => most,
                6 => most + 1,
                _ => rng.random_range(1..=most),
            };
            let k = if transposed {
                rng.random_range(MIN_DOT_DEPTH - 20..400)
            } else {
                rng.random_range(1..300)
            };
            let n = if transposed {
                rng.random_range(1..200)
            } else {
                64 * rng.random_range(1..4)
            };
            let pad = rng.random_range(0..5);
            let (lhs_rs, dst_rs) = (k + pad, n + pad);
            let a: Vec<f32> = (0..m * lhs_rs)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            // rhs element (p, j): [k, n + pad] row-major, or [n, k + pad].
            let (b_len, rhs_s) = if transposed {
                (n * (k + pad), (1, k + pad))
            } else {
                (k * (n + pad), (n + pad, 1))
            };
            let b: Vec<f32> = (0..b_len).map(|_| rng.random_range(-1.0..1.0)).collect();
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; m * dst_rs];
                let product = FewRows {
                    m,
                    n,
                    k,
                    dst: SendPtr(c.as_mut_ptr()),
                    dst_rs,
                    lhs: SendPtr(a.as_ptr() as *mut f32),
                    lhs_rs,
                    rhs: SendPtr(b.as_ptr() as *mut f32),
                    rhs_s,
                };
                // SAFETY: the buffers hold every addressed element.
                let taken = unsafe { product.run(threads) };
                let deep = !transposed || k >= MIN_DOT_DEPTH;
                assert_eq!(taken, m <= most && deep, "case {case}: {m}x{k}");
                if !taken {
                    assert!(c.iter().all(|v| v.is_nan()), "refused but wrote");
                    continue;
                }
                for i in 0..m {
                    for j in 0..dst_rs {
                        let got = c[i * dst_rs + j];
                        if j >= n {
                            assert!(got.is_nan(), "wrote outside the product");
                            continue;
                        }
                        let (mut want, mut scale) = (0f64, 0f64);
                        for p in 0..k {
                            let t = a[i * lhs_rs + p] as f64 * b[p * rhs_s.0 + j * rhs_s.1] as f64;
                            want += t;
                            scale += t.abs();
                        }
                        assert!(
                            (got as f64 - want).abs() <= 1e-6 * scale.max(1.0),
                            "case {case} {m}x{k}x{n} transposed {transposed} ({i}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
