//! Packing and blocking shared by the AMX and AVX512-BF16 kernels.
//!
//! A is packed per block of rows (see [`block_rows`]) as bfloat16 rows of `kpad` elements
//! (zero-padded in k and in rows). B is packed once per call, shared by all
//! threads, as panels of 16 columns in VNNI order: `[kpad/2][16][2]`, each
//! row of a panel holding the (k, k+1) pair of every column — the layout of
//! an AMX B tile and of a `vdpbf16ps` operand. Packing does the rounding;
//! it is compiled for AVX-512 (present on every packed path) to vectorise.

use super::{LowpSrc, MutPtr, Ptr, SrcKind};
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::ops::Range;

/// A register/tile kernel computing an `MR x 32` float32 block.
pub(super) trait Micro {
    /// Rows per call.
    const MR: usize;
    /// k is padded to a multiple of this.
    const KSTEP: usize;
    /// Per-thread set-up before a run of [`Micro::tile`] calls.
    ///
    /// # Safety
    /// Only where the kernel's path is available.
    unsafe fn begin();
    /// `out[r*ldo + j] = sum_p a[r*kpad + p] * b(p, j)` for `r < MR, j < 32`,
    /// b's columns 0..16 in panel `b0` and 16..32 in `b1`.
    ///
    /// # Safety
    /// After `begin` on this thread; `a` holds `MR * kpad` elements, `b0` and
    /// `b1` `16 * kpad`; `out` is writable for `MR` rows of 32 at stride `ldo`.
    unsafe fn tile(
        a: *const u16,
        kpad: usize,
        b0: *const u16,
        b1: *const u16,
        out: *mut f32,
        ldo: usize,
    );
    /// Per-thread tear-down after a run of tiles.
    ///
    /// # Safety
    /// Only where the kernel's path is available.
    unsafe fn end();
}

/// Packed A bytes per block: about half of a 2 MB L2, so that the block
/// stays there while B panel pairs stream past it (each pair is reused by
/// every strip of the block: bigger blocks mean less B traffic).
const A_BLOCK_BYTES: usize = 1 << 20;

/// Rows of A per block: a multiple of 32 (every `MR` divides it) that fits
/// [`A_BLOCK_BYTES`], at most 512, and small enough to give each thread a
/// block.
fn block_rows(m: usize, kpad: usize, threads: usize) -> usize {
    let by_cache = (A_BLOCK_BYTES / (2 * kpad)).clamp(32, 512) / 32 * 32;
    let by_threads = m.div_ceil(threads.max(1)).div_ceil(32) * 32;
    by_cache.min(by_threads.max(32))
}
/// Pairs of B panels (32 columns each) per parallel task.
const NC_PAIRS: usize = 8;

/// bfloat16 bits of the 16 elements at `p`, rounded to nearest-even with NaN
/// kept quiet (exactly `bf16_bits`, subnormals kept).
///
/// # Safety
/// `p` valid for 16 reads; AVX-512 F/BW present.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn cvt16<T: LowpSrc>(p: *const T) -> __m256i {
    // SAFETY: 16 elements readable at p (caller's contract).
    unsafe {
        let bits = match T::KIND {
            SrcKind::Bf16 => return _mm256_loadu_si256(p.cast()),
            SrcKind::F32 => _mm512_loadu_si512(p.cast()),
            SrcKind::F16 => _mm512_castps_si512(_mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))),
        };
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(
            bits,
            _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)),
        ));
        let abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
        let nan = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7f80_0000));
        let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(0x40));
        _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet))
    }
}

/// Can [`round_run`] run here?
pub(super) fn vector_rounding() -> bool {
    crate::host::cpu::features().avx512
}

