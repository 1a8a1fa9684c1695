//! Cases of the data-movement ops: reshapes, slices, splits, gathers and
//! scatters, rearrangements, scans, Einsum, the in-place ops and images.

use super::*;

/// This file's cases, one random draw each.
pub(super) fn cases(rng: &mut StdRng) -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(movement_cases(rng));
    v.extend(slicing_cases(rng));
    v.extend(indexing_cases(rng));
    v.extend(rearrange_cases(rng));
    v.extend(sequence_cases(rng));
    v.extend(einsum_inplace_cases(rng));
    v.extend(image_cases(rng));
    v
}

/// Cast, Identity, Reshape, Transpose, Pad/PadV2, BroadcastTo, Bitcast.
fn movement_cases(rng: &mut StdRng) -> Vec<Case> {
    let rank: usize = rng.random_range(1..4);
    let x: Vec<usize> = (0..rank).map(|_| rng.random_range(1..5)).collect();
    let dtype = float_type(rng);
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    // Reshape to the element count with one dim inferred.
    let n: usize = x.iter().product();
    let reshape = Tensor::new(&[2], &[-1i32, 1]);
    let mut perm: Vec<i32> = (0..rank as i32).collect();
    perm.rotate_left(rng.random_range(0..rank));
    let pads: Vec<i32> = (0..2 * rank).map(|_| rng.random_range(0..3)).collect();
    let mut wide = vec![rng.random_range(1..3)];
    wide.extend(&x);
    let cast_to = [DType::F32, DType::I64, DType::BF16, DType::Bool][rng.random_range(0..4)];
    let bitcast_to = [DType::F32, DType::I16, DType::U8][rng.random_range(0..3)];
    let mut cases = vec![
        case("Identity", vec![zeros(dtype, &x)], vec![]),
        case("Reshape", vec![zeros(dtype, &x), reshape], vec![]),
        case(
            "Transpose",
            vec![zeros(dtype, &x), Tensor::new(&[rank], &perm)],
            vec![],
        ),
        case(
            "Pad",
            vec![zeros(dtype, &x), Tensor::new(&[rank, 2], &pads)],
            vec![],
        ),
        case(
            "PadV2",
            vec![
                zeros(dtype, &x),
                Tensor::new(&[rank, 2], &pads),
                zeros(dtype, &[]),
            ],
            vec![],
        ),
        case("BroadcastTo", vec![zeros(dtype, &x), sizes(&wide)], vec![]),
    ];
    cases.push(Case {
        op: "Cast",
        dtype,
        inputs: vec![zeros(dtype, &x)],
        attrs: vec![
            ("SrcT", AttrValue::Type(dtype)),
            ("DstT", AttrValue::Type(cast_to)),
            ("Truncate", AttrValue::Bool(false)),
        ],
        may_reject: false,
    });
    // float32 [.., 4] bytes as `bitcast_to`.
    cases.push(Case {
        op: "Bitcast",
        dtype: DType::F32,
        inputs: vec![zeros(DType::F32, &[n])],
        attrs: vec![("type", AttrValue::Type(bitcast_to))],
        may_reject: false,
    });
    cases
}

