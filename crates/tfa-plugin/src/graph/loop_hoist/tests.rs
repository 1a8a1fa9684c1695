use super::*;
use tfa_proto::{DataType, TensorProto, TensorShapeProto};

const NPU: &str = "/job:localhost/replica:0/task:0/device:NPU:0";

fn n(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, attr_value::Value)]) -> NodeDef {
    super::super::frames::node(
        name,
        op,
        inputs.iter().map(|s| s.to_string()).collect(),
        NPU,
        attrs,
    )
}
fn ty(t: DataType) -> attr_value::Value {
    attr_value::Value::Type(t as i32)
}
fn shape2() -> attr_value::Value {
    attr_value::Value::Tensor(TensorProto {
        dtype: DataType::DtInt32 as i32,
        tensor_shape: Some(TensorShapeProto {
            dim: vec![tfa_proto::tensor_shape_proto::Dim {
                size: 2,
                ..Default::default()
            }],
            ..Default::default()
        }),
        int_val: vec![32, 64],
        ..Default::default()
    })
}
fn enter(name: &str, input: &str, constant: bool) -> NodeDef {
    n(
        name,
        "Enter",
        &[input, "^loop_control"],
        &[
            ("frame_name", attr_value::Value::S(b"loop".to_vec())),
            ("is_constant", attr_value::Value::B(constant)),
            ("parallel_iterations", attr_value::Value::I(32)),
        ],
    )
}

/// A lowered loop as TensorFlow hands it to the pass: each step reads
/// `x[t]` from a list that is a loop variable and multiplies it by `w`.
fn lowered_loop() -> GraphDef {
    let f = || ty(DataType::DtFloat);
    GraphDef {
        node: vec![
            n("x", "_Arg", &[], &[("T", f())]),
            n("w", "_Arg", &[], &[("T", ty(DataType::DtResource))]),
            n("start", "_Arg", &[], &[("T", ty(DataType::DtInt32))]),
            n("shape", "Const", &[], &[("value", shape2())]),
            n(
                "list",
                "TensorListFromTensor",
                &["x", "shape"],
                &[("element_dtype", f())],
            ),
            n("loop_control", "NoOp", &[], &[]),
            enter("enter_t", "start", false),
            enter("enter_l", "list", false),
            enter("enter_w", "w", true),
            n("merge_t", "Merge", &["enter_t", "next_t"], &[]),
            n("merge_l", "Merge", &["enter_l", "next_l"], &[]),
            n("cond", "LoopCond", &["merge_t"], &[]),
            n("switch_t", "Switch", &["merge_t", "cond"], &[]),
            n("switch_l", "Switch", &["merge_l", "cond"], &[]),
            n("body_control", "Identity", &["switch_t:1"], &[]),
            n("t", "Identity", &["switch_t:1", "^body_control"], &[]),
            n(
                "step_shape",
                "Const",
                &["^body_control"],
                &[("value", shape2())],
            ),
            n(
                "get",
                "TensorListGetItem",
                &["switch_l:1", "t", "step_shape"],
                &[("element_dtype", f())],
            ),
            n(
                "read",
                "ReadVariableOp",
                &["enter_w", "^body_control"],
                &[("dtype", f())],
            ),
            n(
                "mm",
                "MatMul",
                &["get", "read"],
                &[
                    ("T", f()),
                    ("transpose_a", attr_value::Value::B(false)),
                    ("transpose_b", attr_value::Value::B(false)),
                ],
            ),
            n("relu", "Relu", &["mm"], &[("T", f())]),
            n("next_t", "NextIteration", &["t"], &[]),
            n("next_l", "NextIteration", &["switch_l:1"], &[]),
            n("exit_t", "Exit", &["switch_t"], &[]),
            n("exit_l", "Exit", &["switch_l"], &[]),
            n("done", "NoOp", &["^exit_t", "^exit_l"], &[]),
        ],
        ..Default::default()
    }
}

fn get<'g>(g: &'g GraphDef, name: &str) -> &'g NodeDef {
    g.node.iter().find(|n| n.name == name).unwrap()
}
fn hoist(g: &mut GraphDef) -> usize {
    hoist_input_projections(g, &HashSet::new(), &HashSet::new())
}

