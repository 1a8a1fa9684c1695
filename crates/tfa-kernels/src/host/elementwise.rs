//! Elementwise kernels: unary, binary with full broadcasting, and AddN.
//!
//! Every kernel can run in place: when TensorFlow forwarded an input buffer to
//! the output (`in_place`), that input is read from the output slice instead
//! of through its own view, so no `&` and `&mut` to the same memory coexist.

use super::arith::{Arith, FloatArith};
use super::broadcast::BroadcastPlan;
use super::{PAR_CHUNK, PAR_MIN_ELEMENTS};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Floating-point division (TensorFlow's `RealDiv`).
    Div,
    Maximum,
    Minimum,
    /// `(a - b)^2`
    SquaredDifference,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Square,
    Sqrt,
    Rsqrt,
    Exp,
    Log,
    Relu,
}

/// Where a kernel reads an operand from.
#[derive(Copy, Clone)]
enum Src<'a, T> {
    Data(&'a [T]),
    /// The operand was forwarded into the output buffer.
    Out,
}

fn src<'a, T: Element>(v: &TensorView<'a>, aliased: bool) -> Result<Src<'a, T>> {
    Ok(if aliased {
        Src::Out
    } else {
        Src::Data(v.data::<T>()?)
    })
}

/// Splits `out` into chunks and calls `f(chunk_start, chunk)` on each, in
/// parallel when the tensor is large enough to pay for it.
fn for_chunks<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    if out.len() < PAR_MIN_ELEMENTS {
        f(0, out);
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * PAR_CHUNK, c));
    }
}

// ---------------------------------------------------------------- binary ----

/// `out = a (op) b` with broadcasting. `in_place` names the input (0 or 1) whose
/// buffer is `out`'s, if any; that input must have the output's shape.
pub fn binary(
    op: BinaryOp,
    a: &TensorView,
    b: &TensorView,
    out: &mut TensorMut,
    in_place: Option<usize>,
) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, &a.shape, &b.shape);
    if let Some(i) = in_place {
        let shape = if i == 0 { &a.shape } else { &b.shape };
        if *shape != out.shape {
            return Err(Error::Internal(
                "in-place operand must have the output's shape".into(),
            ));
        }
    }
    let (al, bl) = (in_place == Some(0), in_place == Some(1));
    macro_rules! go {
        ($t:ty, $f:expr) => {
            run_binary::<$t, _>(&plan, src(a, al)?, src(b, bl)?, out.data_mut::<$t>()?, $f)
        };
    }
    macro_rules! all_ops {
        ($t:ty) => {
            match op {
                BinaryOp::Add => go!($t, <$t as Arith>::add),
                BinaryOp::Sub => go!($t, <$t as Arith>::sub),
                BinaryOp::Mul => go!($t, <$t as Arith>::mul),
                BinaryOp::Maximum => go!($t, <$t as Arith>::max),
                BinaryOp::Minimum => go!($t, <$t as Arith>::min),
                BinaryOp::SquaredDifference => go!($t, |x, y| {
                    let d = <$t as Arith>::sub(x, y);
                    <$t as Arith>::mul(d, d)
                }),
                BinaryOp::Div => {
                    return Err(Error::Unimplemented(format!(
                        "real division is not defined for {}",
                        <$t as Element>::DTYPE
                    )))
                }
            }
        };
    }
    macro_rules! float_ops {
        ($t:ty) => {
            match op {
                BinaryOp::Div => go!($t, <$t as FloatArith>::div),
                _ => all_ops!($t),
            }
        };
    }
    match out.dtype {
        DType::F32 => float_ops!(f32),
        DType::F64 => float_ops!(f64),
        DType::F16 => float_ops!(f16),
        DType::BF16 => float_ops!(bf16),
        DType::I8 => all_ops!(i8),
        DType::I16 => all_ops!(i16),
        DType::I32 => all_ops!(i32),
        DType::I64 => all_ops!(i64),
        DType::U8 => all_ops!(u8),
        DType::U16 => all_ops!(u16),
        DType::U32 => all_ops!(u32),
        DType::U64 => all_ops!(u64),
        d => {
            return Err(Error::Unimplemented(format!(
                "{op:?} is not defined for {d}"
            )))
        }
    }
    Ok(())
}

