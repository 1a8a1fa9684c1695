//! Winograd convolution for float32 NHWC 3x3 stride-1 layers, in two sizes:
//! F(2x2, 3x3) costs 16 multiplications per (input, output) channel pair for
//! each 2x2 block of outputs instead of 36 (2.25x less GEMM work), F(4x4,
//! 3x3) 36 for each 4x4 block instead of 144 (4x less), with half the
//! transformed data per output. Hand-written because no crate does
//! convolution transforms.
//!
//! Per job (a few rows of output tiles of one image): the A x A input
//! patches (A = 4 or 6) are transformed (`V = Bt d B`, vectorised over
//! channels), A² GEMMs `M[i] = V[i] @ U[i]` multiply them by the
//! transformed filter (`U = G g Gt`, computed once per call), and
//! `Y = At M A` writes the outputs; the job's output rows, whole rows of
//! the `[n*oh*ow, cout]` matrix, then go through the caller's epilogue
//! while in cache. The transforms are short sums with small constant
//! factors, so the result differs from the direct convolution by float32
//! rounding of those (F(4x4) uses the points 0, ±1, ±2: its factors up to
//! 8 give a few times F(2x2)'s error): measured against a float64
//! reference in the tests below.

use super::conv::{gemm_rows, run_epilogue, ConvGeom, RowsEpilogue};
use super::on_widest_simd;
use products::PANEL;
use rayon::prelude::*;
use std::cell::RefCell;
use tfa_core::{Error, Result};

pub(crate) mod products;

/// Bytes of one job's transformed inputs and products (A² x tiles x
/// (cin + cout) floats), and the fewest tiles a job holds: where the gemm
/// crate runs them (no AVX-512, or output channels not in whole panels of
/// 64), each of a job's A² GEMMs repacks its transformed filter, which only
/// pays over enough rows
/// (measured at batch 32 on ResNet50 shapes: jobs of 1 MiB, 12-30 tiles
/// with 256-512 channels, ran 1.2-1.5x slower than jobs of 8 MiB or 64
/// tiles; their footprint beyond L2 cost less).
pub(super) const JOB_BYTES: usize = 8 << 20;
const JOB_MIN_TILES: usize = 64;

/// Transforming and repacking one filter element (per call: the filter is
/// a variable) costs about as much as this many GEMM multiply-adds
/// (measured on 2 cores: a 512 x 512 filter's F(4x4) transform, 9.4 M
/// elements, took 12 ms at batch 1 on a 7x7 map where the GEMMs did 38 M
/// multiply-adds in about 1 ms).
const FILTER_COST: usize = 50;

/// The output tile size, 2 for F(2x2, 3x3) or 4 for F(4x4, 3x3), of the
/// cheapest way to run `g`, or None when that is the direct convolution or
/// `g` is not a plain 3x3 stride-1 convolution of 64 channels or more in
/// and out (with fewer, the input and output transforms cost what the GEMMs
/// save). Per (input, output) channel pair, Winograd costs
/// `A² * (FILTER_COST + tiles)` multiply-adds and the direct convolution 9
/// per output pixel;
/// this picked the fastest of the three on every ResNet50 3x3 layer at
/// batch 1, 4, 8 and 32 (2 cores; e.g. 7x7x512: direct up to batch 4, F(2x2)
/// at 8, F(4x4) at 32; 28x28x128: F(4x4) from batch 1).
fn tile_size(g: &ConvGeom) -> Option<usize> {
    if !(is_plain_3x3(g) && g.cin >= 64 && g.cout >= 64 && g.oh >= 2 && g.ow >= 2) {
        return None;
    }
    let cost = |m: usize| {
        let tiles = g.n * g.oh.div_ceil(m) * g.ow.div_ceil(m);
        (m + 2) * (m + 2) * (FILTER_COST + tiles)
    };
    let direct = 9 * g.n * g.oh * g.ow;
    let (f2, f4) = (cost(2), cost(4));
    (f2.min(f4) < direct).then_some(if f4 < f2 { 4 } else { 2 })
}

