//! Gather, one-hot, stitch, tile and scatter specs of the movement family
//! (the gather and scatter shape rules in `tfa_kernels::geometry::index`).

use super::*;

pub(super) fn gather_plan(ctx: &dyn OpContext) -> Result<(GatherPlan, OutputPlan)> {
    let (params, indices) = (ctx.input(0)?, ctx.input(1)?);
    let axis = int_scalar(&ctx.input(2)?, |shape| {
        format!("axis must be scalar, but got shape {shape}")
    })
    .map_err(|_| Error::InvalidArgument("axis must be scalar".into()))?;
    let plan = index::gather_plan(
        &params.shape,
        &indices.shape,
        axis,
        ctx.attrs().int("batch_dims")?,
    )?;
    let out = OutputPlan::new(params.dtype, plan.out_shape.clone());
    Ok((plan, out))
}

pub(super) fn gather_run(
    ctx: &dyn OpContext,
    (plan, out): &(GatherPlan, OutputPlan),
) -> Result<()> {
    let (params, indices) = (ctx.input(0)?, ctx.input(1)?);
    gather::gather(&params, &indices, plan, &mut allocate(ctx, 0, out)?)
}

/// GatherNd: TensorFlow's checks (gather_nd_op.h, messages included), the
/// elements per gathered slice and the output `indices.shape[:-1] +
/// params.shape[indices.shape[-1]:]`.
pub(super) fn gather_nd_plan(ctx: &dyn OpContext) -> Result<((usize, bool), OutputPlan)> {
    let (params, indices) = (ctx.input(0)?, ctx.input(1)?);
    let inv = |m: String| Err(Error::InvalidArgument(m));
    if params.rank() == 0 {
        return inv("params must be at least a vector".into());
    }
    if indices.rank() == 0 {
        return inv("indices must be at least a vector".into());
    }
    let ix = indices.shape[indices.rank() - 1];
    if ix > params.rank() {
        return inv(format!(
            "index innermost dimension length must be <= params rank; saw: {ix} vs. {}",
            params.rank()
        ));
    }
    let outer = &indices.shape[..indices.rank() - 1];
    let tuples: usize = outer.iter().product();
    if tuples > 0 && params.num_elements() == 0 {
        return inv(format!(
            "Requested more than 0 entries, but params is empty.  Params shape: {}",
            fmt_shape(&params.shape)
        ));
    }
    if tuples > 0 && ix > 7 {
        return inv(format!(
            "Only indices.shape[-1] values between 1 and 7 are currently supported.  Requested rank: {ix}"
        ));
    }
    let slice: usize = params.shape[ix..].iter().product();
    let shape: Vec<usize> = outer.iter().chain(&params.shape[ix..]).copied().collect();
    let ignore_bad = ctx.attrs().string("bad_indices_policy")? == "IGNORE";
    Ok(((slice, ignore_bad), OutputPlan::new(params.dtype, shape)))
}

pub(super) fn gather_nd_run(
    ctx: &dyn OpContext,
    ((slice, ignore_bad), out): &((usize, bool), OutputPlan),
) -> Result<()> {
    let (params, indices) = (ctx.input(0)?, ctx.input(1)?);
    let mut y = allocate(ctx, 0, out)?;
    gather::gather_nd(&params, &indices, *slice, *ignore_bad, &mut y)
}

/// OneHot: the axis the depth goes in, as `(inner, depth)` (the elements
/// of `indices` after the axis, the depth), and the output.
pub(super) fn one_hot_plan(ctx: &dyn OpContext) -> Result<((usize, usize), OutputPlan)> {
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
    Ok(((inner, depth), OutputPlan::new(on.dtype, shape)))
}

pub(super) fn one_hot_run(
    ctx: &dyn OpContext,
    ((inner, depth), out): &((usize, usize), OutputPlan),
) -> Result<()> {
    let (indices, on, off) = (ctx.input(0)?, ctx.input(2)?, ctx.input(3)?);
    let idx = match indices.dtype {
        DType::U8 => indices.data::<u8>()?.iter().map(|&i| i as i64).collect(),
        _ => indices.to_i64_vec()?,
    };
    gather::one_hot(
        &idx,
        *inner,
        *depth,
        on.bytes(),
        off.bytes(),
        &mut allocate(ctx, 0, out)?,
    )
}

