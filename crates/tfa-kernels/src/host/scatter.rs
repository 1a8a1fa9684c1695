//! TensorScatterUpdate / TensorScatterAdd / TensorScatterSub: a copy of
//! `tensor` with `updates` written into (or added to, subtracted from) the
//! slices that `indices` address. Updates apply one after another in index
//! order, as on TensorFlow's CPU: on repeated indices the last update wins
//! (Update) or all of them accumulate in that order (Add/Sub).

use super::arith::Arith;
use super::gather::index_position;
use super::transpose::{by_width, words, words_mut};
use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ScatterOp {
    Update,
    Add,
    Sub,
}

pub(crate) use crate::geometry::index::ScatterPlan;

/// Applies the updates to `out`, which already holds a copy of `tensor`.
/// A coordinate out of range is TensorFlow's InvalidArgument
/// `indices[i] = [..] does not index into shape [..]` (after the updates
/// before it were applied, as on the CPU), unless `ignore_bad` (the
/// `bad_indices_policy` "IGNORE"): then that update is skipped.
pub fn tensor_scatter(
    op: ScatterOp,
    indices: &TensorView,
    updates: &TensorView,
    plan: &ScatterPlan,
    ignore_bad: bool,
    out: &mut TensorMut,
) -> Result<()> {
    if out.num_elements() == 0 || plan.num_updates == 0 {
        return Ok(());
    }
    let idx = indices.to_i64_vec()?;
    let (sd, ss) = (plan.slice_dim, plan.slice_size);
    // Row-major strides of the output's leading dims, in slices.
    let mut strides = vec![1usize; sd];
    for d in (0..sd.saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * plan.prefix[d + 1];
    }
    let mut targets = Vec::with_capacity(plan.num_updates);
    for u in 0..plan.num_updates {
        let coords = &idx[u * sd..(u + 1) * sd];
        let mut slice = 0usize;
        let mut bad = false;
        for (d, &c) in coords.iter().enumerate() {
            if c < 0 || c as u64 >= plan.prefix[d] as u64 {
                bad = true;
                break;
            }
            slice += c as usize * strides[d];
        }
        if bad {
            if ignore_bad {
                continue;
            }
            apply(op, updates, &targets, ss, out)?;
            let batch = &indices.shape[..indices.shape.len() - 1];
            let coords: Vec<String> = coords.iter().map(|c| c.to_string()).collect();
            return Err(Error::InvalidArgument(format!(
                "indices{} = [{}] does not index into shape {}",
                index_position(batch, u),
                coords.join(", "),
                fmt_shape(&out.shape)
            )));
        }
        targets.push((u, slice));
    }
    apply(op, updates, &targets, ss, out)
}

/// Writes update row `u` into output slice `s` for each `(u, s)`, in order.
fn apply(
    op: ScatterOp,
    updates: &TensorView,
    targets: &[(usize, usize)],
    ss: usize,
    out: &mut TensorMut,
) -> Result<()> {
    if updates.dtype != out.dtype {
        return Err(Error::InvalidArgument(format!(
            "updates must be {}, got {}",
            out.dtype, updates.dtype
        )));
    }
    if op == ScatterOp::Update {
        let size = out.dtype.size();
        let n = out.num_elements();
        let src = updates.bytes();
        let dst = &mut out.bytes_mut()[..n * size];
        return by_width!(size, W => {
            let (src, dst) = (words::<W>(src)?, words_mut::<W>(dst)?);
            for &(u, s) in targets {
                dst[s * ss..(s + 1) * ss].copy_from_slice(&src[u * ss..(u + 1) * ss]);
            }
            Ok(())
        });
    }
    fn combine<T: Arith>(
        op: ScatterOp,
        src: &[T],
        dst: &mut [T],
        targets: &[(usize, usize)],
        ss: usize,
    ) {
        let f = if op == ScatterOp::Add { T::add } else { T::sub };
        for &(u, s) in targets {
            for (d, &v) in dst[s * ss..(s + 1) * ss]
                .iter_mut()
                .zip(&src[u * ss..(u + 1) * ss])
            {
                *d = f(*d, v);
            }
        }
    }
    let dtype = out.dtype;
    tfa_core::dispatch!(dtype, T => {
        combine::<T>(op, updates.data::<T>()?, out.data_mut::<T>()?, targets, ss);
        Ok(())
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::index::*;

    #[test]
    fn update_add_sub_rows_in_order() {
        let plan = tensor_scatter_plan(&[4, 2], &[3, 1], &[3, 2]).unwrap();
        assert_eq!(
            (plan.slice_dim, plan.num_updates, plan.slice_size),
            (1, 3, 2)
        );
        let idx = [1i32, 3, 1];
        let upd = [1f32, 2., 3., 4., 5., 6.];
        for (op, want) in [
            (ScatterOp::Update, [0f32, 0., 5., 6., 0., 0., 3., 4.]),
            (ScatterOp::Add, [0., 0., 6., 8., 0., 0., 3., 4.]),
            (ScatterOp::Sub, [0., 0., -6., -8., 0., 0., -3., -4.]),
        ] {
            let mut out = [0f32; 8];
            tensor_scatter(
                op,
                &TensorView::from_slice(vec![3, 1], &idx),
                &TensorView::from_slice(vec![3, 2], &upd),
                &plan,
                false,
                &mut TensorMut::from_slice(vec![4, 2], &mut out),
            )
            .unwrap();
            assert_eq!(out, want, "{op:?}");
        }
    }

    #[test]
    fn elements_of_a_matrix_and_bad_index() {
        let plan = tensor_scatter_plan(&[2, 3], &[2, 2], &[2]).unwrap();
        assert_eq!(
            (plan.slice_dim, plan.num_updates, plan.slice_size),
            (2, 2, 1)
        );
        let mut out = [false; 6];
        tensor_scatter(
            ScatterOp::Update,
            &TensorView::from_slice(vec![2, 2], &[0i64, 2, 1, 0]),
            &TensorView::from_slice(vec![2], &[true, true]),
            &plan,
            false,
            &mut TensorMut::from_slice(vec![2, 3], &mut out),
        )
        .unwrap();
        assert_eq!(out, [false, false, true, true, false, false]);
        let e = tensor_scatter(
            ScatterOp::Update,
            &TensorView::from_slice(vec![2, 2], &[0i64, 2, 1, 3]),
            &TensorView::from_slice(vec![2], &[true, true]),
            &plan,
            false,
            &mut TensorMut::from_slice(vec![2, 3], &mut out),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "indices[1] = [1, 3] does not index into shape [2,3]"
        );
        let e = tensor_scatter_plan(&[4, 2], &[3, 1], &[3, 3]).unwrap_err();
        assert!(e.to_string().contains("The inner 1 dimensions"), "{e}");
    }
}
