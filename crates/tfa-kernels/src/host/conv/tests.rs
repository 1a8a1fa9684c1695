use super::*;
use crate::host::winograd::{chosen_way, Way};
use pointwise::MIN_PIXELS;
use rand::Rng;
use tfa_core::Element;

fn attrs<'a>(
    strides: &'a [i64],
    dilations: &'a [i64],
    padding: Padding,
    explicit: &'a [i64],
    fmt: DataFormat,
) -> WindowAttrs<'a> {
    WindowAttrs {
        strides,
        dilations,
        padding,
        explicit_paddings: explicit,
        data_format: fmt,
    }
}

/// Naive reference on NHWC f64 data; `depthwise` selects the filter meaning.
fn reference(x: &[f64], f: &[f64], g: &ConvGeom, depthwise: bool) -> Vec<f64> {
    let mut y = vec![0.0; g.n * g.oh * g.ow * g.cout];
    for n in 0..g.n {
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                for co in 0..g.cout {
                    let mut s = 0.0;
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.sh + ky * g.dh) as isize - g.pad_top as isize;
                            let ix = (ox * g.sw + kx * g.dw) as isize - g.pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let px = ((n * g.h + iy as usize) * g.w + ix as usize) * g.cin;
                            if depthwise {
                                let c = co / g.multiplier;
                                s += x[px + c] * f[(ky * g.kw + kx) * g.cout + co];
                            } else {
                                let cg = g.cin / g.groups;
                                let grp = co / (g.cout / g.groups);
                                for ci in 0..cg {
                                    s += x[px + grp * cg + ci]
                                        * f[((ky * g.kw + kx) * cg + ci) * g.cout + co];
                                }
                            }
                        }
                    }
                    y[((n * g.oh + oy) * g.ow + ox) * g.cout + co] = s;
                }
            }
        }
    }
    y
}

fn to_format(x: &[f64], n: usize, h: usize, w: usize, c: usize, fmt: DataFormat) -> Vec<f64> {
    if fmt == DataFormat::Nhwc {
        return x.to_vec();
    }
    let mut t = vec![0.0; x.len()];
    nhwc_to_nchw(x, &mut t, n, c, h * w);
    t
}

