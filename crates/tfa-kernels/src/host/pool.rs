//! Pooling kernels (NHWC): direct loops over each window, vectorised over
//! channels, parallel over output rows. NCHW is transposed to NHWC and back;
//! float16/bfloat16 compute in float32 and round once.
//!
//! Semantics follow TensorFlow's CPU kernels: padded positions never take
//! part (MaxPool ignores them, AvgPool divides by the number of valid input
//! elements in the window); MaxPool also pools across depth
//! (`ksize[depth] > 1`, spatial window 1x1).

use super::conv::{
    check_explicit_paddings, par_rows, windowed_output, Compute, ConvGeom, DataFormat, Padding,
    Widen,
};
#[cfg(target_arch = "x86_64")]
use super::cpu::Simd;
use half::{bf16, f16};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

impl PoolKind {
    fn op(self) -> &'static str {
        match self {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
        }
    }
}

/// Pool attributes as the op gives them (lists in data-format order).
#[derive(Copy, Clone, Debug)]
pub struct PoolAttrs<'a> {
    pub ksize: &'a [i64],
    pub strides: &'a [i64],
    pub padding: Padding,
    /// Empty unless `padding` is EXPLICIT (MaxPool only).
    pub explicit_paddings: &'a [i64],
    pub data_format: DataFormat,
}

/// Pool geometry: the window in NHWC terms (`conv.cin` input channels,
/// `conv.cout` output channels) and the depth window (1 for spatial pooling).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub conv: ConvGeom,
    pub depth_window: usize,
}

impl PoolGeom {
    pub fn output_shape(&self) -> Vec<usize> {
        self.conv.output_shape()
    }
}

/// Every window dimension positive (the message of TensorFlow's default
/// float32 pooling kernels).
fn check_ksize_positive(ksize: &[i64]) -> Result<()> {
    if ksize.iter().any(|&k| k <= 0) {
        let list: Vec<String> = ksize.iter().map(|k| k.to_string()).collect();
        return Err(Error::InvalidArgument(format!(
            "Sliding window ksize must be positive. The specified or inferred ksize is: {}",
            list.join(",")
        )));
    }
    Ok(())
}

/// The checks TensorFlow's pooling kernels make when they are constructed
/// (`MaxPoolingOp`, `AvgPoolingOp` and their gradients), in their order.
fn check_pool_attrs(a: &PoolAttrs) -> Result<()> {
    if a.ksize.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window ksize field must specify 4 dimensions".into(),
        ));
    }
    check_ksize_positive(a.ksize)?;
    if a.strides.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window stride field must specify 4 dimensions".into(),
        ));
    }
    check_explicit_paddings(a.padding, a.explicit_paddings, a.data_format)?;
    let [dn, ..] = a.data_format.dims();
    if a.ksize[dn] != 1 || a.strides[dn] != 1 {
        return Err(Error::Unimplemented(
            "Pooling is not yet supported on the batch dimension.".into(),
        ));
    }
    Ok(())
}

