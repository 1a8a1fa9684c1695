//! Matrix multiplication. float32/float64 go to the `gemm` crate (cache-blocked,
//! AVX-512 with the `x86-v4` feature, rayon-parallel), except float32
//! products of few rows on AVX-512, which read both operands in place
//! (`few_rows`: a recurrent cell's step and its gradient), and of many rows
//! with whole panels of columns (`tall`: `rhs` packed once, `lhs` read in
//! place, the pointwise convolutions' kernel); bfloat16 goes to
//! `lowp_gemm` (AMX/AVX512-BF16 where present: float32 accumulation, rounded
//! once); float16 is widened to float32, multiplied and rounded once;
//! integers use a plain parallel loop (rare in models, exact wrapping math).
//! float32 with `lowp` set multiplies in bfloat16/float16 via `lowp_gemm`.

use super::arith::Arith;
use super::gemm_threads;
use super::lowp_gemm::{lowp_gemm_strided, LowpSrc, LowpType};
use super::transpose::SendPtr;
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

use crate::geometry::matmul::{matmul_dims, MatMulParams};

mod few_rows;
mod tall;

/// Row-major operand layout: element (i, j) lives at `i * rs + j * cs`.
#[derive(Copy, Clone, Debug)]
struct Layout {
    rs: usize,
    cs: usize,
}

/// Layout of a stored row-major matrix with `cols_stored` columns, read as
/// itself or as its transpose.
fn layout(cols_stored: usize, transposed: bool) -> Layout {
    if transposed {
        Layout {
            rs: 1,
            cs: cols_stored,
        }
    } else {
        Layout {
            rs: cols_stored,
            cs: 1,
        }
    }
}

