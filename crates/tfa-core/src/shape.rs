//! Shapes and NumPy/TensorFlow broadcasting.

use crate::{Error, Result};

/// A tensor shape: dimension sizes, outermost first.
pub type Shape = Vec<usize>;

/// Number of elements of a shape (1 for a scalar), or an error on overflow.
pub fn num_elements(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d)
            .ok_or_else(|| Error::InvalidArgument(format!("shape {shape:?} is too large")))
    })
}

/// The broadcast of two shapes, as TensorFlow's `BCast` computes it: aligned at
/// the right, each pair of dims equal or one of them 1.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Shape> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::InvalidArgument(format!(
                "Incompatible shapes: {} vs. {}",
                fmt_shape(a),
                fmt_shape(b)
            )));
        };
    }
    Ok(out)
}

/// `[2,3]` as TensorFlow prints shapes in messages.
pub fn fmt_shape(s: &[usize]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Row-major strides of a shape, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut st = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        st[i] = st[i + 1] * shape[i + 1];
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]).unwrap(), vec![2, 3]);
        assert_eq!(broadcast_shapes(&[], &[4, 1]).unwrap(), vec![4, 1]);
        assert_eq!(broadcast_shapes(&[4, 1], &[1, 5]).unwrap(), vec![4, 5]);
        assert_eq!(broadcast_shapes(&[0, 1], &[1, 5]).unwrap(), vec![0, 5]);
        let e = broadcast_shapes(&[2, 3], &[4]).unwrap_err();
        assert_eq!(e.to_string(), "Incompatible shapes: [2,3] vs. [4]");
    }

    #[test]
    fn stride_and_count() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(num_elements(&[]).unwrap(), 1);
        assert_eq!(num_elements(&[3, 0]).unwrap(), 0);
        assert!(num_elements(&[usize::MAX, 2]).is_err());
    }
}
