//! Reductions over axes and softmax.

use super::spec_op;
use super::{FLOAT, REAL};
use crate::precision::Class;
use crate::spec::{allocate, Outputs};
use crate::{AttrKind, AttrSpec, Family, OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::{DType, Error, Result};
use tfa_kernels::geometry::axes;
use tfa_kernels::host::arg_reduce;
use tfa_kernels::host::reduce::{self, ReduceOp};

/// Float types and int64. int32 is left out: TensorFlow has DEVICE_DEFAULT
/// int32 kernels for Max and Min (host memory).
const FLOAT_I64: &[DType] = &[DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64];

/// Sum, Mean and Prod take int32 too: TensorFlow has no DEVICE_DEFAULT int32
/// kernel for them, yet training graphs use them (Keras' CategoricalCrossentropy
/// takes a `Prod` of an int32 shape). Those registrations keep every argument
/// in host memory, as TensorFlow's GPU registrations do.
const FLOAT_I64_I32: &[DType] = &[
    DType::I32,
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
];
const I32_ALL_HOST: &[&str] = &["input", "output"];

/// A reduction: which input axes go (`reduced`), the output, and whether
/// the output is the input's data seen with the new shape (nothing reduced,
/// or only size-1 axes).
struct ReducePlan {
    reduced: Vec<bool>,
    out: OutputPlan,
    alias: bool,
}

impl Outputs for ReducePlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

/// BiasAddGrad: the sum of `out_backprop` over every axis but the channel
/// axis (the last, or dim 1 for NCHW inputs of rank > 2).
fn bias_add_grad_plan(ctx: &dyn OpContext) -> Result<ReducePlan> {
    let g = ctx.input(0)?;
    if g.rank() < 2 {
        return Err(Error::InvalidArgument(format!(
            "Input tensor must be at least 2D: {:?}",
            g.shape
        )));
    }
    let nchw = ctx.attrs().string("data_format")? == "NCHW";
    let axis = if nchw && g.rank() > 2 {
        1
    } else {
        g.rank() - 1
    };
    Ok(ReducePlan {
        reduced: (0..g.rank()).map(|d| d != axis).collect(),
        out: OutputPlan::new(g.dtype, vec![g.shape[axis]]),
        alias: false,
    })
}

fn reduce_plan(ctx: &dyn OpContext) -> Result<ReducePlan> {
    let x = ctx.input(0)?;
    // TensorFlow reads the indices flat, whatever their shape.
    let axes_t = ctx.input(1)?;
    let bits = axes::reduction_bitmap(x.rank(), &axes_t.to_i64_vec()?)?;
    let keep_dims = ctx.attrs().bool("keep_dims")?;
    let shape = axes::reduced_shape(&x.shape, &bits, keep_dims);
    let alias = bits.iter().zip(&x.shape).all(|(&b, &d)| !b || d == 1) && x.num_elements() > 0;
    Ok(ReducePlan {
        reduced: bits,
        out: OutputPlan::new(x.dtype, shape),
        alias,
    })
}

fn reduce_run(ctx: &dyn OpContext, p: &ReducePlan, op: ReduceOp) -> Result<()> {
    if p.alias {
        return ctx.alias_output(0, 0, &p.out.shape);
    }
    let x = ctx.input(0)?;
    reduce::reduce(op, &x, &p.reduced, &mut allocate(ctx, 0, &p.out)?)
}

fn softmax_plan(ctx: &dyn OpContext) -> Result<OutputPlan> {
    let x = ctx.input(0)?;
    if x.rank() < 1 {
        return Err(Error::InvalidArgument(format!(
            "logits must have >= 1 dimension, got {}",
            tfa_core::shape::fmt_shape(&x.shape)
        )));
    }
    Ok(OutputPlan::new(x.dtype, x.shape.clone()))
}

fn softmax_run(ctx: &dyn OpContext, out: &OutputPlan, log: bool) -> Result<()> {
    reduce::softmax(&ctx.input(0)?, log, &mut allocate(ctx, 0, out)?)
}

/// ArgMax/ArgMin: the axis and the output.
fn arg_reduce_plan(ctx: &dyn OpContext) -> Result<(usize, OutputPlan)> {
    let (x, dim) = (ctx.input(0)?, ctx.input(1)?);
    if dim.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "dim must be a scalar, but received tensor of shape: {}",
            tfa_core::shape::fmt_shape(&dim.shape)
        )));
    }
    let axis = dim.to_i64_vec()?[0];
    let (axis, shape) = axes::arg_reduce_shape(&x.shape, axis)?;
    let out_type = ctx.attrs().dtype("output_type")?;
    Ok((axis, OutputPlan::new(out_type, shape)))
}

