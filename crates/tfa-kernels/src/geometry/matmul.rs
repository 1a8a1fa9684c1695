//! Matrix-product shape rules: MatMul's and BatchMatMulV2's checks (with
//! TensorFlow's messages) and the batch plan every backend multiplies by.

use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Error, Result};

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MatMulParams {
    pub transpose_a: bool,
    pub transpose_b: bool,
    /// float32 only: multiply in this type (BF16/F16: inputs rounded,
    /// float32 accumulation and output). `None`: the graph dtype.
    pub lowp: Option<DType>,
}

/// `(m, k, n)` of a 2-D matmul, or TensorFlow's error for mismatched shapes.
pub fn matmul_dims(a: &[usize], b: &[usize], p: MatMulParams) -> Result<(usize, usize, usize)> {
    if a.len() != 2 || b.len() != 2 {
        return Err(Error::InvalidArgument(format!(
            "In[0] and In[1] has different ndims: {:?} vs. {:?}",
            a, b
        )));
    }
    let (m, ka) = if p.transpose_a {
        (a[1], a[0])
    } else {
        (a[0], a[1])
    };
    let (kb, n) = if p.transpose_b {
        (b[1], b[0])
    } else {
        (b[0], b[1])
    };
    if ka != kb {
        return Err(Error::InvalidArgument(format!(
            "Matrix size-incompatible: In[0]: [{},{}], In[1]: [{},{}]",
            a[0], a[1], b[0], b[1]
        )));
    }
    Ok((m, ka, n))
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchMatMulParams {
    pub adj_x: bool,
    pub adj_y: bool,
    /// float32 only: multiply in this type (BF16/F16: inputs rounded,
    /// float32 accumulation and output). `None`: the graph dtype.
    pub lowp: Option<DType>,
}

/// A validated batched product: per output batch the x and y batch indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub x_batch: Vec<usize>,
    pub y_batch: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub p: BatchMatMulParams,
}

/// Per batch of the broadcast batch shape `batch`, the offset into an
/// operand whose batch dims are `dims` (right-aligned; a dim of 1
/// broadcasts) at `strides`.
pub fn batch_offsets(batch: &[usize], dims: &[usize], strides: &[usize]) -> Vec<usize> {
    let pad = batch.len() - dims.len();
    (0..batch.iter().product())
        .map(|mut b| {
            let mut off = 0;
            for d in (0..batch.len()).rev() {
                let i = b % batch[d];
                b /= batch[d];
                if d >= pad && dims[d - pad] != 1 {
                    off += i * strides[d - pad];
                }
            }
            off
        })
        .collect()
}

/// Checks shapes as TensorFlow's BatchMatMulV2 does and plans the batches.
pub fn batch_matmul_plan(x: &[usize], y: &[usize], p: BatchMatMulParams) -> Result<BatchPlan> {
    if x.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "In[0] ndims must be >= 2: {}",
            x.len()
        )));
    }
    if y.len() < 2 {
        return Err(Error::InvalidArgument(format!(
            "In[1] ndims must be >= 2: {}",
            y.len()
        )));
    }
    let (bx, by) = (&x[..x.len() - 2], &y[..y.len() - 2]);
    let batch = broadcast_shapes(bx, by).map_err(|_| {
        Error::InvalidArgument(format!(
            "In[0] and In[1] must have compatible batch dimensions: {} vs. {}",
            fmt_shape(x),
            fmt_shape(y)
        ))
    })?;
    let (xr, xc) = (x[x.len() - 2], x[x.len() - 1]);
    let (yr, yc) = (y[y.len() - 2], y[y.len() - 1]);
    let (m, kx) = if p.adj_x { (xc, xr) } else { (xr, xc) };
    let (ky, n) = if p.adj_y { (yc, yr) } else { (yr, yc) };
    if kx != ky {
        return Err(Error::InvalidArgument(format!(
            "Matrix size-incompatible: In[0]: {}, In[1]: {}",
            fmt_shape(x),
            fmt_shape(y)
        )));
    }
    let index = |s: &[usize]| batch_offsets(&batch, s, &tfa_core::shape::strides(s));
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    Ok(BatchPlan {
        m,
        k: kx,
        n,
        x_batch: index(bx),
        y_batch: index(by),
        out_shape,
        p,
    })
}
