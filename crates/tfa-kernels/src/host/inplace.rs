//! TensorFlow's aliasing row updates (`InplaceUpdate/Add/Sub`,
//! `_ParallelConcatUpdate`): rows of `y` are overwritten with, or changed by,
//! rows of `v`, in `y`'s own buffer.

use super::arith::Arith;
use tfa_core::{dispatch, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RowOp {
    Update,
    Add,
    Sub,
}

impl RowOp {
    pub fn name(self) -> &'static str {
        match self {
            RowOp::Update => "InplaceUpdate",
            RowOp::Add => "InplaceAdd",
            RowOp::Sub => "InplaceSub",
        }
    }
}

/// Row `rows[j]` of `y` (its outer dimension) op= row `j` of `v`, in order
/// (a repeated row sees the earlier updates, as in TensorFlow's loop). Rows
/// wrap into range the way TensorFlow's kernel guards them:
/// `(r % n + n) % n`. Shapes must have been checked: `v` has `rows.len()`
/// rows of `y`'s row width.
pub fn update_rows(op: RowOp, y: &mut TensorMut, rows: &[i64], v: &TensorView) -> Result<()> {
    let n = y.shape.first().copied().unwrap_or(1);
    if n == 0 || v.num_elements() == 0 {
        return Ok(());
    }
    let width = y.num_elements() / n;
    if v.num_elements() != rows.len() * width || v.dtype != y.dtype {
        return Err(Error::Internal(format!(
            "{}: {} rows of {width} {} elements expected in v",
            op.name(),
            rows.len(),
            y.dtype
        )));
    }
    let n = n as i64;
    let row_of = |r: i64| ((r % n + n) % n) as usize;
    if op == RowOp::Update {
        // Any dtype: rows are plain bytes.
        let w = width * y.dtype.size();
        let (src, dst) = (v.bytes(), y.bytes_mut());
        for (j, &r) in rows.iter().enumerate() {
            let r = row_of(r);
            dst[r * w..(r + 1) * w].copy_from_slice(&src[j * w..(j + 1) * w]);
        }
        return Ok(());
    }
    dispatch!(y.dtype, T => {
        let (src, dst) = (v.data::<T>()?, y.data_mut::<T>()?);
        let f = if op == RowOp::Add { <T as Arith>::add } else { <T as Arith>::sub };
        for (j, &r) in rows.iter().enumerate() {
            let r = row_of(r);
            for (d, &s) in dst[r * width..(r + 1) * width]
                .iter_mut()
                .zip(&src[j * width..(j + 1) * width])
            {
                *d = f(*d, s);
            }
        }
        Ok(())
    }; [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_update_add_sub_with_wrapping_indices() {
        let mut y = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let v = [10.0f32, 20.0, 30.0, 40.0];
        let vv = TensorView::from_slice(vec![2, 2], &v);
        let mut t = TensorMut::from_slice(vec![3, 2], &mut y);
        update_rows(RowOp::Add, &mut t, &[-1, 0], &vv).unwrap();
        assert_eq!(y, [31.0, 42.0, 3.0, 4.0, 15.0, 26.0]);
        let mut t = TensorMut::from_slice(vec![3, 2], &mut y);
        update_rows(RowOp::Update, &mut t, &[4, 4], &vv).unwrap();
        assert_eq!(y, [31.0, 42.0, 30.0, 40.0, 15.0, 26.0]);
        let mut t = TensorMut::from_slice(vec![3, 2], &mut y);
        update_rows(RowOp::Sub, &mut t, &[2, 2], &vv).unwrap();
        assert_eq!(y, [31.0, 42.0, 30.0, 40.0, -25.0, -34.0]);
    }

    #[test]
    fn bool_rows_update_and_ints_wrap() {
        let mut y = [false; 4];
        let v = [true, true];
        let mut t = TensorMut::from_slice(vec![2, 2], &mut y);
        update_rows(
            RowOp::Update,
            &mut t,
            &[1],
            &TensorView::from_slice(vec![1, 2], &v),
        )
        .unwrap();
        assert_eq!(y, [false, false, true, true]);
        let mut y = [i8::MAX];
        let mut t = TensorMut::from_slice(vec![1], &mut y);
        update_rows(
            RowOp::Add,
            &mut t,
            &[0],
            &TensorView::from_slice(vec![1], &[1i8]),
        )
        .unwrap();
        assert_eq!(y, [i8::MIN]);
    }
}