fn run_binary<T: Element, F: Fn(T, T) -> T + Sync + Copy>(
    plan: &BroadcastPlan,
    a: Src<T>,
    b: Src<T>,
    out: &mut [T],
    f: F,
) {
    let (ia, ib) = plan.inner_strides();
    for_chunks(out, |start, chunk| {
        plan.for_each_run(start, start + chunk.len(), |o, ao, bo, len| {
            let o = &mut chunk[o - start..o - start + len];
            binary_run(o, a, ao, ia, b, bo, ib, f);
        });
    });
}

/// One contiguous output run. Operand strides are 0 (broadcast) or 1.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn binary_run<T: Copy, F: Fn(T, T) -> T>(
    o: &mut [T],
    a: Src<T>,
    ao: usize,
    ia: usize,
    b: Src<T>,
    bo: usize,
    ib: usize,
    f: F,
) {
    let n = o.len();
    match (a, b) {
        (Src::Data(a), Src::Data(b)) => match (ia, ib) {
            (1, 1) => {
                for ((o, &x), &y) in o.iter_mut().zip(&a[ao..ao + n]).zip(&b[bo..bo + n]) {
                    *o = f(x, y);
                }
            }
            (1, _) => {
                let y = b[bo];
                for (o, &x) in o.iter_mut().zip(&a[ao..ao + n]) {
                    *o = f(x, y);
                }
            }
            (_, 1) => {
                let x = a[ao];
                for (o, &y) in o.iter_mut().zip(&b[bo..bo + n]) {
                    *o = f(x, y);
                }
            }
            _ => o.fill(f(a[ao], b[bo])),
        },
        (Src::Out, Src::Data(b)) => {
            if ib == 1 {
                for (o, &y) in o.iter_mut().zip(&b[bo..bo + n]) {
                    *o = f(*o, y);
                }
            } else {
                let y = b[bo];
                o.iter_mut().for_each(|o| *o = f(*o, y));
            }
        }
        (Src::Data(a), Src::Out) => {
            if ia == 1 {
                for (o, &x) in o.iter_mut().zip(&a[ao..ao + n]) {
                    *o = f(x, *o);
                }
            } else {
                let x = a[ao];
                o.iter_mut().for_each(|o| *o = f(x, *o));
            }
        }
        (Src::Out, Src::Out) => o.iter_mut().for_each(|o| *o = f(*o, *o)),
    }
}

// ----------------------------------------------------------------- unary ----

/// `out = op(x)`; `in_place` when `x`'s buffer is `out`'s.
pub fn unary(op: UnaryOp, x: &TensorView, out: &mut TensorMut, in_place: bool) -> Result<()> {
    macro_rules! go {
        ($t:ty, $f:expr) => {
            run_unary::<$t, _>(src(x, in_place)?, out.data_mut::<$t>()?, $f)
        };
    }
    macro_rules! all_ops {
        ($t:ty) => {
            match op {
                UnaryOp::Neg => go!($t, <$t as Arith>::neg),
                UnaryOp::Square => go!($t, |v| <$t as Arith>::mul(v, v)),
                UnaryOp::Relu => go!($t, <$t as Arith>::relu),
                _ => {
                    return Err(Error::Unimplemented(format!(
                        "{op:?} is not defined for {}",
                        <$t as Element>::DTYPE
                    )))
                }
            }
        };
    }
    macro_rules! float_ops {
        ($t:ty) => {
            match op {
                UnaryOp::Sqrt => go!($t, <$t as FloatArith>::sqrt),
                UnaryOp::Rsqrt => go!($t, <$t as FloatArith>::rsqrt),
                UnaryOp::Exp => go!($t, <$t as FloatArith>::exp),
                UnaryOp::Log => go!($t, <$t as FloatArith>::log),
                _ => all_ops!($t),
            }
        };
    }
    match out.dtype {
        DType::F32 => float_ops!(f32),
        DType::F64 => float_ops!(f64),
        DType::F16 => float_ops!(f16),
        DType::BF16 => float_ops!(bf16),
        DType::I8 => all_ops!(i8),
        DType::I16 => all_ops!(i16),
        DType::I32 => all_ops!(i32),
        DType::I64 => all_ops!(i64),
        DType::U8 => all_ops!(u8),
        DType::U16 => all_ops!(u16),
        DType::U32 => all_ops!(u32),
        DType::U64 => all_ops!(u64),
        d => {
            return Err(Error::Unimplemented(format!(
                "{op:?} is not defined for {d}"
            )))
        }
    }
    Ok(())
}

