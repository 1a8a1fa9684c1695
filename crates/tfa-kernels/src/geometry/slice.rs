//! Slicing shape rules: StridedSlice's masks and plan (TensorFlow's
//! `ValidateStridedSliceOp`, its messages), and the output shapes of
//! ConcatV2, Pack and Pad, with the checks of TensorFlow's kernels.

use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

// ---------------------------------------------------------- StridedSlice ----

/// Masks of a StridedSlice node (TensorFlow's attributes).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct SliceMasks {
    pub begin: i64,
    pub end: i64,
    pub ellipsis: i64,
    pub new_axis: i64,
    pub shrink_axis: i64,
}

/// A resolved strided slice: per input dim the first index, step and count
/// (the "processing shape"), and the output shape after new/shrunk axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePlan {
    pub begin: Vec<i64>,
    pub stride: Vec<i64>,
    pub processing_shape: Vec<usize>,
    pub final_shape: Vec<usize>,
    /// The slice takes the whole input unchanged.
    pub is_identity: bool,
}

const NEW_AXIS: i64 = -1;
const SHRINK_AXIS: i64 = -2;

/// TensorFlow's `ValidateStridedSliceOp` (strided_slice_op.cc): the same
/// checks, messages and results.
pub fn strided_slice_plan(
    input: &[usize],
    begin: &[i64],
    end: &[i64],
    strides_in: &[i64],
    m: SliceMasks,
) -> Result<SlicePlan> {
    if begin.len() != strides_in.len() || end.len() != strides_in.len() || begin.len() >= 32 {
        return Err(Error::InvalidArgument(format!(
            "Expected begin, end, and strides to be 1D equal size tensors, but got shapes [{}], [{}], and [{}] instead.",
            begin.len(),
            end.len(),
            strides_in.len()
        )));
    }
    if m.ellipsis != 0 && (m.ellipsis & (m.ellipsis - 1)) != 0 {
        return Err(Error::InvalidArgument(
            "Multiple ellipses in slice spec not allowed".into(),
        ));
    }
    let mut d = dense_spec(input.len(), begin, end, strides_in, m)?;
    // Step 3: canonicalise and bound-check.
    let mut is_identity = true;
    let mut processing = Vec::with_capacity(input.len());
    for (i, &dim) in input.iter().enumerate() {
        let (b, size) = canonical_range(&d, i, dim as i64)?;
        is_identity &= d.stride[i] == 1 && b == 0 && size == dim;
        d.begin[i] = b;
        processing.push(size);
    }
    // Step 4: final shape.
    let final_shape = d
        .gather
        .iter()
        .filter_map(|&g| match g {
            NEW_AXIS => Some(1),
            SHRINK_AXIS => None,
            g => Some(processing[g as usize]),
        })
        .collect();
    Ok(SlicePlan {
        begin: d.begin,
        stride: d.stride,
        processing_shape: processing,
        final_shape,
        is_identity,
    })
}

/// The slice spec over every input dimension (TensorFlow's dense spec):
/// per dimension begin, end, stride and mask bits, and for each output
/// dimension the input dimension it comes from (or `NEW_AXIS`; `SHRINK_AXIS`
/// for dimensions the output drops).
struct DenseSpec {
    begin: Vec<i64>,
    end: Vec<i64>,
    stride: Vec<i64>,
    begin_mask: i64,
    end_mask: i64,
    shrink_mask: i64,
    gather: Vec<i64>,
}

