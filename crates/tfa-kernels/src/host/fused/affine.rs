//! Fused float32 programs that are per-channel affine chains, evaluated in
//! one pass with each value in a vector register: the epilogues of
//! convolutions and matrix products (bias, batch-norm scale and shift, a
//! residual branch with its own scale and shift, an activation).
//!
//! The chunked path (`Plan::run_fast`) runs one instruction at a time over a
//! chunk, so each instruction loads and stores every element (on Zen 4 a
//! 512-bit store takes two cycles): measured 4 cycles per 16 elements and
//! instruction, 10 ms for a bias + scale + shift + Relu epilogue over
//! [100352, 256] on one core with the tile in cache. A hand-written single
//! pass did the same in 4 ms without AVX; this is that pass for any program
//! of the shape below, so each element is loaded and stored once.
//!
//! Shape: at most two chains, each from a per-element leaf (the head or a
//! full-size input) through steps `r = (r + a) * m` with per-channel or
//! scalar `a`, `m` (an add, a subtract as the add of the negation, a
//! multiply; the identities -0.0 and 1.0 fill the other half of a step, and
//! `x + -0.0` and `x * 1.0` give `x` bit for bit), joined by one add, more
//! steps after the join, and an optional unary activation last. Each step
//! rounds like the instruction it comes from, in the same order, so the
//! result is the unfused ops' bit for bit (up to the sign of a NaN: `c - x`
//! runs as `x * -1 + c`).

use super::super::arith::Arith;
use super::super::elementwise::{visit_unary_f32, BinaryOp, UnaryOp, UnaryVisitor};
use super::{Arg, Op, Program};

/// Where a chain starts: the head or a full-size input.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Leaf {
    Head,
    Input(usize),
}

/// A value a step reads: per channel (`cols` values) or one.
#[derive(Clone, Debug)]
pub(super) enum Param {
    PerCol(Vec<f32>),
    One(f32),
}

/// One step, `r = (r + add) * mul`, as `cols` values each.
#[derive(Clone, Debug, Default)]
struct Steps {
    /// `[add_0, mul_0, add_1, mul_1, ...]`, each `cols` long.
    vals: Vec<f32>,
    /// Whether the last step's `mul` is still the identity.
    open_mul: bool,
}

impl Param {
    /// Appends this value as `cols` values.
    fn extend_into(&self, cols: usize, out: &mut Vec<f32>) {
        match self {
            Param::PerCol(v) => out.extend_from_slice(v),
            Param::One(v) => out.extend(std::iter::repeat_n(*v, cols)),
        }
    }
}

impl Steps {
    fn push(&mut self, cols: usize, add: Option<&Param>, mul: Option<&Param>) {
        let fill = |p: Option<&Param>, id: f32, out: &mut Vec<f32>| {
            p.unwrap_or(&Param::One(id)).extend_into(cols, out)
        };
        fill(add, -0.0, &mut self.vals);
        fill(mul, 1.0, &mut self.vals);
        self.open_mul = mul.is_none();
    }

    fn add(&mut self, cols: usize, a: &Param) {
        self.push(cols, Some(a), None);
    }

    fn mul(&mut self, cols: usize, m: &Param) {
        if self.open_mul {
            // The last step `(r + a) * 1` becomes `(r + a) * m`.
            let at = self.vals.len() - cols;
            self.vals.truncate(at);
            m.extend_into(cols, &mut self.vals);
            self.open_mul = false;
        } else {
            self.push(cols, None, Some(m));
        }
    }
}

/// A compiled program (see the module's comment).
#[derive(Debug)]
pub(super) struct Affine {
    cols: usize,
    first: (Leaf, Steps),
    second: Option<(Leaf, Steps)>,
    after: Steps,
    act: Option<UnaryOp>,
}

/// What an instruction's register holds while compiling.
enum Val {
    /// A chain (index into `chains`), not yet read.
    Chain(usize),
    /// Already read (a register read twice is not a chain).
    Used,
}

