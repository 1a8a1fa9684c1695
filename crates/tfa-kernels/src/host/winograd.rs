//! Winograd F(2x2, 3x3) for float32 NHWC 3x3 stride-1 convolutions: each
//! 2x2 block of output pixels costs 16 multiplications per (input, output)
//! channel pair instead of 36, a 2.25x cut in the GEMM work that dominates
//! such layers. Hand-written because no crate does convolution transforms.
//!
//! Per job (a few rows of 2x2 output tiles of one image): the 4x4 input
//! patches are transformed (`V = Bt d B`, vectorised over channels), 16
//! GEMMs `M[i] = V[i] @ U[i]` multiply them by the transformed filter
//! (`U = G g Gt`, computed once per call), and `Y = At M A` writes the
//! outputs; the job's output rows, whole rows of the `[n*oh*ow, cout]`
//! matrix, then go through the caller's epilogue while in cache. The
//! transforms only add, subtract and halve, so the result differs from the
//! direct convolution by float32 rounding of a few more additions: measured
//! against a float64 reference in the tests below.

use super::conv::{gemm_rows, run_epilogue, ConvGeom, RowsEpilogue};
use super::on_widest_simd;
use rayon::prelude::*;
use tfa_core::Result;

/// Bytes of one job's transformed inputs and products (16 x tiles x
/// (cin + cout) floats): small enough to stay in L2 while the 16 GEMMs run.
const JOB_BYTES: usize = 1 << 20;

/// Tiles per job for `cin` + `cout` channels.
fn tiles_per_job(g: &ConvGeom) -> usize {
    (JOB_BYTES / (16 * 4 * (g.cin + g.cout))).clamp(8, 512)
}

/// Does `g` take the Winograd path? 3x3, stride 1, no dilation, one group,
/// an output at least 2x2, and channel counts where it wins on these cores
/// (measured, ResNet50 shapes at batch 32: 128 and 256 channels gain
/// 1.1-1.4x over the direct path; with 64 the transforms cost what the
/// GEMMs save, and with 512 a job holds so few tiles that repacking the
/// transformed filter for each of its GEMMs dominates; for the same reason
/// each thread needs 64 tiles or more: a 14x14x256 layer at batch 1 ran
/// faster direct).
pub fn eligible(g: &ConvGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.sh == 1
        && g.sw == 1
        && g.dh == 1
        && g.dw == 1
        && g.groups == 1
        && g.cin >= 96
        && g.cout >= 96
        && tiles_per_job(g) >= 32
        && g.n * g.oh.div_ceil(2) * g.ow.div_ceil(2) >= 64 * rayon::current_num_threads()
        && g.oh >= 2
        && g.ow >= 2
}

/// `U[i][c][k]` (i = 4 * row + col of the 4x4 transform) from the HWIO filter.
fn transform_filter(f: &[f32], c_in: usize, k_out: usize) -> Vec<f32> {
    let plane = c_in * k_out;
    let mut u = vec![0f32; 16 * plane];
    if plane == 0 {
        return u;
    }
    // Tasks of a few input channels each; a task writes its channels' rows
    // of all 16 planes.
    let per = c_in.div_ceil(4 * rayon::current_num_threads().max(1)) * k_out;
    let mut planes: Vec<_> = u.chunks_mut(plane).map(|p| p.chunks_mut(per)).collect();
    let tasks: Vec<Vec<&mut [f32]>> = (0..plane.div_ceil(per))
        .map(|_| planes.iter_mut().flat_map(|p| p.next()).collect())
        .collect();
    tasks.into_par_iter().enumerate().for_each(|(t, mut dst)| {
        let c0 = t * per / k_out;
        on_widest_simd(&mut dst, |dst| {
            for c in c0..c0 + dst[0].len() / k_out {
                filter_rows(f, c, c_in, k_out, (c - c0) * k_out, dst);
            }
        });
    });
    u
}

