//! Unsorted segment reductions (TensorFlow's CPU `UnsortedSegmentFunctor`):
//! `out[ids[i]] = op(out[ids[i]], data[i])` row by row in input order, from
//! the reducer's initial value; negative ids are skipped.

use super::numeric::{Accumulate, Numeric};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SegmentOp {
    Sum,
    Prod,
    Max,
    Min,
}

/// Reduces rows of `data` (`inner` elements each) into `out` (`num_segments`
/// rows). Returns the flat position of the first id `>= num_segments`.
pub fn unsorted_segment<T: Numeric>(
    op: SegmentOp,
    data: &[T],
    ids: &[i64],
    inner: usize,
    out: &mut [T],
) -> Result<(), usize> {
    let init = match op {
        SegmentOp::Sum => T::narrow(T::W::ZERO),
        SegmentOp::Prod => T::narrow(T::W::ONE),
        SegmentOp::Max => T::LOWEST,
        SegmentOp::Min => T::HIGHEST,
    };
    out.fill(init);
    if data.is_empty() {
        return Ok(());
    }
    let segments = out.len().checked_div(inner).unwrap_or(0) as i64;
    for (i, &j) in ids.iter().enumerate() {
        if j < 0 {
            continue;
        }
        if j >= segments {
            return Err(i);
        }
        let dst = &mut out[j as usize * inner..(j as usize + 1) * inner];
        let src = &data[i * inner..(i + 1) * inner];
        for (o, &d) in dst.iter_mut().zip(src) {
            // Eigen: output = data OP output (cwiseMax/cwiseMin: a < b ? b : a).
            *o = match op {
                SegmentOp::Sum => T::add_rounded(d, *o),
                SegmentOp::Prod => T::mul_rounded(d, *o),
                SegmentOp::Max => {
                    if d < *o {
                        *o
                    } else {
                        d
                    }
                }
                SegmentOp::Min => {
                    if *o < d {
                        *o
                    } else {
                        d
                    }
                }
            };
        }
    }
    Ok(())
}

/// DenseBincount over `rows` rows of `ids` (row-major, `ids.len() / rows`
/// per row; one row for 1-D input): `out[r, v] += weights[i]` (or one) for
/// every id `v < size` of row `r`, in input order; ids at or past `size` are
/// skipped; `binary` writes one instead. `out` (`[rows, size]`) must be
/// zero. Returns the first negative id, which TensorFlow rejects.
pub fn bincount<T: Numeric>(
    ids: &[i64],
    weights: Option<&[T]>,
    rows: usize,
    size: usize,
    binary: bool,
    out: &mut [T],
) -> Result<(), i64> {
    if let Some(&v) = ids.iter().find(|&&v| v < 0) {
        return Err(v);
    }
    let cols = ids.len().checked_div(rows).unwrap_or(0);
    for (i, &v) in ids.iter().enumerate() {
        let v = v as usize;
        if v >= size {
            continue;
        }
        let o = &mut out[(i / cols.max(1)) * size + v];
        *o = match (binary, weights) {
            (true, _) => T::narrow(T::W::ONE),
            (false, Some(w)) => T::add_rounded(*o, w[i]),
            (false, None) => T::add_rounded(*o, T::narrow(T::W::ONE)),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_bounds() {
        let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0f32; 6];
        unsorted_segment(SegmentOp::Sum, &data, &[2, -1, 2], 2, &mut out).unwrap();
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0, 6.0, 8.0]);
        unsorted_segment(SegmentOp::Max, &data, &[0, 0, 1], 2, &mut out).unwrap();
        assert_eq!(out, [3.0, 4.0, 5.0, 6.0, f32::MIN, f32::MIN]);
        assert_eq!(
            unsorted_segment(SegmentOp::Sum, &data, &[0, 3, 1], 2, &mut out),
            Err(1)
        );
    }
}
