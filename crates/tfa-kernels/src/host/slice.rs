//! Strided slice, pad, concat and stack. All move elements as raw words of the
//! element's width, so one implementation serves every dtype.

use super::transpose::{by_width, words, words_mut};
use super::{for_row_chunks, PAR_MIN_ELEMENTS};
use rayon::prelude::*;
use tfa_core::shape::{fmt_shape, strides};
use tfa_core::{Error, Result, TensorMut, TensorView};

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

/// Copies the slice `plan` of `x` into `out` (of `plan.final_shape`).
pub fn strided_slice(x: &TensorView, plan: &SlicePlan, out: &mut TensorMut) -> Result<()> {
    let n: usize = plan.processing_shape.iter().product();
    if n == 0 {
        return Ok(());
    }
    let size = x.dtype.size();
    let src_n = x.num_elements();
    let src = &x.bytes()[..src_n * size];
    let dst = &mut out.bytes_mut()[..n * size];
    by_width!(size, W => {
        slice_words::<W>(words(src)?, &x.shape, plan, words_mut(dst)?);
        Ok(())
    })
}

fn slice_words<T: Copy + Send + Sync>(src: &[T], shape: &[usize], plan: &SlicePlan, dst: &mut [T]) {
    let r = shape.len();
    let st = strides(shape);
    let base: i64 = (0..r).map(|i| plan.begin[i] * st[i] as i64).sum();
    let step: Vec<i64> = (0..r).map(|i| plan.stride[i] * st[i] as i64).collect();
    let ps = &plan.processing_shape;
    let (inner, inner_step) = if r == 0 {
        (1, 1)
    } else {
        (ps[r - 1], step[r - 1])
    };
    let outer_shape = if r == 0 { &[][..] } else { &ps[..r - 1] };
    let rows = |first: usize, chunk: &mut [T]| {
        for (k, row) in chunk.chunks_mut(inner).enumerate() {
            let mut idx = first + k;
            let mut off = base;
            for d in (0..outer_shape.len()).rev() {
                off += (idx % outer_shape[d]) as i64 * step[d];
                idx /= outer_shape[d];
            }
            if inner_step == 1 {
                let o = off as usize;
                row.copy_from_slice(&src[o..o + inner]);
            } else {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = src[(off + j as i64 * inner_step) as usize];
                }
            }
        }
    };
    if dst.len() < PAR_MIN_ELEMENTS {
        rows(0, dst);
    } else {
        let per = (PAR_MIN_ELEMENTS / 2 / inner).max(1);
        dst.par_chunks_mut(per * inner)
            .enumerate()
            .for_each(|(i, c)| rows(i * per, c));
    }
}

// --------------------------------------------------------- Concat / Pack ----

/// Concatenates `inputs` along `axis` (already normalised and shape-checked;
/// see [`concat_shape`]) into `out`.
pub fn concat(inputs: &[TensorView], axis: usize, out: &mut TensorMut) -> Result<()> {
    let total = out.num_elements();
    if total == 0 {
        return Ok(());
    }
    let size = out.dtype.size();
    let outer: usize = out.shape[..axis].iter().product();
    // Elements each input contributes per outer row.
    let parts: Vec<usize> = inputs
        .iter()
        .map(|t| t.num_elements().checked_div(outer).unwrap_or(0))
        .collect();
    let row: usize = parts.iter().sum();
    let dst = &mut out.bytes_mut()[..total * size];
    by_width!(size, W => {
        let srcs = inputs
            .iter()
            .zip(&parts)
            .map(|(t, &p)| words::<W>(&t.bytes()[..p * outer * size]))
            .collect::<Result<Vec<_>>>()?;
        concat_words::<W>(&srcs, &parts, row, words_mut(dst)?);
        Ok(())
    })
}