/// The 16 transformed rows of input channel `c` (`k_out` outputs each) into
/// `dst[i][at..]`: `U = G g Gt`, vectorised over output channels.
#[inline(always)]
fn filter_rows(f: &[f32], c: usize, c_in: usize, k_out: usize, at: usize, dst: &mut [&mut [f32]]) {
    let mut k0 = 0;
    while k0 < k_out {
        let n = LANES.min(k_out - k0);
        // g[a][b]: the filter's tap (a, b) for channel c.
        let g: [[Lane; 3]; 3] = std::array::from_fn(|a| {
            std::array::from_fn(|b| load(f, ((a * 3 + b) * c_in + c) * k_out + k0, n))
        });
        let half_sum =
            |x: &Lane, y: &Lane, z: &Lane| zip(&zip(x, y, |p, q| p + q), z, |p, q| 0.5 * (p + q));
        let half_alt =
            |x: &Lane, y: &Lane, z: &Lane| zip(&zip(x, y, |p, q| p - q), z, |p, q| 0.5 * (p + q));
        // G g: 4 rows of 3.
        let gg: [[Lane; 3]; 4] = [
            g[0],
            std::array::from_fn(|b| half_sum(&g[0][b], &g[1][b], &g[2][b])),
            std::array::from_fn(|b| half_alt(&g[0][b], &g[1][b], &g[2][b])),
            g[2],
        ];
        // (G g) Gt: 4 x 4.
        for (r, [h0, h1, h2]) in gg.iter().enumerate() {
            let v = [*h0, half_sum(h0, h1, h2), half_alt(h0, h1, h2), *h2];
            for (col, x) in v.iter().enumerate() {
                dst[r * 4 + col][at + k0..at + k0 + n].copy_from_slice(&x[..n]);
            }
        }
        k0 += n;
    }
}

/// Channels handled together: plain arrays the compiler keeps in vector
/// registers.
const LANES: usize = 16;
type Lane = [f32; LANES];

#[inline(always)]
fn load(s: &[f32], at: usize, n: usize) -> Lane {
    let mut l = [0f32; LANES];
    l[..n].copy_from_slice(&s[at..at + n]);
    l
}

#[inline(always)]
fn zip(a: &Lane, b: &Lane, f: impl Fn(f32, f32) -> f32) -> Lane {
    std::array::from_fn(|i| f(a[i], b[i]))
}

/// The four Bt/At-style combinations of a row of four: `Bt` for inputs.
#[inline(always)]
fn bt(d: [&Lane; 4]) -> [Lane; 4] {
    [
        zip(d[0], d[2], |a, b| a - b),
        zip(d[1], d[2], |a, b| a + b),
        zip(d[2], d[1], |a, b| a - b),
        zip(d[1], d[3], |a, b| a - b),
    ]
}

/// Transforms the 4x4 input patch of tile `(ty, tx)` of image `img` into
/// `v[(i * tiles + t) * c..]` for the 16 positions i.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn transform_input(
    x: &[f32],
    g: &ConvGeom,
    img: usize,
    ty: usize,
    tx: usize,
    t: usize,
    tiles: usize,
    v: &mut [f32],
    zeros: &[f32],
) {
    let c = g.cin;
    let iy0 = (2 * ty) as isize - g.pad_top as isize;
    let ix0 = (2 * tx) as isize - g.pad_left as isize;
    let base = img * g.h * g.w * c;
    let pixel = |i: usize, j: usize| -> &[f32] {
        let (iy, ix) = (iy0 + i as isize, ix0 + j as isize);
        if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
            &zeros[..c]
        } else {
            let o = base + (iy as usize * g.w + ix as usize) * c;
            &x[o..o + c]
        }
    };
    let d: [[&[f32]; 4]; 4] = std::array::from_fn(|i| std::array::from_fn(|j| pixel(i, j)));
    let mut c0 = 0;
    while c0 < c {
        let n = LANES.min(c - c0);
        let e: [[Lane; 4]; 4] =
            std::array::from_fn(|i| std::array::from_fn(|j| load(d[i][j], c0, n)));
        // Bt d (down the rows, per column), then (Bt d) B (along each row).
        let cols: [[Lane; 4]; 4] =
            std::array::from_fn(|j| bt([&e[0][j], &e[1][j], &e[2][j], &e[3][j]]));
        for (i, _) in cols[0].iter().enumerate() {
            let row = bt([&cols[0][i], &cols[1][i], &cols[2][i], &cols[3][i]]);
            for (j, val) in row.iter().enumerate() {
                let o = ((i * 4 + j) * tiles + t) * c + c0;
                v[o..o + n].copy_from_slice(&val[..n]);
            }
        }
        c0 += n;
    }
}

