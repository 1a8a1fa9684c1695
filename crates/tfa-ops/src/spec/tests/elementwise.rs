//! Cases of the elementwise ops (every one, from the table), the
//! reductions, segment reductions, losses and random ops.

use super::*;

/// This file's cases, one random draw each.
pub(super) fn cases(rng: &mut StdRng) -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(elementwise_cases(rng));
    v.extend(reduce_cases(rng));
    v.extend(segment_loss_cases(rng));
    v.extend(random_cases(rng));
    v
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

/// The reductions over random axes, softmax, L2Loss, BiasAddGrad, ArgMax/ArgMin.
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
    for op in ["Softmax", "LogSoftmax", "L2Loss"] {
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