impl Affine {
    /// Compiles `prog` if it has the affine shape. `param(a)` gives an
    /// argument's value when it is block-invariant (a per-channel or scalar
    /// input, an invariant register), `leaf(a)` whether it is a per-element
    /// leaf; `invariant[i]` whether instruction `i` is computed once per
    /// call. `cols` is the output's last axis.
    pub(super) fn compile(
        prog: &Program,
        cols: usize,
        invariant: &[bool],
        leaf: impl Fn(&Arg) -> Option<Leaf>,
        param: impl Fn(&Arg) -> Option<Param>,
    ) -> Option<Affine> {
        let n = prog.instrs.len();
        if n == 0 || invariant[n - 1] || cols == 0 {
            return None;
        }
        let mut chains: Vec<(Leaf, Steps)> = Vec::new();
        let mut regs: Vec<Option<Val>> = (0..n).map(|_| None).collect();
        let mut joined: Option<(usize, usize)> = None;
        let mut after = Steps::default();
        let mut act = None;
        // The chain an argument continues, taking it (each register is read
        // once); `usize::MAX` stands for the joined chain.
        let take = |a: &Arg, regs: &mut Vec<Option<Val>>, chains: &mut Vec<(Leaf, Steps)>| {
            if let Some(l) = leaf(a) {
                chains.push((l, Steps::default()));
                return Some(chains.len() - 1);
            }
            match *a {
                Arg::Reg(k) => match regs[k].replace(Val::Used)? {
                    Val::Chain(c) => Some(c),
                    _ => None,
                },
                _ => None,
            }
        };
        const JOINED: usize = usize::MAX;
        for (i, ins) in prog.instrs.iter().enumerate() {
            if invariant[i] {
                continue;
            }
            let value = |a: &Arg| match *a {
                Arg::Reg(k) if !invariant[k] => None,
                _ => param(a),
            };
            let chain = match (ins.op, ins.args.as_slice()) {
                (Op::Unary(u), [x]) if i == n - 1 => {
                    act = Some(u);
                    take(x, &mut regs, &mut chains)?
                }
                (Op::Binary(b), [x, y]) => {
                    let (px, py) = (value(x), value(y));
                    match (px, py) {
                        (Some(_), Some(_)) => return None,
                        (None, None) => {
                            // Two chains joined by an add: once, from leaves.
                            if b != BinaryOp::Add || joined.is_some() {
                                return None;
                            }
                            let cx = take(x, &mut regs, &mut chains)?;
                            let cy = take(y, &mut regs, &mut chains)?;
                            if cx == JOINED || cy == JOINED {
                                return None;
                            }
                            joined = Some((cx, cy));
                            JOINED
                        }
                        (p, q) => {
                            let (elem, p, elem_first) = match (p, q) {
                                (None, Some(q)) => (x, q, true),
                                (Some(p), None) => (y, p, false),
                                _ => return None,
                            };
                            let c = take(elem, &mut regs, &mut chains)?;
                            let steps = if c == JOINED {
                                &mut after
                            } else {
                                &mut chains[c].1
                            };
                            match b {
                                BinaryOp::Add => steps.add(cols, &p),
                                BinaryOp::Mul => steps.mul(cols, &p),
                                BinaryOp::Sub if elem_first => steps.add(cols, &negate(&p)),
                                BinaryOp::Sub => {
                                    steps.mul(cols, &Param::One(-1.0));
                                    steps.add(cols, &p);
                                }
                                _ => return None,
                            }
                            c
                        }
                    }
                }
                _ => return None,
            };
            regs[i] = Some(Val::Chain(chain));
        }
        // Every chain ends in the result: the last register, read by no one.
        let root = match regs[n - 1] {
            Some(Val::Chain(c)) => c,
            _ => return None,
        };
        let live = regs[..n - 1]
            .iter()
            .any(|r| matches!(r, Some(Val::Chain(_))));
        if live {
            return None;
        }
        let (first, second) = match joined {
            Some((a, b)) if root == JOINED => {
                let (a, b) = (chains[a].clone(), chains[b].clone());
                (a, Some(b))
            }
            None if root != JOINED && chains.len() == 1 => (chains[root].clone(), None),
            _ => return None,
        };
        Some(Affine {
            cols,
            first,
            second,
            after,
            act,
        })
    }

    /// Evaluates rows `[row0, row0 + rows)` of the output into `out`
    /// (`rows * cols` elements). `head` is those rows of the head (it may be
    /// `out`); `input(k)` is full-size input `k`.
    ///
    /// # Safety
    /// `head`, when a chain starts from it, points at `rows * cols`
    /// elements; `out` may alias it (each element is read before it is
    /// written), and no full-size input may alias `out`.
    pub(super) unsafe fn run<'a>(
        &self,
        head: Option<*const f32>,
        input: impl Fn(usize) -> Option<&'a [f32]>,
        row0: usize,
        rows: usize,
        out: *mut f32,
    ) -> bool {
        let cols = self.cols;
        let src = |l: Leaf| -> Option<*const f32> {
            match l {
                Leaf::Head => head,
                Leaf::Input(k) => {
                    let d = input(k)?;
                    let (s, e) = (row0 * cols, (row0 + rows) * cols);
                    (e <= d.len()).then(|| d[s..e].as_ptr())
                }
            }
        };
        let Some(a) = src(self.first.0) else {
            return false;
        };
        let b = match &self.second {
            Some((l, _)) => match src(*l) {
                Some(p) => Some(p),
                None => return false,
            },
            None => None,
        };
        let b_steps = self.second.as_ref().map_or(&[][..], |s| &s.1.vals[..]);
        let job = Job {
            cols,
            a,
            a_steps: &self.first.1.vals,
            a_n: self.first.1.vals.len() / (2 * cols),
            b,
            b_steps,
            b_n: b_steps.len() / (2 * cols),
            after: &self.after.vals,
            after_n: self.after.vals.len() / (2 * cols),
            rows,
            out,
        };
        struct Eval<'j, 's>(&'j Job<'s>);
        impl UnaryVisitor for Eval<'_, '_> {
            type Out = ();
            fn visit<F: Fn(f32) -> f32>(self, f: F) {
                eval(self.0, f)
            }
        }
        match self.act {
            None => eval(&job, |v: f32| v),
            Some(op) => visit_unary_f32(op, Eval(&job)),
        }
        true
    }
}

