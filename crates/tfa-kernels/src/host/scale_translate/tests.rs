use super::*;
use crate::geometry::image::*;

/// Deterministic values in [-3, 3) (a small LCG).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0
        })
        .collect()
}

fn forward(
    x: &[f32],
    shape: [usize; 4],
    size: [usize; 2],
    scale: [f32; 2],
    translation: [f32; 2],
    k: SamplingKernel,
    antialias: bool,
) -> Vec<f32> {
    let out_shape = vec![shape[0], size[0], size[1], shape[3]];
    let mut y = vec![f32::NAN; out_shape.iter().product()];
    let v = TensorView::from_slice(shape.to_vec(), x);
    let mut o = TensorMut::from_slice(out_shape, &mut y);
    scale_and_translate(&v, scale, translation, k, antialias, &mut o).unwrap();
    y
}

fn backward(
    g: &[f32],
    gshape: [usize; 4],
    image: [usize; 2],
    scale: [f32; 2],
    translation: [f32; 2],
    k: SamplingKernel,
    antialias: bool,
) -> Vec<f32> {
    let out_shape = vec![gshape[0], image[0], image[1], gshape[3]];
    let mut dx = vec![f32::NAN; out_shape.iter().product()];
    let v = TensorView::from_slice(gshape.to_vec(), g);
    let mut o = TensorMut::from_slice(out_shape, &mut dx);
    scale_and_translate_grad(&v, scale, translation, k, antialias, &mut o).unwrap();
    dx
}

const ALL: [SamplingKernel; 8] = [
    SamplingKernel::Lanczos1,
    SamplingKernel::Lanczos3,
    SamplingKernel::Lanczos5,
    SamplingKernel::Gaussian,
    SamplingKernel::Box,
    SamplingKernel::Triangle,
    SamplingKernel::KeysCubic,
    SamplingKernel::MitchellCubic,
];

#[test]
fn identity_scale_gives_the_input_back() {
    let shape = [2, 5, 6, 3];
    let x = data(shape.iter().product(), 7);
    // Every interpolating kernel is 1 at 0 and 0 at the other integers.
    // (Not Lanczos: TensorFlow's float sin(pi) is not 0.)
    for k in [
        SamplingKernel::Box,
        SamplingKernel::Triangle,
        SamplingKernel::KeysCubic,
    ] {
        for antialias in [false, true] {
            let y = forward(&x, shape, [5, 6], [1.0, 1.0], [0.0, 0.0], k, antialias);
            assert_eq!(y, x, "{k:?} antialias={antialias}");
        }
    }
}

#[test]
fn box_halving_averages_pairs() {
    // 1x4 -> 1x2 with the box kernel, antialiased (twice as wide): each
    // output is the mean of two inputs.
    let x = [1.0f32, 3.0, 5.0, 9.0];
    let y = forward(
        &x,
        [1, 1, 4, 1],
        [1, 2],
        [1.0, 0.5],
        [0.0, 0.0],
        SamplingKernel::Box,
        true,
    );
    assert_eq!(y, [2.0, 7.0]);
    // Translated out of the image: zeros.
    let y = forward(
        &x,
        [1, 1, 4, 1],
        [1, 2],
        [1.0, 1.0],
        [0.0, 10.0],
        SamplingKernel::Box,
        true,
    );
    assert_eq!(y, [0.0, 0.0]);
}

#[test]
fn gradient_is_the_adjoint() {
    let shape = [2, 5, 7, 2];
    let x = data(shape.iter().product(), 11);
    let cases: [([usize; 2], [f32; 2], [f32; 2]); 3] = [
        ([9, 4], [1.8, 0.6], [0.3, -0.7]),
        ([3, 11], [0.6, 1.6], [-1.0, 2.5]),
        ([5, 7], [1.0, 1.0], [0.25, 0.0]),
    ];
    for k in ALL {
        for antialias in [false, true] {
            for (size, scale, t) in cases {
                let y = forward(&x, shape, size, scale, t, k, antialias);
                let gshape = [shape[0], size[0], size[1], shape[3]];
                let g = data(y.len(), 13);
                let dx = backward(&g, gshape, [5, 7], scale, t, k, antialias);
                let lhs: f64 = g.iter().zip(&y).map(|(a, b)| f64::from(a * b)).sum();
                let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| f64::from(a * b)).sum();
                assert!(
                    (lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()),
                    "{k:?} {antialias} {size:?}: {lhs} vs {rhs}"
                );
            }
        }
    }
}

#[test]
fn other_input_types_read_as_float32() {
    let x = data(2 * 4 * 3 * 2, 5);
    let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let xi: Vec<i32> = x.iter().map(|&v| v as i32).collect();
    let k = SamplingKernel::MitchellCubic;
    let run = |v: TensorView| {
        let mut y = vec![0f32; 2 * 6 * 2 * 2];
        let mut o = TensorMut::from_slice(vec![2, 6, 2, 2], &mut y);
        scale_and_translate(&v, [1.5, 0.7], [0.2, 0.0], k, true, &mut o).unwrap();
        y
    };
    let want = forward(&x, [2, 4, 3, 2], [6, 2], [1.5, 0.7], [0.2, 0.0], k, true);
    assert_eq!(run(TensorView::from_slice(vec![2, 4, 3, 2], &x64)), want);
    let xf: Vec<f32> = xi.iter().map(|&v| v as f32).collect();
    let want = forward(&xf, [2, 4, 3, 2], [6, 2], [1.5, 0.7], [0.2, 0.0], k, true);
    assert_eq!(run(TensorView::from_slice(vec![2, 4, 3, 2], &xi)), want);
}