/// StridedSlice (random bounds, strides and masks) and its gradient, Slice,
/// ConcatV2, Pack.
fn slicing_cases(rng: &mut StdRng) -> Vec<Case> {
    let rank: usize = rng.random_range(1..4);
    let x: Vec<usize> = (0..rank).map(|_| rng.random_range(1..6)).collect();
    let dtype = float_type(rng);
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let mut bound = |d: usize| rng.random_range(-(d as i32)..=d as i32);
    let begin: Vec<i32> = x.iter().map(|&d| bound(d)).collect();
    let end: Vec<i32> = x.iter().map(|&d| bound(d)).collect();
    let strides: Vec<i32> = (0..rank)
        .map(|_| [1, 2, -1, -2][rng.random_range(0..4)])
        .collect();
    let mut masks: Attrs = ["begin_mask", "end_mask", "shrink_axis_mask"]
        .into_iter()
        .map(|m| (m, AttrValue::Int(rng.random_range(0..1 << rank))))
        .collect();
    masks.push(("ellipsis_mask", AttrValue::Int(0)));
    masks.push(("new_axis_mask", AttrValue::Int(rng.random_range(0..2))));
    let index = |v: &[i32]| Tensor::new(&[v.len()], v);
    let sliced = vec![
        zeros(dtype, &x),
        index(&begin),
        index(&end),
        index(&strides),
    ];
    let mut cases = Vec::new();
    // A shrunk axis must hold one element: keep the case only if it plans.
    if let Ok(y) = plan("StridedSlice", dtype, sliced.clone(), &masks) {
        let dy = zeros(dtype, &y[0].shape);
        cases.push(case("StridedSlice", sliced, masks.clone()));
        cases.push(case(
            "StridedSliceGrad",
            vec![sizes(&x), index(&begin), index(&end), index(&strides), dy],
            masks,
        ));
    }
    let start: Vec<i32> = x.iter().map(|&d| rng.random_range(0..d as i32)).collect();
    let size: Vec<i32> = x
        .iter()
        .zip(&start)
        .map(|(&d, &b)| {
            if rng.random_bool(0.2) {
                -1
            } else {
                rng.random_range(0..=d as i32 - b)
            }
        })
        .collect();
    cases.push(case(
        "Slice",
        vec![zeros(dtype, &x), index(&start), index(&size)],
        vec![],
    ));
    let axis = rng.random_range(0..rank);
    let mut other = x.clone();
    other[axis] = rng.random_range(0..4);
    cases.push(case(
        "ConcatV2",
        vec![
            zeros(dtype, &x),
            zeros(dtype, &other),
            Tensor::new(
                &[],
                &[axis as i32 - if rng.random_bool(0.5) { rank as i32 } else { 0 }],
            ),
        ],
        vec![],
    ));
    // Split in 1-3 equal pieces, SplitV with one size inferred (or one
    // piece: the input itself), Unpack.
    let len = x[axis];
    let n = [3, 2, 1]
        .into_iter()
        .find(|&n| len.is_multiple_of(n))
        .unwrap_or(1);
    let dim = Tensor::new(&[], &[axis as i32]);
    cases.push(Case {
        attrs: vec![("num_split", AttrValue::Int(n as i64))],
        ..case("Split", vec![dim.clone(), zeros(dtype, &x)], vec![])
    });
    let size_splits: Vec<i32> = if len > 1 && rng.random_bool(0.7) {
        vec![1, -1]
    } else {
        vec![len as i32]
    };
    cases.push(case(
        "SplitV",
        vec![zeros(dtype, &x), index(&size_splits), dim],
        vec![
            ("num_split", AttrValue::Int(size_splits.len() as i64)),
            ("Tlen", AttrValue::Type(DType::I32)),
        ],
    ));
    cases.push(case(
        "Unpack",
        vec![zeros(dtype, &x)],
        vec![
            ("axis", AttrValue::Int(axis as i64)),
            ("num", AttrValue::Int(len as i64)),
        ],
    ));
    cases.push(case(
        "Pack",
        vec![zeros(dtype, &x), zeros(dtype, &x), zeros(dtype, &x)],
        vec![("axis", AttrValue::Int(rng.random_range(0..=rank as i64)))],
    ));
    cases
}