const REDUCE_ATTRS: &[AttrSpec] = &[AttrSpec::new("keep_dims", AttrKind::Bool)];

macro_rules! reduction {
    ($name:literal, $types:expr, $op:ident, $summary:literal) => {
        reduction!($name, $types, $op, $summary, &[])
    };
    ($name:literal, $types:expr, $op:ident, $summary:literal, $i32_host:expr) => {
        spec_op!(
            plan: |c| reduce_plan(c) => ReducePlan,
            run: |c, p| reduce_run(c, p, ReduceOp::$op),
            def: {
                name: $name,
                family: Family::Reduce,
                summary: $summary,
                constraints: &[
                    TypeConstraint {
                        attr: "T",
                        types: $types,
                    },
                    TypeConstraint {
                        attr: "Tidx",
                        types: &[DType::I32, DType::I64],
                    },
                ],
                attrs: REDUCE_ATTRS,
                host_memory: &["reduction_indices"],
                int32_host_memory: $i32_host,
            }
        )
    };
}

/// All / Any: bool input, no `T` attribute.
macro_rules! logical_reduction {
    ($name:literal, $op:ident, $summary:literal) => {
        spec_op!(
            plan: |c| reduce_plan(c) => ReducePlan,
            run: |c, p| reduce_run(c, p, ReduceOp::$op),
            def: {
                name: $name,
                family: Family::Reduce,
                summary: $summary,
                constraints: &[TypeConstraint {
                    attr: "Tidx",
                    types: &[DType::I32, DType::I64],
                }],
                attrs: REDUCE_ATTRS,
                host_memory: &["reduction_indices"],
                int32_host_memory: &[],
            }
        )
    };
}

macro_rules! arg_reduction {
    ($name:literal, $max:expr, $summary:literal) => {
        spec_op!(
            plan: |c| arg_reduce_plan(c) => (usize, OutputPlan),
            run: |c, p| arg_reduce::arg_reduce(&c.input(0)?, p.0, $max, &mut allocate(c, 0, &p.1)?),
            def: {
                name: $name,
                family: Family::Reduce,
                summary: $summary,
                constraints: &[
                    TypeConstraint {
                        attr: "T",
                        types: REAL,
                    },
                    TypeConstraint {
                        attr: "Tidx",
                        types: &[DType::I32, DType::I64],
                    },
                    TypeConstraint {
                        attr: "output_type",
                        types: &[DType::I32, DType::I64],
                    },
                ],
                attrs: &[],
                host_memory: &["dimension"],
                int32_host_memory: &[],
            }
        )
    };
}

