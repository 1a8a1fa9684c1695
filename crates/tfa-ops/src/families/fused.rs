//! `_TfaFused`: a product (Conv2D, DepthwiseConv2dNative, MatMul,
//! BatchMatMulV2) or nothing, followed by a program of elementwise ops, as
//! one NPU op. The plugin's fusion pass (`tfa-plugin/src/graph/fusion.rs`)
//! writes these nodes; TensorFlow has no such op, so its OpDef is declared
//! here too (`CUSTOM_OPS`) and registered by the plugin.
//!
//! The product runs through its own kernel from the op table (the node
//! carries the product's attributes under their usual names) and the program
//! runs on its output in blocks of rows while they are in cache
//! (`tfa_kernels::host::fused`), so the result is bit for bit what the
//! unfused ops give on the NPU — except after a bfloat16 Conv2D, whose
//! program runs on the float32 accumulators and rounds once
//! ([`bf16_conv_with_epilogue`]).

use super::conv::TileEpilogue;
use super::spec_op;
use crate::registry::CustomOpDef;
use crate::spec::{allocate, Outputs};
use crate::{
    find, AttrKind, AttrSpec, Attrs, Backend, Family, OpContext, OpDef, OutputPlan, TypeConstraint,
};
use std::cell::RefCell;
use std::sync::OnceLock;
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Error, Result, TensorMut, TensorView};
use tfa_kernels::host::cast::cast;
use tfa_kernels::host::elementwise::{BinaryOp, UnaryOp};
use tfa_kernels::host::fused::{Arg, Instr, Op, Plan, Program};

/// The op types a fused program can hold, with their elementwise kernel.
/// One list for the kernel and the graph pass.
pub fn fusable(op: &str) -> Option<Op> {
    use BinaryOp as B;
    use UnaryOp as U;
    Some(match op {
        "Add" | "AddV2" | "BiasAdd" | "AddN" => Op::Binary(B::Add),
        "Sub" => Op::Binary(B::Sub),
        "Mul" => Op::Binary(B::Mul),
        "RealDiv" => Op::Binary(B::Div),
        "Maximum" => Op::Binary(B::Maximum),
        "Minimum" => Op::Binary(B::Minimum),
        "SquaredDifference" => Op::Binary(B::SquaredDifference),
        "Pow" => Op::Binary(B::Pow),
        "Neg" => Op::Unary(U::Neg),
        "Abs" => Op::Unary(U::Abs),
        "Square" => Op::Unary(U::Square),
        "Sqrt" => Op::Unary(U::Sqrt),
        "Rsqrt" => Op::Unary(U::Rsqrt),
        "Reciprocal" | "Inv" => Op::Unary(U::Reciprocal),
        "Exp" => Op::Unary(U::Exp),
        "Log" => Op::Unary(U::Log),
        "Relu" => Op::Unary(U::Relu),
        "Relu6" => Op::Unary(U::Relu6),
        "Elu" => Op::Unary(U::Elu),
        "Selu" => Op::Unary(U::Selu),
        "Softplus" => Op::Unary(U::Softplus),
        "Sigmoid" => Op::Unary(U::Sigmoid),
        "Tanh" => Op::Unary(U::Tanh),
        "Erf" => Op::Unary(U::Erf),
        "Erfc" => Op::Unary(U::Erfc),
        _ => return None,
    })
}

/// Products a program can follow.
pub const PRODUCTS: &[&str] = &["Conv2D", "DepthwiseConv2dNative", "MatMul", "BatchMatMulV2"];

/// Types the fused op is registered for.
pub const FUSED_TYPES: &[DType] = &[DType::F32, DType::F16, DType::BF16];

/// TensorFlow's checks of the ops whose shape rule is not plain broadcasting.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Check {
    None,
    /// BiasAdd (NHWC): a 1-D bias as long as the last axis.
    Bias,
    /// AddN: operands of identical shapes.
    SameShape,
}