/// `Y = At m A` for one tile: the 2x2 outputs of `k` channels from the 16
/// products `m[i]`, written where `dst[dy][dx]` is given.
#[inline(always)]
fn transform_output(m: [&[f32]; 16], k: usize, dst: [[Option<&mut [f32]>; 2]; 2]) {
    let mut dst = dst;
    let mut k0 = 0;
    while k0 < k {
        let n = LANES.min(k - k0);
        let e: [Lane; 16] = std::array::from_fn(|i| load(m[i], k0, n));
        // At m: two rows of four.
        let s0: [Lane; 4] = std::array::from_fn(|j| {
            zip(&zip(&e[j], &e[4 + j], |a, b| a + b), &e[8 + j], |a, b| {
                a + b
            })
        });
        let s1: [Lane; 4] = std::array::from_fn(|j| {
            zip(
                &zip(&e[4 + j], &e[8 + j], |a, b| a - b),
                &e[12 + j],
                |a, b| a - b,
            )
        });
        for (dy, s) in [s0, s1].iter().enumerate() {
            let y0 = zip(&zip(&s[0], &s[1], |a, b| a + b), &s[2], |a, b| a + b);
            let y1 = zip(&zip(&s[1], &s[2], |a, b| a - b), &s[3], |a, b| a - b);
            for (dx, y) in [y0, y1].iter().enumerate() {
                if let Some(d) = dst[dy][dx].as_deref_mut() {
                    d[k0..k0 + n].copy_from_slice(&y[..n]);
                }
            }
        }
        k0 += n;
    }
}

