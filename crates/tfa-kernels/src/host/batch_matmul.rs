//! Batched matrix product with broadcast batch dims (BatchMatMulV2), one
//! `gemm` call per batch. Many small matrices run one per thread; large ones
//! let gemm thread itself. float16 computes in float32; bfloat16 (and float32
//! with `lowp` set) goes through `lowp_gemm` with float32 accumulation.

use super::arith::Arith;
use super::lowp_gemm::{lowp_gemm_strided, LowpSrc, LowpType};
use super::matmul::{gemm_strided, narrow_into};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

use crate::geometry::matmul::batch_offsets;
pub(crate) use crate::geometry::matmul::{BatchMatMulParams, BatchPlan};

/// `out = x @ y` per batch as planned.
pub fn batch_matmul(
    x: &TensorView,
    y: &TensorView,
    plan: &BatchPlan,
    out: &mut TensorMut,
) -> Result<()> {
    match out.dtype {
        DType::F32 => f32::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::F64 => f64::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::F16 => f16::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::BF16 => bf16::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::I32 => i32::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::I64 => i64::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        d => {
            return Err(Error::Unimplemented(format!(
                "BatchMatMulV2 is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// Element types with a batched product.
pub trait BmmElem: Element {
    fn bmm(plan: &BatchPlan, x: &[Self], y: &[Self], out: &mut [Self]);
}

/// Work (multiply-adds) below which threading does not pay.
const PAR_MIN_FLOPS: usize = 1 << 18;

/// Runs `one(batch, out_matrix)` over every batch: in parallel over batches
/// when there are many, else one after another with `inner_par` set.
fn for_batches<T: Send>(
    plan: &BatchPlan,
    out: &mut [T],
    one: impl Fn(usize, &mut [T], bool) + Sync,
) {
    let mn = plan.m * plan.n;
    if mn == 0 {
        return;
    }
    let nb = plan.x_batch.len();
    let per = plan.m * plan.n * plan.k;
    let threads = rayon::current_num_threads();
    if threads > 1 && nb > 1 && per * nb >= PAR_MIN_FLOPS && (per < PAR_MIN_FLOPS || nb >= threads)
    {
        out.par_chunks_mut(mn)
            .enumerate()
            .for_each(|(b, c)| one(b, c, false));
    } else {
        let inner_par = threads > 1 && per >= PAR_MIN_FLOPS;
        for (b, c) in out.chunks_mut(mn).enumerate() {
            one(b, c, inner_par);
        }
    }
}

/// (row stride, col stride) of a stored `[r, c]` matrix read as op(matrix).
fn layout(rows: usize, cols: usize, adj: bool) -> (isize, isize) {
    let _ = rows;
    if adj {
        (1, cols as isize)
    } else {
        (cols as isize, 1)
    }
}

/// One strided product `c = x @ y` of a batched call: (m, n, k, x, x
/// strides, y, y strides, c, let it thread).
trait GemmFn<T, O>:
    Fn(usize, usize, usize, *const T, (isize, isize), *const T, (isize, isize), &mut [O], bool) + Sync
{
}
impl<T, O, F> GemmFn<T, O> for F where
    F: Fn(usize, usize, usize, *const T, (isize, isize), *const T, (isize, isize), &mut [O], bool)
        + Sync
{
}

/// The batched product over `gemm`, which must accept any pointers and
/// strides that address only elements inside `x` and `y`.
fn bmm_with<T: Sync, O: Send + Default + Copy>(
    plan: &BatchPlan,
    x: &[T],
    y: &[T],
    out: &mut [O],
    gemm: impl GemmFn<T, O>,
) {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let xs = m * k;
    let ys = k * n;
    // Stored shapes: x is [m,k] or [k,m]; y is [k,n] or [n,k].
    let (xrs, xcs) = if plan.p.adj_x {
        layout(k, m, true)
    } else {
        layout(m, k, false)
    };
    let (yrs, ycs) = if plan.p.adj_y {
        layout(n, k, true)
    } else {
        layout(k, n, false)
    };
    // x @ W with W shared by every batch (Keras Dense on a 3-D input) is one
    // tall product: [batches*m, k] @ [k, n].
    let nb = plan.x_batch.len();
    let shared_y = plan.y_batch.iter().all(|&v| v == plan.y_batch[0]);
    let packed_x = !plan.p.adj_x && plan.x_batch.iter().enumerate().all(|(i, &v)| v == i);
    if nb > 1 && shared_y && packed_x && k > 0 && m * n > 0 {
        let rows = nb * m;
        // In bounds: x holds nb*m*k elements row-major, y's shared matrix
        // starts at y_batch[0]*k*n; out holds rows*n.
        gemm(
            rows,
            n,
            k,
            x.as_ptr(),
            (k as isize, 1),
            y[plan.y_batch[0] * ys..].as_ptr(),
            (yrs, ycs),
            out,
            rows * n * k >= PAR_MIN_FLOPS,
        );
        return;
    }
    for_batches(plan, out, |b, c, par| {
        if k == 0 {
            c.fill(O::default());
            return;
        }
        // In bounds: offsets and strides address only elements inside x/y
        // (validated shapes); c is an m*n output block.
        gemm(
            m,
            n,
            k,
            x[plan.x_batch[b] * xs..].as_ptr(),
            (xrs, xcs),
            y[plan.y_batch[b] * ys..].as_ptr(),
            (yrs, ycs),
            c,
            par,
        );
    });
}

/// A batched operand read through a permutation of its dims (a `Transpose`
/// folded into the product): per output batch the offset of its matrix, and
/// the matrix's (row, col) strides as `op(matrix)` is read.
struct PermutedView {
    offsets: Vec<usize>,
    strides: (isize, isize),
}

impl PermutedView {
    /// `stored` is the operand's shape in memory, `perm` the transpose that
    /// gives its logical shape (`logical[i] = stored[perm[i]]`), `batch` the
    /// broadcast batch shape of the product.
    fn new(stored: &[usize], perm: &[usize], batch: &[usize], adj: bool) -> Self {
        let st = tfa_core::shape::strides(stored);
        let r = perm.len();
        let (shape, lst): (Vec<usize>, Vec<usize>) =
            perm.iter().map(|&p| (stored[p], st[p])).unzip();
        let offsets = batch_offsets(batch, &shape[..r - 2], &lst[..r - 2]);
        let (rs, cs) = (lst[r - 2] as isize, lst[r - 1] as isize);
        let strides = if adj { (cs, rs) } else { (rs, cs) };
        PermutedView { offsets, strides }
    }
}

/// `out = transpose?(transpose(x, perm_x) @ transpose(y, perm_y))`, where
/// `plan` was made from the permuted (logical) shapes and `transpose_out`
/// swaps the result's last two dims. The permutations become the strides
/// `gemm` reads with (it packs its operands anyway), so the transposed
/// copies are never made; a transposed result is computed as `y^T x^T`.
/// float32 only (`plan.p.lowp` honoured).
pub fn batch_matmul_permuted(
    x: &TensorView,
    y: &TensorView,
    perms: (&[usize], &[usize]),
    transpose_out: bool,
    plan: &BatchPlan,
    out: &mut TensorMut,
) -> Result<()> {
    let (xd, yd, od) = (x.data::<f32>()?, y.data::<f32>()?, out.data_mut::<f32>()?);
    let batch = &plan.out_shape[..plan.out_shape.len() - 2];
    let xv = PermutedView::new(&x.shape, perms.0, batch, plan.p.adj_x);
    let yv = PermutedView::new(&y.shape, perms.1, batch, plan.p.adj_y);
    match plan.p.lowp.and_then(LowpType::from_dtype) {
        Some(l) => permuted_with(plan, (xd, &xv), (yd, &yv), transpose_out, od, lowp_gemm(l)),
        None => permuted_with(
            plan,
            (xd, &xv),
            (yd, &yv),
            transpose_out,
            od,
            float_gemm::<f32>,
        ),
    }
    Ok(())
}

fn permuted_with<T: Sync, O: Send + Default + Copy>(
    plan: &BatchPlan,
    (x, xv): (&[T], &PermutedView),
    (y, yv): (&[T], &PermutedView),
    transpose_out: bool,
    out: &mut [O],
    gemm: impl GemmFn<T, O>,
) {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let ((xrs, xcs), (yrs, ycs)) = (xv.strides, yv.strides);
    for_batches(plan, out, |b, c, par| {
        if k == 0 {
            c.fill(O::default());
            return;
        }
        // In bounds: the views' offsets and strides address elements of the
        // validated x and y only; c is one m*n output block.
        let (xp, yp) = (x[xv.offsets[b]..].as_ptr(), y[yv.offsets[b]..].as_ptr());
        if transpose_out {
            gemm(n, m, k, yp, (ycs, yrs), xp, (xcs, xrs), c, par);
        } else {
            gemm(m, n, k, xp, (xrs, xcs), yp, (yrs, ycs), c, par);
        }
    });
}

/// `gemm_strided` as a [`GemmFn`].
#[allow(clippy::too_many_arguments)]
fn float_gemm<T: Element + Arith>(
    m: usize,
    n: usize,
    k: usize,
    a: *const T,
    sa: (isize, isize),
    b: *const T,
    sb: (isize, isize),
    c: &mut [T],
    par: bool,
) {
    // SAFETY: `bmm_with` passes pointers and strides inside its operands and
    // an m*n output block that aliases neither.
    unsafe { gemm_strided(m, n, k, a, sa, b, sb, c, par) }
}

/// `lowp_gemm_strided` in `lowp` as a [`GemmFn`].
fn lowp_gemm<T: LowpSrc>(lowp: LowpType) -> impl GemmFn<T, f32> {
    move |m, n, k, a, sa, b, sb, c, par| {
        // SAFETY: as `float_gemm`.
        unsafe { lowp_gemm_strided(m, n, k, a, sa, b, sb, c, lowp, par) }
    }
}

impl BmmElem for f32 {
    fn bmm(plan: &BatchPlan, x: &[f32], y: &[f32], out: &mut [f32]) {
        match plan.p.lowp.and_then(LowpType::from_dtype) {
            Some(l) => bmm_with(plan, x, y, out, lowp_gemm(l)),
            None => bmm_with(plan, x, y, out, float_gemm::<f32>),
        }
    }
}

impl BmmElem for f64 {
    fn bmm(plan: &BatchPlan, x: &[f64], y: &[f64], out: &mut [f64]) {
        bmm_with(plan, x, y, out, float_gemm::<f64>)
    }
}

impl BmmElem for bf16 {
    fn bmm(plan: &BatchPlan, x: &[bf16], y: &[bf16], out: &mut [bf16]) {
        let mut wo = vec![0f32; out.len()];
        bmm_with(plan, x, y, &mut wo, lowp_gemm(LowpType::Bf16));
        narrow_into(&wo, out, bf16::from_f32);
    }
}

impl BmmElem for f16 {
    fn bmm(plan: &BatchPlan, x: &[f16], y: &[f16], out: &mut [f16]) {
        let wx: Vec<f32> = x.par_iter().map(|v| v.to_f32()).collect();
        let wy: Vec<f32> = y.par_iter().map(|v| v.to_f32()).collect();
        let mut wo = vec![0f32; out.len()];
        f32::bmm(plan, &wx, &wy, &mut wo);
        narrow_into(&wo, out, f16::from_f32);
    }
}

macro_rules! int_bmm {
    ($t:ty) => {
        impl BmmElem for $t {
            fn bmm(plan: &BatchPlan, x: &[$t], y: &[$t], out: &mut [$t]) {
                let (m, k, n) = (plan.m, plan.k, plan.n);
                let (xrs, xcs) = if plan.p.adj_x { (1, m) } else { (k, 1) };
                let (yrs, ycs) = if plan.p.adj_y { (1, k) } else { (n, 1) };
                for_batches(plan, out, |b, c, _| {
                    let xo = plan.x_batch[b] * m * k;
                    let yo = plan.y_batch[b] * k * n;
                    for i in 0..m {
                        let row = &mut c[i * n..(i + 1) * n];
                        row.fill(0);
                        for p in 0..k {
                            let a = x[xo + i * xrs + p * xcs];
                            for (j, o) in row.iter_mut().enumerate() {
                                *o = <$t as Arith>::add(
                                    *o,
                                    <$t as Arith>::mul(a, y[yo + p * yrs + j * ycs]),
                                );
                            }
                        }
                    }
                });
            }
        }
    };
}
int_bmm!(i32);
int_bmm!(i64);

#[cfg(test)]
mod tests;
