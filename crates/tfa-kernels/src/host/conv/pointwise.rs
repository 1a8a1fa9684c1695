//! Pointwise float32 Conv2D (1x1 window, no padding, any stride) on AVX-512
//! with output channels in whole panels of 64: the filter packed once per
//! call into panels, the input rows read where they lie.
//!
//! The im2col + GEMM path gives each tile of output rows its own GEMM call,
//! which repacks the filter and the tile's input rows (and a strided layer
//! first gathers its input rows into patches); with few rows per tile
//! (14x14 and 7x7 maps, filters of 1-4 MB) repacking is a large share of
//! the work. Here the filter is written once per call into panels of 64
//! output channels (`winograd::products`' layout, and its register block);
//! each task, a tile of output pixels, runs blocks of 6 pixels by a chunk
//! of panels (the block's input rows in L1, the chunk in L2), each input
//! value broadcast from the input row itself (a stride only changes which
//! row), then the fused epilogue on its finished rows while they are in
//! cache. Measured on 2-core Zen 4 at batch 32, ResNet50's 15 pointwise
//! shapes with a Relu epilogue, alternating with the GEMM path in one
//! process: 7 % less time over the model's pointwise layers (689 -> 637
//! ms), the strided ones 8-16 % faster, 56x56 maps from 64 channels alike.

use super::{for_each_tile, run_epilogue, ConvGeom, DataFormat, RowsEpilogue};
use crate::host::winograd::products::{packs, rows_by_panel, Packed, PANEL, ROWS};
use rayon::prelude::*;
use tfa_core::Result;

/// Bytes of input rows per task: a task's output rows (a few hundred KB at
/// most on ResNet50's shapes) stay in L2 for the epilogue (2-core Zen 4,
/// batch 32, 64 KB to 1 MB alternating in one process: 64-256 KB alike,
/// 1 MB 2 % slower).
const TILE_BYTES: usize = 64 << 10;

/// Bytes of the filter's panels one block of pixels runs before the next
/// block, so they stay in L2 (2-core Zen 4, batch 32: 64 KB, 256 KB and the
/// whole filter alike while the shared L3 was quiet; reading a 4 MB filter
/// once per block took a 7x7 2048 -> 512 layer from 16 to 30 ms in a
/// noisy spell).
const CHUNK_BYTES: usize = 256 << 10;

/// Fewest output pixels taken here. Packing the filter costs a pass over it
/// per call, which only pays over enough pixels (2-core Zen 4, batch 1,
/// against the GEMM path alternating in one process: 14x14 and 7x7 maps,
/// 49-196 pixels, up to 1.6x slower, e.g. 7x7 2048 -> 512 0.58 -> 0.91 ms;
/// 28x28 maps, 784 pixels, within 2 %; 56x56 maps as fast or faster).
pub(super) const MIN_PIXELS: usize = 1024;

/// Whether [`conv2d`] computes `g` (on this CPU: AVX-512, see `packs`).
fn suits(g: &ConvGeom) -> bool {
    g.format == DataFormat::Nhwc
        && g.lowp.is_none()
        && g.groups == 1
        && g.kh == 1
        && g.kw == 1
        && g.pad_top == 0
        && g.pad_left == 0
        && g.cin > 0
        && packs(g.cout)
        && g.n * g.oh * g.ow >= MIN_PIXELS
        && (g.oh - 1) * g.sh < g.h
        && (g.ow - 1) * g.sw < g.w
}

/// The filter `[cin, cout]` as panels: panel `p`, row `c` holds output
/// channels `[64p, 64p + 64)` of input channel `c`.
fn pack(f: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let mut packed = vec![0f32; cin * cout];
    let fill = |(p, panel): (usize, &mut [f32])| {
        for (c, row) in panel.chunks_exact_mut(PANEL).enumerate() {
            row.copy_from_slice(&f[c * cout + p * PANEL..][..PANEL]);
        }
    };
    if cin * cout >= 1 << 18 {
        packed
            .par_chunks_mut(cin * PANEL)
            .enumerate()
            .for_each(fill);
    } else {
        packed.chunks_mut(cin * PANEL).enumerate().for_each(fill);
    }
    packed
}

/// The convolution `y = conv(x, f)` for a shape that [`suits`] this kernel,
/// on a CPU with AVX-512, then `epilogue` on each task's rows; `None` (and
/// nothing written) otherwise.
pub(crate) fn conv2d(
    x: &[f32],
    f: &[f32],
    y: &mut [f32],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogue>,
) -> Option<Result<()>> {
    #[cfg(target_arch = "x86_64")]
    {
        if !suits(g) {
            return None;
        }
        let (cin, cout) = (g.cin, g.cout);
        let m = g.n * g.oh * g.ow;
        assert!(
            x.len() >= g.n * g.h * g.w * cin && f.len() >= cin * cout && y.len() >= m * cout,
            "pointwise conv2d: operands shorter than their shapes"
        );
        let packed = pack(f, cin, cout);
        let panels = cout / PANEL;
        let per_chunk = (CHUNK_BYTES / (cin * PANEL * 4)).max(1);
        let threads = rayon::current_num_threads().max(1);
        let by_cache = (TILE_BYTES / (cin * 4)).max(ROWS);
        let by_balance = m.div_ceil(threads * 2).max(ROWS);
        let tile = by_cache.min(by_balance).div_ceil(ROWS) * ROWS;
        // Input row of output pixel `p` (n, oy, ox).
        let row_of = |p: usize| -> usize {
            let (ox, rest) = (p % g.ow, p / g.ow);
            let (oy, n) = (rest % g.oh, rest / g.oh);
            ((n * g.h + oy * g.sh) * g.w + ox * g.sw) * cin
        };
        let run = |(t, out): (usize, &mut [f32]), starts: &mut Vec<usize>| -> Result<()> {
            let p0 = t * tile;
            let rows = out.len() / cout;
            starts.clear();
            starts.extend((p0..p0 + rows).map(row_of));
            // Each block of pixels runs a chunk of panels while its input
            // rows are in L1 and the chunk in L2; the filter streams from
            // L3 once per chunk and task, not once per block.
            for c0 in (0..panels).step_by(per_chunk) {
                for r in (0..rows).step_by(ROWS) {
                    let n = ROWS.min(rows - r);
                    let at = |i: usize| x[starts[r + i.min(n - 1)]..].as_ptr();
                    for p in c0..(c0 + per_chunk).min(panels) {
                        let panel = packed[p * cin * PANEL..(p + 1) * cin * PANEL].as_ptr();
                        let o = out[r * cout + p * PANEL..].as_mut_ptr();
                        // SAFETY: AVX-512F (checked above); every start is
                        // an input pixel's row of `cin` floats inside `x`
                        // (the geometry checks in `suits` and the length
                        // assert), the panel holds `cin` rows of 64, and
                        // the task's rows `r..r + n` hold 64 floats from
                        // column `64p`.
                        unsafe { rows_by_panel(n, at, cin, (panel, Packed), o, cout) }
                    }
                }
            }
            run_epilogue(epilogue, p0, out)
        };
        Some(for_each_tile(
            &mut y[..m * cout],
            tile * cout,
            threads > 1,
            run,
        ))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (x, f, y, g, epilogue);
        None
    }
}
