//! MatrixBandPart: the innermost matrices with everything outside a band
//! around the diagonal set to zero (`tf.linalg.band_part`; Keras `ops.tril`
//! and `ops.triu` with k >= 0).
//!
//! Moved as bytes, whatever the dtype: zero is all-zero bits for every
//! supported type (false for bool).

use super::for_row_chunks;
use crate::geometry::axes::check_band;
use tfa_core::{Error, Result, TensorMut, TensorView};

/// `out = band_part(x, num_lower, num_upper)`, limits checked with
/// [`check_band`]; `out` has `x`'s dtype and shape.
pub fn band_part(
    x: &TensorView,
    num_lower: i64,
    num_upper: i64,
    out: &mut TensorMut,
) -> Result<()> {
    check_band(&x.shape, num_lower, num_upper)?;
    if x.dtype != out.dtype || x.shape != out.shape {
        return Err(Error::Internal("band_part output mismatch".into()));
    }
    let rank = x.rank();
    let (rows, cols) = (x.shape[rank - 2], x.shape[rank - 1]);
    let size = x.dtype.size();
    let bytes = x.num_elements() * size;
    if bytes == 0 {
        return Ok(());
    }
    let (src, dst) = (&x.bytes()[..bytes], &mut out.bytes_mut()[..bytes]);
    let row_bytes = cols * size;
    for_row_chunks(dst, row_bytes, |first, chunk| {
        for (r, out_row) in chunk.chunks_mut(row_bytes).enumerate() {
            let row = first + r;
            let i = row % rows;
            // Columns [start, end) are inside the band.
            let start = if num_lower < 0 {
                0
            } else {
                i.saturating_sub(num_lower as usize).min(cols)
            };
            let end = if num_upper < 0 {
                cols
            } else {
                (i + num_upper as usize + 1).min(cols)
            };
            let end = end.max(start);
            let in_row = &src[row * row_bytes..][..row_bytes];
            out_row[..start * size].fill(0);
            out_row[start * size..end * size].copy_from_slice(&in_row[start * size..end * size]);
            out_row[end * size..].fill(0);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_band_only() {
        let x: Vec<i32> = (1..=12).collect();
        let run = |lower, upper| {
            let mut y = vec![0i32; 12];
            let v = TensorView::from_slice(vec![3, 4], &x);
            band_part(
                &v,
                lower,
                upper,
                &mut TensorMut::from_slice(vec![3, 4], &mut y),
            )
            .unwrap();
            y
        };
        // Lower triangle (tril), upper triangle (triu), the diagonal, all.
        assert_eq!(run(-1, 0), [1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0]);
        assert_eq!(run(0, -1), [1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12]);
        assert_eq!(run(0, 0), [1, 0, 0, 0, 0, 6, 0, 0, 0, 0, 11, 0]);
        assert_eq!(run(1, 2), [1, 2, 3, 0, 5, 6, 7, 8, 0, 10, 11, 12]);
        assert_eq!(run(-1, -1), x);
    }

    #[test]
    fn checks_match_tensorflow() {
        let e = check_band(&[3], 0, 0).unwrap_err().to_string();
        assert!(
            e.contains("input must be at least 2-dim, received shape: [3]"),
            "{e}"
        );
        let e = check_band(&[3, 4], 4, 0).unwrap_err().to_string();
        assert!(e.contains("number of rows (3) got: 4"), "{e}");
        let e = check_band(&[3, 4], 0, 5).unwrap_err().to_string();
        assert!(e.contains("number of columns (4) got: 5"), "{e}");
        assert!(check_band(&[3, 4], 3, 4).is_ok());
    }
}