/// The pool's windows on an input of `[n, h, w, c]` (in `a.data_format`):
/// TensorFlow's `PoolParameters`, with its error classes. A depth stride
/// with a depth window of 1 is ignored, as TensorFlow ignores it.
pub fn pool_geometry(kind: PoolKind, input: &[usize], a: &PoolAttrs) -> Result<PoolGeom> {
    check_pool_attrs(a)?;
    if input.len() != 4 {
        return Err(Error::InvalidArgument(format!(
            "tensor_in_shape must have 2 spatial dimensions. {} {}",
            input.len(),
            match a.data_format {
                DataFormat::Nhwc => "NHWC",
                DataFormat::Nchw => "NCHW",
            }
        )));
    }
    let [_, dh, dw, dc] = a.data_format.dims();
    let [n, h, w, c] = a.data_format.nhwc(input);
    // All positive (`check_pool_attrs`).
    let (kh, kw, kd) = (
        a.ksize[dh] as usize,
        a.ksize[dw] as usize,
        a.ksize[dc] as usize,
    );
    if kd != 1 && (kh != 1 || kw != 1) {
        return Err(Error::Unimplemented(
            "MaxPooling supports exactly one of pooling across depth or pooling across width/height."
                .into(),
        ));
    }
    let (eh, ew) = if a.padding == Padding::Explicit {
        let e = a.explicit_paddings;
        let (eh, ew) = ((e[2 * dh], e[2 * dh + 1]), (e[2 * dw], e[2 * dw + 1]));
        for (side, pad, window) in [
            ("Top", eh.0, kh),
            ("Bottom", eh.1, kh),
            ("Left", ew.0, kw),
            ("Right", ew.1, kw),
        ] {
            if pad >= window as i64 {
                return Err(Error::InvalidArgument(format!(
                    "{side} padding {pad} needs to be smaller than the window size {window}"
                )));
            }
        }
        (eh, ew)
    } else {
        ((0, 0), (0, 0))
    };
    let mut conv = ConvGeom {
        n,
        h,
        w,
        cin: c,
        kh,
        kw,
        cout: c,
        groups: 1,
        multiplier: 1,
        oh: h,
        ow: w,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pad_top: 0,
        pad_left: 0,
        format: a.data_format,
        lowp: None,
    };
    if kd != 1 {
        // Depthwise max pooling: TensorFlow's PoolParameters, then its
        // kernels' own limits. Spatially a 1x1 window of stride 1: every
        // input pixel is an output pixel (as TensorFlow's DepthwiseMaxPool).
        if c % kd != 0 {
            return Err(Error::Unimplemented(
                "Depthwise max pooling requires the depth window to evenly divide the input depth"
                    .into(),
            ));
        }
        if a.strides[dc] != kd as i64 {
            return Err(Error::Unimplemented(
                "Depthwise max pooling requires the depth window to equal the depth stride".into(),
            ));
        }
        if kind == PoolKind::Avg {
            return Err(Error::Unimplemented(
                "Non-spatial pooling is not yet supported. Volunteers? :)".into(),
            ));
        }
        if a.padding == Padding::Explicit {
            return Err(Error::Unimplemented(
                "Depthwise max pooling does not support explicit padding.".into(),
            ));
        }
        conv.cout = c / kd;
        return Ok(PoolGeom {
            conv,
            depth_window: kd,
        });
    }
    // Strides are checked here only: TensorFlow's depth pooling ignores
    // the spatial ones, its spatial pooling the depth one.
    let y = windowed_output(h, kh, 1, a.strides[dh], a.padding, eh)?;
    let x = windowed_output(w, kw, 1, a.strides[dw], a.padding, ew)?;
    conv.sh = a.strides[dh] as usize;
    conv.sw = a.strides[dw] as usize;
    conv.oh = y.out;
    conv.ow = x.out;
    conv.pad_top = y.pad_before;
    conv.pad_left = x.pad_before;
    Ok(PoolGeom {
        conv,
        depth_window: 1,
    })
}

/// MaxPoolGrad's windows: the forward's, and no pooling across depth
/// (TensorFlow's `MaxPoolingGradOp` refuses a depth window or stride).
pub fn max_pool_grad_geometry(input: &[usize], a: &PoolAttrs) -> Result<PoolGeom> {
    check_pool_attrs(a)?;
    let [.., dc] = a.data_format.dims();
    if a.ksize[dc] != 1 || a.strides[dc] != 1 {
        return Err(Error::Unimplemented(
            "MaxPoolingGrad is not yet supported on the depth dimension.".into(),
        ));
    }
    pool_geometry(PoolKind::Max, input, a)
}