/// Winograd F(2x2, 3x3) convolution: `y[n*oh*ow, cout] = conv(x, f)`, then
/// `epilogue` on each job's output rows. `g` must be [`eligible`].
pub fn conv2d(
    x: &[f32],
    f: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Result<()> {
    let (c, k) = (g.cin, g.cout);
    let (th, tw) = (g.oh.div_ceil(2), g.ow.div_ceil(2));
    let u = transform_filter(f, c, k);
    // Jobs: runs of consecutive tile rows over the whole batch (image after
    // image), about `tiles_per_job` tiles each, at least one per thread. A job's
    // output rows are consecutive rows of the output matrix.
    let threads = rayon::current_num_threads().max(1);
    let all_rows = g.n * th;
    let per_job = (tiles_per_job(g) / tw)
        .max(1)
        .min(all_rows.div_ceil(threads))
        .max(1);
    let out_rows_of = |gr: usize| {
        let ty = gr % th;
        (2 * ty + 2).min(g.oh) - 2 * ty
    };
    let mut jobs: Vec<(usize, usize, &mut [f32])> = Vec::new();
    let mut rest: &mut [f32] = y;
    let mut gr = 0;
    while gr < all_rows {
        let n_rows = per_job.min(all_rows - gr);
        let out_rows: usize = (gr..gr + n_rows).map(out_rows_of).sum();
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(out_rows * g.ow * k);
        jobs.push((gr, n_rows, mine));
        rest = tail;
        gr += n_rows;
    }
    let zeros = vec![0f32; c];
    jobs.into_par_iter().try_for_each_init(
        || (Vec::<f32>::new(), Vec::<f32>::new()),
        |(v, m), (gr0, n_rows, out)| {
            let tiles = n_rows * tw;
            v.resize(16 * tiles * c, 0.0);
            m.resize(16 * tiles * k, 0.0);
            let inputs = |v: &mut [f32]| {
                for r in 0..n_rows {
                    let (img, ty) = ((gr0 + r) / th, (gr0 + r) % th);
                    for tx in 0..tw {
                        transform_input(x, g, img, ty, tx, r * tw + tx, tiles, v, &zeros);
                    }
                }
            };
            on_widest_simd(v.as_mut_slice(), inputs);
            for i in 0..16 {
                // SAFETY: v[i] is tiles x c, u[i] is c x k, m[i] is
                // tiles x k, all row-major inside their buffers; m
                // aliases neither.
                unsafe {
                    gemm_rows(
                        tiles,
                        k,
                        c,
                        (m.as_mut_ptr().add(i * tiles * k), k),
                        (v.as_ptr().add(i * tiles * c), c),
                        (u.as_ptr().add(i * c * k), k),
                        1,
                    );
                }
            }
            // Y = At M A into the job's output rows, tile row by tile row.
            let outputs = |out: &mut [f32]| {
                let mut rest = out;
                for r in 0..n_rows {
                    let two = out_rows_of(gr0 + r) == 2;
                    let (rows, tail) =
                        std::mem::take(&mut rest).split_at_mut(if two { 2 } else { 1 } * g.ow * k);
                    rest = tail;
                    let (row_a, row_b) = rows.split_at_mut(g.ow * k);
                    let mut a_pixels = row_a.chunks_mut(k);
                    let mut b_pixels = row_b.chunks_mut(k);
                    for tx in 0..tw {
                        let t = r * tw + tx;
                        let ms: [&[f32]; 16] = std::array::from_fn(|i| {
                            &m[(i * tiles + t) * k..(i * tiles + t + 1) * k]
                        });
                        let right = 2 * tx + 1 < g.ow;
                        let dst = [
                            [a_pixels.next(), if right { a_pixels.next() } else { None }],
                            [b_pixels.next(), if right { b_pixels.next() } else { None }],
                        ];
                        transform_output(ms, k, dst);
                    }
                }
            };
            on_widest_simd(&mut *out, outputs);
            let row0 = {
                let (img, ty) = (gr0 / th, gr0 % th);
                (img * g.oh + 2 * ty) * g.ow
            };
            run_epilogue(epilogue, row0, out)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::conv::{conv2d_geometry, ConvPass, DataFormat, Padding, WindowAttrs};

    /// Direct convolution in float64 (the reference).
    fn reference(x: &[f32], f: &[f32], g: &ConvGeom) -> Vec<f64> {
        let mut y = vec![0f64; g.n * g.oh * g.ow * g.cout];
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for a in 0..3 {
                        for b in 0..3 {
                            let (iy, ix) = (
                                (oy + a) as isize - g.pad_top as isize,
                                (ox + b) as isize - g.pad_left as isize,
                            );
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let xi = ((n * g.h + iy as usize) * g.w + ix as usize) * g.cin;
                            for c in 0..g.cin {
                                let xv = x[xi + c] as f64;
                                let fi = ((a * 3 + b) * g.cin + c) * g.cout;
                                let yi = ((n * g.oh + oy) * g.ow + ox) * g.cout;
                                for k in 0..g.cout {
                                    y[yi + k] += xv * f[fi + k] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Max error relative to the largest reference value.
    fn rel_err(y: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
        y.iter()
            .zip(want)
            .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()))
            / scale
    }

    #[test]
    fn matches_a_float64_direct_convolution() {
        let seed: u64 = std::env::var("TFA_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(11);
        let cases: &[(usize, usize, usize, usize, usize, &str)] = &[
            // n, h, w, cin, cout, padding
            (1, 2, 2, 16, 16, "SAME"),
            (2, 7, 5, 17, 33, "SAME"),
            (1, 9, 11, 32, 20, "VALID"),
            (3, 6, 6, 64, 64, "SAME"),
            (1, 4, 13, 16, 70, "EXPLICIT"),
            (2, 14, 14, 48, 40, "SAME"),
        ];
        let mut worst = 0f64;
        for (case, &(n, h, w, cin, cout, pad)) in cases.iter().enumerate() {
            let explicit = [0, 0, 2, 0, 0, 1, 0, 0];
            let a = WindowAttrs {
                strides: &[1, 1, 1, 1],
                dilations: &[1, 1, 1, 1],
                padding: Padding::parse(pad).unwrap(),
                explicit_paddings: if pad == "EXPLICIT" { &explicit } else { &[] },
                data_format: DataFormat::Nhwc,
            };
            let g = conv2d_geometry(&[n, h, w, cin], &[3, 3, cin, cout], &a, ConvPass::Forward)
                .unwrap();
            let x = data(n * h * w * cin, seed + case as u64);
            let f = data(9 * cin * cout, seed + 100 + case as u64);
            let want = reference(&x, &f, &g);
            let mut y = vec![f32::NAN; want.len()];
            conv2d(&x, &f, &mut y, &g, None).unwrap();
            let mut direct = vec![0f32; want.len()];
            crate::host::conv::conv2d_nhwc(&x, &f, &mut direct, &g);
            let (ew, ed) = (rel_err(&y, &want), rel_err(&direct, &want));
            // Float32 rounding of the transforms' extra additions: within a
            // few times the direct convolution's own error.
            assert!(
                ew < 2e-6 && ew < 8.0 * ed.max(1e-7),
                "seed {seed} case {case}: winograd {ew:e}, direct {ed:e}"
            );
            worst = worst.max(ew);
        }
        println!("worst relative error vs float64: {worst:e}");
    }

    #[test]
    fn epilogue_sees_every_output_row_once() {
        use std::sync::Mutex;
        let a = WindowAttrs {
            strides: &[1, 1, 1, 1],
            dilations: &[1, 1, 1, 1],
            padding: Padding::Same,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let g = conv2d_geometry(&[2, 7, 9, 16], &[3, 3, 16, 16], &a, ConvPass::Forward).unwrap();
        let x = data(2 * 7 * 9 * 16, 1);
        let f = data(9 * 16 * 16, 2);
        let seen = Mutex::new(vec![0u32; g.n * g.oh * g.ow]);
        let e = |row0: usize, rows: &mut [u8]| -> Result<()> {
            let n = rows.len() / (4 * g.cout);
            for r in row0..row0 + n {
                seen.lock().unwrap()[r] += 1;
            }
            Ok(())
        };
        let mut y = vec![0f32; g.n * g.oh * g.ow * g.cout];
        conv2d(&x, &f, &mut y, &g, Some(&e)).unwrap();
        assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
    }
}
