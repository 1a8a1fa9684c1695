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
use crate::host::winograd::products::{pack_panels, packs_operand, rows_times_packed, tile_rows};
use tfa_core::Result;

/// Fewest output pixels taken here. Packing the filter costs a pass over it
/// per call, which only pays over enough pixels (2-core Zen 4, batch 1,
/// against the GEMM path alternating in one process: 14x14 and 7x7 maps,
/// 49-196 pixels, up to 1.6x slower, e.g. 7x7 2048 -> 512 0.58 -> 0.91 ms;
/// 28x28 maps, 784 pixels, within 2 %; 56x56 maps as fast or faster).
pub(super) const MIN_PIXELS: usize = 1024;

/// Whether [`conv2d`] computes `g` (on this CPU: AVX-512 and a filter of at
/// most 16 MB, see `packs_operand`).
fn suits(g: &ConvGeom) -> bool {
    g.format == DataFormat::Nhwc
        && g.lowp.is_none()
        && g.groups == 1
        && g.kh == 1
        && g.kw == 1
        && g.pad_top == 0
        && g.pad_left == 0
        && g.cin > 0
        && packs_operand(g.cin, g.cout)
        && g.n * g.oh * g.ow >= MIN_PIXELS
        && (g.oh - 1) * g.sh < g.h
        && (g.ow - 1) * g.sw < g.w
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
        // SAFETY: the filter holds `cin * cout` floats, row-major (asserted).
        let packed = unsafe { pack_panels(f.as_ptr(), (cout, 1), cin, cout) };
        let threads = rayon::current_num_threads().max(1);
        let tile = tile_rows(m, cin, threads);
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
            // SAFETY: AVX-512F (`suits`); every start is an input pixel's
            // row of `cin` floats inside `x` (the geometry checks in `suits`
            // and the length assert); `packed` holds the filter.
            unsafe { rows_times_packed(rows, |i| x[starts[i]..].as_ptr(), cin, &packed, out) };
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