/// AvgPoolGrad's windows, as TensorFlow 2.21's `AvgPoolingGradOp` takes its
/// arguments: `orig` is `orig_input_shape`, `grad` the grad's shape (both in
/// `a.data_format`). TensorFlow spreads each grad element over its window
/// clipped to the input, over the grad's own rows, columns and images: a
/// grad whose spatial size differs from the forward output is taken (rows
/// or columns whose window would start past the input are an error), and so
/// is one with fewer images (the others get no gradient). A grad with
/// another depth, or more images, TensorFlow reads or writes out of bounds
/// (or scrambles): refused, as newer TensorFlow refuses every mismatch. The
/// geometry's `n`, `oh` and `ow` are the grad's. `None`: the output is empty
/// (nothing else is checked).
pub fn avg_pool_grad_geometry(
    orig: &[usize],
    grad: &[usize],
    a: &PoolAttrs,
) -> Result<Option<PoolGeom>> {
    // AvgPoolingGradOp's constructor: no ksize > 0 check, no depth check.
    if a.ksize.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window ksize field must specify 4 dimensions".into(),
        ));
    }
    if a.strides.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window strides field must specify 4 dimensions".into(),
        ));
    }
    let [dn, dh, dw, dc] = a.data_format.dims();
    if a.ksize[dn] != 1 || a.strides[dn] != 1 {
        return Err(Error::Unimplemented(
            "Pooling is not yet supported on the batch dimension.".into(),
        ));
    }
    if orig.len() != 4 || grad.len() != 4 {
        return Err(Error::Internal("AvgPoolGrad shapes must be 4-D".into()));
    }
    // The default float32 kernel checks the window before anything else;
    // TensorFlow's Eigen kernel would take a size-0 window (or a zero
    // stride with an empty output), making zeros.
    check_ksize_positive(a.ksize)?;
    let [n, h, w, c] = a.data_format.nhwc(orig);
    let (kh, kw) = (a.ksize[dh] as usize, a.ksize[dw] as usize);
    let y = windowed_output(h, kh, 1, a.strides[dh], a.padding, (0, 0))?;
    let x = windowed_output(w, kw, 1, a.strides[dw], a.padding, (0, 0))?;
    if orig.iter().product::<usize>() == 0 {
        return Ok(None);
    }
    if a.ksize[dc] != 1 {
        return Err(Error::Unimplemented(
            "Non-spatial pooling is not yet supported. Volunteers? :)".into(),
        ));
    }
    let [gn, gh, gw, gc] = a.data_format.nhwc(grad);
    if gc != c || gn > n {
        return Err(Error::InvalidArgument(format!(
            "Expected grad shape to be {}, but got {}",
            fmt_shape(&a.data_format.shape(n, y.out, x.out, c)),
            fmt_shape(grad)
        )));
    }
    let (sh, sw) = (a.strides[dh] as usize, a.strides[dw] as usize);
    if (gh > 0 && (gh - 1) * sh > h) || (gw > 0 && (gw - 1) * sw > w) {
        return Err(Error::InvalidArgument(
            "index * stride must be less than or equal to input size".into(),
        ));
    }
    Ok(Some(PoolGeom {
        conv: ConvGeom {
            n: gn,
            h,
            w,
            cin: c,
            kh,
            kw,
            cout: c,
            groups: 1,
            multiplier: 1,
            oh: gh,
            ow: gw,
            sh,
            sw,
            dh: 1,
            dw: 1,
            pad_top: y.pad_before,
            pad_left: x.pad_before,
            format: a.data_format,
            lowp: None,
        },
        depth_window: 1,
    }))
}

/// MaxPool or AvgPool of `input` into `out` (shape `g.output_shape()`).
pub fn pool(kind: PoolKind, input: &TensorView, out: &mut TensorMut, g: &PoolGeom) -> Result<()> {
    let c = &g.conv;
    if input.shape != c.format.shape(c.n, c.h, c.w, c.cin)
        || out.shape != g.output_shape()
        || input.dtype != out.dtype
    {
        return Err(Error::Internal(format!(
            "{} shapes {:?} -> {:?} do not match {g:?}",
            kind.op(),
            input.shape,
            out.shape
        )));
    }
    match out.dtype {
        DType::F32 => pool_typed::<f32>(kind, input.data()?, out.data_mut()?, g),
        DType::F64 => pool_typed::<f64>(kind, input.data()?, out.data_mut()?, g),
        DType::F16 => pool_typed::<f16>(kind, input.data()?, out.data_mut()?, g),
        DType::BF16 => pool_typed::<bf16>(kind, input.data()?, out.data_mut()?, g),
        d => {
            return Err(Error::Unimplemented(format!(
                "{} is not defined for {d}",
                kind.op()
            )))
        }
    }
    Ok(())
}

fn pool_typed<T: Widen>(kind: PoolKind, x: &[T], y: &mut [T], g: &PoolGeom) {
    if y.is_empty() {
        return;
    }
    let c = &g.conv;
    let row = c.ow * c.cout;
    let f = |x: &[T::W], r: usize, out: &mut [T::W]| {
        if g.depth_window > 1 {
            depth_max_row(x, g, r, out)
        } else {
            match kind {
                PoolKind::Max => pool_row::<_, true>(x, c, r, out),
                PoolKind::Avg => pool_row::<_, false>(x, c, r, out),
            }
        }
    };
    if c.format == DataFormat::Nhwc && std::any::TypeId::of::<T>() == std::any::TypeId::of::<T::W>()
    {
        // SAFETY: T and T::W are the same type (checked just above), so the
        // same pointer and length describe the same elements.
        let x: &[T::W] = unsafe { std::slice::from_raw_parts(x.as_ptr() as *const T::W, x.len()) };
        // SAFETY: as for `x`; the new slice reborrows `y` exclusively.
        let y: &mut [T::W] =
            unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut T::W, y.len()) };
        par_rows(y, row, c, |r, out| f(x, r, out));
        return;
    }
    let xt = super::conv::widened_nhwc(x, c);
    let mut yt = vec![T::W::default(); y.len()];
    par_rows(&mut yt, row, c, |r, out| f(&xt, r, out));
    super::conv::store_nhwc::<T>(yt, y, c);
}

