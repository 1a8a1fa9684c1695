//! Softmax cross-entropy losses with their gradients (`loss`, `backprop`).

use super::FLOAT;
use crate::{OpContext, OpDef, TypeConstraint};
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

fn xent(ctx: &dyn OpContext) -> Result<()> {
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
    let out = [shape[0], shape[1]];
    let mut l = ctx.allocate_output(0, x.dtype, &[out[0]])?;
    let mut b = ctx.allocate_output(1, x.dtype, &shape)?;
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

fn sparse_xent(ctx: &dyn OpContext) -> Result<()> {
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
    let mut l = ctx.allocate_output(0, x.dtype, &y.shape)?;
    let mut b = ctx.allocate_output(1, x.dtype, &x.shape)?;
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
    OpDef {
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
        host: Some(xent),
        shape_rule: None,
        cuda: None,
    },
    OpDef {
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
        host: Some(sparse_xent),
        shape_rule: None,
        cuda: None,
    },
];
