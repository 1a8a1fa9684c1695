//! Fused elementwise programs: a small DAG of elementwise ops (the epilogue
//! of a product: bias, batch-norm scale and shift, residual add, activation;
//! or a chain such as GELU or a normalisation's arithmetic) evaluated in
//! blocks of rows, so every intermediate stays in cache instead of making a
//! pass over memory per op.
//!
//! Each instruction runs through the same `elementwise::binary/unary`
//! kernels as the unfused ops, in the graph's dtype, so a fused program
//! gives bit for bit what the ops give one by one. Operands are classified
//! against the output shape once per call: whole tensors (`Full`), vectors
//! along the last axis (`Channel`, e.g. a bias), one value per row (`Row`,
//! e.g. a mean with keepdims) and scalars are cut into blocks; anything else
//! (or a product whose output is broadcast to a larger shape) makes the
//! program run once over whole tensors. Instructions whose operands are all
//! block-invariant (the batch-norm `gamma * rsqrt(var + eps)` arithmetic) are
//! evaluated once per call, not per block.

use super::elementwise::{self as ew, BinaryOp, Lane, UnaryOp};
use super::par::for_each_chunk_mut;
use tfa_core::shape::{broadcast_shapes, num_elements};
use tfa_core::{DType, Error, Result, Shape, TensorMut, TensorView};

/// Target elements per block: a few registers of this size (64 KB each in
/// float32) stay in L2, and each block costs a few small allocations per
/// instruction. 16384 rather than 4096: a GELU program on [4096,3072] 22.4 ->
/// 19.4 ms, a scale/shift/Relu on [32,56,56,64] 3.6 -> 2.6 ms (Zen 4, two
/// cores). The element-wise kernels a block calls do not split it again
/// (`par::Serial` in [`Plan::run_rows`]).
const BLOCK: usize = 16384;

/// Elements per block when a product's tile is finished ([`Plan::run_block`]).
const TILE_BLOCK: usize = 16384;

/// Elements per chunk of the float32 path ([`Plan::run_fast`]): the whole
/// program runs on one chunk before the next, so its registers stay in the
/// cache and no per-call set-up of the tensor kernels is paid. Measured on
/// Zen 4, two cores (`examples/fused_bench`, a bias + scale + shift +
/// residual + Relu program on [100352, 256]): blocks of 16384 elements
/// through the tensor kernels 22 ms; chunks of 1024 25 ms, 4096 18.9 ms,
/// 8192 18.7 ms. As a [32,56,56,256] convolution's epilogue (bias, scale,
/// shift, Relu) it cost 7.5-10 ms over the convolution's 20 ms in blocks,
/// 5.5 ms in chunks of any of these sizes.
const FAST_CHUNK: usize = 4096;

thread_local! {
    /// Registers, reused by every block this thread evaluates.
    static REGS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The float32 path's registers, `FAST_CHUNK` elements each.
    static FAST_REGS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's registers, or with fresh ones when they are
/// in use: rayon may run another block's program on this thread while an op
/// of this one waits on the pool (work stealing).
fn with_regs<T: Default + 'static, R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<T>>,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    key.with(|r| match r.try_borrow_mut() {
        Ok(mut regs) => f(&mut regs),
        Err(_) => f(&mut T::default()),
    })
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Unary(UnaryOp),
    Binary(BinaryOp),
}

impl Op {
    /// Work per element relative to an add.
    pub fn cost(self) -> usize {
        match self {
            Op::Unary(u) => u.cost(),
            Op::Binary(b) => b.cost(),
        }
    }
}

/// Where an instruction reads an operand.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// The product's output (the fused op's head), when there is one.
    Head,
    /// External input `k`.
    Input(usize),
    /// The result of instruction `k`.
    Reg(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instr {
    pub op: Op,
    pub args: Vec<Arg>,
}

/// Instructions in evaluation order; the last one is the result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    pub instrs: Vec<Instr>,
}

/// How an operand of shape `s` lines up with output shape `out`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// The output's shape: cut like the output.
    Full,
    /// Varies along the last axis only.
    Channel,
    /// One value per row (last axis 1).
    Row,
    /// One value.
    Scalar,
    /// Anything else: the program runs over whole tensors.
    Other,
}

fn kind(s: &[usize], out: &[usize]) -> Kind {
    if s == out {
        return Kind::Full;
    }
    if s.len() > out.len() {
        return Kind::Other;
    }
    let pad = out.len() - s.len();
    let dim = |i: usize| if i < pad { 1 } else { s[i - pad] };
    let r = out.len();
    if (0..r).all(|i| dim(i) == 1) {
        return Kind::Scalar;
    }
    if r >= 1 && (0..r - 1).all(|i| dim(i) == 1) && dim(r - 1) == out[r - 1] {
        return Kind::Channel;
    }
    if r >= 1 && dim(r - 1) == 1 && (0..r - 1).all(|i| dim(i) == out[i]) {
        return Kind::Row;
    }
    Kind::Other
}