/// One output row `r = n * oh + oy` of a spatial pool (NHWC), with AVX2
/// where the CPU has it.
fn pool_row<W: Compute, const MAX: bool>(x: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    #[cfg(target_arch = "x86_64")]
    match super::cpu::simd_level() {
        // SAFETY: simd_level() reports Avx512 only where the CPU has
        // AVX-512 F/DQ/VL/BW, AVX2 and FMA (cpu::probe).
        Simd::Avx512 => return unsafe { pool_row_avx512::<W, MAX>(x, g, r, out) },
        // SAFETY: Avx2 only where the CPU has AVX2 and FMA.
        Simd::Avx2 => return unsafe { pool_row_avx2::<W, MAX>(x, g, r, out) },
        Simd::Base => {}
    }
    pool_row_impl::<W, MAX>(x, g, r, out)
}

/// [`pool_row`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pool_row_avx512<W: Compute, const MAX: bool>(
    x: &[W],
    g: &ConvGeom,
    r: usize,
    out: &mut [W],
) {
    pool_row_impl::<W, MAX>(x, g, r, out)
}

/// [`pool_row`] compiled for AVX2.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pool_row_avx2<W: Compute, const MAX: bool>(
    x: &[W],
    g: &ConvGeom,
    r: usize,
    out: &mut [W],
) {
    pool_row_impl::<W, MAX>(x, g, r, out)
}

#[inline(always)]
fn pool_row_impl<W: Compute, const MAX: bool>(x: &[W], g: &ConvGeom, r: usize, out: &mut [W]) {
    let (n, oy) = (r / g.oh, r % g.oh);
    let ch = g.cin;
    let img = &x[n * g.h * g.w * ch..(n + 1) * g.h * g.w * ch];
    let iy0 = (oy * g.sh) as isize - g.pad_top as isize;
    let y0 = iy0.max(0) as usize;
    let y1 = ((iy0 + g.kh as isize).max(0) as usize).min(g.h);
    for (ox, acc) in out.chunks_exact_mut(ch).enumerate() {
        let ix0 = (ox * g.sw) as isize - g.pad_left as isize;
        let x0 = ix0.max(0) as usize;
        let x1 = ((ix0 + g.kw as isize).max(0) as usize).min(g.w);
        acc.fill(if MAX { W::LOWEST } else { W::ZERO });
        for iy in y0..y1 {
            let src = &img[(iy * g.w + x0) * ch..(iy * g.w + x1.max(x0)) * ch];
            for xs in src.chunks_exact(ch) {
                if MAX {
                    for (a, &v) in acc.iter_mut().zip(xs) {
                        *a = if v > *a { v } else { *a };
                    }
                } else {
                    for (a, &v) in acc.iter_mut().zip(xs) {
                        *a = *a + v;
                    }
                }
            }
        }
        if !MAX {
            let count = y1.saturating_sub(y0) * x1.saturating_sub(x0);
            let d = W::from_usize(count.max(1));
            for a in acc.iter_mut() {
                *a = *a / d;
            }
        }
    }
}