/// `out[m,n] = op(a) @ op(b)` for 2-D `a` and `b`; shapes are validated here.
pub fn matmul(a: &TensorView, b: &TensorView, out: &mut TensorMut, p: MatMulParams) -> Result<()> {
    let (m, k, n) = matmul_dims(&a.shape, &b.shape, p)?;
    if out.shape != [m, n] {
        return Err(Error::Internal(format!(
            "matmul output shape {:?} != [{m}, {n}]",
            out.shape
        )));
    }
    let la = layout(a.shape[1], p.transpose_a);
    let lb = layout(b.shape[1], p.transpose_b);
    let lowp = p.lowp.and_then(LowpType::from_dtype);
    match out.dtype {
        DType::F32 => {
            let (a, b, c) = (a.data::<f32>()?, b.data::<f32>()?, out.data_mut()?);
            match lowp {
                Some(l) => gemm_lowp(m, k, n, a, la, b, lb, c, l),
                None => gemm_float(m, k, n, a, la, b, lb, c),
            }
        }
        DType::F64 => gemm_float(
            m,
            k,
            n,
            a.data::<f64>()?,
            la,
            b.data::<f64>()?,
            lb,
            out.data_mut()?,
        ),
        DType::F16 => gemm_widened(
            m,
            k,
            n,
            a.data::<f16>()?,
            la,
            b.data::<f16>()?,
            lb,
            out.data_mut()?,
            f16::to_f32,
            f16::from_f32,
        ),
        DType::BF16 => {
            let mut wc = vec![0f32; m * n];
            gemm_lowp(
                m,
                k,
                n,
                a.data::<bf16>()?,
                la,
                b.data::<bf16>()?,
                lb,
                &mut wc,
                LowpType::Bf16,
            );
            narrow_into(&wc, out.data_mut()?, bf16::from_f32);
        }
        DType::I32 => gemm_int(
            m,
            k,
            n,
            a.data::<i32>()?,
            la,
            b.data::<i32>()?,
            lb,
            out.data_mut()?,
        ),
        DType::I64 => gemm_int(
            m,
            k,
            n,
            a.data::<i64>()?,
            la,
            b.data::<i64>()?,
            lb,
            out.data_mut()?,
        ),
        d => {
            return Err(Error::Unimplemented(format!(
                "MatMul is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// Work (multiply-adds) below which threading does not pay.
const PAR_MIN_FLOPS: usize = 1 << 18;

#[allow(clippy::too_many_arguments)]
fn gemm_float<T: Element + Arith>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    la: Layout,
    b: &[T],
    lb: Layout,
    c: &mut [T],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    let parallel = m * n * k >= PAR_MIN_FLOPS;
    // SAFETY: the slices cover every index the layouts address (validated dims),
    // and `c` does not alias `a` or `b` (distinct TensorFlow buffers).
    unsafe {
        gemm_strided(
            m,
            n,
            k,
            a.as_ptr(),
            (la.rs as isize, la.cs as isize),
            b.as_ptr(),
            (lb.rs as isize, lb.cs as isize),
            c,
            parallel,
        )
    }
}

/// `c[m,n] = a @ b` through the `gemm` crate, each operand given by its first
/// element and (row, column) strides; `c` is row-major. `parallel` lets gemm
/// use the current rayon pool.
///
/// # Safety
/// `a` and `b` must be valid for every element their strides address
/// (`i < m, p < k` and `p < k, j < n`); `c` must hold `m * n` elements and
/// alias neither.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_strided<T: Element + Arith>(
    m: usize,
    n: usize,
    k: usize,
    a: *const T,
    a_strides: (isize, isize),
    b: *const T,
    b_strides: (isize, isize),
    c: &mut [T],
    parallel: bool,
) {
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let in_place = std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && a_strides.1 == 1
        && [a_strides.0, b_strides.0, b_strides.1]
            .iter()
            .all(|&s| s >= 0);
    if in_place {
        // Non-negative (`in_place`), so the casts keep every stride.
        let (lhs_rs, rhs_s) = (
            a_strides.0 as usize,
            (b_strides.0 as usize, b_strides.1 as usize),
        );
        let product = few_rows::FewRows {
            m,
            n,
            k,
            dst: SendPtr(c.as_mut_ptr() as *mut f32),
            dst_rs: n,
            lhs: SendPtr(a as *mut f32),
            lhs_rs,
            rhs: SendPtr(b as *mut f32),
            rhs_s,
        };
        // SAFETY: `T` is `f32` (checked), so the pointers address float32
        // elements at these (non-negative) strides; this function's
        // contract covers the product.
        if unsafe { product.run(threads) } {
            return;
        }
        // SAFETY: as above; `c` holds `m * n` floats (the contract).
        let c32 = unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr() as *mut f32, c.len()) };
        // SAFETY: as above.
        if unsafe {
            tall::run(
                m,
                n,
                k,
                c32,
                a as *const f32,
                lhs_rs,
                b as *const f32,
                rhs_s,
                threads,
            )
        } {
            return;
        }
    }
    // SAFETY: `a` and `b` are valid for every element their strides address
    // and `c` holds `m * n` elements (row stride n) aliasing neither (this
    // function's contract); `read_dst` is false, so `c` is only written.
    unsafe {
        gemm_threads::gemm(
            m,
            n,
            k,
            (c.as_mut_ptr(), n as isize),
            false,
            (a, a_strides),
            (b, b_strides),
            T::zero(),
            T::one(),
            threads,
        );
    }
}

/// `c = round(a) @ round(b)` in `lowp` with float32 accumulation.
#[allow(clippy::too_many_arguments)]
fn gemm_lowp<T: LowpSrc>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    la: Layout,
    b: &[T],
    lb: Layout,
    c: &mut [f32],
    lowp: LowpType,
) {
    // SAFETY: the slices cover every index the layouts address (validated
    // dims); `c` (m*n) aliases neither input.
    unsafe {
        lowp_gemm_strided(
            m,
            n,
            k,
            a.as_ptr(),
            (la.rs as isize, la.cs as isize),
            b.as_ptr(),
            (lb.rs as isize, lb.cs as isize),
            c,
            lowp,
            m * n * k >= PAR_MIN_FLOPS,
        )
    }
}

/// float32 results rounded once into a half-precision output.
pub(crate) fn narrow_into<T: Send>(src: &[f32], dst: &mut [T], narrow: fn(f32) -> T) {
    if dst.len() >= super::PAR_MIN_ELEMENTS {
        dst.par_iter_mut()
            .zip(src.par_iter())
            .for_each(|(o, &v)| *o = narrow(v));
    } else {
        dst.iter_mut().zip(src).for_each(|(o, &v)| *o = narrow(v));
    }
}

#[allow(clippy::too_many_arguments)]
fn gemm_widened<T: Element>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    la: Layout,
    b: &[T],
    lb: Layout,
    c: &mut [T],
    widen: fn(T) -> f32,
    narrow: fn(f32) -> T,
) {
    let wa: Vec<f32> = a.par_iter().map(|&v| widen(v)).collect();
    let wb: Vec<f32> = b.par_iter().map(|&v| widen(v)).collect();
    let mut wc = vec![0f32; m * n];
    gemm_float(m, k, n, &wa, la, &wb, lb, &mut wc);
    c.par_iter_mut()
        .zip(wc.par_iter())
        .for_each(|(o, &v)| *o = narrow(v));
}

