//! The one call into the `gemm` crate for float products, with the choice of
//! threading in one place.
//!
//! `gemm`'s own `Parallelism::Rayon` splits the rows of the output between
//! threads; with fewer rows than one micro-panel (64 float32 rows with
//! AVX-512) it can barely split at all, so batch-1 Dense layers and 7x7
//! pointwise convolutions ran on one core. There the columns are cut into
//! `2 * threads` panels, each a single-threaded `gemm` (rayon balances the
//! panels). Measured on 2 cores (float32, GFLOP/s, `gemm` Rayon -> panels):
//! 32x2048x1000 42 -> 105, 49x512x2048 57 -> 128, 16x768x768 83 -> 131,
//! 96x1024x512 132 -> 164; from 128 rows up `gemm`'s own split was as good
//! or better, and below 128 columns the panels are too narrow to pay.

use rayon::prelude::*;

use super::transpose::SendPtr;

/// Below this many output rows the columns are split between threads.
const FEW_ROWS: usize = 128;
/// Fewest output columns worth splitting.
const MIN_SPLIT_COLS: usize = 128;
/// Panel widths are multiples of this (a vector of float32 columns).
const PANEL_ALIGN: usize = 16;

/// `dst[m, n] = alpha * dst + beta * lhs[m, k] @ rhs[k, n]` (the `gemm`
/// crate's naming: `alpha` scales `dst` and applies only when `read_dst`),
/// on up to `threads` threads of the current rayon pool (1: this thread).
/// `dst` has unit column stride and row stride `dst_rs`; `lhs` and `rhs` are
/// given by first element and (row, column) strides.
///
/// # Safety
/// Every element the pointers address at these strides for `i < m`,
/// `p < k`, `j < n` must be valid (`dst` for writing, and for reading when
/// `read_dst`), and `dst` must alias neither source.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<T: Copy + Send + Sync + 'static>(
    m: usize,
    n: usize,
    k: usize,
    dst: (*mut T, isize),
    read_dst: bool,
    lhs: (*const T, (isize, isize)),
    rhs: (*const T, (isize, isize)),
    alpha: T,
    beta: T,
    threads: usize,
) {
    let (dst, dst_rs) = (SendPtr(dst.0), dst.1);
    let (lhs, (lhs_rs, lhs_cs)) = (SendPtr(lhs.0 as *mut T), lhs.1);
    let (rhs, (rhs_rs, rhs_cs)) = (SendPtr(rhs.0 as *mut T), rhs.1);
    // One single- or multi-threaded product of output columns [c0, c0 + w).
    let panel = |c0: usize, w: usize, par| {
        // SAFETY: the caller's contract covers the whole `m x n` block, and
        // a column range of it addresses a subset of those elements.
        unsafe {
            gemm::gemm(
                m,
                w,
                k,
                dst.get().add(c0),
                1,
                dst_rs,
                read_dst,
                lhs.get(),
                lhs_cs,
                lhs_rs,
                rhs.get().offset(c0 as isize * rhs_cs),
                rhs_cs,
                rhs_rs,
                alpha,
                beta,
                false,
                false,
                false,
                par,
            )
        }
    };
    if threads <= 1 {
        return panel(0, n, gemm::Parallelism::None);
    }
    if m >= FEW_ROWS || n < MIN_SPLIT_COLS {
        return panel(0, n, gemm::Parallelism::Rayon(threads));
    }
    let width = n.div_ceil(2 * threads).next_multiple_of(PANEL_ALIGN);
    (0..n.div_ceil(width)).into_par_iter().for_each(|i| {
        let c0 = i * width;
        // Panels write disjoint columns of `dst`.
        panel(c0, width.min(n - c0), gemm::Parallelism::None);
    });
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    /// Every threading choice (one thread, gemm's rows, column panels) on
    /// shapes around the thresholds, transposed and accumulating operands
    /// included, against a plain float64 product.
    #[test]
    fn every_split_matches_a_plain_product() {
        let mut rng = crate::test_rng();
        for &(m, k, n) in &[
            (1, 7, 1),
            (5, 33, 130),
            (49, 64, 1000),
            (127, 16, 129),
            (128, 9, 300),
            (200, 40, 17),
        ] {
            for threads in [1, 2, 3] {
                for (transposed_b, accumulate) in [(false, false), (true, true)] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let start: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                    // b stored [k, n], or [n, k] and read transposed.
                    let (b_store, b_strides) = if transposed_b {
                        let t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                        (t, (1, k as isize))
                    } else {
                        (b.clone(), (n as isize, 1))
                    };
                    let mut c = start.clone();
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    // SAFETY: a is [m, k], b_store addresses k x n at its
                    // strides, c is [m, n]; no aliasing.
                    pool.install(|| unsafe {
                        super::gemm(
                            m,
                            n,
                            k,
                            (c.as_mut_ptr(), n as isize),
                            accumulate,
                            (a.as_ptr(), (k as isize, 1)),
                            (b_store.as_ptr(), b_strides),
                            1.0,
                            1.0,
                            threads,
                        )
                    });
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f64 = (0..k)
                                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                                .sum();
                            let want = dot
                                + if accumulate {
                                    start[i * n + j] as f64
                                } else {
                                    0.0
                                };
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "{m}x{k}x{n} threads {threads} transposed {transposed_b}: [{i},{j}] {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
