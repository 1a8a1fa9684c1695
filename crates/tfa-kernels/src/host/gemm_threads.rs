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
//!
//! Called from a thread outside every rayon pool (a kernel TensorFlow's
//! executor runs on its own thread, see `tfa-plugin`'s `kernels::compute`),
//! a parallel iterator would hand the whole product to a pool worker and
//! block the caller until it is done: two thread wake-ups, 50-65 us on a
//! 2-core VM after the pool has idled for 100 us (measured with a one-off
//! program), about a third of a recurrent cell's 32x256x1024 product. There
//! the caller computes panels itself while helpers spawned into the pool
//! take the rest as they wake (`par::for_each_task`): that product in a loop with other
//! work between the calls took 135-184 us on average against 179-269 us
//! handed to the pool (and 225-250 us on one thread).

use super::par::for_each_task;
use super::transpose::SendPtr;

/// Below this many output rows the columns are split between threads.
const FEW_ROWS: usize = 128;
/// Fewest output columns worth splitting.
const MIN_SPLIT_COLS: usize = 128;
/// Panel widths are multiples of this (a vector of float32 columns).
const PANEL_ALIGN: usize = 16;

/// Fewest output columns for which a few-row product whose right operand is
/// stored transposed goes through a column-major scratch output (see
/// [`gemm`]).
const MIN_SCRATCH_COLS: usize = 64;

/// One product's operands, as `gemm` takes them (see [`gemm`]).
struct Product<T> {
    m: usize,
    k: usize,
    /// Where `gemm` writes, at (row, column) strides.
    dst: SendPtr<T>,
    dst_strides: (isize, isize),
    /// With `dst` a column-major scratch: the row-major output (first
    /// element, row stride) each computed column range is copied to.
    out: Option<(SendPtr<T>, isize)>,
    read_dst: bool,
    lhs: SendPtr<T>,
    lhs_strides: (isize, isize),
    rhs: SendPtr<T>,
    rhs_strides: (isize, isize),
    alpha: T,
    beta: T,
}

impl<T: Copy + Send + Sync + 'static> Product<T> {
    /// Output columns `[c0, c0 + w)`, single- or multi-threaded.
    ///
    /// # Safety
    /// [`gemm`]'s contract for the whole product, and `c0 + w <= n`; with
    /// `out`, `dst` is valid for `m x n` elements at its strides.
    unsafe fn columns(&self, c0: usize, w: usize, par: gemm::Parallelism) {
        let ((lhs_rs, lhs_cs), (rhs_rs, rhs_cs)) = (self.lhs_strides, self.rhs_strides);
        let (dst_rs, dst_cs) = self.dst_strides;
        // SAFETY: a column range of the product addresses a subset of the
        // elements the caller's contract covers.
        unsafe {
            gemm::gemm(
                self.m,
                w,
                self.k,
                self.dst.get().offset(c0 as isize * dst_cs),
                dst_cs,
                dst_rs,
                self.read_dst,
                self.lhs.get(),
                lhs_cs,
                lhs_rs,
                self.rhs.get().offset(c0 as isize * rhs_cs),
                rhs_cs,
                rhs_rs,
                self.alpha,
                self.beta,
                false,
                false,
                false,
                par,
            )
        };
        if let Some((out, out_rs)) = &self.out {
            for j in c0..c0 + w {
                for i in 0..self.m {
                    // SAFETY: element (i, j) of the scratch (just written)
                    // and of the output, both within the product.
                    unsafe {
                        *out.get().offset(i as isize * out_rs).add(j) = *self
                            .dst
                            .get()
                            .offset(i as isize * dst_rs + j as isize * dst_cs)
                    };
                }
            }
        }
    }
}

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
    // A few-row product whose right operand is stored transposed (unit row
    // stride: `x @ W^T`, the input gradient of a Dense layer or a recurrent
    // step) into a row-major output: `gemm` would compute `W x^T` and pack
    // all of `W` first, on every call. Into a column-major scratch it packs
    // only the few rows of `x` and reads `W` in place; the scratch is then
    // copied out by columns. Measured on one core (AVX-512 Xeon, one-off
    // program): 32x1024x256 378 -> 144 us, 32x1024x1024 1697 -> 566 us.
    let mut scratch: Vec<std::mem::MaybeUninit<T>> = Vec::new();
    let via_scratch =
        m < FEW_ROWS && n >= MIN_SCRATCH_COLS && !read_dst && rhs.1 .0 == 1 && rhs.1 .1 != 1;
    let (dst_ptr, dst_strides, out) = if via_scratch {
        scratch.reserve_exact(m * n);
        let at = SendPtr(scratch.as_mut_ptr() as *mut T);
        (at, (1, m as isize), Some((SendPtr(dst.0), dst.1)))
    } else {
        (SendPtr(dst.0), (dst.1, 1), None)
    };
    let product = Product {
        m,
        k,
        dst: dst_ptr,
        dst_strides,
        out,
        read_dst,
        lhs: SendPtr(lhs.0 as *mut T),
        lhs_strides: lhs.1,
        rhs: SendPtr(rhs.0 as *mut T),
        rhs_strides: rhs.1,
        alpha,
        beta,
    };
    if threads <= 1 {
        // SAFETY: this function's contract covers the whole product.
        return unsafe { product.columns(0, n, gemm::Parallelism::None) };
    }
    if m >= FEW_ROWS || n < MIN_SPLIT_COLS {
        // SAFETY: as above.
        return unsafe { product.columns(0, n, gemm::Parallelism::Rayon(threads)) };
    }
    // Outside the pools the caller takes part (module notes), with more,
    // narrower panels so that a helper that wakes late still finds some.
    let per_thread = if rayon::current_thread_index().is_none() {
        4
    } else {
        2
    };
    let width = n
        .div_ceil(per_thread * threads)
        .next_multiple_of(PANEL_ALIGN);
    // Each panel is a whole single-threaded `gemm` of its columns, so the
    // result does not depend on which thread computed which panel.
    for_each_task(n.div_ceil(width), threads, |i| {
        let c0 = i * width;
        // SAFETY: the columns lie within the product (this function's
        // contract); panels write disjoint columns of `dst`.
        unsafe { product.columns(c0, width.min(n - c0), gemm::Parallelism::None) };
    });
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    /// Every threading choice (one thread, gemm's rows, column panels in a
    /// pool or shared with a caller outside the pools) on shapes around the
    /// thresholds, transposed (through the column-major scratch when few
    /// rows) and accumulating operands included, against a plain float64
    /// product.
    #[test]
    fn every_split_matches_a_plain_product() {
        let mut rng = crate::test_rng();
        for &(m, k, n) in &[
            (1, 7, 1),
            (5, 33, 130),
            (3, 20, 64),
            (32, 70, 100),
            (49, 64, 1000),
            (127, 16, 129),
            (128, 9, 300),
            (200, 40, 17),
        ] {
            for (threads, outside) in [(1, false), (2, false), (3, false), (2, true), (3, true)] {
                for (transposed_b, accumulate) in [(false, false), (true, false), (true, true)] {
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
                    // SAFETY: a is [m, k], b_store addresses k x n at its
                    // strides, c is [m, n]; no aliasing.
                    let run = |c: &mut Vec<f32>| unsafe {
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
                    };
                    if outside {
                        // The test thread is in no pool: helpers join the caller.
                        run(&mut c);
                    } else {
                        let pool = crate::test_pool(threads);
                        pool.install(|| run(&mut c));
                    }
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
                                "{m}x{k}x{n} threads {threads} outside {outside} transposed {transposed_b}: [{i},{j}] {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
