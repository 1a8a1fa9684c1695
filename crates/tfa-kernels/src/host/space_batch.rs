//! SpaceToBatchND and BatchToSpaceND: blocks of the spatial dims moved into
//! the batch dim and back. TensorFlow lowers a dilated convolution (Keras
//! Conv1D/Conv2D, separable and depthwise, with `dilation_rate > 1`) to
//! SpaceToBatchND, a plain convolution and BatchToSpaceND.
//!
//! Both are the same map between a "space" tensor `[n, s_1..s_M, depth]` and
//! a "batch" tensor `[n * prod(b), t_1..t_M, depth]`: batch element
//! `(o, i)` (block offset `o` in row-major order over the block, position `i`)
//! is space element `j_k = i_k * b_k + o_k - start_k`, zero where that falls in
//! the padding. Whole rows of `depth` elements move as bytes.

use super::for_row_chunks;
use tfa_core::{Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::space_batch::{Direction, SpaceBatchPlan};

/// Runs `plan` (not an identity) on `x` into `out` (`plan.out_shape`).
pub fn space_batch(x: &TensorView, plan: &SpaceBatchPlan, out: &mut TensorMut) -> Result<()> {
    if x.dtype != out.dtype || out.shape != plan.out_shape {
        return Err(Error::Internal("space_batch output mismatch".into()));
    }
    let size = x.dtype.size();
    let row = plan.depth * size;
    let total = out.num_elements() * size;
    if total == 0 {
        return Ok(());
    }
    let src = &x.bytes()[..x.num_elements() * size];
    let dst = &mut out.bytes_mut()[..total];
    let m = plan.block.len();
    // Output rows per batch element: the product of the output's block dims.
    let (out_dims, in_dims) = match plan.dir {
        Direction::ToBatch => (&plan.batched, &plan.space),
        Direction::ToSpace => (&plan.space, &plan.batched),
    };
    let out_per_batch: usize = out_dims.iter().product();
    let in_per_batch: usize = in_dims.iter().product();
    for_row_chunks(dst, row, |first, chunk| {
        let mut pos = vec![0usize; m];
        for (r, out_row) in chunk.chunks_mut(row).enumerate() {
            let flat = first + r;
            let (ob, mut rest) = (flat / out_per_batch, flat % out_per_batch);
            for d in (0..m).rev() {
                pos[d] = rest % out_dims[d];
                rest /= out_dims[d];
            }
            let from = match plan.dir {
                Direction::ToBatch => space_row(plan, ob, &pos),
                Direction::ToSpace => Some(batch_row(plan, ob, &pos)),
            };
            match from {
                Some((ib, offset)) => {
                    let at = (ib * in_per_batch + offset) * row;
                    out_row.copy_from_slice(&src[at..at + row]);
                }
                None => out_row.fill(0),
            }
        }
    });
    Ok(())
}

/// SpaceToBatch: the space-side (batch, row offset) of batch-side element
/// `(ob, i)`, or None in the padding.
fn space_row(p: &SpaceBatchPlan, ob: usize, i: &[usize]) -> Option<(usize, usize)> {
    let (mut o_index, b) = (ob / p.n, ob % p.n);
    let (mut offset, mut stride) = (0, 1);
    // Block offsets are row-major over the block: the last dim varies fastest.
    for d in (0..i.len()).rev() {
        let o = o_index % p.block[d];
        o_index /= p.block[d];
        let j = (i[d] * p.block[d] + o).checked_sub(p.start[d])?;
        if j >= p.space[d] {
            return None;
        }
        offset += j * stride;
        stride *= p.space[d];
    }
    Some((b, offset))
}

/// BatchToSpace: the batch-side (batch, row offset) of space-side element
/// `(b, j)` (always inside: crops only remove).
fn batch_row(p: &SpaceBatchPlan, b: usize, j: &[usize]) -> (usize, usize) {
    let (mut o_index, mut offset) = (0, 0);
    for (d, &jd) in j.iter().enumerate() {
        let padded = jd + p.start[d];
        o_index = o_index * p.block[d] + padded % p.block[d];
        offset = offset * p.batched[d] + padded / p.block[d];
    }
    (o_index * p.n + b, offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::space_batch::*;

    fn run(
        dir: Direction,
        shape: &[usize],
        x: &[i32],
        block: &[i64],
        pairs: &[i64],
    ) -> (Vec<usize>, Vec<i32>) {
        let p = space_batch_plan(dir, shape, 1, block, &[block.len(), 2], pairs).unwrap();
        let mut y = vec![0i32; p.out_shape.iter().product()];
        let v = TensorView::from_slice(shape.to_vec(), x);
        space_batch(
            &v,
            &p,
            &mut TensorMut::from_slice(p.out_shape.clone(), &mut y),
        )
        .unwrap();
        (p.out_shape, y)
    }

    #[test]
    fn tensorflow_documented_examples() {
        // tf.space_to_batch_nd docs: [1, 2, 2, 1] with block [2, 2].
        let (s, y) = run(
            Direction::ToBatch,
            &[1, 2, 2, 1],
            &[1, 2, 3, 4],
            &[2, 2],
            &[0, 0, 0, 0],
        );
        assert_eq!((s, y), (vec![4, 1, 1, 1], vec![1, 2, 3, 4]));
        // [1, 4, 4, 1], block [2, 2]: batch o holds x[o / 2 :: 2, o % 2 :: 2].
        let x: Vec<i32> = (1..=16).collect();
        let (s, y) = run(
            Direction::ToBatch,
            &[1, 4, 4, 1],
            &x,
            &[2, 2],
            &[0, 0, 0, 0],
        );
        assert_eq!(s, vec![4, 2, 2, 1]);
        assert_eq!(y, [1, 3, 9, 11, 2, 4, 10, 12, 5, 7, 13, 15, 6, 8, 14, 16]);
        // And back.
        let (s, z) = run(
            Direction::ToSpace,
            &[4, 2, 2, 1],
            &y,
            &[2, 2],
            &[0, 0, 0, 0],
        );
        assert_eq!((s, z), (vec![1, 4, 4, 1], x));
        // Padding: [1, 2, 1] with block 2 and paddings (1, 1) -> [2, 2, 1].
        let (s, y) = run(Direction::ToBatch, &[1, 2, 1], &[7, 8], &[2], &[1, 1]);
        assert_eq!((s, y), (vec![2, 2, 1], vec![0, 8, 7, 0]));
        let (s, z) = run(Direction::ToSpace, &[2, 2, 1], &[0, 8, 7, 0], &[2], &[1, 1]);
        assert_eq!((s, z), (vec![1, 2, 1], vec![7, 8]));
    }

    #[test]
    fn checks_match_tensorflow() {
        let e = |r: Result<SpaceBatchPlan>| r.unwrap_err().to_string();
        let s2b = Direction::ToBatch;
        assert!(
            e(space_batch_plan(s2b, &[1, 4, 1], 2, &[2], &[1, 2], &[0, 0]))
                .contains("block_shape rank should be 1 instead of 2")
        );
        assert!(e(space_batch_plan(s2b, &[4], 1, &[2], &[1, 2], &[0, 0]))
            .contains("input rank should be >= 2 instead of 1"));
        assert!(e(space_batch_plan(s2b, &[1, 4, 1], 1, &[2], &[2], &[0, 0]))
            .contains("paddings should have shape [1, 2] instead of [2]"));
        assert!(
            e(space_batch_plan(s2b, &[1, 4, 1], 1, &[0], &[1, 2], &[0, 0]))
                .contains("must be positive, got value, 0 at index 0.")
        );
        assert!(
            e(space_batch_plan(s2b, &[1, 5, 1], 1, &[2], &[1, 2], &[0, 0]))
                .contains("padded_shape[0]=5 is not divisible by block_shape[0]=2")
        );
        assert!(e(space_batch_plan(
            s2b,
            &[1, 4, 1],
            1,
            &[2],
            &[1, 2],
            &[-1, 1]
        ))
        .contains("Paddings must be non-negative"));
        let b2s = Direction::ToSpace;
        assert!(
            e(space_batch_plan(b2s, &[3, 4, 1], 1, &[2], &[1, 2], &[0, 0])).contains(
                "Input batch dimension (3) is not divisible by product of block sizes (2)"
            )
        );
        assert!(
            e(space_batch_plan(b2s, &[2, 1, 1], 1, &[2], &[1, 2], &[2, 1]))
                .contains("cropped_shape[0]=-1 must be non-negative")
        );
        assert!(
            space_batch_plan(b2s, &[2, 3, 1], 1, &[1], &[1, 2], &[0, 0])
                .unwrap()
                .identity
        );
    }
}
