//! Conv2D filter gradient by Winograd's method, for float32 3x3 stride-1
//! undilated ungrouped convolutions: F(4x4, 3x3) transposed. The forward
//! transform computes `y = At [(G g) ⊙ (Bt d)]`; differentiating
//! `Σ_i e_i y_i` by the taps `g` gives the filter gradient of one tile as
//! `dW = Gt [(A e) ⊙ (Bt d)]` (in 2-D, `Gt [(A e At) ⊙ (Bt d B)] G`), with
//! `d` the 6x6 input patch under a 4x4 tile `e` of `dy`. Summed over all
//! tiles, the elementwise products are 36 GEMMs `M[p] (cin x cout) +=
//! V[p]^T · E[p]` whose depth is the tile count, and `Gt M G` runs once per
//! call: 36 multiply-adds per tile and channel pair in place of the 144 of
//! im2col + GEMM (4x fewer; 3x on 7x7 and 14x14 maps, whose edge tiles are
//! partly empty). Hand-written for the same reason as the forward transforms
//! (`host::winograd`, whose input transform and helpers this reuses): no
//! crate does them.

use super::super::winograd::{
    is_plain_3x3, lin, load, row_tasks, store, transform_input, two_d, with_buffer, zip, Lane, F4,
    FILTER_BUF, JOB_BUF, JOB_BYTES, LANES,
};
use super::gemm_acc;
use crate::host::conv::ConvGeom;
use crate::host::on_widest_simd;
use rayon::prelude::*;

/// Transform points per tile (6 x 6).
const POINTS: usize = 36;

/// Fewest tiles worth a part of their own: a part sums into its own
/// `36 x cin x cout` products, all added at the end (at batch 32, ResNet50's
/// 7x7x512 layer has 128 tiles and keeps one part, its GEMMs threaded).
const MIN_PART_TILES: usize = 256;

/// Fewest tiles per pass of the 36 GEMMs (their depth): fewer would reread
/// and rewrite the products more often than they multiply.
const MIN_CHUNK_TILES: usize = 128;

/// Whether [`filter_grad`] takes `g`: a plain 3x3 convolution of 32
/// channels or more in and out (with fewer, the transforms cost what the
/// GEMMs save) whose tiles need at most 0.8x the products of im2col + GEMM.
pub(in crate::host) fn takes(g: &ConvGeom) -> bool {
    let tiles = g.n * g.oh.div_ceil(4) * g.ow.div_ceil(4);
    is_plain_3x3(g)
        && g.cin >= 32
        && g.cout >= 32
        && tiles > 0
        && 5 * POINTS * tiles <= 4 * 9 * g.n * g.oh * g.ow
}

/// `df` (HWIO `[3, 3, cin, cout]`) from NHWC `x` and `dy`; false (nothing
/// written) when `g` is not one [`takes`] takes.
pub(in crate::host) fn filter_grad(x: &[f32], dy: &[f32], df: &mut [f32], g: &ConvGeom) -> bool {
    if !takes(g) {
        return false;
    }
    let tiles = g.n * g.oh.div_ceil(4) * g.ow.div_ceil(4);
    let sums_len = POINTS * g.cin * g.cout;
    let threads = rayon::current_num_threads().max(1);
    let parts = (tiles / MIN_PART_TILES).clamp(1, threads);
    with_buffer(&FILTER_BUF, parts * sums_len, |sums| {
        sums.par_chunks_mut(sums_len)
            .enumerate()
            .for_each(|(p, acc)| {
                let range = p * tiles / parts..(p + 1) * tiles / parts;
                accumulate(x, dy, g, range, acc, (threads / parts).max(1));
            });
        transform_sums(sums, parts, g.cin, g.cout, df);
    });
    true
}

/// Overwrites `acc` (`M[p]`, 36 x cin x cout) with the transformed products
/// summed over tiles `range` (tile `t`: image `t / (th*tw)`, then row-major),
/// a chunk of tiles at a time, on `threads`.
fn accumulate(
    x: &[f32],
    dy: &[f32],
    g: &ConvGeom,
    range: std::ops::Range<usize>,
    acc: &mut [f32],
    threads: usize,
) {
    let (cin, cout) = (g.cin, g.cout);
    let (th, tw) = (g.oh.div_ceil(4), g.ow.div_ceil(4));
    let chunk = (JOB_BYTES / (POINTS * 4 * (cin + cout))).max(MIN_CHUNK_TILES);
    let chunk = chunk.min(range.len());
    let locate = |t: usize| (t / (th * tw), t % (th * tw) / tw, t % tw);
    let zeros = vec![0f32; cin.max(cout)];
    with_buffer(&JOB_BUF, POINTS * chunk * (cin + cout), |buf| {
        let mut t0 = range.start;
        while t0 < range.end {
            let r = chunk.min(range.end - t0);
            let (v, e) = buf[..POINTS * r * (cin + cout)].split_at_mut(POINTS * r * cin);
            let inputs = |v: &mut [f32]| {
                on_widest_simd(v, |v| {
                    for t in 0..r {
                        let (img, ty, tx) = locate(t0 + t);
                        transform_input::<F4, 6, 4>(x, g, img, ty, tx, t, r, v, &zeros);
                    }
                })
            };
            let grads = |e: &mut [f32]| {
                on_widest_simd(e, |e| {
                    for t in 0..r {
                        let (img, ty, tx) = locate(t0 + t);
                        transform_dy(dy, g, img, ty, tx, t, r, e, &zeros);
                    }
                })
            };
            if threads > 1 {
                rayon::join(|| inputs(v), || grads(e));
            } else {
                inputs(v);
                grads(e);
            }
            for p in 0..POINTS {
                // SAFETY: V[p] is r x cin and E[p] r x cout, row-major in
                // `buf`; M[p] is cin x cout in `acc`, which aliases neither.
                unsafe {
                    gemm_acc(
                        cin,
                        cout,
                        r,
                        acc.as_mut_ptr().add(p * cin * cout),
                        cout,
                        t0 != range.start,
                        v.as_ptr().add(p * r * cin),
                        (1, cin),
                        e.as_ptr().add(p * r * cout),
                        (cout, 1),
                        threads,
                    );
                }
            }
            t0 += r;
        }
    });
}

