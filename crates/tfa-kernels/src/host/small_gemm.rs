//! float32 products with few rows (`m` up to 32: recurrent cells at batch 32,
//! Dense layers at batch 1) whose right operand has contiguous rows.
//!
//! The `gemm` crate packs both operands into panels on every call and splits
//! the work for its own micro-kernel, sized for many rows. With one to 32
//! rows that costs more than it saves: each packed element of `b` is used
//! only `m` times. Here an AVX-512 micro-kernel of 12 rows x 32 columns
//! (24 accumulators) reads `a` where it lies (one broadcast per row and
//! step) and `b` in place when one row block covers `m`; with more rows each
//! 256 x 32 piece of `b` is copied once into a buffer that stays in L1 while
//! the row blocks pass over it (in place its rows, `n` floats apart, share a
//! few cache sets and would come from L2 on every pass). The columns are
//! split between threads in fixed shares.
//!
//! Measured on 2 cores of an AVX-512 Xeon (model 106), best of 200 against
//! the `gemm` path, alternating builds: 32x256x1024 (an LSTM(256) step at
//! batch 32) 101 us vs 114-119, 1x2048x1000 (a batch-1 classifier) 206-218
//! us vs 273-312; 32x64x1024 and 32x1024x256 alike. 49-row products (batch-1
//! 1x1 convolutions) ran 5-25 % slower here and stay with `gemm`
//! (`MAX_ROWS`). No crate offers such a small-`m` float32 kernel, hence this
//! one.

use rayon::prelude::*;
use std::arch::x86_64::*;

/// Rows of `a` per micro-kernel call: 12 x 2 accumulators of 16 lanes.
const MR: usize = 12;
/// Columns per micro-kernel call (two AVX-512 vectors).
const NR: usize = 32;
/// Most rows taken (see the module notes for the measurements).
const MAX_ROWS: usize = 32;
/// Steps of `k` per packed piece of `b` (32 KiB: within L1 with the rows of
/// `a` it meets).
const KC: usize = 256;

/// Operands of one product: `c[m, n] = alpha * c + beta * a @ b` (`alpha`
/// only when `read_dst`), `a` at (row, column) strides, `b` with unit
/// column stride and row stride `b_rs`, `c` with unit column stride and row
/// stride `c_rs`.
#[derive(Clone, Copy)]
pub(crate) struct SmallGemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const f32,
    pub a_strides: (isize, isize),
    pub b: *const f32,
    pub b_rs: isize,
    pub c: *mut f32,
    pub c_rs: isize,
    pub read_dst: bool,
    pub alpha: f32,
    pub beta: f32,
}

// SAFETY: the pointers are only dereferenced by `run`, whose contract makes
// the caller guarantee their validity; tasks write disjoint columns of `c`.
unsafe impl Send for SmallGemm {}
// SAFETY: as above.
unsafe impl Sync for SmallGemm {}

/// Does this product take this path? (float32 with AVX-512 only.)
pub(crate) fn applies(m: usize, n: usize, k: usize, b_cs: isize) -> bool {
    m > 0 && m <= MAX_ROWS && n >= 16 && k > 0 && b_cs == 1 && super::cpu::features().avx512
}

impl SmallGemm {
    /// Runs the product on up to `threads` threads of the current rayon pool,
    /// splitting the columns into `threads` equal shares of whole panels.
    ///
    /// # Safety
    /// `applies` held for these dimensions; every element the pointers
    /// address at their strides for `i < m`, `p < k`, `j < n` is valid (`c`
    /// for writing, and reading when `read_dst`); `c` aliases neither source.
    pub(crate) unsafe fn run(self, threads: usize) {
        let panels = self.n.div_ceil(NR);
        let shares = threads.clamp(1, panels);
        if shares == 1 {
            // SAFETY: the whole product, under this function's contract.
            return unsafe { self.columns(0, self.n) };
        }
        let per = panels.div_ceil(shares) * NR;
        (0..shares).into_par_iter().for_each(|s| {
            let (j0, j1) = (s * per, ((s + 1) * per).min(self.n));
            if j0 < j1 {
                // SAFETY: shares cover disjoint column ranges of `c`.
                unsafe { self.columns(j0, j1) }
            }
        });
    }