/// Channels handled together: plain arrays the compiler keeps in vector
/// registers.
pub(super) const LANES: usize = 16;
pub(super) type Lane = [f32; LANES];

/// `n <= LANES` values from `s[at..]`, zero-padded. (Whole lanes take a
/// fixed-length copy: one of variable length is a `memcpy` call.)
#[inline(always)]
pub(super) fn load(s: &[f32], at: usize, n: usize) -> Lane {
    let mut l = [0f32; LANES];
    if n == LANES {
        l.copy_from_slice(&s[at..at + LANES]);
    } else {
        l[..n].copy_from_slice(&s[at..at + n]);
    }
    l
}

/// A 3x3 stride-1 undilated ungrouped convolution: the shapes Winograd's
/// transforms compute.
pub(super) fn is_plain_3x3(g: &ConvGeom) -> bool {
    g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1
}

/// The three ways a float32 3x3 stride-1 convolution can run, for
/// benchmarks that re-measure the cost rule on another CPU
/// (`examples/winograd_bench.rs`): [`chosen_way`] is what [`conv2d`] and
/// the engine use, [`conv2d_by`] runs the one asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Direct,
    F2,
    F4,
}

/// The way the cost rule ([`tile_size`]) picks for `g`.
pub fn chosen_way(g: &ConvGeom) -> Way {
    match tile_size(g) {
        Some(4) => Way::F4,
        Some(_) => Way::F2,
        None => Way::Direct,
    }
}

/// `y[n*oh*ow, cout] = conv(x, f)` (NHWC, HWIO) the way `way` says,
/// whatever the cost rule would pick; Winograd needs a 3x3 stride-1
/// undilated ungrouped `g`.
pub fn conv2d_by(way: Way, x: &[f32], f: &[f32], y: &mut [f32], g: &ConvGeom) -> Result<()> {
    if way != Way::Direct && !(is_plain_3x3(g) && g.oh >= 1 && g.ow >= 1) {
        return Err(Error::InvalidArgument(format!(
            "Winograd {way:?} needs a 3x3 stride-1 undilated ungrouped convolution"
        )));
    }
    let sizes = [
        g.n * g.h * g.w * g.cin,
        g.kh * g.kw * (g.cin / g.groups.max(1)) * g.cout,
        g.n * g.oh * g.ow * g.cout,
    ];
    if [x.len(), f.len(), y.len()] != sizes {
        return Err(Error::InvalidArgument(format!(
            "conv2d_by: input, filter, output hold {:?} elements, the geometry needs {sizes:?}",
            [x.len(), f.len(), y.len()]
        )));
    }
    match way {
        Way::Direct => {
            super::conv::conv2d_nhwc_direct(x, f, y, g);
            Ok(())
        }
        Way::F2 => conv2d_with::<F2, 4, 2>(x, f, y, g, None),
        Way::F4 => conv2d_with::<F4, 6, 4>(x, f, y, g, None),
    }
}

/// The first `n <= LANES` values of `l` into `d[at..]`.
#[inline(always)]
pub(super) fn store(d: &mut [f32], at: usize, l: &Lane, n: usize) {
    if n == LANES {
        d[at..at + LANES].copy_from_slice(l);
    } else {
        d[at..at + n].copy_from_slice(&l[..n]);
    }
}

#[inline(always)]
pub(super) fn zip(a: &Lane, b: &Lane, f: impl Fn(f32, f32) -> f32) -> Lane {
    std::array::from_fn(|i| f(a[i], b[i]))
}

/// `a + s * b`, lane by lane: the step every transform is made of.
#[inline(always)]
pub(super) fn lin(a: &Lane, s: f32, b: &Lane) -> Lane {
    zip(a, b, |p, q| p + s * q)
}

/// One Winograd size, F(M x M, 3x3) on A x A patches (A = M + 2), as its
/// three 1-D transforms; each 2-D transform applies one down every column,
/// then along every row ([`two_d`]).
pub(super) trait Scheme<const A: usize, const M: usize> {
    /// `Bt` on a column of A inputs.
    fn input(d: &[Lane; A]) -> [Lane; A];
    /// `At` on a column of A products: M outputs.
    fn output(m: &[Lane; A]) -> [Lane; M];
    /// `G` on a column of 3 filter taps.
    fn filter(g: &[Lane; 3]) -> [Lane; A];
}

