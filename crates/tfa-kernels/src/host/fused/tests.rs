use super::*;

fn prog(instrs: &[(Op, &[Arg])]) -> Program {
    Program {
        instrs: instrs
            .iter()
            .map(|(op, args)| Instr {
                op: *op,
                args: args.to_vec(),
            })
            .collect(),
    }
}

/// The program's ops one by one over whole tensors (the reference).
fn unfused(p: &Program, head: Option<&TensorView>, inputs: &[TensorView]) -> Vec<f32> {
    let plan = Plan {
        blocked: false,
        ..Plan::new(p, DType::F32, head.map(|h| h.shape.as_slice()), inputs).unwrap()
    };
    run_plan(&plan, head, inputs)
}

/// `plan` over `head` and `inputs` into a fresh output.
fn run_plan(plan: &Plan, head: Option<&TensorView>, inputs: &[TensorView]) -> Vec<f32> {
    let shape = plan.output_shape().to_vec();
    let mut out = vec![0f32; shape.iter().product()];
    plan.run(head, inputs, &mut TensorMut::from_slice(shape, &mut out))
        .unwrap();
    out
}

/// Views of `datas[k]` with `shapes[k]`: a program's inputs.
fn views<'a>(shapes: &[Vec<usize>], datas: &'a [Vec<f32>]) -> Vec<TensorView<'a>> {
    shapes
        .iter()
        .zip(datas)
        .map(|(s, d)| TensorView::from_slice(s.clone(), d))
        .collect()
}

/// A float32 buffer as the bytes `run_rows`/`run_block` write.
fn bytes_of(v: &mut [f32]) -> &mut [u8] {
    let n = std::mem::size_of_val(v);
    // SAFETY: the same memory, exclusively borrowed for the result's
    // lifetime; every byte pattern is a u8.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, n) }
}

fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 1000) as f32 / 250.0
                - 2.0
        })
        .collect()
}

#[test]
fn batch_norm_epilogue_blocks_equal_whole_tensors() {
    use Arg::*;
    // relu((head + bias) * (gamma * rsqrt(var + eps)) + residual + beta)
    let p = prog(&[
        (Op::Binary(BinaryOp::Add), &[Head, Input(0)]),
        (Op::Binary(BinaryOp::Add), &[Input(2), Input(3)]),
        (Op::Unary(UnaryOp::Rsqrt), &[Reg(1)]),
        (Op::Binary(BinaryOp::Mul), &[Input(1), Reg(2)]),
        (Op::Binary(BinaryOp::Mul), &[Reg(0), Reg(3)]),
        (Op::Binary(BinaryOp::Add), &[Reg(4), Input(4)]),
        (Op::Binary(BinaryOp::Add), &[Reg(5), Input(5)]),
        (Op::Unary(UnaryOp::Relu), &[Reg(6)]),
    ]);
    for (rows, c) in [(1, 1), (3, 7), (2000, 5), (9, 5000), (700, 64)] {
        let head = data(rows * c, 1);
        let (bias, gamma, beta) = (data(c, 2), data(c, 3), data(c, 4));
        let var: Vec<f32> = data(c, 5).iter().map(|v| v.abs() + 0.1).collect();
        let residual = data(rows * c, 6);
        let eps = [1e-3f32];
        let h = TensorView::from_slice(vec![rows, c], &head);
        let inputs = [
            TensorView::from_slice(vec![c], &bias),
            TensorView::from_slice(vec![c], &gamma),
            TensorView::from_slice(vec![c], &var),
            TensorView::from_slice(vec![], &eps),
            TensorView::from_slice(vec![rows, c], &residual),
            TensorView::from_slice(vec![1, c], &beta),
        ];
        let plan = Plan::new(&p, DType::F32, Some(&[rows, c]), &inputs).unwrap();
        assert!(plan.blocked);
        assert_eq!(
            plan.reg_invariant,
            [false, true, true, true, false, false, false, false]
        );
        let out = run_plan(&plan, Some(&h), &inputs);
        assert_eq!(out, unfused(&p, Some(&h), &inputs), "{rows}x{c}");
        // In place over the head, as the convolution epilogue runs it.
        let mut inplace = head.clone();
        let bytes = bytes_of(&mut inplace);
        let ptr = bytes.as_ptr();
        // SAFETY: the head is the output itself, rows x c elements, as
        // run_rows allows (it reads each block of the head first).
        unsafe {
            plan.run_rows(Some(ptr), &inputs, 0, rows, bytes, &mut Vec::new())
                .unwrap()
        };
        assert_eq!(inplace, out);
    }
}

