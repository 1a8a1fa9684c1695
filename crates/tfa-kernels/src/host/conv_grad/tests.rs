use super::*;
use crate::host::conv::{conv2d_geometry, depthwise_geometry, ConvPass, Padding, WindowAttrs};
use rand::Rng;

/// Naive NHWC f64 gradients `(dx, df)` of a convolution.
fn reference(x: &[f64], f: &[f64], dy: &[f64], g: &ConvGeom, dw: bool) -> (Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; x.len()];
    let mut df = vec![0.0; f.len()];
    let cg = g.cin / g.groups;
    for n in 0..g.n {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for co in 0..g.cout {
                    let d = dy[((n * g.oh + oy) * g.ow + ox) * g.cout + co];
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                            let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let px = ((n * g.h + iy as usize) * g.w + ix as usize) * g.cin;
                            if dw {
                                let c = co / g.multiplier;
                                let fi = (ky * g.kw + kx) * g.cout + co;
                                dx[px + c] += d * f[fi];
                                df[fi] += d * x[px + c];
                            } else {
                                let grp = co / (g.cout / g.groups);
                                for ci in 0..cg {
                                    let fi = ((ky * g.kw + kx) * cg + ci) * g.cout + co;
                                    dx[px + grp * cg + ci] += d * f[fi];
                                    df[fi] += d * x[px + grp * cg + ci];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, df)
}

fn to_nchw(x: &[f64], n: usize, hw: usize, c: usize) -> Vec<f64> {
    let mut t = vec![0.0; x.len()];
    transpose_images(x, &mut t, n, hw, c, |v| v);
    t
}

#[allow(clippy::type_complexity)]
fn random_geom(
    rng: &mut impl Rng,
    kind: ConvKind,
    big: bool,
) -> (Vec<usize>, Vec<usize>, ConvGeom) {
    loop {
        let fmt = if rng.random_bool(0.3) {
            DataFormat::Nchw
        } else {
            DataFormat::Nhwc
        };
        let padding = [Padding::Same, Padding::Valid, Padding::Explicit][rng.random_range(0..3)];
        let s = if big { 24 } else { 10 };
        let (n, h, w) = (
            rng.random_range(0..4),
            rng.random_range(1..s),
            rng.random_range(1..s),
        );
        let groups = if kind == ConvKind::Depthwise || rng.random_bool(0.5) {
            1
        } else {
            rng.random_range(2..4)
        };
        let cg = rng.random_range(1..if big { 20 } else { 5 });
        let (kh, kw) = (rng.random_range(1..5), rng.random_range(1..5));
        let last = match kind {
            ConvKind::Depthwise => rng.random_range(1..4),
            ConvKind::Conv2D => groups * rng.random_range(1..if big { 20 } else { 5 }),
        };
        let d = fmt.dims();
        let mut strides = [1i64; 4];
        let mut dil = [1i64; 4];
        strides[d[1]] = rng.random_range(1..4);
        strides[d[2]] = rng.random_range(1..4);
        if rng.random_bool(0.3) {
            dil[d[1]] = rng.random_range(1..4);
            dil[d[2]] = rng.random_range(1..4);
        }
        let mut explicit = vec![];
        if padding == Padding::Explicit {
            explicit = vec![0i64; 8];
            for i in [d[1], d[2]] {
                explicit[2 * i] = rng.random_range(0..4);
                explicit[2 * i + 1] = rng.random_range(0..4);
            }
        }
        let a = WindowAttrs {
            strides: &strides,
            dilations: &dil,
            padding,
            explicit_paddings: &explicit,
            data_format: fmt,
        };
        let shape = fmt.shape(n, h, w, groups * cg);
        let fshape = vec![kh, kw, cg, last];
        let g = match kind {
            ConvKind::Conv2D => conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward),
            ConvKind::Depthwise => depthwise_geometry(&shape, &fshape, &a, ConvPass::Forward),
        };
        if let Ok(g) = g {
            return (shape, fshape, g);
        }
    }
}

/// Conv2D gradients with `lowp` BF16/F16 equal the float32 gradients of
/// pre-rounded inputs; bfloat16 data equals them up to one rounding.
#[test]
fn lowp_grads_match_f32_on_rounded_inputs() {
    let mut rng = crate::test_rng();
    let pool = crate::test_pool(2);
    for (i, (xs, fs, g)) in lowp_cases(&mut rng).into_iter().enumerate() {
        let lowp = if i % 4 == 1 { DType::F16 } else { DType::BF16 };
        let round = |v: f32| match lowp {
            DType::F16 => f16::from_f32(v).to_f32(),
            _ => bf16::from_f32(v).to_f32(),
        };
        let ys = g.output_shape();
        let rand_vec = |rng: &mut rand::rngs::StdRng, s: &[usize]| -> Vec<f32> {
            (0..s.iter().product::<usize>())
                .map(|_| rng.random_range(-2.0..2.0))
                .collect()
        };
        let (x, f, dy) = (
            rand_vec(&mut rng, &xs),
            rand_vec(&mut rng, &fs),
            rand_vec(&mut rng, &ys),
        );
        let r = |v: &[f32]| v.iter().map(|&a| round(a)).collect::<Vec<f32>>();
        let (rx, rf, rdy) = (r(&x), r(&f), r(&dy));
        let shapes = [&xs[..], &fs, &ys];
        let grads = |x: &[f32], f: &[f32], dy: &[f32], lowp: Option<DType>| {
            pool.install(|| both_grads(shapes, [x, f, dy], &ConvGeom { lowp, ..g }, f32::NAN))
        };
        let (gx, gf) = grads(&x, &f, &dy, Some(lowp));
        let (wx, wf) = grads(&rx, &rf, &rdy, None);
        // Sums of at most kh*kw*cout (dx) or n*oh*ow (df) products <= 4.
        let tol_x = 1e-5 * 4.0 * (g.kh * g.kw * g.cout) as f32;
        let tol_f = 1e-5 * 4.0 * (g.n * g.oh * g.ow) as f32;
        for (a, b) in gx.iter().zip(&wx) {
            assert!((a - b).abs() <= tol_x, "dx {lowp} {g:?}: {a} vs {b}");
        }
        for (a, b) in gf.iter().zip(&wf) {
            assert!((a - b).abs() <= tol_f, "df {lowp} {g:?}: {a} vs {b}");
        }
        if g.cin == 64 {
            // The float32 gradients of unrounded inputs differ: lowp ran.
            let (ux, uf) = grads(&x, &f, &dy, None);
            assert_ne!(ux, gx);
            assert_ne!(uf, gf);
        }
        if lowp == DType::BF16 {
            let h = |v: &[f32]| v.iter().map(|&a| bf16::from_f32(a)).collect::<Vec<bf16>>();
            let (hx, hf, hdy) = (h(&x), h(&f), h(&dy));
            let (dx, df) = pool.install(|| both_grads(shapes, [&hx, &hf, &hdy], &g, bf16::NAN));
            for (a, b) in dx.iter().zip(&wx) {
                let a = a.to_f32();
                assert!(
                    (a - b).abs() <= b.abs() / 256.0 + tol_x,
                    "bf16 dx {a} vs {b}"
                );
            }
            for (a, b) in df.iter().zip(&wf) {
                let a = a.to_f32();
                assert!(
                    (a - b).abs() <= b.abs() / 256.0 + tol_f,
                    "bf16 df {a} vs {b}"
                );
            }
        }
    }
}

/// The low-precision gradient cases: random geometries and fixed ones
/// (large filter, stride 1, 1x1, small tiles, batch 1, 1x1 stride 2).
fn lowp_cases(rng: &mut rand::rngs::StdRng) -> Vec<(Vec<usize>, Vec<usize>, ConvGeom)> {
    let mut cases: Vec<(Vec<usize>, Vec<usize>, ConvGeom)> = (0..30)
        .map(|i| random_geom(rng, ConvKind::Conv2D, i % 3 == 0))
        .collect();
    for (x, f, s, pad) in [
        (vec![2, 9, 9, 64], vec![3, 3, 64, 128], 2, Padding::Same),
        (vec![2, 9, 9, 32], vec![3, 3, 32, 48], 1, Padding::Same),
        (vec![2, 7, 7, 40], vec![1, 1, 40, 24], 1, Padding::Valid),
        (vec![3, 12, 12, 8], vec![3, 3, 8, 16], 2, Padding::Valid),
        (vec![1, 11, 11, 24], vec![3, 3, 24, 40], 2, Padding::Same),
        (vec![1, 10, 10, 32], vec![1, 1, 32, 48], 2, Padding::Valid),
        // Two parts of two tiles each: tiles summed into a part's filter.
        (vec![2, 40, 40, 64], vec![3, 3, 64, 16], 1, Padding::Same),
        (vec![4, 40, 40, 300], vec![1, 1, 300, 20], 1, Padding::Valid),
    ] {
        let st = [1, s, s, 1];
        let a = WindowAttrs {
            strides: &st,
            dilations: &[1, 1, 1, 1],
            padding: pad,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
        cases.push((x, f, g));
    }
    cases
}

/// Conv2D's input and filter gradients (`[x, f, dy]` values of `shapes`)
/// into buffers filled with `nan` first (an element left unwritten shows).
fn both_grads<T: tfa_core::Element + Copy>(
    [xs, fs, ys]: [&[usize]; 3],
    [x, f, dy]: [&[T]; 3],
    g: &ConvGeom,
    nan: T,
) -> (Vec<T>, Vec<T>) {
    let (mut dx, mut df) = (vec![nan; x.len()], vec![nan; f.len()]);
    conv_backprop_input(
        ConvKind::Conv2D,
        &TensorView::from_slice(fs.to_vec(), f),
        &TensorView::from_slice(ys.to_vec(), dy),
        &mut TensorMut::from_slice(xs.to_vec(), &mut dx),
        g,
    )
    .unwrap();
    conv_backprop_filter(
        ConvKind::Conv2D,
        &TensorView::from_slice(xs.to_vec(), x),
        &TensorView::from_slice(ys.to_vec(), dy),
        &mut TensorMut::from_slice(fs.to_vec(), &mut df),
        g,
    )
    .unwrap();
    (dx, df)
}

fn check(kind: ConvKind, cases: usize, big: bool, threads: usize) {
    let mut rng = crate::test_rng();
    for _ in 0..cases {
        let (shape, fshape, g) = random_geom(&mut rng, kind, big);
        check_case(kind, &shape, &fshape, &g, threads);
    }
}

fn check_case(kind: ConvKind, shape: &[usize], fshape: &[usize], g: &ConvGeom, threads: usize) {
    let (shape, fshape, g) = (shape.to_vec(), fshape.to_vec(), *g);
    let pool = crate::test_pool(threads);
    let mut rng = crate::test_rng();
    {
        let mut r =
            |len: usize| -> Vec<f64> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let x = r(shape.iter().product());
        let f = r(fshape.iter().product());
        let dy = r(g.output_shape().iter().product());
        let dw = kind == ConvKind::Depthwise;
        let (want_dx, want_df) = reference(&x, &f, &dy, &g, dw);
        // The sums of |products| bound float32 accumulation error: a
        // gradient that cancels to a small value still carries the
        // rounding of its large partial sums.
        let abs = |v: &[f64]| v.iter().map(|a| a.abs()).collect::<Vec<_>>();
        let (mag_dx, mag_df) = reference(&abs(&x), &abs(&f), &abs(&dy), &g, dw);
        let nchw = g.format == DataFormat::Nchw;
        let fmt = |v: &[f64], hw: usize, c: usize| {
            if nchw {
                to_nchw(v, g.n, hw, c)
            } else {
                v.to_vec()
            }
        };
        let xs: Vec<f32> = fmt(&x, g.h * g.w, g.cin)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let fs: Vec<f32> = f.iter().map(|&v| v as f32).collect();
        let dys: Vec<f32> = fmt(&dy, g.oh * g.ow, g.cout)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let want_dx = fmt(&want_dx, g.h * g.w, g.cin);
        let mag_dx = fmt(&mag_dx, g.h * g.w, g.cin);
        let mut dx = vec![f32::NAN; x.len()];
        let mut df = vec![f32::NAN; f.len()];
        pool.install(|| {
            let dyv = TensorView::from_slice(g.output_shape(), &dys);
            conv_backprop_input(
                kind,
                &TensorView::from_slice(fshape.clone(), &fs),
                &dyv,
                &mut TensorMut::from_slice(shape.clone(), &mut dx),
                &g,
            )
            .unwrap();
            conv_backprop_filter(
                kind,
                &TensorView::from_slice(shape.clone(), &xs),
                &dyv,
                &mut TensorMut::from_slice(fshape.clone(), &mut df),
                &g,
            )
            .unwrap();
        });
        for (got, want, mag, what) in [
            (&dx, &want_dx, &mag_dx, "dx"),
            (&df, &want_df, &mag_df, "df"),
        ] {
            let scale = want.iter().fold(1.0f64, |a, &b| a.max(b.abs()));
            for (i, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (a as f64 - b).abs() <= 1e-5 * scale + 1e-6 * mag[i],
                    "{what} {g:?} at {i}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn large_filters_and_stride_one_paths() {
    // Filters too large to repack per tile (chunked GEMM + col2im),
    // stride 1 (transposed forward convolution), both with groups.
    for (shape, fshape, s, pad, fmt) in [
        (
            vec![3, 9, 8, 64],
            vec![3, 3, 64, 128],
            2,
            Padding::Same,
            DataFormat::Nhwc,
        ),
        (
            vec![2, 7, 7, 64],
            vec![3, 3, 32, 128],
            2,
            Padding::Valid,
            DataFormat::Nhwc,
        ),
        (
            vec![2, 64, 7, 9],
            vec![3, 3, 64, 128],
            1,
            Padding::Same,
            DataFormat::Nchw,
        ),
        (
            vec![2, 7, 9, 64],
            vec![3, 2, 16, 96],
            1,
            Padding::Valid,
            DataFormat::Nhwc,
        ),
        (
            vec![5, 6, 9, 64],
            vec![1, 1, 64, 128],
            3,
            Padding::Valid,
            DataFormat::Nhwc,
        ),
    ] {
        let d = fmt.dims();
        let mut strides = [1i64; 4];
        strides[d[1]] = s;
        strides[d[2]] = s;
        let a = WindowAttrs {
            strides: &strides,
            dilations: &[1, 1, 1, 1],
            padding: pad,
            explicit_paddings: &[],
            data_format: fmt,
        };
        let g = conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward).unwrap();
        for threads in [1, 3] {
            check_case(ConvKind::Conv2D, &shape, &fshape, &g, threads);
        }
    }
}

#[test]
fn conv2d_grads_match_reference() {
    check(ConvKind::Conv2D, 200, false, 1);
    check(ConvKind::Conv2D, 100, false, 3);
    check(ConvKind::Conv2D, 20, true, 4);
}

#[test]
fn depthwise_grads_match_reference() {
    check(ConvKind::Depthwise, 200, false, 1);
    check(ConvKind::Depthwise, 100, false, 3);
    check(ConvKind::Depthwise, 20, true, 4);
}

#[test]
fn half_types_compute_in_f32() {
    let a = WindowAttrs {
        strides: &[1, 1, 1, 1],
        dilations: &[1, 1, 1, 1],
        padding: Padding::Same,
        explicit_paddings: &[],
        data_format: DataFormat::Nhwc,
    };
    let g = conv2d_geometry(&[1, 3, 3, 2], &[3, 3, 2, 1], &a, ConvPass::Forward).unwrap();
    let f = vec![f16::from_f32(0.5); 18];
    let dy = vec![f16::from_f32(1.0); 9];
    let mut dx = vec![f16::ZERO; 18];
    conv_backprop_input(
        ConvKind::Conv2D,
        &TensorView::from_slice(vec![3, 3, 2, 1], &f),
        &TensorView::from_slice(vec![1, 3, 3, 1], &dy),
        &mut TensorMut::from_slice(vec![1, 3, 3, 2], &mut dx),
        &g,
    )
    .unwrap();
    // The centre pixel is in all 9 windows.
    assert_eq!(dx[8].to_f32(), 4.5);
    assert_eq!(dx[0].to_f32(), 2.0);
}
