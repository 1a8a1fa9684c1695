//! MirrorPad's shape rules: the mode and TensorFlow's checks on the
//! paddings (mirror_pad_op.cc, messages included) for the pad and its
//! gradient.

use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

/// `REFLECT` mirrors around the edge element, `SYMMETRIC` includes it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MirrorMode {
    Reflect,
    Symmetric,
}

impl MirrorMode {
    pub fn parse(s: &str) -> Result<MirrorMode> {
        match s {
            "REFLECT" => Ok(MirrorMode::Reflect),
            "SYMMETRIC" => Ok(MirrorMode::Symmetric),
            _ => Err(Error::InvalidArgument(
                "mode must be either REFLECT or SYMMETRIC.".into(),
            )),
        }
    }
}

fn invalid<T>(m: String) -> Result<T> {
    Err(Error::InvalidArgument(m))
}

/// The checks both ops share, up to the per-dimension ones: rank in [0, 5]
/// and paddings a `[rank, 2]` matrix. `sep` is the separator TensorFlow's
/// message puts between the two shapes (the ops differ).
fn check_paddings(shape: &[usize], pad_shape: &[usize], sep: &str) -> Result<()> {
    if shape.len() > 5 {
        return Err(Error::Unimplemented(format!(
            "inputs rank not in [0,5]: {}",
            shape.len()
        )));
    }
    if pad_shape.len() != 2 || pad_shape[1] != 2 {
        return invalid(format!(
            "paddings must be a matrix with 2 columns: {}",
            fmt_shape(pad_shape)
        ));
    }
    if pad_shape[0] != shape.len() {
        return invalid(format!(
            "The first dimension of paddings must be the rank of inputs{}{sep}{}",
            fmt_shape(pad_shape),
            fmt_shape(shape)
        ));
    }
    Ok(())
}

/// MirrorPad's output shape for `shape` and `pads` (`[rank, 2]` row-major).
pub fn mirror_pad_shape(
    shape: &[usize],
    pad_shape: &[usize],
    pads: &[i64],
    mode: MirrorMode,
) -> Result<Vec<usize>> {
    check_paddings(shape, pad_shape, ", ")?;
    let mut out = Vec::with_capacity(shape.len());
    for (d, &n) in shape.iter().enumerate() {
        let (b, a) = (pads[2 * d], pads[2 * d + 1]);
        if b < 0 || a < 0 {
            return invalid(format!("paddings must be non-negative: {b} {a}"));
        }
        let n64 = n as i64;
        match mode {
            MirrorMode::Symmetric if b > n64 || a > n64 => {
                return invalid(format!(
                    "paddings must be no greater than the dimension size: {b}, {a} greater than {n}"
                ))
            }
            MirrorMode::Reflect if b >= n64 || a >= n64 => {
                return invalid(format!(
                    "paddings must be less than the dimension size: {b}, {a} not less than {n}"
                ))
            }
            _ => {}
        }
        out.push(n + b as usize + a as usize);
    }
    Ok(out)
}

/// MirrorPadGrad's output shape: the padded `shape` less the paddings.
pub fn mirror_pad_grad_shape(
    shape: &[usize],
    pad_shape: &[usize],
    pads: &[i64],
    mode: MirrorMode,
) -> Result<Vec<usize>> {
    check_paddings(shape, pad_shape, " ")?;
    let mut out = Vec::with_capacity(shape.len());
    for (d, &n) in shape.iter().enumerate() {
        let (b, a) = (pads[2 * d], pads[2 * d + 1]);
        if b < 0 || a < 0 {
            return invalid(format!("Paddings must be non-negative: {b}, {a}"));
        }
        let size = n as i64 - (b + a);
        match mode {
            MirrorMode::Symmetric if b > size || a > size => {
                return invalid(format!(
                    "paddings must be no greater than the output dimension size: {b}, {a} greater than {size}"
                ))
            }
            MirrorMode::Reflect if b >= size || a >= size => {
                return invalid(format!(
                    "paddings must be less than the output dimension size: {b}, {a} not less than {size}"
                ))
            }
            _ => {}
        }
        out.push(size as usize);
    }
    Ok(out)
}
