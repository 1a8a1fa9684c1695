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

mod elementwise;
mod movement;
mod window;

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

#[test]
fn shape_rules_name_what_the_host_kernels_allocate() {
    let mut rng = StdRng::seed_from_u64(tfa_core::test_seed());
    let mut covered = HashSet::new();
    for _ in 0..40 {
        let mut cases = window::cases(&mut rng);
        cases.extend(elementwise::cases(&mut rng));
        cases.extend(movement::cases(&mut rng));
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