/// `dst[i] = lowp.round(src[i])` (the portable path's rounding copies),
/// 16 at a time: bfloat16 through [`cvt16`], float16 through the AVX-512
/// conversions (round-to-nearest-even, subnormals kept).
///
/// # Safety
/// [`vector_rounding`] must be true; `dst.len() <= src.len()`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn round_run<T: LowpSrc>(src: &[T], dst: &mut [f32], lowp: super::LowpType) {
    let full = dst.len() / 16 * 16;
    for i in (0..full).step_by(16) {
        // SAFETY: 16 elements from i < full <= len of both slices.
        unsafe {
            let v = match lowp {
                super::LowpType::Bf16 => _mm512_castsi512_ps(_mm512_slli_epi32::<16>(
                    _mm512_cvtepu16_epi32(cvt16(src[i..].as_ptr())),
                )),
                super::LowpType::F16 => {
                    let x = match T::KIND {
                        SrcKind::F32 => _mm512_loadu_ps(src[i..].as_ptr().cast()),
                        SrcKind::F16 => {
                            _mm512_cvtph_ps(_mm256_loadu_si256(src[i..].as_ptr().cast()))
                        }
                        SrcKind::Bf16 => _mm512_castsi512_ps(_mm512_slli_epi32::<16>(
                            _mm512_cvtepu16_epi32(_mm256_loadu_si256(src[i..].as_ptr().cast())),
                        )),
                    };
                    _mm512_cvtph_ps(_mm512_cvtps_ph::<
                        { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                    >(x))
                }
            };
            _mm512_storeu_ps(dst[i..].as_mut_ptr(), v);
        }
    }
    for (d, s) in dst[full..].iter_mut().zip(&src[full..]) {
        *d = lowp.round(s.to_f32());
    }
}

/// `dst[i]` = bfloat16 bits of `src[i]` (exactly `bf16_bits`), 16 at a time.
///
/// # Safety
/// [`vector_rounding`] must be true; `dst.len() <= src.len()`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn narrow_run(src: &[f32], dst: &mut [u16]) {
    let full = dst.len() / 16 * 16;
    for i in (0..full).step_by(16) {
        // SAFETY: 16 elements from i < full <= len of both slices.
        unsafe { _mm256_storeu_si256(dst[i..].as_mut_ptr().cast(), cvt16(src[i..].as_ptr())) };
    }
    for (d, s) in dst[full..].iter_mut().zip(&src[full..]) {
        *d = super::bf16_bits(*s);
    }
}

/// Packs rows `m0..m0+dst.len()/kpad` (those below `m`) of A.
///
/// # Safety
/// `a` valid for rows `< m`, columns `< k` at its strides; `dst` zeroed.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_a<T: LowpSrc>(
    a: Ptr<T>,
    (rs, cs): (isize, isize),
    m0: usize,
    m: usize,
    k: usize,
    kpad: usize,
    dst: &mut [u16],
) {
    let rows = (dst.len() / kpad).min(m.saturating_sub(m0));
    if cs != 1 && rs == 1 {
        // SAFETY: forwarded contract (rows of A below m, dst zeroed).
        unsafe { pack_a_transposed(a, cs, m0, rows, k, kpad, dst) };
        return;
    }
    for (r, row) in dst.chunks_mut(kpad).take(rows).enumerate() {
        // SAFETY: row m0 + r < m is inside A.
        let base = unsafe { a.get().offset((m0 + r) as isize * rs) };
        if cs == 1 {
            // SAFETY: k contiguous elements of the row.
            let src = unsafe { std::slice::from_raw_parts(base, k) };
            let full = k / 16 * 16;
            for p in (0..full).step_by(16) {
                // SAFETY: elements p..p+16 of the row (p + 16 <= k) and of
                // the packed row (k <= kpad).
                unsafe {
                    _mm256_storeu_si256(row[p..].as_mut_ptr().cast(), cvt16(src[p..].as_ptr()))
                };
            }
            for (d, s) in row[full..k].iter_mut().zip(&src[full..]) {
                *d = s.to_bf16_bits();
            }
        } else {
            for (p, d) in row[..k].iter_mut().enumerate() {
                // SAFETY: (m0 + r, p) is inside A.
                *d = unsafe { *base.offset(p as isize * cs) }.to_bf16_bits();
            }
        }
    }
}

