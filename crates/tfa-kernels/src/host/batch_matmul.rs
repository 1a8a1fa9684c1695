//! Batched matrix product with broadcast batch dims (BatchMatMulV2), one
//! `gemm` call per batch. Many small matrices run one per thread; large ones
//! let gemm thread itself. float16 computes in float32; bfloat16 (and float32
//! with `lowp` set) goes through `lowp_gemm` with float32 accumulation.

use super::arith::Arith;
use super::lowp_gemm::{lowp_gemm_strided, LowpSrc, LowpType};
use super::matmul::{gemm_strided, narrow_into};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::shape::{broadcast_shapes, fmt_shape};
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

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
    let nb: usize = batch.iter().product();
    let index = |s: &[usize]| -> Vec<usize> {
        let pad = batch.len() - s.len();
        let st = tfa_core::shape::strides(s);
        (0..nb)
            .map(|mut b| {
                let mut off = 0;
                for d in (0..batch.len()).rev() {
                    let i = b % batch[d];
                    b /= batch[d];
                    if d >= pad && s[d - pad] != 1 {
                        off += i * st[d - pad];
                    }
                }
                off
            })
            .collect()
    };
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

/// `out = x @ y` per batch as planned.
pub fn batch_matmul(
    x: &TensorView,
    y: &TensorView,
    plan: &BatchPlan,
    out: &mut TensorMut,
) -> Result<()> {
    match out.dtype {
        DType::F32 => f32::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::F64 => f64::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::F16 => f16::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::BF16 => bf16::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::I32 => i32::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        DType::I64 => i64::bmm(plan, x.data()?, y.data()?, out.data_mut()?),
        d => {
            return Err(Error::Unimplemented(format!(
                "BatchMatMulV2 is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// Element types with a batched product.
pub trait BmmElem: Element {
    fn bmm(plan: &BatchPlan, x: &[Self], y: &[Self], out: &mut [Self]);
}

/// Work (multiply-adds) below which threading does not pay.
const PAR_MIN_FLOPS: usize = 1 << 18;

/// Runs `one(batch, out_matrix)` over every batch: in parallel over batches
/// when there are many, else one after another with `inner_par` set.
fn for_batches<T: Send>(
    plan: &BatchPlan,
    out: &mut [T],
    one: impl Fn(usize, &mut [T], bool) + Sync,
) {
    let mn = plan.m * plan.n;
    if mn == 0 {
        return;
    }
    let nb = plan.x_batch.len();
    let per = plan.m * plan.n * plan.k;
    let threads = rayon::current_num_threads();
    if threads > 1 && nb > 1 && per * nb >= PAR_MIN_FLOPS && (per < PAR_MIN_FLOPS || nb >= threads)
    {
        out.par_chunks_mut(mn)
            .enumerate()
            .for_each(|(b, c)| one(b, c, false));
    } else {
        let inner_par = threads > 1 && per >= PAR_MIN_FLOPS;
        for (b, c) in out.chunks_mut(mn).enumerate() {
            one(b, c, inner_par);
        }
    }
}

/// (row stride, col stride) of a stored `[r, c]` matrix read as op(matrix).
fn layout(rows: usize, cols: usize, adj: bool) -> (isize, isize) {
    let _ = rows;
    if adj {
        (1, cols as isize)
    } else {
        (cols as isize, 1)
    }
}

/// One strided product `c = x @ y` of a batched call: (m, n, k, x, x
/// strides, y, y strides, c, let it thread).
trait GemmFn<T, O>:
    Fn(usize, usize, usize, *const T, (isize, isize), *const T, (isize, isize), &mut [O], bool) + Sync
{
}
impl<T, O, F> GemmFn<T, O> for F where
    F: Fn(usize, usize, usize, *const T, (isize, isize), *const T, (isize, isize), &mut [O], bool)
        + Sync
{
}

/// The batched product over `gemm`, which must accept any pointers and
/// strides that address only elements inside `x` and `y`.
fn bmm_with<T: Sync, O: Send + Default + Copy>(
    plan: &BatchPlan,
    x: &[T],
    y: &[T],
    out: &mut [O],
    gemm: impl GemmFn<T, O>,
) {
    let (m, k, n) = (plan.m, plan.k, plan.n);
    let xs = m * k;
    let ys = k * n;
    // Stored shapes: x is [m,k] or [k,m]; y is [k,n] or [n,k].
    let (xrs, xcs) = if plan.p.adj_x {
        layout(k, m, true)
    } else {
        layout(m, k, false)
    };
    let (yrs, ycs) = if plan.p.adj_y {
        layout(n, k, true)
    } else {
        layout(k, n, false)
    };
    // x @ W with W shared by every batch (Keras Dense on a 3-D input) is one
    // tall product: [batches*m, k] @ [k, n].
    let nb = plan.x_batch.len();
    let shared_y = plan.y_batch.iter().all(|&v| v == plan.y_batch[0]);
    let packed_x = !plan.p.adj_x && plan.x_batch.iter().enumerate().all(|(i, &v)| v == i);
    if nb > 1 && shared_y && packed_x && k > 0 && m * n > 0 {
        let rows = nb * m;
        // In bounds: x holds nb*m*k elements row-major, y's shared matrix
        // starts at y_batch[0]*k*n; out holds rows*n.
        gemm(
            rows,
            n,
            k,
            x.as_ptr(),
            (k as isize, 1),
            y[plan.y_batch[0] * ys..].as_ptr(),
            (yrs, ycs),
            out,
            rows * n * k >= PAR_MIN_FLOPS,
        );
        return;
    }
    for_batches(plan, out, |b, c, par| {
        if k == 0 {
            c.fill(O::default());
            return;
        }
        // In bounds: offsets and strides address only elements inside x/y
        // (validated shapes); c is an m*n output block.
        gemm(
            m,
            n,
            k,
            x[plan.x_batch[b] * xs..].as_ptr(),
            (xrs, xcs),
            y[plan.y_batch[b] * ys..].as_ptr(),
            (yrs, ycs),
            c,
            par,
        );
    });
}

/// `gemm_strided` as a [`GemmFn`].
#[allow(clippy::too_many_arguments)]
fn float_gemm<T: Element + Arith>(
    m: usize,
    n: usize,
    k: usize,
    a: *const T,
    sa: (isize, isize),
    b: *const T,
    sb: (isize, isize),
    c: &mut [T],
    par: bool,
) {
    // SAFETY: `bmm_with` passes pointers and strides inside its operands and
    // an m*n output block that aliases neither.
    unsafe { gemm_strided(m, n, k, a, sa, b, sb, c, par) }
}

/// `lowp_gemm_strided` in `lowp` as a [`GemmFn`].
fn lowp_gemm<T: LowpSrc>(lowp: LowpType) -> impl GemmFn<T, f32> {
    move |m, n, k, a, sa, b, sb, c, par| {
        // SAFETY: as `float_gemm`.
        unsafe { lowp_gemm_strided(m, n, k, a, sa, b, sb, c, lowp, par) }
    }
}

impl BmmElem for f32 {
    fn bmm(plan: &BatchPlan, x: &[f32], y: &[f32], out: &mut [f32]) {
        match plan.p.lowp.and_then(LowpType::from_dtype) {
            Some(l) => bmm_with(plan, x, y, out, lowp_gemm(l)),
            None => bmm_with(plan, x, y, out, float_gemm::<f32>),
        }
    }
}

impl BmmElem for f64 {
    fn bmm(plan: &BatchPlan, x: &[f64], y: &[f64], out: &mut [f64]) {
        bmm_with(plan, x, y, out, float_gemm::<f64>)
    }
}

impl BmmElem for bf16 {
    fn bmm(plan: &BatchPlan, x: &[bf16], y: &[bf16], out: &mut [bf16]) {
        let mut wo = vec![0f32; out.len()];
        bmm_with(plan, x, y, &mut wo, lowp_gemm(LowpType::Bf16));
        narrow_into(&wo, out, bf16::from_f32);
    }
}

impl BmmElem for f16 {
    fn bmm(plan: &BatchPlan, x: &[f16], y: &[f16], out: &mut [f16]) {
        let wx: Vec<f32> = x.par_iter().map(|v| v.to_f32()).collect();
        let wy: Vec<f32> = y.par_iter().map(|v| v.to_f32()).collect();
        let mut wo = vec![0f32; out.len()];
        f32::bmm(plan, &wx, &wy, &mut wo);
        narrow_into(&wo, out, f16::from_f32);
    }
}

macro_rules! int_bmm {
    ($t:ty) => {
        impl BmmElem for $t {
            fn bmm(plan: &BatchPlan, x: &[$t], y: &[$t], out: &mut [$t]) {
                let (m, k, n) = (plan.m, plan.k, plan.n);
                let (xrs, xcs) = if plan.p.adj_x { (1, m) } else { (k, 1) };
                let (yrs, ycs) = if plan.p.adj_y { (1, k) } else { (n, 1) };
                for_batches(plan, out, |b, c, _| {
                    let xo = plan.x_batch[b] * m * k;
                    let yo = plan.y_batch[b] * k * n;
                    for i in 0..m {
                        let row = &mut c[i * n..(i + 1) * n];
                        row.fill(0);
                        for p in 0..k {
                            let a = x[xo + i * xrs + p * xcs];
                            for (j, o) in row.iter_mut().enumerate() {
                                *o = <$t as Arith>::add(
                                    *o,
                                    <$t as Arith>::mul(a, y[yo + p * yrs + j * ycs]),
                                );
                            }
                        }
                    }
                });
            }
        }
    };
}
int_bmm!(i32);
int_bmm!(i64);

// ---------------------------------------------------------------- Einsum ----

/// A dim label: a letter's code, or `-j` for the j-th ellipsis dim from the
/// right.
type Label = i32;

/// A parsed einsum equation with ellipses expanded for the given input ranks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumSpec {
    pub inputs: Vec<Vec<Label>>,
    pub output: Vec<Label>,
}

fn parse_subscripts(s: &str) -> Result<(Vec<Label>, Option<usize>)> {
    let mut labels = Vec::new();
    let mut ellipsis = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("...") {
            if ellipsis.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "Found more than one ellipsis in subscripts: {s}"
                )));
            }
            ellipsis = Some(labels.len());
            rest = &rest[3..];
        } else if c.is_ascii_alphabetic() {
            labels.push(c as Label);
            rest = &rest[1..];
        } else {
            return Err(Error::InvalidArgument(format!(
                "Invalid character '{c}' in einsum subscripts: {s}"
            )));
        }
    }
    Ok((labels, ellipsis))
}

