//! Matrix multiplication. float32/float64 go to the `gemm` crate (cache-blocked,
//! AVX-512 with the `x86-v4` feature, rayon-parallel); float16/bfloat16 are
//! widened to float32, multiplied with float32 accumulation and rounded once;
//! integers use a plain parallel loop (rare in models, exact wrapping math).

use super::arith::Arith;
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MatMulParams {
    pub transpose_a: bool,
    pub transpose_b: bool,
}

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
    match out.dtype {
        DType::F32 => gemm_float(
            m,
            k,
            n,
            a.data::<f32>()?,
            la,
            b.data::<f32>()?,
            lb,
            out.data_mut()?,
        ),
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
        DType::BF16 => gemm_widened(
            m,
            k,
            n,
            a.data::<bf16>()?,
            la,
            b.data::<bf16>()?,
            lb,
            out.data_mut()?,
            bf16::to_f32,
            bf16::from_f32,
        ),
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

/// `(m, k, n)` of a 2-D matmul, or TensorFlow's error for mismatched shapes.
pub fn matmul_dims(a: &[usize], b: &[usize], p: MatMulParams) -> Result<(usize, usize, usize)> {
    if a.len() != 2 || b.len() != 2 {
        return Err(Error::InvalidArgument(format!(
            "In[0] and In[1] has different ndims: {:?} vs. {:?}",
            a, b
        )));
    }
    let (m, ka) = if p.transpose_a {
        (a[1], a[0])
    } else {
        (a[0], a[1])
    };
    let (kb, n) = if p.transpose_b {
        (b[1], b[0])
    } else {
        (b[0], b[1])
    };
    if ka != kb {
        return Err(Error::InvalidArgument(format!(
            "Matrix size-incompatible: In[0]: [{},{}], In[1]: [{},{}]",
            a[0], a[1], b[0], b[1]
        )));
    }
    Ok((m, ka, n))
}

/// Work (multiply-adds) below which threading does not pay.
const PAR_MIN_FLOPS: usize = 1 << 18;

#[allow(clippy::too_many_arguments)]
fn gemm_float<T: Element + Arith + num_one::One>(
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
pub(crate) unsafe fn gemm_strided<T: Element + Arith + num_one::One>(
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
    let par = if parallel && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        c.as_mut_ptr(),
        1,
        n as isize,
        false,
        a,
        a_strides.1,
        a_strides.0,
        b,
        b_strides.1,
        b_strides.0,
        T::zero(),
        T::one(),
        false,
        false,
        false,
        par,
    );
}

/// Tiny local trait: `gemm` needs the multiplicative identity as its `beta`.
pub(crate) mod num_one {
    pub trait One {
        fn one() -> Self;
    }
    impl One for f32 {
        fn one() -> f32 {
            1.0
        }
    }
    impl One for f64 {
        fn one() -> f64 {
            1.0
        }
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
        let mut rng = rand::rng();
        for _ in 0..60 {
            let (m, k, n) = (
                rng.random_range(0..70),
                rng.random_range(0..70),
                rng.random_range(0..70),
            );
            let p = MatMulParams {
                transpose_a: rng.random_bool(0.5),
                transpose_b: rng.random_bool(0.5),
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
}