impl Program {
    /// Output shapes of every instruction, with TensorFlow's broadcasting
    /// errors (the fused op fails exactly where the unfused ops would).
    pub fn shapes(&self, head: Option<&[usize]>, inputs: &[&[usize]]) -> Result<Vec<Shape>> {
        let mut out: Vec<Shape> = Vec::with_capacity(self.instrs.len());
        for (i, ins) in self.instrs.iter().enumerate() {
            let arg_shape = |a: &Arg, out: &[Shape]| -> Result<Shape> {
                Ok(match *a {
                    Arg::Head => head
                        .ok_or_else(|| {
                            Error::Internal("fused program reads a missing head".into())
                        })?
                        .to_vec(),
                    Arg::Input(k) => inputs
                        .get(k)
                        .ok_or_else(|| {
                            Error::Internal(format!(
                                "fused program reads input {k} of {}",
                                inputs.len()
                            ))
                        })?
                        .to_vec(),
                    Arg::Reg(k) if k < i => out[k].clone(),
                    Arg::Reg(k) => {
                        return Err(Error::Internal(format!(
                            "fused instruction {i} reads register {k}"
                        )))
                    }
                })
            };
            let shape = match (ins.op, ins.args.as_slice()) {
                (Op::Unary(_), [a]) => arg_shape(a, &out)?,
                (Op::Binary(_), [a, b]) => {
                    broadcast_shapes(&arg_shape(a, &out)?, &arg_shape(b, &out)?)?
                }
                _ => {
                    return Err(Error::Internal(format!(
                        "fused instruction {i} has {} arguments",
                        ins.args.len()
                    )))
                }
            };
            out.push(shape);
        }
        if out.is_empty() {
            return Err(Error::Internal("empty fused program".into()));
        }
        Ok(out)
    }
}

/// Rows `[row0, row0 + rows)` of the output, and where the head's are.
struct Block {
    head: Option<*const u8>,
    row0: usize,
    rows: usize,
    cols: usize,
}

/// One call's plan: shapes, which values are block-invariant, and the
/// invariant values themselves.
pub struct Plan {
    prog: Program,
    dtype: DType,
    head_shape: Shape,
    out_shape: Shape,
    shapes: Vec<Shape>,
    input_kinds: Vec<Kind>,
    /// Per register: computed once per call (its value lives in `invariant`).
    reg_invariant: Vec<bool>,
    invariant: Vec<Option<Vec<u8>>>,
    /// Rows are cut in blocks (else: one pass over whole tensors).
    blocked: bool,
    /// A blocked float32 program the chunked path runs ([`Plan::run_fast`]).
    fast: Option<Fast>,
    /// A blocked float32 program of per-channel affine chains, run in one
    /// pass ([`affine`]); taken before `fast`.
    affine: Option<affine::Affine>,
}

/// What the float32 chunked path needs beyond the plan: which registers hold
/// one value per row (the others hold every element).
struct Fast {
    per_row: Vec<bool>,
}

/// One chunk of a block of rows: `n` rows of `w` columns from column `c0`,
/// starting at the block's row `r` (row `row0 + r` of the output); `head`
/// points at the block's first head element, when there is a head.
#[derive(Clone, Copy)]
struct Chunk {
    head: Option<*const f32>,
    row0: usize,
    r: usize,
    n: usize,
    c0: usize,
    w: usize,
    cols: usize,
}

impl Chunk {
    /// Its first element, counted from the block's first.
    fn at(&self) -> usize {
        self.r * self.cols + self.c0
    }
}

/// Whether `p` may be read as float32 (the float32 paths' precondition).
fn f32_aligned(p: *const u8) -> bool {
    (p as usize).is_multiple_of(std::mem::align_of::<f32>())
}

/// `b` as float32 values, when it is float32-aligned.
fn as_f32(b: &[u8]) -> Option<&[f32]> {
    // SAFETY: every bit pattern is a float32; align_to only yields a middle
    // part that is aligned.
    match unsafe { b.align_to::<f32>() } {
        ([], v, []) => Some(v),
        _ => None,
    }
}

fn view<'a>(dtype: DType, shape: Shape, bytes: &'a [u8]) -> TensorView<'a> {
    // SAFETY: `bytes` holds exactly `shape` elements of `dtype` (callers
    // slice it that way) and outlives the view.
    unsafe { TensorView::from_raw(dtype, shape, bytes.as_ptr(), bytes.len()) }
}

