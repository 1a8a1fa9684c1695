//! Conv2D input gradient: `dcol = dy · W^T` per tile of output pixels, then
//! col2im (scatter-add) into dx; 1x1 stride-1 unpadded convolutions are one
//! GEMM. Split from `conv_grad.rs` (the filter gradient and dispatch stay
//! there).

use super::*;

/// NHWC `dx` from NHWC `dy` and the HWIO filter, in the compute type
/// (low-precision products: `input_grad_lowp`).
pub(super) fn input_grad<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &ConvGeom) {
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let k = g.kh * g.kw * cin_g;
    let m = g.n * g.oh * g.ow;
    let threads = rayon::current_num_threads().max(1);
    if k == 0 {
        dx.fill(W::ZERO);
        return;
    }
    if is_direct(g) && m > 0 && cout_g > 0 {
        for grp in 0..groups {
            // SAFETY: dx rows of this group's columns (row stride cin), dy
            // rows (stride cout) and the filter's transposed group block
            // ([cout_g, cin_g] with strides (1, cout)) are all in bounds.
            unsafe {
                gemm_acc(
                    m,
                    cin_g,
                    cout_g,
                    dx.as_mut_ptr().add(grp * cin_g),
                    cin,
                    false,
                    dy[grp * cout_g..].as_ptr(),
                    (cout, 1),
                    f[grp * cout_g..].as_ptr(),
                    (1, cout),
                    threads,
                );
            }
        }
        return;
    }
    if let Some(t) = transposed_geometry(g) {
        // Stride 1: the input gradient is the forward convolution of dy
        // with the flipped, transposed filter (no col2im, one write of dx).
        return conv2d_nhwc(dy, &flip_transpose(f, g), dx, &t);
    }
    dx.par_chunks_mut(1 << 16).for_each(|c| c.fill(W::ZERO));
    if m == 0 || k == 0 || cout_g == 0 {
        return;
    }
    if k * cout_g * std::mem::size_of::<W>() > RHS_IN_CACHE {
        input_grad_image_chunks(dy, f, dx, g)
    } else {
        input_grad_tiles(dy, f, dx, g)
    }
}

/// [`input_grad`] with a large filter (packing it for every small tile would
/// dominate): chunks of whole images, one parallel GEMM for a chunk's patch
/// gradients, then col2im in parallel bands. `dx` is zero on entry.
fn input_grad_image_chunks<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &ConvGeom) {
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let k = g.kh * g.kw * cin_g;
    let (img_px, img_len) = (g.oh * g.ow, g.h * g.w * cin);
    let reach = (g.kh - 1) * g.dh;
    let threads = rayon::current_num_threads().max(1);
    // A large filter: packing it for every small tile would dominate.
    // Chunks of whole images: one parallel GEMM for the chunk's patch
    // gradients, then col2im in parallel bands.
    let per = (CHUNK_ELEMS / (img_px * k).max(1)).clamp(1, g.n);
    let mut dcol = vec![W::ZERO; per * img_px * k];
    for i0 in (0..g.n).step_by(per) {
        let imgs = per.min(g.n - i0);
        let rows = imgs * img_px;
        for grp in 0..groups {
            // SAFETY: dcol holds rows x k; dy rows [i0*img_px, +rows)
            // and the group's transposed filter block are in bounds.
            unsafe {
                gemm_acc(
                    rows,
                    k,
                    cout_g,
                    dcol.as_mut_ptr(),
                    k,
                    false,
                    dy[i0 * img_px * cout + grp * cout_g..].as_ptr(),
                    (cout, 1),
                    f[grp * cout_g..].as_ptr(),
                    (1, cout),
                    threads,
                );
            }
            let dcol = &dcol;
            scatter_bands(
                &mut dx[i0 * img_len..(i0 + imgs) * img_len],
                imgs,
                g.h,
                g.w * cin,
                g.oh,
                g.sh,
                g.pad_top,
                reach,
                rows * k,
                |n, oys, row0, out| {
                    let p = n * img_px + oys.start * g.ow;
                    let r = oys.len() * g.ow;
                    let c = &dcol[p * k..(p + r) * k];
                    col2im(c, g, oys.start * g.ow, r, grp * cin_g, cin_g, row0, out);
                },
            );
        }
    }
}