#[test]
fn hoists_the_step_product_before_the_loop() {
    let mut g = lowered_loop();
    assert!(hoist(&mut g) > 0);
    // The step's MatMul keeps its name and reads row block t of the list.
    let mm = get(&g, "mm");
    assert_eq!(mm.op, "TensorListGetItem");
    assert_eq!(mm.input[1], "t");
    assert_eq!(
        mm.attr.get("_tfa_hoisted").and_then(|a| a.value.clone()),
        Some(attr_value::Value::S(b"MatMul".to_vec()))
    );
    let enter = get(&g, &mm.input[0]);
    assert_eq!(enter.op, "Enter");
    assert_eq!(bool_attr(enter, "is_constant"), Some(true));
    assert_eq!(string_attr(enter, "frame_name"), Some(&b"loop"[..]));
    let list = get(&g, &enter.input[0]);
    assert_eq!(list.op, "TensorListFromTensor");
    let product = get(&g, &list.input[0]);
    assert_eq!(product.op, "BatchMatMulV2");
    assert_eq!(product.input[0], "x");
    assert_eq!(bool_attr(product, "adj_y"), Some(false));
    let read = get(&g, &product.input[1]);
    assert_eq!(read.op, "ReadVariableOp");
    // Ordered after what the loop waits for, and before what follows it.
    assert_eq!(
        read.input,
        vec!["w".to_string(), "^loop_control".to_string()]
    );
    assert!(get(&g, "done").input.contains(&format!("^{}", read.name)));
    // The step's own list read is gone; the in-loop weight read stays.
    assert!(g.node.iter().all(|n| n.name != "get"));
    assert_eq!(get(&g, "read").op, "ReadVariableOp");
    // The element-shape constant inside the loop lives in its frame.
    assert_eq!(get(&g, &mm.input[2]).input, vec!["^step_shape".to_string()]);
    // Nothing left to hoist.
    assert_eq!(hoist(&mut g), 0);
}

#[test]
fn transposed_weights_carry_over() {
    let mut g = lowered_loop();
    let mm = g.node.iter_mut().find(|n| n.name == "mm").unwrap();
    mm.attr
        .insert("transpose_b".into(), attr(attr_value::Value::B(true)));
    assert!(hoist(&mut g) > 0);
    let enter = get(&g, &get(&g, "mm").input[0]);
    let product = get(&g, &get(&g, &enter.input[0]).input[0]);
    assert_eq!(bool_attr(product, "adj_y"), Some(true));
}

/// A change to the loop.
type Change = Box<dyn Fn(&mut GraphDef)>;

/// Each change makes the step's product differ from a row block of one
/// product before the loop (or unprovably so): the graph stays as it is.
#[test]
fn leaves_loops_it_cannot_prove_invariant() {
    let f = || ty(DataType::DtFloat);
    let cases: Vec<(&str, Change)> = vec![
        (
            "the loop writes the variable",
            Box::new(move |g: &mut GraphDef| {
                g.node.push(n(
                    "assign",
                    "AssignAddVariableOp",
                    &["enter_w", "relu"],
                    &[("dtype", f())],
                ))
            }),
        ),
        (
            "the list changes between steps",
            Box::new(|g: &mut GraphDef| {
                let next = g.node.iter_mut().find(|n| n.name == "next_l").unwrap();
                next.input = vec!["set".into()];
                g.node.push(n(
                    "set",
                    "TensorListSetItem",
                    &["switch_l:1", "t", "relu"],
                    &[],
                ));
            }),
        ),
        (
            "the weight is a loop variable that changes",
            Box::new(|g: &mut GraphDef| {
                let e = g.node.iter_mut().find(|n| n.name == "enter_w").unwrap();
                e.attr
                    .insert("is_constant".into(), attr(attr_value::Value::B(false)));
            }),
        ),
        (
            "the step reads x transposed",
            Box::new(|g: &mut GraphDef| {
                let mm = g.node.iter_mut().find(|n| n.name == "mm").unwrap();
                mm.attr
                    .insert("transpose_a".into(), attr(attr_value::Value::B(true)));
            }),
        ),
        (
            "the product is not on an NPU",
            Box::new(|g: &mut GraphDef| {
                let mm = g.node.iter_mut().find(|n| n.name == "mm").unwrap();
                mm.device = "/job:localhost/replica:0/task:0/device:CPU:0".into();
            }),
        ),
        (
            "the list is not made from a tensor",
            Box::new(|g: &mut GraphDef| {
                let l = g.node.iter_mut().find(|n| n.name == "list").unwrap();
                l.op = "TensorListReserve".into();
            }),
        ),
        (
            "the element rank is unknown",
            Box::new(|g: &mut GraphDef| {
                for name in ["shape", "step_shape"] {
                    let c = g.node.iter_mut().find(|n| n.name == name).unwrap();
                    c.op = "Placeholder".into();
                }
            }),
        ),
    ];
    for (why, change) in cases {
        let mut g = lowered_loop();
        change(&mut g);
        let before = g.clone();
        assert_eq!(hoist(&mut g), 0, "{why}");
        assert_eq!(g, before, "{why}");
    }
}

#[test]
fn excluded_nodes_stay() {
    let mut g = lowered_loop();
    let before = g.clone();
    let exclude: HashSet<String> = ["read".to_string()].into();
    assert_eq!(
        hoist_input_projections(&mut g, &HashSet::new(), &exclude),
        0
    );
    assert_eq!(g, before);
}