#[test]
fn rank4_channel_operands_and_invariants() {
    use Arg::*;
    // Keras' mixed-precision batch norm: [1, 1, 1, C] variables.
    let p = prog(&[
        (Op::Binary(BinaryOp::Add), &[Input(0), Input(1)]),
        (Op::Unary(UnaryOp::Rsqrt), &[Reg(0)]),
        (Op::Binary(BinaryOp::Mul), &[Input(2), Reg(1)]),
        (Op::Binary(BinaryOp::Mul), &[Head, Reg(2)]),
        (Op::Binary(BinaryOp::Add), &[Reg(3), Input(3)]),
    ]);
    let (n, h, w, c) = (2, 5, 7, 6);
    let head = data(n * h * w * c, 21);
    let var: Vec<f32> = data(c, 22).iter().map(|v| v.abs() + 0.2).collect();
    let (gamma, beta, eps) = (data(c, 23), data(c, 24), [1e-3f32]);
    let inputs = [
        TensorView::from_slice(vec![1, 1, 1, c], &var),
        TensorView::from_slice(vec![], &eps),
        TensorView::from_slice(vec![1, 1, 1, c], &gamma),
        TensorView::from_slice(vec![1, 1, 1, c], &beta),
    ];
    let hv = TensorView::from_slice(vec![n, h, w, c], &head);
    let plan = Plan::new(&p, DType::F32, Some(&[n, h, w, c]), &inputs).unwrap();
    assert!(plan.blocked);
    let out = run_plan(&plan, Some(&hv), &inputs);
    assert_eq!(out, unfused(&p, Some(&hv), &inputs));
    let want: Vec<f32> = (0..out.len())
        .map(|i| head[i] * (gamma[i % c] * (1.0 / (var[i % c] + 1e-3).sqrt())) + beta[i % c])
        .collect();
    for (g, w) in out.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn rows_scalars_and_general_broadcasting() {
    use Arg::*;
    // LayerNorm-like: (x - mean) * rsqrt(var + eps) * gamma + beta, mean/var per row.
    let p = prog(&[
        (Op::Binary(BinaryOp::Sub), &[Input(0), Input(1)]),
        (Op::Binary(BinaryOp::Add), &[Input(2), Input(3)]),
        (Op::Unary(UnaryOp::Rsqrt), &[Reg(1)]),
        (Op::Binary(BinaryOp::Mul), &[Reg(0), Reg(2)]),
        (Op::Binary(BinaryOp::Mul), &[Reg(3), Input(4)]),
        (Op::Binary(BinaryOp::Add), &[Reg(4), Input(5)]),
    ]);
    let (b, t, c) = (3, 50, 96);
    let x = data(b * t * c, 7);
    let mean = data(b * t, 8);
    let var: Vec<f32> = data(b * t, 9).iter().map(|v| v.abs() + 0.5).collect();
    let (gamma, beta, eps) = (data(c, 10), data(c, 11), [1e-5f32]);
    let inputs = [
        TensorView::from_slice(vec![b, t, c], &x),
        TensorView::from_slice(vec![b, t, 1], &mean),
        TensorView::from_slice(vec![b, t, 1], &var),
        TensorView::from_slice(vec![], &eps),
        TensorView::from_slice(vec![c], &gamma),
        TensorView::from_slice(vec![c], &beta),
    ];
    let plan = Plan::new(&p, DType::F32, None, &inputs).unwrap();
    assert!(plan.blocked);
    let out = run_plan(&plan, None, &inputs);
    assert_eq!(out, unfused(&p, None, &inputs));

    // A [b, 1, c] operand is neither: whole-tensor evaluation, same answer.
    let odd = data(b * c, 12);
    let q = prog(&[
        (Op::Binary(BinaryOp::Mul), &[Input(0), Input(1)]),
        (Op::Unary(UnaryOp::Tanh), &[Reg(0)]),
    ]);
    let ins = [
        TensorView::from_slice(vec![b, t, c], &x),
        TensorView::from_slice(vec![b, 1, c], &odd),
    ];
    let plan = Plan::new(&q, DType::F32, None, &ins).unwrap();
    assert!(!plan.blocked);
    let out = run_plan(&plan, None, &ins);
    let want: Vec<f32> = (0..b * t * c)
        .map(|i| (x[i] * odd[(i / (t * c)) * c + i % c]).tanh())
        .collect();
    for (g, w) in out.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0));
    }
}

