//! DepthwiseConv2dNative: direct loops vectorised over channels.

use super::*;

// ------------------------------------------------------------- depthwise ----

/// DepthwiseConv2dNative: filter `[kh, kw, cin, multiplier]`, output channel
/// `c * multiplier + m`.
pub fn depthwise_conv2d(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &ConvGeom,
) -> Result<()> {
    if out.num_elements() == 0 {
        return Ok(());
    }
    check_shapes(input, filter, out, g, &[g.kh, g.kw, g.cin, g.multiplier])?;
    match out.dtype {
        DType::F32 => depthwise_typed(input.data::<f32>()?, filter.data()?, out.data_mut()?, g),
        DType::F64 => depthwise_typed(input.data::<f64>()?, filter.data()?, out.data_mut()?, g),
        DType::F16 => depthwise_typed(input.data::<f16>()?, filter.data()?, out.data_mut()?, g),
        DType::BF16 => depthwise_typed(input.data::<bf16>()?, filter.data()?, out.data_mut()?, g),
        d => {
            return Err(Error::Unimplemented(format!(
                "DepthwiseConv2dNative is not defined for {d}"
            )))
        }
    }
    Ok(())
}

/// DepthwiseConv2dNative with `epilogue` run on each task's output rows as
/// soon as they are done, while they are in cache (the fused batch-norm and
/// activation after it). Returns whether it ran: only the float32 NHWC path
/// has per-row tasks; elsewhere the caller finishes the output itself.
pub fn depthwise_conv2d_with_epilogue(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &ConvGeom,
    epilogue: &RowsEpilogue,
) -> Result<bool> {
    if out.dtype != DType::F32 || g.format != DataFormat::Nhwc {
        depthwise_conv2d(input, filter, out, g)?;
        return Ok(false);
    }
    if out.num_elements() == 0 {
        return Ok(true);
    }
    check_shapes(input, filter, out, g, &[g.kh, g.kw, g.cin, g.multiplier])?;
    let (x, f, y) = (
        input.data::<f32>()?,
        filter.data::<f32>()?,
        out.data_mut::<f32>()?,
    );
    let row = g.ow * g.cout;
    if row == 0 {
        return Ok(true);
    }
    // Image rows per task: about a conv tile's worth of output (at least one).
    let per = (EPILOGUE_TILE / row).max(1);
    let task = |(t, out): (usize, &mut [f32])| -> Result<()> {
        for (i, o) in out.chunks_mut(row).enumerate() {
            depthwise_row(x, f, g, t * per + i, o);
        }
        run_epilogue(Some(epilogue), t * per * g.ow, out)
    };
    if !rows_in_parallel(y.len(), g) {
        y.chunks_mut(per * row).enumerate().try_for_each(task)
    } else {
        y.par_chunks_mut(per * row).enumerate().try_for_each(task)
    }?;
    Ok(true)
}

/// Output elements per epilogue call of [`depthwise_conv2d_with_epilogue`]:
/// blocks of the size the fused programs use, so they stay in L2.
const EPILOGUE_TILE: usize = 16384;

fn depthwise_typed<T: Widen>(x: &[T], f: &[T], y: &mut [T], g: &ConvGeom) {
    if y.is_empty() {
        return;
    }
    let ft: Vec<T::W> = f.iter().map(|&v| v.widen()).collect();
    let row = g.ow * g.cout;
    if g.format == DataFormat::Nhwc && std::any::TypeId::of::<T>() == std::any::TypeId::of::<T::W>()
    {
        // SAFETY: T and T::W are the same type (checked just above), so the
        // same pointer and length describe the same elements.
        let x: &[T::W] = unsafe { std::slice::from_raw_parts(x.as_ptr() as *const T::W, x.len()) };
        // SAFETY: as for `x`; the new slice reborrows `y` exclusively.
        let y: &mut [T::W] =
            unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut T::W, y.len()) };
        par_rows(y, row, g, |r, out| depthwise_row(x, &ft, g, r, out));
        return;
    }
    let xt = widened_nhwc(x, g);
    let mut yt = vec![T::W::default(); y.len()];
    par_rows(&mut yt, row, g, |r, out| depthwise_row(&xt, &ft, g, r, out));
    store_nhwc::<T>(yt, y, g);
}