/// Conv2D with `lowp` BF16/F16 equals the float32 convolution of
/// pre-rounded inputs; bfloat16 data (always through `lowp_gemm`) equals
/// it up to one output rounding.
#[test]
fn lowp_conv2d_matches_f32_on_rounded_inputs() {
    let mut rng = crate::test_rng();
    let mut cases: Vec<(Vec<usize>, Vec<usize>, ConvGeom)> =
        (0..40).map(|_| random_case(&mut rng, false)).collect();
    let a = attrs(
        &[1, 1, 1, 1],
        &[1, 1, 1, 1],
        Padding::Same,
        &[],
        DataFormat::Nhwc,
    );
    for (x, f) in [
        (vec![2, 9, 9, 64], vec![3, 3, 64, 70]), // im2col tiles
        (vec![2, 7, 7, 96], vec![1, 1, 96, 40]), // 1x1: one GEMM
        (vec![1, 6, 6, 48], vec![1, 1, 16, 33]), // 1x1, 3 groups
        (vec![1, 30, 30, 8], vec![3, 3, 8, 16]), // many tiles
    ] {
        let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
        cases.push((x, f, g));
    }
    let pool = crate::test_pool(2);
    for (i, (shape, fshape, g)) in cases.into_iter().enumerate() {
        let lowp = if i % 4 == 3 { DType::F16 } else { DType::BF16 };
        let round = |v: f32| match lowp {
            DType::F16 => f16::from_f32(v).to_f32(),
            _ => bf16::from_f32(v).to_f32(),
        };
        let x: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let f: Vec<f32> = (0..fshape.iter().product::<usize>())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let (rx, rf): (Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| round(v)).collect(),
            f.iter().map(|&v| round(v)).collect(),
        );
        let oshape = g.output_shape();
        let len: usize = oshape.iter().product();
        let run = |x: &[f32], f: &[f32], lowp: Option<DType>| {
            let mut y = vec![f32::NAN; len];
            pool.install(|| {
                conv2d(
                    &TensorView::from_slice(shape.clone(), x),
                    &TensorView::from_slice(fshape.clone(), f),
                    &mut TensorMut::from_slice(oshape.clone(), &mut y),
                    &ConvGeom { lowp, ..g },
                )
                .unwrap()
            });
            y
        };
        let got = run(&x, &f, Some(lowp));
        let want = run(&rx, &rf, None);
        // Each output sums at most kh*kw*cin_g products of size <= 4.
        let tol = 1e-5 * 4.0 * (g.kh * g.kw * g.cin / g.groups) as f32;
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= tol, "{lowp} {g:?}: {a} vs {b}");
        }
        if lowp == DType::BF16 {
            let bx: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
            let bf: Vec<bf16> = f.iter().map(|&v| bf16::from_f32(v)).collect();
            let mut y = vec![bf16::NAN; len];
            pool.install(|| {
                conv2d(
                    &TensorView::from_slice(shape.clone(), &bx),
                    &TensorView::from_slice(fshape.clone(), &bf),
                    &mut TensorMut::from_slice(oshape.clone(), &mut y),
                    &g,
                )
                .unwrap()
            });
            for (a, b) in y.iter().zip(&want) {
                let a = a.to_f32();
                assert!(
                    (a - b).abs() <= b.abs() / 256.0 + tol,
                    "bf16 {g:?}: {a} vs {b}"
                );
            }
            bf16_epilogue_matches_rounded_f32(&pool, &bx, &bf, &shape, &fshape, &g);
        }
    }
}

/// The bfloat16 tiled convolution with a float32 epilogue equals the
/// float32 accumulators, finished whole, rounded once: every row gets the
/// epilogue once, with its own row index.
fn bf16_epilogue_matches_rounded_f32(
    pool: &rayon::ThreadPool,
    x: &[bf16],
    f: &[bf16],
    shape: &[usize],
    fshape: &[usize],
    g: &ConvGeom,
) {
    let oshape = g.output_shape();
    let len: usize = oshape.iter().product();
    let cout = g.cout.max(1);
    let finish = |row: usize, v: &mut [f32]| {
        for (j, e) in v.iter_mut().enumerate() {
            *e = (*e + 1e-3 * (row * cout + j) as f32).max(0.0);
        }
    };
    let epilogue = |row0: usize, rows: &mut [f32]| -> Result<()> {
        for (r, v) in rows.chunks_mut(cout).enumerate() {
            finish(row0 + r, v);
        }
        Ok(())
    };
    let mut got = vec![bf16::NAN; len];
    let ran = pool.install(|| {
        conv2d_bf16_with_epilogue(
            &TensorView::from_slice(shape.to_vec(), x),
            &TensorView::from_slice(fshape.to_vec(), f),
            &mut TensorMut::from_slice(oshape.clone(), &mut got),
            g,
            &epilogue,
        )
        .unwrap()
    });
    assert_eq!(ran, g.format == DataFormat::Nhwc && g.cin > 0, "{g:?}");
    if !ran || len == 0 {
        return;
    }
    let mut acc = vec![f32::NAN; len];
    lowp_infallible(conv2d_nhwc_lowp(x, f, &mut acc, g, LowpType::Bf16, None));
    for (r, v) in acc.chunks_mut(cout).enumerate() {
        finish(r, v);
    }
    let mut want = vec![bf16::NAN; len];
    crate::host::lowp_gemm::narrow_bf16(&acc, &mut want);
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "{g:?} element {i}: {a} vs {b}");
    }
}