/// `A e`: the 6 transform points of a column of 4 `dy` values (At of
/// F(4x4, 3x3) transposed; the points 0, ±1, ±2 and infinity).
#[inline(always)]
fn dy_points(y: &[Lane; 4]) -> [Lane; 6] {
    let (even, odd) = (lin(&y[0], 1.0, &y[2]), lin(&y[1], 1.0, &y[3]));
    let (c, d) = (lin(&y[0], 4.0, &y[2]), lin(&y[1], 4.0, &y[3]));
    [
        y[0],
        lin(&even, 1.0, &odd),
        lin(&even, -1.0, &odd),
        lin(&c, 2.0, &d),
        lin(&c, -2.0, &d),
        y[3],
    ]
}

/// `Gt m`: the 3 filter taps of a column of 6 summed products.
#[inline(always)]
fn taps(m: &[Lane; 6]) -> [Lane; 3] {
    let (s12, d21) = (lin(&m[1], 1.0, &m[2]), lin(&m[2], -1.0, &m[1]));
    let (s34, d34) = (lin(&m[3], 1.0, &m[4]), lin(&m[3], -1.0, &m[4]));
    let (sixth, twelfth) = (1.0 / 6.0, 1.0 / 12.0);
    [
        lin(
            &zip(&m[0], &s12, |a, b| 0.25 * a - sixth * b),
            1.0 / 24.0,
            &s34,
        ),
        zip(&d21, &d34, |a, b| sixth * a + twelfth * b),
        lin(&lin(&m[5], -sixth, &s12), sixth, &s34),
    ]
}

/// Transforms tile `(ty, tx)` of image `img` of `dy` (`A e At`, zeros past
/// the output's edge) into `e[(i * tiles + t) * cout..]` for the 36 points i.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn transform_dy(
    dy: &[f32],
    g: &ConvGeom,
    img: usize,
    ty: usize,
    tx: usize,
    t: usize,
    tiles: usize,
    e: &mut [f32],
    zeros: &[f32],
) {
    let k = g.cout;
    let mut rows: [[&[f32]; 4]; 4] = [[zeros; 4]; 4];
    for (i, row) in rows.iter_mut().enumerate() {
        for (j, p) in row.iter_mut().enumerate() {
            let (oy, ox) = (4 * ty + i, 4 * tx + j);
            if oy < g.oh && ox < g.ow {
                let o = ((img * g.oh + oy) * g.ow + ox) * k;
                *p = &dy[o..o + k];
            }
        }
    }
    let mut k0 = 0;
    let mut y = [[[0f32; LANES]; 4]; 4];
    while k0 < k {
        let n = LANES.min(k - k0);
        for (yr, pr) in y.iter_mut().zip(&rows) {
            for (l, p) in yr.iter_mut().zip(pr) {
                *l = load(p, k0, n);
            }
        }
        for (i, row) in two_d(&y, dy_points).iter().enumerate() {
            for (j, val) in row.iter().enumerate() {
                store(e, ((i * 6 + j) * tiles + t) * k + k0, val, n);
            }
        }
        k0 += n;
    }
}

