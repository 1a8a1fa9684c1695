//! Einsum (TensorFlow's `Einsum` op): labels parsed and ellipses expanded,
//! labels that appear in one operand only summed first, then one batched
//! product (`batch_matmul`'s kernels) over the shared labels, operands read
//! as adjoints where that avoids a transpose.

use super::batch_matmul::{BatchMatMulParams, BatchPlan, BmmElem};
use super::lowp_gemm::LowpType;
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::einsum::{einsum_shape, EinsumSpec, Label};

/// A tensor whose dims carry labels.
struct Labelled<'a, T: Clone> {
    data: Cow<'a, [T]>,
    shape: Vec<usize>,
    labels: Vec<Label>,
}

impl<'a, T: Numeric> Labelled<'a, T> {
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
        let shape = crate::geometry::axes::reduced_shape(&self.shape, &red, false);
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

use super::numeric::Numeric;
use super::reduce::ReduceOp;
use std::borrow::Cow;

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

fn einsum_typed<T: Numeric + BmmElem>(
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
fn einsum_pair<T: Numeric + BmmElem>(
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
fn orient<'a, T: Numeric>(
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
