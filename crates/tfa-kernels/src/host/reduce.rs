//! Reductions (sum, mean, max, min, prod), L2Loss and softmax.
//!
//! Adjacent dims that are both reduced or both kept are merged. When the
//! result is `(outer, reduce, inner)` the input is reduced in place; any other
//! pattern is first transposed so the reduced dims come last. float16 and
//! bfloat16 accumulate in float32. Max and Min propagate NaN, as TensorFlow's
//! reducers do; an empty reduction gives the reducer's identity (0, 1, -inf,
//! +inf; NaN for Mean).

use super::conv_grad::float_dispatch;
use super::numeric::{Accumulate, Compute, Numeric, Widen};
use super::par::{for_each_chunk_mut, for_each_task};
use super::transpose::{transpose_words, SendPtr};
use super::PAR_MIN_ELEMENTS;
use half::{bf16, f16};
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
}

/// `out = op(x)` over the dims flagged in `reduced`; `out` has the reduced
/// shape (with or without kept dims: only its element count matters).
pub fn reduce(op: ReduceOp, x: &TensorView, reduced: &[bool], out: &mut TensorMut) -> Result<()> {
    macro_rules! go {
        ($t:ty) => {
            reduce_typed::<$t>(
                op,
                x.data::<$t>()?,
                &x.shape,
                reduced,
                out.data_mut::<$t>()?,
            )
        };
    }
    match x.dtype {
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        DType::F16 => go!(f16),
        DType::BF16 => go!(bf16),
        DType::I32 => go!(i32),
        DType::I64 => go!(i64),
        // bool is one byte, 0 or 1: All is Min, Any is Max.
        DType::Bool if matches!(op, ReduceOp::Min | ReduceOp::Max) => {
            reduce_typed::<u8>(op, x.bytes(), &x.shape, reduced, out.bytes_mut())?;
            // An empty Min is u8::MAX: make it `true`.
            for b in out.bytes_mut() {
                *b = (*b != 0) as u8;
            }
            Ok(())
        }
        d => Err(Error::Unimplemented(format!(
            "{op:?} is not defined for {d}"
        ))),
    }
}

pub fn reduce_typed<T: Numeric>(
    op: ReduceOp,
    x: &[T],
    shape: &[usize],
    reduced: &[bool],
    out: &mut [T],
) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    // Merge adjacent dims of equal kind, dropping size-1 dims.
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (&d, &r) in shape.iter().zip(reduced) {
        if d == 1 {
            continue;
        }
        match groups.last_mut() {
            Some(g) if g.1 == r => g.0 *= d,
            _ => groups.push((d, r)),
        }
    }
    let n_red: usize = groups.iter().filter(|g| g.1).map(|g| g.0).product();
    let n_out: usize = groups.iter().filter(|g| !g.1).map(|g| g.0).product();
    if n_out != out.len() {
        return Err(Error::Internal("reduction output size mismatch".into()));
    }
    let kinds: Vec<bool> = groups.iter().map(|g| g.1).collect();
    let direct = matches!(
        kinds.as_slice(),
        [] | [_] | [true, false] | [false, true] | [false, true, false]
    );
    if direct {
        let (outer, inner) = match kinds.as_slice() {
            [true, false] => (1, groups[1].0),
            [false, true] => (groups[0].0, 1),
            [false, true, false] => (groups[0].0, groups[2].0),
            [false] => (groups[0].0, 1),
            _ => (1, 1),
        };
        reduce_3d(op, x, outer, n_red, inner, out);
        return Ok(());
    }
    // Transpose kept dims to the front.
    let gshape: Vec<usize> = groups.iter().map(|g| g.0).collect();
    let perm: Vec<usize> = (0..groups.len())
        .filter(|&i| !groups[i].1)
        .chain((0..groups.len()).filter(|&i| groups[i].1))
        .collect();
    let mut tmp = vec![T::default(); x.len()];
    transpose_words(x, &gshape, &perm, &mut tmp)?;
    reduce_3d(op, &tmp, n_out, n_red, 1, out);
    Ok(())
}

/// A reducer, as a type so that each kernel is compiled with it inlined.
trait Combine<A: Accumulate>: Send + Sync {
    fn init() -> A;
    fn f(a: A, b: A) -> A;
}

struct SumC;
struct ProdC;
struct MaxC;
struct MinC;

