use super::*;
use tfa_core::shape::broadcast_shapes;

fn bin_f32(op: BinaryOp, a: (&[usize], &[f32]), b: (&[usize], &[f32])) -> Vec<f32> {
    let shape = broadcast_shapes(a.0, b.0).unwrap();
    let mut out = vec![0f32; shape.iter().product()];
    let av = TensorView::from_slice(a.0.to_vec(), a.1);
    let bv = TensorView::from_slice(b.0.to_vec(), b.1);
    binary(
        op,
        &av,
        &bv,
        &mut TensorMut::from_slice(shape, &mut out),
        None,
    )
    .unwrap();
    out
}

#[test]
fn broadcasting_add_matches_reference() {
    use rand::Rng;
    let mut rng = crate::test_rng();
    for _ in 0..200 {
        let rank = rng.random_range(0..5);
        let out: Vec<usize> = (0..rank).map(|_| rng.random_range(0..5)).collect();
        let mut mk = || -> Vec<usize> {
            let r = rng.random_range(0..=rank);
            out[rank - r..]
                .iter()
                .map(|&d| if rng.random_bool(0.3) { 1 } else { d })
                .collect()
        };
        let (sa, sb) = (mk(), mk());
        let full = broadcast_shapes(&sa, &sb).unwrap();
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let a: Vec<f32> = (0..na).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..nb).map(|i| (i * 1000) as f32).collect();
        let got = bin_f32(BinaryOp::Add, (&sa, &a), (&sb, &b));
        // Reference: index arithmetic per output element.
        let n: usize = full.iter().product();
        let fst = tfa_core::shape::strides(&full);
        for (lin, g) in got.iter().enumerate().take(n) {
            let idx: Vec<usize> = fst.iter().zip(&full).map(|(s, d)| lin / s % d).collect();
            let off = |s: &[usize]| {
                let st = tfa_core::shape::strides(s);
                let k = full.len() - s.len();
                s.iter()
                    .enumerate()
                    .map(|(i, &d)| if d == 1 { 0 } else { idx[k + i] * st[i] })
                    .sum::<usize>()
            };
            assert_eq!(*g, a[off(&sa)] + b[off(&sb)], "{sa:?} + {sb:?} at {lin}");
        }
    }
}

#[test]
fn in_place_binary_reads_from_output() {
    let mut buf = vec![1f32, 2., 3., 4.];
    let b = [10f32, 20.];
    let a_shape = vec![2, 2];
    // `a` aliases the output: build its view from a copy of the shape only.
    let a_dummy = [0f32; 4];
    let av = TensorView::from_slice(a_shape.clone(), &a_dummy);
    let bv = TensorView::from_slice(vec![2], &b);
    binary(
        BinaryOp::Sub,
        &av,
        &bv,
        &mut TensorMut::from_slice(a_shape, &mut buf),
        Some(0),
    )
    .unwrap();
    assert_eq!(buf, vec![-9., -18., -7., -16.]);
}

#[test]
fn large_parallel_unary_and_add_n() {
    let n = 100_003;
    let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut out = vec![0f32; n];
    let xv = TensorView::from_slice(vec![n], &x);
    unary(
        UnaryOp::Relu,
        &xv,
        &mut TensorMut::from_slice(vec![n], &mut out),
        false,
    )
    .unwrap();
    assert!(out.iter().zip(&x).all(|(o, v)| *o == v.max(0.0)));
    let mut sum = vec![0f32; n];
    add_n(
        &[xv.clone(), xv.clone(), xv],
        &mut TensorMut::from_slice(vec![n], &mut sum),
        None,
    )
    .unwrap();
    assert!(sum.iter().zip(&x).all(|(s, v)| *s == 3.0 * v));
}

#[test]
fn int_division_truncates_and_rejects_zero() {
    // The legacy Div and TruncateDiv round toward zero, TruncateMod takes the
    // dividend's sign (C's `/` and `%`); a zero divisor is an error.
    let x = [-7i64, 7, -7, 7];
    let y = [2i64, -2, -2, 2];
    let (xv, yv) = (
        TensorView::from_slice(vec![4], &x),
        TensorView::from_slice(vec![4], &y),
    );
    for (op, want) in [
        (BinaryOp::Div, [-3i64, -3, 3, 3]),
        (BinaryOp::TruncateDiv, [-3, -3, 3, 3]),
        (BinaryOp::TruncateMod, [-1, 1, -1, 1]),
    ] {
        let mut o = [0i64; 4];
        binary(
            op,
            &xv,
            &yv,
            &mut TensorMut::from_slice(vec![4], &mut o),
            None,
        )
        .unwrap();
        assert_eq!(o, want, "{op:?}");
        let zero = [0i64];
        let e = binary(
            op,
            &xv,
            &TensorView::from_slice(vec![1], &zero),
            &mut TensorMut::from_slice(vec![4], &mut o),
            None,
        );
        assert!(matches!(e, Err(Error::InvalidArgument(_))), "{op:?}");
    }
}