/// Parses `equation` ("ab,bc->ac", with optional "...") for inputs of `ranks`.
pub fn einsum_spec(equation: &str, ranks: &[usize]) -> Result<EinsumSpec> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let parts: Vec<&str> = eq.split("->").collect();
    if parts.len() != 2 {
        return Err(Error::InvalidArgument(format!(
            "Expecting exactly one '->' in einsum equation: {equation}"
        )));
    }
    let ins: Vec<&str> = parts[0].split(',').collect();
    if ins.len() != ranks.len() {
        return Err(Error::InvalidArgument(format!(
            "Expecting {} input subscripts in equation '{equation}' but got: {}",
            ranks.len(),
            ins.len()
        )));
    }
    let mut inputs = Vec::new();
    let mut max_ell = 0usize;
    for (i, (sub, &rank)) in ins.iter().zip(ranks).enumerate() {
        let (named, ell) = parse_subscripts(sub)?;
        let labels = match ell {
            None => {
                if named.len() != rank {
                    return Err(Error::InvalidArgument(format!(
                        "Input {i} to einsum has rank {rank} but subscripts '{sub}' name {} dims",
                        named.len()
                    )));
                }
                named
            }
            Some(at) => {
                if named.len() > rank {
                    return Err(Error::InvalidArgument(format!(
                        "Input {i} to einsum has rank {rank} but subscripts '{sub}' name {} dims",
                        named.len()
                    )));
                }
                let e = rank - named.len();
                max_ell = max_ell.max(e);
                let mut v = named[..at].to_vec();
                v.extend((0..e).map(|j| -((e - j) as Label)));
                v.extend_from_slice(&named[at..]);
                v
            }
        };
        inputs.push(labels);
    }
    let (named, ell) = parse_subscripts(parts[1])?;
    let output = match ell {
        None if max_ell > 0 => {
            return Err(Error::InvalidArgument(format!(
                "Output contains {max_ell} broadcasting dimension(s) but no ellipsis (...) was found in the output subscripts."
            )))
        }
        None => named,
        Some(at) => {
            let mut v = named[..at].to_vec();
            v.extend((0..max_ell).map(|j| -((max_ell - j) as Label)));
            v.extend_from_slice(&named[at..]);
            v
        }
    };
    for (i, l) in output.iter().enumerate() {
        if output[..i].contains(l) {
            return Err(Error::InvalidArgument(format!(
                "Output subscripts of einsum equation '{equation}' repeat label '{}'",
                *l as u8 as char
            )));
        }
        if *l > 0 && !inputs.iter().any(|v| v.contains(l)) {
            return Err(Error::InvalidArgument(format!(
                "Einsum output subscripts for equation '{equation}' has label '{}' which is not present in the input subscripts",
                *l as u8 as char
            )));
        }
    }
    Ok(EinsumSpec { inputs, output })
}