/// Parses a program: `;`-separated `Op(arg,...)`, arguments `h` (the
/// product's output), `iK` (input K after the product's) and `rK` (result of
/// instruction K). AddN of n operands becomes n - 1 additions, in order.
fn parse(text: &str) -> Result<(Program, Vec<Check>)> {
    let bad = |why: &str| Error::Internal(format!("bad fused program '{text}': {why}"));
    let mut prog = Program::default();
    let mut checks = Vec::new();
    // Instruction index in the text -> register holding its result.
    let mut result_of: Vec<usize> = Vec::new();
    for ins in text.split(';').filter(|s| !s.is_empty()) {
        let (name, rest) = ins.split_once('(').ok_or_else(|| bad("missing '('"))?;
        let args_text = rest.strip_suffix(')').ok_or_else(|| bad("missing ')'"))?;
        let op = fusable(name).ok_or_else(|| bad(&format!("{name} is not fusable")))?;
        let args: Vec<Arg> = args_text
            .split(',')
            .map(|a| {
                let num = |s: &str| s.parse::<usize>().map_err(|_| bad(a));
                match a.as_bytes().first() {
                    Some(b'h') if a == "h" => Ok(Arg::Head),
                    Some(b'i') => Ok(Arg::Input(num(&a[1..])?)),
                    Some(b'r') => {
                        let k = num(&a[1..])?;
                        result_of.get(k).map(|&r| Arg::Reg(r)).ok_or_else(|| bad(a))
                    }
                    _ => Err(bad(a)),
                }
            })
            .collect::<Result<_>>()?;
        let check = match name {
            "BiasAdd" => Check::Bias,
            "AddN" => Check::SameShape,
            _ => Check::None,
        };
        let arity = if matches!(op, Op::Unary(_)) { 1 } else { 2 };
        if name == "AddN" && args.len() >= 2 {
            let mut acc = args[0];
            for &a in &args[1..] {
                prog.instrs.push(Instr {
                    op,
                    args: vec![acc, a],
                });
                checks.push(check);
                acc = Arg::Reg(prog.instrs.len() - 1);
            }
        } else if args.len() == arity {
            prog.instrs.push(Instr { op, args });
            checks.push(check);
        } else {
            return Err(bad(&format!("{name} takes {arity} arguments")));
        }
        result_of.push(prog.instrs.len() - 1);
    }
    if prog.instrs.is_empty() {
        return Err(bad("no instruction"));
    }
    Ok((prog, checks))
}

/// TensorFlow's BiasAdd and AddN errors, checked instruction by
/// instruction before broadcasting (the order the unfused ops fail in).
/// Returns the program's output shape (its last result's).
fn validate(
    prog: &Program,
    checks: &[Check],
    head: Option<&[usize]>,
    inputs: &[TensorView],
) -> Result<Vec<usize>> {
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(prog.instrs.len());
    for (ins, check) in prog.instrs.iter().zip(checks) {
        let shape_of = |a: &Arg| -> Vec<usize> {
            match *a {
                Arg::Head => head.unwrap_or(&[]).to_vec(),
                Arg::Input(k) => inputs.get(k).map(|t| t.shape.clone()).unwrap_or_default(),
                Arg::Reg(k) => shapes.get(k).cloned().unwrap_or_default(),
            }
        };
        let (x, y) = (shape_of(&ins.args[0]), ins.args.get(1).map(shape_of));
        match (check, &y) {
            (Check::Bias, Some(y)) => {
                if y.len() != 1 {
                    return Err(Error::InvalidArgument(format!(
                        "Biases must be 1D: {}",
                        fmt_shape(y)
                    )));
                }
                if x.len() < 2 {
                    return Err(Error::InvalidArgument(format!(
                        "Input tensor must be at least 2D: {}",
                        fmt_shape(&x)
                    )));
                }
                if x[x.len() - 1] != y[0] {
                    return Err(Error::InvalidArgument(format!(
                        "Must provide as many biases as the channel dimension of the input tensor: {} vs. {} in {}",
                        fmt_shape(y),
                        x[x.len() - 1],
                        fmt_shape(&x)
                    )));
                }
            }
            (Check::SameShape, Some(y)) if x != *y => {
                return Err(Error::InvalidArgument(format!(
                    "Inputs to operation AddN must have the same size and shape.  Input 0: {} != input 1: {}",
                    fmt_shape(&x),
                    fmt_shape(y)
                )));
            }
            _ => {}
        }
        shapes.push(match y {
            Some(y) => broadcast_shapes(&x, &y)?,
            None => x,
        });
    }
    shapes
        .pop()
        .ok_or_else(|| Error::Internal("an empty fused program".into()))
}

