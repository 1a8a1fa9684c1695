//! Broadcast iteration for binary elementwise kernels.
//!
//! Dims of size 1 in the output are dropped and neighbouring dims in which both
//! operands are either fully present or broadcast are merged, so `[N,C] + [C]`
//! becomes one outer loop over rows and one contiguous inner run. Kernels then
//! visit the output in contiguous runs whose operand strides are 0 or 1, which
//! the compiler vectorises.

use tfa_core::shape::strides;

/// A coalesced broadcast of `a` and `b` to an output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastPlan {
    /// Merged dims, outermost first; never empty (a scalar is `[1]`).
    dims: Vec<usize>,
    /// Element strides of a and b in each merged dim (0 = broadcast).
    sa: Vec<usize>,
    sb: Vec<usize>,
}

impl BroadcastPlan {
    /// `a` and `b` must broadcast to `out` (checked by the caller with
    /// `tfa_core::shape::broadcast_shapes`).
    pub fn new(out: &[usize], a: &[usize], b: &[usize]) -> BroadcastPlan {
        let rank = out.len();
        let pad = |s: &[usize]| -> Vec<usize> {
            let mut v = vec![1; rank - s.len()];
            v.extend_from_slice(s);
            v
        };
        let (a, b) = (pad(a), pad(b));
        // (size, a present, b present) per non-trivial output dim.
        let mut merged: Vec<(usize, bool, bool)> = Vec::new();
        for i in 0..rank {
            if out[i] == 1 {
                continue;
            }
            let (pa, pb) = (a[i] != 1, b[i] != 1);
            match merged.last_mut() {
                Some(last) if last.1 == pa && last.2 == pb => last.0 *= out[i],
                _ => merged.push((out[i], pa, pb)),
            }
        }
        if merged.is_empty() {
            merged.push((1, true, true));
        }
        let dims: Vec<usize> = merged.iter().map(|m| m.0).collect();
        let stride_of = |present: &dyn Fn(&(usize, bool, bool)) -> bool| -> Vec<usize> {
            let sizes: Vec<usize> = merged
                .iter()
                .map(|m| if present(m) { m.0 } else { 1 })
                .collect();
            strides(&sizes)
                .into_iter()
                .zip(merged.iter())
                .map(|(s, m)| if present(m) { s } else { 0 })
                .collect()
        };
        let sa = stride_of(&|m| m.1);
        let sb = stride_of(&|m| m.2);
        BroadcastPlan { dims, sa, sb }
    }

    /// Length of the innermost merged dim.
    pub fn inner(&self) -> usize {
        *self.dims.last().unwrap_or(&1)
    }

    /// Inner strides of (a, b): each 0 or 1.
    pub fn inner_strides(&self) -> (usize, usize) {
        (*self.sa.last().unwrap_or(&0), *self.sb.last().unwrap_or(&0))
    }

    /// Calls `f(out_offset, a_offset, b_offset, len)` for each contiguous run of
    /// output elements in `[start, end)`.
    pub fn for_each_run(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, usize, usize, usize),
    ) {
        let inner = self.inner();
        if inner == 0 {
            return;
        }
        let (ia, ib) = self.inner_strides();
        let outer_dims = &self.dims[..self.dims.len() - 1];
        let mut pos = start;
        while pos < end {
            let (mut outer, within) = (pos / inner, pos % inner);
            let len = (inner - within).min(end - pos);
            let (mut ao, mut bo) = (within * ia, within * ib);
            for d in (0..outer_dims.len()).rev() {
                let i = outer % outer_dims[d];
                outer /= outer_dims[d];
                ao += i * self.sa[d];
                bo += i * self.sb[d];
            }
            f(pos, ao, bo, len);
            pos += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(out: &[usize], a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
        let total: usize = out.iter().product();
        let plan = BroadcastPlan::new(out, a, b);
        let (ia, ib) = plan.inner_strides();
        let mut v = Vec::new();
        plan.for_each_run(0, total, |_, ao, bo, len| {
            for i in 0..len {
                v.push((ao + i * ia, bo + i * ib));
            }
        });
        v
    }

    #[test]
    fn row_broadcast_is_one_inner_run_per_row() {
        let plan = BroadcastPlan::new(&[4, 3], &[4, 3], &[3]);
        assert_eq!(plan.inner(), 3);
        assert_eq!(
            expand(&[2, 3], &[2, 3], &[3]),
            vec![(0, 0), (1, 1), (2, 2), (3, 0), (4, 1), (5, 2)]
        );
    }

    #[test]
    fn same_shape_merges_to_one_dim() {
        let plan = BroadcastPlan::new(&[2, 3, 4], &[2, 3, 4], &[2, 3, 4]);
        assert_eq!(plan.inner(), 24);
    }

    #[test]
    fn outer_product() {
        assert_eq!(
            expand(&[2, 2], &[2, 1], &[1, 2]),
            vec![(0, 0), (0, 1), (1, 0), (1, 1)]
        );
    }

    #[test]
    fn scalar_and_size_zero() {
        assert_eq!(expand(&[], &[], &[]), vec![(0, 0)]);
        assert_eq!(expand(&[0, 3], &[0, 3], &[3]), vec![]);
    }

    #[test]
    fn runs_split_at_chunk_boundaries() {
        let plan = BroadcastPlan::new(&[3, 4], &[3, 4], &[4]);
        let mut runs = Vec::new();
        plan.for_each_run(2, 7, |o, a, b, l| runs.push((o, a, b, l)));
        assert_eq!(runs, vec![(2, 2, 2, 2), (4, 4, 0, 3)]);
    }
}