fn concat_words<T: Copy + Send + Sync>(srcs: &[&[T]], parts: &[usize], row: usize, dst: &mut [T]) {
    let fill_row = |o: usize, d: &mut [T]| {
        let mut at = 0;
        for (s, &p) in srcs.iter().zip(parts) {
            d[at..at + p].copy_from_slice(&s[o * p..(o + 1) * p]);
            at += p;
        }
    };
    if dst.len() < PAR_MIN_ELEMENTS {
        dst.chunks_mut(row)
            .enumerate()
            .for_each(|(o, d)| fill_row(o, d));
    } else if dst.len() / row >= rayon::current_num_threads() * 4 {
        dst.par_chunks_mut(row)
            .enumerate()
            .for_each(|(o, d)| fill_row(o, d));
    } else {
        // Few long rows: copy each part in parallel pieces.
        for (o, d) in dst.chunks_mut(row).enumerate() {
            let mut rest = d;
            for (s, &p) in srcs.iter().zip(parts) {
                let (head, tail) = rest.split_at_mut(p);
                head.par_chunks_mut(super::PAR_CHUNK)
                    .zip(s[o * p..(o + 1) * p].par_chunks(super::PAR_CHUNK))
                    .for_each(|(a, b)| a.copy_from_slice(b));
                rest = tail;
            }
        }
    }
}

/// Normalises a ConcatV2 axis and computes the output shape, with
/// TensorFlow's messages.
/// The inverse of `concat`: `outs[k]` takes its share of `x` along `axis`
/// (every output has `x`'s shape but for that dim). Row copies are memcpy:
/// memory-bound, so one thread suffices for the sizes split sees (gradients).
pub fn split(x: &TensorView, axis: usize, outs: &mut [TensorMut]) -> Result<()> {
    let size = x.dtype.size();
    let outer: usize = x.shape[..axis].iter().product();
    let row_bytes = x.num_elements().checked_div(outer).unwrap_or(0) * size;
    let src = x.bytes();
    let mut at = 0;
    for out in outs.iter_mut() {
        let part = out.num_elements().checked_div(outer).unwrap_or(0) * size;
        let dst = out.bytes_mut();
        for o in 0..outer {
            dst[o * part..(o + 1) * part]
                .copy_from_slice(&src[o * row_bytes + at..o * row_bytes + at + part]);
        }
        at += part;
    }
    Ok(())
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

/// `out = pad(x)` with `before[d]` leading elements per dim, filled with the
/// element whose bytes are `value`.
pub fn pad(x: &TensorView, before: &[usize], value: &[u8], out: &mut TensorMut) -> Result<()> {
    let total = out.num_elements();
    if total == 0 {
        return Ok(());
    }
    let size = out.dtype.size();
    let src_n = x.num_elements();
    let src = &x.bytes()[..src_n * size];
    let out_shape = out.shape.clone();
    let dst = &mut out.bytes_mut()[..total * size];
    by_width!(size, W => {
        if value.len() < size {
            return Err(Error::Internal("pad value is too short".into()));
        }
        // SAFETY: `value` holds at least one element's bytes; W is plain data.
        let v: W = unsafe { std::ptr::read_unaligned(value.as_ptr() as *const W) };
        pad_words::<W>(words(src)?, &x.shape, before, v, &out_shape, words_mut(dst)?);
        Ok(())
    })
}

fn pad_words<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    before: &[usize],
    value: T,
    out_shape: &[usize],
    dst: &mut [T],
) {
    let r = shape.len();
    if r == 0 {
        dst[0] = src[0];
        return;
    }
    let row = out_shape[r - 1];
    let (lead, inner) = (before[r - 1], shape[r - 1]);
    let in_st = strides(shape);
    let rows = |first: usize, chunk: &mut [T]| {
        for (k, d) in chunk.chunks_mut(row).enumerate() {
            // Input row of this output row, if any.
            let mut idx = first + k;
            let mut off = 0usize;
            let mut inside = true;
            for dim in (0..r - 1).rev() {
                let i = idx % out_shape[dim];
                idx /= out_shape[dim];
                if i < before[dim] || i >= before[dim] + shape[dim] {
                    inside = false;
                    break;
                }
                off += (i - before[dim]) * in_st[dim];
            }
            if inside {
                d[..lead].fill(value);
                d[lead..lead + inner].copy_from_slice(&src[off..off + inner]);
                d[lead + inner..].fill(value);
            } else {
                d.fill(value);
            }
        }
    };
    for_row_chunks(dst, row, rows);
}