/// DynamicStitch's plan: every index list (host memory, read once), the
/// bytes of one row, the output.
pub(super) struct StitchPlan {
    flat: Vec<Vec<i64>>,
    row: usize,
    out: OutputPlan,
}

impl Outputs for StitchPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

/// DynamicStitch / ParallelDynamicStitch: `merged[indices[i]] = data[i]`.
pub(super) fn stitch_plan(ctx: &dyn OpContext) -> Result<StitchPlan> {
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
    let row = num_elements(&suffix)? * data[0].dtype.size();
    Ok(StitchPlan {
        flat,
        row,
        out: OutputPlan::new(data[0].dtype, shape),
    })
}

pub(super) fn stitch_run(ctx: &dyn OpContext, p: &StitchPlan) -> Result<()> {
    let n = ctx.num_inputs() / 2;
    let data = (n..2 * n)
        .map(|i| ctx.input(i))
        .collect::<Result<Vec<_>>>()?;
    let bytes: Vec<&[u8]> = data.iter().map(|d| d.bytes()).collect();
    gather::stitch(
        &p.flat,
        &bytes,
        p.row,
        allocate(ctx, 0, &p.out)?.bytes_mut(),
    );
    Ok(())
}

/// Tile(input, multiples): `multiples` (host memory) repeats each dim.
pub(super) fn tile_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
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
    Ok(OutputPlan::new(x.dtype, shape))
}

/// TensorScatter{Update,Add,Sub}(tensor, indices, updates): a copy of
/// `tensor` (its buffer reused when TensorFlow allows) with the updates
/// applied in index order, as on TensorFlow's CPU.
pub(super) fn tensor_scatter_plan(
    ctx: &dyn OpContext,
) -> Result<((ScatterPlan, bool), OutputPlan)> {
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
    let plan = index::tensor_scatter_plan(&tensor.shape, &indices.shape, &updates.shape)?;
    let out = OutputPlan::new(tensor.dtype, tensor.shape.clone());
    Ok(((plan, ignore_bad), out))
}

/// TensorScatter{Update,Add,Sub}: the copy, then the updates.
pub(super) fn tensor_scatter_run(
    ctx: &dyn OpContext,
    ((plan, ignore_bad), out): &((ScatterPlan, bool), OutputPlan),
    op: ScatterOp,
) -> Result<()> {
    let (tensor, indices, updates) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let (mut y, fwd) = ctx.forward_or_allocate(&[0], 0, out.dtype, &out.shape)?;
    if fwd.is_none() {
        let n = tensor.num_elements() * tensor.dtype.size();
        y.bytes_mut()[..n].copy_from_slice(&tensor.bytes()[..n]);
    }
    scatter::tensor_scatter(op, &indices, &updates, plan, *ignore_bad, &mut y)
}

/// `ScatterNd(indices, updates, shape)`: zeros of `shape` (host memory) with
/// `updates` added at `indices` (repeated indices accumulate), TensorFlow's
/// checks and bad-index error.
pub(super) fn scatter_nd_plan(ctx: &dyn OpContext) -> Result<((ScatterPlan, bool), OutputPlan)> {
    let (indices, updates, shape_t) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let shape = crate::families::shape_vector(&shape_t, || {
        format!(
            "Shape must be a vector, got shape {}",
            fmt_shape(&shape_t.shape)
        )
    })?;
    let ignore_bad = ctx.attrs().string("bad_indices_policy")? == "IGNORE";
    let plan = index::tensor_scatter_plan(&shape, &indices.shape, &updates.shape)?;
    Ok(((plan, ignore_bad), OutputPlan::new(updates.dtype, shape)))
}

pub(super) fn scatter_nd_run(
    ctx: &dyn OpContext,
    ((plan, ignore_bad), out): &((ScatterPlan, bool), OutputPlan),
) -> Result<()> {
    let (indices, updates) = (ctx.input(0)?, ctx.input(1)?);
    let mut y = allocate(ctx, 0, out)?;
    y.bytes_mut().fill(0);
    scatter::tensor_scatter(
        ScatterOp::Add,
        &indices,
        &updates,
        plan,
        *ignore_bad,
        &mut y,
    )
}