/// The context the product's own kernel runs in: the fused op's inputs and
/// attributes; its output becomes the fused op's output when the program
/// keeps its shape (the program then runs on it in place), else a scratch
/// buffer.
struct ProductCtx<'a> {
    inner: &'a dyn OpContext,
    plan_for: &'a dyn Fn(&[usize]) -> Result<Plan>,
    done: OnceLock<Done>,
    scratch: RefCell<Vec<Box<[u8]>>>,
}

/// Where the product's output went.
struct Done {
    plan: Plan,
    /// Address and byte length of the product's output.
    ptr: usize,
    len: usize,
    /// It is the fused op's output 0 (the program runs on it in place).
    in_place: bool,
}

impl OpContext for ProductCtx<'_> {
    fn node_name(&self) -> &str {
        self.inner.node_name()
    }
    fn num_inputs(&self) -> usize {
        2
    }
    fn input(&self, i: usize) -> Result<TensorView<'_>> {
        self.inner.input(i)
    }
    fn attrs(&self) -> &Attrs {
        self.inner.attrs()
    }
    fn allocate_output(&self, i: usize, dtype: DType, shape: &[usize]) -> Result<TensorMut<'_>> {
        if i != 0 || self.done.get().is_some() {
            return Err(Error::Internal("a fused product writes one output".into()));
        }
        let plan = (self.plan_for)(shape)?;
        if plan.output_shape() == shape {
            let mut t = self.inner.allocate_output(0, dtype, shape)?;
            let b = t.bytes_mut();
            let done = Done {
                plan,
                ptr: b.as_mut_ptr() as usize,
                len: b.len(),
                in_place: true,
            };
            let _ = self.done.set(done);
            return Ok(t);
        }
        let n = tfa_core::shape::num_elements(shape)? * dtype.size();
        let mut buf = vec![0u8; n].into_boxed_slice();
        let ptr = buf.as_mut_ptr();
        self.scratch.borrow_mut().push(buf);
        let _ = self.done.set(Done {
            plan,
            ptr: ptr as usize,
            len: n,
            in_place: false,
        });
        // SAFETY: the boxed buffer lives in `scratch` until the context drops
        // and a Box's heap data does not move when the Vec grows.
        Ok(unsafe { TensorMut::from_raw(dtype, shape.to_vec(), ptr, n) })
    }
    fn alias_output(&self, i: usize, input: usize, shape: &[usize]) -> Result<()> {
        let x = self.inner.input(input)?;
        let mut out = self.allocate_output(i, x.dtype, shape)?;
        out.bytes_mut().copy_from_slice(x.bytes());
        Ok(())
    }
    fn input_in_place(&self, _input: usize, _output: usize) -> Result<TensorMut<'_>> {
        Err(Error::Internal(
            "a fused product cannot write its input".into(),
        ))
    }
    fn matrix_lowp(&self) -> Option<DType> {
        self.inner.matrix_lowp()
    }
}

