//! complex64: `Complex`, `Real`, `Imag`, the 1-D FFTs (`FFT`, `IFFT`) and the
//! real FFTs (`RFFT`, `IRFFT`) behind `tf.signal.stft` and Keras
//! `MelSpectrogram`/`STFTSpectrogram`.
//! The arithmetic on complex64 (`AddV2`, `Sub`, `Mul`, `AddN`) and `Cast`
//! to and from it are in the elementwise and cast families.

use crate::{Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Error, Result};
use tfa_kernels::host::complex::{complex_from_parts, complex_part};
use tfa_kernels::host::fft::{fft, irfft, rfft};

fn complex_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (re, im) = (ctx.input(0)?, ctx.input(1)?);
    let shape = broadcast_shapes(&re.shape, &im.shape)?;
    let mut out = ctx.allocate_output(0, DType::C64, &shape)?;
    complex_from_parts(&re, &im, &mut out)
}

fn part_kernel(ctx: &dyn OpContext, imag: bool) -> Result<()> {
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, DType::F32, &x.shape)?;
    complex_part(&x, imag, &mut out)
}

/// The checks of TensorFlow's `FFTBase` for a 1-D real FFT: returns the FFT
/// length and the output shape.
fn fft_shape(ctx: &dyn OpContext, forward: bool) -> Result<(usize, Vec<usize>)> {
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
    Ok((n, shape))
}

fn rfft_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (n, shape) = fft_shape(ctx, true)?;
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, DType::C64, &shape)?;
    if x.num_elements() == 0 {
        // Nothing to transform (TensorFlow leaves such an output unwritten).
        out.bytes_mut().fill(0);
        return Ok(());
    }
    rfft(&x, n, &mut out)
}

fn irfft_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (n, shape) = fft_shape(ctx, false)?;
    let x = ctx.input(0)?;
    let mut out = ctx.allocate_output(0, DType::F32, &shape)?;
    if x.num_elements() == 0 {
        out.bytes_mut().fill(0);
        return Ok(());
    }
    irfft(&x, n, &mut out)
}

fn fft_kernel(ctx: &dyn OpContext, inverse: bool) -> Result<()> {
    let x = ctx.input(0)?;
    if x.rank() < 1 {
        return Err(Error::InvalidArgument(format!(
            "Input must have rank of at least 1 but got: {}",
            fmt_shape(&x.shape)
        )));
    }
    let mut out = ctx.allocate_output(0, DType::C64, &x.shape)?;
    fft(&x, inverse, &mut out)
}

const F32: &[DType] = &[DType::F32];

pub(crate) const OPS: &[OpDef] = &[
    OpDef {
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
        host: Some(complex_kernel),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(|c| part_kernel(c, false)),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(|c| part_kernel(c, true)),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "FFT",
        family: Family::Elementwise,
        summary: "complex FFT of the innermost dimension, complex64, computed in float64",
        constraints: &[TypeConstraint { attr: "Tcomplex", types: DType::COMPLEX }],
        attrs: &[],
        host_memory: &[],
        int32_host_memory: &[],
        host: Some(|c| fft_kernel(c, false)),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
        name: "IFFT",
        family: Family::Elementwise,
        summary: "inverse complex FFT of the innermost dimension (divided by its length), complex64",
        constraints: &[TypeConstraint { attr: "Tcomplex", types: DType::COMPLEX }],
        attrs: &[],
        host_memory: &[],
        int32_host_memory: &[],
        host: Some(|c| fft_kernel(c, true)),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(rfft_kernel),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(irfft_kernel),
        shape_rule: None,
        cuda: None,
    },
];