/// The portable low-precision convolution (operands rounded into float32
/// copies, the float32 engine) in chunks of images, every engine path
/// (Winograd, im2col tiles, large filter, pointwise tiled and one GEMM),
/// bfloat16 and float32 outputs: against a float64 convolution of the
/// rounded operands with the epilogue (which adds the row index), so a row
/// finished twice, skipped or given another chunk's index shows.
#[test]
fn rounded_conv2d_matches_float64_per_chunk_and_path() {
    let mut rng = crate::test_rng();
    let pool = crate::test_pool(2);
    let nhwc = DataFormat::Nhwc;
    for (x, f, s, chunk) in [
        ([8, 12, 12, 96], [3, 3, 96, 100], 1, 240_000), // Winograd, 2 chunks
        ([3, 9, 7, 20], [3, 3, 20, 30], 2, 4_000),      // im2col tiles
        ([2, 5, 5, 160], [3, 3, 160, 700], 1, 1 << 24), // large filter
        ([3, 7, 7, 64], [1, 1, 64, 96], 1, 20_000),     // pointwise, tiled
        ([2, 4, 5, 600], [1, 1, 600, 600], 1, 50_000),  // pointwise, one GEMM
    ] {
        let strides = [1, s, s, 1];
        let a = attrs(&strides, &[1, 1, 1, 1], Padding::Same, &[], nhwc);
        let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
        let per_chunk = ConvGeom { n: 4, ..g };
        assert_eq!(
            x[0] == 8,
            pool.install(|| chosen_way(&per_chunk) != Way::Direct)
        );
        let xs: Vec<bf16> = (0..x.iter().product::<usize>())
            .map(|_| bf16::from_f32(rng.random_range(-1.0..1.0)))
            .collect();
        let fs: Vec<bf16> = (0..f.iter().product::<usize>())
            .map(|_| bf16::from_f32(rng.random_range(-1.0..1.0)))
            .collect();
        let wide = |v: &[bf16]| v.iter().map(|a| a.to_f64()).collect::<Vec<_>>();
        let want: Vec<f64> = reference(&wide(&xs), &wide(&fs), &g, false)
            .iter()
            .enumerate()
            .map(|(i, v)| v + (i / g.cout) as f64)
            .collect();
        let e = |row0: usize, rows: &mut [f32]| -> Result<()> {
            for (i, r) in rows.chunks_mut(g.cout).enumerate() {
                r.iter_mut().for_each(|v| *v += (row0 + i) as f32);
            }
            Ok(())
        };
        let tol = 1e-5 * (g.kh * g.kw * g.cin) as f64;
        let mut y16 = vec![bf16::NAN; want.len()];
        let mut y32 = vec![f32::NAN; want.len()];
        pool.install(|| {
            let l = LowpType::Bf16;
            rounded::conv2d_nhwc_rounded(&xs, &fs, &mut y16, &g, l, Some(&e), chunk).unwrap();
            rounded::conv2d_nhwc_rounded(&xs, &fs, &mut y32, &g, l, Some(&e), chunk).unwrap();
        });
        for (i, b) in want.iter().enumerate() {
            let (a16, a32) = (y16[i].to_f64(), y32[i] as f64);
            assert!(
                (a32 - b).abs() <= tol + b.abs() * 1e-6,
                "{g:?} {i}: {a32} vs {b}"
            );
            assert!(
                (a16 - b).abs() <= tol + b.abs() / 256.0,
                "{g:?} {i}: {a16} vs {b}"
            );
        }
    }
}