/// `df = Gt (Σ parts M) G` per (input, output) channel pair, vectorised over
/// output channels; tasks of a few input channels write their rows of the 9
/// taps.
fn transform_sums(sums: &[f32], parts: usize, cin: usize, cout: usize, df: &mut [f32]) {
    let plane = cin * cout;
    if plane == 0 {
        return;
    }
    let rows = cin.div_ceil(4 * rayon::current_num_threads().max(1));
    row_tasks(df, plane, cout, cin, rows)
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut dst)| {
            let c0 = task * rows;
            on_widest_simd(&mut dst, |dst| {
                for c in c0..c0 + dst[0].len() / cout {
                    let mut k0 = 0;
                    while k0 < cout {
                        let n = LANES.min(cout - k0);
                        let mut m = [[[0f32; LANES]; 6]; 6];
                        for (i, row) in m.iter_mut().enumerate() {
                            for (j, l) in row.iter_mut().enumerate() {
                                let at = (i * 6 + j) * plane + c * cout + k0;
                                for part in 0..parts {
                                    let s = load(sums, part * POINTS * plane + at, n);
                                    *l = lin(l, 1.0, &s);
                                }
                            }
                        }
                        for (ky, row) in two_d(&m, taps).iter().enumerate() {
                            for (kx, w) in row.iter().enumerate() {
                                store(dst[ky * 3 + kx], (c - c0) * cout + k0, w, n);
                            }
                        }
                        k0 += n;
                    }
                }
            });
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::conv::{conv2d_geometry, ConvPass, DataFormat, Padding, WindowAttrs};
    use crate::host::winograd::tests::{data, for_each_tap, geometry_3x3, rel_err, test_seed};

    /// The filter gradient summed in `T` in the order of the direct
    /// convolution (float64: the reference).
    fn reference<T>(x: &[f32], dy: &[f32], g: &ConvGeom) -> Vec<T>
    where
        T: From<f32> + Copy + std::ops::AddAssign + std::ops::Mul<Output = T>,
    {
        let mut df = vec![T::from(0.0); 9 * g.cin * g.cout];
        for_each_tap(g, |pixel, tap, xi| {
            let d = &dy[pixel * g.cout..][..g.cout];
            for c in 0..g.cin {
                let xv = T::from(x[xi + c]);
                let row = &mut df[(tap * g.cin + c) * g.cout..];
                for (w, &dv) in row.iter_mut().zip(d) {
                    *w += xv * T::from(dv);
                }
            }
        });
        df
    }

    #[test]
    fn matches_a_float64_filter_gradient() {
        let seed = test_seed(5);
        let cases: &[(usize, usize, usize, usize, usize, &str)] = &[
            // n, h, w, cin, cout, padding: whole and partial edge tiles, one
            // and several parts, chunks of tiles and a last short one,
            // channel counts off the 16-lane grid.
            (1, 5, 5, 32, 32, "VALID"),
            (2, 7, 5, 33, 40, "SAME"),
            (1, 9, 11, 32, 48, "VALID"),
            (3, 8, 8, 64, 64, "SAME"),
            (1, 6, 13, 40, 70, "EXPLICIT"),
            (40, 14, 14, 32, 32, "SAME"),
            (9, 17, 30, 48, 35, "SAME"),
        ];
        let (mut worst, mut ratio) = (0f64, 0f64);
        for (case, &(n, h, w, cin, cout, pad)) in cases.iter().enumerate() {
            let g = geometry_3x3(n, h, w, cin, cout, pad);
            assert!(takes(&g), "case {case}");
            let x = data(n * h * w * cin, seed + case as u64);
            let dy = data(n * g.oh * g.ow * cout, seed + 100 + case as u64);
            let want = reference::<f64>(&x, &dy, &g);
            let direct = rel_err(&reference::<f32>(&x, &dy, &g), &want).max(1e-7);
            let mut df = vec![f32::NAN; want.len()];
            assert!(filter_grad(&x, &dy, &mut df, &g));
            let err = rel_err(&df, &want);
            // Float32 rounding in the transforms (factors up to 8, as the
            // forward F(4x4)'s) and of the sums over the tiles: measured up
            // to 1.6e-5, 13.4x the direct float32 sums' error, over 60 seeds.
            assert!(
                err < 3e-5 && err < 25.0 * direct,
                "seed {seed} case {case}: {err:e}, direct float32 sums {direct:e}"
            );
            worst = worst.max(err);
            ratio = ratio.max(err / direct);
        }
        println!("worst relative error vs float64: {worst:e} ({ratio:.1}x direct float32 sums)");
    }

    #[test]
    fn takes_3x3_stride_1_layers_of_32_channels_or_more() {
        let attrs = |strides: &'static [i64]| WindowAttrs {
            strides,
            dilations: &[1, 1, 1, 1],
            padding: Padding::Same,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let geom = |n, hw, cin, cout, k, strides| {
            conv2d_geometry(
                &[n, hw, hw, cin],
                &[k, k, cin, cout],
                &attrs(strides),
                ConvPass::Forward,
            )
            .unwrap()
        };
        let s1: &'static [i64] = &[1, 1, 1, 1];
        assert!(takes(&geom(32, 56, 64, 64, 3, s1)));
        assert!(takes(&geom(1, 7, 512, 512, 3, s1)));
        assert!(takes(&geom(2, 3, 32, 32, 3, s1)));
        assert!(
            !takes(&geom(2, 2, 64, 64, 3, s1)),
            "one tile per 2x2 output: no gain"
        );
        assert!(
            !takes(&geom(8, 28, 16, 64, 3, s1)),
            "too few input channels"
        );
        assert!(
            !takes(&geom(8, 28, 64, 16, 3, s1)),
            "too few output channels"
        );
        assert!(!takes(&geom(8, 28, 64, 64, 3, &[1, 2, 2, 1])), "strided");
        assert!(!takes(&geom(8, 28, 64, 64, 1, s1)), "pointwise");
    }
}
