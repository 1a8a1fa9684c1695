//! Gather along an axis (GatherV2), with batch dims; GatherNd; OneHot.

use super::for_row_chunks;
use super::transpose::{by_width, words, words_mut};
use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::index::GatherPlan;

/// Runs a gather; an out-of-range index is TensorFlow's InvalidArgument
/// `indices[i,j] = v is not in [0, d)`.
pub fn gather(
    params: &TensorView,
    indices: &TensorView,
    plan: &GatherPlan,
    out: &mut TensorMut,
) -> Result<()> {
    let idx = indices.to_i64_vec()?;
    if let Some(bad) = idx
        .iter()
        .position(|&v| v < 0 || v as u64 >= plan.gather_dim as u64)
    {
        // TensorFlow checks only when there is something to copy.
        if out.num_elements() > 0 {
            return Err(Error::InvalidArgument(format!(
                "indices{} = {} is not in [0, {})",
                index_position(&indices.shape, bad),
                idx[bad],
                plan.gather_dim
            )));
        }
    }
    let total = out.num_elements();
    if total == 0 {
        return Ok(());
    }
    let size = out.dtype.size();
    let src = &params.bytes()[..params.num_elements() * size];
    let dst = &mut out.bytes_mut()[..total * size];
    by_width!(size, W => {
        gather_words::<W>(words(src)?, &idx, plan, words_mut(dst)?);
        Ok(())
    })
}

fn gather_words<T: Copy + Send + Sync>(src: &[T], idx: &[i64], p: &GatherPlan, dst: &mut [T]) {
    let inner = p.inner;
    // One output row (inner elements) per (batch, outer, n).
    let rows = |first: usize, chunk: &mut [T]| {
        for (k, row) in chunk.chunks_mut(inner).enumerate() {
            let r = first + k;
            let j = r % p.n;
            let bo = r / p.n;
            let b = bo / p.outer.max(1);
            let g = idx[b * p.n + j] as usize;
            let off = (bo * p.gather_dim + g) * inner;
            row.copy_from_slice(&src[off..off + inner]);
        }
    };
    for_row_chunks(dst, inner, rows);
}

/// GatherNd: output slice `n` (of `slice` elements) is the slice of `params`
/// at the coordinates `indices[n, ..]` (the first `coords.len()` dims of
/// `params`, whose sizes `coords` are). An out-of-range tuple is TensorFlow's
/// InvalidArgument `indices[i,j] = [..] does not index into param shape
/// [..]` (the first such tuple), or, with `ignore_bad`, a zero slice.
pub fn gather_nd(
    params: &TensorView,
    indices: &TensorView,
    slice: usize,
    ignore_bad: bool,
    out: &mut TensorMut,
) -> Result<()> {
    let idx = indices.to_i64_vec()?;
    let ix = *indices.shape.last().unwrap_or(&0);
    let coords = &params.shape[..ix];
    let outer = &indices.shape[..indices.shape.len().saturating_sub(1)];
    let n: usize = outer.iter().product();
    // Row-major strides of the indexed dims, in slices.
    let mut strides = vec![1usize; ix];
    for d in (0..ix.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * coords[d + 1];
    }
    let mut offsets = Vec::with_capacity(n);
    for t in 0..n {
        let tuple = &idx[t * ix..(t + 1) * ix];
        let inside = tuple
            .iter()
            .zip(coords)
            .all(|(&c, &d)| c >= 0 && (c as u64) < d as u64);
        if inside {
            let at: usize = tuple
                .iter()
                .zip(&strides)
                .map(|(&c, s)| c as usize * s)
                .sum();
            offsets.push(Some(at * slice));
        } else if ignore_bad {
            offsets.push(None);
        } else {
            let tuple: Vec<String> = tuple.iter().map(|c| c.to_string()).collect();
            return Err(Error::InvalidArgument(format!(
                "indices{} = [{}] does not index into param shape {}",
                index_position(outer, t),
                tuple.join(", "),
                fmt_shape(&params.shape)
            )));
        }
    }
    let total = out.num_elements();
    if total == 0 {
        return Ok(());
    }
    let size = out.dtype.size();
    let src = &params.bytes()[..params.num_elements() * size];
    let dst = &mut out.bytes_mut()[..total * size];
    by_width!(size, W => {
        let src: &[W] = words(src)?;
        for_row_chunks(words_mut::<W>(dst)?, slice, |first, chunk| {
            for (k, row) in chunk.chunks_mut(slice).enumerate() {
                match offsets[first + k] {
                    Some(at) => row.copy_from_slice(&src[at..at + slice]),
                    None => row.fill(W::default()),
                }
            }
        });
        Ok(())
    })
}

