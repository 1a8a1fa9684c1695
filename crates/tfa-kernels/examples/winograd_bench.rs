//! Re-measures Winograd's cost rule on this CPU: times every ResNet50 3x3
//! layer direct, as F(2x2, 3x3) and as F(4x4, 3x3), interleaved, at several
//! batch sizes, and says whether the way the rule picks
//! (`winograd::chosen_way`) is the fastest. The rule's `FILTER_COST` was
//! measured on a 2-core AVX2 Zen 1; run this on another machine class before
//! trusting it there: `cargo run --release -p tfa-kernels --example
//! winograd_bench -- [repeats] [batch...]` (default 7 repeats, batches 1 4 8
//! 32).
use std::time::Instant;
use tfa_kernels::geometry::window::{conv2d_geometry, ConvPass, DataFormat, Padding, WindowAttrs};
use tfa_kernels::host::cpu;
use tfa_kernels::host::winograd::{chosen_way, conv2d_by, Way};

/// (map h = w, channels in = out) of ResNet50's 3x3 stride-1 layers.
const LAYERS: &[(usize, usize)] = &[(56, 64), (28, 128), (14, 256), (7, 512)];
const WAYS: [Way; 3] = [Way::Direct, Way::F2, Way::F4];

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let reps = args.first().copied().unwrap_or(7);
    let batches = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1, 4, 8, 32]
    };
    println!(
        "CPU features: {}; {} threads; best of {reps}, ways interleaved",
        cpu::features().names().join(" "),
        rayon::current_num_threads()
    );
    let a = WindowAttrs {
        strides: &[1, 1, 1, 1],
        dilations: &[1, 1, 1, 1],
        padding: Padding::Same,
        explicit_paddings: &[],
        data_format: DataFormat::Nhwc,
    };
    let mut misses = 0;
    for &(hw, c) in LAYERS {
        for &n in &batches {
            let g = conv2d_geometry(&[n, hw, hw, c], &[3, 3, c, c], &a, ConvPass::Forward)
                .expect("geometry");
            let x: Vec<f32> = (0..n * hw * hw * c)
                .map(|i| (i % 13) as f32 * 0.1)
                .collect();
            let f: Vec<f32> = (0..9 * c * c).map(|i| (i % 7) as f32 * 0.01).collect();
            let mut y = vec![0f32; n * hw * hw * c];
            let mut best = [f64::MAX; 3];
            for _ in 0..reps {
                for (b, &way) in best.iter_mut().zip(&WAYS) {
                    let t0 = Instant::now();
                    conv2d_by(way, &x, &f, &mut y, &g).expect("conv2d");
                    *b = b.min(t0.elapsed().as_secs_f64());
                }
            }
            let fastest = (0..3)
                .min_by(|&i, &j| best[i].total_cmp(&best[j]))
                .unwrap_or(0);
            let chosen = WAYS.iter().position(|&w| w == chosen_way(&g)).unwrap_or(0);
            let verdict = if chosen == fastest {
                "ok".to_string()
            } else {
                misses += 1;
                format!(
                    "MISS: {:?} is {:.0} % faster",
                    WAYS[fastest],
                    (best[chosen] / best[fastest] - 1.0) * 100.0
                )
            };
            println!(
                "b{n:<3} {hw:>2}x{hw:<2}x{c:<3}: direct {:8.2} ms, F2 {:8.2} ms, F4 {:8.2} ms; rule picks {:?}: {verdict}",
                best[0] * 1e3,
                best[1] * 1e3,
                best[2] * 1e3,
                WAYS[chosen],
            );
        }
    }
    println!(
        "{misses} of {} picks not the fastest",
        LAYERS.len() * batches.len()
    );
}