fn run_unary<T: Element, F: Fn(T) -> T + Sync + Copy>(x: Src<T>, out: &mut [T], f: F) {
    for_chunks(out, |start, chunk| match x {
        Src::Data(x) => {
            let n = chunk.len();
            for (o, &v) in chunk.iter_mut().zip(&x[start..start + n]) {
                *o = f(v);
            }
        }
        Src::Out => chunk.iter_mut().for_each(|o| *o = f(*o)),
    });
}

// ------------------------------------------------------------------ AddN ----

/// `out = sum(inputs)`, all of the output's shape. `in_place` names the input
/// whose buffer is `out`'s.
pub fn add_n(inputs: &[TensorView], out: &mut TensorMut, in_place: Option<usize>) -> Result<()> {
    macro_rules! go {
        ($t:ty) => {{
            let srcs = inputs
                .iter()
                .enumerate()
                .map(|(i, v)| src::<$t>(v, in_place == Some(i)))
                .collect::<Result<Vec<_>>>()?;
            run_add_n::<$t>(&srcs, out.data_mut::<$t>()?)
        }};
    }
    match out.dtype {
        DType::F32 => go!(f32),
        DType::F64 => go!(f64),
        DType::F16 => go!(f16),
        DType::BF16 => go!(bf16),
        DType::I8 => go!(i8),
        DType::I16 => go!(i16),
        DType::I32 => go!(i32),
        DType::I64 => go!(i64),
        DType::U8 => go!(u8),
        DType::U16 => go!(u16),
        DType::U32 => go!(u32),
        DType::U64 => go!(u64),
        d => return Err(Error::Unimplemented(format!("AddN is not defined for {d}"))),
    }
    Ok(())
}

