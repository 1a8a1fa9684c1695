//! ReverseV2: a tensor with its elements reversed along a set of axes.
//!
//! Dims of size 1 are dropped and neighbouring dims with the same flag are
//! merged (reversing two adjacent axes reverses their flattened product), so
//! the work is a walk over rows of the innermost merged dim: a row is copied
//! whole when that dim keeps its order, backwards when it is reversed. Data
//! moves as 1/2/4/8-byte words, whatever the dtype.

use super::for_row_chunks;
use super::transpose::{by_width, words, words_mut};
use tfa_core::{Error, Result, TensorMut, TensorView};

/// `(size, reversed)` per dim after dropping size-1 dims and merging
/// neighbours with the same flag.
fn merged(shape: &[usize], flags: &[bool]) -> Vec<(usize, bool)> {
    let mut dims: Vec<(usize, bool)> = Vec::new();
    for (&size, &rev) in shape.iter().zip(flags) {
        if size == 1 {
            continue;
        }
        match dims.last_mut() {
            Some((s, r)) if *r == rev => *s *= size,
            _ => dims.push((size, rev)),
        }
    }
    dims
}

/// `out = reverse(x, flags)`; `out` has `x`'s dtype and shape.
pub fn reverse(x: &TensorView, flags: &[bool], out: &mut TensorMut) -> Result<()> {
    if x.dtype != out.dtype || x.shape != out.shape || flags.len() != x.rank() {
        return Err(Error::Internal("reverse output mismatch".into()));
    }
    let n = x.num_elements();
    if n == 0 {
        return Ok(());
    }
    let size = x.dtype.size();
    let (src, dst) = (&x.bytes()[..n * size], &mut out.bytes_mut()[..n * size]);
    let dims = merged(&x.shape, flags);
    by_width!(size, W => {
        reverse_words::<W>(words(src)?, &dims, words_mut(dst)?);
        Ok(())
    })
}

fn reverse_words<T: Copy + Send + Sync>(src: &[T], dims: &[(usize, bool)], dst: &mut [T]) {
    let Some(&(row, reverse_row)) = dims.last() else {
        dst.copy_from_slice(src);
        return;
    };
    let outer = &dims[..dims.len() - 1];
    for_row_chunks(dst, row, |first, rows| {
        for (r, out_row) in rows.chunks_mut(row).enumerate() {
            // The source row: the output row's index with reversed dims
            // mirrored (innermost outer dim first).
            let (mut rest, mut from, mut stride) = (first + r, 0, 1);
            for &(size, rev) in outer.iter().rev() {
                let i = rest % size;
                rest /= size;
                from += if rev { size - 1 - i } else { i } * stride;
                stride *= size;
            }
            let in_row = &src[from * row..(from + 1) * row];
            if reverse_row {
                for (o, &v) in out_row.iter_mut().zip(in_row.iter().rev()) {
                    *o = v;
                }
            } else {
                out_row.copy_from_slice(in_row);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::axes::*;
    use rand::Rng;

    /// Random shapes and axis sets against an index-by-index reference.
    #[test]
    fn matches_index_mirroring() {
        let mut rng = crate::test_rng();
        for _ in 0..200 {
            let rank = rng.random_range(0..6);
            let shape: Vec<usize> = (0..rank).map(|_| rng.random_range(0..5)).collect();
            let flags: Vec<bool> = (0..rank).map(|_| rng.random_bool(0.5)).collect();
            let n: usize = shape.iter().product();
            let data: Vec<i16> = (0..n as i16).collect();
            let x = TensorView::from_slice(shape.clone(), &data);
            let mut got = vec![0i16; n];
            reverse(
                &x,
                &flags,
                &mut TensorMut::from_slice(shape.clone(), &mut got),
            )
            .unwrap();
            for (flat, &g) in got.iter().enumerate() {
                // Output index -> source index, dim by dim.
                let (mut rest, mut from, mut stride) = (flat, 0, 1);
                for d in (0..rank).rev() {
                    let i = rest % shape[d];
                    rest /= shape[d];
                    from += if flags[d] { shape[d] - 1 - i } else { i } * stride;
                    stride *= shape[d];
                }
                assert_eq!(g, data[from], "shape {shape:?} flags {flags:?} at {flat}");
            }
        }
    }

    #[test]
    fn axis_checks_match_tensorflow() {
        assert_eq!(reverse_axes(3, &[-1, 0]).unwrap(), vec![true, false, true]);
        let e = reverse_axes(2, &[2]).unwrap_err().to_string();
        assert!(
            e.contains("'axis'[0] = 2 is out of valid range [0, 1"),
            "{e}"
        );
        let e = reverse_axes(2, &[1, -1]).unwrap_err().to_string();
        assert!(e.contains("axis 1 specified more than once."), "{e}");
        assert!(matches!(
            reverse_axes(9, &[0]),
            Err(Error::Unimplemented(_))
        ));
    }
}