thread_local! {
    /// Float32 copies of one tile's rows of a bfloat16 program's full-size
    /// operands, reused by every tile this thread finishes.
    static WIDE_ROWS: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A bfloat16 Conv2D whose program runs on each tile's float32 accumulators
/// and is rounded to bfloat16 once, as oneDNN's and XLA's bfloat16 fusions
/// do: within one bfloat16 rounding of the unfused ops, which round after
/// every op. Small operands (bias, per-channel scale) are widened once per
/// call, full-size ones (a residual) one tile's rows at a time, in cache.
/// Returns whether the program ran (blocked programs that keep the head's
/// shape).
fn bf16_conv_with_epilogue(
    pctx: &ProductCtx,
    prog: &Program,
    operands: &[TensorView],
) -> Result<bool> {
    let widen = |t: &TensorView| -> Result<Vec<f32>> {
        let mut w = vec![0f32; t.num_elements()];
        cast(
            t,
            &mut TensorMut::from_slice(t.shape.clone(), &mut w),
            false,
        )?;
        Ok(w)
    };
    // Operands as long as a whole number of output rows are widened per
    // tile (`None` here); the others once.
    let done = &pctx.done;
    let head_rows = |d: &Done| -> (usize, usize) {
        let s = d.plan.output_shape();
        let cols = s.last().copied().unwrap_or(1).max(1);
        (s.iter().product::<usize>() / cols, cols)
    };
    let small: OnceLock<Result<Vec<Option<Vec<f32>>>>> = OnceLock::new();
    let plan32: OnceLock<Option<Plan>> = OnceLock::new();
    let epilogue = |row0: usize, rows: &mut [f32]| -> Result<()> {
        let d = done
            .get()
            .ok_or_else(|| Error::Internal("epilogue before the output".into()))?;
        if !(d.in_place && d.plan.is_blocked()) {
            return Ok(());
        }
        let (all_rows, cols) = head_rows(d);
        let small = small
            .get_or_init(|| {
                operands
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        if d.plan.input_per_row(k) {
                            Ok(None)
                        } else {
                            widen(t).map(Some)
                        }
                    })
                    .collect()
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let n = rows.len() / cols;
        // A fresh buffer when this thread's is in use (rayon may run another
        // tile's epilogue here while an op of this one waits on the pool).
        WIDE_ROWS.with(|w| -> Result<()> {
            let mut spare = Vec::new();
            let mut held = w.try_borrow_mut().ok();
            let wide = held.as_deref_mut().unwrap_or(&mut spare);
            wide.resize_with(operands.len(), Vec::new);
            for ((t, s), buf) in operands.iter().zip(small).zip(wide.iter_mut()) {
                if s.is_none() {
                    // Rows [row0, row0 + n) of a full (or one-per-row) operand.
                    let width = t.num_elements().checked_div(all_rows).unwrap_or(0);
                    let src = t.data::<tfa_core::bf16>()?;
                    let part = src
                        .get(row0 * width..(row0 + n) * width)
                        .ok_or_else(|| Error::Internal("operand rows".into()))?;
                    buf.resize(part.len(), 0.0);
                    tfa_kernels::host::lowp_gemm::widen_bf16(part, buf);
                }
            }
            // Views of this tile: per-row operands start at the tile's
            // first row (the plan is run from row 0 of them).
            let views: Vec<TensorView> = operands
                .iter()
                .zip(small)
                .zip(wide.iter())
                .map(|((t, s), buf)| match s {
                    Some(v) => TensorView::from_slice(t.shape.clone(), v),
                    // The plan reads a per-row operand's bytes only.
                    None => TensorView::from_slice(vec![buf.len()], buf),
                })
                .collect();
            let plan = plan32
                .get_or_init(|| {
                    // Planned on whole-size shapes: kinds and invariants.
                    let whole: Vec<TensorView> = operands
                        .iter()
                        .zip(small)
                        .map(|(t, s)| match s {
                            Some(v) => TensorView::from_slice(t.shape.clone(), v),
                            None => TensorView::from_slice(t.shape.clone(), &[] as &[f32]),
                        })
                        .collect();
                    Plan::new(prog, DType::F32, Some(d.plan.head_shape()), &whole).ok()
                })
                .as_ref()
                .ok_or_else(|| Error::Internal("float32 plan of a bfloat16 program".into()))?;
            // SAFETY: plain numbers viewed as their bytes.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(
                    rows.as_mut_ptr().cast::<u8>(),
                    std::mem::size_of_val(rows),
                )
            };
            let head = bytes.as_ptr();
            // SAFETY: `bytes` are the tile's whole output rows; the head is
            // those same rows (the program reads a block of the head before
            // it writes the block); the per-row operands' views start at the
            // tile's first row, so the plan runs from row 0.
            unsafe { plan.run_block(Some(head), &views, 0, n, bytes) }
        })
    };
    super::conv::conv2d_run(pctx, TileEpilogue::Bf16(&epilogue))
}

/// `_TfaFused`'s plan: the parsed program, the product's declaration (if
/// any) and the output. The product's own shape rule gives the program's
/// head, and the program's checks and broadcasting the output.
struct FusedPlan {
    prog: Program,
    product: Option<&'static OpDef>,
    out: OutputPlan,
}

impl Outputs for FusedPlan {
    fn outputs(&self) -> Vec<OutputPlan> {
        vec![self.out.clone()]
    }
}

/// The program's operands: the inputs after the product's two.
fn operands<'c>(ctx: &'c dyn OpContext, product: Option<&OpDef>) -> Result<Vec<TensorView<'c>>> {
    let first = if product.is_some() { 2 } else { 0 };
    (first..ctx.num_inputs()).map(|i| ctx.input(i)).collect()
}

