//! Unsorted segment reductions (`UnsortedSegmentSum/Max/Min/Prod`).

use crate::{OpContext, OpDef, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{dispatch, DType, Error, Result};
use tfa_kernels::host::segment::{self, SegmentOp};

use super::NUMERIC_NO_I32;

/// `SliceDebugString`: the index of flat position `flat` in `shape`.
fn slice_debug(shape: &[usize], flat: usize) -> String {
    match shape.len() {
        0 => String::new(),
        1 => format!("[{flat}]"),
        _ => {
            let mut idx = vec![0; shape.len()];
            let mut f = flat;
            for d in (0..shape.len()).rev() {
                idx[d] = f % shape[d].max(1);
                f /= shape[d].max(1);
            }
            let parts: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
            format!("[{}]", parts.join(","))
        }
    }
}

fn unsorted_segment(ctx: &dyn OpContext, op: SegmentOp) -> Result<()> {
    let (data, ids, n) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    if n.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "num_segments should be a scalar, not shape {}",
            fmt_shape(&n.shape)
        )));
    }
    if !data.shape.starts_with(&ids.shape) {
        return Err(Error::InvalidArgument(format!(
            "data.shape = {} does not start with segment_ids.shape = {}",
            fmt_shape(&data.shape),
            fmt_shape(&ids.shape)
        )));
    }
    let rows = n.to_i64_vec()?[0];
    if rows < 0 {
        return Err(Error::InvalidArgument(format!(
            "Input num_segments == {rows} must not be negative."
        )));
    }
    let mut shape = vec![rows as usize];
    shape.extend_from_slice(&data.shape[ids.rank()..]);
    let inner: usize = data.shape[ids.rank()..].iter().product();
    let mut out = ctx.allocate_output(0, data.dtype, &shape)?;
    let id_vals = ids.to_i64_vec()?;
    let result = dispatch!(data.dtype, T => {
        Ok(segment::unsorted_segment::<T>(op, data.data::<T>()?, &id_vals, inner, out.data_mut::<T>()?))
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])?;
    result.map_err(|i| {
        Error::InvalidArgument(format!(
            "segment_ids{} = {} is out of range [0, {rows})",
            slice_debug(&ids.shape, i),
            id_vals[i]
        ))
    })
}

macro_rules! segment_op {
    ($name:literal, $op:ident, $summary:literal) => {
        OpDef {
            name: $name,
            family: crate::Family::Reduce,
            summary: $summary,
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: NUMERIC_NO_I32,
                },
                TypeConstraint {
                    attr: "Tindices",
                    types: &[DType::I32, DType::I64],
                },
                TypeConstraint {
                    attr: "Tnumsegments",
                    types: &[DType::I32, DType::I64],
                },
            ],
            attrs: &[],
            host_memory: &["num_segments"],
            int32_host_memory: &[],
            host: Some({
                fn kernel(ctx: &dyn OpContext) -> Result<()> {
                    unsorted_segment(ctx, SegmentOp::$op)
                }
                kernel
            }),
            cuda: None,
        }
    };
}

pub(crate) const OPS: &[OpDef] = &[
    segment_op!(
        "UnsortedSegmentSum",
        Sum,
        "sums rows of `data` into `num_segments` (host memory) rows by `segment_ids`; negative ids dropped, ids >= num_segments raise as on CPU"
    ),
    segment_op!(
        "UnsortedSegmentProd",
        Prod,
        "products by segment (empty segments give 1)"
    ),
    segment_op!(
        "UnsortedSegmentMax",
        Max,
        "maxima by segment (empty segments give the lowest finite value)"
    ),
    segment_op!(
        "UnsortedSegmentMin",
        Min,
        "minima by segment (empty segments give the highest finite value)"
    ),
];
