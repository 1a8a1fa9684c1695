use super::*;
use rand::Rng;

/// A random `rows x cols` operand stored row-major or transposed, with its
/// (row, col) strides.
fn operand(
    rng: &mut impl Rng,
    rows: usize,
    cols: usize,
    trans: bool,
) -> (Vec<f32>, (isize, isize)) {
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let strides = if trans {
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    };
    (data, strides)
}

fn at(x: &[f32], (rs, cs): (isize, isize), i: usize, j: usize) -> f32 {
    x[(i as isize * rs + j as isize * cs) as usize]
}

/// Rounded inputs, float64 accumulation; also `sum |a||b|` per output.
#[allow(clippy::too_many_arguments)]
fn reference(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    sa: (isize, isize),
    b: &[f32],
    sb: (isize, isize),
    lowp: LowpType,
) -> (Vec<f64>, Vec<f64>) {
    let mut want = vec![0.0; m * n];
    let mut scale = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                let x = lowp.round(at(a, sa, i, p)) as f64 * lowp.round(at(b, sb, p, j)) as f64;
                want[i * n + j] += x;
                scale[i * n + j] += x.abs();
            }
        }
    }
    (want, scale)
}

fn assert_close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= 1e-5 * s + 1e-30,
            "{what} [{i}]: {g} vs {w} (scale {s})"
        );
    }
}

/// Runs one case on `path` (if this CPU has it) against the reference.
#[allow(clippy::too_many_arguments)]
fn check(
    path: LowpPath,
    lowp: LowpType,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    threads: usize,
    rng: &mut impl Rng,
) {
    let (a, sa) = operand(rng, m, k, ta);
    let (b, sb) = operand(rng, k, n, tb);
    let (want, scale) = reference(m, n, k, &a, sa, &b, sb, lowp);
    let mut c = vec![f32::NAN; m * n];
    crate::test_pool(threads).install(|| {
        // SAFETY: a is m x k and b k x n at their strides; c holds m*n.
        unsafe {
            lowp_gemm_with(
                path,
                m,
                n,
                k,
                a.as_ptr(),
                sa,
                b.as_ptr(),
                sb,
                &mut c,
                lowp,
                true,
            )
        }
    });
    let what = format!("{path:?} {lowp:?} m={m} n={n} k={k} ta={ta} tb={tb} threads={threads}");
    assert_close(&c, &want, &scale, &what);
}

fn shapes(rng: &mut impl Rng) -> Vec<(usize, usize, usize)> {
    let mut v = vec![
        (1, 1, 1),
        (1, 1, 7),
        (3, 5, 1),
        (16, 16, 32),
        (32, 32, 32),
        (33, 31, 33),
        (17, 47, 65),
        (64, 64, 64),
        (65, 97, 1),
        (130, 300, 70),
        (7, 520, 45),
        (200, 40, 600),
    ];
    for _ in 0..12 {
        v.push((
            rng.random_range(1..90),
            rng.random_range(1..90),
            rng.random_range(1..130),
        ));
    }
    v
}

fn run_path(path: LowpPath, lowp: LowpType) {
    if !path_available(path, lowp) {
        eprintln!("skipping {path:?} {lowp:?}: not available on this CPU");
        return;
    }
    let mut rng = crate::test_rng();
    for (i, (m, n, k)) in shapes(&mut rng).into_iter().enumerate() {
        let threads = 1 + i % 2;
        check(
            path,
            lowp,
            m,
            n,
            k,
            i % 3 == 1,
            i % 4 >= 2,
            threads,
            &mut rng,
        );
    }
}

#[test]
fn amx_bf16_matches_reference() {
    run_path(LowpPath::Amx, LowpType::Bf16);
}

#[test]
fn avx512_bf16_matches_reference() {
    run_path(LowpPath::Avx512, LowpType::Bf16);
}

#[test]
fn portable_bf16_matches_reference() {
    run_path(LowpPath::Portable, LowpType::Bf16);
}

#[test]
fn portable_f16_matches_reference() {
    run_path(LowpPath::Portable, LowpType::F16);
    // f16 on a packed path falls back to portable: still correct.
    let mut rng = crate::test_rng();
    check(
        LowpPath::Amx,
        LowpType::F16,
        40,
        33,
        70,
        false,
        true,
        2,
        &mut rng,
    );
}

