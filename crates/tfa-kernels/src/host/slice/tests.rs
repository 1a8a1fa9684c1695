use super::*;
use crate::geometry::slice::*;
use rand::Rng;

/// Python-like reference for one dim: indices a slice selects.
fn py_range(dim: i64, b: Option<i64>, e: Option<i64>, s: i64) -> Vec<i64> {
    let norm = |x: i64| if x < 0 { x + dim } else { x };
    let mut v = Vec::new();
    if s > 0 {
        let b = b.map(norm).unwrap_or(0).clamp(0, dim);
        let e = e.map(norm).unwrap_or(dim).clamp(0, dim);
        let mut i = b;
        while i < e {
            v.push(i);
            i += s;
        }
    } else {
        let b = b.map(norm).unwrap_or(dim - 1).clamp(-1, dim - 1);
        let e = e.map(norm).unwrap_or(-1).clamp(-1, dim - 1);
        let mut i = b;
        while i > e {
            v.push(i);
            i += s;
        }
    }
    v
}

#[test]
fn strided_slices_match_python_ranges() {
    let mut rng = crate::test_rng();
    for _ in 0..400 {
        let rank = rng.random_range(1..4);
        let shape: Vec<usize> = (0..rank).map(|_| rng.random_range(0..7)).collect();
        let (mut b, mut e, mut s) = (vec![], vec![], vec![]);
        let mut m = SliceMasks::default();
        let mut sel: Vec<Vec<i64>> = vec![];
        for (d, &n) in shape.iter().enumerate() {
            let n = n as i64;
            let st = [1, 2, 3, -1, -2][rng.random_range(0..5)];
            let bb = rng.random_range(-8..8);
            let ee = rng.random_range(-8..8);
            let bm = rng.random_bool(0.3);
            let em = rng.random_bool(0.3);
            if bm {
                m.begin |= 1 << d;
            }
            if em {
                m.end |= 1 << d;
            }
            b.push(bb);
            e.push(ee);
            s.push(st);
            sel.push(py_range(n, (!bm).then_some(bb), (!em).then_some(ee), st));
        }
        let plan = strided_slice_plan(&shape, &b, &e, &s, m).unwrap();
        let want_shape: Vec<usize> = sel.iter().map(|v| v.len()).collect();
        assert_eq!(
            plan.final_shape, want_shape,
            "{shape:?} {b:?} {e:?} {s:?} {m:?}"
        );
        let n: usize = shape.iter().product();
        let src: Vec<i64> = (0..n as i64).collect();
        let on: usize = want_shape.iter().product();
        let mut dst = vec![-1i64; on];
        strided_slice(
            &TensorView::from_slice(shape.clone(), &src),
            &plan,
            &mut TensorMut::from_slice(want_shape.clone(), &mut dst),
        )
        .unwrap();
        let st = strides(&shape);
        for (i, g) in dst.iter().enumerate() {
            let idx_st = strides(&want_shape);
            let mut off = 0;
            for d in 0..rank {
                off += sel[d][i / idx_st[d] % want_shape[d]] as usize * st[d];
            }
            assert_eq!(*g, src[off]);
        }
    }
}

#[test]
fn masks_ellipsis_new_axis_shrink() {
    // x[..., 1, tf.newaxis] on [2,3,4] -> [2,3,1]
    let p = strided_slice_plan(
        &[2, 3, 4],
        &[0, 1, 0],
        &[0, 2, 0],
        &[1, 1, 1],
        SliceMasks {
            ellipsis: 1,
            shrink_axis: 2,
            new_axis: 4,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.final_shape, vec![2, 3, 1]);
    // x[-1] on [5,2] -> [2]
    let p = strided_slice_plan(
        &[5, 2],
        &[-1],
        &[0],
        &[1],
        SliceMasks {
            shrink_axis: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((p.final_shape.clone(), p.begin[0]), (vec![2], 4));
    let e = strided_slice_plan(
        &[3],
        &[5],
        &[6],
        &[1],
        SliceMasks {
            shrink_axis: 1,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "slice index 5 of dimension 0 out of bounds.");
    assert!(strided_slice_plan(&[3], &[0], &[1], &[0], SliceMasks::default()).is_err());
    let p = strided_slice_plan(&[3, 4], &[0], &[3], &[1], SliceMasks::default()).unwrap();
    assert!(p.is_identity);
}

#[test]
fn concat_pack_pad() {
    let a = [1u16, 2, 3, 4];
    let b = [5u16, 6];
    let (axis, shape) = concat_shape(&[&[2, 2], &[2, 1]], -1).unwrap();
    let mut out = vec![0u16; 6];
    concat(
        &[
            TensorView::from_slice(vec![2, 2], &a),
            TensorView::from_slice(vec![2, 1], &b),
        ],
        axis,
        &mut TensorMut::from_slice(shape, &mut out),
    )
    .unwrap();
    assert_eq!(out, [1, 2, 5, 3, 4, 6]);
    assert!(concat_shape(&[&[2, 2], &[3, 1]], 1)
        .unwrap_err()
        .to_string()
        .contains("Dimension 0 in both shapes must be equal"));
    let (axis, shape) = pack_shape(&[&[2], &[2]], 1).unwrap();
    assert_eq!((axis, shape), (1, vec![2, 2]));
    let x = [1f32, 2., 3., 4.];
    let oshape = pad_shape(&[2, 2], &[2, 2], &[1, 0, 0, 2]).unwrap();
    assert_eq!(oshape, vec![3, 4]);
    let mut out = vec![0f32; 12];
    pad(
        &TensorView::from_slice(vec![2, 2], &x),
        &[1, 0],
        &9f32.to_ne_bytes(),
        &mut TensorMut::from_slice(oshape, &mut out),
    )
    .unwrap();
    assert_eq!(out, [9., 9., 9., 9., 1., 2., 9., 9., 3., 4., 9., 9.]);
    assert!(pad_shape(&[2], &[1, 2], &[-1, 0]).is_err());
}

/// Concatenations large enough to split into chunks that start and end
/// inside rows and parts (empty parts included), on a 3-thread pool and
/// from outside every pool, against a row-by-row reference.
#[test]
fn large_concats_split_anywhere() {
    let mut rng = crate::test_rng();
    let pool = crate::test_pool(3);
    for (outer, widths) in [
        (32usize, vec![256usize, 256, 256, 256]),
        (7, vec![1000, 0, 4093, 17]),
        (3000, vec![5, 1, 30]),
        (1, vec![40000, 30001]),
    ] {
        let srcs: Vec<Vec<u32>> = widths
            .iter()
            .map(|&w| (0..outer * w).map(|_| rng.random()).collect())
            .collect();
        let row: usize = widths.iter().sum();
        let mut want = Vec::with_capacity(outer * row);
        for o in 0..outer {
            for (s, &w) in srcs.iter().zip(&widths) {
                want.extend_from_slice(&s[o * w..(o + 1) * w]);
            }
        }
        let views: Vec<TensorView> = srcs
            .iter()
            .zip(&widths)
            .map(|(s, &w)| TensorView::from_slice(vec![outer, w], s))
            .collect();
        let run = || {
            let mut got = vec![0u32; outer * row];
            concat(
                &views,
                1,
                &mut TensorMut::from_slice(vec![outer, row], &mut got),
            )
            .unwrap();
            assert!(got == want, "{outer} x {widths:?}");
        };
        run();
        pool.install(run);
    }
}