impl<A: Accumulate> Combine<A> for SumC {
    #[inline(always)]
    fn init() -> A {
        A::ZERO
    }
    #[inline(always)]
    fn f(a: A, b: A) -> A {
        A::add(a, b)
    }
}
impl<A: Accumulate> Combine<A> for ProdC {
    #[inline(always)]
    fn init() -> A {
        A::ONE
    }
    #[inline(always)]
    fn f(a: A, b: A) -> A {
        A::mul(a, b)
    }
}
impl<A: Accumulate> Combine<A> for MaxC {
    #[inline(always)]
    fn init() -> A {
        A::MAX_IDENTITY
    }
    #[inline(always)]
    fn f(a: A, b: A) -> A {
        A::max(a, b)
    }
}
impl<A: Accumulate> Combine<A> for MinC {
    #[inline(always)]
    fn init() -> A {
        A::MIN_IDENTITY
    }
    #[inline(always)]
    fn f(a: A, b: A) -> A {
        A::min(a, b)
    }
}

fn reduce_3d<T: Numeric>(
    op: ReduceOp,
    x: &[T],
    outer: usize,
    red: usize,
    inner: usize,
    out: &mut [T],
) {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => reduce_3d_c::<T, SumC>(op, x, outer, red, inner, out),
        ReduceOp::Prod => reduce_3d_c::<T, ProdC>(op, x, outer, red, inner, out),
        ReduceOp::Max => reduce_3d_c::<T, MaxC>(op, x, outer, red, inner, out),
        ReduceOp::Min => reduce_3d_c::<T, MinC>(op, x, outer, red, inner, out),
    }
}

/// Folds a contiguous run with 8 independent lanes (vectorisable).
#[inline(always)]
fn fold_run<T: Numeric, C: Combine<T::W>>(run: &[T]) -> T::W {
    let (init, f) = (C::init(), C::f);
    let mut lanes = [init; 8];
    let mut chunks = run.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            lanes[l] = f(lanes[l], c[l].widen());
        }
    }
    let mut acc = init;
    for &v in chunks.remainder() {
        acc = f(acc, v.widen());
    }
    for l in lanes {
        acc = f(acc, l);
    }
    acc
}

/// Inner elements per task when reducing a middle dim.
const INNER_BLOCK: usize = 4096;

