//! DepthToSpace / SpaceToDepth (NHWC): blocks of `block x block` pixels
//! moved to or from the channel dim (pixel shuffle in super-resolution
//! models; each is the other's gradient). Every output pixel is made of
//! contiguous channel runs of the input, copied as 1/2/4/8-byte words.

use super::for_row_chunks;
use super::transpose::{by_width, words, words_mut};
use tfa_core::{Error, Result, TensorMut, TensorView};

/// `out = depth_to_space(x)` (`to_space`) or `space_to_depth(x)`, NHWC,
/// shapes already checked by the caller.
pub fn depth_space(
    x: &TensorView,
    block: usize,
    to_space: bool,
    out: &mut TensorMut,
) -> Result<()> {
    if x.rank() != 4 || out.shape.len() != 4 || x.dtype != out.dtype || block == 0 {
        return Err(Error::Internal("depth/space output mismatch".into()));
    }
    let n = out.num_elements();
    if n == 0 {
        return Ok(());
    }
    let [_, h, w, c] = [x.shape[0], x.shape[1], x.shape[2], x.shape[3]];
    // A run: the channels one output row takes from one input pixel.
    let run = if to_space { c / (block * block) } else { c };
    let (oh, ow) = (out.shape[1], out.shape[2]);
    // The input pixel and channel offset of output run `r`.
    let source = move |r: usize| -> usize {
        if to_space {
            let (x_, rest) = (r % ow, r / ow);
            let (y_, b) = (rest % oh, rest / oh);
            let k = (y_ % block) * block + x_ % block;
            ((b * h + y_ / block) * w + x_ / block) * c + k * run
        } else {
            let (k, pix) = (r % (block * block), r / (block * block));
            let (x_, rest) = (pix % ow, pix / ow);
            let (y_, b) = (rest % oh, rest / oh);
            ((b * h + y_ * block + k / block) * w + x_ * block + k % block) * c
        }
    };
    let size = x.dtype.size();
    let (src, dst) = (&x.bytes()[..n * size], &mut out.bytes_mut()[..n * size]);
    by_width!(size, W => {
        let src: &[W] = words(src)?;
        for_row_chunks(words_mut::<W>(dst)?, run, |first, chunk| {
            for (k, row) in chunk.chunks_mut(run).enumerate() {
                let at = source(first + k);
                row.copy_from_slice(&src[at..at + run]);
            }
        });
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_to_space_and_back() {
        // [1, 2, 2, 8] with block 2: out[0, 2h+i, 2w+j, c] = x[0, h, w, (2i+j)*2 + c].
        let x: Vec<u16> = (0..32).collect();
        let mut y = vec![0u16; 32];
        let xv = TensorView::from_slice(vec![1, 2, 2, 8], &x);
        depth_space(
            &xv,
            2,
            true,
            &mut TensorMut::from_slice(vec![1, 4, 4, 2], &mut y),
        )
        .unwrap();
        for (h, w, i, j, c) in block_coords() {
            assert_eq!(
                y[((2 * h + i) * 4 + 2 * w + j) * 2 + c],
                x[(h * 2 + w) * 8 + (2 * i + j) * 2 + c]
            );
        }
        let mut back = vec![0u16; 32];
        let yv = TensorView::from_slice(vec![1, 4, 4, 2], &y);
        depth_space(
            &yv,
            2,
            false,
            &mut TensorMut::from_slice(vec![1, 2, 2, 8], &mut back),
        )
        .unwrap();
        assert_eq!(back, x);
    }

    fn block_coords() -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
        (0..32).map(|f| (f / 16, f / 8 % 2, f / 4 % 2, f / 2 % 2, f % 2))
    }
}
