//! Ops that write into a buffer another op produced (TensorFlow's
//! intentionally aliasing kernels) and ops that hand out uninitialised
//! buffers for them.
//!
//! They have NPU kernels so that TensorFlow's placer keeps each chain on one
//! device: `tf.parallel_stack` becomes `_ParallelConcatStart` -> one
//! `_ParallelConcatUpdate` per value -> `Identity`, the last ordered after
//! the updates only by control edges. Split over two devices, the buffer is
//! copied when the start finishes, before the writes (zeros or garbage). The
//! graph pass in `tfa-plugin` (`graph/ordering.rs`) covers the chains that
//! still cross a device (dtypes the NPU lacks, explicit placements).

use super::elementwise::like_input;
use super::{spec_op, ALL_NO_I32, NUMERIC_NO_I32};
use crate::spec::allocate;
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result};
use tfa_kernels::host::inplace::{update_rows, RowOp};

/// Every type, int32 included (in host memory): TensorFlow has no
/// DEVICE_DEFAULT kernel for these.
const ALL: &[DType] = DType::ALL;

fn invalid(msg: String) -> Error {
    Error::InvalidArgument(msg)
}

/// `_ParallelConcatStart`: the uninitialised output of attr `shape`.
fn parallel_concat_start_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let a = ctx.attrs();
    Ok(OutputPlan::new(a.dtype("dtype")?, a.shape("shape")?))
}

/// A row update of input 0's own buffer (the output): the rows it writes.
type RowsPlan = (Vec<i64>, OutputPlan);

/// `_ParallelConcatUpdate(value, update)`: `update` (one row) written into
/// row `loc` of `value`'s own buffer, which is the output.
fn parallel_concat_update_plan(ctx: &dyn OpContext) -> Result<RowsPlan> {
    let (value, update) = (ctx.input(0)?, ctx.input(1)?);
    let loc = ctx.attrs().int("loc")?;
    let (vs, us) = (fmt_shape(&value.shape), fmt_shape(&update.shape));
    if value.rank() < 1 {
        return Err(invalid("value should be at least rank 1.".into()));
    }
    if value.shape[0] as i64 <= loc {
        return Err(invalid(format!(
            "0th dimension of value = {} must be greater than loc_ = {loc}",
            value.shape[0]
        )));
    }
    if value.rank() != update.rank() {
        return Err(invalid(format!(
            "value and update shape doesn't match: {vs} vs. {us}"
        )));
    }
    if value.shape[1..] != update.shape[1..] {
        return Err(invalid(format!(
            "value and update shape doesn't match {vs} vs. {us}"
        )));
    }
    if update.shape[0] != 1 {
        return Err(invalid(format!("update shape doesn't match: {us}")));
    }
    Ok((vec![loc], OutputPlan::new(value.dtype, value.shape.clone())))
}

/// Rows of input 0's buffer updated by the rows of input `rows_from`.
fn update_in_place(
    ctx: &dyn OpContext,
    (rows, _): &RowsPlan,
    op: RowOp,
    rows_from: usize,
) -> Result<()> {
    let v = ctx.input(rows_from)?;
    let mut y = ctx.input_in_place(0, 0)?;
    update_rows(op, &mut y, rows, &v)
}

/// `InplaceUpdate/Add/Sub(x, i, v)`: rows `i` of `x`'s own buffer (the
/// output) set to, increased or decreased by the rows of `v`.
fn inplace_plan(ctx: &dyn OpContext) -> Result<RowsPlan> {
    let (x, i, v) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let (xs, is, vs) = (
        fmt_shape(&x.shape),
        fmt_shape(&i.shape),
        fmt_shape(&v.shape),
    );
    if i.rank() != 1 {
        return Err(invalid(format!("i must be a vector. {is}")));
    }
    if x.rank() != v.rank() {
        return Err(invalid(format!(
            "x and v shape doesn't match (ranks differ): {xs} vs. {vs}"
        )));
    }
    if x.rank() == 0 {
        // TensorFlow's CPU kernel reads dimension 0 of the scalar (a crash).
        return Err(invalid(format!("x must be at least rank 1, got {xs}")));
    }
    if let Some(d) = (1..x.rank()).find(|&d| x.shape[d] != v.shape[d]) {
        return Err(invalid(format!(
            "x and v shape doesn't match at index {d} : {xs} vs. {vs}"
        )));
    }
    if i.shape[0] != v.shape[0] {
        return Err(invalid(format!(
            "i and x shape doesn't match at index 0: {is} vs. {vs}"
        )));
    }
    Ok((i.to_i64_vec()?, OutputPlan::new(x.dtype, x.shape.clone())))
}

