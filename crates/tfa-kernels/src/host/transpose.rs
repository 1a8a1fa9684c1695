//! Transpose (general permutation).
//!
//! Dims of size 1 are dropped and runs of dims that stay adjacent and in order
//! are merged, so NHWC -> NCHW becomes a batched 2-D transpose `[N, HW, C] ->
//! [N, C, HW]`. When the innermost dim stays innermost, rows are copied whole;
//! otherwise the innermost input and output dims are transposed in cache
//! blocks. Data movement is dtype-agnostic: elements are moved as 1/2/4/8-byte
//! words.

use super::PAR_MIN_ELEMENTS;
use rayon::prelude::*;
use tfa_core::shape::strides;
use tfa_core::{Error, Result, TensorMut, TensorView};

/// A pointer that may cross threads: tasks write disjoint elements.
#[derive(Copy, Clone)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: every user hands each task a disjoint region behind the pointer.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above; no two tasks touch the same element.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole wrapper).
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

/// Reinterprets raw element bytes as words of the element's width. Errors when
/// the buffer is not aligned for it (TensorFlow buffers always are).
pub(crate) fn words<W: Copy>(b: &[u8]) -> Result<&[W]> {
    // SAFETY: W is a plain integer type; every bit pattern is valid.
    let (pre, mid, post) = unsafe { b.align_to::<W>() };
    if !pre.is_empty() || !post.is_empty() {
        return Err(Error::Internal("tensor buffer is not aligned".into()));
    }
    Ok(mid)
}

pub(crate) fn words_mut<W: Copy>(b: &mut [u8]) -> Result<&mut [W]> {
    // SAFETY: as in `words`.
    let (pre, mid, post) = unsafe { b.align_to_mut::<W>() };
    if !pre.is_empty() || !post.is_empty() {
        return Err(Error::Internal("tensor buffer is not aligned".into()));
    }
    Ok(mid)
}

/// Calls `$body` with `$W` bound to the unsigned integer type of `$size` bytes.
macro_rules! by_width {
    ($size:expr, $W:ident => $body:expr) => {
        match $size {
            1 => {
                type $W = u8;
                $body
            }
            2 => {
                type $W = u16;
                $body
            }
            4 => {
                type $W = u32;
                $body
            }
            8 => {
                type $W = u64;
                $body
            }
            s => Err(tfa_core::Error::Internal(format!(
                "unsupported element size {s}"
            ))),
        }
    };
}
pub(crate) use by_width;

/// Checks `perm` against rank `rank` with TensorFlow's messages.
pub fn check_perm(rank: usize, perm: &[i64]) -> Result<Vec<usize>> {
    if perm.len() != rank {
        return Err(Error::InvalidArgument(format!(
            "transpose expects a vector of size {rank}. But input(1) is a vector of size {}",
            perm.len()
        )));
    }
    // TensorFlow counts a negative entry from the end, once (-1 is the last
    // dimension), and reports the adjusted value. It narrows int64 entries
    // to int32 first, silently (2**32 reads as 0): here they are out of range.
    let dims = rank as i64;
    let adjusted: Vec<i64> = perm
        .iter()
        .map(|&p| if p < 0 { p + dims } else { p })
        .collect();
    let mut seen = vec![false; rank];
    for (&p, &d) in perm.iter().zip(&adjusted) {
        if i32::try_from(p).is_err() {
            return Err(Error::InvalidArgument(format!(
                "{p} is out of range [0 .. {rank})"
            )));
        }
        if !(0..dims).contains(&d) {
            return Err(Error::InvalidArgument(format!(
                "{d} is out of range [0 .. {rank})"
            )));
        }
        seen[d as usize] = true;
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        let list: Vec<String> = adjusted.iter().map(|p| p.to_string()).collect();
        return Err(Error::InvalidArgument(format!(
            "{missing} is missing from {{{}}}.",
            list.join(",")
        )));
    }
    Ok(adjusted.iter().map(|&d| d as usize).collect())
}

/// Output shape of transposing `shape` by `perm`.
pub fn transposed_shape(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    perm.iter().map(|&p| shape[p]).collect()
}