fn run_add_n<T: Arith>(srcs: &[Src<T>], out: &mut [T]) {
    // The aliased input (if any) is already in `out`; the others are added to it.
    let aliased = srcs.iter().any(|s| matches!(s, Src::Out));
    for_chunks(out, |start, chunk| {
        let range = start..start + chunk.len();
        let mut rest = srcs.iter().filter_map(|s| match s {
            Src::Data(d) => Some(&d[range.clone()]),
            Src::Out => None,
        });
        if !aliased {
            match rest.next() {
                Some(first) => chunk.copy_from_slice(first),
                None => chunk.fill(T::zero()),
            }
        }
        for d in rest {
            for (o, &v) in chunk.iter_mut().zip(d) {
                *o = T::add(*o, v);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfa_core::shape::broadcast_shapes;

    fn bin_f32(op: BinaryOp, a: (&[usize], &[f32]), b: (&[usize], &[f32])) -> Vec<f32> {
        let shape = broadcast_shapes(a.0, b.0).unwrap();
        let mut out = vec![0f32; shape.iter().product()];
        let av = TensorView::from_slice(a.0.to_vec(), a.1);
        let bv = TensorView::from_slice(b.0.to_vec(), b.1);
        binary(
            op,
            &av,
            &bv,
            &mut TensorMut::from_slice(shape, &mut out),
            None,
        )
        .unwrap();
        out
    }

    #[test]
    fn broadcasting_add_matches_reference() {
        use rand::Rng;
        let mut rng = rand::rng();
        for _ in 0..200 {
            let rank = rng.random_range(0..5);
            let out: Vec<usize> = (0..rank).map(|_| rng.random_range(0..5)).collect();
            let mut mk = || -> Vec<usize> {
                let r = rng.random_range(0..=rank);
                out[rank - r..]
                    .iter()
                    .map(|&d| if rng.random_bool(0.3) { 1 } else { d })
                    .collect()
            };
            let (sa, sb) = (mk(), mk());
            let full = broadcast_shapes(&sa, &sb).unwrap();
            let na: usize = sa.iter().product();
            let nb: usize = sb.iter().product();
            let a: Vec<f32> = (0..na).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..nb).map(|i| (i * 1000) as f32).collect();
            let got = bin_f32(BinaryOp::Add, (&sa, &a), (&sb, &b));
            // Reference: index arithmetic per output element.
            let n: usize = full.iter().product();
            let fst = tfa_core::shape::strides(&full);
            for (lin, g) in got.iter().enumerate().take(n) {
                let idx: Vec<usize> = fst.iter().zip(&full).map(|(s, d)| lin / s % d).collect();
                let off = |s: &[usize]| {
                    let st = tfa_core::shape::strides(s);
                    let k = full.len() - s.len();
                    s.iter()
                        .enumerate()
                        .map(|(i, &d)| if d == 1 { 0 } else { idx[k + i] * st[i] })
                        .sum::<usize>()
                };
                assert_eq!(*g, a[off(&sa)] + b[off(&sb)], "{sa:?} + {sb:?} at {lin}");
            }
        }
    }

    #[test]
    fn in_place_binary_reads_from_output() {
        let mut buf = vec![1f32, 2., 3., 4.];
        let b = [10f32, 20.];
        let a_shape = vec![2, 2];
        // `a` aliases the output: build its view from a copy of the shape only.
        let a_dummy = [0f32; 4];
        let av = TensorView::from_slice(a_shape.clone(), &a_dummy);
        let bv = TensorView::from_slice(vec![2], &b);
        binary(
            BinaryOp::Sub,
            &av,
            &bv,
            &mut TensorMut::from_slice(a_shape, &mut buf),
            Some(0),
        )
        .unwrap();
        assert_eq!(buf, vec![-9., -18., -7., -16.]);
    }

    #[test]
    fn large_parallel_unary_and_add_n() {
        let n = 100_003;
        let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
        let mut out = vec![0f32; n];
        let xv = TensorView::from_slice(vec![n], &x);
        unary(
            UnaryOp::Relu,
            &xv,
            &mut TensorMut::from_slice(vec![n], &mut out),
            false,
        )
        .unwrap();
        assert!(out.iter().zip(&x).all(|(o, v)| *o == v.max(0.0)));
        let mut sum = vec![0f32; n];
        add_n(
            &[xv.clone(), xv.clone(), xv],
            &mut TensorMut::from_slice(vec![n], &mut sum),
            None,
        )
        .unwrap();
        assert!(sum.iter().zip(&x).all(|(s, v)| *s == 3.0 * v));
    }

    #[test]
    fn int_division_is_rejected() {
        let a = [1i64];
        let av = TensorView::from_slice(vec![1], &a);
        let mut o = [0i64];
        let e = binary(
            BinaryOp::Div,
            &av,
            &av,
            &mut TensorMut::from_slice(vec![1], &mut o),
            None,
        );
        assert!(matches!(e, Err(Error::Unimplemented(_))));
    }
}