fn deep_copy(ctx: &dyn OpContext, out: &OutputPlan) -> Result<()> {
    let x = ctx.input(0)?;
    allocate(ctx, 0, out)?
        .bytes_mut()
        .copy_from_slice(x.bytes());
    Ok(())
}

/// `Empty(shape)`: a new buffer, zeros when `init`, else uninitialised.
fn empty_plan(ctx: &dyn OpContext) -> Result<(bool, OutputPlan)> {
    let shape_t = ctx.input(0)?;
    let shape = super::shape_vector(&shape_t, || {
        format!(
            "shape must be a vector of int32, got shape {}",
            fmt_shape(&shape_t.shape)
        )
    })?;
    let a = ctx.attrs();
    Ok((a.bool("init")?, OutputPlan::new(a.dtype("dtype")?, shape)))
}

fn empty(ctx: &dyn OpContext, (init, out): &(bool, OutputPlan)) -> Result<()> {
    let mut out = allocate(ctx, 0, out)?;
    if *init {
        out.bytes_mut().fill(0);
    }
    Ok(())
}

macro_rules! inplace_op {
    ($name:literal, $op:ident, $types:expr, $summary:literal) => {
        spec_op!(
            plan: |c| inplace_plan(c) => RowsPlan,
            run: |c, p| update_in_place(c, p, RowOp::$op, 2),
            def: {
                name: $name,
                family: Family::InPlace,
                summary: $summary,
                constraints: &[TypeConstraint {
                    attr: "T",
                    types: $types,
                }],
                attrs: &[],
                host_memory: &["i"],
                int32_host_memory: &[],
            }
        )
    };
}

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| parallel_concat_start_plan(c) => OutputPlan,
        run: |c, p| allocate(c, 0, p).map(|_| ()),
        def: {
            name: "_ParallelConcatStart",
            family: Family::InPlace,
            summary: "uninitialised buffer of attr `shape` for `tf.parallel_stack` (kept on the device of its updates)",
            constraints: &[TypeConstraint {
                attr: "dtype",
                types: ALL,
            }],
            attrs: &[AttrSpec::new("shape", AttrKind::Shape)],
            host_memory: &[],
            int32_host_memory: &["output"],
        }
    ),
    spec_op!(
        plan: |c| parallel_concat_update_plan(c) => RowsPlan,
        run: |c, p| update_in_place(c, p, RowOp::Update, 1),
        def: {
            name: "_ParallelConcatUpdate",
            family: Family::InPlace,
            summary: "writes one row of `tf.parallel_stack`'s buffer in place (row `loc`, wrapped as TensorFlow does)",
            constraints: &[TypeConstraint {
                attr: "T",
                types: ALL,
            }],
            attrs: &[AttrSpec::new("loc", AttrKind::Int32)],
            host_memory: &[],
            int32_host_memory: &["value", "update", "output"],
        }
    ),
    inplace_op!(
        "InplaceUpdate",
        Update,
        ALL_NO_I32,
        "rows `i` of `x` set to `v`, in `x`'s buffer; int32 runs TensorFlow's host-memory kernel"
    ),
    inplace_op!(
        "InplaceAdd",
        Add,
        NUMERIC_NO_I32,
        "rows `i` of `x` increased by `v`, in `x`'s buffer; int32 runs TensorFlow's host-memory kernel"
    ),
    inplace_op!(
        "InplaceSub",
        Sub,
        NUMERIC_NO_I32,
        "rows `i` of `x` decreased by `v`, in `x`'s buffer; int32 runs TensorFlow's host-memory kernel"
    ),
    spec_op!(
        plan: |c| like_input(c) => OutputPlan,
        run: |c, p| deep_copy(c, p),
        def: {
            name: "DeepCopy",
            family: Family::InPlace,
            summary: "a copy in a new buffer (what `inplace_ops.inplace_update` updates); int32 runs TensorFlow's host-memory kernel",
            constraints: &[TypeConstraint {
                attr: "T",
                types: ALL_NO_I32,
            }],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |c| empty_plan(c) => (bool, OutputPlan),
        run: |c, p| empty(c, p),
        def: {
            name: "Empty",
            family: Family::InPlace,
            summary: "a new buffer of `shape` (host memory): zeros with `init=True`, else uninitialised",
            constraints: &[TypeConstraint {
                attr: "dtype",
                types: ALL,
            }],
            attrs: &[AttrSpec::new("init", AttrKind::Bool)],
            host_memory: &["shape"],
            int32_host_memory: &["output"],
        }
    ),
];
