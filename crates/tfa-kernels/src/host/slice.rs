//! Strided slice, pad, concat and stack. All move elements as raw words of the
//! element's width, so one implementation serves every dtype.

use super::transpose::{by_width, words, words_mut};
use super::{for_row_chunks, PAR_MIN_ELEMENTS};
use rayon::prelude::*;
use tfa_core::shape::strides;
use tfa_core::{Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::slice::SlicePlan;

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

/// `dst` (rows of `row` elements) from `srcs`, which give `parts[k]`
/// elements of each row in turn. Split into flat chunks (`par_chunk`: from
/// outside the pools the caller copies too, so a 32x1024 concatenation in a
/// recurrent cell's gradient does not wait for a pool worker to wake).
fn concat_words<T: Copy + Send + Sync>(srcs: &[&[T]], parts: &[usize], row: usize, dst: &mut [T]) {
    // Elements `[start, start + d.len())` of the flat output: each run of
    // one row's one part is a copy.
    let fill = |start: usize, d: &mut [T]| {
        let mut e = start;
        let end = start + d.len();
        while e < end {
            let (o, c) = (e / row, e % row);
            let mut at = 0;
            for (s, &p) in srcs.iter().zip(parts) {
                if c < at + p {
                    let n = (at + p - c).min(end - e);
                    d[e - start..e - start + n].copy_from_slice(&s[o * p + c - at..][..n]);
                    e += n;
                    break;
                }
                at += p;
            }
        }
    };
    let chunk = super::par_chunk(dst.len(), 1);
    if chunk >= dst.len() {
        fill(0, dst);
    } else {
        super::par::for_each_chunk_mut(dst, chunk, |i, d| fill(i * chunk, d));
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