#[test]
fn degenerate_scales_as_tensorflow_on_x86() {
    // A kernel wider than int64: span [0, 1), the first pixel.
    let x = [1.0f32, 2.0, 3.0, 4.0];
    let y = forward(
        &x,
        [1, 1, 4, 1],
        [1, 3],
        [1.0, 1e-20],
        [0.0, 0.5],
        SamplingKernel::Lanczos3,
        true,
    );
    assert_eq!(y, [1.0, 0.0, 0.0]);
    // Wider than int32: "Span is too large: 4 vs 1."
    let v = TensorView::from_slice(vec![1, 1, 4, 1], &x);
    let mut y = [0f32; 3];
    let mut o = TensorMut::from_slice(vec![1, 1, 3, 1], &mut y);
    let e = scale_and_translate(
        &v,
        [1.0, 1e-12],
        [0.0, 0.5],
        SamplingKernel::Lanczos3,
        true,
        &mut o,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Span is too large: 4 vs 1.");
    // NaN translation: no weights, zeros.
    let y = forward(
        &x,
        [1, 1, 4, 1],
        [1, 2],
        [1.0, 1.0],
        [0.0, f32::NAN],
        SamplingKernel::KeysCubic,
        true,
    );
    assert_eq!(y, [0.0, 0.0]);
}

#[test]
fn checks_and_kernel_names() {
    assert_eq!("3.14159265359".parse::<f32>(), Ok(std::f32::consts::PI));
    assert_eq!(
        SamplingKernel::parse("LanczoS3").unwrap(),
        SamplingKernel::Lanczos3
    );
    let e = SamplingKernel::parse("bicubic").unwrap_err();
    assert_eq!(e.to_string(), "Unrecognized kernel type: bicubic");
    assert!(matches!(e, Error::InvalidArgument(_)));
    let msg = |r: Result<Vec<usize>>| r.unwrap_err().to_string();
    assert_eq!(
        msg(scale_and_translate_shape(&[5, 6, 3], &[2], &[3, 4])),
        "input must be 4-dimensional[5,6,3]"
    );
    assert_eq!(
        msg(scale_and_translate_shape(&[1, 5, 6, 3], &[3], &[3, 4, 5])),
        "output_shape_t must have two elements[3]"
    );
    assert_eq!(
        msg(scale_and_translate_shape(&[1, 5, 6, 3], &[2], &[0, 4])),
        "output dimensions must be positive"
    );
    assert_eq!(
        msg(scale_and_translate_shape(&[1, 0, 6, 0], &[2], &[3, 4])),
        "image must have at least one channel"
    );
    assert_eq!(
        scale_and_translate_shape(&[0, 5, 6, 3], &[2], &[3, 4]).unwrap(),
        [0, 3, 4, 3]
    );
    let st = |s: &[f32], t: &[f32]| {
        scale_and_translation(&[s.len()], s, &[t.len()], t)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        st(&[1.0, 1.0, 1.0], &[0.0, 0.0]),
        "t must have two elements[3]"
    );
    assert_eq!(st(&[0.0, 1.0], &[0.0]), "Scale must be greater than zero.");
    assert_eq!(
        st(&[f32::NAN, 1.0], &[0.0, 0.0]),
        "Scale must be greater than zero."
    );
    assert_eq!(st(&[1.0, 1.0], &[0.0]), "t must have two elements[1]");
    assert_eq!(
        msg(scale_and_translate_grad_shape(
            &[2, 3, 4],
            DType::F32,
            &[2, 5, 6, 3]
        )),
        "input_grad must be 4-dimensional[2,3,4]"
    );
    assert_eq!(
        msg(scale_and_translate_grad_shape(
            &[2, 3, 4, 3],
            DType::F32,
            &[5, 6, 3]
        )),
        "original_image must be 4-dimensional[5,6,3]"
    );
    assert_eq!(
        scale_and_translate_grad_shape(&[2, 3, 4, 3], DType::F32, &[1, 0, 6, 9]).unwrap(),
        [2, 0, 6, 3]
    );
}

#[test]
fn empty_axes_do_not_panic() {
    // Gradient of an empty forward output: zeros.
    let dx = backward(
        &[],
        [1, 0, 3, 2],
        [4, 5],
        [1.0, 1.0],
        [0.0, 0.0],
        SamplingKernel::Lanczos5,
        true,
    );
    assert_eq!(dx, vec![0.0; 40]);
    // Original image of height 0.
    let g = data(2 * 3 * 2, 3);
    let dx = backward(
        &g,
        [1, 2, 3, 2],
        [0, 5],
        [1.0, 1.0],
        [0.0, 0.0],
        SamplingKernel::Gaussian,
        false,
    );
    assert!(dx.is_empty());
}