/// A tensor whose dims carry labels.
struct Labelled<'a, T: Clone> {
    data: Cow<'a, [T]>,
    shape: Vec<usize>,
    labels: Vec<Label>,
}

impl<'a, T: ReduceElem> Labelled<'a, T> {
    /// Takes the diagonal of repeated labels (`ii -> i`).
    fn diagonal(self) -> Result<Self> {
        let mut uniq: Vec<Label> = Vec::new();
        for l in &self.labels {
            if !uniq.contains(l) {
                uniq.push(*l);
            }
        }
        if uniq.len() == self.labels.len() {
            return Ok(self);
        }
        let st = tfa_core::shape::strides(&self.shape);
        let mut shape = Vec::new();
        let mut ust = Vec::new();
        for u in &uniq {
            let pos: Vec<usize> = (0..self.labels.len())
                .filter(|&i| self.labels[i] == *u)
                .collect();
            let d = self.shape[pos[0]];
            if let Some(&bad) = pos.iter().find(|&&p| self.shape[p] != d) {
                return Err(Error::InvalidArgument(format!(
                    "Expected dimension {d} at axis {bad} of the input shaped {} but got dimension {}",
                    fmt_shape(&self.shape),
                    self.shape[bad]
                )));
            }
            shape.push(d);
            ust.push(pos.iter().map(|&p| st[p]).sum::<usize>());
        }
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| self.data[super::transpose::offset_of(i, &shape, &ust)])
            .collect();
        Ok(Labelled {
            data: Cow::Owned(data),
            shape,
            labels: uniq,
        })
    }

    /// Sums out the dims whose labels satisfy `drop`.
    fn sum_out(self, drop: impl Fn(Label) -> bool) -> Result<Self> {
        let red: Vec<bool> = self.labels.iter().map(|&l| drop(l)).collect();
        if !red.contains(&true) {
            return Ok(self);
        }
        let shape = super::reduce::reduced_shape(&self.shape, &red, false);
        let mut data = vec![T::default(); shape.iter().product()];
        super::reduce::reduce_typed(ReduceOp::Sum, &self.data, &self.shape, &red, &mut data)?;
        let labels = self
            .labels
            .iter()
            .zip(&red)
            .filter(|p| !*p.1)
            .map(|p| *p.0)
            .collect();
        Ok(Labelled {
            data: Cow::Owned(data),
            shape,
            labels,
        })
    }

    /// Drops size-1 dims whose labels satisfy `drop`.
    fn squeeze(mut self, drop: impl Fn(Label) -> bool) -> Self {
        let keep: Vec<usize> = (0..self.labels.len())
            .filter(|&i| !(self.shape[i] == 1 && drop(self.labels[i])))
            .collect();
        self.shape = keep.iter().map(|&i| self.shape[i]).collect();
        self.labels = keep.iter().map(|&i| self.labels[i]).collect();
        self
    }

    /// Reorders dims to `order` (a permutation of the labels).
    fn permute(self, order: &[Label]) -> Result<Self> {
        let perm: Vec<usize> = order
            .iter()
            .map(|l| self.labels.iter().position(|m| m == l).unwrap())
            .collect();
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self);
        }
        let mut data = vec![T::default(); self.data.len()];
        super::transpose::transpose_words(&self.data, &self.shape, &perm, &mut data)?;
        Ok(Labelled {
            data: Cow::Owned(data),
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            labels: order.to_vec(),
        })
    }

    /// Writes the tensor with its dims in `order` into `out`.
    fn write_to(&self, order: &[Label], out: &mut [T]) -> Result<()> {
        if self.data.len() != out.len() {
            return Err(Error::Internal(format!(
                "einsum produced {} elements for {} outputs",
                self.data.len(),
                out.len()
            )));
        }
        let perm: Vec<usize> = order
            .iter()
            .map(|l| self.labels.iter().position(|m| m == l).unwrap())
            .collect();
        super::transpose::transpose_words(&self.data, &self.shape, &perm, out)
    }

    fn size_or(&self, l: Label) -> Option<usize> {
        self.labels
            .iter()
            .position(|m| *m == l)
            .map(|i| self.shape[i])
    }

    /// The product of the sizes of `labels` (each one this operand has).
    fn size(&self, labels: &[Label]) -> usize {
        labels.iter().filter_map(|&l| self.size_or(l)).product()
    }
}

