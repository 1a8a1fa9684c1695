//! Every spec + kernels op: its shape rule, run alone, names exactly the
//! outputs its host kernel then allocates (random shapes and attributes,
//! seeded: `TFA_TEST_SEED` replays a run); and spec errors come before any
//! allocation.

use crate::testing::{plan, run, Tensor};
use crate::{table, AttrKind, AttrValue, Family, OutputPlan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use tfa_core::DType;

type Attrs = Vec<(&'static str, AttrValue)>;

/// One node: op, dtype, inputs, attributes; `may_reject`: the op's spec
/// may refuse these inputs (then its kernel must fail too).
struct Case {
    op: &'static str,
    dtype: DType,
    inputs: Vec<Tensor>,
    attrs: Attrs,
    may_reject: bool,
}

fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
    Tensor::zeros(dtype, shape)
}

fn sizes(shape: &[usize]) -> Tensor {
    let v: Vec<i32> = shape.iter().map(|&d| d as i32).collect();
    Tensor::new(&[v.len()], &v)
}

fn ints(v: &[i64]) -> AttrValue {
    AttrValue::IntList(v.to_vec())
}

fn string(s: &str) -> AttrValue {
    AttrValue::String(s.into())
}

fn float_type(rng: &mut StdRng) -> DType {
    [DType::F32, DType::F64, DType::F16, DType::BF16][rng.random_range(0..4)]
}

/// `[n, h, w, c]` in `format`.
fn in_format(format: &str, [n, h, w, c]: [usize; 4]) -> Vec<usize> {
    if format == "NCHW" {
        vec![n, c, h, w]
    } else {
        vec![n, h, w, c]
    }
}

/// `[1, a, b, 1]` (NHWC) or `[1, 1, a, b]` (NCHW): a window attribute.
fn window(format: &str, a: i64, b: i64) -> Vec<i64> {
    if format == "NCHW" {
        vec![1, 1, a, b]
    } else {
        vec![1, a, b, 1]
    }
}

/// Random convolution attributes and input shape; the filter's spatial size.
fn conv_setup(rng: &mut StdRng, depthwise: bool) -> (Attrs, Vec<usize>, usize, usize) {
    // The host kernels take NCHW for Conv2D only (depthwise: NHWC).
    let format = if !depthwise && rng.random_bool(0.3) {
        "NCHW"
    } else {
        "NHWC"
    };
    let (kh, kw) = (rng.random_range(1..4), rng.random_range(1..4));
    let stride = rng.random_range(1..3);
    let dilation = if stride == 1 {
        rng.random_range(1..3)
    } else {
        1
    };
    let padding = ["SAME", "VALID", "EXPLICIT"][rng.random_range(0..3)];
    let explicit: Vec<i64> = if padding == "EXPLICIT" {
        let p: Vec<i64> = (0..4).map(|_| rng.random_range(0..3)).collect();
        if format == "NCHW" {
            vec![0, 0, 0, 0, p[0], p[1], p[2], p[3]]
        } else {
            vec![0, 0, p[0], p[1], p[2], p[3], 0, 0]
        }
    } else {
        vec![]
    };
    let span = |k: usize| (k - 1) * dilation as usize + 1;
    let h = span(kh) + rng.random_range(0..6);
    let w = span(kw) + rng.random_range(0..6);
    let x = in_format(
        format,
        [rng.random_range(1..3), h, w, rng.random_range(1..4)],
    );
    let attrs = vec![
        ("strides", ints(&window(format, stride, stride))),
        ("dilations", ints(&window(format, dilation, dilation))),
        ("padding", string(padding)),
        ("explicit_paddings", ints(&explicit)),
        ("data_format", string(format)),
    ];
    (attrs, x, kh, kw)
}

fn channels(x: &[usize], attrs: &Attrs) -> usize {
    let nchw = attrs
        .iter()
        .any(|(n, v)| *n == "data_format" && matches!(v, AttrValue::String(s) if s == "NCHW"));
    if nchw {
        x[1]
    } else {
        x[3]
    }
}

/// A convolution and its two gradients, the gradients' `out_backprop`
/// shaped by the forward's shape rule.
fn conv_cases(rng: &mut StdRng, depthwise: bool) -> Vec<Case> {
    let (attrs, x, kh, kw) = conv_setup(rng, depthwise);
    let dtype = float_type(rng);
    let cin = channels(&x, &attrs);
    let f = vec![kh, kw, cin, rng.random_range(1..4)];
    let (op, input_grad, filter_grad) = if depthwise {
        (
            "DepthwiseConv2dNative",
            "DepthwiseConv2dNativeBackpropInput",
            "DepthwiseConv2dNativeBackpropFilter",
        )
    } else {
        ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
    };
    let forward = vec![zeros(dtype, &x), zeros(dtype, &f)];
    let y = plan(op, dtype, forward.clone(), &attrs).expect("a valid forward")[0]
        .shape
        .clone();
    vec![
        Case {
            op,
            dtype,
            inputs: forward,
            attrs: attrs.clone(),
            may_reject: false,
        },
        Case {
            op: input_grad,
            dtype,
            inputs: vec![sizes(&x), zeros(dtype, &f), zeros(dtype, &y)],
            attrs: attrs.clone(),
            may_reject: false,
        },
        Case {
            op: filter_grad,
            dtype,
            inputs: vec![zeros(dtype, &x), sizes(&f), zeros(dtype, &y)],
            attrs,
            may_reject: false,
        },
    ]
}

fn matmul_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = float_type(rng);
    let mut dim = || rng.random_range(1..7);
    let (m, k, n, b) = (dim(), dim(), dim(), dim());
    let (ta, tb) = (rng.random_bool(0.5), rng.random_bool(0.5));
    let a = if ta { [k, m] } else { [m, k] };
    let bm = if tb { [n, k] } else { [k, n] };
    // Batch dims broadcast: [b, 1] against [b] (or none).
    let mut xs = vec![b, 1];
    xs.extend(a);
    let mut ys = vec![if rng.random_bool(0.5) { b } else { 1 }];
    ys.extend(bm);
    vec![
        Case {
            op: "MatMul",
            dtype,
            inputs: vec![zeros(dtype, &a), zeros(dtype, &bm)],
            attrs: vec![
                ("transpose_a", AttrValue::Bool(ta)),
                ("transpose_b", AttrValue::Bool(tb)),
            ],
            may_reject: false,
        },
        Case {
            op: "BatchMatMulV2",
            dtype,
            inputs: vec![zeros(dtype, &xs), zeros(dtype, &ys)],
            attrs: vec![
                ("adj_x", AttrValue::Bool(ta)),
                ("adj_y", AttrValue::Bool(tb)),
            ],
            may_reject: false,
        },
    ]
}