/// `out[o, i] = op_r x[o, r, i]`.
fn reduce_3d_c<T: Numeric, C: Combine<T::W>>(
    op: ReduceOp,
    x: &[T],
    outer: usize,
    red: usize,
    inner: usize,
    out: &mut [T],
) {
    let f = C::f;
    let init = C::init();
    let finish = |a: T::W| -> T {
        T::narrow(if op == ReduceOp::Mean {
            a.div_count(red)
        } else {
            a
        })
    };
    let total = outer * red * inner;
    let threads = rayon::current_num_threads();
    // Partial accumulation of rows r0..r1 for output block (o, i0..i1).
    let partial = |o: usize, i0: usize, i1: usize, r0: usize, r1: usize, acc: &mut [T::W]| {
        if inner == 1 {
            acc[0] = f(acc[0], fold_run::<T, C>(&x[o * red + r0..o * red + r1]));
            return;
        }
        for r in r0..r1 {
            let row = &x[(o * red + r) * inner + i0..(o * red + r) * inner + i1];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = f(*a, v.widen());
            }
        }
    };
    if inner == 1 && (total < PAR_MIN_ELEMENTS || threads == 1 || outer >= 2 * threads) {
        // One contiguous run per output element.
        let rows = |first: usize, dst: &mut [T]| {
            for (k, d) in dst.iter_mut().enumerate() {
                let o = first + k;
                *d = finish(fold_run::<T, C>(&x[o * red..(o + 1) * red]));
            }
        };
        if total < PAR_MIN_ELEMENTS || threads == 1 {
            rows(0, out);
        } else {
            let per = (PAR_MIN_ELEMENTS / red.max(1)).max(1);
            for_each_chunk_mut(out, per, |i, d| rows(i * per, d));
        }
        return;
    }
    let iblk = if inner == 1 {
        1
    } else {
        INNER_BLOCK.min(inner)
    };
    let nib = inner.div_ceil(iblk);
    let tasks = outer * nib;
    // Output block of task t: (o, i0, i1).
    let block = |t: usize| {
        let (o, ib) = (t / nib, t % nib);
        let i0 = ib * iblk;
        (o, i0, (i0 + iblk).min(inner))
    };
    if total < PAR_MIN_ELEMENTS || threads == 1 || tasks >= 2 * threads || red < 2 {
        let run = |t: usize, dst: &mut [T]| {
            let (o, i0, i1) = block(t);
            let mut acc = vec![init; i1 - i0];
            partial(o, i0, i1, 0, red, &mut acc);
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = finish(a);
            }
        };
        if total < PAR_MIN_ELEMENTS || threads == 1 {
            for (o, row) in out.chunks_mut(inner).enumerate() {
                for (ib, dst) in row.chunks_mut(iblk).enumerate() {
                    run(o * nib + ib, dst);
                }
            }
        } else {
            let base = SendPtr(out.as_mut_ptr());
            for_each_task(tasks, threads, |t| {
                let (o, i0, i1) = block(t);
                // SAFETY: task `t` alone writes output block (o, i0..i1),
                // inside `out`, which stays borrowed until all are done.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(base.get().add(o * inner + i0), i1 - i0)
                };
                run(t, dst)
            });
        }
        return;
    }
    // Few output blocks: split the reduced dim too, then combine partials.
    let splits = (2 * threads).div_ceil(tasks).min(red);
    let per = red.div_ceil(splits);
    // Partial `k` (block k / splits, rows of split k % splits) in its slot
    // of `iblk` accumulators.
    let mut partials = vec![init; tasks * splits * iblk];
    let slots = SendPtr(partials.as_mut_ptr());
    for_each_task(tasks * splits, threads, |k| {
        let (t, s) = (k / splits, k % splits);
        let (o, i0, i1) = block(t);
        // SAFETY: task `k` alone writes slot `k`, inside `partials`, which
        // outlives every task.
        let acc = unsafe { std::slice::from_raw_parts_mut(slots.get().add(k * iblk), i1 - i0) };
        let (r0, r1) = ((s * per).min(red), ((s + 1) * per).min(red));
        partial(o, i0, i1, r0, r1, acc);
    });
    let dsts = out
        .chunks_mut(inner)
        .flat_map(|row| row.chunks_mut(iblk))
        .enumerate();
    for (t, dst) in dsts {
        for (j, d) in dst.iter_mut().enumerate() {
            let mut a = init;
            for s in 0..splits {
                a = f(a, partials[(t * splits + s) * iblk + j]);
            }
            *d = finish(a);
        }
    }
}

/// L2Loss: `sum(x^2 / 2)` over every element, accumulated in float32 for
/// the half types (float64 for float64). Fixed chunks summed in order, so the
/// result does not depend on the thread count.
pub fn l2_loss(x: &TensorView, out: &mut TensorMut) -> Result<()> {
    float_dispatch!(x.dtype, "L2Loss", l2_loss_into(x, out))
}

fn l2_loss_into<T: Numeric>(x: &TensorView, out: &mut TensorMut) -> Result<()> {
    out.data_mut::<T>()?[0] = l2_loss_typed::<T>(x.data::<T>()?);
    Ok(())
}

fn l2_loss_typed<T: Numeric>(x: &[T]) -> T {
    const CHUNK: usize = 1 << 15;
    // Each square halved before the sum, as TensorFlow's `(t.square() * 0.5).sum()`:
    // halving the sum instead differs only where the sum of the squares overflows.
    let half = T::W::ONE.div_count(2);
    let square_sum = |run: &[T]| {
        let mut lanes = [T::W::ZERO; 8];
        let mut chunks = run.chunks_exact(8);
        for c in &mut chunks {
            for l in 0..8 {
                let v = c[l].widen();
                lanes[l] = T::W::add(lanes[l], T::W::mul(T::W::mul(v, v), half));
            }
        }
        let mut acc = T::W::ZERO;
        for &v in chunks.remainder() {
            acc = T::W::add(acc, T::W::mul(T::W::mul(v.widen(), v.widen()), half));
        }
        lanes.into_iter().fold(acc, T::W::add)
    };
    let mut partial = vec![T::W::ZERO; x.len().div_ceil(CHUNK).max(1)];
    if x.len() < PAR_MIN_ELEMENTS {
        partial[0] = square_sum(x);
    } else {
        for_each_chunk_mut(&mut partial, 1, |i, p| {
            p[0] = square_sum(&x[i * CHUNK..((i + 1) * CHUNK).min(x.len())]);
        });
    }
    T::narrow(partial.into_iter().fold(T::W::ZERO, T::W::add))
}