use super::reduce::{ReduceElem, ReduceOp};
use std::borrow::Cow;

/// Output shape of an einsum over inputs of `shapes`, with label-size checks.
pub fn einsum_shape(spec: &EinsumSpec, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let mut sizes: Vec<(Label, usize)> = Vec::new();
    for (labels, shape) in spec.inputs.iter().zip(shapes) {
        for (axis, (&l, &d)) in labels.iter().zip(shape.iter()).enumerate() {
            match sizes.iter_mut().find(|p| p.0 == l) {
                Some(p) if p.1 == d => {}
                Some(p) if l < 0 && (p.1 == 1 || d == 1) => p.1 = p.1.max(d),
                Some(p) => {
                    return Err(Error::InvalidArgument(format!(
                        "Expected dimension {} at axis {axis} of the input shaped {} but got dimension {d}",
                        p.1,
                        fmt_shape(shape)
                    )))
                }
                None => sizes.push((l, d)),
            }
        }
    }
    Ok(spec
        .output
        .iter()
        .map(|l| sizes.iter().find(|p| p.0 == *l).map_or(1, |p| p.1))
        .collect())
}

/// `out = einsum(spec, inputs)` (one or two inputs), `out` of
/// [`einsum_shape`].
pub fn einsum(spec: &EinsumSpec, inputs: &[TensorView], out: &mut TensorMut) -> Result<()> {
    einsum_lowp(spec, inputs, out, None)
}

