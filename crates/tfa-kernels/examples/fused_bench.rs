//! Times a batch-norm epilogue program on a ResNet-sized activation:
//! `cargo run --release -p tfa-kernels --example fused_bench`.
use std::time::Instant;
use tfa_core::{DType, TensorMut, TensorView};
use tfa_kernels::host::elementwise::{BinaryOp, UnaryOp};
use tfa_kernels::host::fused::{Arg, Instr, Op, Plan, Program};

fn main() {
    let (rows, c) = (32 * 56 * 56, 256);
    let x: Vec<f32> = (0..rows * c).map(|i| (i % 97) as f32 * 0.01).collect();
    let res = x.clone();
    let (b, s, t) = (vec![0.5f32; c], vec![1.5f32; c], vec![0.25f32; c]);
    let ins = |op, args: &[Arg]| Instr {
        op,
        args: args.to_vec(),
    };
    let p = Program {
        instrs: vec![
            ins(Op::Binary(BinaryOp::Add), &[Arg::Head, Arg::Input(0)]),
            ins(Op::Binary(BinaryOp::Mul), &[Arg::Reg(0), Arg::Input(1)]),
            ins(Op::Binary(BinaryOp::Add), &[Arg::Reg(1), Arg::Input(2)]),
            ins(Op::Binary(BinaryOp::Add), &[Arg::Reg(2), Arg::Input(3)]),
            ins(Op::Unary(UnaryOp::Relu), &[Arg::Reg(3)]),
        ],
    };
    let inputs = [
        TensorView::from_slice(vec![c], &b),
        TensorView::from_slice(vec![c], &s),
        TensorView::from_slice(vec![c], &t),
        TensorView::from_slice(vec![rows, c], &res),
    ];
    let head = TensorView::from_slice(vec![rows, c], &x);
    let plan = Plan::new(&p, DType::F32, Some(&[rows, c]), &inputs).unwrap();
    let mut out = vec![0f32; rows * c];
    for _ in 0..5 {
        let t0 = Instant::now();
        plan.run(
            Some(&head),
            &inputs,
            &mut TensorMut::from_slice(vec![rows, c], &mut out),
        )
        .unwrap();
        println!("fused program: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
}