fn random_case(rng: &mut impl Rng, depthwise: bool) -> (Vec<usize>, Vec<usize>, ConvGeom) {
    loop {
        let fmt = if rng.random_bool(0.3) {
            DataFormat::Nchw
        } else {
            DataFormat::Nhwc
        };
        let padding = [Padding::Same, Padding::Valid, Padding::Explicit][rng.random_range(0..3)];
        let (n, h, w) = (
            rng.random_range(0..3),
            rng.random_range(1..12),
            rng.random_range(1..12),
        );
        let groups = if depthwise || rng.random_bool(0.6) {
            1
        } else {
            rng.random_range(1..4)
        };
        let cg = rng.random_range(1..5);
        let cin = groups * cg;
        let (kh, kw) = (rng.random_range(1..5), rng.random_range(1..5));
        let last = if depthwise {
            rng.random_range(1..4)
        } else {
            groups * rng.random_range(1..5)
        };
        let (sh, sw) = (rng.random_range(1..5), rng.random_range(1..5));
        let (dh, dw) = if rng.random_bool(0.3) {
            (rng.random_range(1..4), rng.random_range(1..4))
        } else {
            (1, 1)
        };
        let shape = fmt.shape(n, h, w, cin);
        let filter = vec![kh, kw, if depthwise { cin } else { cg }, last];
        let d = fmt.dims();
        let mut strides = [1i64; 4];
        strides[d[1]] = sh;
        strides[d[2]] = sw;
        let mut dil = [1i64; 4];
        dil[d[1]] = dh;
        dil[d[2]] = dw;
        let mut explicit = vec![];
        if padding == Padding::Explicit {
            explicit = vec![0i64; 8];
            for i in [d[1], d[2]] {
                explicit[2 * i] = rng.random_range(0..4);
                explicit[2 * i + 1] = rng.random_range(0..4);
            }
        }
        let a = attrs(&strides, &dil, padding, &explicit, fmt);
        let geom = if depthwise {
            depthwise_geometry(&shape, &filter, &a, ConvPass::Forward)
        } else {
            conv2d_geometry(&shape, &filter, &a, ConvPass::Forward)
        };
        if let Ok(g) = geom {
            return (shape, filter, g);
        }
    }
}