/// [`pack_a`] for a transposed A (rows contiguous, `rs == 1`: a convolution
/// filter gradient's im2col columns), in blocks of 16 rows x 32 columns:
/// each column's 16 rows are read as one vector (two columns rounded and
/// interleaved into the 16 (k, k+1) pairs the packed rows hold), and each
/// packed row's 32 elements are written as one 64-byte line. Writing pairs
/// row by row instead touched 16 lines `2 * kpad` bytes apart per pair,
/// which alias in the L1 cache when `kpad` is a power of two.
///
/// # Safety
/// `a` valid for rows `m0..m0 + rows`, columns `< k` at strides `(1, cs)`;
/// `dst` holds `rows` rows of `kpad >= k` elements.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_a_transposed<T: LowpSrc>(
    a: Ptr<T>,
    cs: isize,
    m0: usize,
    rows: usize,
    k: usize,
    kpad: usize,
    dst: &mut [u16],
) {
    // SAFETY: reads a 64-byte constant.
    let idx = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
    // SAFETY: column p < k of rows m0.. is inside A (the contract).
    let col = |p: usize| unsafe {
        std::slice::from_raw_parts(a.get().offset(m0 as isize + p as isize * cs), rows)
    };
    let (full_r, full_p) = (rows / 16 * 16, k / 32 * 32);
    // words[q][j]: the pair (p0 + 2q, p0 + 2q + 1) of row r0 + j.
    let mut words = [[0u32; 16]; 16];
    for r0 in (0..full_r).step_by(16) {
        for p0 in (0..full_p).step_by(32) {
            for (q, w) in words.iter_mut().enumerate() {
                let (c0, c1) = (col(p0 + 2 * q), col(p0 + 2 * q + 1));
                // SAFETY: rows r0..r0+16 <= rows of both columns; a 64-byte
                // store into `w`.
                unsafe {
                    let lo = cvt16(c0[r0..].as_ptr());
                    let hi = cvt16(c1[r0..].as_ptr());
                    let v = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                    _mm512_storeu_si512(w.as_mut_ptr().cast(), _mm512_permutexvar_epi16(idx, v));
                }
            }
            for j in 0..16 {
                let line: [u32; 16] = std::array::from_fn(|q| words[q][j]);
                let out = &mut dst[(r0 + j) * kpad + p0..][..32];
                // SAFETY: `out` holds 32 u16 (64 bytes); `line` is 64 bytes.
                unsafe {
                    _mm512_storeu_si512(
                        out.as_mut_ptr().cast(),
                        _mm512_loadu_si512(line.as_ptr().cast()),
                    )
                };
            }
        }
        for p in full_p..k {
            for (j, v) in col(p)[r0..r0 + 16].iter().enumerate() {
                dst[(r0 + j) * kpad + p] = v.to_bf16_bits();
            }
        }
    }
    for p in 0..k {
        for (r, v) in col(p).iter().enumerate().skip(full_r) {
            dst[r * kpad + p] = v.to_bf16_bits();
        }
    }
}

/// Panels per B packing task (256 columns).
const B_GROUP: usize = 16;

