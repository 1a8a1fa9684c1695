//! Depthwise convolution gradients: direct loops vectorised over channels.

use super::*;

// ------------------------------------------------------------ depthwise ----

/// Output positions `o` (and kernel taps) with `o * s + t * d - pad == i`.
#[inline]
fn taps(
    i: usize,
    pad: usize,
    k: usize,
    d: usize,
    s: usize,
    out: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..k).filter_map(move |t| {
        let v = (i + pad) as isize - (t * d) as isize;
        if v < 0 || !(v as usize).is_multiple_of(s) {
            return None;
        }
        let o = v as usize / s;
        (o < out).then_some((t, o))
    })
}

/// Depthwise input gradient, gathered per input row (NHWC).
pub(super) fn depthwise_input_grad<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &ConvGeom) {
    let (cin, cout, mult) = (g.cin, g.cout, g.multiplier);
    let row = g.w * cin;
    if row == 0 || dx.is_empty() {
        return;
    }
    if let Some(t) = transposed_geometry(g).filter(|_| mult == 1) {
        // Stride 1, multiplier 1: the forward depthwise convolution of dy
        // with the flipped filter.
        let mut ft = vec![W::ZERO; f.len()];
        for (t_, dst) in ft.chunks_exact_mut(cin).enumerate() {
            let src = g.kh * g.kw - 1 - t_;
            dst.copy_from_slice(&f[src * cin..(src + 1) * cin]);
        }
        return par_rows(dx, row, &t, |r, out| depthwise_row(dy, &ft, &t, r, out));
    }
    let body = |r: usize, out: &mut [W]| {
        let (n, iy) = (r / g.h, r % g.h);
        out.fill(W::ZERO);
        for (ky, oy) in taps(iy, g.pad_top, g.kh, g.dh, g.sh, g.oh) {
            let dy_row = &dy[(n * g.oh + oy) * g.ow * cout..][..g.ow * cout];
            for (ix, acc) in out.chunks_exact_mut(cin).enumerate() {
                for (kx, ox) in taps(ix, g.pad_left, g.kw, g.dw, g.sw, g.ow) {
                    let d = &dy_row[ox * cout..][..cout];
                    let fk = &f[(ky * g.kw + kx) * cout..][..cout];
                    if mult == 1 {
                        for ((a, &dv), &fv) in acc.iter_mut().zip(d).zip(fk) {
                            *a = *a + dv * fv;
                        }
                    } else {
                        for ((a, dm), fm) in acc
                            .iter_mut()
                            .zip(d.chunks_exact(mult))
                            .zip(fk.chunks_exact(mult))
                        {
                            let mut s = *a;
                            for (&dv, &fv) in dm.iter().zip(fm) {
                                s = s + dv * fv;
                            }
                            *a = s;
                        }
                    }
                }
            }
        }
    };
    let work = dx.len() * g.kh * g.kw * mult;
    if work < (1 << 16) || rayon::current_num_threads() == 1 {
        dx.chunks_mut(row).enumerate().for_each(|(r, o)| body(r, o));
    } else {
        dx.par_chunks_mut(row)
            .enumerate()
            .for_each(|(r, o)| body(r, o));
    }
}

/// Depthwise filter gradient `[kh, kw, cin, mult]`: partial filters per part
/// of the output rows.
pub(super) fn depthwise_filter_grad<W: Compute>(x: &[W], dy: &[W], df: &mut [W], g: &ConvGeom) {
    let cout = g.cout;
    let rows = g.n * g.oh;
    if df.is_empty() {
        return;
    }
    let min_rows = (4096 / (g.ow * g.kh * g.kw * cout).max(1)).max(1);
    partial_sums(rows, min_rows.max(8), df, |part, acc, _| {
        dw_filter_rows(x, dy, g, part, acc)
    });
}

/// Accumulates the depthwise filter gradient of output rows `part` into
/// `acc`, with the widest vector instructions the CPU has.
fn dw_filter_rows<W: Compute>(x: &[W], dy: &[W], g: &ConvGeom, part: Range<usize>, acc: &mut [W]) {
    #[cfg(target_arch = "x86_64")]
    match simd_level() {
        // SAFETY: simd_level() reports Avx512 only where the CPU has
        // AVX-512 F/DQ/VL/BW, AVX2 and FMA (cpu::probe).
        Simd::Avx512 => return unsafe { dw_filter_rows_avx512(x, dy, g, part, acc) },
        // SAFETY: Avx2 only where the CPU has AVX2 and FMA.
        Simd::Avx2 => return unsafe { dw_filter_rows_avx2(x, dy, g, part, acc) },
        Simd::Base => {}
    }
    dw_filter_rows_impl(x, dy, g, part, acc)
}

/// [`dw_filter_rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dw_filter_rows_avx512<W: Compute>(
    x: &[W],
    dy: &[W],
    g: &ConvGeom,
    part: Range<usize>,
    acc: &mut [W],
) {
    dw_filter_rows_impl(x, dy, g, part, acc)
}

/// [`dw_filter_rows`] compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dw_filter_rows_avx2<W: Compute>(
    x: &[W],
    dy: &[W],
    g: &ConvGeom,
    part: Range<usize>,
    acc: &mut [W],
) {
    dw_filter_rows_impl(x, dy, g, part, acc)
}

#[inline(always)]
fn dw_filter_rows_impl<W: Compute>(
    x: &[W],
    dy: &[W],
    g: &ConvGeom,
    part: Range<usize>,
    acc: &mut [W],
) {
    let (cin, cout, mult) = (g.cin, g.cout, g.multiplier);
    acc.fill(W::ZERO);
    for r in part {
        let (n, oy) = (r / g.oh, r % g.oh);
        let img = &x[n * g.h * g.w * cin..][..g.h * g.w * cin];
        for ky in 0..g.kh {
            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
            if iy < 0 || iy >= g.h as isize {
                continue;
            }
            let xrow = &img[iy as usize * g.w * cin..][..g.w * cin];
            for ox in 0..g.ow {
                let d = &dy[(r * g.ow + ox) * cout..][..cout];
                for kx in 0..g.kw {
                    let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                    if ix < 0 || ix >= g.w as isize {
                        continue;
                    }
                    let xs = &xrow[ix as usize * cin..][..cin];
                    let a = &mut acc[(ky * g.kw + kx) * cout..][..cout];
                    if mult == 1 {
                        for ((a, &xv), &dv) in a.iter_mut().zip(xs).zip(d) {
                            *a = *a + xv * dv;
                        }
                    } else {
                        for ((am, &xv), dm) in
                            a.chunks_exact_mut(mult).zip(xs).zip(d.chunks_exact(mult))
                        {
                            for (a, &dv) in am.iter_mut().zip(dm) {
                                *a = *a + xv * dv;
                            }
                        }
                    }
                }
            }
        }
    }
}