fn fused_plan(ctx: &dyn OpContext) -> Result<FusedPlan> {
    let a = ctx.attrs();
    let dtype = a.dtype("T")?;
    let (prog, checks) = parse(a.string("program")?)?;
    let product = match a.string("product")? {
        "" => None,
        name => Some(
            find(name)
                .map(|(_, d)| d)
                .ok_or_else(|| Error::Internal(format!("fused product {name} is not an op")))?,
        ),
    };
    let head = match product {
        None => None,
        Some(d) => {
            let outs = (d.shape_rule)(ctx)?;
            let head = outs.into_iter().next().ok_or_else(|| {
                Error::Internal(format!("fused product {} has no output", d.name))
            })?;
            Some(head.shape)
        }
    };
    let shape = validate(&prog, &checks, head.as_deref(), &operands(ctx, product)?)?;
    Ok(FusedPlan {
        prog,
        product,
        out: OutputPlan::new(dtype, shape),
    })
}

fn fused_run(ctx: &dyn OpContext, p: &FusedPlan) -> Result<()> {
    let dtype = p.out.dtype;
    let operands = operands(ctx, p.product)?;
    let Some(def) = p.product else {
        let plan = Plan::new(&p.prog, dtype, None, &operands)?;
        return plan.run(None, &operands, &mut allocate(ctx, 0, &p.out)?);
    };
    let product = def.name;
    let kernel = def
        .kernel(Backend::Host)
        .ok_or_else(|| Error::Internal(format!("fused product {product} has no kernel")))?;
    let prog = &p.prog;
    let plan_for =
        |head: &[usize]| -> Result<Plan> { Plan::new(prog, dtype, Some(head), &operands) };
    let pctx = ProductCtx {
        inner: ctx,
        plan_for: &plan_for,
        done: OnceLock::new(),
        scratch: RefCell::new(Vec::new()),
    };
    // A convolution finishes its output tile by tile while the rows are in
    // cache; other products are finished in one blocked pass after.
    let finished = if product == "Conv2D" && dtype == DType::BF16 {
        bf16_conv_with_epilogue(&pctx, prog, &operands)?
    } else if product == "Conv2D" || product == "DepthwiseConv2dNative" {
        let done = &pctx.done;
        let operands = &operands;
        let epilogue = |row0: usize, rows: &mut [u8]| -> Result<()> {
            let d = done
                .get()
                .ok_or_else(|| Error::Internal("epilogue before the output".into()))?;
            if !(d.in_place && d.plan.is_blocked()) {
                return Ok(());
            }
            let cols = d.plan.output_shape().last().copied().unwrap_or(1).max(1);
            let n = rows.len() / (cols * dtype.size());
            let head = rows.as_ptr();
            // SAFETY: `rows` are whole output rows starting at `row0`; the
            // head is those same rows (the program reads a block of the head
            // before it writes the block).
            unsafe { d.plan.run_block(Some(head), operands, row0, n, rows) }
        };
        if product == "Conv2D" {
            super::conv::conv2d_run(&pctx, TileEpilogue::Rows(&epilogue))?
        } else {
            super::conv::depthwise_run(&pctx, Some(&epilogue))?
        }
    } else {
        kernel(&pctx)?;
        false
    };
    let d = pctx
        .done
        .get()
        .ok_or_else(|| Error::Internal(format!("fused product {product} wrote no output")))?;
    let (plan, ptr, len) = (&d.plan, d.ptr as *mut u8, d.len);
    if d.in_place {
        if finished && plan.is_blocked() {
            return Ok(());
        }
        // SAFETY: `ptr` is the fused op's output 0 (allocated by the product
        // through `pctx`), alive until this kernel returns.
        let mut out = unsafe { TensorMut::from_raw(dtype, plan.output_shape().to_vec(), ptr, len) };
        return plan.run_in_place(&operands, &mut out);
    }
    let head_shape = plan.head_shape().to_vec();
    // SAFETY: the scratch buffer is alive in `pctx` and holds the product.
    let head = unsafe { TensorView::from_raw(dtype, head_shape, ptr, len) };
    let mut out = ctx.allocate_output(0, dtype, plan.output_shape())?;
    plan.run(Some(&head), &operands, &mut out)
}

