use super::*;
use crate::geometry::einsum::einsum_spec;
use rand::Rng;

/// Reference einsum by brute force over all label values.
fn naive(eq: &str, xs: &[(&[usize], &[f64])]) -> (Vec<usize>, Vec<f64>) {
    let ranks: Vec<usize> = xs.iter().map(|x| x.0.len()).collect();
    let spec = einsum_spec(eq, &ranks).unwrap();
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.0).collect();
    let oshape = einsum_shape(&spec, &shapes).unwrap();
    let mut all: Vec<(Label, usize)> = Vec::new();
    for (labels, s) in spec.inputs.iter().zip(&shapes) {
        for (&l, &d) in labels.iter().zip(s.iter()) {
            match all.iter_mut().find(|p| p.0 == l) {
                Some(p) => p.1 = p.1.max(d),
                None => all.push((l, d)),
            }
        }
    }
    let total: usize = all.iter().map(|p| p.1).product();
    let mut out = vec![0.0; oshape.iter().product()];
    for i in 0..total {
        let mut rem = i;
        let mut val = vec![0usize; all.len()];
        for (j, p) in all.iter().enumerate().rev() {
            val[j] = rem % p.1;
            rem /= p.1;
        }
        let get = |l: Label| val[all.iter().position(|p| p.0 == l).unwrap()];
        let mut prod = 1.0;
        for ((labels, s), x) in spec.inputs.iter().zip(&shapes).zip(xs) {
            let st = tfa_core::shape::strides(s);
            let off: usize = labels
                .iter()
                .enumerate()
                .map(|(a, &l)| if s[a] == 1 { 0 } else { get(l) * st[a] })
                .sum();
            prod *= x.1[off];
        }
        let ost = tfa_core::shape::strides(&oshape);
        let o: usize = spec
            .output
            .iter()
            .enumerate()
            .map(|(a, &l)| if oshape[a] == 1 { 0 } else { get(l) * ost[a] })
            .sum();
        out[o] += prod;
    }
    (oshape, out)
}