#[allow(clippy::too_many_arguments)]
fn gemm_int<T: Arith>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    la: Layout,
    b: &[T],
    lb: Layout,
    c: &mut [T],
) {
    if n == 0 {
        return;
    }
    debug_assert_eq!(c.len(), m * n);
    c.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        row.fill(T::zero());
        for p in 0..k {
            let av = a[i * la.rs + p * la.cs];
            for (j, o) in row.iter_mut().enumerate() {
                *o = T::add(*o, T::mul(av, b[p * lb.rs + j * lb.cs]));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn reference(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        la: Layout,
        b: &[f64],
        lb: Layout,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * la.rs + p * la.cs] * b[p * lb.rs + j * lb.cs])
                    .sum();
            }
        }
        c
    }

    #[test]
    fn random_shapes_and_transposes_match_reference() {
        let mut rng = crate::test_rng();
        for _ in 0..60 {
            let (m, k, n) = (
                rng.random_range(0..70),
                rng.random_range(0..70),
                rng.random_range(0..70),
            );
            let p = MatMulParams {
                transpose_a: rng.random_bool(0.5),
                transpose_b: rng.random_bool(0.5),
                lowp: None,
            };
            let sa = if p.transpose_a {
                vec![k, m]
            } else {
                vec![m, k]
            };
            let sb = if p.transpose_b {
                vec![n, k]
            } else {
                vec![k, n]
            };
            let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut c = vec![f32::NAN; m * n];
            matmul(
                &TensorView::from_slice(sa.clone(), &a),
                &TensorView::from_slice(sb.clone(), &b),
                &mut TensorMut::from_slice(vec![m, n], &mut c),
                p,
            )
            .unwrap();
            let a64: Vec<f64> = a.iter().map(|&v| v as f64).collect();
            let b64: Vec<f64> = b.iter().map(|&v| v as f64).collect();
            let want = reference(
                m,
                k,
                n,
                &a64,
                layout(sa[1], p.transpose_a),
                &b64,
                layout(sb[1], p.transpose_b),
            );
            for (g, w) in c.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 1e-5 * (1.0 + w.abs()),
                    "{m}x{k}x{n} {p:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn int_matmul_and_bad_shapes() {
        let a = [1i64, 2, 3, 4];
        let mut c = [0i64; 4];
        matmul(
            &TensorView::from_slice(vec![2, 2], &a),
            &TensorView::from_slice(vec![2, 2], &a),
            &mut TensorMut::from_slice(vec![2, 2], &mut c),
            MatMulParams::default(),
        )
        .unwrap();
        assert_eq!(c, [7, 10, 15, 22]);
        let e = matmul_dims(&[2, 3], &[2, 3], MatMulParams::default()).unwrap_err();
        assert!(e.to_string().contains("Matrix size-incompatible"));
    }

    /// `sum_p |a(i,p)| |b(p,j)|` per output: the scale of rounding errors.
    fn abs_scale(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut s = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                s[i * n + j] = (0..k)
                    .map(|p| (a[i * k + p] as f64 * b[p * n + j] as f64).abs())
                    .sum();
            }
        }
        s
    }

    #[test]
    fn lowp_equals_f32_on_rounded_inputs() {
        let mut rng = crate::test_rng();
        for (m, k, n) in [
            (1, 1, 1),
            (5, 1, 9),
            (33, 70, 17),
            (100, 300, 65),
            (64, 64, 64),
        ] {
            for (lowp, round) in [
                (
                    DType::BF16,
                    (|v: f32| bf16::from_f32(v).to_f32()) as fn(f32) -> f32,
                ),
                (DType::F16, |v: f32| f16::from_f32(v).to_f32()),
            ] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-3.0..3.0)).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-3.0..3.0)).collect();
                let ra: Vec<f32> = a.iter().map(|&v| round(v)).collect();
                let rb: Vec<f32> = b.iter().map(|&v| round(v)).collect();
                let run = |x: &[f32], y: &[f32], lowp: Option<DType>| {
                    let mut c = vec![f32::NAN; m * n];
                    matmul(
                        &TensorView::from_slice(vec![m, k], x),
                        &TensorView::from_slice(vec![k, n], y),
                        &mut TensorMut::from_slice(vec![m, n], &mut c),
                        MatMulParams {
                            lowp,
                            ..MatMulParams::default()
                        },
                    )
                    .unwrap();
                    c
                };
                let got = run(&a, &b, Some(lowp));
                let want = run(&ra, &rb, None);
                let scale = abs_scale(m, k, n, &ra, &rb);
                for ((g, w), s) in got.iter().zip(&want).zip(&scale) {
                    assert!(
                        ((g - w) as f64).abs() <= 1e-5 * s,
                        "{lowp} {m}x{k}x{n}: {g} vs {w}"
                    );
                }
                // A float32 product of the unrounded inputs differs: lowp ran.
                if k > 8 {
                    assert_ne!(got, run(&a, &b, None));
                }
            }
        }
    }

    #[test]
    fn bf16_matmul_rounds_once() {
        let mut rng = crate::test_rng();
        let (m, k, n) = (37, 90, 41);
        let a: Vec<bf16> = (0..m * k)
            .map(|_| bf16::from_f32(rng.random_range(-2.0..2.0)))
            .collect();
        let b: Vec<bf16> = (0..k * n)
            .map(|_| bf16::from_f32(rng.random_range(-2.0..2.0)))
            .collect();
        let mut c = vec![bf16::ZERO; m * n];
        matmul(
            &TensorView::from_slice(vec![m, k], &a),
            &TensorView::from_slice(vec![k, n], &b),
            &mut TensorMut::from_slice(vec![m, n], &mut c),
            MatMulParams::default(),
        )
        .unwrap();
        let wa: Vec<f32> = a.iter().map(|v| v.to_f32()).collect();
        let wb: Vec<f32> = b.iter().map(|v| v.to_f32()).collect();
        let want = reference(
            m,
            k,
            n,
            &wa.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            layout(k, false),
            &wb.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            layout(n, false),
        );
        let scale = abs_scale(m, k, n, &wa, &wb);
        for ((g, w), s) in c.iter().zip(&want).zip(&scale) {
            let g = g.to_f32() as f64;
            // One rounding to bfloat16 (half an ulp, 2^-9 relative) plus
            // float32 summation error.
            assert!((g - w).abs() <= w.abs() / 256.0 + 1e-5 * s, "{g} vs {w}");
        }
    }
}