    /// Columns `[j0, j1)` of the product, panel by panel. With more than
    /// one block of rows, each `KC x NR` piece of `b` is first copied into a
    /// contiguous buffer that stays in L1 while every row block passes over
    /// it (read in place, rows `b_rs` apart, the piece's rows share a few
    /// cache sets and come from L2 on every pass).
    unsafe fn columns(&self, j0: usize, j1: usize) {
        let packed = self.m > MR;
        let mut buf = if packed {
            vec![0f32; KC * NR]
        } else {
            Vec::new()
        };
        let mut j = j0;
        while j < j1 {
            let w = (j1 - j).min(NR);
            let mut p0 = 0;
            while p0 < self.k {
                let kc = if packed {
                    (self.k - p0).min(KC)
                } else {
                    self.k
                };
                // SAFETY: rows `p0..p0 + kc` and columns `j..j + w` of `b`
                // lie in the product (`run`'s contract).
                let src = unsafe { self.b.offset(p0 as isize * self.b_rs).add(j) };
                let piece = if packed {
                    for (q, dst) in buf.chunks_exact_mut(NR).take(kc).enumerate() {
                        // SAFETY: as above, `w` elements of row `p0 + q`.
                        let row = unsafe {
                            std::slice::from_raw_parts(src.offset(q as isize * self.b_rs), w)
                        };
                        dst[..w].copy_from_slice(row);
                        dst[w..].fill(0.0);
                    }
                    Piece {
                        b: buf.as_ptr(),
                        b_rs: NR as isize,
                        w,
                        p0,
                        kc,
                    }
                } else {
                    Piece {
                        b: src,
                        b_rs: self.b_rs,
                        w,
                        p0,
                        kc,
                    }
                };
                let mut i = 0;
                while i < self.m {
                    let rows = (self.m - i).min(MR);
                    // SAFETY: rows `i..i + rows` and columns `j..j + w` lie
                    // in the product (`run`'s contract), `piece` holds `kc`
                    // rows of `w` columns; AVX-512 is present (`applies`).
                    unsafe { self.block(i, rows, j, &piece) };
                    i += rows;
                }
                p0 += kc;
            }
            j += w;
        }
    }

    /// One block of `rows` (at most `MR`) by `piece.w` outputs.
    #[inline(always)]
    unsafe fn block(&self, i: usize, rows: usize, j: usize, piece: &Piece) {
        // SAFETY: every arm runs the kernel on the block `columns` checked
        // (this function's callers' contract, forwarded).
        unsafe {
            match rows {
                1 => kernel::<1>(self, i, j, piece),
                2 => kernel::<2>(self, i, j, piece),
                3 => kernel::<3>(self, i, j, piece),
                4 => kernel::<4>(self, i, j, piece),
                5 => kernel::<5>(self, i, j, piece),
                6 => kernel::<6>(self, i, j, piece),
                7 => kernel::<7>(self, i, j, piece),
                8 => kernel::<8>(self, i, j, piece),
                9 => kernel::<9>(self, i, j, piece),
                10 => kernel::<10>(self, i, j, piece),
                11 => kernel::<11>(self, i, j, piece),
                _ => kernel::<MR>(self, i, j, piece),
            }
        }
    }
}

/// Rows `p0..p0 + kc` of `b`'s columns `j..j + w`: in place or packed.
struct Piece {
    b: *const f32,
    b_rs: isize,
    w: usize,
    p0: usize,
    kc: usize,
}

/// The lane masks of a `w`-column panel (`w <= NR`): full vectors, then a
/// partial one.
fn masks(w: usize) -> (__mmask16, __mmask16) {
    let lanes = |n: usize| -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    };
    (lanes(w), lanes(w.saturating_sub(16)))
}