/// F(2x2, 3x3).
struct F2;

impl Scheme<4, 2> for F2 {
    #[inline(always)]
    fn input(d: &[Lane; 4]) -> [Lane; 4] {
        [
            zip(&d[0], &d[2], |a, b| a - b),
            zip(&d[1], &d[2], |a, b| a + b),
            zip(&d[2], &d[1], |a, b| a - b),
            zip(&d[1], &d[3], |a, b| a - b),
        ]
    }

    #[inline(always)]
    fn output(m: &[Lane; 4]) -> [Lane; 2] {
        [
            zip(&zip(&m[0], &m[1], |a, b| a + b), &m[2], |a, b| a + b),
            zip(&zip(&m[1], &m[2], |a, b| a - b), &m[3], |a, b| a - b),
        ]
    }

    #[inline(always)]
    fn filter(g: &[Lane; 3]) -> [Lane; 4] {
        let half = |s: f32| zip(&lin(&g[0], s, &g[1]), &g[2], |p, q| 0.5 * (p + q));
        [g[0], half(1.0), half(-1.0), g[2]]
    }
}

/// F(4x4, 3x3) with the points 0, ±1, ±2 (Lavin and Gray's matrices).
pub(super) struct F4;

impl Scheme<6, 4> for F4 {
    #[inline(always)]
    fn input(d: &[Lane; 6]) -> [Lane; 6] {
        let (d42, d43p, d43m) = (
            lin(&d[4], -1.0, &d[2]),
            lin(&d[4], 1.0, &d[3]),
            lin(&d[4], -1.0, &d[3]),
        );
        let (d12p, d12m, d31) = (
            lin(&d[1], 1.0, &d[2]),
            lin(&d[1], -1.0, &d[2]),
            lin(&d[3], -1.0, &d[1]),
        );
        [
            lin(&lin(&d[4], 4.0, &d[0]), -5.0, &d[2]),
            lin(&d43p, -4.0, &d12p),
            lin(&d43m, 4.0, &d12m),
            lin(&d42, 2.0, &d31),
            lin(&d42, -2.0, &d31),
            lin(&lin(&d[5], 4.0, &d[1]), -5.0, &d[3]),
        ]
    }

    #[inline(always)]
    fn output(m: &[Lane; 6]) -> [Lane; 4] {
        let (a, b) = (lin(&m[1], 1.0, &m[2]), lin(&m[1], -1.0, &m[2]));
        let (c, d) = (lin(&m[3], 1.0, &m[4]), lin(&m[3], -1.0, &m[4]));
        [
            lin(&lin(&m[0], 1.0, &a), 1.0, &c),
            lin(&b, 2.0, &d),
            lin(&a, 4.0, &c),
            lin(&lin(&b, 8.0, &d), 1.0, &m[5]),
        ]
    }

    #[inline(always)]
    fn filter(g: &[Lane; 3]) -> [Lane; 6] {
        let comb = |a: f32, b: f32, c: f32| {
            let mut l = [0f32; LANES];
            for (i, v) in l.iter_mut().enumerate() {
                *v = a * g[0][i] + b * g[1][i] + c * g[2][i];
            }
            l
        };
        [
            comb(0.25, 0.0, 0.0),
            comb(-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0),
            comb(-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0),
            comb(1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0),
            comb(1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0),
            g[2],
        ]
    }
}

/// A 1-D transform `t` down every column of `e`, then along every row.
/// (Plain loops over fixed-size arrays: built with nested
/// `std::array::from_fn`, these were copied through `memmove` calls.)
#[inline(always)]
pub(super) fn two_d<const I: usize, const O: usize>(
    e: &[[Lane; I]; I],
    t: impl Fn(&[Lane; I]) -> [Lane; O],
) -> [[Lane; O]; O] {
    let mut cols = [[[0f32; LANES]; O]; I];
    let mut line = [[0f32; LANES]; I];
    for (j, col) in cols.iter_mut().enumerate() {
        for (l, row) in line.iter_mut().zip(e) {
            *l = row[j];
        }
        *col = t(&line);
    }
    let mut out = [[[0f32; LANES]; O]; O];
    for (r, o) in out.iter_mut().enumerate() {
        for (l, col) in line.iter_mut().zip(&cols) {
            *l = col[r];
        }
        *o = t(&line);
    }
    out
}