fn run_instr(op: Op, args: &[TensorView], out: &mut TensorMut) -> Result<()> {
    match (op, args) {
        (Op::Unary(u), [x]) => ew::unary(u, x, out, false),
        (Op::Binary(b), [x, y]) => ew::binary(b, x, y, out, None),
        _ => Err(Error::Internal("fused instruction arity".into())),
    }
}

impl Plan {
    /// Plans `prog` for a head of shape `head` (if any) and `inputs`, all of
    /// `dtype`. The output shape is the last instruction's.
    pub fn new(
        prog: &Program,
        dtype: DType,
        head: Option<&[usize]>,
        inputs: &[TensorView],
    ) -> Result<Plan> {
        if let Some(t) = inputs.iter().find(|t| t.dtype != dtype) {
            return Err(Error::InvalidArgument(format!(
                "fused elementwise op: operand of type {} in a {dtype} program",
                t.dtype
            )));
        }
        let in_shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
        let shapes = prog.shapes(head, &in_shapes)?;
        let out_shape = shapes[shapes.len() - 1].clone();
        let input_kinds: Vec<Kind> = in_shapes.iter().map(|s| kind(s, &out_shape)).collect();
        let head_full = head.is_none_or(|h| h == out_shape.as_slice());
        let blocked = !out_shape.is_empty() && head_full && !input_kinds.contains(&Kind::Other);
        let mut reg_invariant = vec![false; prog.instrs.len()];
        for (i, ins) in prog.instrs.iter().enumerate() {
            reg_invariant[i] = ins.args.iter().all(|a| match *a {
                Arg::Head => false,
                Arg::Input(k) => matches!(input_kinds[k], Kind::Channel | Kind::Scalar),
                Arg::Reg(k) => reg_invariant[k],
            });
        }
        let mut plan = Plan {
            prog: prog.clone(),
            dtype,
            head_shape: head.map(<[usize]>::to_vec).unwrap_or_default(),
            out_shape,
            shapes,
            input_kinds,
            reg_invariant,
            invariant: vec![None; prog.instrs.len()],
            blocked,
            fast: None,
            affine: None,
        };
        if plan.blocked {
            for i in 0..prog.instrs.len() {
                if plan.reg_invariant[i] {
                    let shape = plan.shapes[i].clone();
                    let mut buf = vec![0u8; num_elements(&shape)? * dtype.size()];
                    {
                        let args: Vec<TensorView> = plan.prog.instrs[i]
                            .args
                            .iter()
                            .map(|a| plan.whole_arg(a, None, inputs))
                            .collect::<Result<_>>()?;
                        // SAFETY: `buf` has room for `shape` in `dtype`.
                        let mut out = unsafe {
                            TensorMut::from_raw(dtype, shape, buf.as_mut_ptr(), buf.len())
                        };
                        run_instr(plan.prog.instrs[i].op, &args, &mut out)?;
                    }
                    plan.invariant[i] = Some(buf);
                }
            }
            plan.fast = plan.fast_plan();
            plan.affine = plan.affine_plan(head.is_some(), inputs);
        }
        Ok(plan)
    }

    /// The one-pass plan of a float32 program of affine chains (see
    /// [`affine`]), reading the call's per-channel inputs and invariant
    /// registers now.
    fn affine_plan(&self, has_head: bool, inputs: &[TensorView]) -> Option<affine::Affine> {
        if self.dtype != DType::F32 {
            return None;
        }
        let cols = *self.out_shape.last()?;
        let leaf = |a: &Arg| match *a {
            Arg::Head if has_head => Some(affine::Leaf::Head),
            Arg::Input(k) if self.input_kinds[k] == Kind::Full => Some(affine::Leaf::Input(k)),
            _ => None,
        };
        let values = |v: &[f32]| match v.len() {
            1 => Some(affine::Param::One(v[0])),
            n if n == cols => Some(affine::Param::PerCol(v.to_vec())),
            _ => None,
        };
        let param = |a: &Arg| match *a {
            Arg::Input(k) => match self.input_kinds[k] {
                Kind::Channel | Kind::Scalar => values(inputs[k].data::<f32>().ok()?),
                _ => None,
            },
            Arg::Reg(k) => values(as_f32(self.invariant[k].as_deref()?)?),
            Arg::Head => None,
        };
        affine::Affine::compile(&self.prog, cols, &self.reg_invariant, leaf, param)
    }