/// One output row of a depth max pool: channel groups of `depth_window`.
fn depth_max_row<W: Compute>(x: &[W], g: &PoolGeom, r: usize, out: &mut [W]) {
    let c = &g.conv;
    let src = &x[r * c.w * c.cin..(r + 1) * c.w * c.cin];
    for (o, win) in out.iter_mut().zip(src.chunks_exact(g.depth_window)) {
        *o = win
            .iter()
            .fold(W::LOWEST, |a, &v| if v > a { v } else { a });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use tfa_core::Element;

    fn reference(kind: PoolKind, x: &[f64], g: &ConvGeom) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.oh * g.ow * g.cout];
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for c in 0..g.cout {
                        let (mut m, mut s, mut cnt) = (f64::MIN, 0.0, 0usize);
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.sh + ky) as isize - g.pad_top as isize;
                                let ix = (ox * g.sw + kx) as isize - g.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let v =
                                    x[((n * g.h + iy as usize) * g.w + ix as usize) * g.cin + c];
                                m = m.max(v);
                                s += v;
                                cnt += 1;
                            }
                        }
                        y[((n * g.oh + oy) * g.ow + ox) * g.cout + c] = match kind {
                            PoolKind::Max => m,
                            PoolKind::Avg => s / cnt.max(1) as f64,
                        };
                    }
                }
            }
        }
        y
    }

    fn check<T: Element>(cases: usize, from: fn(f64) -> T, to: fn(T) -> f64, tol: f64) {
        let mut rng = crate::test_rng();
        let mut done = 0;
        while done < cases {
            let kind = if rng.random_bool(0.5) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let fmt = if rng.random_bool(0.3) {
                DataFormat::Nchw
            } else {
                DataFormat::Nhwc
            };
            let padding = match rng.random_range(0..3) {
                0 => Padding::Same,
                1 => Padding::Valid,
                _ if kind == PoolKind::Max => Padding::Explicit,
                _ => Padding::Same,
            };
            let (n, h, w, c) = (
                rng.random_range(0..3),
                rng.random_range(1..12),
                rng.random_range(1..12),
                rng.random_range(1..9),
            );
            let d = fmt.dims();
            let mut ksize = [1i64; 4];
            let mut strides = [1i64; 4];
            ksize[d[1]] = rng.random_range(1..5);
            ksize[d[2]] = rng.random_range(1..5);
            strides[d[1]] = rng.random_range(1..5);
            strides[d[2]] = rng.random_range(1..5);
            let mut explicit = vec![];
            if padding == Padding::Explicit {
                explicit = vec![0i64; 8];
                for i in [d[1], d[2]] {
                    explicit[2 * i] = rng.random_range(0..ksize[i]);
                    explicit[2 * i + 1] = rng.random_range(0..ksize[i]);
                }
            }
            let shape = fmt.shape(n, h, w, c);
            let a = PoolAttrs {
                ksize: &ksize,
                strides: &strides,
                padding,
                explicit_paddings: &explicit,
                data_format: fmt,
            };
            let Ok(g) = pool_geometry(kind, &shape, &a) else {
                continue;
            };
            done += 1;
            let xn: Vec<f64> = (0..n * h * w * c)
                .map(|_| to(from(rng.random_range(-1.0..1.0))))
                .collect();
            let mut want = reference(kind, &xn, &g.conv);
            let mut x_in = xn.clone();
            if fmt == DataFormat::Nchw {
                super::super::conv::nhwc_to_nchw(&xn, &mut x_in, n, c, h * w);
                let mut t = want.clone();
                super::super::conv::nhwc_to_nchw(&want, &mut t, n, c, g.conv.oh * g.conv.ow);
                want = t;
            }
            let xt: Vec<T> = x_in.iter().map(|&v| from(v)).collect();
            let mut y = vec![from(f64::NAN); want.len()];
            pool(
                kind,
                &TensorView::from_slice(shape, &xt),
                &mut TensorMut::from_slice(g.output_shape(), &mut y),
                &g,
            )
            .unwrap();
            for (a, b) in y.iter().zip(&want) {
                let a = to(*a);
                assert!(
                    (a - b).abs() <= tol * (1.0 + b.abs()),
                    "{kind:?} {g:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn pools_match_reference() {
        check::<f32>(400, |v| v as f32, |v| v as f64, 1e-6);
        check::<f64>(100, |v| v, |v| v, 1e-12);
        check::<f16>(60, f16::from_f64, |v| v.to_f64(), 2e-3);
        check::<bf16>(60, bf16::from_f64, |v| v.to_f64(), 1e-2);
    }

    #[test]
    fn depth_max_pool() {
        let x: Vec<f32> = (0..2 * 3 * 6).map(|i| ((i * 7) % 11) as f32).collect();
        let a = PoolAttrs {
            ksize: &[1, 1, 1, 3],
            strides: &[1, 1, 1, 3],
            padding: Padding::Valid,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let g = pool_geometry(PoolKind::Max, &[1, 2, 3, 6], &a).unwrap();
        assert_eq!(g.output_shape(), vec![1, 2, 3, 2]);
        let mut y = vec![0f32; 12];
        pool(
            PoolKind::Max,
            &TensorView::from_slice(vec![1, 2, 3, 6], &x),
            &mut TensorMut::from_slice(vec![1, 2, 3, 2], &mut y),
            &g,
        )
        .unwrap();
        let want: Vec<f32> = x
            .chunks(3)
            .map(|w| w.iter().cloned().fold(f32::MIN, f32::max))
            .collect();
        assert_eq!(y, want);
        assert!(pool_geometry(PoolKind::Avg, &[1, 2, 3, 6], &a).is_err());
    }

    fn attrs<'a>(
        ksize: &'a [i64],
        strides: &'a [i64],
        padding: Padding,
        explicit: &'a [i64],
    ) -> PoolAttrs<'a> {
        PoolAttrs {
            ksize,
            strides,
            padding,
            explicit_paddings: explicit,
            data_format: DataFormat::Nhwc,
        }
    }

    #[test]
    fn pool_checks_follow_tensorflow() {
        let x = [2, 6, 7, 4];
        let err = |k: &[i64], s: &[i64]| {
            pool_geometry(PoolKind::Max, &x, &attrs(k, s, Padding::Valid, &[])).unwrap_err()
        };
        // Batch and depth-window limits are UnimplementedError.
        assert!(matches!(
            err(&[2, 2, 2, 1], &[1, 1, 1, 1]),
            Error::Unimplemented(_)
        ));
        assert!(matches!(
            err(&[1, 1, 1, 3], &[1, 1, 1, 3]),
            Error::Unimplemented(_)
        ));
        assert!(matches!(
            err(&[1, 1, 1, 2], &[1, 1, 1, 1]),
            Error::Unimplemented(_)
        ));
        assert!(matches!(
            err(&[1, 2, 2, 2], &[1, 1, 1, 2]),
            Error::Unimplemented(_)
        ));
        // A depth stride beside a depth window of 1 is ignored.
        let g = pool_geometry(
            PoolKind::Avg,
            &x,
            &attrs(&[1, 2, 2, 1], &[1, 1, 1, 2], Padding::Valid, &[]),
        );
        assert_eq!(g.unwrap().output_shape(), vec![2, 5, 6, 4]);
        // Explicit padding must be smaller than the window.
        let a = attrs(
            &[1, 2, 2, 1],
            &[1, 1, 1, 1],
            Padding::Explicit,
            &[0, 0, 2, 0, 0, 0, 0, 0],
        );
        assert_eq!(
            pool_geometry(PoolKind::Max, &x, &a)
                .unwrap_err()
                .to_string(),
            "Top padding 2 needs to be smaller than the window size 2"
        );
    }

    #[test]
    fn avg_pool_grad_takes_what_tensorflow_takes() {
        let a = attrs(&[1, 2, 2, 1], &[1, 1, 1, 1], Padding::Valid, &[]);
        let x = [2, 6, 7, 4];
        // The forward output, a smaller grad, fewer images, extra rows.
        for grad in [[2, 5, 6, 4], [2, 4, 5, 4], [1, 5, 6, 4], [2, 7, 6, 4]] {
            let g = avg_pool_grad_geometry(&x, &grad, &a).unwrap().unwrap();
            assert_eq!(g.output_shape(), grad.to_vec());
        }
        // Rows whose window starts past the input; another depth; more images.
        for grad in [[2, 8, 6, 4], [2, 5, 6, 2], [2, 5, 6, 5], [3, 5, 6, 4]] {
            let e = avg_pool_grad_geometry(&x, &grad, &a).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{grad:?}: {e}");
        }
        // An empty output checks no more than the window and strides.
        let a = attrs(&[1, 1, 1, 2], &[1, 1, 1, 2], Padding::Valid, &[]);
        assert!(avg_pool_grad_geometry(&[0, 6, 7, 4], &[0, 6, 7, 4], &a)
            .unwrap()
            .is_none());
        let a = attrs(&[1, 2, 2, 1], &[1, 0, 1, 1], Padding::Valid, &[]);
        assert!(avg_pool_grad_geometry(&[0, 6, 7, 4], &[0, 5, 6, 4], &a).is_err());
    }

    #[test]
    fn pool_errors() {
        let a = PoolAttrs {
            ksize: &[2, 1, 1, 1],
            strides: &[1, 1, 1, 1],
            padding: Padding::Valid,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        assert_eq!(
            pool_geometry(PoolKind::Max, &[1, 2, 3, 6], &a)
                .unwrap_err()
                .to_string(),
            "Pooling is not yet supported on the batch dimension."
        );
        let a = PoolAttrs {
            ksize: &[1, 5, 1, 1],
            ..a
        };
        assert!(pool_geometry(PoolKind::Avg, &[1, 2, 3, 6], &a)
            .unwrap_err()
            .to_string()
            .contains("Computed output size would be negative"));
    }
}