/// Packs the panels of `dst` (whole panels of `16 * kpad`), the first at
/// column `j0`, walking B row by row (a column-panel walk would cost a cache
/// and TLB miss per row of a wide B).
///
/// # Safety
/// `b` valid for rows `< k`, columns `< n`; `dst` zeroed.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_b<T: LowpSrc>(
    b: Ptr<T>,
    (rs, cs): (isize, isize),
    k: usize,
    n: usize,
    kpad: usize,
    j0: usize,
    dst: &mut [u16],
) {
    let panel = 16 * kpad;
    let cols = (dst.len() / panel * 16).min(n.saturating_sub(j0));
    if cs == 1 && cols > 0 {
        // SAFETY: as this function's contract.
        unsafe { pack_b_rows(b, rs, k, j0, cols, panel, dst) };
        return;
    }
    if rs == 1 {
        // Transposed B (columns contiguous): walk each column down k.
        for j in 0..cols {
            // SAFETY: column j0 + j < n holds k contiguous elements.
            let col =
                unsafe { std::slice::from_raw_parts(b.get().offset((j0 + j) as isize * cs), k) };
            let out = &mut dst[(j / 16) * panel + 2 * (j % 16)..];
            for (p, v) in col.iter().enumerate() {
                out[(p / 2) * 32 + (p % 2)] = v.to_bf16_bits();
            }
        }
        return;
    }
    for p in 0..k {
        // SAFETY: row p < k, column j0 < n (cols > 0 only then).
        let row = unsafe { b.get().offset(p as isize * rs + j0 as isize * cs) };
        let at = (p / 2) * 32 + (p % 2);
        for j in 0..cols {
            // SAFETY: (p, j0 + j) is inside B.
            let v = unsafe { *row.offset(j as isize * cs) };
            dst[(j / 16) * panel + at + 2 * (j % 16)] = v.to_bf16_bits();
        }
    }
}

/// Word order turning `[lo0..lo15, hi0..hi15]` into `[lo0, hi0, lo1, ...]`.
const INTERLEAVE: [u16; 32] = {
    let mut a = [0u16; 32];
    let mut i = 0;
    while i < 16 {
        a[2 * i] = i as u16;
        a[2 * i + 1] = 16 + i as u16;
        i += 1;
    }
    a
};

/// [`pack_b`] for rows stored contiguously (`cs == 1`, the usual weights
/// layout): two rows at a time, 16 columns converted per row and
/// interleaved into one 64-byte VNNI row with a word permute.
///
/// # Safety
/// As [`pack_b`], `cols > 0` columns from `j0` inside B.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_b_rows<T: LowpSrc>(
    b: Ptr<T>,
    rs: isize,
    k: usize,
    j0: usize,
    cols: usize,
    panel: usize,
    dst: &mut [u16],
) {
    // SAFETY: reads a 64-byte constant.
    let idx = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
    // SAFETY: row p < k holds `cols` elements from column j0.
    let row = |p: usize| unsafe {
        std::slice::from_raw_parts(b.get().offset(p as isize * rs + j0 as isize), cols)
    };
    let mut p = 0;
    while p < k {
        let r0 = row(p);
        let r1 = if p + 1 < k { Some(row(p + 1)) } else { None };
        let at = (p / 2) * 32;
        let full = match r1 {
            Some(_) => cols / 16,
            None => 0,
        };
        for pj in 0..full {
            // SAFETY: columns 16*pj..+16 < cols of rows p and p+1; a 64-byte
            // write of panel pj's pair row p/2.
            unsafe {
                let lo = cvt16(r0[16 * pj..].as_ptr());
                let hi = cvt16(r1.unwrap_or(r0)[16 * pj..].as_ptr());
                let v = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
                let out = dst[pj * panel + at..pj * panel + at + 32].as_mut_ptr();
                _mm512_storeu_si512(out.cast(), _mm512_permutexvar_epi16(idx, v));
            }
        }
        for j in 16 * full..cols {
            let out = &mut dst[(j / 16) * panel + at + 2 * (j % 16)..];
            out[0] = r0[j].to_bf16_bits();
            if let Some(r1) = r1 {
                out[1] = r1[j].to_bf16_bits();
            }
        }
        p += 2;
    }
}