/// [`einsum`] whose float32 operands are rounded to `lowp` (BF16/F16) when
/// set, the product then multiplying in it with float32 accumulation:
/// equal to [`einsum`] of rounded operands up to summation order.
pub fn einsum_lowp(
    spec: &EinsumSpec,
    inputs: &[TensorView],
    out: &mut TensorMut,
    lowp: Option<DType>,
) -> Result<()> {
    let lt = lowp.and_then(LowpType::from_dtype);
    if let (DType::F32, Some(l)) = (out.dtype, lt) {
        // Round the operands first, as the plugin does for ops that are not
        // native: the sums einsum may do before its product (labels only one
        // operand has, one-operand forms) then see rounded inputs too, and
        // the rounding inside `lowp_gemm` is exact.
        let rounded: Vec<Vec<f32>> = inputs
            .iter()
            .map(|t| Ok(t.data::<f32>()?.par_iter().map(|&v| l.round(v)).collect()))
            .collect::<Result<_>>()?;
        let views: Vec<TensorView> = inputs
            .iter()
            .zip(&rounded)
            .map(|(t, r)| TensorView::from_slice(t.shape.clone(), r))
            .collect();
        return einsum_typed::<f32>(spec, &views, out.data_mut()?, lowp);
    }
    match out.dtype {
        DType::F32 => einsum_typed::<f32>(spec, inputs, out.data_mut()?, None),
        DType::F64 => einsum_typed::<f64>(spec, inputs, out.data_mut()?, None),
        DType::F16 => einsum_typed::<f16>(spec, inputs, out.data_mut()?, None),
        DType::BF16 => einsum_typed::<bf16>(spec, inputs, out.data_mut()?, None),
        d => Err(Error::Unimplemented(format!(
            "Einsum is not defined for {d}"
        ))),
    }
}