thread_local! {
    /// This thread's transformed filter and job buffers, kept between calls:
    /// fresh ones of several MiB cost a page fault per 4 KiB on first touch
    /// (measured: allocating and touching 37.7 MB, a 512 x 512 F(4x4)
    /// filter, took 16-18 ms, the transform itself 3-5 ms).
    pub(super) static FILTER_BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    pub(super) static JOB_BUF: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Largest buffer kept between calls (64 MiB: a 512 x 512 F(4x4) filter
/// is 37.7 MB); larger ones are allocated per call rather than held by
/// every thread that ever ran such a layer.
const KEEP_FLOATS: usize = 16 << 20;

/// Runs `f` on `len` floats of this thread's `buf` (stale values: callers
/// overwrite every element they read), or on fresh ones when it is in use:
/// rayon may run another convolution's job on this thread while this one
/// waits on the pool.
pub(super) fn with_buffer<R>(
    buf: &'static std::thread::LocalKey<RefCell<Vec<f32>>>,
    len: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    if len > KEEP_FLOATS {
        return f(&mut vec![0f32; len]);
    }
    buf.with(|b| match b.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, 0.0);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![0f32; len]),
    })
}

/// `U[i][c][k]` (i = A * row + col of the A x A transform) from the HWIO
/// filter, into `u` (A² planes of c_in x k_out): row-major, or `packed` in
/// panels of 64 output channels ([`products::packed_at`]).
fn transform_filter<S: Scheme<A, M>, const A: usize, const M: usize>(
    f: &[f32],
    c_in: usize,
    k_out: usize,
    u: &mut [f32],
    packed: bool,
) {
    let plane = c_in * k_out;
    if plane == 0 {
        return;
    }
    // Tasks of a few input channels each (of one panel when packed: a
    // panel's rows are contiguous); a task writes its part of all A² planes.
    let threads = rayon::current_num_threads().max(1);
    // (width: floats per row of a run, 64 or k_out)
    let (width, rows) = if packed {
        let panels = k_out / PANEL;
        (PANEL, c_in.div_ceil((4 * threads).div_ceil(panels.max(1))))
    } else {
        (k_out, c_in.div_ceil(4 * threads))
    };
    let per_run = c_in.div_ceil(rows);
    let tasks = row_tasks(u, plane, width, c_in, rows);
    tasks.into_par_iter().enumerate().for_each(|(t, mut dst)| {
        let c0 = t % per_run * rows;
        let cols = if packed {
            t / per_run * PANEL..(t / per_run + 1) * PANEL
        } else {
            0..k_out
        };
        on_widest_simd(&mut dst, |dst| {
            for c in c0..c0 + dst[0].len() / width {
                filter_rows::<S, A, M>(f, c, c_in, k_out, cols.clone(), (c - c0) * width, dst);
            }
        });
    });
}

/// Splits `buf`, planes of `plane` floats each made of runs of `c_in` rows
/// of `width` floats, into tasks of up to `rows` rows: task `t` holds, of
/// every plane, rows `t % per_run * rows..` of run `t / per_run`
/// (`per_run = c_in.div_ceil(rows)`). Shared by the transforms that write
/// a few input channels' rows of all their planes per task.
pub(super) fn row_tasks(
    buf: &mut [f32],
    plane: usize,
    width: usize,
    c_in: usize,
    rows: usize,
) -> Vec<Vec<&mut [f32]>> {
    let run = c_in * width;
    let mut planes: Vec<_> = buf
        .chunks_mut(plane)
        .map(|p| {
            p.chunks_mut(run)
                .flat_map(move |r| r.chunks_mut(rows * width))
        })
        .collect();
    (0..plane / run * c_in.div_ceil(rows))
        .map(|_| planes.iter_mut().flat_map(|p| p.next()).collect())
        .collect()
}