/// Drops size-1 dims and merges dims that stay adjacent: returns the reduced
/// input shape and permutation.
pub fn simplify(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // Keep dims of size != 1.
    let keep: Vec<usize> = (0..shape.len()).filter(|&d| shape[d] != 1).collect();
    let mut new_index = vec![usize::MAX; shape.len()];
    for (i, &d) in keep.iter().enumerate() {
        new_index[d] = i;
    }
    let s1: Vec<usize> = keep.iter().map(|&d| shape[d]).collect();
    let p1: Vec<usize> = perm
        .iter()
        .filter(|&&p| shape[p] != 1)
        .map(|&p| new_index[p])
        .collect();
    // Merge: output dims i, i+1 with p1[i+1] == p1[i] + 1 form one input run.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &p in &p1 {
        match groups.last_mut() {
            Some(g) if *g.last().unwrap() + 1 == p => g.push(p),
            _ => groups.push(vec![p]),
        }
    }
    // Groups ordered by their first input dim give the merged input shape.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| groups[g][0]);
    let mut rank_of = vec![0; groups.len()];
    for (r, &g) in order.iter().enumerate() {
        rank_of[g] = r;
    }
    let in_shape: Vec<usize> = order
        .iter()
        .map(|&g| groups[g].iter().map(|&d| s1[d]).product())
        .collect();
    let perm: Vec<usize> = (0..groups.len()).map(|g| rank_of[g]).collect();
    (in_shape, perm)
}

/// `out = transpose(x, perm)`; `perm` validated (see [`check_perm`]) and
/// `out.shape == transposed_shape(x.shape, perm)`.
pub fn transpose(x: &TensorView, perm: &[usize], out: &mut TensorMut) -> Result<()> {
    if x.dtype != out.dtype || out.shape != transposed_shape(&x.shape, perm) {
        return Err(Error::Internal("transpose output mismatch".into()));
    }
    let n = x.num_elements();
    if n == 0 {
        return Ok(());
    }
    let size = x.dtype.size();
    let src = &x.bytes()[..n * size];
    let dst = &mut out.bytes_mut()[..n * size];
    by_width!(size, W => transpose_words::<W>(words(src)?, &x.shape, perm, words_mut(dst)?))
}

