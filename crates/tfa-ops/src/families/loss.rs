//! Softmax cross-entropy losses with their gradients (`loss`, `backprop`).

use super::{spec_op, FLOAT};
use crate::precision::Class;
use crate::spec::allocate;
use crate::{OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{dispatch, DType, Error, Result, TensorView};
use tfa_kernels::host::loss::{self, Strided2};

/// Broadcasting strides of `shape` seen as the `[rows, cols]` result.
fn strides2(shape: &[usize], out: [usize; 2]) -> (usize, usize) {
    let mut dims = [1usize; 2];
    for (i, &d) in shape.iter().rev().enumerate() {
        dims[1 - i] = d;
    }
    let col = usize::from(dims[1] == out[1] && out[1] != 1);
    let row = if dims[0] == out[0] && out[0] != 1 {
        dims[1]
    } else {
        0
    };
    (row, col)
}

/// Both losses' outputs: the loss per row and the gradient.
fn two_outputs(dtype: DType, rows: Vec<usize>, grad: Vec<usize>) -> Vec<OutputPlan> {
    vec![OutputPlan::new(dtype, rows), OutputPlan::new(dtype, grad)]
}

fn xent_plan(ctx: &dyn OpContext) -> Result<Vec<OutputPlan>> {
    let (x, y) = (ctx.input(0)?, ctx.input(1)?);
    let shape = if x.shape == y.shape {
        x.shape.clone()
    } else {
        broadcast_shapes(&x.shape, &y.shape).map_err(|_| {
            Error::InvalidArgument(format!(
                "logits and labels must be broadcastable: logits_size={} labels_size={}",
                fmt_shape(&x.shape),
                fmt_shape(&y.shape)
            ))
        })?
    };
    if shape.len() != 2 {
        return Err(Error::InvalidArgument(
            "logits and labels must be either 2-dimensional, or broadcasted to be 2-dimensional"
                .into(),
        ));
    }
    Ok(two_outputs(x.dtype, vec![shape[0]], shape))
}

fn xent(ctx: &dyn OpContext, outs: &[OutputPlan]) -> Result<()> {
    let (x, y) = (ctx.input(0)?, ctx.input(1)?);
    let out = [outs[1].shape[0], outs[1].shape[1]];
    let mut l = allocate(ctx, 0, &outs[0])?;
    let mut b = allocate(ctx, 1, &outs[1])?;
    if out[0] == 0 {
        return Ok(());
    }
    let (xr, xc) = strides2(&x.shape, out);
    let (yr, yc) = strides2(&y.shape, out);
    dispatch!(x.dtype, T => {
        let lg = Strided2 { data: x.data::<T>()?, row_stride: xr, col_stride: xc };
        let lb = Strided2 { data: y.data::<T>()?, row_stride: yr, col_stride: yc };
        let loss_out = l.data_mut::<T>()?;
        loss::softmax_xent(lg, lb, out[1], loss_out, b.data_mut::<T>()?);
        Ok(())
    }; [F32, F64, F16, BF16])
}

/// TensorFlow's `SummarizeValue` of a label vector: values separated by spaces.
fn summarize(labels: &[i64]) -> String {
    let v: Vec<String> = labels.iter().map(|x| x.to_string()).collect();
    v.join(" ")
}

fn sparse_xent_plan(ctx: &dyn OpContext) -> Result<Vec<OutputPlan>> {
    let (x, y): (TensorView, TensorView) = (ctx.input(0)?, ctx.input(1)?);
    if x.rank() != 2 {
        return Err(Error::InvalidArgument(format!(
            "logits must be 2-D, but got shape {}",
            fmt_shape(&x.shape)
        )));
    }
    if y.rank() != 1 {
        return Err(Error::InvalidArgument(format!(
            "labels must be 1-D, but got shape {}",
            fmt_shape(&y.shape)
        )));
    }
    if x.shape[0] != y.shape[0] {
        return Err(Error::InvalidArgument(format!(
            "logits and labels must have the same first dimension, got logits shape {} and labels shape {}",
            fmt_shape(&x.shape),
            fmt_shape(&y.shape)
        )));
    }
    let cols = x.shape[1];
    if cols == 0 {
        return Err(Error::InvalidArgument(format!(
            "Must have at least one class, but got logits shape {}",
            fmt_shape(&x.shape)
        )));
    }
    Ok(two_outputs(x.dtype, y.shape.clone(), x.shape.clone()))
}

/// The label range is checked here: labels are data, not host memory.
fn sparse_xent(ctx: &dyn OpContext, outs: &[OutputPlan]) -> Result<()> {
    let (x, y) = (ctx.input(0)?, ctx.input(1)?);
    let cols = x.shape[1];
    let mut l = allocate(ctx, 0, &outs[0])?;
    let mut b = allocate(ctx, 1, &outs[1])?;
    if x.shape[0] == 0 {
        return Ok(());
    }
    let labels = y.to_i64_vec()?;
    let lo = *labels.iter().min().unwrap_or(&0);
    let hi = *labels.iter().max().unwrap_or(&0);
    if lo < 0 || hi >= cols as i64 {
        let bad = if lo < 0 { lo } else { hi };
        return Err(Error::InvalidArgument(format!(
            "Received a label value of {bad} which is outside the valid range of [0, {cols}).  Label values: {}",
            summarize(&labels)
        )));
    }
    dispatch!(x.dtype, T => {
        let loss_out = l.data_mut::<T>()?;
        loss::sparse_softmax_xent(x.data::<T>()?, &labels, cols, loss_out, b.data_mut::<T>()?)
    }; [F32, F64, F16, BF16])
}

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| xent_plan(c) => Vec<OutputPlan>,
        run: |c, p| xent(c, p),
        def: {
            name: "SoftmaxCrossEntropyWithLogits",
            family: crate::Family::Loss,
            summary: "softmax cross-entropy and its gradient over the last axis; logits and labels broadcast to 2-D (half types in float32)",
            constraints: &[TypeConstraint {
                attr: "T",
                types: FLOAT,
            }],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Deny),
    spec_op!(
        plan: |c| sparse_xent_plan(c) => Vec<OutputPlan>,
        run: |c, p| sparse_xent(c, p),
        def: {
            name: "SparseSoftmaxCrossEntropyWithLogits",
            family: crate::Family::Loss,
            summary: "cross-entropy against class indices (int32/int64); out-of-range labels raise InvalidArgument as on CPU",
            constraints: &[
                TypeConstraint {
                    attr: "T",
                    types: FLOAT,
                },
                TypeConstraint {
                    attr: "Tlabels",
                    types: &[DType::I32, DType::I64],
                },
            ],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Deny),
];