    /// The float32 chunked path's plan, when every instruction has a chunk
    /// kernel and every register holds every element or one per row.
    fn fast_plan(&self) -> Option<Fast> {
        let n = self.prog.instrs.len();
        if self.dtype != DType::F32 || self.reg_invariant[n - 1] {
            return None;
        }
        let mut per_row = vec![false; n];
        for (i, ins) in self.prog.instrs.iter().enumerate() {
            if self.reg_invariant[i] {
                continue;
            }
            if let Op::Binary(b) = ins.op {
                if !ew::binary_f32_has(b) {
                    return None;
                }
            }
            per_row[i] = match kind(&self.shapes[i], &self.out_shape) {
                Kind::Full => false,
                Kind::Row => true,
                _ => return None,
            };
        }
        // Invariant registers are read in place as float32 (a `Vec<u8>` from
        // the allocator is aligned in practice; the general path otherwise).
        let aligned = self.invariant.iter().flatten().all(|b| as_f32(b).is_some());
        aligned.then_some(Fast { per_row })
    }

    pub fn output_shape(&self) -> &[usize] {
        &self.out_shape
    }

    /// The head's shape the plan was made for (empty without a head).
    pub fn head_shape(&self) -> &[usize] {
        &self.head_shape
    }

    /// Evaluates the program over `out`, which holds the head (the plan's
    /// head shape is its output shape) and receives the result.
    pub fn run_in_place(&self, inputs: &[TensorView], out: &mut TensorMut) -> Result<()> {
        if self.head_shape != self.out_shape {
            return Err(Error::Internal(
                "in-place fused program changes the shape".into(),
            ));
        }
        if !self.blocked {
            let copy = out.as_view().bytes().to_vec();
            let head = view(self.dtype, self.out_shape.clone(), &copy);
            return self.run_whole(Some(&head), inputs, out);
        }
        let head = out.as_view().bytes().as_ptr();
        // SAFETY: run_rows reads each block of the head before writing the
        // same block of the output, and the blocks are disjoint.
        let head = unsafe {
            TensorView::from_raw(
                self.dtype,
                self.out_shape.clone(),
                head,
                out.bytes_mut().len(),
            )
        };
        self.run(Some(&head), inputs, out)
    }

    /// Rows of the output (all but the last axis) and the row length.
    fn rows_cols(&self) -> (usize, usize) {
        let c = *self.out_shape.last().unwrap_or(&1);
        let n: usize = self.out_shape.iter().product();
        (n.checked_div(c).unwrap_or(0), c)
    }