/// Typed transpose of a contiguous row-major `src` of `shape`.
pub fn transpose_words<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    perm: &[usize],
    dst: &mut [T],
) -> Result<()> {
    let (shape, perm) = simplify(shape, perm);
    let n: usize = shape.iter().product();
    if src.len() < n || dst.len() < n {
        return Err(Error::Internal("transpose buffer too small".into()));
    }
    if n == 0 {
        return Ok(());
    }
    let (src, dst) = (&src[..n], &mut dst[..n]);
    let r = shape.len();
    if r <= 1 || perm.iter().enumerate().all(|(i, &p)| i == p) {
        dst.copy_from_slice(src);
        return Ok(());
    }
    let in_st = strides(&shape);
    let out_shape = transposed_shape(&shape, &perm);
    let out_st = strides(&out_shape);
    // Source stride of each output dim.
    let src_st: Vec<usize> = perm.iter().map(|&p| in_st[p]).collect();
    if perm[r - 1] == r - 1 {
        // Innermost dim stays: copy whole rows.
        let row = shape[r - 1];
        let outer_shape = &out_shape[..r - 1];
        let copy_rows = |first: usize, rows: &mut [T]| {
            for (k, d) in rows.chunks_mut(row).enumerate() {
                let off = offset_of(first + k, outer_shape, &src_st[..r - 1]);
                d.copy_from_slice(&src[off..off + row]);
            }
        };
        if n < PAR_MIN_ELEMENTS {
            copy_rows(0, dst);
        } else {
            let rows_per = (PAR_MIN_ELEMENTS / 2 / row).max(1);
            dst.par_chunks_mut(rows_per * row)
                .enumerate()
                .for_each(|(i, c)| copy_rows(i * rows_per, c));
        }
        return Ok(());
    }
    // Blocked 2-D transpose between input dim `p` (output innermost) and the
    // input innermost dim (at output position `q`), for every index of the
    // other dims.
    let p = perm[r - 1];
    let q = perm.iter().position(|&d| d == r - 1).unwrap();
    let rows = shape[p]; // a: along input dim p, output stride 1
    let cols = shape[r - 1]; // b: along input dim r-1, input stride 1
    let (sa, db) = (in_st[p], out_st[q]);
    let others: Vec<usize> = (0..r).filter(|&i| i != r - 1 && i != q).collect();
    let o_shape: Vec<usize> = others.iter().map(|&i| out_shape[i]).collect();
    let o_src: Vec<usize> = others.iter().map(|&i| src_st[i]).collect();
    let o_dst: Vec<usize> = others.iter().map(|&i| out_st[i]).collect();
    let n_outer: usize = o_shape.iter().product();
    const BLK: usize = 32;
    let a_blocks = rows.div_ceil(BLK);
    let tasks = n_outer * a_blocks;
    let dptr = SendPtr(dst.as_mut_ptr());
    let task = |t: usize| {
        let (o, ab) = (t / a_blocks, t % a_blocks);
        let (so, d_o) = offsets2(o, &o_shape, &o_src, &o_dst);
        let a0 = ab * BLK;
        let a1 = (a0 + BLK).min(rows);
        let dp = dptr;
        for b0 in (0..cols).step_by(BLK) {
            let b1 = (b0 + BLK).min(cols);
            for b in b0..b1 {
                // SAFETY: output elements (o, a0..a1, b) lie inside `dst`, and
                // tasks cover disjoint (o, a) ranges, so no two tasks write the
                // same element and nobody reads `dst` meanwhile.
                let d =
                    unsafe { std::slice::from_raw_parts_mut(dp.0.add(d_o + b * db + a0), a1 - a0) };
                let s = &src[so + a0 * sa + b..];
                for (j, v) in d.iter_mut().enumerate() {
                    *v = s[j * sa];
                }
            }
        }
    };
    if n < PAR_MIN_ELEMENTS {
        (0..tasks).for_each(task);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
    Ok(())
}

/// Source offset of linear index `i` over `shape` with strides `st`.
#[inline]
pub(crate) fn offset_of(mut i: usize, shape: &[usize], st: &[usize]) -> usize {
    let mut off = 0;
    for d in (0..shape.len()).rev() {
        off += (i % shape[d]) * st[d];
        i /= shape[d];
    }
    off
}

#[inline]
fn offsets2(mut i: usize, shape: &[usize], s1: &[usize], s2: &[usize]) -> (usize, usize) {
    let (mut a, mut b) = (0, 0);
    for d in (0..shape.len()).rev() {
        let k = i % shape[d];
        i /= shape[d];
        a += k * s1[d];
        b += k * s2[d];
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::Rng;

    fn reference(src: &[u32], shape: &[usize], perm: &[usize]) -> Vec<u32> {
        let out_shape = transposed_shape(shape, perm);
        let in_st = strides(shape);
        let n: usize = shape.iter().product();
        (0..n)
            .map(|i| {
                let src_st: Vec<usize> = perm.iter().map(|&p| in_st[p]).collect();
                src[offset_of(i, &out_shape, &src_st)]
            })
            .collect()
    }

    #[test]
    fn random_permutations_match_reference() {
        let mut rng = crate::test_rng();
        for it in 0..300 {
            let rank = rng.random_range(0..6);
            let big = it % 50 == 0;
            let shape: Vec<usize> = (0..rank)
                .map(|_| {
                    if big {
                        rng.random_range(1..40)
                    } else {
                        rng.random_range(0..6)
                    }
                })
                .collect();
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.shuffle(&mut rng);
            let n: usize = shape.iter().product();
            let src: Vec<u32> = (0..n as u32).collect();
            let mut dst = vec![0u32; n];
            transpose_words(&src, &shape, &perm, &mut dst).unwrap();
            assert_eq!(dst, reference(&src, &shape, &perm), "{shape:?} {perm:?}");
        }
    }

    #[test]
    fn nhwc_to_nchw_and_big_matrix() {
        for (shape, perm) in [
            (vec![2, 33, 65, 17], vec![0, 3, 1, 2]),
            (vec![2, 17, 33, 65], vec![0, 2, 3, 1]),
            (vec![300, 257], vec![1, 0]),
        ] {
            let n: usize = shape.iter().product();
            let src: Vec<u32> = (0..n as u32).collect();
            let mut dst = vec![0u32; n];
            transpose_words(&src, &shape, &perm, &mut dst).unwrap();
            assert_eq!(dst, reference(&src, &shape, &perm));
        }
    }

    #[test]
    fn perm_errors() {
        assert!(check_perm(2, &[0, 0])
            .unwrap_err()
            .to_string()
            .contains("1 is missing from {0,0}."));
        assert!(check_perm(2, &[0])
            .unwrap_err()
            .to_string()
            .contains("transpose expects a vector of size 2"));
        assert!(check_perm(2, &[0, 2]).is_err());
        // Negative entries count from the end, as TensorFlow takes them.
        assert_eq!(check_perm(4, &[0, -1, 1, 2]).unwrap(), vec![0, 3, 1, 2]);
        assert_eq!(
            check_perm(4, &[-5, 1, 2, 3]).unwrap_err().to_string(),
            "-1 is out of range [0 .. 4)"
        );
        assert_eq!(
            check_perm(4, &[0, -1, 3, 2]).unwrap_err().to_string(),
            "1 is missing from {0,3,3,2}."
        );
        assert!(check_perm(2, &[1 << 32, 1]).is_err());
    }
}