fn check<T: Element>(
    depthwise: bool,
    cases: usize,
    from: fn(f64) -> T,
    to: fn(T) -> f64,
    tol: f64,
) {
    let mut rng = crate::test_rng();
    for _ in 0..cases {
        let (shape, fshape, g) = random_case(&mut rng, depthwise);
        let xn: Vec<f64> = (0..shape.iter().product::<usize>())
            .map(|_| to(from(rng.random_range(-1.0..1.0))))
            .collect();
        let fv: Vec<f64> = (0..fshape.iter().product::<usize>())
            .map(|_| to(from(rng.random_range(-1.0..1.0))))
            .collect();
        let want_nhwc = reference(&xn, &fv, &g, depthwise);
        let want = to_format(&want_nhwc, g.n, g.oh, g.ow, g.cout, g.format);
        let x_in = to_format(&xn, g.n, g.h, g.w, g.cin, g.format);
        let xt: Vec<T> = x_in.iter().map(|&v| from(v)).collect();
        let ft: Vec<T> = fv.iter().map(|&v| from(v)).collect();
        let oshape = g.output_shape();
        let mut y = vec![from(f64::NAN); oshape.iter().product()];
        {
            let xv = TensorView::from_slice(shape.clone(), &xt);
            let fvv = TensorView::from_slice(fshape.clone(), &ft);
            let mut yv = TensorMut::from_slice(oshape.clone(), &mut y);
            if depthwise {
                depthwise_conv2d(&xv, &fvv, &mut yv, &g).unwrap();
            } else {
                conv2d(&xv, &fvv, &mut yv, &g).unwrap();
            }
        }
        for (i, (a, b)) in y.iter().zip(&want).enumerate() {
            let a = to(*a);
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "{g:?} at {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn conv2d_matches_reference() {
    check::<f32>(false, 300, |v| v as f32, |v| v as f64, 1e-5);
    check::<f64>(false, 100, |v| v, |v| v, 1e-12);
    check::<f16>(false, 50, f16::from_f64, |v| v.to_f64(), 1e-2);
    check::<bf16>(false, 50, bf16::from_f64, |v| v.to_f64(), 5e-2);
}

#[test]
fn depthwise_matches_reference() {
    check::<f32>(true, 300, |v| v as f32, |v| v as f64, 1e-5);
    check::<f64>(true, 100, |v| v, |v| v, 1e-12);
    check::<f16>(true, 50, f16::from_f64, |v| v.to_f64(), 1e-2);
    check::<bf16>(true, 50, bf16::from_f64, |v| v.to_f64(), 5e-2);
}

#[test]
fn large_convs_use_parallel_tiles() {
    // Big enough for the tiled parallel path, 1x1 direct and 3x3 im2col.
    let pool = crate::test_pool(3);
    pool.install(|| {
        for (k, pad) in [(1usize, Padding::Valid), (3, Padding::Same)] {
            let shape = vec![2, 17, 19, 24];
            let fshape = vec![k, k, 24, 40];
            let a = attrs(&[1, 1, 1, 1], &[1, 1, 1, 1], pad, &[], DataFormat::Nhwc);
            let g = conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward).unwrap();
            let mut rng = crate::test_rng();
            let x: Vec<f64> = (0..2 * 17 * 19 * 24)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let f: Vec<f64> = (0..k * k * 24 * 40)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let want = reference(&x, &f, &g, false);
            let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let fs: Vec<f32> = f.iter().map(|&v| v as f32).collect();
            let mut y = vec![0f32; want.len()];
            conv2d(
                &TensorView::from_slice(shape, &xs),
                &TensorView::from_slice(fshape, &fs),
                &mut TensorMut::from_slice(g.output_shape(), &mut y),
                &g,
            )
            .unwrap();
            for (a, b) in y.iter().zip(&want) {
                assert!((*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()));
            }
        }
    });
}

#[test]
fn wide_depthwise_uses_channel_blocks() {
    let mut rng = crate::test_rng();
    for (c, mult, s, pad) in [
        (40, 1, 1, Padding::Same),
        (150, 1, 1, Padding::Same),
        (130, 1, 2, Padding::Valid),
        (37, 1, 2, Padding::Valid),
        (19, 3, 2, Padding::Same),
    ] {
        let shape = vec![2, 9, 11, c];
        let fshape = vec![3, 3, c, mult];
        let strides = [1, s, s, 1];
        let a = attrs(&strides, &[1, 1, 1, 1], pad, &[], DataFormat::Nhwc);
        let g = depthwise_geometry(&shape, &fshape, &a, ConvPass::Forward).unwrap();
        let x: Vec<f64> = (0..2 * 9 * 11 * c)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let f: Vec<f64> = (0..9 * c * mult)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let want = reference(&x, &f, &g, true);
        let xs: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let fs: Vec<f32> = f.iter().map(|&v| v as f32).collect();
        let mut y = vec![f32::NAN; want.len()];
        depthwise_conv2d(
            &TensorView::from_slice(shape, &xs),
            &TensorView::from_slice(fshape, &fs),
            &mut TensorMut::from_slice(g.output_shape(), &mut y),
            &g,
        )
        .unwrap();
        for (a, b) in y.iter().zip(&want) {
            assert!(
                (*a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{a} vs {b}"
            );
        }
    }
}

/// The im2col paths for large filters (one shared-packing GEMM, or bands
/// of output channels) and the pointwise ones (tiled, or one GEMM): same
/// values as the reference, and the epilogue sees every row once with
/// its true row index.
/// Random float32 input and filter of these shapes, and the float64
/// reference convolution of them.
fn random_operands(
    rng: &mut impl Rng,
    x: &[usize],
    f: &[usize],
    g: &ConvGeom,
) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let xs = random(x.iter().product());
    let fs = random(f.iter().product());
    let wide = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
    let want = reference(&wide(&xs), &wide(&fs), g, false);
    (xs, fs, want)
}

/// An epilogue that adds its row index to every value of each row of
/// `cout` float32 values, counting in `seen` how often each row ran.
fn mark_rows(
    cout: usize,
    seen: &std::sync::Mutex<Vec<u32>>,
) -> impl Fn(usize, &mut [u8]) -> Result<()> + Sync + '_ {
    move |row0, bytes| {
        // SAFETY: the bytes of whole f32 rows, f32-aligned.
        let rows = unsafe {
            std::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut f32, bytes.len() / 4)
        };
        for (i, r) in rows.chunks_mut(cout).enumerate() {
            seen.lock().unwrap()[row0 + i] += 1;
            r.iter_mut().for_each(|v| *v += (row0 + i) as f32);
        }
        Ok(())
    }
}