/// MaxPool, AvgPool and their gradients (forward shapes from the rule).
fn pool_cases(rng: &mut StdRng) -> Vec<Case> {
    let format = if rng.random_bool(0.3) { "NCHW" } else { "NHWC" };
    let (kh, kw) = (rng.random_range(1..4), rng.random_range(1..4));
    let (sh, sw) = (rng.random_range(1..3), rng.random_range(1..3));
    let padding = if rng.random_bool(0.5) {
        "SAME"
    } else {
        "VALID"
    };
    let x = in_format(
        format,
        [
            rng.random_range(1..3),
            kh as usize + rng.random_range(0..5),
            kw as usize + rng.random_range(0..5),
            rng.random_range(1..4),
        ],
    );
    let dtype = float_type(rng);
    let attrs = vec![
        ("ksize", ints(&window(format, kh, kw))),
        ("strides", ints(&window(format, sh, sw))),
        ("padding", string(padding)),
        ("data_format", string(format)),
    ];
    let mut max_attrs = attrs.clone();
    max_attrs.push(("explicit_paddings", ints(&[])));
    let y = plan("AvgPool", dtype, vec![zeros(dtype, &x)], &attrs).expect("a valid pool")[0]
        .shape
        .clone();
    let mut cases = vec![
        Case {
            op: "MaxPool",
            dtype,
            inputs: vec![zeros(dtype, &x)],
            attrs: max_attrs.clone(),
            may_reject: false,
        },
        Case {
            op: "AvgPool",
            dtype,
            inputs: vec![zeros(dtype, &x)],
            attrs: attrs.clone(),
            may_reject: false,
        },
        Case {
            op: "MaxPoolGrad",
            dtype,
            inputs: vec![zeros(dtype, &x), zeros(dtype, &y), zeros(dtype, &y)],
            attrs: max_attrs,
            may_reject: false,
        },
        Case {
            op: "AvgPoolGrad",
            dtype,
            inputs: vec![sizes(&x), zeros(dtype, &y)],
            attrs,
            may_reject: false,
        },
    ];
    if format == "NHWC" {
        let argmax_attrs = vec![
            ("ksize", ints(&window(format, kh, kw))),
            ("strides", ints(&window(format, sh, sw))),
            ("padding", string(padding)),
            // Index 0 is then in range for every image.
            ("include_batch_in_index", AttrValue::Bool(false)),
            ("Targmax", AttrValue::Type(DType::I64)),
        ];
        cases.push(Case {
            op: "MaxPoolWithArgmax",
            dtype,
            inputs: vec![zeros(dtype, &x)],
            attrs: argmax_attrs.clone(),
            may_reject: false,
        });
        cases.push(Case {
            op: "MaxPoolGradWithArgmax",
            dtype,
            inputs: vec![zeros(dtype, &x), zeros(dtype, &y), zeros(DType::I64, &y)],
            attrs: argmax_attrs,
            may_reject: false,
        });
    }
    cases
}

