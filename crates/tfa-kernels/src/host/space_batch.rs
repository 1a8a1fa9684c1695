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
use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result, TensorMut, TensorView};

/// TensorFlow handles at most this many block dims that are not trivial.
const MAX_BLOCK_DIMS: usize = 4;

/// Which way the data moves.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// SpaceToBatchND: `pairs` are paddings.
    ToBatch,
    /// BatchToSpaceND: `pairs` are crops.
    ToSpace,
}

/// A validated move: the output shape, and the map in the terms above.
#[derive(Clone, Debug)]
pub struct SpaceBatchPlan {
    pub out_shape: Vec<usize>,
    /// The output is the input (every block dim is 1 with no padding/crop).
    pub identity: bool,
    dir: Direction,
    n: usize,
    block: Vec<usize>,
    start: Vec<usize>,
    space: Vec<usize>,
    batched: Vec<usize>,
    depth: usize,
}

/// Checks the arguments in TensorFlow's order and with its messages:
/// `block` is the `block_shape` tensor's values (`block_rank` its rank),
/// `pairs` the paddings/crops values of shape `pairs_shape`.
pub fn space_batch_plan(
    dir: Direction,
    shape: &[usize],
    block_rank: usize,
    block: &[i64],
    pairs_shape: &[usize],
    pairs: &[i64],
) -> Result<SpaceBatchPlan> {
    let invalid = |m: String| Err(Error::InvalidArgument(m));
    if block_rank != 1 {
        return invalid(format!(
            "block_shape rank should be 1 instead of {block_rank}"
        ));
    }
    let m = block.len();
    if shape.len() < 1 + m {
        return invalid(format!(
            "input rank should be >= {} instead of {}",
            1 + m,
            shape.len()
        ));
    }
    let what = if dir == Direction::ToBatch {
        "paddings"
    } else {
        "crops"
    };
    if pairs_shape != [m, 2] {
        return invalid(format!(
            "{what} should have shape [{m}, 2] instead of {}",
            fmt_shape(pairs_shape)
        ));
    }
    let trivial = |d: usize| block[d] == 1 && pairs[2 * d] == 0 && pairs[2 * d + 1] == 0;
    let prefix = (0..m).take_while(|&d| trivial(d)).count();
    let suffix = (prefix..m).rev().take_while(|&d| trivial(d)).count();
    let mut product: i64 = 1;
    for (d, &b) in block.iter().enumerate() {
        if b < 1 {
            return invalid(format!(
                "All values in block_shape must be positive, got value, {b} at index {d}."
            ));
        }
        product = product.saturating_mul(b);
    }
    let product = product as usize;
    let (n, batch_side) = match dir {
        Direction::ToBatch => (shape[0], shape[0].saturating_mul(product)),
        Direction::ToSpace => {
            if !shape[0].is_multiple_of(product) {
                return invalid(format!(
                    "Input batch dimension ({}) is not divisible by product of block sizes ({product})",
                    shape[0]
                ));
            }
            (shape[0] / product, shape[0])
        }
    };
    let inner = m - prefix - suffix;
    if inner > MAX_BLOCK_DIMS {
        return invalid(format!(
            "Maximum number of non-combined block dimensions is {inner} but must not exceed {MAX_BLOCK_DIMS}"
        ));
    }
    let mut plan = SpaceBatchPlan {
        out_shape: shape.to_vec(),
        identity: inner == 0,
        dir,
        n,
        block: block.iter().map(|&b| b as usize).collect(),
        start: vec![0; m],
        space: vec![0; m],
        batched: vec![0; m],
        depth: shape[1 + m..].iter().product(),
    };
    if plan.identity {
        return Ok(plan);
    }
    plan.out_shape[0] = if dir == Direction::ToBatch {
        batch_side
    } else {
        n
    };
    for d in 0..m {
        let (start, end, size, b) = (
            pairs[2 * d],
            pairs[2 * d + 1],
            shape[1 + d] as i64,
            block[d],
        );
        let checked = d >= prefix && d < m - suffix;
        let (space, batched) = extents(dir, d, checked, (start, end), size, b)?;
        plan.start[d] = start as usize;
        plan.space[d] = space as usize;
        plan.batched[d] = batched as usize;
        plan.out_shape[1 + d] = if dir == Direction::ToBatch {
            batched
        } else {
            space
        } as usize;
    }
    Ok(plan)
}

/// Spatial dimension `d`'s (space side, batch side) extents from its size
/// in the input, its (start, end) paddings or crops and its block size;
/// `checked`: whether TensorFlow validates this dimension (it skips the
/// trivial leading and trailing ones).
fn extents(
    dir: Direction,
    d: usize,
    checked: bool,
    (start, end): (i64, i64),
    size: i64,
    b: i64,
) -> Result<(i64, i64)> {
    let invalid = |m: String| Err(Error::InvalidArgument(m));
    match dir {
        Direction::ToBatch => {
            if checked && (start < 0 || end < 0) {
                return invalid("Paddings must be non-negative".into());
            }
            let padded = size + start + end;
            if checked && padded % b != 0 {
                return invalid(format!(
                    "padded_shape[{d}]={padded} is not divisible by block_shape[{d}]={b}"
                ));
            }
            Ok((size, padded / b))
        }
        Direction::ToSpace => {
            if checked && (start < 0 || end < 0) {
                return invalid("Crops must be non-negative".into());
            }
            let cropped = size * b - start - end;
            if checked && cropped < 0 {
                return invalid(format!("cropped_shape[{d}]={cropped} must be non-negative"));
            }
            Ok((cropped, size))
        }
    }
}

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