/// Every row marked once by [`mark_rows`], and `y` the reference plus each
/// row's index, within `tol`.
fn assert_marked(
    y: &[f32],
    want: &[f64],
    seen: std::sync::Mutex<Vec<u32>>,
    g: &ConvGeom,
    tol: f64,
) {
    assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1), "{g:?}");
    for (i, (a, b)) in y.iter().zip(want).enumerate() {
        let b = b + (i / g.cout) as f64;
        assert!(
            (*a as f64 - b).abs() <= tol * (1.0 + b.abs()),
            "{g:?} at {i}: {a} vs {b}"
        );
    }
}

#[test]
fn gemm_paths_match_reference_and_run_epilogue_once() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let nhwc = DataFormat::Nhwc;
    let pool = crate::test_pool(2);
    // (input, filter, stride, whether the convolution runs the epilogue)
    for (x, f, s, runs_epilogue) in [
        ([2, 9, 7, 160], [3, 3, 160, 300], 2, true), // stride 2: not Winograd
        ([4, 16, 16, 160], [3, 3, 160, 300], 2, true), // 256 rows: gemm's threads
        ([2, 16, 16, 64], [1, 1, 64, 96], 1, true),  // pointwise, tiled
        ([2, 9, 7, 64], [1, 1, 64, 96], 1, false),   // pointwise, few rows: one GEMM
        ([1, 6, 6, 32], [3, 3, 32, 40], 1, true),    // im2col, few rows: one GEMM
        ([1, 4, 5, 600], [1, 1, 600, 600], 1, false), // pointwise, one GEMM
        ([1, 5, 6, 300], [3, 3, 300, 300], 1, true), // too few tiles for Winograd
    ] {
        let strides = [1, s, s, 1];
        let a = attrs(&strides, &[1, 1, 1, 1], Padding::Same, &[], nhwc);
        let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
        assert_eq!(chosen_way(&g), Way::Direct);
        let (xs, fs, want) = random_operands(&mut rng, &x, &f, &g);
        let mut y = vec![f32::NAN; want.len()];
        let seen = std::sync::Mutex::new(vec![0u32; g.n * g.oh * g.ow]);
        let e = mark_rows(g.cout, &seen);
        let ran = pool
            .install(|| conv2d_nhwc_tiles(&xs, &fs, &mut y, &g, Some(&e)))
            .unwrap();
        assert_eq!(ran, runs_epilogue, "{x:?} {f:?}");
        if !ran {
            // One GEMM: the caller finishes the output.
            // SAFETY: plain numbers viewed as their bytes.
            e(0, unsafe {
                std::slice::from_raw_parts_mut(y.as_mut_ptr() as *mut u8, y.len() * 4)
            })
            .unwrap();
        }
        drop(e);
        assert_marked(&y, &want, seen, &g, 1e-4);
    }
}