/// GatherV2, Tile, OneHot, the stitches, the tensor scatters, ScatterNd.
fn indexing_cases(rng: &mut StdRng) -> Vec<Case> {
    let rank: usize = rng.random_range(1..4);
    let x: Vec<usize> = (0..rank).map(|_| rng.random_range(1..5)).collect();
    let dtype = float_type(rng);
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let axis = rng.random_range(0..rank);
    // Index 0 is valid everywhere.
    let k = rng.random_range(1..4);
    let idx = Tensor::new(&[k], &vec![0i32; k]);
    let multiples: Vec<i32> = (0..rank).map(|_| rng.random_range(0..3)).collect();
    let scatter_attrs = vec![("bad_indices_policy", string(""))];
    // Rows of `x` addressed by a leading index: updates [k, x[1..]].
    let mut updates = vec![k];
    updates.extend(&x[1..]);
    let rows = Tensor::new(&[k, 1], &vec![0i32; k]);
    let mut cases = vec![
        case(
            "GatherV2",
            vec![
                zeros(dtype, &x),
                idx.clone(),
                Tensor::new(&[], &[axis as i32]),
            ],
            vec![("batch_dims", AttrValue::Int(0))],
        ),
        // Tuples of `axis` zeros (the leading dims), `k` of them.
        case(
            "GatherNd",
            vec![
                zeros(dtype, &x),
                Tensor::new(&[k, axis], &vec![0i32; k * axis]),
            ],
            scatter_attrs.clone(),
        ),
        case(
            "Tile",
            vec![zeros(dtype, &x), Tensor::new(&[rank], &multiples)],
            vec![],
        ),
        case(
            "OneHot",
            vec![
                idx.clone(),
                Tensor::new(&[], &[rng.random_range(0..4)]),
                zeros(dtype, &[]),
                zeros(dtype, &[]),
            ],
            vec![("axis", AttrValue::Int([-1, 0][rng.random_range(0..2)]))],
        ),
        case(
            "ScatterNd",
            vec![rows.clone(), zeros(dtype, &updates), sizes(&x)],
            scatter_attrs.clone(),
        ),
    ];
    for op in [
        "TensorScatterUpdate",
        "TensorScatterAdd",
        "TensorScatterSub",
    ] {
        cases.push(case(
            op,
            vec![zeros(dtype, &x), rows.clone(), zeros(dtype, &updates)],
            scatter_attrs.clone(),
        ));
    }
    // merged[[0, 2]] = data0, merged[[1]] = data1: rows of x[1..].
    let mut d0 = vec![2];
    d0.extend(&x[1..]);
    let mut d1 = vec![1];
    d1.extend(&x[1..]);
    for op in ["DynamicStitch", "ParallelDynamicStitch"] {
        cases.push(Case {
            attrs: vec![("N", AttrValue::Int(2))],
            ..case(
                op,
                vec![
                    Tensor::new(&[2], &[0i32, 2]),
                    Tensor::new(&[1], &[1i32]),
                    zeros(dtype, &d0),
                    zeros(dtype, &d1),
                ],
                vec![],
            )
        });
    }
    cases
}

/// ReverseV2, Roll, MatrixBandPart, SpaceToBatchND and BatchToSpaceND.
fn rearrange_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = float_type(rng);
    let case = |op, inputs| Case {
        op,
        dtype,
        inputs,
        attrs: vec![],
        may_reject: false,
    };
    let (n, h, w, c) = (
        rng.random_range(1..3),
        rng.random_range(1..4),
        rng.random_range(1..4),
        rng.random_range(1..3),
    );
    let x = [n, h, w, c];
    let axes: Vec<i32> = (0..4).filter(|_| rng.random_bool(0.4)).collect();
    let scalar = |v: i32| Tensor::new(&[], &[v]);
    // Blocks of 2 over padded spatial dims, and back.
    let pads = [h % 2, 0, w % 2, 0].map(|p| p as i32);
    let to_batch = [n * 4, (h + h % 2) / 2, (w + w % 2) / 2, c];
    vec![
        case(
            "ReverseV2",
            vec![zeros(dtype, &x), Tensor::new(&[axes.len()], &axes)],
        ),
        // Pixel blocks of 1x1 (h, w as drawn) or 2x2 (even sizes, 4 channels).
        Case {
            op: "DepthToSpace",
            dtype,
            inputs: vec![zeros(dtype, &[n, h, w, 4 * c])],
            attrs: vec![
                ("block_size", AttrValue::Int(2)),
                ("data_format", string("NHWC")),
            ],
            may_reject: false,
        },
        Case {
            op: "SpaceToDepth",
            dtype,
            inputs: vec![zeros(dtype, &[n, 2 * h, 4 * w, c])],
            attrs: vec![
                ("block_size", AttrValue::Int(2)),
                ("data_format", string("NHWC")),
            ],
            may_reject: false,
        },
        case(
            "Roll",
            vec![
                zeros(dtype, &x),
                Tensor::new(&[axes.len()], &vec![rng.random_range(-5..5); axes.len()]),
                Tensor::new(&[axes.len()], &axes),
            ],
        ),
        case(
            "MatrixBandPart",
            vec![
                zeros(dtype, &x),
                // At most the rows (w) and the columns (c).
                scalar(rng.random_range(-1..=w as i32)),
                scalar(rng.random_range(-1..=c as i32)),
            ],
        ),
        case(
            "SpaceToBatchND",
            vec![
                zeros(dtype, &x),
                Tensor::new(&[2], &[2i32, 2]),
                Tensor::new(&[2, 2], &pads),
            ],
        ),
        case(
            "BatchToSpaceND",
            vec![
                zeros(dtype, &to_batch),
                Tensor::new(&[2], &[2i32, 2]),
                Tensor::new(&[2, 2], &pads),
            ],
        ),
    ]
}