/// Whether `out_len` outputs of a `g` window are worth splitting between
/// threads.
fn rows_in_parallel(out_len: usize, g: &ConvGeom) -> bool {
    out_len * g.kh * g.kw >= (1 << 15) && rayon::current_num_threads() > 1
}

/// Runs `f(row_index, row)` over the `n * oh` output rows, in parallel when
/// the work pays for it.
pub(crate) fn par_rows<W: Send>(
    y: &mut [W],
    row: usize,
    g: &ConvGeom,
    f: impl Fn(usize, &mut [W]) + Sync,
) {
    if row == 0 {
        return;
    }
    if !rows_in_parallel(y.len(), g) {
        y.chunks_mut(row).enumerate().for_each(|(r, o)| f(r, o));
    } else {
        y.par_chunks_mut(row).enumerate().for_each(|(r, o)| f(r, o));
    }
}

/// One output row `r = n * oh + oy` of a depthwise convolution (NHWC), with
/// the widest vector instructions the CPU has.
pub(crate) fn depthwise_row<W: Compute>(x: &[W], f: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    #[cfg(target_arch = "x86_64")]
    match crate::host::cpu::simd_level() {
        // SAFETY: simd_level() reports Avx512 only where the CPU has
        // AVX-512 F/DQ/VL/BW, AVX2 and FMA (cpu::probe).
        Simd::Avx512 => return unsafe { depthwise_row_avx512(x, f, g, r, out) },
        // SAFETY: Avx2 only where the CPU has AVX2 and FMA.
        Simd::Avx2 => return unsafe { depthwise_row_avx2(x, f, g, r, out) },
        Simd::Base => {}
    }
    depthwise_row_impl::<W, false>(x, f, g, r, out)
}

/// [`depthwise_row`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn depthwise_row_avx512<W: Compute>(
    x: &[W],
    f: &[W],
    g: &ConvGeom,
    r: usize,
    out: &mut [W],
) {
    depthwise_row_impl::<W, true>(x, f, g, r, out)
}

/// [`depthwise_row`] compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_row_avx2<W: Compute>(x: &[W], f: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    depthwise_row_impl::<W, true>(x, f, g, r, out)
}

/// Channels per register block.
const CB: usize = 64;

#[inline(always)]
fn madd<W: Compute, const FMA: bool>(a: W, b: W, c: W) -> W {
    if FMA {
        a.fused(b, c)
    } else {
        a * b + c
    }
}

/// The valid kernel taps of output pixels and their window's first row.
struct Window {
    ky: std::ops::Range<usize>,
    kx: std::ops::Range<usize>,
    iy0: isize,
}

/// Channels `[c0, c0 + B)` of `P` neighbouring depthwise output pixels
/// (multiplier 1) that share the valid taps of `win` (pixel p's window
/// starts at column `ix0s[p]`), accumulated in registers; each filter load
/// serves all P pixels. `out` starts at channel c0 of the first pixel.
#[inline(always)]
fn dw_block<W: Compute, const FMA: bool, const B: usize, const P: usize>(
    img: &[W],
    f: &[W],
    g: &ConvGeom,
    win: &Window,
    ix0s: [isize; P],
    c0: usize,
    out: &mut [W],
) {
    let mut acc = [[W::ZERO; B]; P];
    for ky in win.ky.clone() {
        let iy = (win.iy0 + (ky * g.dh) as isize) as usize;
        for kx in win.kx.clone() {
            let fo = (ky * g.kw + kx) * g.cout + c0;
            let fs: &[W; B] = f[fo..fo + B].try_into().unwrap();
            for p in 0..P {
                let ix = (ix0s[p] + (kx * g.dw) as isize) as usize;
                let xo = (iy * g.w + ix) * g.cin + c0;
                let xs: &[W; B] = img[xo..xo + B].try_into().unwrap();
                for j in 0..B {
                    acc[p][j] = madd::<W, FMA>(xs[j], fs[j], acc[p][j]);
                }
            }
        }
    }
    for (p, a) in acc.iter().enumerate() {
        out[p * g.cout..p * g.cout + B].copy_from_slice(a);
    }
}