/// The A² transformed rows of input channel `c` (output channels `cols`)
/// into `dst[i][at..]`: `U = G g Gt`, vectorised over output channels.
#[inline(always)]
fn filter_rows<S: Scheme<A, M>, const A: usize, const M: usize>(
    f: &[f32],
    c: usize,
    c_in: usize,
    k_out: usize,
    cols: std::ops::Range<usize>,
    at: usize,
    dst: &mut [&mut [f32]],
) {
    let mut k0 = cols.start;
    while k0 < cols.end {
        let n = LANES.min(cols.end - k0);
        // g[a][b]: the filter's tap (a, b) for channel c.
        let mut g = [[[0f32; LANES]; 3]; 3];
        for (a, row) in g.iter_mut().enumerate() {
            for (b, tap) in row.iter_mut().enumerate() {
                *tap = load(f, ((a * 3 + b) * c_in + c) * k_out + k0, n);
            }
        }
        for (r, row) in two_d(&g, S::filter).iter().enumerate() {
            for (col, x) in row.iter().enumerate() {
                store(dst[r * A + col], at + k0 - cols.start, x, n);
            }
        }
        k0 += n;
    }
}

/// Transforms the A x A input patch of tile `(ty, tx)` of image `img` into
/// `v[(i * tiles + t) * c..]` for the A² positions i.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn transform_input<S: Scheme<A, M>, const A: usize, const M: usize>(
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
    let iy0 = (M * ty) as isize - g.pad_top as isize;
    let ix0 = (M * tx) as isize - g.pad_left as isize;
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
    let mut d: [[&[f32]; A]; A] = [[zeros; A]; A];
    for (i, row) in d.iter_mut().enumerate() {
        for (j, p) in row.iter_mut().enumerate() {
            *p = pixel(i, j);
        }
    }
    let mut c0 = 0;
    let mut e = [[[0f32; LANES]; A]; A];
    while c0 < c {
        let n = LANES.min(c - c0);
        for (er, dr) in e.iter_mut().zip(&d) {
            for (l, p) in er.iter_mut().zip(dr) {
                *l = load(p, c0, n);
            }
        }
        for (i, row) in two_d(&e, S::input).iter().enumerate() {
            for (j, val) in row.iter().enumerate() {
                store(v, ((i * A + j) * tiles + t) * c + c0, val, n);
            }
        }
        c0 += n;
    }
}

/// `Y = At m A` for tile `t`: its M x M outputs of `k` channels from the A²
/// products `m[((i * tiles + t) * k..]`, written where `dst[dy][dx]` is
/// given.
#[inline(always)]
fn transform_output<S: Scheme<A, M>, const A: usize, const M: usize>(
    m: &[f32],
    t: usize,
    tiles: usize,
    k: usize,
    dst: &mut [[Option<&mut [f32]>; M]; M],
) {
    let mut k0 = 0;
    while k0 < k {
        let n = LANES.min(k - k0);
        let mut e = [[[0f32; LANES]; A]; A];
        for (i, row) in e.iter_mut().enumerate() {
            for (j, l) in row.iter_mut().enumerate() {
                *l = load(m, ((i * A + j) * tiles + t) * k + k0, n);
            }
        }
        for (dy, row) in two_d(&e, S::output).iter().enumerate() {
            for (dx, y) in row.iter().enumerate() {
                if let Some(d) = dst[dy][dx].as_deref_mut() {
                    store(d, k0, y, n);
                }
            }
        }
        k0 += n;
    }
}