// --------------------------------------------------------------- softmax ----

/// Softmax (or log-softmax) over the last dim of `x` (rank >= 1).
pub fn softmax(x: &TensorView, log: bool, out: &mut TensorMut) -> Result<()> {
    let row = *x
        .shape
        .last()
        .ok_or_else(|| Error::InvalidArgument("logits must have >= 1 dimension".into()))?;
    macro_rules! go {
        ($t:ty) => {
            softmax_rows::<$t>(x.data::<$t>()?, row, log, out.data_mut::<$t>()?)
        };
    }
    match x.dtype {
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        DType::F16 => go!(f16),
        DType::BF16 => go!(bf16),
        d => {
            return Err(Error::Unimplemented(format!(
                "Softmax is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// One row of [`softmax_rows`]; always inlined, so the AVX-512 wrapper
/// compiles its loops (and float32 `exp_vec`) 16 wide.
#[inline(always)]
fn softmax_row<T: Widen>(src: &[T], dst: &mut [T], log: bool) {
    let m = fold_run::<T, MaxC>(src);
    // exp(x - max) into the output (vectorisable), summed in 8 lanes.
    for (d, &v) in dst.iter_mut().zip(src) {
        *d = T::narrow((v.widen() - m).exp_vec());
    }
    let s = fold_run::<T, SumC>(dst);
    if log {
        let ls = s.ln();
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = T::narrow(v.widen() - m - ls);
        }
    } else {
        // TensorFlow scales by the inverse of the sum.
        let inv = T::W::ONE / s;
        for d in dst.iter_mut() {
            *d = T::narrow(d.widen() * inv);
        }
    }
}

fn softmax_rows<T: Widen>(x: &[T], row: usize, log: bool, out: &mut [T]) {
    if row == 0 || out.is_empty() {
        return;
    }
    super::for_row_chunks(out, row, |first, rows| {
        let src = &x[first * row..first * row + rows.len()];
        // Vectorised for the CPU: exp on 4 SSE lanes made Softmax of
        // attention scores over twice TensorFlow's time.
        softmax_chunk_simd(src, rows, row, log)
    });
}

widest_simd_fn! {
    /// [`softmax_chunk`] vectorised for the CPU.
    fn softmax_chunk_simd[T: Widen](src: &[T], dst: &mut [T], row: usize, log: bool) => softmax_chunk
}

/// [`softmax_row`] over whole rows of `row` elements.
#[inline(always)]
fn softmax_chunk<T: Widen>(src: &[T], dst: &mut [T], row: usize, log: bool) {
    for (d, s) in dst.chunks_mut(row).zip(src.chunks(row)) {
        softmax_row(s, d, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::axes::*;
    use rand::Rng;
    use tfa_core::shape::strides;

    fn reference(op: ReduceOp, x: &[f64], shape: &[usize], red: &[bool]) -> Vec<f64> {
        let oshape = reduced_shape(shape, red, true);
        let on: usize = oshape.iter().product();
        let (init, f): (f64, fn(f64, f64) -> f64) = match op {
            ReduceOp::Sum | ReduceOp::Mean => (0.0, |a, b| a + b),
            ReduceOp::Prod => (1.0, |a, b| a * b),
            ReduceOp::Max => (f64::NEG_INFINITY, f64::max),
            ReduceOp::Min => (f64::INFINITY, f64::min),
        };
        let mut acc = vec![init; on];
        let ost = strides(&oshape);
        let ist = strides(shape);
        for (i, &v) in x.iter().enumerate() {
            let mut o = 0;
            for d in 0..shape.len() {
                let k = i / ist[d] % shape[d];
                if !red[d] {
                    o += k * ost[d];
                }
            }
            acc[o] = f(acc[o], v);
        }
        let cnt: usize = shape
            .iter()
            .zip(red)
            .filter(|p| *p.1)
            .map(|p| *p.0)
            .product();
        if op == ReduceOp::Mean {
            acc.iter_mut().for_each(|a| *a /= cnt as f64);
        }
        acc
    }

    #[test]
    fn random_reductions_match_reference() {
        let mut rng = crate::test_rng();
        for it in 0..300 {
            let rank = rng.random_range(0..5);
            let big = it % 30 == 0;
            let shape: Vec<usize> = (0..rank)
                .map(|_| {
                    if big {
                        rng.random_range(1..60)
                    } else {
                        rng.random_range(0..5)
                    }
                })
                .collect();
            let red: Vec<bool> = (0..rank).map(|_| rng.random_bool(0.5)).collect();
            let n: usize = shape.iter().product();
            let x: Vec<f32> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            for op in [
                ReduceOp::Sum,
                ReduceOp::Mean,
                ReduceOp::Max,
                ReduceOp::Min,
                ReduceOp::Prod,
            ] {
                if big && op == ReduceOp::Prod {
                    continue; // underflows float32
                }
                let want = reference(op, &x64, &shape, &red);
                let mut got = vec![0f32; want.len()];
                reduce_typed(op, &x, &shape, &red, &mut got).unwrap();
                for (g, w) in got.iter().zip(&want) {
                    let ok = (w.is_nan() && g.is_nan())
                        || *g as f64 == *w
                        || ((*g as f64 - w).abs() <= 1e-4 * w.abs());
                    assert!(ok, "{op:?} {shape:?} {red:?}: {g} vs {w}");
                }
            }
        }
    }

    /// Each parallel split (rows per task, output blocks per task, rows
    /// split with partials combined: a BiasAddGrad of 32x1024 among them),
    /// on a 3-thread pool and from outside every pool.
    #[test]
    fn parallel_splits_match_reference() {
        let mut rng = crate::test_rng();
        let pool = crate::test_pool(3);
        for (shape, red) in [
            ([30000, 3, 1], [false, true, true]),
            ([16, 5, 5000], [false, true, false]),
            ([1, 32, 1024], [false, true, false]),
            ([2, 40, 9000], [false, true, false]),
            ([1, 1, 70000], [false, true, true]),
        ] {
            let n: usize = shape.iter().product();
            let x: Vec<f32> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            for op in [ReduceOp::Sum, ReduceOp::Max] {
                let want = reference(op, &x64, &shape, &red);
                let run = || {
                    let mut got = vec![0f32; want.len()];
                    reduce_typed(op, &x, &shape, &red, &mut got).unwrap();
                    for (g, w) in got.iter().zip(&want) {
                        assert!((*g as f64 - w).abs() <= 1e-5 * w.abs(), "{op:?} {shape:?}");
                    }
                };
                run();
                pool.install(run);
            }
        }
    }

    #[test]
    fn big_full_and_column_reductions_are_exact_for_ints() {
        let x: Vec<i64> = (0..200_000).collect();
        let mut out = [0i64];
        reduce_typed(ReduceOp::Sum, &x, &[200_000], &[true], &mut out).unwrap();
        assert_eq!(out[0], 199_999 * 200_000 / 2);
        let mut cols = vec![0i64; 4];
        reduce_typed(ReduceOp::Max, &x, &[50_000, 4], &[true, false], &mut cols).unwrap();
        assert_eq!(cols, vec![199_996, 199_997, 199_998, 199_999]);
    }

    #[test]
    fn nan_propagates_and_axes_checked() {
        let x = [1f32, f32::NAN, 2.0];
        let mut o = [0f32];
        reduce_typed(ReduceOp::Max, &x, &[3], &[true], &mut o).unwrap();
        assert!(o[0].is_nan());
        reduce_typed(ReduceOp::Min, &x, &[3], &[true], &mut o).unwrap();
        assert!(o[0].is_nan());
        assert_eq!(
            reduction_bitmap(1, &[1]).unwrap_err().to_string(),
            "Invalid reduction dimension (1 for input with 1 dimension(s)"
        );
        assert_eq!(
            reduction_bitmap(3, &[-1, 0]).unwrap(),
            vec![true, false, true]
        );
        assert!(reduction_bitmap(3, &[-1, 2])
            .unwrap_err()
            .to_string()
            .contains("duplicate dimension: 2"));
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let x = [1000f32, 1001., 1002., -5., 0., 5.];
        let mut o = [0f32; 6];
        softmax(
            &TensorView::from_slice(vec![2, 3], &x),
            false,
            &mut TensorMut::from_slice(vec![2, 3], &mut o),
        )
        .unwrap();
        assert!((o[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((o[2] - 0.665_240_9).abs() < 1e-6);
        let mut l = [0f32; 6];
        softmax(
            &TensorView::from_slice(vec![2, 3], &x),
            true,
            &mut TensorMut::from_slice(vec![2, 3], &mut l),
        )
        .unwrap();
        for (a, b) in l.iter().zip(&o) {
            assert!((a.exp() - b).abs() < 1e-6);
        }
    }
}