/// B (`k x n`) rounded into VNNI panels for kernel `K`: `(panels, kpad)`.
///
/// # Safety
/// `b` valid for rows `< k`, columns `< n` at its strides; `K`'s path
/// available.
pub(super) unsafe fn pack_b_all<T: LowpSrc, K: Micro>(
    k: usize,
    n: usize,
    b: Ptr<T>,
    b_strides: (isize, isize),
    parallel: bool,
) -> (Vec<u16>, usize) {
    let kpad = k.div_ceil(K::KSTEP) * K::KSTEP;
    let pairs = n.div_ceil(32);
    let panel = 16 * kpad;
    let mut bp = vec![0u16; 2 * pairs * panel];
    let pack_group = |(g, dst): (usize, &mut [u16])| {
        // SAFETY: the caller's contract covers B; dst is zeroed whole panels;
        // AVX-512 is present on every packed path.
        unsafe { pack_b(b, b_strides, k, n, kpad, 16 * B_GROUP * g, dst) }
    };
    if parallel && k * n >= 1 << 15 {
        bp.par_chunks_mut(B_GROUP * panel)
            .enumerate()
            .for_each(pack_group);
    } else {
        bp.chunks_mut(B_GROUP * panel)
            .enumerate()
            .for_each(pack_group);
    }
    (bp, kpad)
}

/// `c = round(a) @ B` for B packed by [`pack_b_all`]: blocks of rows
/// (times groups of panels when rows alone give too few tasks) over the
/// pool. `c` row `i` starts at `i * ldc`.
///
/// # Safety
/// `a` valid for rows `< m`, columns `< k`; `bp`/`kpad` from
/// `pack_b_all::<_, K>` for this `k, n`; `c` holds `(m - 1) * ldc + n`
/// elements, `ldc >= n`; `K`'s path available.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run_packed<T: LowpSrc, K: Micro>(
    m: usize,
    n: usize,
    k: usize,
    kpad: usize,
    a: Ptr<T>,
    a_strides: (isize, isize),
    bp: &[u16],
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
) {
    let pairs = n.div_ceil(32);
    let bp = Ptr(bp.as_ptr());
    let cp = MutPtr(c.as_mut_ptr());
    let threads = rayon::current_num_threads();
    let mc = block_rows(m, kpad, if parallel { threads } else { 1 });
    let mblocks = m.div_ceil(mc);
    let nblocks = pairs.div_ceil(NC_PAIRS);
    let block = |mb: usize, pr: Range<usize>| {
        // SAFETY: blocks write disjoint parts of c; bp outlives every task.
        unsafe {
            run_block::<T, K>(
                m,
                n,
                k,
                kpad,
                a,
                a_strides,
                bp,
                cp,
                ldc,
                mb * mc..(mb * mc + mc).min(m),
                pr,
            )
        }
    };
    if !parallel {
        (0..mblocks).for_each(|mb| block(mb, 0..pairs));
    } else if mblocks >= 2 * threads || nblocks == 1 {
        (0..mblocks)
            .into_par_iter()
            .for_each(|mb| block(mb, 0..pairs));
    } else {
        (0..mblocks * nblocks).into_par_iter().for_each(|t| {
            let (mb, nb) = (t / nblocks, t % nblocks);
            block(mb, nb * NC_PAIRS..((nb + 1) * NC_PAIRS).min(pairs))
        });
    }
}