/// Every elementwise spec op on two inputs of one shape (unary ops read
/// only the first), then on two that broadcast (where its spec accepts
/// them), in a float type where it takes one (bool without a type
/// attribute); attributes at plain values. Ops with other arguments
/// (`special_inputs`) get those.
fn elementwise_cases(rng: &mut StdRng) -> Vec<Case> {
    let (a, b, c) = (
        rng.random_range(1..5),
        rng.random_range(1..5),
        rng.random_range(1..5),
    );
    let mut cases = Vec::new();
    for d in table().iter().filter(|d| d.family == Family::Elementwise) {
        let types = d
            .constraints
            .first()
            .map_or(&[DType::Bool][..], |t| t.types);
        let floats: Vec<DType> = types.iter().copied().filter(|t| t.is_float()).collect();
        let dtype = if floats.is_empty() {
            types[rng.random_range(0..types.len())]
        } else {
            floats[rng.random_range(0..floats.len())]
        };
        let attrs: Attrs = d
            .attrs
            .iter()
            .map(|at| {
                let v = match (at.name, at.kind) {
                    ("data_format", _) => string(["NHWC", "NCHW"][rng.random_range(0..2)]),
                    (_, AttrKind::Bool) => AttrValue::Bool(rng.random_bool(0.5)),
                    (_, AttrKind::Float) => AttrValue::Float(0.2),
                    (_, other) => panic!("{}: no test value for a {other:?} attribute", d.name),
                };
                (at.name, v)
            })
            .collect();
        let x = vec![a, b, c];
        let mut case = |inputs, may_reject| {
            cases.push(Case {
                op: d.name,
                dtype,
                inputs,
                attrs: attrs.clone(),
                may_reject,
            })
        };
        if let Some(inputs) = special_inputs(d.name, dtype, &x) {
            case(inputs, false);
            continue;
        }
        case(vec![zeros(dtype, &x), zeros(dtype, &x)], false);
        case(vec![zeros(dtype, &[a, 1, c]), zeros(dtype, &[b, 1])], true);
    }
    cases
}