/// Tile: `out` is `x` repeated `multiples[d]` times along each dim d (any
/// dtype: rows are copied as bytes). `out.shape[d] == x.shape[d] * multiples[d]`.
pub fn tile(x: &TensorView, out: &mut TensorMut) -> Result<()> {
    let rank = x.shape.len();
    if out.shape.len() != rank {
        return Err(Error::Internal("tile: rank mismatch".into()));
    }
    let esize = x.dtype.size();
    let total: usize = out.shape.iter().product();
    if total == 0 {
        return Ok(());
    }
    if rank == 0 {
        out.bytes_mut()[..esize].copy_from_slice(&x.bytes()[..esize]);
        return Ok(());
    }
    let src = x.bytes();
    let in_row = x.shape[rank - 1] * esize;
    let out_row = out.shape[rank - 1] * esize;
    let outer_out = out.shape[..rank - 1].to_vec();
    let outer_in = &x.shape[..rank - 1];
    let in_strides = strides(outer_in);
    let dst = &mut out.bytes_mut()[..total * esize];
    for_row_chunks(dst, out_row, |first, chunk| {
        for (i, row) in chunk.chunks_mut(out_row).enumerate() {
            // Source row: each output coordinate modulo the input's size.
            let (mut r, mut src_row) = (first + i, 0);
            for d in (0..outer_out.len()).rev() {
                let c = r % outer_out[d];
                r /= outer_out[d];
                src_row += (c % outer_in[d]) * in_strides[d];
            }
            let s = &src[src_row * in_row..(src_row + 1) * in_row];
            for rep in row.chunks_mut(in_row) {
                rep.copy_from_slice(s);
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tile_tests {
    use super::*;

    #[test]
    fn tile_matches_numpy_semantics() {
        let x = [1i32, 2, 3, 4, 5, 6]; // [2, 3]
        let mut out = vec![0i32; 2 * 2 * 3 * 2];
        tile(
            &TensorView::from_slice(vec![2, 3], &x),
            &mut TensorMut::from_slice(vec![4, 6], &mut out),
        )
        .unwrap();
        assert_eq!(
            out,
            vec![1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]
        );
    }
}

// ------------------------------------------------------ StridedSliceGrad ----

/// The gradient of a strided slice: `out` (the input's shape) is zero except
/// at the positions `plan` selects, which receive `dy` in slice order.
pub fn strided_slice_grad(dy: &TensorView, plan: &SlicePlan, out: &mut TensorMut) -> Result<()> {
    out.bytes_mut().fill(0);
    let n: usize = plan.processing_shape.iter().product();
    if n == 0 {
        return Ok(());
    }
    let size = dy.dtype.size();
    let shape = out.shape.clone();
    let src = &dy.bytes()[..n * size];
    let total = out.num_elements();
    let dst = &mut out.bytes_mut()[..total * size];
    by_width!(size, W => {
        scatter_words::<W>(words(src)?, &shape, plan, words_mut(dst)?);
        Ok(())
    })
}

fn scatter_words<T: Copy>(src: &[T], shape: &[usize], plan: &SlicePlan, dst: &mut [T]) {
    let r = shape.len();
    let st = strides(shape);
    let base: i64 = (0..r).map(|i| plan.begin[i] * st[i] as i64).sum();
    let step: Vec<i64> = (0..r).map(|i| plan.stride[i] * st[i] as i64).collect();
    let ps = &plan.processing_shape;
    let inner = if r == 0 { 1 } else { ps[r - 1] };
    let inner_step = if r == 0 { 1 } else { step[r - 1] };
    let outer = if r == 0 { &[][..] } else { &ps[..r - 1] };
    for (k, row) in src.chunks(inner).enumerate() {
        let mut idx = k;
        let mut off = base;
        for d in (0..outer.len()).rev() {
            off += (idx % outer[d]) as i64 * step[d];
            idx /= outer[d];
        }
        for (j, &v) in row.iter().enumerate() {
            dst[(off + j as i64 * inner_step) as usize] = v;
        }
    }
}

#[cfg(test)]
mod tests;