/// Steps 1 and 2 of `ValidateStridedSliceOp`: the sparse spec (an ellipsis
/// added at the end when there is none), expanded over `dims` dimensions.
fn dense_spec(
    dims: usize,
    begin: &[i64],
    end: &[i64],
    strides_in: &[i64],
    m: SliceMasks,
) -> Result<DenseSpec> {
    let mut sparse_dims = strides_in.len();
    let mut ellipsis_mask = m.ellipsis;
    let mut ellipsis_seen = false;
    let mut add_after_ellipsis = 0i64;
    for i in 0..sparse_dims {
        if ellipsis_seen && (1i64 << i) & m.new_axis != 0 {
            add_after_ellipsis += 1;
        }
        if (1i64 << i) & ellipsis_mask != 0 {
            ellipsis_seen = true;
        }
    }
    if !ellipsis_seen {
        ellipsis_mask |= 1i64 << sparse_dims;
        sparse_dims += 1;
    }
    let mut d = DenseSpec {
        begin: vec![0i64; dims],
        end: vec![0i64; dims],
        stride: vec![1i64; dims],
        begin_mask: 0,
        end_mask: 0,
        shrink_mask: 0,
        gather: Vec::new(),
    };
    let mut full = 0usize;
    for i in 0..sparse_dims {
        let bit = 1i64 << i;
        if bit & ellipsis_mask != 0 {
            let next = ((dims as i64) - (sparse_dims as i64 - i as i64) + 1 + add_after_ellipsis)
                .min(dims as i64);
            while (full as i64) < next {
                d.begin[full] = 0;
                d.end[full] = 0;
                d.stride[full] = 1;
                d.begin_mask |= 1 << full;
                d.end_mask |= 1 << full;
                d.gather.push(full as i64);
                full += 1;
            }
        } else if bit & m.new_axis != 0 {
            d.gather.push(NEW_AXIS);
        } else {
            if full == dims {
                if dims == 0 {
                    return Err(Error::InvalidArgument(
                        "Attempting to slice scalar input.".into(),
                    ));
                }
                return Err(Error::InvalidArgument(format!(
                    "Index out of range using input dim {full}; input has only {dims} dims"
                )));
            }
            d.begin[full] = begin[i];
            d.end[full] = end[i];
            d.stride[full] = strides_in[i];
            if m.begin & bit != 0 {
                d.begin_mask |= 1 << full;
            }
            if m.end & bit != 0 {
                d.end_mask |= 1 << full;
            }
            if m.shrink_axis & bit != 0 {
                d.gather.push(SHRINK_AXIS);
                d.shrink_mask |= 1 << full;
            } else {
                d.gather.push(full as i64);
            }
            full += 1;
        }
    }
    Ok(d)
}

/// Dimension `i` (of size `dim`) of the dense spec canonicalised and
/// bound-checked: its first index and the number of elements taken.
fn canonical_range(d: &DenseSpec, i: usize, dim: i64) -> Result<(i64, usize)> {
    let s = d.stride[i];
    if s == 0 {
        return Err(Error::InvalidArgument(format!(
            "strides[{i}] must be non-zero"
        )));
    }
    let shrink = d.shrink_mask & (1 << i) != 0;
    let masks = [d.begin_mask & (1 << i) != 0, d.end_mask & (1 << i) != 0];
    let valid = if s > 0 { [0, dim] } else { [-1, dim - 1] };
    let canonical = |x: i64, c: usize| -> i64 {
        if masks[c] {
            if s > 0 {
                valid[c]
            } else {
                valid[(c + 1) & 1]
            }
        } else {
            let f = if x < 0 { dim + x } else { x };
            f.clamp(valid[0], valid[1].max(valid[0]))
        }
    };
    if shrink && s <= 0 {
        return Err(Error::InvalidArgument(
            "only stride 1 allowed on non-range indexing.".into(),
        ));
    }
    let (b, e) = if shrink {
        let f = if d.begin[i] < 0 {
            dim + d.begin[i]
        } else {
            d.begin[i]
        };
        if f < 0 || f >= dim {
            return Err(Error::InvalidArgument(format!(
                "slice index {f} of dimension {i} out of bounds."
            )));
        }
        (f, f + 1)
    } else {
        (canonical(d.begin[i], 0), canonical(d.end[i], 1))
    };
    let len = e - b;
    let size = if len == 0 || ((len < 0) != (s < 0)) {
        0
    } else {
        len / s + i64::from(len % s != 0)
    };
    Ok((b, size as usize))
}