/// Rows `rows` times panel pairs `pr`.
///
/// # Safety
/// As [`run_packed`]; no other task writes this block of `c`.
#[allow(clippy::too_many_arguments)]
unsafe fn run_block<T: LowpSrc, K: Micro>(
    m: usize,
    n: usize,
    k: usize,
    kpad: usize,
    a: Ptr<T>,
    a_strides: (isize, isize),
    bp: Ptr<u16>,
    c: MutPtr<f32>,
    ldc: usize,
    rows: Range<usize>,
    pr: Range<usize>,
) {
    let m0 = rows.start;
    let rows = rows.len();
    let strips = rows.div_ceil(K::MR);
    let mut ap = vec![0u16; strips * K::MR * kpad];
    // SAFETY: rows m0.. below m of A; ap zeroed.
    unsafe { pack_a(a, a_strides, m0, m, k, kpad, &mut ap) };
    let panel = 16 * kpad;
    let mut tmp = [0f32; 32 * 32];
    // SAFETY: this path is available (caller's contract).
    unsafe { K::begin() };
    for pair in pr {
        let c0 = 32 * pair;
        let vc = (n - c0).min(32);
        // SAFETY: panels 2*pair and 2*pair+1 exist (2 * pairs panels).
        let (b0, b1) = unsafe {
            let b0 = bp.0.add(2 * pair * panel);
            (b0, b0.add(panel))
        };
        for s in 0..strips {
            let r0 = m0 + s * K::MR;
            let vr = (m - r0).min(K::MR);
            // SAFETY: strip s of ap holds MR*kpad elements.
            let a_s = unsafe { ap.as_ptr().add(s * K::MR * kpad) };
            if vr == K::MR && vc == 32 {
                // SAFETY: the full MR x 32 block of c at (r0, c0) is inside c
                // and owned by this task.
                unsafe { K::tile(a_s, kpad, b0, b1, c.0.add(r0 * ldc + c0), ldc) };
            } else {
                // SAFETY: tmp holds 32 x 32 >= MR x 32 at stride 32.
                unsafe { K::tile(a_s, kpad, b0, b1, tmp.as_mut_ptr(), 32) };
                for r in 0..vr {
                    // SAFETY: row r0+r < m, columns c0..c0+vc < n: inside c.
                    let dst =
                        unsafe { std::slice::from_raw_parts_mut(c.0.add((r0 + r) * ldc + c0), vc) };
                    dst.copy_from_slice(&tmp[r * 32..r * 32 + vc]);
                }
            }
        }
    }
    // SAFETY: pairs with `begin` above.
    unsafe { K::end() };
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::{bf16, f16};

    #[test]
    fn vector_conversion_equals_scalar() {
        if !crate::host::cpu::test_needs("AVX-512", vector_rounding()) {
            return;
        }
        let specials = [
            0.0f32,
            -0.0,
            1.0,
            f32::from_bits(0x3f80_8000), // tie to even (down)
            f32::from_bits(0x3f81_8000), // tie to even (up)
            f32::from_bits(0x3f80_7fff),
            f32::MAX,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::from_bits(0x7f80_0001), // signalling NaN: quieted
            f32::from_bits(1),           // subnormal
            -1e-40,
            65504.0,
            3.1e-5,
            -7.25,
        ];
        let check = |got: __m256i, want: [u16; 16]| {
            let mut out = [0u16; 16];
            // SAFETY: a 32-byte store into out.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), got) };
            assert_eq!(out, want);
        };
        // SAFETY: 16 elements each; AVX-512 F/BW checked above.
        unsafe {
            check(cvt16(specials.as_ptr()), specials.map(|v| v.to_bf16_bits()));
            let h = specials.map(f16::from_f32);
            check(cvt16(h.as_ptr()), h.map(|v| v.to_bf16_bits()));
            let b = specials.map(bf16::from_f32);
            check(cvt16(b.as_ptr()), b.map(|v| v.to_bits()));
        }
        for lowp in [super::super::LowpType::Bf16, super::super::LowpType::F16] {
            let mut src = specials.to_vec();
            src.extend([1e-7f32, -6e-8, 70000.0, 0.1, 2.5e-3]); // + a scalar tail
            let mut got = vec![0f32; src.len()];
            // SAFETY: AVX-512 F/BW checked above; equal lengths.
            unsafe { round_run(&src, &mut got, lowp) };
            for (g, s) in got.iter().zip(&src) {
                let w = lowp.round(*s);
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{lowp:?} {s}: {g} vs {w}"
                );
            }
        }
    }
}
