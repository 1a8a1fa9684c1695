//! Every spec + kernels op: its shape rule, run alone, names exactly the
//! outputs its host kernel then allocates (random shapes and attributes,
//! seeded: `TFA_TEST_SEED` replays a run); and spec errors come before any
//! allocation.

use crate::testing::{plan, run, Tensor};
use crate::{table, AttrValue, OutputPlan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use tfa_core::DType;

type Attrs = Vec<(&'static str, AttrValue)>;

/// One node: op, dtype, inputs, attributes.
struct Case {
    op: &'static str,
    dtype: DType,
    inputs: Vec<Tensor>,
    attrs: Attrs,
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
        },
        Case {
            op: input_grad,
            dtype,
            inputs: vec![sizes(&x), zeros(dtype, &f), zeros(dtype, &y)],
            attrs: attrs.clone(),
        },
        Case {
            op: filter_grad,
            dtype,
            inputs: vec![zeros(dtype, &x), sizes(&f), zeros(dtype, &y)],
            attrs,
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
        },
        Case {
            op: "BatchMatMulV2",
            dtype,
            inputs: vec![zeros(dtype, &xs), zeros(dtype, &ys)],
            attrs: vec![
                ("adj_x", AttrValue::Bool(ta)),
                ("adj_y", AttrValue::Bool(tb)),
            ],
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
        },
        Case {
            op: "AvgPool",
            dtype,
            inputs: vec![zeros(dtype, &x)],
            attrs: attrs.clone(),
        },
        Case {
            op: "MaxPoolGrad",
            dtype,
            inputs: vec![zeros(dtype, &x), zeros(dtype, &y), zeros(dtype, &y)],
            attrs: max_attrs,
        },
        Case {
            op: "AvgPoolGrad",
            dtype,
            inputs: vec![sizes(&x), zeros(dtype, &y)],
            attrs,
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
        });
        cases.push(Case {
            op: "MaxPoolGradWithArgmax",
            dtype,
            inputs: vec![zeros(dtype, &x), zeros(dtype, &y), zeros(DType::I64, &y)],
            attrs: argmax_attrs,
        });
    }
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
        for c in cases {
            let what = format!("{} {:?} {:?}", c.op, c.dtype, c.attrs);
            let planned = plan(c.op, c.dtype, c.inputs.clone(), &c.attrs)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
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
    // A new spec op gets cases here.
    for d in table().iter().filter(|d| d.shape_rule.is_some()) {
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