/// Cumsum/Cumprod, TopKV2, Range, MirrorPad and its gradient.
fn sequence_cases(rng: &mut StdRng) -> Vec<Case> {
    let rank: usize = rng.random_range(1..4);
    let x: Vec<usize> = (0..rank).map(|_| rng.random_range(2..5)).collect();
    let dtype = float_type(rng);
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let scan = vec![
        ("exclusive", AttrValue::Bool(rng.random_bool(0.5))),
        ("reverse", AttrValue::Bool(rng.random_bool(0.5))),
    ];
    let axis = Tensor::new(&[], &[rng.random_range(0..rank) as i32]);
    let k = Tensor::new(&[], &[rng.random_range(0..=x[rank - 1]) as i32]);
    let index_type = [DType::I32, DType::I64][rng.random_range(0..2)];
    let f32s = |v: f32| Tensor::new(&[], &[v]);
    let (start, delta) = (
        rng.random_range(-5..5) as f32,
        [0.5f32, 2.0, -1.0][rng.random_range(0..3)],
    );
    // Mirror paddings below each dim (REFLECT needs less than the dim).
    let pads: Vec<i32> = x
        .iter()
        .flat_map(|&d| [rng.random_range(0..d as i32), rng.random_range(0..d as i32)])
        .collect();
    let padded: Vec<usize> = x
        .iter()
        .enumerate()
        .map(|(i, &d)| d + (pads[2 * i] + pads[2 * i + 1]) as usize)
        .collect();
    let mode = vec![(
        "mode",
        string(["REFLECT", "SYMMETRIC"][rng.random_range(0..2)]),
    )];
    vec![
        case("Cumsum", vec![zeros(dtype, &x), axis.clone()], scan.clone()),
        case("Cumprod", vec![zeros(dtype, &x), axis], scan),
        case(
            "TopKV2",
            vec![zeros(dtype, &x), k],
            vec![
                ("sorted", AttrValue::Bool(true)),
                ("index_type", AttrValue::Type(index_type)),
            ],
        ),
        Case {
            op: "Range",
            dtype: DType::F32,
            inputs: vec![f32s(start), f32s(start + delta * 3.5), f32s(delta)],
            attrs: vec![],
            may_reject: false,
        },
        case(
            "MirrorPad",
            vec![zeros(dtype, &x), Tensor::new(&[rank, 2], &pads)],
            mode.clone(),
        ),
        case(
            "MirrorPadGrad",
            vec![zeros(dtype, &padded), Tensor::new(&[rank, 2], &pads)],
            mode,
        ),
    ]
}