fn einsum_typed<T: ReduceElem + BmmElem>(
    spec: &EinsumSpec,
    inputs: &[TensorView],
    out: &mut [T],
    lowp: Option<DType>,
) -> Result<()> {
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let out_shape = einsum_shape(spec, &shapes)?;
    if out_shape.iter().product::<usize>() != out.len() {
        return Err(Error::Internal(format!(
            "einsum output has {} elements, shape {} needs {}",
            out.len(),
            fmt_shape(&out_shape),
            out_shape.iter().product::<usize>()
        )));
    }
    if out.is_empty() {
        return Ok(());
    }
    let mut ts = Vec::new();
    for (t, labels) in inputs.iter().zip(&spec.inputs) {
        ts.push(
            Labelled {
                data: Cow::Borrowed(t.data::<T>()?),
                shape: t.shape.clone(),
                labels: labels.clone(),
            }
            .diagonal()?,
        );
    }
    let in_out = |l: Label| spec.output.contains(&l);
    if ts.len() == 1 {
        let t = ts.pop().unwrap().sum_out(|l| !in_out(l))?;
        let order: Vec<Label> = spec
            .output
            .iter()
            .copied()
            .filter(|l| t.labels.contains(l))
            .collect();
        t.write_to(&order, out)
    } else {
        let y = ts.pop().unwrap();
        let x = ts.pop().unwrap();
        einsum_pair(spec, x, y, out, lowp)
    }
}