/// Random programs over operands of every kind and rank: blocks and
/// invariants give exactly the whole-tensor evaluation.
#[test]
fn random_programs_blocked_equal_whole() {
    let seed: u64 = std::env::var("TFA_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut state = seed;
    let mut next = |n: usize| -> usize {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n.max(1)
    };
    let bin = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::SquaredDifference,
    ];
    let un = [
        UnaryOp::Relu,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Neg,
        UnaryOp::Square,
        UnaryOp::Erf,
        UnaryOp::Abs,
    ];
    for case in 0..400 {
        let rank = 1 + next(4);
        let mut out: Vec<usize> = (0..rank).map(|_| 1 + next(9)).collect();
        // Some cases with rows longer than the float32 path's chunk (cut
        // within a row) or many rows per block (several chunks).
        match next(6) {
            0 => out[rank - 1] = 1 + next(9000),
            1 => out[0] = 100 + next(900),
            _ => {}
        }
        let c = out[rank - 1];
        let rows: usize = out[..rank - 1].iter().product();
        // Operands: full, channel, row, scalar, each padded to a random rank.
        let n_in = 1 + next(4);
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        for _ in 0..n_in {
            let base = match next(4) {
                0 => out.clone(),
                1 => vec![c],
                2 => {
                    let mut s = out.clone();
                    s[rank - 1] = 1;
                    s
                }
                _ => vec![],
            };
            let pad = next(rank + 1 - base.len().min(rank));
            let mut s = vec![1; pad];
            s.extend(base);
            shapes.push(s);
        }
        let datas: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| data(s.iter().product(), (case * 10 + k) as u32))
            .collect();
        let inputs = views(&shapes, &datas);
        let head = data(rows * c, case as u32);
        let hv = TensorView::from_slice(out.clone(), &head);
        let mut instrs: Vec<Instr> = Vec::new();
        let n_ins = 1 + next(6);
        for i in 0..n_ins {
            let arg = |next: &mut dyn FnMut(usize) -> usize| match next(3) {
                0 => Arg::Head,
                1 => Arg::Input(next(n_in)),
                _ if i > 0 => Arg::Reg(next(i)),
                _ => Arg::Input(next(n_in)),
            };
            let ins = if next(3) == 0 {
                Instr {
                    op: Op::Unary(un[next(un.len())]),
                    args: vec![arg(&mut next)],
                }
            } else {
                Instr {
                    op: Op::Binary(bin[next(bin.len())]),
                    args: vec![arg(&mut next), arg(&mut next)],
                }
            };
            instrs.push(ins);
        }
        // The head's shape must be the output's for a blocked plan to apply.
        instrs.push(Instr {
            op: Op::Binary(BinaryOp::Add),
            args: vec![Arg::Reg(n_ins - 1), Arg::Head],
        });
        let p = Program { instrs };
        let Ok(plan) = Plan::new(&p, DType::F32, Some(&out), &inputs) else {
            continue; // operands of incompatible ranks: refused like the unfused ops
        };
        let got = run_plan(&plan, Some(&hv), &inputs);
        let want = unfused(&p, Some(&hv), &inputs);
        assert_eq!(
            got, want,
            "seed {seed} case {case}: out {out:?} inputs {shapes:?} program {p:?}"
        );
        if plan.output_shape() == out.as_slice() {
            let mut inplace = head.clone();
            let mut t = TensorMut::from_slice(out.clone(), &mut inplace);
            plan.run_in_place(&inputs, &mut t).unwrap();
            assert_eq!(inplace, want, "in place: seed {seed} case {case}");
        }
    }
}

