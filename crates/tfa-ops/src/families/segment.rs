//! Unsorted segment reductions (`UnsortedSegmentSum/Max/Min/Prod`) and
//! `DenseBincount` (a histogram is a segment sum of ones).

use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{dispatch, DType, Error, Result};
use tfa_kernels::host::segment::{self, SegmentOp};

use super::{spec_op, INDEX, NUMERIC_NO_I32};

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

/// An unsorted segment reduction: the elements per row of `data` after the
/// ids' dims, and the output.
fn unsorted_segment_plan(ctx: &dyn OpContext) -> Result<(usize, OutputPlan)> {
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
    Ok((inner, OutputPlan::new(data.dtype, shape)))
}

fn unsorted_segment(
    ctx: &dyn OpContext,
    (inner, out): &(usize, OutputPlan),
    op: SegmentOp,
) -> Result<()> {
    let (data, ids) = (ctx.input(0)?, ctx.input(1)?);
    let (inner, rows) = (*inner, out.shape[0]);
    let mut out = allocate(ctx, 0, out)?;
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

/// DenseBincount: counts (or sums `weights`, or flags with `binary_output`)
/// of each value below `size`, per row of a 2-D input; TensorFlow's checks.
fn dense_bincount_plan(ctx: &dyn OpContext) -> Result<(bool, OutputPlan)> {
    let (ids, size, weights) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let binary = ctx.attrs().bool("binary_output")?;
    if ids.rank() > 2 {
        return Err(Error::InvalidArgument(format!(
            "Shape must be at most rank 2 but is rank {}",
            ids.rank()
        )));
    }
    if size.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "Shape must be rank 0 but is rank {}",
            size.rank()
        )));
    }
    let n = size.to_i64_vec()?[0];
    if n < 0 {
        return Err(Error::InvalidArgument(format!(
            "size ({n}) must be non-negative"
        )));
    }
    if weights.num_elements() != 0 && weights.shape != ids.shape {
        return Err(Error::InvalidArgument(format!(
            "`weights` must be the same shape as `arr` or a length-0 `Tensor`, in which case it acts as all weights equal to 1. Received shape: {}",
            fmt_shape(&weights.shape)
        )));
    }
    let n = n as usize;
    let rows = if ids.rank() == 2 { ids.shape[0] } else { 1 };
    let shape = if ids.rank() == 2 {
        vec![rows, n]
    } else {
        vec![n]
    };
    Ok((binary, OutputPlan::new(weights.dtype, shape)))
}

fn dense_bincount(ctx: &dyn OpContext, (binary, out): &(bool, OutputPlan)) -> Result<()> {
    let (ids, weights) = (ctx.input(0)?, ctx.input(2)?);
    let (binary, n) = (*binary, out.shape[out.shape.len() - 1]);
    let rows = if ids.rank() == 2 { ids.shape[0] } else { 1 };
    let mut out = allocate(ctx, 0, out)?;
    out.bytes_mut().fill(0);
    let id_vals = ids.to_i64_vec()?;
    let result = dispatch!(weights.dtype, T => {
        let w = if weights.num_elements() == 0 { None } else { Some(weights.data::<T>()?) };
        Ok(segment::bincount::<T>(&id_vals, w, rows, n, binary, out.data_mut::<T>()?))
    }; [F32, F64, I32, I64])?;
    result.map_err(|v| {
        Error::InvalidArgument(if ids.rank() == 2 {
            format!("Input 'in' must be non-negative! Negative input value found: {v}")
        } else {
            "Input arr must be non-negative!".into()
        })
    })
}

macro_rules! segment_op {
    ($name:literal, $op:ident, $summary:literal) => {
        spec_op!(
            plan: |c| unsorted_segment_plan(c) => (usize, OutputPlan),
            run: |c, p| unsorted_segment(c, p, SegmentOp::$op),
            def: {
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
            }
        )
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
    spec_op!(
        plan: |c| dense_bincount_plan(c) => (bool, OutputPlan),
        run: |c, p| dense_bincount(c, p),
        def: {
            name: "DenseBincount",
            family: crate::Family::Reduce,
            summary: "histogram of int32/int64 values below `size` (host memory), per row of a 2-D input: counts, `weights` sums, or `binary_output` flags; negative values raise as on CPU",
            constraints: &[
                TypeConstraint {
                    attr: "Tidx",
                    types: INDEX,
                },
                TypeConstraint {
                    attr: "T",
                    types: &[DType::F32, DType::F64, DType::I64],
                },
            ],
            attrs: &[AttrSpec::new("binary_output", AttrKind::Bool)],
            host_memory: &["size"],
            int32_host_memory: &[],
        }
    ),
];
