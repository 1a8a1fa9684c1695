//! Low-precision Conv2D where the CPU has no bfloat16 product instruction
//! (`lowp_gemm`'s portable path: AVX2-only CPUs, AVX-512 without AMX on
//! Intel). The portable `lowp_gemm` rounds each im2col tile into a float32
//! copy and calls the float32 GEMM; run tile by tile that way a
//! convolution also loses the float32 engine's Winograd and pointwise
//! paths. Here the operands are rounded into float32 copies once and the
//! float32 engine runs on them, each finished tile going through the
//! caller's epilogue and, for a bfloat16 output, rounded once while in
//! cache. The products are those of the rounded operands, exact in
//! float32, as on every other path; only the summation order differs
//! (Winograd's transforms included, whose error is float32 rounding:
//! `host::winograd`). ResNet50 under `allow_mix_precision_bf16`, batch 32,
//! on a 2-core AVX2 EPYC (Zen 1), NPU kernel time per batch: 5.1 s ->
//! 3.9 s (float32 mode: 3.5 s).

use super::*;
use crate::host::lowp_gemm::SrcKind;
use crate::host::transpose::SendPtr;
use std::sync::Mutex;

/// Elements per task of the rounding copies.
const ROUND_CHUNK: usize = 1 << 16;

/// The float32 rows `run_epilogue` hands over as bytes.
fn as_f32(bytes: &mut [u8]) -> Result<&mut [f32]> {
    // SAFETY: every bit pattern is a valid f32.
    let (pre, rows, post) = unsafe { bytes.align_to_mut::<f32>() };
    if !pre.is_empty() || !post.is_empty() {
        return Err(Error::Internal(
            "convolution rows not float32-aligned".into(),
        ));
    }
    Ok(rows)
}

/// Float32 bytes of rounded input (and of accumulators, for a bfloat16
/// output) one chunk of images holds: whole-batch copies would be fresh
/// allocations of up to 100 MB per call (ResNet50 batch 32), each page
/// faulted in and zeroed by the kernel (6 % of the time in `perf`).
pub(crate) const CHUNK_BYTES: usize = 16 << 20;

/// Buffers of earlier calls, reused (at most [`SPARE_MAX`], none larger
/// than [`SPARE_MAX_LEN`] elements): a fresh buffer costs a memset.
static SPARE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
const SPARE_MAX: usize = 4;
const SPARE_MAX_LEN: usize = 2 * CHUNK_BYTES / 4;

/// A buffer of at least `len` elements (contents unspecified).
fn take(len: usize) -> Vec<f32> {
    let spare = SPARE.lock().ok().and_then(|mut s| {
        let i = s.iter().position(|b| b.len() >= len)?;
        Some(s.swap_remove(i))
    });
    spare.unwrap_or_else(|| vec![0f32; len])
}

/// Keeps `buf` for a later [`take`] (or drops it).
fn give(buf: Vec<f32>) {
    if buf.len() > SPARE_MAX_LEN {
        return;
    }
    if let Ok(mut s) = SPARE.lock() {
        if s.len() < SPARE_MAX {
            s.push(buf);
        } else if let Some(i) = (0..s.len()).min_by_key(|&i| s[i].len()) {
            if s[i].len() < buf.len() {
                s[i] = buf;
            }
        }
    }
}

/// `src` rounded to `lowp` into `dst`, on the calling thread (a plain
/// widening where `src` already holds `lowp` values).
pub(crate) fn round_run<S: LowpSrc>(src: &[S], dst: &mut [f32], lowp: LowpType) {
    let exact = matches!(
        (S::KIND, lowp),
        (SrcKind::Bf16, LowpType::Bf16) | (SrcKind::F16, LowpType::F16)
    );
    if exact {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.to_f32());
    } else {
        dst.iter_mut()
            .zip(src)
            .for_each(|(d, s)| *d = lowp.round(s.to_f32()));
    }
}

/// [`round_run`] in parallel chunks.
fn round_into<S: LowpSrc>(src: &[S], dst: &mut [f32], lowp: LowpType) {
    dst.par_chunks_mut(ROUND_CHUNK)
        .zip(src.par_chunks(ROUND_CHUNK))
        .for_each(|(d, s)| round_run(s, d, lowp));
}

