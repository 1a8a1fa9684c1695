use super::*;
use crate::geometry::matmul::batch_matmul_plan;
use rand::Rng;

#[test]
fn broadcast_batches_and_adjoints_match_reference() {
    let mut rng = crate::test_rng();
    for it in 0..80 {
        let big = it % 20 == 0;
        let (m, k, n) = if big {
            (70, 90, 60)
        } else {
            (
                rng.random_range(0..5),
                rng.random_range(0..5),
                rng.random_range(0..5),
            )
        };
        let nb = rng.random_range(0..3);
        let batch: Vec<usize> = (0..nb).map(|_| rng.random_range(1..4)).collect();
        let mk = |rng: &mut rand::rngs::StdRng| -> Vec<usize> {
            let keep = rng.random_range(0..=nb);
            batch[nb - keep..]
                .iter()
                .map(|&d| if rng.random_bool(0.3) { 1 } else { d })
                .collect()
        };
        let (bx, by) = (mk(&mut rng), mk(&mut rng));
        let p = BatchMatMulParams {
            adj_x: rng.random_bool(0.5),
            adj_y: rng.random_bool(0.5),
            lowp: None,
        };
        let mut xs = bx.clone();
        xs.extend(if p.adj_x { [k, m] } else { [m, k] });
        let mut ys = by.clone();
        ys.extend(if p.adj_y { [n, k] } else { [k, n] });
        let x: Vec<f64> = (0..xs.iter().product::<usize>())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let y: Vec<f64> = (0..ys.iter().product::<usize>())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let plan = batch_matmul_plan(&xs, &ys, p).unwrap();
        let mut out = vec![f64::NAN; plan.out_shape.iter().product()];
        batch_matmul(
            &TensorView::from_slice(xs.clone(), &x),
            &TensorView::from_slice(ys.clone(), &y),
            &plan,
            &mut TensorMut::from_slice(plan.out_shape.clone(), &mut out),
        )
        .unwrap();
        // Reference with plain index arithmetic.
        let ob = &plan.out_shape[..plan.out_shape.len() - 2];
        let nbo: usize = ob.iter().product();
        for b in 0..nbo {
            let bidx = |s: &[usize]| -> usize {
                let pad = ob.len() - s.len();
                let st = tfa_core::shape::strides(s);
                let mut rem = b;
                let mut off = 0;
                for d in (0..ob.len()).rev() {
                    let i = rem % ob[d];
                    rem /= ob[d];
                    if d >= pad && s[d - pad] != 1 {
                        off += i * st[d - pad];
                    }
                }
                off
            };
            let (xb, yb) = (bidx(&bx), bidx(&by));
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0;
                    for q in 0..k {
                        let a = if p.adj_x {
                            x[xb * m * k + q * m + i]
                        } else {
                            x[xb * m * k + i * k + q]
                        };
                        let c = if p.adj_y {
                            y[yb * k * n + j * k + q]
                        } else {
                            y[yb * k * n + q * n + j]
                        };
                        s += a * c;
                    }
                    let g = out[b * m * n + i * n + j];
                    assert!((g - s).abs() < 1e-9, "{xs:?} {ys:?} {p:?}");
                }
            }
        }
    }
}

