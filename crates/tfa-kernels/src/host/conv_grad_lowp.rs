//! Conv2D gradients that multiply in low precision (bfloat16 tensors, or
//! float32 under `ConvGeom::lowp`), with the operands read in their own type:
//! bfloat16 NHWC tensors go to the lowp GEMM's packers as stored. Widening
//! them first (as the other dtypes are) cost a float32 copy of `x`, `dy` and
//! `dx` per call — for a 56x56 batch 25-100 MB of fresh pages, more time
//! than the products themselves on 1x1 convolutions.
//!
//! * filter: `df = im2col(x)^T · dy` over tiles of output pixels, each part
//!   of the pixels (one per thread) summing its tiles into its own float32
//!   partial filter (as `conv_grad::filter_grad`); where the CPU has no
//!   bfloat16 product, each tile's operands are rounded into float32 copies
//!   for the float32 GEMM instead (`filter_grad_rounded`);
//! * input: for stride 1 the forward low-precision convolution of `dy` with
//!   the flipped, transposed filter, writing `dx` in its own type; else per
//!   image, GEMM tiles of patch gradients scatter-added (col2im) into a
//!   float32 image that is stored once.

use super::conv::{conv2d_nhwc_lowp, rounded::round_run, ConvGeom, LowpOut, TILE_BYTES};
use super::conv_grad::{
    col2im, fill_cols, flip_transpose, gemm_acc, partial_sums, transposed_geometry, FilterGradDims,
};
use super::lowp_gemm::{lowp_gemm_packed, selected_path, LowpPath, LowpSrc, LowpType, PackedB};
use rayon::prelude::*;
use tfa_core::Result;

/// `df[kh*kw*cin_g, cout]` (HWIO, float32 sums) from NHWC `x` and `dy`,
/// every product of `lowp`-rounded operands.
pub(super) fn filter_grad_lowp<S: LowpSrc + Default>(
    x: &[S],
    dy: &[S],
    df: &mut [f32],
    g: &ConvGeom,
    lowp: LowpType,
) {
    let Some(dims) = FilterGradDims::of(g) else {
        df.fill(0.0);
        return;
    };
    let path = selected_path(lowp);
    if path == LowpPath::Portable {
        return filter_grad_rounded(x, dy, df, g, &dims, lowp);
    }
    let FilterGradDims {
        m,
        groups,
        cin_g,
        cout_g,
        k,
        direct,
    } = dims;
    let cout = g.cout;
    // Tile rows are the GEMM's depth: long enough to amortise the passes
    // over the partial filter, short enough that a tile's im2col columns
    // stay in cache.
    let tile = if direct {
        m
    } else {
        (4 * TILE_BYTES / (k * 4)).clamp(256, 2048)
    };
    partial_sums(m, 512, df, |rows, acc, threads| {
        let par = threads > 1;
        let mut cols: Vec<S> = Vec::new();
        // A later tile's product, added into `acc`.
        let mut prod: Vec<f32> = Vec::new();
        let mut first = true;
        let mut m0 = rows.start;
        while m0 < rows.end {
            let r = tile.min(rows.end - m0);
            if !direct {
                cols.resize(r * k, S::default());
            }
            for grp in 0..groups {
                let (lhs, lrs) = if direct {
                    (x[m0 * g.cin + grp * cin_g..].as_ptr(), g.cin)
                } else {
                    fill_cols(x, g, m0, r, grp * cin_g, cin_g, &mut cols, threads);
                    (cols.as_ptr(), k)
                };
                let dst = &mut acc[grp * cout_g..];
                // SAFETY: dy rows [m0, m0 + r), this group's cout_g columns
                // (row stride cout), lie in dy; lhs^T (k x r, column stride
                // lrs) lies in x or cols; `dst` holds (k - 1) * cout + cout_g
                // elements from its start at row stride cout, `prod` k x cout_g;
                // neither aliases an operand.
                unsafe {
                    let pb = PackedB::new(
                        path,
                        r,
                        cout_g,
                        dy[m0 * cout + grp * cout_g..].as_ptr(),
                        (cout as isize, 1),
                        lowp,
                        par,
                    );
                    if first {
                        lowp_gemm_packed(k, lhs, (1, lrs as isize), &pb, dst, cout, par);
                    } else {
                        prod.resize(k * cout_g, 0.0);
                        lowp_gemm_packed(k, lhs, (1, lrs as isize), &pb, &mut prod, cout_g, par);
                        for (row, p) in dst.chunks_mut(cout).zip(prod.chunks(cout_g)) {
                            for (o, v) in row.iter_mut().zip(p) {
                                *o += v;
                            }
                        }
                    }
                }
            }
            first = false;
            m0 += r;
        }
    });
}

