//! Op = spec + kernels.
//!
//! A [`Spec`] is the backend-neutral half of an op: TensorFlow's checks on
//! the node's attributes and input shapes (and the values of its host-memory
//! inputs), and its shape rule. It returns a plan — the validated geometry
//! (`tfa_kernels::geometry`) and the outputs — before anything is allocated
//! or computed. Each backend implements [`Kernel`] for the spec: one function
//! that takes the plan and runs it. The table stores both halves
//! ([`OpDef::shape_rule`](crate::OpDef) and the backend's kernel), so that a
//! scheduler can learn a node's outputs before running it, Rust tests can
//! check a spec's errors without a kernel (`testing::plan`), and a second
//! backend adds kernels without touching the checks. Every op of the table
//! is declared this way.

use crate::OpContext;
use tfa_core::{DType, Result};

/// One output as the spec decides it, before any kernel runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputPlan {
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl OutputPlan {
    pub fn new(dtype: DType, shape: Vec<usize>) -> OutputPlan {
        OutputPlan { dtype, shape }
    }
}

/// The backend-neutral half of an op.
pub trait Spec {
    /// What every backend's kernel takes.
    type Plan;
    /// TensorFlow's checks and shape rule for the node in `ctx` (reads input
    /// shapes and host-memory inputs' values, allocates nothing).
    fn plan(ctx: &dyn OpContext) -> Result<Self::Plan>;
    /// The outputs `plan` produces, in output order.
    fn outputs(plan: &Self::Plan) -> Vec<OutputPlan>;
}

/// Backend `Self`'s kernel for spec `S`: runs a plan `S` made for the node
/// in `ctx`, allocating the outputs the plan names.
pub trait Kernel<S: Spec> {
    fn run(ctx: &dyn OpContext, plan: &S::Plan) -> Result<()>;
}

/// The host backend (`tfa_kernels::host`: rayon threads and gemm).
pub struct Host;

/// The CUDA backend: no kernels yet, so no spec implements [`Kernel`] for
/// it and every `OpDef::cuda` is `None`; it names the column.
pub struct Cuda;

/// A plan that knows its outputs (for specs the table declares inline:
/// `op_t!(..., plan: |c| ... => Plan, run: |c, p| ...)`).
pub trait Outputs {
    fn outputs(&self) -> Vec<OutputPlan>;
}

impl Outputs for OutputPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.clone()]
    }
}

/// Several outputs, nothing else.
impl Outputs for Vec<OutputPlan> {
    fn outputs(&self) -> Vec<OutputPlan> {
        self.clone()
    }
}

/// One output and what else the kernel needs (an axis, a permutation...).
impl<D> Outputs for (D, OutputPlan) {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.1.clone()]
    }
}

/// Several outputs and what else the kernel needs.
impl<D> Outputs for (D, Vec<OutputPlan>) {
    fn outputs(&self) -> Vec<OutputPlan> {
        self.1.clone()
    }
}

/// An op's shape rule as the table stores it.
pub type ShapeFn = fn(&dyn OpContext) -> Result<Vec<OutputPlan>>;

/// The shape rule of spec `S`.
pub fn shape_rule<S: Spec>(ctx: &dyn OpContext) -> Result<Vec<OutputPlan>> {
    S::plan(ctx).map(|p| S::outputs(&p))
}

/// The table's kernel for spec `S` on backend `B`: plan, then run.
pub fn planned<S: Spec, B: Kernel<S>>(ctx: &dyn OpContext) -> Result<()> {
    let plan = S::plan(ctx)?;
    B::run(ctx, &plan)
}

/// Allocates output `i` as planned.
pub(crate) fn allocate<'c>(
    ctx: &'c dyn OpContext,
    i: usize,
    out: &OutputPlan,
) -> Result<tfa_core::TensorMut<'c>> {
    ctx.allocate_output(i, out.dtype, &out.shape)
}

#[cfg(test)]
mod tests;
