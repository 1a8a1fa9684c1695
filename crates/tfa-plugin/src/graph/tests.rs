use super::*;
use tfa_proto::op_def::ArgDef;
use tfa_proto::DataType;

const NPU: &str = "/job:localhost/replica:0/task:0/device:NPU:0";
const CPU: &str = "/job:localhost/replica:0/task:0/device:CPU:0";

fn arg(name: &str, type_attr: &str, number_attr: &str, fixed: DataType) -> ArgDef {
    ArgDef {
        name: name.into(),
        r#type: if type_attr.is_empty() {
            fixed as i32
        } else {
            0
        },
        type_attr: type_attr.into(),
        number_attr: number_attr.into(),
        ..Default::default()
    }
}
fn t(name: &str) -> ArgDef {
    arg(name, "T", "", DataType::DtInvalid)
}

/// Hand-written OpDefs with TensorFlow's argument layout.
fn opdefs() -> HashMap<String, OpDef> {
    let mut m = HashMap::new();
    let mut add = |name: &str, i: Vec<ArgDef>, o: Vec<ArgDef>| {
        m.insert(
            name.to_string(),
            OpDef {
                name: name.into(),
                input_arg: i,
                output_arg: o,
                ..Default::default()
            },
        );
    };
    add("_Arg", vec![], vec![t("output")]);
    add("_Retval", vec![t("input")], vec![]);
    add("MatMul", vec![t("a"), t("b")], vec![t("product")]);
    add("BiasAdd", vec![t("value"), t("bias")], vec![t("output")]);
    add("Relu", vec![t("features")], vec![t("activations")]);
    add("Softmax", vec![t("logits")], vec![t("softmax")]);
    add("Identity", vec![t("input")], vec![t("output")]);
    add(
        "Cast",
        vec![arg("x", "SrcT", "", DataType::DtInvalid)],
        vec![arg("y", "DstT", "", DataType::DtInvalid)],
    );
    add(
        "Split",
        vec![arg("split_dim", "", "", DataType::DtInt32), t("value")],
        vec![arg("output", "T", "num_split", DataType::DtInvalid)],
    );
    m
}

fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    device: &str,
    attrs: &[(&str, AttrValue)],
) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        device: device.into(),
        attr: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    }
}
fn ty(d: DType) -> AttrValue {
    type_attr(d)
}
fn f32n(name: &str, op: &str, inputs: &[&str], device: &str) -> NodeDef {
    node(name, op, inputs, device, &[("T", ty(DType::F32))])
}

fn run(g: &mut GraphDef, mode: Mode) -> usize {
    let defs = opdefs();
    rewrite(g, mode, &Lists::default(), &HashSet::new(), &|op| {
        defs.get(op)
    })
    .unwrap()
}
fn get<'g>(g: &'g GraphDef, name: &str) -> &'g NodeDef {
    g.node.iter().find(|n| n.name == name).unwrap()
}
fn dtype_of(n: &NodeDef, attr: &str) -> DType {
    DType::from_tf(attr_type(n, attr).unwrap() as u32).unwrap()
}
/// The Cast feeding input `pos` of `name`: (its input, SrcT, DstT, device).
fn cast_into(g: &GraphDef, name: &str, pos: usize) -> (String, DType, DType, String) {
    let c = get(g, &get(g, name).input[pos]);
    assert_eq!(c.op, "Cast", "input {pos} of {name} is not a Cast");
    assert_eq!(c.attr["Truncate"].value, Some(attr_value::Value::B(false)));
    (
        c.input[0].clone(),
        dtype_of(c, "SrcT"),
        dtype_of(c, "DstT"),
        c.device.clone(),
    )
}

fn dense() -> GraphDef {
    GraphDef {
        node: vec![
            f32n("x", "_Arg", &[], NPU),
            f32n("w", "_Arg", &[], NPU),
            f32n("b", "_Arg", &[], NPU),
            f32n("mm", "MatMul", &["x", "w"], NPU),
            f32n("ba", "BiasAdd", &["mm", "b:0"], NPU),
            f32n("relu", "Relu", &["ba"], NPU),
            f32n("sm", "Softmax", &["relu"], NPU),
            f32n("out", "_Retval", &["sm"], NPU),
            f32n("out2", "_Retval", &["relu"], NPU),
        ],
        ..Default::default()
    }
}