/// [`filter_grad_lowp`] where the CPU has no bfloat16 product instruction
/// (`lowp_gemm`'s portable path): per tile of output pixels the patches
/// and the `dy` rows are rounded into contiguous float32 copies and the
/// float32 GEMM multiplies them, reading the patches transposed itself.
/// Through `lowp_gemm` the transposed patches would be copied element by
/// element at a stride (ResNet50's training step under
/// `allow_mix_precision_bf16` on a 2-core AVX2 EPYC: `Conv2DBackpropFilter`
/// took 9.1 s of a 23 s step against 6.2 s in float32).
fn filter_grad_rounded<S: LowpSrc + Default>(
    x: &[S],
    dy: &[S],
    df: &mut [f32],
    g: &ConvGeom,
    dims: &FilterGradDims,
    lowp: LowpType,
) {
    let &FilterGradDims {
        m,
        groups,
        cin_g,
        cout_g,
        k,
        direct,
    } = dims;
    let cout = g.cout;
    // As `conv_grad::filter_grad`'s tiles, for 1x1 convolutions too: here
    // their rows are copied.
    let tile = (4 * TILE_BYTES / (k * 4)).clamp(256, 2048);
    partial_sums(m, 512, df, |rows, acc, threads| {
        let mut cols: Vec<S> = Vec::new();
        let (mut lhs, mut rhs) = (Vec::new(), Vec::new());
        let mut first = true;
        let mut m0 = rows.start;
        while m0 < rows.end {
            let r = tile.min(rows.end - m0);
            for grp in 0..groups {
                lhs.resize(r * k, 0f32);
                if direct {
                    for (i, row) in lhs.chunks_mut(k).enumerate() {
                        let at = (m0 + i) * g.cin + grp * cin_g;
                        round_run(&x[at..at + cin_g], row, lowp);
                    }
                } else {
                    cols.resize(r * k, S::default());
                    fill_cols(x, g, m0, r, grp * cin_g, cin_g, &mut cols, threads);
                    round_run(&cols, &mut lhs, lowp);
                }
                rhs.resize(r * cout_g, 0f32);
                for (i, row) in rhs.chunks_mut(cout_g).enumerate() {
                    let at = (m0 + i) * cout + grp * cout_g;
                    round_run(&dy[at..at + cout_g], row, lowp);
                }
                // SAFETY: lhs^T is k x r (column stride k) and rhs r x cout_g
                // row-major, both local; the destination k x cout_g block at
                // row stride cout from column grp * cout_g lies in `acc`.
                unsafe {
                    gemm_acc(
                        k,
                        cout_g,
                        r,
                        acc.as_mut_ptr().add(grp * cout_g),
                        cout,
                        !first,
                        lhs.as_ptr(),
                        (1, k),
                        rhs.as_ptr(),
                        (cout_g, 1),
                        threads,
                    );
                }
            }
            first = false;
            m0 += r;
        }
    });
}

/// NHWC `dx` from NHWC `dy` and the HWIO filter, every product of
/// `lowp`-rounded operands: for stride 1 the forward convolution of `dy`
/// with the flipped filter; else, image by image, tiles of patch gradients
/// `dcol = dy · W^T` (the filter packed once for every tile) scatter-added
/// into a float32 image, stored once in `O`.
pub(super) fn input_grad_lowp<S: LowpSrc + Default, O: LowpOut>(
    dy: &[S],
    f: &[S],
    dx: &mut [O],
    g: &ConvGeom,
    lowp: LowpType,
) -> Result<()> {
    if let Some(t) = transposed_geometry(g) {
        let ft = flip_transpose(f, g);
        return conv2d_nhwc_lowp(dy, &ft, dx, &t, lowp, None);
    }
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let k = g.kh * g.kw * cin_g;
    let (img_px, img_len) = (g.oh * g.ow, g.h * g.w * cin);
    if k == 0 || cout_g == 0 || img_px == 0 || img_len == 0 {
        dx.fill(O::default());
        return Ok(());
    }
    let path = selected_path(lowp);
    let packed: Vec<PackedB> = (0..groups)
        .map(|grp| {
            // SAFETY: the group's filter block transposed, cout_g x k at
            // strides (1, cout), lies in f (HWIO, k rows of cout).
            unsafe {
                let b = f[grp * cout_g..].as_ptr();
                PackedB::new(path, cout_g, k, b, (1, cout as isize), lowp, true)
            }
        })
        .collect();
    let tile = (TILE_BYTES / (k * 4)).clamp(64, 4096).min(img_px);
    // Image `n` into `sums` (zeroed here), GEMMs parallel when `par`.
    let image = |n: usize, sums: &mut [f32], dcol: &mut Vec<f32>, par: bool| {
        sums.fill(0.0);
        dcol.resize(tile * k, 0.0);
        let mut p = 0;
        while p < img_px {
            let r = tile.min(img_px - p);
            for (grp, pb) in packed.iter().enumerate() {
                let a = dy[(n * img_px + p) * cout + grp * cout_g..].as_ptr();
                // SAFETY: dy rows [n*img_px + p, +r), this group's cout_g
                // columns at row stride cout, lie in dy; dcol holds r x k.
                unsafe { lowp_gemm_packed(r, a, (cout as isize, 1), pb, dcol, k, par) };
                col2im(&dcol[..r * k], g, p, r, grp * cin_g, cin_g, 0, sums);
            }
            p += r;
        }
    };
    let image_out = |n: usize, out: &mut [O], sums: &mut Vec<f32>, dcol: &mut Vec<f32>, par| {
        if let Some(out) = O::as_f32(out) {
            return image(n, out, dcol, par);
        }
        sums.resize(img_len, 0.0);
        image(n, sums, dcol, par);
        O::store(sums, out);
    };
    if g.n >= rayon::current_num_threads() {
        dx.par_chunks_mut(img_len).enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(sums, dcol), (n, out)| image_out(n, out, sums, dcol, false),
        );
    } else {
        let (mut sums, mut dcol) = (Vec::new(), Vec::new());
        for (n, out) in dx.chunks_mut(img_len).enumerate() {
            image_out(n, out, &mut sums, &mut dcol, true);
        }
    }
    Ok(())
}
