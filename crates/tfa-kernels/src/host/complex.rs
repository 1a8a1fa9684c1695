//! complex64 arithmetic: building complex numbers from parts (`Complex`),
//! taking them apart (`Real`, `Imag`), and the arithmetic TensorFlow's
//! gradients of spectral ops emit (`AddV2`/`Sub`/`Mul`/`AddN` on complex64),
//! with broadcasting. num-complex does the arithmetic; products use the
//! textbook formula in float32, as Eigen's `std::complex<float>` does.

use super::broadcast::BroadcastPlan;
use super::PAR_MIN_ELEMENTS;
use rayon::prelude::*;
use tfa_core::{c64, Error, Result, TensorMut, TensorView};

/// The complex64 arithmetic ops.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ComplexOp {
    Add,
    Sub,
    Mul,
}

/// Runs `f(out_offset, operand_offsets, len)` over `out` in parallel chunks.
fn for_runs<const N: usize>(
    plan: &BroadcastPlan<N>,
    out: &mut [c64],
    f: impl Fn(&mut [c64], [usize; N]) + Sync,
) {
    let run = |start: usize, chunk: &mut [c64]| {
        plan.for_each_run(start, start + chunk.len(), |pos, offs, len| {
            f(&mut chunk[pos - start..pos - start + len], offs)
        })
    };
    if out.len() < PAR_MIN_ELEMENTS {
        run(0, out);
    } else {
        let step = PAR_MIN_ELEMENTS / 4;
        out.par_chunks_mut(step)
            .enumerate()
            .for_each(|(i, chunk)| run(i * step, chunk));
    }
}

/// `Complex`: `out = re + i * im` (float32 parts, broadcast).
pub fn complex_from_parts(re: &TensorView, im: &TensorView, out: &mut TensorMut) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&re.shape, &im.shape]);
    let [sa, sb] = plan.inner_strides();
    let (a, b) = (re.data::<f32>()?, im.data::<f32>()?);
    for_runs(&plan, out.data_mut::<c64>()?, |dst, [oa, ob]| {
        for (k, d) in dst.iter_mut().enumerate() {
            *d = c64::new(a[oa + k * sa], b[ob + k * sb]);
        }
    });
    Ok(())
}

/// `Real` (`imag == false`) or `Imag` of a complex64 tensor.
pub fn complex_part(x: &TensorView, imag: bool, out: &mut TensorMut) -> Result<()> {
    let src = x.data::<c64>()?;
    let dst = out.data_mut::<f32>()?;
    let part = |v: &c64| if imag { v.im } else { v.re };
    if dst.len() < PAR_MIN_ELEMENTS {
        dst.iter_mut().zip(src).for_each(|(d, v)| *d = part(v));
    } else {
        dst.par_iter_mut().zip(src).for_each(|(d, v)| *d = part(v));
    }
    Ok(())
}

/// `out = a op b` on complex64, broadcast (`out` aliases neither input).
pub fn complex_binary(
    op: ComplexOp,
    a: &TensorView,
    b: &TensorView,
    out: &mut TensorMut,
) -> Result<()> {
    let plan = BroadcastPlan::new(&out.shape, [&a.shape, &b.shape]);
    let [sa, sb] = plan.inner_strides();
    let (x, y) = (a.data::<c64>()?, b.data::<c64>()?);
    let f = match op {
        ComplexOp::Add => |p: c64, q: c64| p + q,
        ComplexOp::Sub => |p: c64, q: c64| p - q,
        ComplexOp::Mul => |p: c64, q: c64| p * q,
    };
    for_runs(&plan, out.data_mut::<c64>()?, |dst, [oa, ob]| {
        for (k, d) in dst.iter_mut().enumerate() {
            *d = f(x[oa + k * sa], y[ob + k * sb]);
        }
    });
    Ok(())
}

/// `AddN` on complex64: the inputs summed in order.
pub fn complex_add_n(inputs: &[TensorView], out: &mut TensorMut) -> Result<()> {
    let srcs = inputs
        .iter()
        .map(|t| t.data::<c64>())
        .collect::<Result<Vec<_>>>()?;
    let dst = out.data_mut::<c64>()?;
    if srcs.is_empty() || srcs.iter().any(|s| s.len() != dst.len()) {
        return Err(Error::Internal("AddN inputs differ in size".into()));
    }
    dst.iter_mut().enumerate().for_each(|(i, d)| {
        *d = srcs.iter().skip(1).fold(srcs[0][i], |acc, s| acc + s[i]);
    });
    Ok(())
}