#[test]
fn shape_errors_are_tensorflows() {
    use Arg::*;
    let p = prog(&[(Op::Binary(BinaryOp::Add), &[Head, Input(0)])]);
    let e = p.shapes(Some(&[2, 3]), &[&[4]]).unwrap_err();
    assert_eq!(e.to_string(), "Incompatible shapes: [2,3] vs. [4]");
    assert!(prog(&[(Op::Unary(UnaryOp::Relu), &[Reg(0)])])
        .shapes(None, &[])
        .is_err());
}

/// Random programs of the one-pass shape (`affine`: chains of per-channel
/// or scalar add/subtract/multiply from the head or a full-size input, at
/// most one add joining two chains, steps after it, an activation) give the
/// unfused ops' bits, in blocks and in place, with any column count and
/// special values; near misses are refused and stay equal too.
#[test]
fn affine_programs_equal_unfused_bit_for_bit() {
    use rand::Rng;
    let mut rng = crate::test_rng();
    let acts = [
        None,
        Some(UnaryOp::Relu),
        Some(UnaryOp::Relu6),
        Some(UnaryOp::Sigmoid),
        Some(UnaryOp::Tanh),
        Some(UnaryOp::Elu),
    ];
    let ops = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul];
    let special = [
        f32::NAN,
        f32::INFINITY,
        -f32::INFINITY,
        0.0,
        -0.0,
        1e-40,
        -1e-40,
    ];
    for case in 0..300 {
        let c = match case % 4 {
            0 => 64 * rng.random_range(1..5),
            1 => 16 * rng.random_range(1..9),
            _ => rng.random_range(1..300),
        };
        // Two rows or more: with one, the `[1, c]` operand is full-size.
        let rows = rng.random_range(2..40);
        let gen = |n: usize, rng: &mut rand::rngs::StdRng| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    if rng.random_range(0..50) == 0 {
                        special[rng.random_range(0..special.len())]
                    } else {
                        rng.random_range(-3.0f32..3.0)
                    }
                })
                .collect()
        };
        // Inputs 0-1 full size, 2-4 per channel (ranks 1 and 2), 5 scalar.
        let shapes = [
            vec![rows, c],
            vec![rows, c],
            vec![c],
            vec![1, c],
            vec![c],
            vec![],
        ];
        let datas: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| gen(s.iter().product(), &mut rng))
            .collect();
        let inputs = views(&shapes, &datas);
        let head = gen(rows * c, &mut rng);
        let hv = TensorView::from_slice(vec![rows, c], &head);
        let mut instrs: Vec<Instr> = Vec::new();
        let push = |instrs: &mut Vec<Instr>, op: Op, args: Vec<Arg>| {
            instrs.push(Instr { op, args });
            Arg::Reg(instrs.len() - 1)
        };
        // An invariant register: gamma * rsqrt(var + eps) style.
        let inv = {
            let a = push(
                &mut instrs,
                Op::Binary(BinaryOp::Add),
                vec![Arg::Input(4), Arg::Input(5)],
            );
            let r = push(&mut instrs, Op::Unary(UnaryOp::Abs), vec![a]);
            push(
                &mut instrs,
                Op::Binary(BinaryOp::Mul),
                vec![Arg::Input(2), r],
            )
        };
        let params = [Arg::Input(2), Arg::Input(3), Arg::Input(5), inv];
        let chain = |instrs: &mut Vec<Instr>, mut r: Arg, rng: &mut rand::rngs::StdRng| {
            for _ in 0..rng.random_range(0..4) {
                let p = params[rng.random_range(0..params.len())];
                let op = ops[rng.random_range(0..ops.len())];
                let args = if rng.random_bool(0.5) {
                    vec![r, p]
                } else {
                    vec![p, r]
                };
                r = push(instrs, Op::Binary(op), args);
            }
            r
        };
        let leaves = [Arg::Head, Arg::Input(0), Arg::Input(1)];
        let mut r = chain(&mut instrs, leaves[rng.random_range(0..3)], &mut rng);
        if rng.random_bool(0.6) {
            let q = chain(&mut instrs, leaves[rng.random_range(0..3)], &mut rng);
            let args = if rng.random_bool(0.5) {
                vec![r, q]
            } else {
                vec![q, r]
            };
            r = push(&mut instrs, Op::Binary(BinaryOp::Add), args);
            r = chain(&mut instrs, r, &mut rng);
        }
        // Near misses (refused): a Maximum step, a register read twice, a
        // per-row operand.
        let miss = case % 10 == 9;
        if miss {
            r = match case % 3 {
                0 => push(
                    &mut instrs,
                    Op::Binary(BinaryOp::Maximum),
                    vec![r, Arg::Input(2)],
                ),
                1 => push(&mut instrs, Op::Binary(BinaryOp::Mul), vec![r, r]),
                _ => {
                    let a = push(&mut instrs, Op::Unary(UnaryOp::Neg), vec![r]);
                    push(
                        &mut instrs,
                        Op::Binary(BinaryOp::Add),
                        vec![a, Arg::Input(2)],
                    )
                }
            };
        }
        match acts[rng.random_range(0..acts.len())] {
            Some(u) => {
                push(&mut instrs, Op::Unary(u), vec![r]);
            }
            None if matches!(r, Arg::Reg(_)) => {}
            None => {
                push(
                    &mut instrs,
                    Op::Binary(BinaryOp::Mul),
                    vec![r, Arg::Input(5)],
                );
            }
        }
        let p = Program { instrs };
        let plan = Plan::new(&p, DType::F32, Some(&[rows, c]), &inputs).unwrap();
        assert_eq!(plan.affine.is_some(), !miss, "case {case}: {p:?}");
        let want = unfused(&p, Some(&hv), &inputs);
        // Bits, except that a NaN's sign may differ (`c - x` runs as
        // `x * -1 + c`; a subtraction as the addition of the negation).
        let same = |got: &[f32], want: &[f32], what: &str| {
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{what} case {case} ({rows}x{c}) element {i}: {g} vs {w}, {p:?}"
                );
            }
        };
        let got = run_plan(&plan, Some(&hv), &inputs);
        same(&got, &want, "blocks");
        let mut inplace = head.clone();
        plan.run_in_place(
            &inputs,
            &mut TensorMut::from_slice(vec![rows, c], &mut inplace),
        )
        .unwrap();
        same(&inplace, &want, "in place");
        // A product's tile: rows from the middle, head and output the same.
        let (r0, n) = (rows / 3, rows - rows / 3);
        let mut tile = head[r0 * c..].to_vec();
        let bytes = bytes_of(&mut tile);
        let h = bytes.as_ptr();
        // SAFETY: `tile` holds rows `r0..rows` of the head; the output is it.
        unsafe { plan.run_block(Some(h), &inputs, r0, n, bytes) }.unwrap();
        same(&tile, &want[r0 * c..], "tile");
    }
}