/// A two-operand einsum as one batched product: broadcast ellipsis dims of
/// size 1 dropped, labels only one operand has summed out, the operands
/// laid out for the product by [`orient`].
fn einsum_pair<T: ReduceElem + BmmElem>(
    spec: &EinsumSpec,
    x: Labelled<'_, T>,
    y: Labelled<'_, T>,
    out: &mut [T],
    lowp: Option<DType>,
) -> Result<()> {
    let in_out = |l: Label| spec.output.contains(&l);
    // Broadcast ellipsis dims of size 1 against a larger size: drop them.
    let (xl, yl) = (x.labels.clone(), y.labels.clone());
    let (xs, ys) = (x.shape.clone(), y.shape.clone());
    let size_in = |labels: &[Label], shape: &[usize], l: Label| -> Option<usize> {
        labels.iter().position(|m| *m == l).map(|i| shape[i])
    };
    let x = x.squeeze(|l| l < 0 && size_in(&yl, &ys, l).is_some_and(|d| d != 1));
    let y = y.squeeze(|l| l < 0 && size_in(&xl, &xs, l).is_some_and(|d| d != 1));
    // Sum out labels only one input has and the output lacks.
    let before = (x.labels.len(), y.labels.len());
    let x = x.sum_out(|l| !in_out(l) && !y.labels.contains(&l))?;
    let y = y.sum_out(|l| !in_out(l) && !x.labels.contains(&l))?;
    // Sums are not low-precision values: rounding them would differ from
    // rounding the inputs, so such products stay float32 (the inputs were
    // rounded by `einsum_lowp`).
    let lowp = lowp.filter(|_| before == (x.labels.len(), y.labels.len()));
    let only = |labels: &[Label], keep: &dyn Fn(Label) -> bool| -> Vec<Label> {
        labels.iter().copied().filter(|&l| keep(l)).collect()
    };
    let shared = |l: Label| y.labels.contains(&l);
    let fx = only(&x.labels, &|l| !shared(l));
    let fy = only(&y.labels, &|l| !x.labels.contains(&l));
    // Batch and free labels in output order; when the output is [batch,
    // free of one operand, free of the other] that operand gives the rows
    // and the product lands in `out` directly.
    let order: Vec<Label> = spec
        .output
        .iter()
        .copied()
        .filter(|l| x.labels.contains(l) || y.labels.contains(l))
        .collect();
    let batch = only(&order, &|l| x.labels.contains(&l) && shared(l));
    let (fx, fy) = (
        only(&order, &|l| fx.contains(&l)),
        only(&order, &|l| fy.contains(&l)),
    );
    let (rows, cols, fr, fc) = if order == [batch.clone(), fy.clone(), fx.clone()].concat() {
        (y, x, fy, fx)
    } else {
        (x, y, fx, fy)
    };
    let (m, n) = (rows.size(&fr), cols.size(&fc));
    let (nb, k) = (
        rows.size(&batch),
        rows.size(&only(&rows.labels, &|l| {
            !fr.contains(&l) && !batch.contains(&l)
        })),
    );
    let (rows, cols, adj_x, adj_y) = orient(rows, cols, &batch, &fr, &fc)?;
    let plan = BatchPlan {
        m,
        k,
        n,
        x_batch: (0..nb).collect(),
        y_batch: (0..nb).collect(),
        out_shape: vec![nb, m, n],
        p: BatchMatMulParams { adj_x, adj_y, lowp },
    };
    let labels = [batch, fr, fc].concat();
    if order == labels && out.len() == nb * m * n {
        T::bmm(&plan, &rows.data, &cols.data, out);
        return Ok(());
    }
    let mut data = vec![T::default(); nb * m * n];
    T::bmm(&plan, &rows.data, &cols.data, &mut data);
    let shape = labels
        .iter()
        .map(|&l| rows.size_or(l).or_else(|| cols.size_or(l)).unwrap_or(1))
        .collect();
    Labelled {
        data: Cow::Owned(data),
        shape,
        labels,
    }
    .write_to(&order, out)
}

/// Lays out the row operand as [batch, free, contract] (or, read as its
/// adjoint, [batch, contract, free]) and the column operand as [batch,
/// contract, free] (or [batch, free, contract]), choosing the contracted
/// order and the adjoint flags that leave most operands as stored: a
/// transpose of a 12 MB attention tensor costs more than its product.
/// Returns the operands and (adj_x, adj_y).
fn orient<'a, T: ReduceElem>(
    rows: Labelled<'a, T>,
    cols: Labelled<'a, T>,
    batch: &[Label],
    fr: &[Label],
    fc: &[Label],
) -> Result<(Labelled<'a, T>, Labelled<'a, T>, bool, bool)> {
    let contracted = |t: &Labelled<T>| -> Vec<Label> {
        t.labels
            .iter()
            .copied()
            .filter(|l| !batch.contains(l) && !fr.contains(l) && !fc.contains(l))
            .collect()
    };
    // (layout as stored?, adjoint?) for one operand given the contracted order.
    let fit = |t: &Labelled<T>, free: &[Label], c: &[Label], free_first: bool| {
        let plain = if free_first {
            [batch, free, c].concat()
        } else {
            [batch, c, free].concat()
        };
        let adj = if free_first {
            [batch, c, free].concat()
        } else {
            [batch, free, c].concat()
        };
        if t.labels == plain {
            (0, false, plain)
        } else if t.labels == adj {
            (0, true, adj)
        } else {
            (1, false, plain)
        }
    };
    let best = [contracted(&rows), contracted(&cols)]
        .into_iter()
        .map(|c| (fit(&rows, fr, &c, true), fit(&cols, fc, &c, false)))
        .min_by_key(|(r, c)| r.0 + c.0)
        .ok_or_else(|| Error::Internal("einsum: no operand layout".into()))?;
    let ((_, adj_x, rl), (_, adj_y, cl)) = best;
    Ok((rows.permute(&rl)?, cols.permute(&cl)?, adj_x, adj_y))
}

#[cfg(test)]
mod tests;
