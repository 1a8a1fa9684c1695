//! Indexing shape rules: GatherV2's and the tensor scatters' checks
//! (TensorFlow's gather_op.cc and scatter_nd_op.cc, messages included) and
//! the plans every backend's kernels follow.

use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

/// A validated gather: `out[b, o, n, i] = params[b, o, indices[b, n], i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatherPlan {
    pub batch: usize,
    pub outer: usize,
    pub gather_dim: usize,
    pub inner: usize,
    /// Indices per batch.
    pub n: usize,
    pub out_shape: Vec<usize>,
}

/// TensorFlow's GatherV2 checks (gather_op.cc), messages included.
pub fn gather_plan(
    params: &[usize],
    indices: &[usize],
    axis: i64,
    batch_dims: i64,
) -> Result<GatherPlan> {
    if params.is_empty() {
        return Err(Error::InvalidArgument(
            "params must be at least 1 dimensional".into(),
        ));
    }
    let pr = params.len() as i64;
    let ir = indices.len() as i64;
    if pr < batch_dims {
        return Err(Error::InvalidArgument(format!(
            "params must have at least {batch_dims} (batch_dims) dimensions but it has shape {}",
            fmt_shape(params)
        )));
    }
    let min_dims = if axis < 0 { -axis } else { axis + 1 };
    if pr < min_dims {
        return Err(Error::InvalidArgument(format!(
            "Shape must be at least rank {min_dims} but is rank {pr}"
        )));
    }
    let axis = if axis < 0 { axis + pr } else { axis };
    let mut bd = batch_dims;
    if bd != 0 {
        if bd < -ir || bd > ir {
            return Err(Error::InvalidArgument(format!(
                "Expected batch_dims in the range [{}, {ir}], but got {bd}",
                -ir
            )));
        }
        if bd < 0 {
            bd += ir;
        }
        if bd >= pr {
            return Err(Error::InvalidArgument(format!(
                "batch_dims ({bd}) must be less than rank(params) ({pr})."
            )));
        }
        if axis < bd {
            return Err(Error::InvalidArgument(format!(
                "batch_dims ({bd}) must be less than or equal to axis ({axis})."
            )));
        }
        for i in 0..bd as usize {
            if params[i] != indices[i] {
                return Err(Error::InvalidArgument(format!(
                    "params.shape[{i}]: {} should be equal to indices.shape[{i}]: {}",
                    params[i], indices[i]
                )));
            }
        }
    }
    let (axis, bd) = (axis as usize, bd as usize);
    let batch: usize = params[..bd].iter().product();
    let outer: usize = params[bd..axis].iter().product();
    let inner: usize = params[axis + 1..].iter().product();
    let n: usize = indices[bd..].iter().product();
    let mut out_shape = params[..axis].to_vec();
    out_shape.extend_from_slice(&indices[bd..]);
    out_shape.extend_from_slice(&params[axis + 1..]);
    Ok(GatherPlan {
        batch,
        outer,
        gather_dim: params[axis],
        inner,
        n,
        out_shape,
    })
}

/// A validated tensor scatter: `num_updates` index rows of `slice_dim`
/// coordinates each address a slice of `slice_size` elements of the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScatterPlan {
    pub slice_dim: usize,
    pub num_updates: usize,
    pub slice_size: usize,
    /// The output's leading `slice_dim` dims (bounds of the coordinates).
    pub prefix: Vec<usize>,
}

/// TensorFlow's ValidEmptyOutputShape.
fn valid_empty_output(inputs: usize, indices: usize, updates: usize) -> bool {
    (indices == 0 && updates == 0) || (inputs != 0 && indices != 0 && updates != 0)
}

/// The checks of TensorFlow's TensorScatterOp and PrepareAndValidateInputs
/// (scatter_nd_op.cc), messages included.
pub fn tensor_scatter_plan(
    shape: &[usize],
    indices: &[usize],
    updates: &[usize],
) -> Result<ScatterPlan> {
    let inv = |m: String| Err(Error::InvalidArgument(m));
    if indices.is_empty() {
        return inv(format!(
            "Indices shape must have rank at least one. Found:{}",
            fmt_shape(indices)
        ));
    }
    if updates.is_empty() {
        return inv(format!(
            "Updates shape must have rank at least one. Found:{}",
            fmt_shape(updates)
        ));
    }
    let (n_in, n_idx, n_upd) = (
        shape.iter().product::<usize>(),
        indices.iter().product::<usize>(),
        updates.iter().product::<usize>(),
    );
    if !valid_empty_output(n_in, n_idx, n_upd) {
        return inv("Indices and updates specified for empty output shape".into());
    }
    let outer = indices.len() - 1;
    if (0..outer).any(|i| updates.get(i) != Some(&indices[i])) {
        return inv(format!(
            "Outer dimensions of indices and update must match. Indices shape: {}, updates shape:{}",
            fmt_shape(indices),
            fmt_shape(updates)
        ));
    }
    let ix = indices[outer];
    let inner_ok =
        updates.len() >= outer && shape.len() >= ix && updates.len() - outer == shape.len() - ix;
    if !inner_ok {
        return inv(format!(
            "Inner dimensions of output shape must match inner dimensions of updates shape. Output: {} updates: {}",
            fmt_shape(shape),
            fmt_shape(updates)
        ));
    }
    if (0..updates.len() - outer).any(|i| updates[outer + i] != shape[ix + i]) {
        return inv(format!(
            "The inner {} dimensions of output.shape={} must match the inner {} dimensions of updates.shape={}",
            shape.len() - ix,
            fmt_shape(shape),
            updates.len() - outer,
            fmt_shape(updates)
        ));
    }
    // PrepareAndValidateInputs
    if shape.is_empty() {
        return inv(format!(
            "Output must be at least 1-D, got shape: {}",
            fmt_shape(shape)
        ));
    }
    if updates[0] != indices[0] {
        return inv(format!(
            "Dimensions [0,1) of indices[shape={}] = {} must match dimensions [0,1) of updates[shape={}] = {}",
            fmt_shape(indices),
            indices[0],
            fmt_shape(updates),
            updates[0]
        ));
    }
    let slice_dim = if indices.len() > 1 { ix } else { 1 };
    let batch_dim = if indices.len() > 1 {
        indices.len() - 1
    } else {
        1
    };
    let update_shape_ok = updates.len() >= batch_dim
        && shape.len() >= slice_dim + (updates.len() - batch_dim)
        && updates.len() == batch_dim + shape.len() - slice_dim
        && (0..batch_dim).all(|d| updates[d] == indices[d])
        && (0..updates.len() - batch_dim).all(|d| updates[d + batch_dim] == shape[d + slice_dim]);
    if !update_shape_ok {
        return inv(format!(
            "Must have updates.shape = indices.shape[:batch_dim] + params_shape[slice_dim:], got updates.shape: {}, indices.shape: {}, params_shape: {}, slice_dim: {slice_dim}, and batch_dim: {batch_dim}",
            fmt_shape(updates),
            fmt_shape(indices),
            fmt_shape(shape)
        ));
    }
    if n_in > 0 && !(1..=7).contains(&slice_dim) {
        return inv(format!(
            "Only indices.shape[-1] values between 1 and 5 are currently supported.  Requested rank: {slice_dim}"
        ));
    }
    Ok(ScatterPlan {
        slice_dim,
        num_updates: n_idx / slice_dim.max(1),
        slice_size: shape[slice_dim.min(shape.len())..].iter().product(),
        prefix: shape[..slice_dim.min(shape.len())].to_vec(),
    })
}