/// einsum_lowp equals einsum on pre-rounded float32 operands, also where
/// it sums before the product and for one operand.
#[test]
fn einsum_lowp_equals_einsum_of_rounded_operands() {
    let mut rng = crate::test_rng();
    let cases: &[(&str, &[&[usize]])] = &[
        ("ij,jk->ik", &[&[30, 40], &[40, 50]]),
        ("bhqd,bhkd->bhqk", &[&[2, 3, 17, 33], &[2, 3, 19, 33]]),
        ("ij,jk->k", &[&[13, 14], &[14, 15]]),
        ("ijk->j", &[&[5, 6, 7]]),
        ("iij,jk->ik", &[&[3, 3, 20], &[20, 4]]),
    ];
    for (eq, shapes) in cases {
        for lowp in [DType::BF16, DType::F16] {
            let l = LowpType::from_dtype(lowp).unwrap();
            let datas: Vec<Vec<f32>> = shapes
                .iter()
                .map(|s| {
                    (0..s.iter().product::<usize>())
                        .map(|_| rng.random_range(-2.0..2.0))
                        .collect()
                })
                .collect();
            let rounded: Vec<Vec<f32>> = datas
                .iter()
                .map(|d| d.iter().map(|&v| l.round(v)).collect())
                .collect();
            let ranks: Vec<usize> = shapes.iter().map(|s| s.len()).collect();
            let spec = einsum_spec(eq, &ranks).unwrap();
            let shape_refs: Vec<&[usize]> = shapes.to_vec();
            let oshape = einsum_shape(&spec, &shape_refs).unwrap();
            let run = |ds: &[Vec<f32>], lowp: Option<DType>| {
                let views: Vec<TensorView> = shapes
                    .iter()
                    .zip(ds)
                    .map(|(s, d)| TensorView::from_slice(s.to_vec(), d))
                    .collect();
                let mut out = vec![f32::NAN; oshape.iter().product()];
                einsum_lowp(
                    &spec,
                    &views,
                    &mut TensorMut::from_slice(oshape.clone(), &mut out),
                    lowp,
                )
                .unwrap();
                out
            };
            let got = run(&datas, Some(lowp));
            let want = run(&rounded, None);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-3 * (1.0 + w.abs()),
                    "{eq} {lowp}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn einsum_matches_brute_force() {
    let mut rng = crate::test_rng();
    let cases: &[(&str, &[&[usize]])] = &[
        ("ij,jk->ik", &[&[3, 4], &[4, 5]]),
        ("bij,bjk->bik", &[&[2, 3, 4], &[2, 4, 5]]),
        ("bij,bkj->bki", &[&[2, 3, 4], &[2, 5, 4]]),
        ("ij,kl->ijkl", &[&[2, 3], &[4, 2]]),
        ("ij,ij->", &[&[3, 4], &[3, 4]]),
        ("ij,jk->k", &[&[3, 4], &[4, 5]]),
        ("abc,cd->da", &[&[2, 3, 4], &[4, 2]]),
        ("...ij,...jk->...ik", &[&[2, 1, 3, 4], &[3, 4, 2]]),
        ("b...i,bi->b...", &[&[2, 3, 4], &[2, 4]]),
        ("ii->i", &[&[3, 3]]),
        ("ii->", &[&[4, 4]]),
        ("ijk->kji", &[&[2, 3, 4]]),
        ("ijk->j", &[&[2, 3, 4]]),
        ("iij,jk->ik", &[&[3, 3, 2], &[2, 4]]),
        ("bhqd,bhkd->bhqk", &[&[2, 3, 4, 5], &[2, 3, 6, 5]]),
        // Keras MultiHeadAttention's two products (operands read as adjoints,
        // rows from the second operand) and other layouts `orient` picks.
        ("aecd,abcd->acbe", &[&[2, 3, 4, 5], &[2, 6, 4, 5]]),
        ("acbe,aecd->abcd", &[&[2, 4, 6, 3], &[2, 3, 4, 5]]),
        ("bji,bjk->bik", &[&[2, 4, 3], &[2, 4, 5]]),
        ("bji,bkj->bki", &[&[2, 4, 3], &[2, 5, 4]]),
        ("ij,kj->ki", &[&[3, 4], &[5, 4]]),
        ("bik,bkj->jib", &[&[2, 3, 4], &[2, 4, 5]]),
        ("xyab,ybcx->xyac", &[&[2, 3, 4, 5], &[3, 5, 6, 2]]),
        ("ij,j->i", &[&[0, 4], &[4]]),
        ("ij,jk->ik", &[&[3, 0], &[0, 2]]),
    ];
    for (eq, shapes) in cases {
        let datas: Vec<Vec<f64>> = shapes
            .iter()
            .map(|s| {
                (0..s.iter().product::<usize>())
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect()
            })
            .collect();
        let xs: Vec<(&[usize], &[f64])> = shapes
            .iter()
            .zip(&datas)
            .map(|(s, d)| (*s, d.as_slice()))
            .collect();
        let (oshape, want) = naive(eq, &xs);
        let ranks: Vec<usize> = shapes.iter().map(|s| s.len()).collect();
        let spec = einsum_spec(eq, &ranks).unwrap();
        let views: Vec<TensorView> = shapes
            .iter()
            .zip(&datas)
            .map(|(s, d)| TensorView::from_slice(s.to_vec(), d))
            .collect();
        let mut got = vec![f64::NAN; want.len()];
        einsum(
            &spec,
            &views,
            &mut TensorMut::from_slice(oshape.clone(), &mut got),
        )
        .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9, "{eq}: {got:?} vs {want:?}");
        }
    }
    assert!(einsum_spec("ij,jk", &[2, 2]).is_err());
    assert!(einsum_spec("ij->ii", &[2]).is_err());
    assert!(einsum_spec("ijk->i", &[2]).is_err());
    assert!(einsum_spec("...i->i", &[3]).is_err());
    assert!(einsum_spec("...i->i", &[1]).is_ok());
}