/// The inputs of elementwise ops that do not take two same-typed operands.
fn special_inputs(op: &str, dtype: DType, x: &[usize]) -> Option<Vec<Tensor>> {
    let scalar = || zeros(dtype, &[]);
    Some(match op {
        "Select" => vec![
            zeros(DType::Bool, &x[..1]),
            zeros(dtype, x),
            zeros(dtype, x),
        ],
        "SelectV2" => vec![zeros(DType::Bool, &[x[2]]), zeros(dtype, x), scalar()],
        "ClipByValue" => vec![zeros(dtype, x), scalar(), zeros(dtype, x)],
        // Channels last (and, for NCHW, dim 1: x[1] == x[2] here).
        "BiasAdd" | "BiasAddV1" => {
            let x = [x[0], x[2], x[2]];
            vec![zeros(dtype, &x), zeros(dtype, &x[2..])]
        }
        "Fill" => vec![sizes(x), scalar()],
        // Real FFTs of length 2: at least 2 values, or 2 complex bins.
        "RFFT" => vec![
            zeros(dtype, &[x[0], x[1], x[2] + 1]),
            Tensor::new(&[1], &[2i32]),
        ],
        "IRFFT" => vec![
            zeros(DType::C64, &[x[0], x[1], x[2] + 1]),
            Tensor::new(&[1], &[2i32]),
        ],
        _ => return None,
    })
}