#[test]
fn geometry_follows_tensorflow() {
    let nhwc = DataFormat::Nhwc;
    let a = attrs(&[1, 2, 2, 1], &[1, 1, 1, 1], Padding::Same, &[], nhwc);
    let g = conv2d_geometry(&[1, 7, 8, 3], &[3, 3, 3, 5], &a, ConvPass::Forward).unwrap();
    assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (4, 4, 1, 0));
    let a = attrs(&[1, 1, 1, 1], &[1, 1, 1, 1], Padding::Valid, &[], nhwc);
    let e = conv2d_geometry(&[1, 15, 15, 3], &[18, 1, 3, 5], &a, ConvPass::Forward).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Computed output size would be negative: -2 [input_size: 15, effective_filter_size: 18, stride: 1]"
    );
    let e = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 3, 6], &a, ConvPass::Forward).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input depth must be evenly divisible by filter depth: 4 vs 3"
    );
    let g = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 2, 3], &a, ConvPass::Forward).unwrap();
    assert!(g
        .check_groups()
        .unwrap_err()
        .to_string()
        .contains("output depth must be evenly divisible by number of groups: 3 vs 2"));
    // No output channels: nothing to compute, no group check (as TensorFlow).
    let g = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 4, 0], &a, ConvPass::Forward).unwrap();
    assert!(g.is_empty() && g.check_groups().is_err());
    let e = conv2d_geometry(&[5, 5, 4], &[1, 1, 2, 3], &a, ConvPass::Forward).unwrap_err();
    assert_eq!(e.to_string(), "input must be 4-dimensional[5,5,4]");
    let a = attrs(&[2, 1, 1, 1], &[1, 1, 1, 1], Padding::Valid, &[], nhwc);
    let e = conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 4, 3], &a, ConvPass::Forward).unwrap_err();
    assert!(
        matches!(e, Error::Unimplemented(ref m) if m.contains("strides in the batch and depth"))
    );
    let e = depthwise_geometry(&[1, 5, 5, 4], &[1, 1, 4, 3], &a, ConvPass::Backward).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(ref m) if m.contains("strides in the batch and depth"))
    );
    let a = attrs(
        &[1, 1, 1, 1],
        &[1, 1, 1, 1],
        Padding::Explicit,
        &[0, 0, 1, 1, 1, 1],
        nhwc,
    );
    assert!(
        conv2d_geometry(&[1, 5, 5, 4], &[1, 1, 4, 3], &a, ConvPass::Forward)
            .unwrap_err()
            .to_string()
            .contains("must contain 8 values")
    );
    let a = attrs(&[1, 1, 1, 1], &[1, 1, 1, 1], Padding::Valid, &[], nhwc);
    let e = depthwise_geometry(&[1, 5, 5, 4], &[1, 1, 3, 2], &a, ConvPass::Forward).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input and filter must have the same depth: 4 vs 3"
    );
}

#[test]
fn short_row_convs_match_reference_and_run_epilogue_once() {
    use crate::host::cpu::{simd_level, test_needs, Simd};
    if !test_needs("AVX-512", simd_level() == Simd::Avx512) {
        return;
    }
    let mut rng = crate::test_rng();
    let nhwc = DataFormat::Nhwc;
    for case in 0..80 {
        // The stem's own shape once (224 + 2*3 padded, 7x7 stride 2), then
        // random short-row shapes (every fourth pointwise from up to 64
        // channels), paddings and strides.
        let (x, f, s, padding, explicit) = if case == 0 {
            ([1, 230, 230, 3], [7, 7, 3, 64], 2, Padding::Valid, vec![])
        } else {
            let pointwise = case % 4 == 1;
            let cin = if pointwise {
                rng.random_range(5..65)
            } else {
                rng.random_range(1..5)
            };
            let kw = if pointwise {
                1
            } else {
                rng.random_range(1..8).min(64 / cin)
            };
            let kh = if pointwise { 1 } else { rng.random_range(1..8) };
            let padding = [Padding::Same, Padding::Valid, Padding::Explicit][case % 3];
            let mut explicit = vec![];
            if padding == Padding::Explicit {
                explicit = vec![0, 0, 0, 0, 0, 0, 0, 0];
                for p in &mut explicit[2..6] {
                    *p = rng.random_range(0..4);
                }
            }
            (
                [
                    rng.random_range(0..3),
                    rng.random_range(1..20),
                    rng.random_range(1..20),
                    cin,
                ],
                [kh, kw, cin, 64 * rng.random_range(1..3)],
                rng.random_range(1..4),
                padding,
                explicit,
            )
        };
        let strides = [1, s, s, 1];
        let a = attrs(&strides, &[1, 1, 1, 1], padding, &explicit, nhwc);
        let Ok(g) = conv2d_geometry(&x, &f, &a, ConvPass::Forward) else {
            continue;
        };
        let operands = random_operands(&mut rng, &x, &f, &g);
        check_own_kernel(short_rows::conv2d, &operands, &g, g.ow > 0);
    }
}