#[test]
fn mixed_dense_chain_casts_every_disagreeing_edge() {
    let mut g = dense();
    let before = g.node.len();
    let changed = run(&mut g, Mode::AllowMixPrecisionBf16);
    for n in ["mm", "ba", "relu"] {
        assert_eq!(dtype_of(get(&g, n), "T"), DType::BF16, "{n}");
    }
    for n in ["x", "w", "b", "sm", "out", "out2"] {
        assert_eq!(dtype_of(get(&g, n), "T"), DType::F32, "{n}");
    }
    let bf = DType::BF16;
    let f = DType::F32;
    assert_eq!(cast_into(&g, "mm", 0), ("x".into(), f, bf, NPU.into()));
    assert_eq!(cast_into(&g, "mm", 1), ("w".into(), f, bf, NPU.into()));
    assert_eq!(cast_into(&g, "ba", 1), ("b:0".into(), f, bf, NPU.into()));
    assert_eq!(cast_into(&g, "sm", 0), ("relu".into(), bf, f, NPU.into()));
    // The Relu -> Softmax and Relu -> _Retval edges share one Cast.
    assert_eq!(get(&g, "out2").input[0], get(&g, "sm").input[0]);
    assert_eq!(get(&g, "ba").input[0], "mm");
    assert_eq!(g.node.len(), before + 4);
    assert_eq!(changed, 3 + 4);
    // A second pass (grappler runs its optimizers twice) changes nothing.
    let again = g.clone();
    assert_eq!(run(&mut g, Mode::AllowMixPrecisionBf16), 0);
    assert_eq!(g, again);
    // The graph survives a protobuf round trip.
    assert_eq!(GraphDef::decode(g.encode_to_vec().as_slice()).unwrap(), g);
}

#[test]
fn other_modes_and_other_devices_leave_the_graph_alone() {
    for m in [Mode::MustKeepOriginDtype, Mode::AllowFp32ToBf16] {
        let mut g = dense();
        assert_eq!(run(&mut g, m), 0);
        assert_eq!(g, dense());
    }
    let mut cpu = dense();
    for n in &mut cpu.node {
        n.device = CPU.into();
    }
    let orig = cpu.clone();
    assert_eq!(run(&mut cpu, Mode::AllowMixPrecisionBf16), 0);
    assert_eq!(cpu, orig);
}

#[test]
fn control_inputs_and_output_indices() {
    // A CPU Split feeds output 1 to an NPU MatMul, which also has a
    // control input; the CPU node is never touched.
    let split = node(
        "split",
        "Split",
        &["dim", "x"],
        CPU,
        &[
            ("T", ty(DType::F32)),
            (
                "num_split",
                AttrValue {
                    value: Some(attr_value::Value::I(2)),
                },
            ),
        ],
    );
    let mut g = GraphDef {
        node: vec![
            node("dim", "Const", &[], CPU, &[]),
            f32n("x", "_Arg", &[], CPU),
            split.clone(),
            f32n("mm", "MatMul", &["split:1", "split", "^dim"], NPU),
            f32n("id", "Identity", &["mm", "^split"], CPU),
        ],
        ..Default::default()
    };
    run(&mut g, Mode::AllowMixPrecisionFp16);
    assert_eq!(get(&g, "split"), &split);
    let h = DType::F16;
    let f = DType::F32;
    assert_eq!(cast_into(&g, "mm", 0), ("split:1".into(), f, h, NPU.into()));
    assert_eq!(cast_into(&g, "mm", 1), ("split".into(), f, h, NPU.into()));
    assert_eq!(get(&g, "mm").input[2], "^dim");
    // The CPU consumer gets a Cast back to float32, placed on the
    // producer's NPU; its control input stays.
    assert_eq!(cast_into(&g, "id", 0), ("mm".into(), h, f, NPU.into()));
    assert_eq!(get(&g, "id").input[1], "^split");
    assert_eq!(dtype_of(get(&g, "id"), "T"), f);
}

