//! Broadcast iteration for elementwise kernels over `N` operands.
//!
//! Dims of size 1 in the output are dropped and neighbouring dims in which
//! every operand is either fully present or broadcast are merged, so
//! `[N,C] + [C]` becomes one outer loop over rows and one contiguous inner
//! run. Kernels then visit the output in contiguous runs whose operand strides
//! are 0 or 1, which the compiler vectorises.

use super::transpose::{by_width, words, words_mut};
use tfa_core::shape::strides;
use tfa_core::{Result, TensorMut, TensorView};

/// A coalesced broadcast of `N` operands to an output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPlan<const N: usize> {
    /// Merged dims, outermost first; never empty (a scalar is `[1]`).
    dims: Vec<usize>,
    /// Element strides of each operand in each merged dim (0 = broadcast).
    strides: Vec<[usize; N]>,
}

impl<const N: usize> BroadcastPlan<N> {
    /// Every operand shape must broadcast to `out` (checked by the caller with
    /// `tfa_core::shape::broadcast_shapes`).
    pub fn new(out: &[usize], operands: [&[usize]; N]) -> Self {
        let rank = out.len();
        let padded: Vec<Vec<usize>> = operands
            .iter()
            .map(|s| {
                let mut v = vec![1; rank.saturating_sub(s.len())];
                v.extend_from_slice(s);
                v
            })
            .collect();
        // (size, operand present?) per non-trivial output dim, merged.
        let mut merged: Vec<(usize, [bool; N])> = Vec::new();
        for i in 0..rank {
            if out[i] == 1 {
                continue;
            }
            let present: [bool; N] = std::array::from_fn(|k| padded[k][i] != 1);
            match merged.last_mut() {
                Some(last) if last.1 == present => last.0 *= out[i],
                _ => merged.push((out[i], present)),
            }
        }
        if merged.is_empty() {
            merged.push((1, [true; N]));
        }
        let dims: Vec<usize> = merged.iter().map(|m| m.0).collect();
        let per_operand: Vec<Vec<usize>> = (0..N)
            .map(|k| {
                let sizes: Vec<usize> = merged
                    .iter()
                    .map(|m| if m.1[k] { m.0 } else { 1 })
                    .collect();
                strides(&sizes)
                    .into_iter()
                    .zip(merged.iter())
                    .map(|(s, m)| if m.1[k] { s } else { 0 })
                    .collect()
            })
            .collect();
        let strides = (0..dims.len())
            .map(|d| std::array::from_fn(|k| per_operand[k][d]))
            .collect();
        BroadcastPlan { dims, strides }
    }

    /// Length of the innermost merged dim.
    pub fn inner(&self) -> usize {
        *self.dims.last().unwrap_or(&1)
    }

    /// Inner stride of each operand: 0 or 1.
    pub fn inner_strides(&self) -> [usize; N] {
        *self.strides.last().unwrap_or(&[0; N])
    }

    /// Calls `f(out_offset, operand_offsets, len)` for each contiguous run of
    /// output elements in `[start, end)`. Always inlined, so the loops of
    /// `f` take the vector width of the caller's target features.
    #[inline(always)]
    pub fn for_each_run(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, [usize; N], usize),
    ) {
        let inner = self.inner();
        if inner == 0 {
            return;
        }
        let is = self.inner_strides();
        let outer_dims = &self.dims[..self.dims.len() - 1];
        let mut pos = start;
        while pos < end {
            let (mut outer, within) = (pos / inner, pos % inner);
            let len = (inner - within).min(end - pos);
            let mut offs: [usize; N] = std::array::from_fn(|k| within * is[k]);
            for d in (0..outer_dims.len()).rev() {
                let i = outer % outer_dims[d];
                outer /= outer_dims[d];
                for (o, s) in offs.iter_mut().zip(&self.strides[d]) {
                    *o += i * s;
                }
            }
            f(pos, offs, len);
            pos += len;
        }
    }
}

/// `out = x` broadcast to `out`'s shape (BroadcastTo); the copy works on
/// element-sized words, whatever the dtype.
pub fn broadcast_to(x: &TensorView, out: &mut TensorMut) -> Result<()> {
    fn copy<T: Copy + Send + Sync>(plan: &BroadcastPlan<1>, x: &[T], out: &mut [T]) {
        let run = |start: usize, chunk: &mut [T]| {
            plan.for_each_run(start, start + chunk.len(), |o, [xo], len| {
                let dst = &mut chunk[o - start..o - start + len];
                if plan.inner_strides()[0] == 0 {
                    dst.fill(x[xo]);
                } else {
                    dst.copy_from_slice(&x[xo..xo + len]);
                }
            });
        };
        if out.len() < super::PAR_MIN_ELEMENTS {
            run(0, out);
        } else {
            use rayon::prelude::*;
            out.par_chunks_mut(super::PAR_CHUNK)
                .enumerate()
                .for_each(|(i, c)| run(i * super::PAR_CHUNK, c));
        }
    }
    let plan = BroadcastPlan::new(&out.shape, [&x.shape]);
    if out.num_elements() == 0 {
        return Ok(());
    }
    let size = x.dtype.size();
    let (src, dst) = (x.bytes(), out.bytes_mut());
    by_width!(size, W => {
        copy::<W>(&plan, words(src)?, words_mut(dst)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand<const N: usize>(out: &[usize], operands: [&[usize]; N]) -> Vec<[usize; N]> {
        let total: usize = out.iter().product();
        let plan = BroadcastPlan::new(out, operands);
        let is = plan.inner_strides();
        let mut v = Vec::new();
        plan.for_each_run(0, total, |_, offs, len| {
            for i in 0..len {
                v.push(std::array::from_fn(|k| offs[k] + i * is[k]));
            }
        });
        v
    }

    #[test]
    fn row_broadcast_is_one_inner_run_per_row() {
        let plan = BroadcastPlan::new(&[4, 3], [&[4, 3], &[3]]);
        assert_eq!(plan.inner(), 3);
        assert_eq!(
            expand(&[2, 3], [&[2, 3], &[3]]),
            vec![[0, 0], [1, 1], [2, 2], [3, 0], [4, 1], [5, 2]]
        );
    }

    #[test]
    fn same_shape_merges_to_one_dim() {
        let plan = BroadcastPlan::new(&[2, 3, 4], [&[2, 3, 4], &[2, 3, 4]]);
        assert_eq!(plan.inner(), 24);
    }

    #[test]
    fn outer_product_and_three_operands() {
        assert_eq!(
            expand(&[2, 2], [&[2, 1], &[1, 2]]),
            vec![[0, 0], [0, 1], [1, 0], [1, 1]]
        );
        assert_eq!(
            expand(&[2, 2], [&[2, 1], &[2], &[]]),
            vec![[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]]
        );
    }

    #[test]
    fn scalar_and_size_zero() {
        assert_eq!(expand(&[], [&[], &[]]), vec![[0, 0]]);
        assert_eq!(expand(&[0, 3], [&[0, 3], &[3]]), Vec::<[usize; 2]>::new());
    }

    #[test]
    fn runs_split_at_chunk_boundaries() {
        let plan = BroadcastPlan::new(&[3, 4], [&[3, 4], &[4]]);
        let mut runs = Vec::new();
        plan.for_each_run(2, 7, |o, [a, b], l| runs.push((o, a, b, l)));
        assert_eq!(runs, vec![(2, 2, 2, 2), (4, 4, 0, 3)]);
    }
}