pub fn concat_shape(shapes: &[&[usize]], axis: i64) -> Result<(usize, Vec<usize>)> {
    let first = shapes[0];
    let rank = first.len() as i64;
    if !(-rank..rank).contains(&axis) {
        if rank == 0 {
            return Err(Error::InvalidArgument(
                "ConcatOp : Can't concatenate scalars (use tf.stack instead)".into(),
            ));
        }
        return Err(Error::InvalidArgument(format!(
            "ConcatOp : Expected concatenating dimensions in the range [{}, {rank}), but got {axis}",
            -rank
        )));
    }
    let axis = if axis < 0 { axis + rank } else { axis } as usize;
    let mut out = first.to_vec();
    for (i, s) in shapes.iter().enumerate().skip(1) {
        if s.len() != first.len() {
            return Err(Error::InvalidArgument(format!(
                "ConcatOp : Ranks of all input tensors should match: shape[0] = {} vs. shape[{i}] = {}",
                fmt_shape(first),
                fmt_shape(s)
            )));
        }
        for j in 0..first.len() {
            if j != axis && s[j] != first[j] {
                return Err(Error::InvalidArgument(format!(
                    "ConcatOp : Dimension {j} in both shapes must be equal: shape[0] = {} vs. shape[{i}] = {}",
                    fmt_shape(first),
                    fmt_shape(s)
                )));
            }
        }
        out[axis] += s[axis];
    }
    Ok((axis, out))
}

/// Pack (tf.stack): checks the shapes, normalises `axis` and returns it with
/// the output shape. The data is then a concat along that axis.
pub fn pack_shape(shapes: &[&[usize]], axis: i64) -> Result<(usize, Vec<usize>)> {
    let first = shapes[0];
    let out_rank = first.len() as i64 + 1;
    let a = if axis < 0 { axis + out_rank } else { axis };
    if !(0..out_rank).contains(&a) {
        return Err(Error::InvalidArgument(format!(
            "axis = {axis} not in [{}, {out_rank})",
            -out_rank
        )));
    }
    for (i, s) in shapes.iter().enumerate().skip(1) {
        if s != &first {
            return Err(Error::InvalidArgument(format!(
                "Shapes of all inputs must match: values[0].shape = {} != values[{i}].shape = {}",
                fmt_shape(first),
                fmt_shape(s)
            )));
        }
    }
    let a = a as usize;
    let mut out = first.to_vec();
    out.insert(a, shapes.len());
    Ok((a, out))
}

// ------------------------------------------------------------------- Pad ----

/// Validates paddings (`[rank, 2]` values, row-major) for an input shape and
/// returns the output shape, with TensorFlow's messages.
pub fn pad_shape(input: &[usize], pad_shape: &[usize], pads: &[i64]) -> Result<Vec<usize>> {
    if pad_shape.len() != 2 || pad_shape[1] != 2 {
        return Err(Error::InvalidArgument(format!(
            "paddings must be a matrix with 2 columns: {}",
            fmt_shape(pad_shape)
        )));
    }
    if pad_shape[0] != input.len() {
        return Err(Error::InvalidArgument(format!(
            "The first dimension of paddings must be the rank of inputs{} {}",
            fmt_shape(pad_shape),
            fmt_shape(input)
        )));
    }
    let mut out = Vec::with_capacity(input.len());
    for (d, &n) in input.iter().enumerate() {
        let (b, a) = (pads[2 * d], pads[2 * d + 1]);
        if b < 0 || a < 0 {
            return Err(Error::InvalidArgument(format!(
                "Paddings must be non-negative: {b} {a}"
            )));
        }
        out.push(n + b as usize + a as usize);
    }
    Ok(out)
}