/// A kernel of the `own_conv` family with [`mark_rows`] as its epilogue, on
/// 1 and 2 threads: it takes `g` exactly when `takes`, and then gives the
/// reference within 1e-5 with every row's epilogue run once.
fn check_own_kernel(
    kernel: impl Fn(&[f32], &[f32], &mut [f32], &ConvGeom, Option<&RowsEpilogue>) -> Option<Result<()>>
        + Sync,
    (xs, fs, want): &(Vec<f32>, Vec<f32>, Vec<f64>),
    g: &ConvGeom,
    takes: bool,
) {
    for threads in [1, 2] {
        let pool = crate::test_pool(threads);
        let mut y = vec![f32::NAN; want.len()];
        let seen = std::sync::Mutex::new(vec![0u32; g.n * g.oh * g.ow]);
        let e = mark_rows(g.cout, &seen);
        let done = pool.install(|| kernel(xs, fs, &mut y, g, Some(&e)));
        assert_eq!(done.is_some(), takes, "{g:?}");
        if !takes {
            continue;
        }
        done.unwrap().unwrap();
        drop(e);
        assert_marked(&y, want, seen, g, 1e-5);
    }
}

#[test]
fn pointwise_convs_match_reference_and_run_epilogue_once() {
    use crate::host::cpu::{simd_level, test_needs, Simd};
    if !test_needs("AVX-512", simd_level() == Simd::Avx512) {
        return;
    }
    let mut rng = crate::test_rng();
    let nhwc = DataFormat::Nhwc;
    for case in 0..12 {
        // Strides up to 3 (different along h and w), odd sizes, input
        // channels from 1 to past a few panels' worth, 1-3 panels out; the
        // first case a map of fewer pixels than the kernel takes.
        let (sh, sw): (usize, usize) = (rng.random_range(1..4), rng.random_range(1..4));
        let (h, w): (usize, usize) = (rng.random_range(20..70), rng.random_range(20..70));
        let pixels = h.div_ceil(sh) * w.div_ceil(sw);
        let n = if case == 0 {
            1
        } else {
            MIN_PIXELS.div_ceil(pixels) + rng.random_range(0..2)
        };
        let (h, w) = if case == 0 {
            (1, MIN_PIXELS - 1)
        } else {
            (h, w)
        };
        let cin = [1, 3, 64, 65][case % 4] + rng.random_range(0..3) * 61;
        let cout = 64 * rng.random_range(1..4);
        let (x, f) = ([n, h, w, cin], [1, 1, cin, cout]);
        let strides = [1, sh as i64, sw as i64, 1];
        let padding = [Padding::Same, Padding::Valid][case % 2];
        let a = attrs(&strides, &[1, 1, 1, 1], padding, &[], nhwc);
        let g = conv2d_geometry(&x, &f, &a, ConvPass::Forward).unwrap();
        let operands = random_operands(&mut rng, &x, &f, &g);
        check_own_kernel(pointwise::conv2d, &operands, &g, case > 0);
    }
}
