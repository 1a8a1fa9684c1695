//! complex64: `Complex`, `Real`, `Imag`, the 1-D FFTs (`FFT`, `IFFT`) and the
//! real FFTs (`RFFT`, `IRFFT`) behind `tf.signal.stft` and Keras
//! `MelSpectrogram`/`STFTSpectrogram`.
//! The arithmetic on complex64 (`AddV2`, `Sub`, `Mul`, `AddN`) and `Cast`
//! to and from it are in the elementwise and cast families.

use super::spec_op;
use crate::spec::allocate;
use crate::{Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Error, Result};
use tfa_kernels::host::complex::{complex_from_parts, complex_part};
use tfa_kernels::host::fft::{fft, irfft, rfft};

fn complex_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let (re, im) = (ctx.input(0)?, ctx.input(1)?);
    Ok(OutputPlan::new(
        DType::C64,
        broadcast_shapes(&re.shape, &im.shape)?,
    ))
}

/// Real, Imag: float32 of the input's shape.
fn part_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    Ok(OutputPlan::new(DType::F32, ctx.input(0)?.shape))
}

/// The checks of TensorFlow's `FFTBase` for a 1-D real FFT: returns the FFT
/// length and the output.
fn real_fft_plan(ctx: &dyn OpContext, forward: bool) -> Result<(usize, OutputPlan)> {
    let (x, len) = (ctx.input(0)?, ctx.input(1)?);
    if x.rank() < 1 {
        return Err(Error::InvalidArgument(format!(
            "Input must have rank of at least 1 but got: {}",
            fmt_shape(&x.shape)
        )));
    }
    if len.shape != [1] {
        return Err(Error::InvalidArgument(
            "fft_length must have shape [1]".into(),
        ));
    }
    let n = len.to_i64_vec()?[0];
    if n < 0 {
        return Err(Error::InvalidArgument(format!(
            "fft_length[0] must >= 0, but got: {n}"
        )));
    }
    let n = n as usize;
    let axis = x.rank() - 1;
    let min = if forward { n } else { n / 2 + 1 };
    let have = x.shape[axis];
    if have != 0 && have < min {
        return Err(Error::InvalidArgument(format!(
            "Input dimension {axis} must have length of at least {min} but got: {have}"
        )));
    }
    let mut shape = x.shape.clone();
    shape[axis] = if forward && n != 0 { n / 2 + 1 } else { n };
    let dtype = if forward { DType::C64 } else { DType::F32 };
    Ok((n, OutputPlan::new(dtype, shape)))
}

/// RFFT (`forward`) or IRFFT of length `n`.
fn real_fft(ctx: &dyn OpContext, (n, out): &(usize, OutputPlan), forward: bool) -> Result<()> {
    let x = ctx.input(0)?;
    let mut out = allocate(ctx, 0, out)?;
    if x.num_elements() == 0 {
        // Nothing to transform (TensorFlow leaves such an output unwritten).
        out.bytes_mut().fill(0);
        return Ok(());
    }
    if forward {
        rfft(&x, *n, &mut out)
    } else {
        irfft(&x, *n, &mut out)
    }
}

fn fft_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let x = ctx.input(0)?;
    if x.rank() < 1 {
        return Err(Error::InvalidArgument(format!(
            "Input must have rank of at least 1 but got: {}",
            fmt_shape(&x.shape)
        )));
    }
    Ok(OutputPlan::new(DType::C64, x.shape.clone()))
}

const F32: &[DType] = &[DType::F32];

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| complex_plan(c) => OutputPlan,
        run: |c, p| complex_from_parts(&c.input(0)?, &c.input(1)?, &mut allocate(c, 0, p)?),
        def: {
            name: "Complex",
            family: Family::Elementwise,
            summary: "complex64 from float32 real and imaginary parts, with broadcasting",
            constraints: &[
                TypeConstraint { attr: "T", types: F32 },
                TypeConstraint { attr: "Tout", types: DType::COMPLEX },
            ],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| part_plan(c) => OutputPlan,
        run: |c, p| complex_part(&c.input(0)?, false, &mut allocate(c, 0, p)?),
        def: {
            name: "Real",
            family: Family::Elementwise,
            summary: "real part of a complex64 tensor (float32)",
            constraints: &[
                TypeConstraint { attr: "T", types: DType::COMPLEX },
                TypeConstraint { attr: "Tout", types: F32 },
            ],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| part_plan(c) => OutputPlan,
        run: |c, p| complex_part(&c.input(0)?, true, &mut allocate(c, 0, p)?),
        def: {
            name: "Imag",
            family: Family::Elementwise,
            summary: "imaginary part of a complex64 tensor (float32)",
            constraints: &[
                TypeConstraint { attr: "T", types: DType::COMPLEX },
                TypeConstraint { attr: "Tout", types: F32 },
            ],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| fft_plan(c) => OutputPlan,
        run: |c, p| fft(&c.input(0)?, false, &mut allocate(c, 0, p)?),
        def: {
            name: "FFT",
            family: Family::Elementwise,
            summary: "complex FFT of the innermost dimension, complex64, computed in float64",
            constraints: &[TypeConstraint { attr: "Tcomplex", types: DType::COMPLEX }],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| fft_plan(c) => OutputPlan,
        run: |c, p| fft(&c.input(0)?, true, &mut allocate(c, 0, p)?),
        def: {
            name: "IFFT",
            family: Family::Elementwise,
            summary: "inverse complex FFT of the innermost dimension (divided by its length), complex64",
            constraints: &[TypeConstraint { attr: "Tcomplex", types: DType::COMPLEX }],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| real_fft_plan(c, true) => (usize, OutputPlan),
        run: |c, p| real_fft(c, p, true),
        def: {
            name: "RFFT",
            family: Family::Elementwise,
            summary: "real-to-complex FFT of the innermost dimension (first `fft_length` values, `fft_length` in host memory), float32 to complex64, computed in float64",
            constraints: &[
                TypeConstraint { attr: "Treal", types: F32 },
                TypeConstraint { attr: "Tcomplex", types: DType::COMPLEX },
            ],
            attrs: &[],
            host_memory: &["fft_length"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| real_fft_plan(c, false) => (usize, OutputPlan),
        run: |c, p| real_fft(c, p, false),
        def: {
            name: "IRFFT",
            family: Family::Elementwise,
            summary: "complex-to-real inverse FFT of the innermost dimension (first `fft_length / 2 + 1` bins), complex64 to float32, normalised by `fft_length`",
            constraints: &[
                TypeConstraint { attr: "Treal", types: F32 },
                TypeConstraint { attr: "Tcomplex", types: DType::COMPLEX },
            ],
            attrs: &[],
            host_memory: &["fft_length"],
            int32_host_memory: &[],
        }
    ),
];