/// `R` rows from `i`, the piece's columns from `j`: `R x 2` accumulators,
/// one pass over the piece's `kc` steps reading two vectors of `b` and one
/// element of each row of `a` per step. The first piece writes `c` (scaled
/// as the product says), later ones add to it.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize>(g: &SmallGemm, i: usize, j: usize, piece: &Piece) {
    let (m0, m1) = masks(piece.w);
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let (ars, acs) = g.a_strides;
    // SAFETY: row `i + r` of `a` (r < R) over the piece's steps, the piece
    // and columns `j..j + w` of `c` are inside the product (callers'
    // contract); masked loads and stores touch only the `w` valid columns.
    unsafe {
        let a0 = g.a.offset(i as isize * ars + piece.p0 as isize * acs);
        let mut bp = piece.b;
        for p in 0..piece.kc {
            let b0 = _mm512_maskz_loadu_ps(m0, bp);
            let b1 = _mm512_maskz_loadu_ps(m1, bp.add(16));
            let ap = a0.offset(p as isize * acs);
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*ap.offset(r as isize * ars));
                row[0] = _mm512_fmadd_ps(x, b0, row[0]);
                row[1] = _mm512_fmadd_ps(x, b1, row[1]);
            }
            bp = bp.offset(piece.b_rs);
        }
        let first = piece.p0 == 0;
        let beta = _mm512_set1_ps(g.beta);
        let alpha = _mm512_set1_ps(if first { g.alpha } else { 1.0 });
        let read = g.read_dst || !first;
        for (r, row) in acc.iter().enumerate() {
            let cp = g.c.offset((i + r) as isize * g.c_rs).add(j);
            for (h, (&v, mask)) in row.iter().zip([m0, m1]).enumerate() {
                let dst = cp.add(16 * h);
                let mut y = _mm512_mul_ps(v, beta);
                if read {
                    y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, dst), alpha, y);
                }
                _mm512_mask_storeu_ps(dst, mask, y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Row counts within, at and past a block, `k` past a packed piece,
    /// ragged column tails,
    /// transposed and strided `a`, accumulation and 1-3 threads, against a
    /// float64 product.
    #[test]
    fn matches_a_plain_product() {
        if !crate::host::cpu::features().avx512 {
            eprintln!("small_gemm: skipped, this CPU has no AVX-512");
            return;
        }
        let mut rng = crate::test_rng();
        for &(m, k, n) in &[
            (1, 1, 16),
            (1, 300, 1000),
            (5, 33, 130),
            (12, 7, 32),
            (13, 300, 47),
            (32, 256, 1024),
            (25, 40, 200),
            (32, 600, 129),
        ] {
            for threads in [1, 2, 3] {
                let transposed_a = rng.random_bool(0.5);
                let read_dst = rng.random_bool(0.5);
                let (alpha, beta) = if read_dst { (0.5, 2.0) } else { (1.0, 1.0) };
                let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                let b: Vec<f32> = (0..k * (n + 3))
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let start: Vec<f32> = (0..m * (n + 1))
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                // a stored [m, k], or [k, m] and read transposed.
                let (a_store, a_strides) = if transposed_a {
                    let t: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
                    (t, (1, m as isize))
                } else {
                    (a.clone(), (k as isize, 1))
                };
                let mut c = start.clone();
                let g = SmallGemm {
                    m,
                    n,
                    k,
                    a: a_store.as_ptr(),
                    a_strides,
                    b: b.as_ptr(),
                    b_rs: (n + 3) as isize,
                    c: c.as_mut_ptr(),
                    c_rs: (n + 1) as isize,
                    read_dst,
                    alpha,
                    beta,
                };
                assert!(applies(m, n, k, 1));
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                // SAFETY: a addresses m x k, b k rows of n + 3, c m rows of
                // n + 1 (the last column never written); no aliasing.
                pool.install(|| unsafe { g.run(threads) });
                for i in 0..m {
                    for j in 0..=n {
                        let got = c[i * (n + 1) + j];
                        let was = start[i * (n + 1) + j] as f64;
                        if j == n {
                            assert_eq!(got as f64, was, "column past n written");
                            continue;
                        }
                        let dot: f64 = (0..k)
                            .map(|p| a[i * k + p] as f64 * b[p * (n + 3) + j] as f64)
                            .sum();
                        let want =
                            beta as f64 * dot + if read_dst { alpha as f64 * was } else { 0.0 };
                        assert!(
                            (got as f64 - want).abs() <= 1e-4 * (1.0 + k as f64).sqrt(),
                            "{m}x{k}x{n} t{threads} [{i},{j}] {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