/// Reading operands through permutations (and writing the result with its
/// last two dims swapped) equals transposing them first, for random ranks,
/// permutations, broadcast batches and adjoints.
#[test]
fn permuted_operands_match_transposed_copies() {
    use crate::host::transpose::{transpose_words, transposed_shape};
    use rand::seq::SliceRandom;
    let mut rng = crate::test_rng();
    for it in 0..120 {
        let rank = rng.random_range(2..5);
        let (m, k, n) = if it % 30 == 0 {
            (70, 90, 60)
        } else {
            (
                rng.random_range(0..5),
                rng.random_range(0..5),
                rng.random_range(1..5),
            )
        };
        let batch: Vec<usize> = (0..rank - 2).map(|_| rng.random_range(1..4)).collect();
        let p = BatchMatMulParams {
            adj_x: rng.random_bool(0.5),
            adj_y: rng.random_bool(0.5),
            lowp: None,
        };
        let logical = |mat: [usize; 2], rng: &mut rand::rngs::StdRng| -> Vec<usize> {
            let mut s: Vec<usize> = batch
                .iter()
                .map(|&d| if rng.random_bool(0.2) { 1 } else { d })
                .collect();
            s.extend(mat);
            s
        };
        let lx = logical(if p.adj_x { [k, m] } else { [m, k] }, &mut rng);
        let ly = logical(if p.adj_y { [n, k] } else { [k, n] }, &mut rng);
        let transpose_out = rng.random_bool(0.5);
        // Stored operands and the perms that give the logical shapes.
        let stored = |l: &[usize], rng: &mut rand::rngs::StdRng| {
            let mut perm: Vec<usize> = (0..l.len()).collect();
            perm.shuffle(rng);
            let mut st = vec![0; l.len()];
            for (i, &q) in perm.iter().enumerate() {
                st[q] = l[i];
            }
            let data: Vec<f32> = (0..st.iter().product::<usize>())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            (st, perm, data)
        };
        let (sx, px, x) = stored(&lx, &mut rng);
        let (sy, py, y) = stored(&ly, &mut rng);
        assert_eq!(transposed_shape(&sx, &px), lx);
        let plan = batch_matmul_plan(&lx, &ly, p).unwrap();
        let mut got = vec![f32::NAN; plan.out_shape.iter().product()];
        let mut out_shape = plan.out_shape.clone();
        if transpose_out {
            out_shape.swap(rank - 2, rank - 1);
        }
        batch_matmul_permuted(
            &TensorView::from_slice(sx.clone(), &x),
            &TensorView::from_slice(sy.clone(), &y),
            (&px, &py),
            transpose_out,
            &plan,
            &mut TensorMut::from_slice(out_shape.clone(), &mut got),
        )
        .unwrap();
        // Reference: transposed copies, the plain product, then the swap.
        let copy = |src: &[f32], shape: &[usize], perm: &[usize]| {
            let mut d = vec![0f32; src.len()];
            transpose_words(src, shape, perm, &mut d).unwrap();
            d
        };
        let (tx, ty) = (copy(&x, &sx, &px), copy(&y, &sy, &py));
        let mut want = vec![f32::NAN; got.len()];
        batch_matmul(
            &TensorView::from_slice(lx.clone(), &tx),
            &TensorView::from_slice(ly.clone(), &ty),
            &plan,
            &mut TensorMut::from_slice(plan.out_shape.clone(), &mut want),
        )
        .unwrap();
        if transpose_out {
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.swap(rank - 2, rank - 1);
            want = copy(&want, &plan.out_shape, &perm);
        }
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{lx:?} {ly:?} {p:?} {g} {w}"
            );
        }
    }
}

/// lowp BF16 equals the float32 product of pre-rounded inputs; bfloat16
/// data takes the same path and rounds once.
#[test]
fn lowp_and_bf16_batches_match_rounded_f32() {
    let mut rng = crate::test_rng();
    let r = |v: f32| bf16::from_f32(v).to_f32();
    for (xs, ys, adj_x, adj_y) in [
        (vec![3, 17, 40], vec![40, 9], false, false), // shared y: one tall product
        (vec![2, 1, 5, 33], vec![3, 33, 70], false, false),
        (vec![4, 30, 20], vec![4, 50, 30], true, true),
        (vec![2, 65, 70], vec![2, 70, 66], false, false),
    ] {
        let p = BatchMatMulParams {
            adj_x,
            adj_y,
            lowp: Some(DType::BF16),
        };
        let plan = batch_matmul_plan(&xs, &ys, p).unwrap();
        let x: Vec<f32> = (0..xs.iter().product::<usize>())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let y: Vec<f32> = (0..ys.iter().product::<usize>())
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let (rx, ry): (Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| r(v)).collect(),
            y.iter().map(|&v| r(v)).collect(),
        );
        let len: usize = plan.out_shape.iter().product();
        let mut got = vec![f32::NAN; len];
        f32::bmm(&plan, &x, &y, &mut got);
        let plan32 = BatchPlan {
            p: BatchMatMulParams { lowp: None, ..p },
            ..plan.clone()
        };
        let mut want = vec![f32::NAN; len];
        f32::bmm(&plan32, &rx, &ry, &mut want);
        // Entries are sums of k products of magnitude <= 4.
        let tol = 1e-5 * 4.0 * plan.k as f32;
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= tol, "{xs:?} {ys:?}: {g} vs {w}");
        }
        let bx: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let by: Vec<bf16> = y.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut gb = vec![bf16::ZERO; len];
        bf16::bmm(&plan32, &bx, &by, &mut gb);
        for (g, w) in gb.iter().zip(&want) {
            let g = g.to_f32();
            assert!((g - w).abs() <= w.abs() / 256.0 + tol, "bf16 {g} vs {w}");
        }
    }
}

#[test]
fn shape_errors() {
    let p = BatchMatMulParams::default();
    assert_eq!(
        batch_matmul_plan(&[2, 3, 4], &[3, 4, 5], p)
            .unwrap_err()
            .to_string(),
        "In[0] and In[1] must have compatible batch dimensions: [2,3,4] vs. [3,4,5]"
    );
    assert_eq!(
        batch_matmul_plan(&[2, 3, 4], &[2, 5, 5], p)
            .unwrap_err()
            .to_string(),
        "Matrix size-incompatible: In[0]: [2,3,4], In[1]: [2,5,5]"
    );
    assert!(batch_matmul_plan(&[3], &[3, 3], p).is_err());
}