pub(crate) const OPS: &[OpDef] = &[
    reduction!(
        "Sum",
        FLOAT_I64_I32,
        Sum,
        "sum over `reduction_indices` (host memory), keep_dims; half types accumulate in float32; int32 entirely in host memory",
        I32_ALL_HOST
    ).amp(Class::Deny),
    reduction!(
        "Mean",
        &[DType::I32, DType::F32, DType::F64, DType::F16, DType::BF16],
        Mean,
        "mean over `reduction_indices` (host memory), keep_dims; empty reductions give NaN; int32 (truncating) entirely in host memory",
        I32_ALL_HOST
    ).amp(Class::Deny),
    reduction!(
        "Max",
        FLOAT_I64,
        Max,
        "maximum over `reduction_indices` (host memory); NaN propagates, empty gives -inf"
    ).amp(Class::Clear),
    reduction!(
        "Min",
        FLOAT_I64,
        Min,
        "minimum over `reduction_indices` (host memory); NaN propagates, empty gives +inf"
    ).amp(Class::Clear),
    reduction!(
        "Prod",
        FLOAT_I64_I32,
        Prod,
        "product over `reduction_indices` (host memory), keep_dims; int32 entirely in host memory",
        I32_ALL_HOST
    ).amp(Class::Deny),
    spec_op!(
        plan: |c| softmax_plan(c) => OutputPlan,
        run: |c, p| softmax_run(c, p, false),
        def: {
            name: "Softmax",
            family: Family::Reduce,
            summary: "softmax over the last axis (max-subtracted; half types in float32)",
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
        plan: |c| softmax_plan(c) => OutputPlan,
        run: |c, p| softmax_run(c, p, true),
        def: {
            name: "LogSoftmax",
            family: Family::Reduce,
            summary: "log-softmax over the last axis (x - max - log(sum(exp(x - max))))",
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
        plan: |c| bias_add_grad_plan(c) => ReducePlan,
        run: |c, p| reduce_run(c, p, ReduceOp::Sum),
        def: {
            name: "BiasAddGrad",
            family: Family::Reduce,
            summary: "sum of the gradient over all but the channel axis (NHWC or NCHW)",
            constraints: &[TypeConstraint {
                attr: "T",
                types: FLOAT,
            }],
            attrs: &[AttrSpec::new("data_format", AttrKind::String)],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Infer),
    spec_op!(
        plan: |c| Ok(OutputPlan::new(c.input(0)?.dtype, vec![])) => OutputPlan,
        run: |c, p| reduce::l2_loss(&c.input(0)?, &mut allocate(c, 0, p)?),
        def: {
            name: "L2Loss",
            family: Family::Reduce,
            summary: "sum(t^2) / 2 over every element (tf.nn.l2_loss, tf.linalg.global_norm); half types accumulate in float32",
            constraints: &[TypeConstraint {
                attr: "T",
                types: FLOAT,
            }],
            attrs: &[],
            host_memory: &[],
            int32_host_memory: &[],
        }
    ).amp(Class::Deny),
    logical_reduction!(
        "All",
        Min,
        "logical and over `reduction_indices` (host memory), keep_dims; empty gives true"
    ),
    logical_reduction!(
        "Any",
        Max,
        "logical or over `reduction_indices` (host memory), keep_dims; empty gives false"
    ),
    arg_reduction!(
        "ArgMax",
        true,
        "index of the largest value along `dimension` (host memory); first on ties, NaN ignored"
    ).amp(Class::Clear),
    arg_reduction!(
        "ArgMin",
        false,
        "index of the smallest value along `dimension` (host memory); first on ties, NaN ignored"
    ).amp(Class::Clear),
];

#[cfg(test)]
mod tests {
    use tfa_core::DType;

    #[test]
    fn max_and_min_leave_int32_to_tensorflows_default_kernels() {
        for name in ["Max", "Min"] {
            let (_, d) = crate::find(name).unwrap();
            assert!(!d.supports(DType::I32), "{name}");
        }
    }

    #[test]
    fn int32_sum_mean_prod_live_in_host_memory() {
        for name in ["Sum", "Mean", "Prod"] {
            let (_, d) = crate::find(name).unwrap();
            assert!(d.supports(DType::I32), "{name}");
            for combo in d.registrations() {
                let hm = d.host_memory_for(&combo);
                let all = ["input", "reduction_indices", "output"]
                    .iter()
                    .all(|a| hm.contains(a));
                assert_eq!(all, combo[0].1 == DType::I32, "{name} {combo:?}");
            }
        }
    }
}