fn negate(p: &Param) -> Param {
    match p {
        Param::PerCol(v) => Param::PerCol(v.iter().map(|x| -x).collect()),
        Param::One(v) => Param::One(-v),
    }
}

/// One call of [`eval`]: the leaves' rows, the steps and their counts, the
/// output. Made only by [`Affine::run`], whose contract makes `a`, `b` and
/// `out` valid for `rows * cols` elements (`out` possibly `a`); each step
/// list holds its count times `2 * cols` values.
struct Job<'s> {
    cols: usize,
    a: *const f32,
    a_steps: &'s [f32],
    a_n: usize,
    b: Option<*const f32>,
    b_steps: &'s [f32],
    b_n: usize,
    after: &'s [f32],
    after_n: usize,
    rows: usize,
    out: *mut f32,
}

/// Lanes per register block: four AVX-512 registers (eight AVX2 ones), so
/// that the loop's own instructions (pointers, step counts) are paid once
/// per four vectors and four independent chains overlap; then blocks of one
/// register, then single lanes. Measured on Zen 4, one core, a bias, scale,
/// shift and Relu epilogue over [100352, 256] in tiles of 256 rows still in
/// cache: 16 lanes per block 6.6 ms, 64 lanes 5.6 ms, the chunked path
/// 9.0-9.4 ms (with a residual read from memory 14.0 against 20.9 ms).
const LANES: usize = 64;

/// `r = (r + add) * mul` for each of the `n` steps at `steps` (each `2 *
/// cols` values: adds, then multipliers) over lanes `j..j + L`.
///
/// # Safety
/// `steps` holds `n * 2 * cols` values and `j + L <= cols`.
#[inline(always)]
unsafe fn apply<const L: usize>(
    r: &mut [f32; L],
    steps: *const f32,
    n: usize,
    cols: usize,
    j: usize,
) {
    for s in 0..n {
        // SAFETY: step `s`'s adds and multipliers at `j..j + L` (contract).
        let (add, mul) = unsafe {
            let at = steps.add(s * 2 * cols + j);
            (
                &*(at as *const [f32; L]),
                &*(at.add(cols) as *const [f32; L]),
            )
        };
        for l in 0..L {
            r[l] = <f32 as Arith>::mul(<f32 as Arith>::add(r[l], add[l]), mul[l]);
        }
    }
}

/// Columns `j..j + L` of one row (`row < job.rows`, `j + L <= job.cols`).
#[inline(always)]
fn lanes<const L: usize, F: Fn(f32) -> f32>(job: &Job, row: usize, j: usize, act: &F) {
    debug_assert!(row < job.rows && j + L <= job.cols);
    let (cols, at) = (job.cols, row * job.cols + j);
    // SAFETY: inside the job's rows (the `Job` contract and the caller's
    // bounds); the steps hold their counts' values (`Job`).
    unsafe {
        let mut r = *(job.a.add(at) as *const [f32; L]);
        apply(&mut r, job.a_steps.as_ptr(), job.a_n, cols, j);
        if let Some(b) = job.b {
            let mut q = *(b.add(at) as *const [f32; L]);
            apply(&mut q, job.b_steps.as_ptr(), job.b_n, cols, j);
            for l in 0..L {
                r[l] = <f32 as Arith>::add(r[l], q[l]);
            }
        }
        apply(&mut r, job.after.as_ptr(), job.after_n, cols, j);
        for v in r.iter_mut() {
            *v = act(*v);
        }
        // The block's reads are done (`out` may be `a`).
        *(job.out.add(at) as *mut [f32; L]) = r;
    }
}

/// The plain loop over the job's rows and columns, vectorised for the CPU
/// by [`eval`].
#[inline(always)]
fn eval_plain<F: Fn(f32) -> f32>(job: &Job, act: F) {
    let cols = job.cols;
    for row in 0..job.rows {
        let mut j = 0;
        while j + LANES <= cols {
            lanes::<LANES, F>(job, row, j, &act);
            j += LANES;
        }
        while j + 16 <= cols {
            lanes::<16, F>(job, row, j, &act);
            j += 16;
        }
        while j < cols {
            lanes::<1, F>(job, row, j, &act);
            j += 1;
        }
    }
}

widest_simd_fn! {
    /// [`eval_plain`] compiled for the widest vector unit the CPU has.
    fn eval[F: Fn(f32) -> f32](job: &Job, act: F) => eval_plain
}