#[test]
fn force_fp32_keeps_activations_f32_between_npu_ops() {
    let h = DType::F16;
    let f = DType::F32;
    let cast = |name: &str, input: &str, src: DType, dst: DType| {
        node(
            name,
            "Cast",
            &[input],
            NPU,
            &[("SrcT", ty(src)), ("DstT", ty(dst))],
        )
    };
    let h16 = |name: &str, op: &str, inputs: &[&str]| node(name, op, inputs, NPU, &[("T", ty(h))]);
    let mut g = GraphDef {
        node: vec![
            f32n("x", "_Arg", &[], NPU),
            f32n("w", "_Arg", &[], NPU),
            cast("xh", "x", f, h),
            cast("wh", "w", f, h),
            h16("mm1", "MatMul", &["xh", "wh"]),
            h16("relu", "Relu", &["mm1"]),
            h16("mm2", "MatMul", &["relu", "wh"]),
            cast("y", "mm2", h, f),
            f32n("out", "_Retval", &["y"], NPU),
            h16("h_out", "_Retval", &["relu"]),
        ],
        ..Default::default()
    };
    let n = g.node.len();
    run(&mut g, Mode::ForceFp32);
    for c in ["xh", "wh", "y"] {
        assert_eq!(dtype_of(get(&g, c), "SrcT"), f, "{c}");
        assert_eq!(dtype_of(get(&g, c), "DstT"), f, "{c}");
    }
    for c in ["mm1", "relu", "mm2"] {
        assert_eq!(dtype_of(get(&g, c), "T"), f, "{c}");
    }
    // Only the f16 function result needs a Cast back.
    assert_eq!(g.node.len(), n + 1);
    assert_eq!(cast_into(&g, "h_out", 0), ("relu".into(), f, h, NPU.into()));
    assert_eq!(dtype_of(get(&g, "h_out"), "T"), h);
}

#[test]
fn preserved_nodes_keep_their_dtype() {
    // A fetched Relu (TF1 session fetch) stays float32: the MatMul goes
    // bf16 and a Cast feeds the Relu.
    let mut g = dense();
    let defs = opdefs();
    let keep: HashSet<String> = ["relu".to_string()].into();
    rewrite(
        &mut g,
        Mode::AllowMixPrecisionBf16,
        &Lists::default(),
        &keep,
        &|op| defs.get(op),
    )
    .unwrap();
    assert_eq!(dtype_of(get(&g, "relu"), "T"), DType::F32);
    assert_eq!(dtype_of(get(&g, "mm"), "T"), DType::BF16);
    assert_eq!(cast_into(&g, "relu", 0).0, "ba");
}

#[test]
fn the_pass_skips_or_fails_without_touching_the_graph() {
    // The only test in this crate that sets the process-wide mode.
    let defs = opdefs();
    let opdef = |op: &str| defs.get(op);
    precision::set_mode(Mode::MustKeepOriginDtype);
    // Nothing to fuse, paint or order.
    let g = GraphDef {
        node: vec![
            f32n("x", "_Arg", &[], NPU),
            f32n("sm", "Softmax", &["x"], NPU),
            f32n("out", "_Retval", &["sm"], NPU),
        ],
        ..Default::default()
    };
    assert_eq!(
        passes(&g.encode_to_vec(), std::ptr::null(), &opdef),
        Ok(None)
    );
    precision::set_mode(Mode::AllowMixPrecisionBf16);
    // Garbage is an error (optimize() then returns the input as is).
    assert!(passes(&[0xff, 0xff, 0xff], std::ptr::null(), &opdef).is_err());
    precision::set_mode(Mode::MustKeepOriginDtype);
}

#[test]
fn unknown_ops_and_bad_inputs_are_opaque() {
    let mut g = GraphDef {
        node: vec![
            f32n("x", "SomeFunction", &[], NPU),
            f32n("mm", "MatMul", &["x:7", "missing", "x:notanumber"], NPU),
        ],
        ..Default::default()
    };
    run(&mut g, Mode::AllowMixPrecisionBf16);
    assert_eq!(dtype_of(get(&g, "mm"), "T"), DType::BF16);
    assert_eq!(cast_into(&g, "mm", 0).0, "x:7");
    assert_eq!(get(&g, "mm").input[1], "missing");
}