/// The reductions over random axes, softmax, BiasAddGrad, ArgMax/ArgMin.
fn reduce_cases(rng: &mut StdRng) -> Vec<Case> {
    let rank: usize = rng.random_range(1..4);
    let x: Vec<usize> = (0..rank).map(|_| rng.random_range(1..5)).collect();
    let mut axes = Vec::new();
    for a in 0..rank as i32 {
        if rng.random_bool(0.5) {
            // Negative axes count from the end.
            axes.push(if rng.random_bool(0.3) {
                a - rank as i32
            } else {
                a
            });
        }
    }
    let keep = vec![("keep_dims", AttrValue::Bool(rng.random_bool(0.5)))];
    let dtype = float_type(rng);
    let axis = Tensor::new(&[], &[rng.random_range(0..rank) as i32]);
    let mut cases: Vec<Case> = ["Sum", "Mean", "Max", "Min", "Prod", "All", "Any"]
        .into_iter()
        .map(|op| {
            let t = if matches!(op, "All" | "Any") {
                DType::Bool
            } else {
                dtype
            };
            Case {
                op,
                dtype: t,
                inputs: vec![zeros(t, &x), Tensor::new(&[axes.len()], &axes)],
                attrs: keep.clone(),
                may_reject: false,
            }
        })
        .collect();
    for op in ["Softmax", "LogSoftmax"] {
        cases.push(Case {
            op,
            dtype,
            inputs: vec![zeros(dtype, &x)],
            attrs: vec![],
            may_reject: false,
        });
    }
    for op in ["ArgMax", "ArgMin"] {
        let out = [DType::I32, DType::I64][rng.random_range(0..2)];
        cases.push(Case {
            op,
            dtype,
            inputs: vec![zeros(dtype, &x), axis.clone()],
            attrs: vec![("output_type", AttrValue::Type(out))],
            may_reject: false,
        });
    }
    let mut g = x.clone();
    g.push(rng.random_range(1..4));
    let format = if rng.random_bool(0.5) { "NCHW" } else { "NHWC" };
    cases.push(Case {
        op: "BiasAddGrad",
        dtype,
        inputs: vec![zeros(dtype, &g)],
        attrs: vec![("data_format", string(format))],
        may_reject: false,
    });
    cases
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

/// `_TfaFused` without a product, after MatMul (a program that keeps the
/// product's shape and one that broadcasts it wider) and after Conv2D.
fn fused_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = [DType::F32, DType::F16, DType::BF16][rng.random_range(0..3)];
    let (m, k, n) = (
        rng.random_range(1..6),
        rng.random_range(1..6),
        rng.random_range(1..6),
    );
    let fused = |product: &str, program: &str, mut attrs: Attrs, inputs| {
        attrs.push(("product", string(product)));
        attrs.push(("program", string(program)));
        Case {
            op: "_TfaFused",
            dtype,
            inputs,
            attrs,
            may_reject: false,
        }
    };
    let matmul = || {
        vec![
            ("transpose_a", AttrValue::Bool(false)),
            ("transpose_b", AttrValue::Bool(false)),
        ]
    };
    let mut cases = vec![
        fused(
            "",
            "AddV2(i0,i1);Tanh(r0)",
            vec![],
            vec![zeros(dtype, &[m, n]), zeros(dtype, &[n])],
        ),
        fused(
            "MatMul",
            "BiasAdd(h,i0);Relu(r0)",
            matmul(),
            vec![
                zeros(dtype, &[m, k]),
                zeros(dtype, &[k, n]),
                zeros(dtype, &[n]),
            ],
        ),
        fused(
            "MatMul",
            "AddV2(h,i0);Sigmoid(r0)",
            matmul(),
            vec![
                zeros(dtype, &[m, k]),
                zeros(dtype, &[k, n]),
                zeros(dtype, &[2, m, n]),
            ],
        ),
    ];
    // NHWC (the depthwise setup's format), as the fusion pass writes it.
    let (attrs, x, kh, kw) = conv_setup(rng, true);
    let f = [kh, kw, x[3], rng.random_range(1..4)];
    cases.push(fused(
        "Conv2D",
        "Mul(h,i0);Relu6(r0)",
        attrs,
        vec![zeros(dtype, &x), zeros(dtype, &f), zeros(dtype, &[f[3]])],
    ));
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

/// Conv3D and its gradients, the 3-D pools and theirs (NDHWC).
fn volume_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = [DType::F32, DType::F16, DType::BF16][rng.random_range(0..3)];
    let k: Vec<usize> = (0..3).map(|_| rng.random_range(1..3)).collect();
    let st: Vec<i64> = (0..3).map(|_| rng.random_range(1..3)).collect();
    let mut x = vec![rng.random_range(1..3)];
    x.extend(k.iter().map(|&k| k + rng.random_range(0..3)));
    x.push(rng.random_range(1..3));
    let padding = string(if rng.random_bool(0.5) {
        "SAME"
    } else {
        "VALID"
    });
    let five = |v: &[i64]| ints(&[1, v[0], v[1], v[2], 1]);
    let conv_attrs = vec![
        ("strides", five(&st)),
        ("dilations", ints(&[1, 1, 1, 1, 1])),
        ("padding", padding.clone()),
        ("data_format", string("NDHWC")),
    ];
    let k64: Vec<i64> = k.iter().map(|&v| v as i64).collect();
    let pool_attrs = vec![
        ("ksize", five(&k64)),
        ("strides", five(&st)),
        ("padding", padding),
        ("data_format", string("NDHWC")),
    ];
    let f = vec![k[0], k[1], k[2], x[4], rng.random_range(1..3)];
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let forward = vec![zeros(dtype, &x), zeros(dtype, &f)];
    let y = plan("Conv3D", dtype, forward.clone(), &conv_attrs).expect("a valid Conv3D")[0]
        .shape
        .clone();
    let pooled = plan("AvgPool3D", dtype, vec![zeros(dtype, &x)], &pool_attrs)
        .expect("a valid pool")[0]
        .shape
        .clone();
    let mut max_grad_attrs = pool_attrs.clone();
    max_grad_attrs.push(("TInput", AttrValue::Type(dtype)));
    vec![
        case("Conv3D", forward, conv_attrs.clone()),
        case(
            "Conv3DBackpropInputV2",
            vec![sizes(&x), zeros(dtype, &f), zeros(dtype, &y)],
            conv_attrs.clone(),
        ),
        case(
            "Conv3DBackpropFilterV2",
            vec![zeros(dtype, &x), sizes(&f), zeros(dtype, &y)],
            conv_attrs,
        ),
        case("MaxPool3D", vec![zeros(dtype, &x)], pool_attrs.clone()),
        case("AvgPool3D", vec![zeros(dtype, &x)], pool_attrs.clone()),
        case(
            "MaxPool3DGrad",
            vec![
                zeros(dtype, &x),
                zeros(dtype, &pooled),
                zeros(dtype, &pooled),
            ],
            max_grad_attrs,
        ),
        case(
            "AvgPool3DGrad",
            vec![sizes(&x), zeros(dtype, &pooled)],
            pool_attrs,
        ),
    ]
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

/// ReverseV2, MatrixBandPart, SpaceToBatchND and BatchToSpaceND.
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

/// The unsorted segment reductions, DenseBincount, the softmax losses.
fn segment_loss_cases(rng: &mut StdRng) -> Vec<Case> {
    let dtype = [DType::F32, DType::F64][rng.random_range(0..2)];
    let (n, c) = (rng.random_range(1..5), rng.random_range(1..5));
    let case = |op, inputs, attrs| Case {
        op,
        dtype,
        inputs,
        attrs,
        may_reject: false,
    };
    let ids = Tensor::new(&[n], &vec![0i32; n]);
    let segments = Tensor::new(&[], &[rng.random_range(1..4)]);
    let mut cases: Vec<Case> = [
        "UnsortedSegmentSum",
        "UnsortedSegmentProd",
        "UnsortedSegmentMax",
        "UnsortedSegmentMin",
    ]
    .into_iter()
    .map(|op| {
        case(
            op,
            vec![zeros(dtype, &[n, c]), ids.clone(), segments.clone()],
            vec![],
        )
    })
    .collect();
    let rows: Vec<usize> = if rng.random_bool(0.5) {
        vec![n, c]
    } else {
        vec![c]
    };
    let weights: Vec<usize> = if rng.random_bool(0.5) {
        rows.clone()
    } else {
        vec![0]
    };
    cases.push(case(
        "DenseBincount",
        vec![
            Tensor::new(&rows, &vec![0i32; rows.iter().product()]),
            Tensor::new(&[], &[rng.random_range(0..4)]),
            zeros(dtype, &weights),
        ],
        vec![("binary_output", AttrValue::Bool(rng.random_bool(0.5)))],
    ));
    let labels: Vec<usize> = if rng.random_bool(0.5) {
        vec![n, c]
    } else {
        vec![c]
    };
    cases.push(case(
        "SoftmaxCrossEntropyWithLogits",
        vec![zeros(dtype, &[n, c]), zeros(dtype, &labels)],
        vec![],
    ));
    cases.push(case(
        "SparseSoftmaxCrossEntropyWithLogits",
        vec![zeros(dtype, &[n, c]), ids],
        vec![],
    ));
    cases
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

/// Every stateless random op (V1 from a seed, V2 from key, counter and
/// algorithm), some with an empty shape, and the key/algorithm getters.
fn random_cases(rng: &mut StdRng) -> Vec<Case> {
    let rank: usize = rng.random_range(0..3);
    let shape: Vec<usize> = (0..rank).map(|_| rng.random_range(0..4)).collect();
    let seed = Tensor::new(&[2], &[rng.random_range(0..100i64), 7]);
    let key = Tensor::new(&[1], &[rng.random_range(0..100u64)]);
    let counter = Tensor::new(&[2], &[0u64, 1]);
    let alg = Tensor::new(&[], &[[1i32, 3][rng.random_range(0..2)]]);
    let mut cases = Vec::new();
    for d in table().iter().filter(|d| d.family == Family::Random) {
        let dtype = d.constraints.first().map_or(DType::I32, |c| c.types[0]);
        let mut inputs = match d.name {
            "StatelessRandomGetKeyCounter" => vec![seed.clone()],
            "StatelessRandomGetAlg" => vec![],
            n if n.ends_with("V2") => {
                vec![sizes(&shape), key.clone(), counter.clone(), alg.clone()]
            }
            _ => vec![sizes(&shape), seed.clone()],
        };
        if d.name.contains("UniformInt") {
            // [0, 10) in the output type.
            inputs.extend(match dtype {
                DType::I64 => [Tensor::new(&[], &[0i64]), Tensor::new(&[], &[10i64])],
                _ => [Tensor::new(&[], &[0i32]), Tensor::new(&[], &[10i32])],
            });
        }
        cases.push(Case {
            op: d.name,
            dtype,
            inputs,
            attrs: vec![("dtype", AttrValue::Type(dtype))],
            may_reject: false,
        });
    }
    cases
}

/// `want` if `op` registers it for its first type attribute, else the
/// first type it does.
fn registered(op: &str, want: DType) -> DType {
    let d = crate::find(op).expect("in the table").1;
    let types = d.constraints[0].types;
    if types.contains(&want) {
        want
    } else {
        types[0]
    }
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

#[test]
fn shape_rules_name_what_the_host_kernels_allocate() {
    let mut rng = StdRng::seed_from_u64(tfa_core::test_seed());
    let mut covered = HashSet::new();
    for _ in 0..40 {
        let mut cases = conv_cases(&mut rng, false);
        cases.extend(conv_cases(&mut rng, true));
        cases.extend(matmul_cases(&mut rng));
        cases.extend(pool_cases(&mut rng));
        cases.extend(elementwise_cases(&mut rng));
        cases.extend(reduce_cases(&mut rng));
        cases.extend(movement_cases(&mut rng));
        cases.extend(fused_cases(&mut rng));
        cases.extend(slicing_cases(&mut rng));
        cases.extend(volume_cases(&mut rng));
        cases.extend(indexing_cases(&mut rng));
        cases.extend(rearrange_cases(&mut rng));
        cases.extend(sequence_cases(&mut rng));
        cases.extend(segment_loss_cases(&mut rng));
        cases.extend(einsum_inplace_cases(&mut rng));
        cases.extend(random_cases(&mut rng));
        cases.extend(image_cases(&mut rng));
        for c in cases {
            let what = format!("{} {:?} {:?}", c.op, c.dtype, c.attrs);
            let planned = match plan(c.op, c.dtype, c.inputs.clone(), &c.attrs) {
                Ok(p) => p,
                // Shapes this op's spec rejects (same-shape gradients on
                // broadcasting inputs); the others must plan.
                Err(e) if c.may_reject => {
                    let r = run(c.op, c.dtype, c.inputs, &c.attrs);
                    assert!(r.is_err(), "{what}: planned {e}, the kernel ran");
                    continue;
                }
                Err(e) => panic!("{what}: {e}"),
            };
            let ctx =
                run(c.op, c.dtype, c.inputs, &c.attrs).unwrap_or_else(|e| panic!("{what}: {e}"));
            let allocated: Vec<OutputPlan> = (0..ctx.num_outputs())
                .map(|i| {
                    let t = ctx.output(i);
                    OutputPlan::new(t.dtype, t.shape)
                })
                .collect();
            assert_eq!(planned, allocated, "{what}");
            covered.insert(c.op);
        }
    }
    // A new op gets cases here.
    for d in table() {
        assert!(covered.contains(d.name), "{}: no shape-rule case", d.name);
    }
}

fn plan_error(op: &str, inputs: Vec<Tensor>, attrs: &Attrs) -> String {
    match plan(op, DType::F32, inputs, attrs) {
        Ok(outs) => panic!("{op}: expected an error, planned {outs:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn specs_reject_before_anything_is_allocated() {
    let f32s = |shape: &[usize]| zeros(DType::F32, shape);
    let conv = vec![
        ("strides", ints(&[1, 1, 1, 1])),
        ("dilations", ints(&[1, 1, 1, 1])),
        ("padding", string("VALID")),
        ("explicit_paddings", ints(&[])),
        ("data_format", string("NHWC")),
    ];
    let e = plan_error(
        "Conv2D",
        vec![f32s(&[1, 5, 5, 3]), f32s(&[3, 3, 2, 4])],
        &conv,
    );
    assert!(e.contains("depth"), "{e}");
    let e = plan_error(
        "Conv2DBackpropInput",
        vec![
            sizes(&[1, 5, 5, 3]),
            f32s(&[3, 3, 3, 4]),
            f32s(&[1, 4, 4, 4]),
        ],
        &conv,
    );
    assert!(
        e.contains("Size of out_backprop doesn't match computed"),
        "{e}"
    );
    let mm = vec![
        ("transpose_a", AttrValue::Bool(false)),
        ("transpose_b", AttrValue::Bool(false)),
    ];
    let e = plan_error("MatMul", vec![f32s(&[2, 3]), f32s(&[4, 5])], &mm);
    assert!(e.contains("Matrix size-incompatible"), "{e}");
    let pool = vec![
        ("ksize", ints(&[2, 1, 1, 1])),
        ("strides", ints(&[1, 1, 1, 1])),
        ("padding", string("VALID")),
        ("data_format", string("NHWC")),
    ];
    let e = plan_error("AvgPool", vec![f32s(&[2, 3, 3, 1])], &pool);
    assert_eq!(e, "Pooling is not yet supported on the batch dimension.");
}
