//! Ops that move or re-view data. Identity and Reshape never copy: the output
//! is the input's buffer.

use super::{op_t, ALL_NO_I32};
use crate::{Family, OpContext, OpDef, TypeConstraint};
use tfa_core::shape::num_elements;
use tfa_core::{DType, Error, Result, Shape};

fn identity(ctx: &dyn OpContext) -> Result<()> {
    let shape = ctx.input(0)?.shape;
    ctx.alias_output(0, 0, &shape)
}

/// Resolves a requested shape (possibly with one -1) for `n` elements, with
/// TensorFlow's error messages.
pub(crate) fn reshape_target(n: usize, requested: &[i64]) -> Result<Shape> {
    let mut unknown = None;
    let mut known: usize = 1;
    for (i, &d) in requested.iter().enumerate() {
        if d == -1 {
            if let Some(j) = unknown {
                return Err(Error::InvalidArgument(format!(
                    "Only one input size may be -1, not both {j} and {i}"
                )));
            }
            unknown = Some(i);
        } else if d < 0 {
            return Err(Error::InvalidArgument(format!(
                "Size {i} must be non-negative, not {d}"
            )));
        } else {
            known = known
                .checked_mul(d as usize)
                .ok_or_else(|| Error::InvalidArgument("requested shape is too large".into()))?;
        }
    }
    let mut shape: Shape = requested.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(i) = unknown {
        if known == 0 {
            return Err(Error::InvalidArgument(
                "Reshape cannot infer the missing input size for an empty tensor unless all specified input sizes are non-zero".into(),
            ));
        }
        if !n.is_multiple_of(known) {
            return Err(Error::InvalidArgument(format!(
                "Input to reshape is a tensor with {n} values, but the requested shape requires a multiple of {known}"
            )));
        }
        shape[i] = n / known;
    } else if known != n {
        return Err(Error::InvalidArgument(format!(
            "Input to reshape is a tensor with {n} values, but the requested shape has {known}"
        )));
    }
    Ok(shape)
}

fn reshape(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let requested = ctx.input(1)?;
    if requested.rank() > 1 {
        return Err(Error::InvalidArgument(format!(
            "shape must be a vector of {{int32,int64}}, got shape {:?}",
            requested.shape
        )));
    }
    let shape = reshape_target(num_elements(&x.shape)?, &requested.to_i64_vec()?)?;
    ctx.alias_output(0, 0, &shape)
}

pub(crate) const OPS: &[OpDef] = &[
    op_t!(
        "Identity",
        Movement,
        ALL_NO_I32,
        "the input itself (no copy)",
        |c| identity(c)
    ),
    OpDef {
        name: "Reshape",
        family: Family::Movement,
        summary: "same buffer, new shape (one -1 inferred); `shape` in host memory",
        constraints: &[
            TypeConstraint {
                attr: "T",
                types: ALL_NO_I32,
            },
            TypeConstraint {
                attr: "Tshape",
                types: &[DType::I32, DType::I64],
            },
        ],
        attrs: &[],
        host_memory: &["shape"],
        host: Some(reshape),
        cuda: None,
    },
];

#[cfg(test)]
mod tests {
    use super::reshape_target;

    #[test]
    fn reshape_rules() {
        assert_eq!(reshape_target(6, &[2, -1]).unwrap(), vec![2, 3]);
        assert_eq!(reshape_target(0, &[0, 5]).unwrap(), vec![0, 5]);
        assert_eq!(reshape_target(1, &[]).unwrap(), Vec::<usize>::new());
        assert!(reshape_target(6, &[4])
            .unwrap_err()
            .to_string()
            .contains("6 values, but the requested shape has 4"));
        assert!(reshape_target(6, &[-1, -1])
            .unwrap_err()
            .to_string()
            .contains("Only one input size may be -1"));
        assert!(reshape_target(0, &[0, -1]).is_err());
    }
}