/// All channels of `P` neighbouring output pixels (multiplier 1), in
/// register blocks of `BIG`, 16, 4 and 1 channels.
#[inline(always)]
fn dw_pixels<W: Compute, const FMA: bool, const P: usize, const BIG: usize>(
    img: &[W],
    f: &[W],
    g: &ConvGeom,
    win: &Window,
    ix0s: [isize; P],
    out: &mut [W],
) {
    let cin = g.cin;
    let mut c0 = 0;
    while c0 + BIG <= cin {
        dw_block::<W, FMA, BIG, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += BIG;
    }
    while c0 + 16 <= cin {
        dw_block::<W, FMA, 16, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += 16;
    }
    while c0 + 4 <= cin {
        dw_block::<W, FMA, 4, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += 4;
    }
    while c0 < cin {
        dw_block::<W, FMA, 1, P>(img, f, g, win, ix0s, c0, &mut out[c0..]);
        c0 += 1;
    }
}

#[inline(always)]
fn depthwise_row_impl<W: Compute, const FMA: bool>(
    x: &[W],
    f: &[W],
    g: &ConvGeom,
    r: usize,
    out: &mut [W],
) {
    let (n, oy) = (r / g.oh, r % g.oh);
    let (cin, cout, mult) = (g.cin, g.cout, g.multiplier);
    let img = &x[n * g.h * g.w * cin..(n + 1) * g.h * g.w * cin];
    let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
    // Valid kernel rows for this output row.
    let ky0 = if iy0 < 0 {
        ((-iy0) as usize).div_ceil(g.dh)
    } else {
        0
    };
    let ky1 = g.kh.min(
        if iy0 >= g.h as isize {
            0
        } else {
            (g.h as isize - iy0) as usize
        }
        .div_ceil(g.dh),
    );
    // Window origin column and valid kernel columns of output column ox.
    let cols = |ox: usize| {
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        let kx0 = if ix0 < 0 {
            ((-ix0) as usize).div_ceil(g.dw)
        } else {
            0
        };
        let kx1 = g.kw.min(
            if ix0 >= g.w as isize {
                0
            } else {
                (g.w as isize - ix0) as usize
            }
            .div_ceil(g.dw),
        );
        (ix0, kx0, kx1)
    };
    let mut ox = 0;
    while ox < g.ow {
        let (ix0, kx0, kx1) = cols(ox);
        if mult == 1 {
            let full = |k0: usize, k1: usize| k0 == 0 && k1 == g.kw;
            let pair = ox + 1 < g.ow && full(kx0, kx1) && {
                let (_, a, b) = cols(ox + 1);
                full(a, b)
            };
            let win = Window {
                ky: ky0..ky1,
                kx: kx0..kx1,
                iy0,
            };
            let px = &mut out[ox * cout..];
            if pair {
                let ix1 = ix0 + g.sw as isize;
                dw_pixels::<W, FMA, 2, 32>(img, f, g, &win, [ix0, ix1], px);
                ox += 2;
            } else {
                dw_pixels::<W, FMA, 1, CB>(img, f, g, &win, [ix0], px);
                ox += 1;
            }
            continue;
        }
        let acc_px = &mut out[ox * cout..(ox + 1) * cout];
        ox += 1;
        {
            acc_px.fill(W::ZERO);
            for ky in ky0..ky1 {
                let iy = (iy0 + (ky * g.dh) as isize) as usize;
                for kx in kx0..kx1 {
                    let ix = (ix0 + (kx * g.dw) as isize) as usize;
                    let xs = &img[(iy * g.w + ix) * cin..][..cin];
                    let fk = &f[(ky * g.kw + kx) * cout..][..cout];
                    for ((a, &xv), fm) in acc_px
                        .chunks_exact_mut(mult)
                        .zip(xs)
                        .zip(fk.chunks_exact(mult))
                    {
                        for (ai, &fv) in a.iter_mut().zip(fm) {
                            *ai = madd::<W, FMA>(xv, fv, *ai);
                        }
                    }
                }
            }
        }
    }
}