/// Large products and long odd depths, with A row-major and transposed (a
/// filter gradient's layout, packed in blocks of 16 rows x 32 columns; rows
/// not a multiple of 16, an odd last column), on one and two threads.
#[test]
fn large_products_and_transposed_a_on_every_path() {
    let mut rng = crate::test_rng();
    for path in LowpPath::ALL {
        if !path_available(path, LowpType::Bf16) {
            eprintln!("skipped {path:?}: not available on this CPU");
            continue;
        }
        for (m, n, k, ta, threads) in [
            (300, 260, 700, false, 1),
            (300, 260, 700, true, 2),
            (45, 70, 777, true, 2),
            (45, 70, 777, false, 1),
            (64, 33, 1030, true, 1),
            (19, 96, 513, true, 2),
        ] {
            check(path, LowpType::Bf16, m, n, k, ta, false, threads, &mut rng);
        }
    }
}

/// bfloat16 operands (no rounding needed) give the same as their float32
/// widening.
#[test]
fn bf16_inputs_match_reference() {
    let mut rng = crate::test_rng();
    for path in LowpPath::ALL {
        if !path_available(path, LowpType::Bf16) {
            eprintln!("skipped {path:?}: not available on this CPU");
            continue;
        }
        for (m, n, k) in [(1, 1, 1), (37, 70, 91), (64, 32, 5), (130, 65, 260)] {
            for threads in [1, 2] {
                let (a, sa) = operand(&mut rng, m, k, false);
                let (b, sb) = operand(&mut rng, k, n, true);
                let ah: Vec<bf16> = a.iter().map(|&v| bf16::from_f32(v)).collect();
                let bh: Vec<bf16> = b.iter().map(|&v| bf16::from_f32(v)).collect();
                let (want, scale) = reference(m, n, k, &a, sa, &b, sb, LowpType::Bf16);
                let mut c = vec![f32::NAN; m * n];
                crate::test_pool(threads).install(|| {
                    // SAFETY: operands cover their strided shapes; c is m*n.
                    unsafe {
                        lowp_gemm_with(
                            path,
                            m,
                            n,
                            k,
                            ah.as_ptr(),
                            sa,
                            bh.as_ptr(),
                            sb,
                            &mut c,
                            LowpType::Bf16,
                            true,
                        )
                    }
                });
                assert_close(&c, &want, &scale, &format!("{path:?} bf16 in {m}x{n}x{k}"));
            }
        }
    }
}

#[test]
fn rounding_is_nearest_even_and_k_zero_clears() {
    assert_eq!(bf16_bits(1.0), bf16::from_f32(1.0).to_bits());
    for bits in [
        0x3f80_8000u32,
        0x3f81_8000,
        0x3f80_7fff,
        0x7f7f_ffff,
        0xff80_0000,
        0x7fc0_0001,
        1,
    ] {
        let x = f32::from_bits(bits);
        assert_eq!(bf16_bits(x), bf16::from_f32(x).to_bits(), "{bits:#x}");
    }
    let mut c = vec![f32::NAN; 6];
    let z: [f32; 0] = [];
    // SAFETY: k = 0 reads nothing; c holds 2*3.
    unsafe {
        lowp_gemm_strided(
            2,
            3,
            0,
            z.as_ptr(),
            (0, 1),
            z.as_ptr(),
            (3, 1),
            &mut c,
            LowpType::Bf16,
            false,
        )
    };
    assert!(c.iter().all(|&v| v == 0.0));
}

#[test]
fn selection_is_available_and_f16_is_portable() {
    assert_eq!(selected_path(LowpType::F16), LowpPath::Portable);
    let p = selected_path(LowpType::Bf16);
    assert!(path_available(p, LowpType::Bf16));
    assert!(!path_available(LowpPath::Amx, LowpType::F16));
}

/// `narrow_bf16` rounds exactly as `bf16::from_f32` (ties to even, NaN
/// quiet, infinities and subnormals kept), on the vector body and the tail.
#[test]
fn narrow_bf16_equals_from_f32() {
    let mut rng = crate::test_rng();
    let mut src: Vec<f32> = vec![
        0.0,
        -0.0,
        f32::from_bits(0x3f80_8000),
        f32::from_bits(0x3f81_8000),
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(1),
        -1e-40,
    ];
    src.extend((0..1000).map(|_| f32::from_bits(rng.random::<u32>())));
    for len in [0, 7, 16, 33, src.len()] {
        let mut got = vec![bf16::ZERO; len];
        narrow_bf16(&src[..len], &mut got);
        for (g, s) in got.iter().zip(&src) {
            let w = bf16::from_f32(*s);
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{s:e}: {g} vs {w}"
            );
        }
    }
}
