use super::*;
use tfa_proto::NodeDef;

const NPU: &str = "/job:localhost/replica:0/task:0/device:NPU:0";

fn n(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, attr_value::Value)]) -> NodeDef {
    node(
        name,
        op,
        inputs.iter().map(|s| s.to_string()).collect(),
        NPU,
        attrs,
    )
}
fn f32t() -> attr_value::Value {
    attr_value::Value::Type(DataType::DtFloat as i32)
}
fn enter(name: &str, input: &str) -> NodeDef {
    n(
        name,
        "Enter",
        &[input, "^loop_control"],
        &[
            ("frame_name", attr_value::Value::S(b"loop".to_vec())),
            ("is_constant", attr_value::Value::B(false)),
            ("parallel_iterations", attr_value::Value::I(10)),
        ],
    )
}

/// A lowered loop summing `a^T @ b` into a loop variable, as a backward
/// loop sums a weight's gradient.
fn accumulating_loop() -> GraphDef {
    GraphDef {
        node: vec![
            n("init", "_Arg", &[], &[("T", f32t())]),
            n("start", "_Arg", &[], &[]),
            n("loop_control", "NoOp", &[], &[]),
            enter("enter_t", "start"),
            enter("enter_acc", "init"),
            n("merge_t", "Merge", &["enter_t", "next_t"], &[]),
            n("merge_acc", "Merge", &["enter_acc", "next_acc"], &[]),
            n("cond", "LoopCond", &["merge_t"], &[]),
            n("switch_t", "Switch", &["merge_t", "cond"], &[]),
            n("switch_acc", "Switch", &["merge_acc", "cond"], &[]),
            n("a", "Identity", &["switch_t:1"], &[]),
            n("b", "Identity", &["switch_t:1"], &[]),
            n(
                "product",
                "MatMul",
                &["a", "b"],
                &[
                    ("T", f32t()),
                    ("transpose_a", attr_value::Value::B(true)),
                    ("transpose_b", attr_value::Value::B(false)),
                ],
            ),
            n(
                "sum",
                "AddN",
                &["switch_acc:1", "product"],
                &[("T", f32t()), ("N", attr_value::Value::I(2))],
            ),
            n("next_t", "NextIteration", &["a"], &[]),
            n("next_acc", "NextIteration", &["sum"], &[]),
            n("exit_t", "Exit", &["switch_t"], &[]),
            n("exit_acc", "Exit", &["switch_acc"], &[]),
            n("out", "Identity", &["exit_acc"], &[]),
            n("done", "NoOp", &["^exit_t", "^exit_acc"], &[]),
        ],
        ..Default::default()
    }
}

fn get<'g>(g: &'g GraphDef, name: &str) -> &'g NodeDef {
    g.node
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}
fn sink(g: &mut GraphDef) -> usize {
    sink_gradient_products(g, &HashSet::new(), &HashSet::new())
}

#[test]
fn the_sum_of_step_products_becomes_one_product_after_the_loop() {
    let mut g = accumulating_loop();
    assert!(sink(&mut g) > 0);
    // The loop passes the running sum on; the step's product is gone.
    let sum = get(&g, "sum");
    assert_eq!(
        (sum.op.as_str(), sum.input.clone()),
        ("Identity", vec!["switch_acc:1".to_string()])
    );
    assert!(g.node.iter().all(|n| n.name != "product"));
    // What read the sum's exit reads exit + a^T @ b over all steps.
    let total = get(&g, &get(&g, "out").input[0]);
    assert_eq!(total.op, "AddV2");
    assert_eq!(total.input[0], "exit_acc");
    let product = get(&g, &total.input[1]);
    assert_eq!(product.op, "MatMul");
    assert_eq!(bool_attr(product, "transpose_a"), Some(true));
    // Each operand is collected into a list that is a new loop variable.
    for (input, operand) in product.input.iter().zip(["a", "b"]) {
        let concat = get(&g, input);
        assert_eq!(concat.op, "TensorListConcatV2");
        let exit = get(&g, &concat.input[0]);
        let switch = get(&g, &exit.input[0]);
        assert_eq!((exit.op.as_str(), switch.op.as_str()), ("Exit", "Switch"));
        assert_eq!(switch.input[1], "cond");
        let merge = get(&g, &switch.input[0]);
        let enter = get(&g, &merge.input[0]);
        assert_eq!(string_attr(enter, "frame_name"), Some(&b"loop"[..]));
        assert!(enter.input.contains(&"^loop_control".to_string()));
        let push = get(&g, &get(&g, &merge.input[1]).input[0]);
        assert_eq!(push.op, "TensorListPushBack");
        assert_eq!(
            push.input,
            vec![format!("{}:1", switch.name), operand.to_string()]
        );
    }
    // Control readers of the exit are untouched.
    assert_eq!(get(&g, "done").input, vec!["^exit_t", "^exit_acc"]);
    assert_eq!(sink(&mut g), 0);
}

/// A change to the loop.
type Change = Box<dyn Fn(&mut GraphDef)>;

/// Each change makes the running sum or the step's product needed inside the
/// loop (or the sum not a plain accumulator): the graph stays as it is.
#[test]
fn leaves_sums_the_loop_needs() {
    let read = |name: &'static str| -> Change {
        Box::new(move |g: &mut GraphDef| {
            g.node.push(n("reader", "Relu", &[name], &[("T", f32t())]))
        })
    };
    let cases: Vec<(&str, Change)> = vec![
        ("the loop reads the running sum", read("switch_acc:1")),
        ("the loop reads the new sum", read("sum")),
        ("the loop reads the step's product", read("product")),
        (
            "the product is not a^T @ b",
            Box::new(|g: &mut GraphDef| {
                let p = g.node.iter_mut().find(|n| n.name == "product").unwrap();
                p.attr.insert("transpose_a".into(), frames_attr(false));
            }),
        ),
        (
            "the sum is not fed back",
            Box::new(|g: &mut GraphDef| {
                let next = g.node.iter_mut().find(|n| n.name == "next_acc").unwrap();
                next.input = vec!["switch_acc:1".into()];
                g.node.push(n("keep", "Identity", &["sum"], &[]));
            }),
        ),
        (
            "the sum waits on a control edge",
            Box::new(|g: &mut GraphDef| g.node.push(n("after", "NoOp", &["^sum"], &[]))),
        ),
    ];
    for (why, change) in cases {
        let mut g = accumulating_loop();
        change(&mut g);
        let before = g.clone();
        assert_eq!(sink(&mut g), 0, "{why}");
        assert_eq!(g, before, "{why}");
    }
}

fn frames_attr(b: bool) -> tfa_proto::AttrValue {
    tfa_proto::AttrValue {
        value: Some(attr_value::Value::B(b)),
    }
}