/// Winograd convolution: `y[n*oh*ow, cout] = conv(x, f)`, then `epilogue`
/// on each job's output rows; None (nothing written) when the direct
/// convolution is cheaper for `g` ([`chosen_way`]), for the caller to run.
pub fn conv2d(
    x: &[f32],
    f: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Option<Result<()>> {
    Some(match tile_size(g)? {
        4 => conv2d_with::<F4, 6, 4>(x, f, y, g, epilogue),
        _ => conv2d_with::<F2, 4, 2>(x, f, y, g, epilogue),
    })
}

/// [`conv2d`] with the Winograd size `S`.
fn conv2d_with<S: Scheme<A, M>, const A: usize, const M: usize>(
    x: &[f32],
    f: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Result<()> {
    conv2d_packed::<S, A, M>(x, f, y, g, epilogue, products::packs(g.cout))
}

/// [`conv2d_with`], its products run by [`products::multiply`] (`packed`)
/// or by the gemm crate; tests take the packed way on any CPU
/// ([`products::multiply`] has a plain fallback).
fn conv2d_packed<S: Scheme<A, M>, const A: usize, const M: usize>(
    x: &[f32],
    f: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
    packed: bool,
) -> Result<()> {
    let (c, k) = (g.cin, g.cout);
    with_buffer(&FILTER_BUF, A * A * c * k, |u| {
        transform_filter::<S, A, M>(f, c, k, u, packed);
        run_jobs::<S, A, M>(x, &*u, packed, y, g, epilogue)
    })
}

/// The jobs of [`conv2d_with`], given the transformed filter `u` (packed
/// for [`products::multiply`] or row-major for the gemm crate).
fn run_jobs<S: Scheme<A, M>, const A: usize, const M: usize>(
    x: &[f32],
    u: &[f32],
    packed: bool,
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Result<()> {
    let (c, k) = (g.cin, g.cout);
    let (th, tw) = (g.oh.div_ceil(M), g.ow.div_ceil(M));
    // Jobs: runs of consecutive tile rows over the whole batch (image after
    // image), about as many tiles as fit JOB_BYTES, as many jobs for each
    // thread and the same number of rows in each. A job's output rows are
    // consecutive rows of the output matrix.
    let threads = rayon::current_num_threads().max(1);
    let all_rows = g.n * th;
    let job_tiles = (JOB_BYTES / (A * A * 4 * (c + k))).max(JOB_MIN_TILES);
    let jobs = all_rows.div_ceil(job_tiles.div_ceil(tw)).div_ceil(threads) * threads;
    let per_job = all_rows.div_ceil(jobs);
    let out_rows_of = |gr: usize| {
        let ty = gr % th;
        (M * ty + M).min(g.oh) - M * ty
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
    jobs.into_par_iter().try_for_each(|(gr0, n_rows, out)| {
        let tiles = n_rows * tw;
        with_buffer(&JOB_BUF, A * A * tiles * (c + k), |buf| {
            let (v, m) = buf.split_at_mut(A * A * tiles * c);
            let inputs = |v: &mut [f32]| {
                for r in 0..n_rows {
                    let (img, ty) = ((gr0 + r) / th, (gr0 + r) % th);
                    for tx in 0..tw {
                        let t = r * tw + tx;
                        transform_input::<S, A, M>(x, g, img, ty, tx, t, tiles, v, &zeros);
                    }
                }
            };
            on_widest_simd(&mut *v, inputs);
            if packed {
                products::multiply(A * A, tiles, c, k, v, u, m);
            } else {
                for i in 0..A * A {
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
            }
            // Y = At M A into the job's output rows, tile row by tile row.
            let outputs = |out: &mut [f32]| {
                let mut rest = out;
                for r in 0..n_rows {
                    let here = out_rows_of(gr0 + r);
                    let (rows, tail) = std::mem::take(&mut rest).split_at_mut(here * g.ow * k);
                    rest = tail;
                    let mut pixels: Vec<_> =
                        rows.chunks_mut(g.ow * k).map(|p| p.chunks_mut(k)).collect();
                    for tx in 0..tw {
                        let across = (M * tx + M).min(g.ow) - M * tx;
                        let mut dst: [[Option<&mut [f32]>; M]; M] = std::array::from_fn(|dy| {
                            std::array::from_fn(|dx| {
                                if dy < here && dx < across {
                                    pixels[dy].next()
                                } else {
                                    None
                                }
                            })
                        });
                        transform_output::<S, A, M>(m, r * tw + tx, tiles, k, &mut dst);
                    }
                }
            };
            on_widest_simd(&mut *out, outputs);
            let row0 = {
                let (img, ty) = (gr0 / th, gr0 % th);
                (img * g.oh + M * ty) * g.ow
            };
            run_epilogue(epilogue, row0, out)
        })
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::host::conv::{conv2d_geometry, ConvPass, DataFormat, Padding, WindowAttrs};

    /// Direct convolution in float64 (the reference).
    fn reference(x: &[f32], f: &[f32], g: &ConvGeom) -> Vec<f64> {
        let mut y = vec![0f64; g.n * g.oh * g.ow * g.cout];
        for_each_tap(g, |pixel, tap, xi| {
            for c in 0..g.cin {
                let xv = x[xi + c] as f64;
                let fi = (tap * g.cin + c) * g.cout;
                for k in 0..g.cout {
                    y[pixel * g.cout + k] += xv * f[fi + k] as f64;
                }
            }
        });
        y
    }

    /// Calls `visit(output pixel, tap a * 3 + b, index of its input pixel's
    /// first channel in x)` for every 3x3 tap of every output pixel of `g`
    /// that reads the input (not the padding), in order.
    pub(in crate::host) fn for_each_tap(g: &ConvGeom, mut visit: impl FnMut(usize, usize, usize)) {
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
                            visit((n * g.oh + oy) * g.ow + ox, a * 3 + b, xi);
                        }
                    }
                }
            }
        }
    }

    /// `n` values uniform in [-1, 1) from `seed` (xorshift).
    pub(in crate::host) fn data(n: usize, seed: u64) -> Vec<f32> {
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

    /// `TFA_TEST_SEED`, else `default`.
    pub(in crate::host) fn test_seed(default: u64) -> u64 {
        std::env::var("TFA_TEST_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// A 3x3 stride-1 NHWC convolution of `[n, h, w, cin]` to `cout`
    /// channels; `pad` SAME, VALID or EXPLICIT (2 rows above, 1 column
    /// right).
    pub(in crate::host) fn geometry_3x3(
        n: usize,
        h: usize,
        w: usize,
        cin: usize,
        cout: usize,
        pad: &str,
    ) -> ConvGeom {
        let explicit = [0, 0, 2, 0, 0, 1, 0, 0];
        let a = WindowAttrs {
            strides: &[1, 1, 1, 1],
            dilations: &[1, 1, 1, 1],
            padding: Padding::parse(pad).unwrap(),
            explicit_paddings: if pad == "EXPLICIT" { &explicit } else { &[] },
            data_format: DataFormat::Nhwc,
        };
        conv2d_geometry(&[n, h, w, cin], &[3, 3, cin, cout], &a, ConvPass::Forward).unwrap()
    }

    /// NHWC, stride 1, SAME padding.
    fn same_stride_1() -> WindowAttrs<'static> {
        WindowAttrs {
            strides: &[1, 1, 1, 1],
            dilations: &[1, 1, 1, 1],
            padding: Padding::Same,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        }
    }

    /// Max error relative to the largest reference value.
    pub(in crate::host) fn rel_err(y: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
        y.iter()
            .zip(want)
            .fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs()))
            / scale
    }

    #[test]
    fn matches_a_float64_direct_convolution() {
        let seed = test_seed(11);
        let cases: &[(usize, usize, usize, usize, usize, &str)] = &[
            // n, h, w, cin, cout, padding
            (1, 2, 2, 16, 16, "SAME"),
            (2, 7, 5, 17, 33, "SAME"),
            (1, 9, 11, 32, 20, "VALID"),
            (3, 6, 6, 64, 64, "SAME"),
            (1, 4, 13, 16, 70, "EXPLICIT"),
            (2, 14, 14, 48, 40, "SAME"),
            // Whole panels of 64 output channels (the AVX-512 products):
            // two panels, tiles not a multiple of the register block.
            (2, 10, 9, 40, 128, "SAME"),
            (1, 5, 7, 64, 192, "VALID"),
        ];
        let (mut worst, mut ratio) = ([0f64; 2], [0f64; 2]);
        for (case, &(n, h, w, cin, cout, pad)) in cases.iter().enumerate() {
            let g = geometry_3x3(n, h, w, cin, cout, pad);
            let x = data(n * h * w * cin, seed + case as u64);
            let f = data(9 * cin * cout, seed + 100 + case as u64);
            let want = reference(&x, &f, &g);
            let mut direct = vec![0f32; want.len()];
            conv2d_by(Way::Direct, &x, &f, &mut direct, &g).unwrap();
            let ed = rel_err(&direct, &want).max(1e-7);
            // Float32 rounding of the transforms' extra additions: within a
            // few times the direct convolution's own error for F(2x2); F(4x4)
            // scales by up to 8 in its transforms, and measured up to 9.5e-6,
            // 21.6x the direct error, over 300 seeds.
            // Both ways of running the products wherever the packed one
            // applies (whole panels of 64), whatever this CPU would pick.
            let ways: &[bool] = if cout % PANEL == 0 {
                &[false, true]
            } else {
                &[false]
            };
            for (&(s, bound, times), &packed) in [(2, 2e-6, 8.0), (4, 2e-5, 40.0)]
                .iter()
                .flat_map(|w| ways.iter().map(move |p| (w, p)))
            {
                let mut y = vec![f32::NAN; want.len()];
                match s {
                    2 => conv2d_packed::<F2, 4, 2>(&x, &f, &mut y, &g, None, packed),
                    _ => conv2d_packed::<F4, 6, 4>(&x, &f, &mut y, &g, None, packed),
                }
                .unwrap();
                let ew = rel_err(&y, &want);
                assert!(
                    ew < bound && ew < times * ed,
                    "seed {seed} case {case} F({s}x{s}) packed {packed}: winograd {ew:e}, direct {ed:e}"
                );
                worst[s / 4] = worst[s / 4].max(ew);
                ratio[s / 4] = ratio[s / 4].max(ew / ed);
            }
        }
        println!("worst relative error vs float64: F(2x2) {:e} ({:.1}x direct), F(4x4) {:e} ({:.1}x direct)", worst[0], ratio[0], worst[1], ratio[1]);
    }

    #[test]
    fn epilogue_sees_every_output_row_once() {
        use std::sync::Mutex;
        let a = same_stride_1();
        let g = conv2d_geometry(&[2, 7, 9, 16], &[3, 3, 16, 16], &a, ConvPass::Forward).unwrap();
        let x = data(2 * 7 * 9 * 16, 1);
        let f = data(9 * 16 * 16, 2);
        for s in [2, 4] {
            let seen = Mutex::new(vec![0u32; g.n * g.oh * g.ow]);
            let e = |row0: usize, rows: &mut [u8]| -> Result<()> {
                let n = rows.len() / (4 * g.cout);
                for r in row0..row0 + n {
                    seen.lock().unwrap()[r] += 1;
                }
                Ok(())
            };
            let mut y = vec![0f32; g.n * g.oh * g.ow * g.cout];
            match s {
                2 => conv2d_with::<F2, 4, 2>(&x, &f, &mut y, &g, Some(&e)),
                _ => conv2d_with::<F4, 6, 4>(&x, &f, &mut y, &g, Some(&e)),
            }
            .unwrap();
            assert!(
                seen.into_inner().unwrap().iter().all(|&c| c == 1),
                "F({s}x{s})"
            );
        }
    }

    #[test]
    fn picks_the_measured_fastest_way() {
        let a = same_stride_1();
        // (batch, map, channels, tile size): ResNet50's 3x3 layers, as timed
        // on 2 cores (see `FILTER_COST`).
        for (n, hw, c, want) in [
            (1, 7, 512, None),
            (4, 7, 512, None),
            (8, 7, 512, Some(2)),
            (32, 7, 512, Some(4)),
            (1, 14, 256, Some(2)),
            (8, 14, 256, Some(4)),
            (1, 28, 128, Some(4)),
            (32, 56, 64, Some(4)),
            (32, 56, 32, None),
        ] {
            let g = conv2d_geometry(&[n, hw, hw, c], &[3, 3, c, c], &a, ConvPass::Forward).unwrap();
            assert_eq!(tile_size(&g), want, "batch {n}, {hw}x{hw}x{c}");
        }
    }
}