/// NHWC Conv2D of `lowp`-rounded operands on the float32 engine:
/// `y = round(x) * round(f)` with float32 sums, `epilogue` on each tile's
/// float32 rows, then (bfloat16 `y`) rounded once. See the module docs.
/// Runs on chunks of whole images of about `chunk_bytes` ([`CHUNK_BYTES`];
/// tests run small ones), so the copies stay small.
pub(crate) fn conv2d_nhwc_rounded<S: LowpSrc, O: LowpOut>(
    x: &[S],
    f: &[S],
    y: &mut [O],
    g: &ConvGeom,
    lowp: LowpType,
    epilogue: Option<&RowsEpilogueF32>,
    chunk_bytes: usize,
) -> Result<()> {
    let (img_in, img_rows) = (g.h * g.w * g.cin, g.oh * g.ow);
    let img_out = img_rows * g.cout;
    let per_img = 4 * img_in.max(img_out).max(1);
    let chunks = g.n.div_ceil((chunk_bytes / per_img).max(1)).max(1);
    let nb = g.n.div_ceil(chunks);
    let mut fr = take(f.len());
    round_into(f, &mut fr[..f.len()], lowp);
    let mut xr = take(nb * img_in);
    let mut acc = match O::as_f32(&mut []) {
        Some(_) => Vec::new(),
        None => take(nb * img_out),
    };
    let mut result = Ok(());
    for (i, ys) in y.chunks_mut(nb * img_out.max(1)).enumerate() {
        let n = ys.len() / img_out.max(1);
        let i0 = i * nb;
        let xs = &x[i0 * img_in..(i0 + n) * img_in];
        round_into(xs, &mut xr[..xs.len()], lowp);
        let gc = ConvGeom {
            n,
            lowp: None,
            ..*g
        };
        let epi =
            epilogue.map(|e| move |row0: usize, rows: &mut [f32]| e(i0 * img_rows + row0, rows));
        result = chunk(
            &xr[..xs.len()],
            &fr[..f.len()],
            ys,
            &gc,
            epi.as_ref().map(|e| e as _),
            &mut acc,
        );
        if result.is_err() {
            break;
        }
    }
    give(fr);
    give(xr);
    if !acc.is_empty() {
        give(acc);
    }
    result
}

/// One chunk of [`conv2d_nhwc_rounded`] (`x` rounded already, `g.n` its
/// images, `epilogue` row indices relative to the chunk).
fn chunk<O: LowpOut>(
    xr: &[f32],
    fr: &[f32],
    y: &mut [O],
    g: &ConvGeom,
    epilogue: Option<&RowsEpilogueF32>,
    acc: &mut [f32],
) -> Result<()> {
    let cout = g.cout.max(1);
    let part = (g.n * g.oh * g.ow)
        .div_ceil(rayon::current_num_threads().max(1) * 4)
        .max(1);
    if let Some(y32) = O::as_f32(y) {
        let finish = |row0: usize, bytes: &mut [u8]| match epilogue {
            Some(e) => e(row0, as_f32(bytes)?),
            None => Ok(()),
        };
        let ran = conv2d_nhwc_tiles(xr, fr, y32, g, epilogue.map(|_| &finish as _))?;
        if !ran && epilogue.is_some() {
            y32.par_chunks_mut(part * cout)
                .enumerate()
                .try_for_each(|(i, rows)| run_epilogue(Some(&finish), i * part, rows))?;
        }
        return Ok(());
    }
    let len = y.len();
    let out = SendPtr(y.as_mut_ptr());
    let finish = |row0: usize, bytes: &mut [u8]| -> Result<()> {
        let rows = as_f32(bytes)?;
        if let Some(e) = epilogue {
            e(row0, rows)?;
        }
        let start = row0 * cout;
        if start + rows.len() > len {
            return Err(Error::Internal("convolution rows past the output".into()));
        }
        // SAFETY: the engines finish each output row once, in disjoint
        // ranges (`winograd`'s and `conv`'s tests check it), so no two calls
        // write the same elements of `y`; the range lies inside it (checked
        // above), and `y` is borrowed mutably for this whole function.
        let dst = unsafe { std::slice::from_raw_parts_mut(out.get().add(start), rows.len()) };
        O::store(rows, dst);
        Ok(())
    };
    let acc = &mut acc[..len];
    if !conv2d_nhwc_tiles(xr, fr, acc, g, Some(&finish))? {
        acc.par_chunks_mut(part * cout)
            .enumerate()
            .try_for_each(|(i, rows)| run_epilogue(Some(&finish), i * part, rows))?;
    }
    Ok(())
}