    /// An argument over the whole call (no blocking).
    fn whole_arg<'a>(
        &'a self,
        a: &Arg,
        head: Option<&TensorView<'a>>,
        inputs: &[TensorView<'a>],
    ) -> Result<TensorView<'a>> {
        Ok(match *a {
            Arg::Head => head
                .ok_or_else(|| Error::Internal("fused program: no head".into()))?
                .clone(),
            Arg::Input(k) => inputs[k].clone(),
            Arg::Reg(k) => {
                let b = self.invariant[k]
                    .as_ref()
                    .ok_or_else(|| Error::Internal("register not computed".into()))?;
                view(self.dtype, self.shapes[k].clone(), b)
            }
        })
    }

    /// Evaluates the program over rows `[row0, row0 + rows)` into `out`
    /// (those rows of the output, `rows * cols` elements). `head` is the same
    /// rows of the product's output; it may be `out` itself.
    ///
    /// # Safety
    /// `head`, when given, points at `rows * cols` valid elements of the plan's
    /// dtype, and `out` is `rows * cols` elements; they may alias (the head is
    /// read before `out` is written). `head` must be given when the plan was
    /// made with a head (its program reads it).
    pub unsafe fn run_rows(
        &self,
        head: Option<*const u8>,
        inputs: &[TensorView],
        row0: usize,
        rows: usize,
        out: &mut [u8],
        regs: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let (_, cols) = self.rows_cols();
        let sz = self.dtype.size();
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        if let Some(a) = &self.affine {
            if f32_aligned(out.as_ptr()) && head.is_none_or(f32_aligned) {
                let input = |k: usize| inputs.get(k).and_then(|t| t.data::<f32>().ok());
                // SAFETY: this function's contract (`head` and `out` hold the
                // block's `rows * cols` elements, both float32-aligned;
                // inputs are not the output).
                let done = unsafe {
                    a.run(
                        head.map(|h| h as *const f32),
                        input,
                        row0,
                        rows,
                        out.as_mut_ptr() as *mut f32,
                    )
                };
                if done {
                    return Ok(());
                }
            }
        }
        if let Some(fast) = &self.fast {
            // SAFETY: this function's contract.
            if unsafe { self.run_fast(fast, head, inputs, row0, rows, out)? } {
                return Ok(());
            }
        }
        // A block is one task already (of `run`'s blocks or a product's
        // tiles): its instructions do not split it again.
        let _serial = super::par::Serial::enter();
        if regs.len() < self.prog.instrs.len() {
            regs.resize_with(self.prog.instrs.len(), Vec::new);
        }
        let full: Shape = vec![rows, cols];
        let blk = Block {
            head,
            row0,
            rows,
            cols,
        };
        // Block shapes of the non-invariant registers.
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.prog.instrs.len());
        for (i, ins) in self.prog.instrs.iter().enumerate() {
            if self.invariant[i].is_some() {
                shapes.push(Shape::new()); // not read: block_arg views it
                continue;
            }
            let s = {
                let args: Vec<TensorView> = ins
                    .args
                    .iter()
                    // SAFETY: `blk.head` is the caller's head: present when
                    // the program reads it, with `rows * cols` elements (this
                    // function's contract).
                    .map(|a| unsafe { self.block_arg(a, &blk, inputs, regs, &shapes) })
                    .collect();
                let mut s = args[0].shape.clone();
                for a in &args[1..] {
                    s = broadcast_shapes(&s, &a.shape)?;
                }
                s
            };
            let bytes = num_elements(&s)? * sz;
            let last = i + 1 == self.prog.instrs.len();
            let reads_aliased_head = ins.args.contains(&Arg::Head) && head == Some(out.as_ptr());
            if last && bytes == out.len() && !reads_aliased_head {
                // The result goes straight to the output (no copy).
                let args: Vec<TensorView> = ins
                    .args
                    .iter()
                    // SAFETY: as above.
                    .map(|a| unsafe { self.block_arg(a, &blk, inputs, regs, &shapes) })
                    .collect();
                // SAFETY: `out` is an exclusive slice of `out.len()` bytes, and
                // no argument reads it: the head may alias `out` but this
                // branch is not taken when the instruction reads an aliased
                // head.
                let mut o = unsafe {
                    TensorMut::from_raw(self.dtype, full.clone(), out.as_mut_ptr(), out.len())
                };
                return run_instr(ins.op, &args, &mut o);
            }
            let mut buf = std::mem::take(&mut regs[i]);
            buf.resize(bytes, 0);
            {
                let args: Vec<TensorView> = ins
                    .args
                    .iter()
                    // SAFETY: as above.
                    .map(|a| unsafe { self.block_arg(a, &blk, inputs, regs, &shapes) })
                    .collect();
                // SAFETY: `buf` is this register's own buffer (taken out of
                // `regs`, so no argument views it), `bytes` long.
                let mut o = unsafe {
                    TensorMut::from_raw(self.dtype, s.clone(), buf.as_mut_ptr(), buf.len())
                };
                run_instr(ins.op, &args, &mut o)?;
            }
            regs[i] = buf;
            shapes.push(s);
        }
        let last = self.prog.instrs.len() - 1;
        let result = match &self.invariant[last] {
            Some(b) => b.as_slice(),
            None => regs[last].as_slice(),
        };
        if result.len() == out.len() {
            out.copy_from_slice(result);
        } else {
            // An invariant result broadcast over the block (e.g. a program that
            // ignores the head): expand it.
            let shape = if result.len() == sz {
                vec![]
            } else {
                vec![cols]
            };
            let src = view(self.dtype, shape, result);
            // SAFETY: `out` is an exclusive slice of `out.len()` bytes; `src`
            // is a plan or register buffer, not `out`.
            let mut o = unsafe {
                TensorMut::from_raw(self.dtype, full.clone(), out.as_mut_ptr(), out.len())
            };
            super::broadcast::broadcast_to(&src, &mut o)?;
        }
        Ok(())
    }

    /// [`Plan::run_rows`] for a float32 program: chunks of whole rows (or of
    /// one row, when rows are longer than [`FAST_CHUNK`]) run the whole
    /// program, its registers (16 KB each) in L1 or L2, through the element
    /// functions the tensor kernels use (the same bits). False when the
    /// buffers are not float32-aligned (the caller takes the general path).
    ///
    /// # Safety
    /// As for `run_rows`.
    unsafe fn run_fast(
        &self,
        fast: &Fast,
        head: Option<*const u8>,
        inputs: &[TensorView],
        row0: usize,
        rows: usize,
        out: &mut [u8],
    ) -> Result<bool> {
        let (_, cols) = self.rows_cols();
        if !f32_aligned(out.as_ptr()) || head.is_some_and(|h| !f32_aligned(h)) {
            return Ok(false);
        }
        let out = out.as_mut_ptr() as *mut f32;
        let head = head.map(|h| h as *const f32);
        let (n_rows, w_max) = if cols <= FAST_CHUNK {
            (FAST_CHUNK / cols, cols)
        } else {
            (1, FAST_CHUNK)
        };
        let eval = |regs: &mut Vec<f32>| -> Result<()> {
            regs.resize(self.prog.instrs.len() * FAST_CHUNK, 0.0);
            for r in (0..rows).step_by(n_rows) {
                for c0 in (0..cols).step_by(w_max) {
                    let ch = Chunk {
                        head,
                        row0,
                        r,
                        n: n_rows.min(rows - r),
                        c0,
                        w: w_max.min(cols - c0),
                        cols,
                    };
                    // SAFETY: the chunk lies inside the block's `rows *
                    // cols` elements of `head` and `out` (this function's
                    // contract; both float32-aligned, checked above).
                    unsafe { self.fast_chunk(fast, &ch, inputs, out, regs)? };
                }
            }
            Ok(())
        };
        with_regs(&FAST_REGS, eval)?;
        Ok(true)
    }

    /// Runs the whole program on one chunk, its registers in `regs` (one
    /// [`FAST_CHUNK`] run per instruction), the last into `out`.
    ///
    /// # Safety
    /// `ch.head` (when the program reads it) and `out` point at the block's
    /// first float32 element, and the chunk lies inside the block; the
    /// head may be `out` (each instruction reading it runs before the output
    /// chunk is written).
    unsafe fn fast_chunk(
        &self,
        fast: &Fast,
        ch: &Chunk,
        inputs: &[TensorView],
        out: *mut f32,
        regs: &mut [f32],
    ) -> Result<()> {
        let instrs = &self.prog.instrs;
        let last = instrs.len() - 1;
        let aliased = ch.head == Some(out as *const f32);
        for (i, ins) in instrs.iter().enumerate() {
            if self.reg_invariant[i] {
                continue;
            }
            let (done, rest) = regs.split_at_mut(i * FAST_CHUNK);
            let per_row = fast.per_row[i];
            // SAFETY: the head's chunk lies inside its block (this function's
            // contract) and nothing writes it while these views live: an
            // aliased head is never an argument of the instruction writing
            // the output.
            let lane = |a: &Arg| unsafe { self.fast_lane(fast, a, ch, inputs, done, per_row) };
            let len = if per_row { ch.n } else { ch.n * ch.w };
            let to_out = i == last && !(aliased && ins.args.contains(&Arg::Head));
            let dst: &mut [f32] = if to_out {
                // SAFETY: the output chunk lies inside the block (contract)
                // and no live view reads it.
                unsafe { std::slice::from_raw_parts_mut(out.add(ch.at()), len) }
            } else {
                &mut rest[..len]
            };
            match (ins.op, ins.args.as_slice()) {
                (Op::Unary(u), [x]) => match lane(x)? {
                    Lane::Each(x) => ew::unary_f32(u, Some(x), dst),
                    _ => return Err(Error::Internal("fused chunk operand".into())),
                },
                (Op::Binary(b), [x, y]) => {
                    let w = if per_row { 1 } else { ch.w };
                    if !ew::binary_f32(b, lane(x)?, lane(y)?, w, dst) {
                        return Err(Error::Internal("fused chunk op".into()));
                    }
                }
                _ => return Err(Error::Internal("fused instruction arity".into())),
            }
            if i == last && !to_out {
                // SAFETY: as for `dst` above; the head views of this chunk
                // are gone.
                unsafe { std::slice::from_raw_parts_mut(out.add(ch.at()), len) }
                    .copy_from_slice(&rest[..len]);
            }
        }
        Ok(())
    }

    /// Argument `a` over one chunk, for an instruction whose register holds
    /// one value per row (`per_row`: its per-row operands are then runs of
    /// `n`, one column wide) or every element; `done` holds the registers
    /// computed before it.
    ///
    /// # Safety
    /// As for [`Plan::fast_chunk`]; the head's chunk is not written while
    /// the returned lane lives.
    unsafe fn fast_lane<'a>(
        &'a self,
        fast: &Fast,
        a: &Arg,
        ch: &Chunk,
        inputs: &[TensorView<'a>],
        done: &'a [f32],
        per_row: bool,
    ) -> Result<Lane<'a>> {
        let (n, w) = (ch.n, ch.w);
        let rows = |v: &'a [f32]| {
            if per_row {
                Lane::Each(v)
            } else {
                Lane::PerRow(v)
            }
        };
        Ok(match *a {
            // SAFETY: this function's contract (the dangling pointer is never
            // used: `Plan::new` rejects programs reading a missing head).
            Arg::Head => Lane::Each(unsafe {
                std::slice::from_raw_parts(
                    ch.head
                        .unwrap_or(std::ptr::NonNull::dangling().as_ptr())
                        .add(ch.at()),
                    n * w,
                )
            }),
            Arg::Input(k) => {
                let d = inputs[k].data::<f32>()?;
                match self.input_kinds[k] {
                    Kind::Full => {
                        let s = (ch.row0 + ch.r) * ch.cols + ch.c0;
                        Lane::Each(&d[s..s + n * w])
                    }
                    Kind::Row => rows(&d[ch.row0 + ch.r..ch.row0 + ch.r + n]),
                    Kind::Channel => Lane::PerCol(&d[ch.c0..ch.c0 + w]),
                    _ => Lane::One(d[0]),
                }
            }
            Arg::Reg(k) => match self.invariant[k].as_deref().and_then(as_f32) {
                Some([v]) => Lane::One(*v),
                Some(v) => Lane::PerCol(&v[ch.c0..ch.c0 + w]),
                None if fast.per_row[k] => rows(&done[k * FAST_CHUNK..k * FAST_CHUNK + n]),
                None => Lane::Each(&done[k * FAST_CHUNK..k * FAST_CHUNK + n * w]),
            },
        })
    }

    /// Is input `k` cut into blocks of rows (a full-size or one-per-row
    /// operand) rather than read whole?
    pub fn input_per_row(&self, k: usize) -> bool {
        matches!(self.input_kinds.get(k), Some(Kind::Full | Kind::Row))
    }

    /// Can the program run block by block (`run_block`)?
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// [`Plan::run_rows`] with this thread's registers, in blocks of about
    /// [`TILE_BLOCK`] elements: a product's output tile can be megabytes,
    /// and registers of its size would leave the cache (measured: the
    /// float32 epilogue of a bfloat16 ResNet50 took 1.6x the time on whole
    /// tiles).
    ///
    /// # Safety
    /// As for `run_rows`.
    pub unsafe fn run_block(
        &self,
        head: Option<*const u8>,
        inputs: &[TensorView],
        row0: usize,
        rows: usize,
        out: &mut [u8],
    ) -> Result<()> {
        let (_, cols) = self.rows_cols();
        let row_bytes = cols * self.dtype.size();
        if rows == 0 || row_bytes == 0 {
            return Ok(());
        }
        let per = (TILE_BLOCK / cols).max(1);
        with_regs(&REGS, |regs| {
            let len = (rows * row_bytes).min(out.len());
            for (b, chunk) in out[..len].chunks_mut(per * row_bytes).enumerate() {
                let r0 = b * per;
                let n = chunk.len() / row_bytes;
                // SAFETY: rows [r0, r0 + n) of the caller's head and output
                // (this function's contract covers all `rows` of both).
                unsafe {
                    let h = head.map(|p| p.add(r0 * row_bytes));
                    self.run_rows(h, inputs, row0 + r0, n, chunk, regs)?;
                }
            }
            Ok(())
        })
    }

    /// Argument `a` over one block of rows.
    ///
    /// # Safety
    /// As for `run_rows`: when `a` is the head, `blk.head` is given and points
    /// at `rows * cols` valid elements.
    unsafe fn block_arg<'a>(
        &'a self,
        a: &Arg,
        blk: &Block,
        inputs: &'a [TensorView<'a>],
        regs: &'a [Vec<u8>],
        shapes: &[Shape],
    ) -> TensorView<'a> {
        let sz = self.dtype.size();
        let (row0, rows, cols) = (blk.row0, blk.rows, blk.cols);
        let slice_rows = |t: &TensorView<'a>, len: usize| -> TensorView<'a> {
            let b = t.bytes();
            view(
                self.dtype,
                vec![rows, len],
                &b[row0 * len * sz..(row0 + rows) * len * sz],
            )
        };
        match *a {
            Arg::Head => {
                // SAFETY: the caller guarantees the head is given and has
                // rows * cols elements (the dangling fallback is never used:
                // `Plan::new` rejects programs reading a missing head).
                let b = unsafe {
                    std::slice::from_raw_parts(
                        blk.head.unwrap_or(std::ptr::NonNull::dangling().as_ptr()),
                        rows * cols * sz,
                    )
                };
                view(self.dtype, vec![rows, cols], b)
            }
            Arg::Input(k) => {
                let t = &inputs[k];
                match self.input_kinds[k] {
                    Kind::Full => slice_rows(t, cols),
                    Kind::Row => slice_rows(t, 1),
                    Kind::Channel => view(self.dtype, vec![cols], t.bytes()),
                    _ => view(self.dtype, vec![], t.bytes()),
                }
            }
            Arg::Reg(k) => match &self.invariant[k] {
                // Computed from channel vectors and scalars only: one value, or
                // one per column, whatever its rank ([1, 1, 1, C] included).
                Some(b) if b.len() == sz => view(self.dtype, vec![], b),
                Some(b) => view(self.dtype, vec![cols], b),
                None => view(self.dtype, shapes[k].clone(), &regs[k]),
            },
        }
    }

    /// Evaluates the whole program into `out` (the output shape), reading
    /// the head from `head` (a full tensor) when there is one. Blocks run in
    /// parallel when the plan is blocked; otherwise one pass over whole
    /// tensors.
    pub fn run(
        &self,
        head: Option<&TensorView>,
        inputs: &[TensorView],
        out: &mut TensorMut,
    ) -> Result<()> {
        if out.shape != self.out_shape || out.dtype != self.dtype {
            return Err(Error::Internal("fused program output shape".into()));
        }
        // The blocked path reads the head through a raw pointer: it must be
        // the tensor the plan was made for.
        let reads_head = self.prog.instrs.iter().any(|i| i.args.contains(&Arg::Head));
        match head {
            Some(h) if h.shape != self.head_shape || h.dtype != self.dtype => {
                return Err(Error::Internal("fused program head shape".into()))
            }
            None if reads_head => {
                return Err(Error::Internal("fused program without its head".into()))
            }
            _ => {}
        }
        if !self.blocked {
            return self.run_whole(head, inputs, out);
        }
        let (rows, cols) = self.rows_cols();
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let sz = self.dtype.size();
        let per = self.rows_per_block(rows, cols);
        let head_ptr = head.map(|h| h.bytes().as_ptr() as usize);
        let out_bytes = out.bytes_mut();
        let work = |(b, chunk): (usize, &mut [u8]), regs: &mut Vec<Vec<u8>>| -> Result<()> {
            let row0 = b * per;
            let n = chunk.len() / (cols * sz);
            let h = head_ptr.map(|p| (p + row0 * cols * sz) as *const u8);
            // SAFETY: the head, when the program reads it, is present with
            // the plan's head shape (checked above), which for a blocked plan
            // is its output shape, so rows [row0, row0 + n) are inside it;
            // `chunk` is those rows of the output.
            unsafe { self.run_rows(h, inputs, row0, n, chunk, regs) }
        };
        if rows <= per || rayon::current_num_threads() == 1 {
            return out_bytes
                .chunks_mut(per * cols * sz)
                .enumerate()
                .try_for_each(|item| with_regs(&REGS, |regs| work(item, regs)));
        }
        let failed = std::sync::Mutex::new(None);
        for_each_chunk_mut(out_bytes, per * cols * sz, |b, chunk| {
            if let Err(e) = with_regs(&REGS, |regs| work((b, chunk), regs)) {
                failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        });
        match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Rows per block of [`Plan::run`]: `BLOCK` elements, or fewer so that
    /// every thread gets a block when the program's work pays for it (an
    /// LSTM cell's gates, sigmoids and tanhs on 32x256, ran on one core).
    fn rows_per_block(&self, rows: usize, cols: usize) -> usize {
        let per = (BLOCK / cols).max(1);
        let cost: usize = self.prog.instrs.iter().map(|i| i.op.cost()).sum();
        let row_chunk = super::par_chunk(rows * cols, cost).div_ceil(cols);
        per.min(row_chunk.max(1))
    }

    fn run_whole(
        &self,
        head: Option<&TensorView>,
        inputs: &[TensorView],
        out: &mut TensorMut,
    ) -> Result<()> {
        let mut regs: Vec<Vec<u8>> = Vec::with_capacity(self.prog.instrs.len());
        let n = self.prog.instrs.len();
        for (i, ins) in self.prog.instrs.iter().enumerate() {
            let args: Vec<TensorView> = ins
                .args
                .iter()
                .map(|a| match *a {
                    Arg::Reg(k) => Ok(view(self.dtype, self.shapes[k].clone(), &regs[k])),
                    Arg::Head => head
                        .cloned()
                        .ok_or_else(|| Error::Internal("fused program: no head".into())),
                    Arg::Input(k) => Ok(inputs[k].clone()),
                })
                .collect::<Result<_>>()?;
            // The last instruction writes the output itself, unless it reads
            // the output's memory (an in-place head is a copy, so only a
            // caller's aliasing input could): a register and a copy of a
            // whole tensor cost an SE block's scale multiply 2.5x its time.
            let out_range = out.as_view().bytes().as_ptr_range();
            let reads_out = args.iter().any(|a| {
                let r = a.bytes().as_ptr_range();
                r.start < out_range.end && out_range.start < r.end
            });
            if i + 1 == n && self.shapes[i] == out.shape && !reads_out {
                return run_instr(ins.op, &args, out);
            }
            let mut buf = vec![0u8; num_elements(&self.shapes[i])? * self.dtype.size()];
            {
                // SAFETY: `buf` has room for this instruction's shape.
                let mut o = unsafe {
                    TensorMut::from_raw(
                        self.dtype,
                        self.shapes[i].clone(),
                        buf.as_mut_ptr(),
                        buf.len(),
                    )
                };
                run_instr(ins.op, &args, &mut o)?;
            }
            drop(args);
            regs.push(buf);
        }
        out.bytes_mut().copy_from_slice(&regs[regs.len() - 1]);
        Ok(())
    }
}

mod affine;
#[cfg(test)]
mod tests;