const ATTRS: &[AttrSpec] = &[
    AttrSpec::new("product", AttrKind::String),
    AttrSpec::new("program", AttrKind::String),
    AttrSpec::new("strides", AttrKind::IntList),
    AttrSpec::new("padding", AttrKind::String),
    AttrSpec::new("explicit_paddings", AttrKind::IntList),
    AttrSpec::new("data_format", AttrKind::String),
    AttrSpec::new("dilations", AttrKind::IntList),
    AttrSpec::new("transpose_a", AttrKind::Bool),
    AttrSpec::new("transpose_b", AttrKind::Bool),
    AttrSpec::new("adj_x", AttrKind::Bool),
    AttrSpec::new("adj_y", AttrKind::Bool),
];

pub(crate) const OPS: &[OpDef] = &[spec_op!(
    plan: |c| fused_plan(c) => FusedPlan,
    run: |c, p| fused_run(c, p),
    def: {
        name: "_TfaFused",
        family: Family::Fused,
        summary: "tf_adapter's fusion: a Conv2D/DepthwiseConv2dNative/MatMul/BatchMatMulV2 (or nothing) and the elementwise ops after it, evaluated in cache-sized blocks",
        constraints: &[TypeConstraint { attr: "T", types: FUSED_TYPES }],
        attrs: ATTRS,
        host_memory: &[],
        int32_host_memory: &[],
    }
)];

pub(crate) const CUSTOM_OPS: &[CustomOpDef] = &[CustomOpDef {
    name: "_TfaFused",
    inputs: &["inputs: N * T"],
    outputs: &["output: T"],
    attrs: &[
        "T: {float, half, bfloat16}",
        "N: int >= 1",
        "product: string = ''",
        "program: string",
        "strides: list(int) = []",
        "padding: string = ''",
        "explicit_paddings: list(int) = []",
        "data_format: string = 'NHWC'",
        "dilations: list(int) = []",
        "transpose_a: bool = false",
        "transpose_b: bool = false",
        "adj_x: bool = false",
        "adj_y: bool = false",
        "fused_ops: list(string) = []",
    ],
}];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_parse_and_addn_unrolls() {
        let (p, checks) = parse("BiasAdd(h,i0);AddN(r0,i1,i2);Relu(r1)").unwrap();
        assert_eq!(p.instrs.len(), 4);
        assert_eq!(p.instrs[2].args, [Arg::Reg(1), Arg::Input(2)]);
        assert_eq!(p.instrs[3].args, [Arg::Reg(2)]);
        assert_eq!(
            checks,
            [Check::Bias, Check::SameShape, Check::SameShape, Check::None]
        );
        for bad in [
            "",
            "Relu(h",
            "Sin(h)",
            "Relu(h,i0)",
            "Add(h,r5)",
            "Add(h,x)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bias_and_addn_errors_are_tensorflows() {
        let (p, c) = parse("BiasAdd(h,i0)").unwrap();
        let b = [0f32; 3];
        let e = validate(
            &p,
            &c,
            Some(&[2, 4]),
            &[TensorView::from_slice(vec![3], &b)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("Must provide as many biases"), "{e}");
        let (p, c) = parse("AddN(h,i0)").unwrap();
        let x = [0f32; 4];
        let e = validate(
            &p,
            &c,
            Some(&[2, 2]),
            &[TensorView::from_slice(vec![4], &x)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("same size and shape"), "{e}");
    }

    #[test]
    fn every_fusable_op_has_an_npu_kernel() {
        for op in [
            "Add",
            "AddV2",
            "BiasAdd",
            "AddN",
            "Sub",
            "Mul",
            "RealDiv",
            "Maximum",
            "Minimum",
            "SquaredDifference",
            "Pow",
            "Neg",
            "Abs",
            "Square",
            "Sqrt",
            "Rsqrt",
            "Reciprocal",
            "Exp",
            "Log",
            "Relu",
            "Relu6",
            "Elu",
            "Selu",
            "Softplus",
            "Sigmoid",
            "Tanh",
            "Erf",
            "Erfc",
        ] {
            assert!(fusable(op).is_some(), "{op}");
            if op != "Add" {
                assert!(find(op).is_some(), "{op} is fusable but has no NPU kernel");
            }
        }
        for p in PRODUCTS {
            assert!(find(p).is_some(), "{p}");
        }
    }
}
