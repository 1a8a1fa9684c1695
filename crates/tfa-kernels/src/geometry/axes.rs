//! Axis shape rules: reductions, ArgMax/ArgMin, scans, TopKV2, ReverseV2
//! and MatrixBandPart, with TensorFlow's checks and messages.

use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

/// Which dims of a rank-`rank` tensor `axes` reduces (negative axes count
/// from the end; a dim named twice is an error), with TensorFlow's messages.
pub fn reduction_bitmap(rank: usize, axes: &[i64]) -> Result<Vec<bool>> {
    let mut bits = vec![false; rank];
    let r = rank as i64;
    for &a in axes {
        if a < -r || a >= r {
            return Err(Error::InvalidArgument(format!(
                "Invalid reduction dimension ({a} for input with {rank} dimension(s)"
            )));
        }
        let i = (if a < 0 { a + r } else { a }) as usize;
        if bits[i] {
            return Err(Error::InvalidArgument(format!(
                "Invalid reduction arguments: Axes contains duplicate dimension: {i}"
            )));
        }
        bits[i] = true;
    }
    Ok(bits)
}

/// Output shape of a reduction.
pub fn reduced_shape(shape: &[usize], reduced: &[bool], keep_dims: bool) -> Vec<usize> {
    shape
        .iter()
        .zip(reduced)
        .filter_map(|(&d, &r)| match (r, keep_dims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Output shape: the input's without `axis`.
pub fn arg_reduce_shape(shape: &[usize], axis: i64) -> Result<(usize, Vec<usize>)> {
    let rank = shape.len() as i64;
    if axis < -rank || axis >= rank {
        return Err(Error::InvalidArgument(format!(
            "Expected dimension in the range [{}, {}), but got {axis}",
            -rank, rank
        )));
    }
    let a = if axis < 0 { axis + rank } else { axis } as usize;
    if shape[a] == 0 {
        return Err(Error::InvalidArgument(format!(
            "Reduction axis {a} is empty in shape {}",
            fmt_shape(shape)
        )));
    }
    let mut out = shape.to_vec();
    out.remove(a);
    Ok((a, out))
}

/// The scanned dim for `axis` of a rank-`rank` tensor (negative counts from
/// the end), with TensorFlow's message (which shows the adjusted value).
pub fn scan_axis(rank: usize, axis: i64) -> Result<usize> {
    let dims = rank as i64;
    let adjusted = if axis < 0 { axis + dims } else { axis };
    if !(0..dims).contains(&adjusted) {
        return Err(Error::InvalidArgument(format!(
            "ScanOp: Expected scan axis in the range [{}, {dims}), but got {adjusted}",
            -dims
        )));
    }
    Ok(adjusted as usize)
}

/// TensorFlow's checks: `k` in `[0, columns]` of an input of rank >= 1.
/// Returns the output shape (the input's with `k` columns).
pub fn topk_shape(shape: &[usize], k: i64) -> Result<Vec<usize>> {
    if k < 0 {
        return Err(Error::InvalidArgument(format!("Need k >= 0, got {k}")));
    }
    let Some(&cols) = shape.last() else {
        return Err(Error::InvalidArgument(format!(
            "input must be >= 1-D, got shape {}",
            fmt_shape(shape)
        )));
    };
    if (cols as i64) < k {
        return Err(Error::InvalidArgument(format!(
            "input must have at least k columns. Had {cols}, needed {k}"
        )));
    }
    let mut out = shape.to_vec();
    *out.last_mut().unwrap_or(&mut 0) = k as usize;
    Ok(out)
}

/// TensorFlow's ReverseV2 checks: `axis` entries (negative ones count from
/// the end) against `rank`, each at most once, rank at most 8. Returns one
/// flag per dim.
pub fn reverse_axes(rank: usize, axis: &[i64]) -> Result<Vec<bool>> {
    let dims = rank as i64;
    let mut flags = vec![false; rank];
    for (i, &a) in axis.iter().enumerate() {
        let canonical = if a < 0 { a + dims } else { a };
        if !(0..dims).contains(&canonical) {
            return Err(Error::InvalidArgument(format!(
                "'axis'[{i}] = {a} is out of valid range [0, {}",
                dims - 1
            )));
        }
        if std::mem::replace(&mut flags[canonical as usize], true) {
            return Err(Error::InvalidArgument(format!(
                "axis {canonical} specified more than once."
            )));
        }
    }
    if rank > 8 {
        return Err(Error::Unimplemented(
            "reverse is not implemented for tensors of rank > 8.".into(),
        ));
    }
    Ok(flags)
}

/// TensorFlow's checks of the input shape and the band limits (`num_lower`
/// sub-diagonals, `num_upper` super-diagonals; negative: all).
pub fn check_band(shape: &[usize], num_lower: i64, num_upper: i64) -> Result<()> {
    let rank = shape.len();
    if rank < 2 {
        return Err(Error::InvalidArgument(format!(
            "input must be at least 2-dim, received shape: {}",
            fmt_shape(shape)
        )));
    }
    let (rows, cols) = (shape[rank - 2] as i64, shape[rank - 1] as i64);
    if num_lower > rows {
        return Err(Error::InvalidArgument(format!(
            "num_lower must be negative or less or equal to number of rows ({rows}) got: {num_lower}"
        )));
    }
    if num_upper > cols {
        return Err(Error::InvalidArgument(format!(
            "num_upper must be negative or less or equal to number of columns ({cols}) got: {num_upper}"
        )));
    }
    Ok(())
}
