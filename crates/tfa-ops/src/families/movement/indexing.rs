//! Gather, one-hot, stitch, tile and scatter kernels of the movement family.

use super::*;

pub(super) fn gather_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (params, indices) = (ctx.input(0)?, ctx.input(1)?);
    let axis = int_scalar(&ctx.input(2)?, |shape| {
        format!("axis must be scalar, but got shape {shape}")
    })
    .map_err(|_| Error::InvalidArgument("axis must be scalar".into()))?;
    let plan = gather::gather_plan(
        &params.shape,
        &indices.shape,
        axis,
        ctx.attrs().int("batch_dims")?,
    )?;
    let mut out = ctx.allocate_output(0, params.dtype, &plan.out_shape)?;
    gather::gather(&params, &indices, &plan, &mut out)
}

pub(super) fn one_hot_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (indices, depth) = (ctx.input(0)?, ctx.input(1)?);
    let (on, off) = (ctx.input(2)?, ctx.input(3)?);
    for (t, what) in [(&depth, "depth"), (&on, "on_value"), (&off, "off_value")] {
        if t.rank() != 0 {
            return Err(Error::InvalidArgument(format!(
                "{what} must be a scalar, but got: {}",
                fmt_shape(&t.shape)
            )));
        }
    }
    let depth = depth.to_i64_vec()?[0];
    let depth = usize::try_from(depth)
        .map_err(|_| Error::InvalidArgument(format!("depth must be non-negative, got: {depth}")))?;
    let rank = indices.rank() as i64;
    let axis = ctx.attrs().int("axis")?;
    if axis != -1 && !(0..=rank).contains(&axis) {
        return Err(Error::InvalidArgument(format!(
            "Expected axis to be -1 or between [0, {}).  But received: {axis}",
            rank + 1
        )));
    }
    let axis = if axis == -1 { rank } else { axis } as usize;
    let mut shape = indices.shape.clone();
    shape.insert(axis, depth);
    let inner: usize = indices.shape[axis..].iter().product();
    let mut out = ctx.allocate_output(0, on.dtype, &shape)?;
    let idx = match indices.dtype {
        DType::U8 => indices.data::<u8>()?.iter().map(|&i| i as i64).collect(),
        _ => indices.to_i64_vec()?,
    };
    gather::one_hot(&idx, inner, depth, on.bytes(), off.bytes(), &mut out)
}

/// DynamicStitch / ParallelDynamicStitch: `merged[indices[i]] = data[i]`.
pub(super) fn stitch_kernel(ctx: &dyn OpContext) -> Result<()> {
    let n = ctx.num_inputs() / 2;
    let (mut indices, mut data) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        indices.push(ctx.input(i)?);
        data.push(ctx.input(n + i)?);
    }
    let Some(first) = indices.first() else {
        return Err(Error::InvalidArgument(
            "DynamicStitch needs at least one input".into(),
        ));
    };
    let suffix = data[0].shape.get(first.rank()..).unwrap_or(&[]).to_vec();
    let mut flat = Vec::with_capacity(n);
    let mut max = -1i64;
    for (i, (ix, d)) in indices.iter().zip(&data).enumerate() {
        let mut want = ix.shape.clone();
        want.extend_from_slice(&suffix);
        if d.shape != want {
            return Err(Error::InvalidArgument(format!(
                "data[{i}].shape = {} does not start with indices[{i}].shape = {}",
                fmt_shape(&d.shape),
                fmt_shape(&ix.shape)
            )));
        }
        let v = ix.to_i64_vec()?;
        if let Some(bad) = v.iter().find(|&&k| k < 0) {
            return Err(Error::InvalidArgument(format!(
                "indices[{i}] contains a negative index: {bad}"
            )));
        }
        max = v.iter().copied().fold(max, i64::max);
        flat.push(v);
    }
    let mut shape = vec![(max + 1) as usize];
    shape.extend_from_slice(&suffix);
    let mut out = ctx.allocate_output(0, data[0].dtype, &shape)?;
    let row = num_elements(&suffix)? * data[0].dtype.size();
    let bytes: Vec<&[u8]> = data.iter().map(|d| d.bytes()).collect();
    gather::stitch(&flat, &bytes, row, out.bytes_mut());
    Ok(())
}

/// Tile(input, multiples): `multiples` (host memory) repeats each dim.
pub(super) fn tile_kernel(ctx: &dyn OpContext) -> Result<()> {
    let x = ctx.input(0)?;
    let multiples = ctx.input(1)?;
    let m = multiples.to_i64_vec()?;
    if multiples.rank() != 1 || m.len() != x.rank() {
        return Err(Error::InvalidArgument(format!(
            "Expected multiples argument to be a vector of length {} but got length {}",
            x.rank(),
            m.len()
        )));
    }
    let mut shape = Vec::with_capacity(m.len());
    for (i, (&d, &k)) in x.shape.iter().zip(&m).enumerate() {
        if k < 0 {
            return Err(Error::InvalidArgument(format!(
                "Expected multiples[{i}] >= 0, but got {k}"
            )));
        }
        shape.push(d * k as usize);
    }
    let mut out = ctx.allocate_output(0, x.dtype, &shape)?;
    slice::tile(&x, &mut out)
}

/// TensorScatter{Update,Add,Sub}(tensor, indices, updates): a copy of
/// `tensor` (its buffer reused when TensorFlow allows) with the updates
/// applied in index order, as on TensorFlow's CPU.
pub(super) fn tensor_scatter_kernel(ctx: &dyn OpContext, op: ScatterOp) -> Result<()> {
    let (tensor, indices, updates) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let ignore_bad = match ctx.attrs().string("bad_indices_policy")? {
        "" | "DEFAULT" | "ERROR" => false,
        "IGNORE" => true,
        other => {
            return Err(Error::InvalidArgument(format!(
                "Unknown bad indices handling attribute: {other}"
            )))
        }
    };
    let plan = scatter::tensor_scatter_plan(&tensor.shape, &indices.shape, &updates.shape)?;
    let (mut out, fwd) = ctx.forward_or_allocate(&[0], 0, tensor.dtype, &tensor.shape)?;
    if fwd.is_none() {
        let n = tensor.num_elements() * tensor.dtype.size();
        out.bytes_mut()[..n].copy_from_slice(&tensor.bytes()[..n]);
    }
    scatter::tensor_scatter(op, &indices, &updates, &plan, ignore_bad, &mut out)
}

/// `ScatterNd(indices, updates, shape)`: zeros of `shape` (host memory) with
/// `updates` added at `indices` (repeated indices accumulate), TensorFlow's
/// checks and bad-index error.
pub(super) fn scatter_nd_kernel(ctx: &dyn OpContext) -> Result<()> {
    let (indices, updates, shape_t) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let shape = crate::families::shape_vector(&shape_t, || {
        format!(
            "Shape must be a vector, got shape {}",
            fmt_shape(&shape_t.shape)
        )
    })?;
    let ignore_bad = ctx.attrs().string("bad_indices_policy")? == "IGNORE";
    let plan = scatter::tensor_scatter_plan(&shape, &indices.shape, &updates.shape)?;
    let mut out = ctx.allocate_output(0, updates.dtype, &shape)?;
    out.bytes_mut().fill(0);
    scatter::tensor_scatter(
        ScatterOp::Add,
        &indices,
        &updates,
        &plan,
        ignore_bad,
        &mut out,
    )
}
