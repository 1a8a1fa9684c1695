//! Roll (`tf.roll`): elements shifted cyclically along each axis, so that
//! `out[(i + shift) mod n] = x[i]`; Swin-style shifted windows use it, and
//! its gradient is a Roll by the opposite shift. Rows of the last dim move
//! as two copies; data moves as 1/2/4/8-byte words, whatever the dtype.

use super::for_row_chunks;
use super::transpose::{by_width, words, words_mut};
use tfa_core::{Error, Result, TensorMut, TensorView};

/// `out = roll(x)` with `shifts[d]` in `[0, x.shape[d])` (0 for a size-0
/// dim); `out` has `x`'s dtype and shape.
pub fn roll(x: &TensorView, shifts: &[usize], out: &mut TensorMut) -> Result<()> {
    let rank = x.rank();
    if x.dtype != out.dtype || x.shape != out.shape || shifts.len() != rank || rank == 0 {
        return Err(Error::Internal("roll output mismatch".into()));
    }
    let n = x.num_elements();
    if n == 0 {
        return Ok(());
    }
    let shape = &x.shape;
    let (last, s) = (shape[rank - 1], shifts[rank - 1]);
    let size = x.dtype.size();
    let (src, dst) = (&x.bytes()[..n * size], &mut out.bytes_mut()[..n * size]);
    by_width!(size, W => {
        let src: &[W] = words(src)?;
        for_row_chunks(words_mut::<W>(dst)?, last, |first, chunk| {
            for (k, row) in chunk.chunks_mut(last).enumerate() {
                // The source row: each leading coordinate moved back by its shift.
                let (mut r, mut from, mut stride) = (first + k, 0usize, 1usize);
                for d in (0..rank - 1).rev() {
                    let c = r % shape[d];
                    r /= shape[d];
                    from += (c + shape[d] - shifts[d]) % shape[d] * stride;
                    stride *= shape[d];
                }
                let src_row = &src[from * last..(from + 1) * last];
                row[..s].copy_from_slice(&src_row[last - s..]);
                row[s..].copy_from_slice(&src_row[..last - s]);
            }
        });
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_each_axis_cyclically() {
        // [2, 3, 4] rolled by (1, 2, 3): out[(i+1)%2, (j+2)%3, (k+3)%4] = x[i, j, k].
        let x: Vec<i64> = (0..24).collect();
        let mut out = vec![0i64; 24];
        roll(
            &TensorView::from_slice(vec![2, 3, 4], &x),
            &[1, 2, 3],
            &mut TensorMut::from_slice(vec![2, 3, 4], &mut out),
        )
        .unwrap();
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    let o = ((i + 1) % 2) * 12 + ((j + 2) % 3) * 4 + (k + 3) % 4;
                    assert_eq!(out[o], x[i * 12 + j * 4 + k]);
                }
            }
        }
    }
}
