//! Cases of the window and product ops: convolutions (2-D, 3-D,
//! depthwise) and their gradients, the pools, MatMul/BatchMatMulV2 and the
//! fused op.

use super::*;

/// This file's cases, one random draw each.
pub(super) fn cases(rng: &mut StdRng) -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(conv_cases(rng, false));
    v.extend(conv_cases(rng, true));
    v.extend(matmul_cases(rng));
    v.extend(pool_cases(rng));
    v.extend(fused_cases(rng));
    v.extend(volume_cases(rng));
    v
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
        // x stored with its first two dims swapped, y as is, the result's
        // last two dims swapped or not.
        Case {
            op: "_TfaTransposedBatchMatMul",
            dtype: DType::F32,
            inputs: vec![
                zeros(DType::F32, &[xs[1], xs[0], xs[2], xs[3]]),
                zeros(DType::F32, &ys),
            ],
            attrs: vec![
                ("adj_x", AttrValue::Bool(ta)),
                ("adj_y", AttrValue::Bool(tb)),
                ("perm_x", AttrValue::IntList(vec![1, 0, 2, 3])),
                ("perm_y", AttrValue::IntList(vec![])),
                ("transpose_out", AttrValue::Bool(rng.random_bool(0.5))),
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