/// TensorFlow's SliceDebugString: `[i,j]` of flat position `flat` in
/// `shape` (nothing for a scalar), as its index errors print it.
pub(crate) fn index_position(shape: &[usize], flat: usize) -> String {
    if shape.is_empty() {
        return String::new();
    }
    let mut pos = Vec::with_capacity(shape.len());
    let mut rem = flat;
    for &d in shape.iter().rev() {
        pos.push(rem % d.max(1));
        rem /= d.max(1);
    }
    pos.reverse();
    let pos: Vec<String> = pos.iter().map(|p| p.to_string()).collect();
    format!("[{}]", pos.join(","))
}

/// OneHot: `out[o, d, i] = on if indices[o, i] == d else off`, the depth axis
/// at position `axis` (`inner` index elements after it).
/// Indices outside `[0, depth)` give an all-`off` row, as in TensorFlow.
pub fn one_hot(
    indices: &[i64],
    inner: usize,
    depth: usize,
    on: &[u8],
    off: &[u8],
    out: &mut TensorMut,
) -> Result<()> {
    let size = out.dtype.size();
    let dst = out.bytes_mut();
    by_width!(size, W => {
        let (on, off) = (words::<W>(on)?[0], words::<W>(off)?[0]);
        let dst = words_mut::<W>(dst)?;
        // One block of depth x inner elements per outer index.
        for_row_chunks(dst, depth * inner, |first, chunk| {
            chunk.fill(off);
            for (k, block) in chunk.chunks_mut((depth * inner).max(1)).enumerate() {
                let o = first + k;
                for i in 0..inner {
                    let d = indices[o * inner + i];
                    if (0..depth as i64).contains(&d) {
                        block[d as usize * inner + i] = on;
                    }
                }
            }
        });
        Ok(())
    })
}

/// DynamicStitch: row `indices[i][k]` of `out` is row `k` of `data[i]`
/// (`row` bytes each); later pieces win on repeated indices, as in TensorFlow.
pub fn stitch(indices: &[Vec<i64>], data: &[&[u8]], row: usize, out: &mut [u8]) {
    // Rows no index names (gaps) are zeros, not stale memory.
    out.fill(0);
    for (idx, d) in indices.iter().zip(data) {
        for (k, &r) in idx.iter().enumerate() {
            let r = r as usize;
            out[r * row..(r + 1) * row].copy_from_slice(&d[k * row..(k + 1) * row]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::index::*;

    #[test]
    fn gather_axis_and_batch_dims() {
        // params [2,3,2], indices [2,2], axis 1, batch_dims 1
        let params: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let indices = [2i32, 0, 1, 1];
        let plan = gather_plan(&[2, 3, 2], &[2, 2], 1, 1).unwrap();
        assert_eq!(plan.out_shape, vec![2, 2, 2]);
        let mut out = vec![0f32; 8];
        gather(
            &TensorView::from_slice(vec![2, 3, 2], &params),
            &TensorView::from_slice(vec![2, 2], &indices),
            &plan,
            &mut TensorMut::from_slice(plan.out_shape.clone(), &mut out),
        )
        .unwrap();
        assert_eq!(out, [4., 5., 0., 1., 8., 9., 8., 9.]);
        // axis 0, no batch: rows
        let plan = gather_plan(&[3, 4], &[2], 1, 0).unwrap();
        assert_eq!(plan.out_shape, vec![3, 2]);
        let p2: Vec<i64> = (0..12).collect();
        let mut out = vec![0i64; 6];
        gather(
            &TensorView::from_slice(vec![3, 4], &p2),
            &TensorView::from_slice(vec![2], &[3i64, 0]),
            &plan,
            &mut TensorMut::from_slice(vec![3, 2], &mut out),
        )
        .unwrap();
        assert_eq!(out, [3, 0, 7, 4, 11, 8]);
    }

    #[test]
    fn bad_index_message() {
        let params = [0f32; 12];
        let plan = gather_plan(&[3, 4], &[2, 2], 1, 0).unwrap();
        let mut out = vec![0f32; 12];
        let e = gather(
            &TensorView::from_slice(vec![3, 4], &params),
            &TensorView::from_slice(vec![2, 2], &[0i32, 1, 0, 7]),
            &plan,
            &mut TensorMut::from_slice(plan.out_shape.clone(), &mut out),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "indices[1,1] = 7 is not in [0, 4)");
        assert!(gather_plan(&[3, 4], &[1], 2, 0)
            .unwrap_err()
            .to_string()
            .contains("Shape must be at least rank 3 but is rank 2"));
    }
}