/// [`input_grad`] with a small filter: tiles of patch gradients that stay in
/// cache, each scattered into its band of `dx` (zero on entry).
fn input_grad_tiles<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &ConvGeom) {
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let k = g.kh * g.kw * cin_g;
    let img_px = g.oh * g.ow;
    let reach = (g.kh - 1) * g.dh;
    let (m, elem) = (g.n * img_px, std::mem::size_of::<W>());
    let tile = (TILE_BYTES / (k * elem)).clamp(64, 4096);
    let work = m * k * cout_g;
    scatter_bands(
        dx,
        g.n,
        g.h,
        g.w * cin,
        g.oh,
        g.sh,
        g.pad_top,
        reach,
        work,
        |n, oys, row0, rows| {
            let mut dcol = vec![W::ZERO; tile.min(oys.len() * g.ow) * k];
            let p0 = oys.start * g.ow;
            let p1 = oys.end * g.ow;
            let mut p = p0;
            while p < p1 {
                let r = tile.min(p1 - p);
                let m0 = n * img_px + p;
                for grp in 0..groups {
                    // SAFETY: dcol holds r x k; dy rows [m0, m0 + r) and the
                    // group's filter block transposed ([cout_g, k] with
                    // strides (1, cout)) are in bounds; dcol is private.
                    unsafe {
                        gemm_acc(
                            r,
                            k,
                            cout_g,
                            dcol.as_mut_ptr(),
                            k,
                            false,
                            dy[m0 * cout + grp * cout_g..].as_ptr(),
                            (cout, 1),
                            f[grp * cout_g..].as_ptr(),
                            (1, cout),
                            1,
                        );
                    }
                    col2im(&dcol[..r * k], g, p, r, grp * cin_g, cin_g, row0, rows);
                }
                p += r;
            }
        },
    );
}

/// The stride-1 input gradient's filter: HWIO `f` flipped in both spatial
/// axes with input and output channels swapped per group,
/// `[kh, kw, cout_g, cin]`. One task per tap, each transposing in square
/// blocks: element by element along a row, every read of a 512 x 512 tap
/// missed the cache (10 % of a 7x7x512 input gradient at batch 32 in `perf`).
pub(in crate::host) fn flip_transpose<T: Copy + Default + Send + Sync>(
    f: &[T],
    g: &ConvGeom,
) -> Vec<T> {
    const BLOCK: usize = 16;
    let (cin, cout, groups) = (g.cin, g.cout, g.groups.max(1));
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let mut ft = vec![T::default(); f.len()];
    let tap_len = cout_g * cin;
    if tap_len == 0 {
        return ft;
    }
    ft.par_chunks_mut(tap_len)
        .enumerate()
        .for_each(|(tap, dst)| {
            let (ky, kx) = (tap / g.kw, tap % g.kw);
            let src = &f[((g.kh - 1 - ky) * g.kw + (g.kw - 1 - kx)) * cin_g * cout..];
            for grp in 0..groups {
                for co0 in (0..cout_g).step_by(BLOCK) {
                    for ci0 in (0..cin_g).step_by(BLOCK) {
                        for co in co0..(co0 + BLOCK).min(cout_g) {
                            for ci in ci0..(ci0 + BLOCK).min(cin_g) {
                                dst[co * cin + grp * cin_g + ci] =
                                    src[ci * cout + grp * cout_g + co];
                            }
                        }
                    }
                }
            }
        });
    ft
}

/// Filter bytes (one group, `k x cout_g`) cheap enough to repack per tile.
const RHS_IN_CACHE: usize = 256 * 1024;

/// Patch-gradient elements per chunk of images (large-filter path).
const CHUNK_ELEMS: usize = 4 << 20;

/// For stride 1 (and padding no larger than the dilated window), the
/// forward convolution over `dy` whose output is `dx`: filter
/// `[kh, kw, cout_g, cin]` (flipped, transposed per group).
pub(in crate::host) fn transposed_geometry(g: &ConvGeom) -> Option<ConvGeom> {
    let (eh, ew) = ((g.kh - 1) * g.dh, (g.kw - 1) * g.dw);
    if g.sh != 1 || g.sw != 1 || g.pad_top > eh || g.pad_left > ew || g.n * g.h * g.w == 0 {
        return None;
    }
    Some(ConvGeom {
        h: g.oh,
        w: g.ow,
        cin: g.cout,
        cout: g.cin,
        oh: g.h,
        ow: g.w,
        pad_top: eh - g.pad_top,
        pad_left: ew - g.pad_left,
        ..*g
    })
}

/// Adds patch rows (pixels `[p0, p0 + r)` of one image, each `(ky, kx, c)`)
/// into the input rows starting at input row `row0`, channels `[c0, c0+cg)`.
#[allow(clippy::too_many_arguments)]
pub(in crate::host) fn col2im<W: Compute>(
    dcol: &[W],
    g: &ConvGeom,
    p0: usize,
    r: usize,
    c0: usize,
    cg: usize,
    row0: usize,
    rows: &mut [W],
) {
    let k = g.kh * g.kw * cg;
    let row_len = g.w * g.cin;
    for (i, col) in dcol.chunks_exact(k).take(r).enumerate() {
        let (oy, ox) = ((p0 + i) / g.ow, (p0 + i) % g.ow);
        let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        for ky in 0..g.kh {
            let iy = iy0 + (ky * g.dh) as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let dst_row = &mut rows[(iy as usize - row0) * row_len..][..row_len];
            for kx in 0..g.kw {
                let ix = ix0 + (kx * g.dw) as isize;
                if ix < 0 || ix >= g.w as isize {
                    continue;
                }
                let src = &col[(ky * g.kw + kx) * cg..][..cg];
                let dst = &mut dst_row[ix as usize * g.cin + c0..][..cg];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = *d + s;
                }
            }
        }
    }
}
