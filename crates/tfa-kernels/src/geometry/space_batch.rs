//! SpaceToBatchND's and BatchToSpaceND's shape rule: TensorFlow's checks
//! (messages included) and the plan of the move.

use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

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
    pub(crate) dir: Direction,
    pub(crate) n: usize,
    pub(crate) block: Vec<usize>,
    pub(crate) start: Vec<usize>,
    pub(crate) space: Vec<usize>,
    pub(crate) batched: Vec<usize>,
    pub(crate) depth: usize,
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
