//! GFLOP/s of the float32 gemm vs each bfloat16 path of `lowp_gemm` (and
//! its float16 path) at
//! ResNet50-like and BERT-like sizes, on 1 and 2 threads.
//! `cargo run --release -p tfa-kernels --example lowp_gemm_bench [M K N [THREADS]]`
//! (one size, for profiling).

use std::time::{Duration, Instant};
use tfa_core::{TensorMut, TensorView};
use tfa_kernels::geometry::matmul::MatMulParams;
use tfa_kernels::host::lowp_gemm::{lowp_gemm_with, path_available, LowpPath, LowpType};
use tfa_kernels::host::matmul::matmul;

/// Best time of repeated runs (at least 3, about 1.5 s in all: the best run is the least disturbed one).
fn best(mut f: impl FnMut()) -> Duration {
    f();
    let mut best = Duration::MAX;
    let start = Instant::now();
    let mut runs = 0;
    while runs < 3 || start.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("sizes are numbers"))
        .collect();
    let mut sizes = vec![
        (12544, 576, 64),
        (784, 1152, 128),
        (196, 2304, 256),
        (49, 4608, 512),
        (4096, 768, 3072),
    ];
    let mut thread_counts = vec![1, 2];
    if args.len() >= 3 {
        sizes = vec![(args[0], args[1], args[2])];
    }
    if args.len() == 4 {
        thread_counts = vec![args[3]];
    }
    println!(
        "{:>22} {:>3} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "m x k x n", "thr", "f32", "portable", "avx512", "amx", "f16"
    );
    for &threads in &thread_counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        for &(m, k, n) in &sizes {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 999.0 - 0.5)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104729) % 1000) as f32 / 999.0 - 0.5)
                .collect();
            let mut c = vec![0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let gf = |d: Duration| flops / d.as_secs_f64() / 1e9;
            let mut row = format!("{:>22} {threads:>3}", format!("{m} x {k} x {n}"));
            pool.install(|| {
                let t = best(|| {
                    matmul(
                        &TensorView::from_slice(vec![m, k], &a),
                        &TensorView::from_slice(vec![k, n], &b),
                        &mut TensorMut::from_slice(vec![m, n], &mut c),
                        MatMulParams::default(),
                    )
                    .expect("matmul");
                });
                row += &format!(" {:>9.1}", gf(t));
                for path in LowpPath::ALL {
                    if !path_available(path, LowpType::Bf16) {
                        row += &format!(" {:>9}", "-");
                        continue;
                    }
                    let t = best(|| {
                        // SAFETY: a is m x k, b k x n row-major; c holds m*n.
                        unsafe {
                            lowp_gemm_with(
                                path,
                                m,
                                n,
                                k,
                                a.as_ptr(),
                                (k as isize, 1),
                                b.as_ptr(),
                                (n as isize, 1),
                                &mut c,
                                LowpType::Bf16,
                                true,
                            )
                        }
                    });
                    row += &format!(" {:>9.1}", gf(t));
                }
                // float16: always the portable path.
                let t = best(|| {
                    // SAFETY: as above.
                    unsafe {
                        lowp_gemm_with(
                            LowpPath::Portable,
                            m,
                            n,
                            k,
                            a.as_ptr(),
                            (k as isize, 1),
                            b.as_ptr(),
                            (n as isize, 1),
                            &mut c,
                            LowpType::F16,
                            true,
                        )
                    }
                });
                row += &format!(" {:>9.1}", gf(t));
            });
            println!("{row}");
        }
    }
}