/// Einsum, the in-place updates and the new buffers.
fn einsum_inplace_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = float_type(rng);
    let (b, m, k, n) = (
        rng.random_range(1..4),
        rng.random_range(1..4),
        rng.random_range(1..4),
        rng.random_range(1..4),
    );
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let rows = rng.random_range(1..4);
    let x = [rows + 1, m];
    let at = Tensor::new(&[rows], &(0..rows as i32).collect::<Vec<_>>());
    let mut cases = vec![
        case(
            "Einsum",
            vec![zeros(dtype, &[b, m, k]), zeros(dtype, &[b, k, n])],
            vec![("equation", string("bij,bjk->bik"))],
        ),
        case(
            "Einsum",
            vec![zeros(dtype, &[m, m])],
            vec![("equation", string("ii->i"))],
        ),
        case(
            "_ParallelConcatStart",
            vec![],
            vec![
                ("dtype", AttrValue::Type(dtype)),
                (
                    "shape",
                    AttrValue::Shape(Some(vec![x[0] as i64, x[1] as i64])),
                ),
            ],
        ),
        case(
            "_ParallelConcatUpdate",
            vec![zeros(dtype, &x), zeros(dtype, &[1, m])],
            vec![("loc", AttrValue::Int(rows as i64))],
        ),
        case("DeepCopy", vec![zeros(dtype, &x)], vec![]),
        case(
            "Empty",
            vec![sizes(&x)],
            vec![
                ("dtype", AttrValue::Type(dtype)),
                ("init", AttrValue::Bool(rng.random_bool(0.5))),
            ],
        ),
    ];
    for op in ["InplaceUpdate", "InplaceAdd", "InplaceSub"] {
        cases.push(case(
            op,
            vec![zeros(dtype, &x), at.clone(), zeros(dtype, &[rows, m])],
            vec![],
        ));
    }
    cases
}

/// The resizes and their gradients, ScaleAndTranslate and its gradient.
fn image_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = float_type(rng);
    let mut dim = || rng.random_range(1..5);
    let (n, h, w, c, oh, ow) = (dim(), dim(), dim(), dim(), dim(), dim());
    let x = [n, h, w, c];
    let y = [n, oh, ow, c];
    let size = Tensor::new(&[2], &[oh as i32, ow as i32]);
    let half = rng.random_bool(0.5);
    let resize = vec![
        ("align_corners", AttrValue::Bool(false)),
        ("half_pixel_centers", AttrValue::Bool(half)),
    ];
    let case = |op, dtype, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let f32s = |v: [f32; 2]| Tensor::new(&[2], &v);
    let sample = vec![
        ("kernel_type", string("lanczos3")),
        ("antialias", AttrValue::Bool(rng.random_bool(0.5))),
    ];
    let (scale, shift) = (
        f32s([oh as f32 / h as f32, ow as f32 / w as f32]),
        f32s([0.0, 0.5]),
    );
    let mut cases = Vec::new();
    for op in ["ResizeBilinear", "ResizeBicubic", "ResizeNearestNeighbor"] {
        cases.push(case(
            op,
            dtype,
            vec![zeros(dtype, &x), size.clone()],
            resize.clone(),
        ));
    }
    for op in ["ResizeBilinearGrad", "ResizeBicubicGrad"] {
        // The type of the original image, as the op registers it.
        let t = registered(op, dtype);
        cases.push(case(
            op,
            t,
            vec![zeros(DType::F32, &y), zeros(t, &x)],
            resize.clone(),
        ));
    }
    cases.push(case(
        "ResizeNearestNeighborGrad",
        dtype,
        vec![zeros(dtype, &y), Tensor::new(&[2], &[h as i32, w as i32])],
        resize,
    ));
    cases.push(case(
        "ResizeArea",
        dtype,
        vec![zeros(dtype, &x), size.clone()],
        vec![("align_corners", AttrValue::Bool(false))],
    ));
    cases.push(case(
        "ScaleAndTranslate",
        dtype,
        vec![zeros(dtype, &x), size, scale.clone(), shift.clone()],
        sample.clone(),
    ));
    cases.push(case(
        "ScaleAndTranslateGrad",
        DType::F32,
        vec![zeros(DType::F32, &y), zeros(DType::F32, &x), scale, shift],
        sample,
    ));
    cases
}
