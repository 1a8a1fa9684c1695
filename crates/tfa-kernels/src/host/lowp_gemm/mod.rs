//! Low-precision matrix product: `c[m,n] = round(a) @ round(b)` with float32
//! accumulation and float32 output, where `round` is round-to-nearest-even to
//! bfloat16 or float16. Operands are strided float32, bfloat16 or float16.
//!
//! Paths (chosen per call by [`selected_path`], forced with the env var
//! `TFA_LOWP_GEMM=portable|avx512|amx`):
//! - `amx`: Intel AMX-BF16 tiles (`tdpbf16ps`, 2x2 tiles of 16x16 float32
//!   accumulators); operands packed to bfloat16 rows (A) and VNNI pairs (B).
//! - `avx512`: AVX512-BF16 `vdpbf16ps` register kernel on the same packing.
//! - `portable`: rounds into float32 copies and calls the float32 `gemm`.
//!   Exact products (bf16*bf16 and f16*f16 both fit a float32 mantissa), so
//!   it differs from the others only in summation order.
//!
//! float16 always takes the portable path: AMX-FP16 is absent on Sapphire
//! Rapids, and AVX512-FP16's dot products accumulate in float16, not float32.
//!
//! The packed paths flush bfloat16 subnormals to zero (the hardware's DAZ/FTZ
//! in `tdpbf16ps`/`vdpbf16ps`): values below ~1e-38, far inside tolerance.

use half::{bf16, f16};
use rayon::prelude::*;
use std::sync::OnceLock;
use tfa_core::DType;

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod pack;

/// The type the operands are rounded to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LowpType {
    Bf16,
    F16,
}

impl LowpType {
    /// `BF16`/`F16` as a low-precision type; other dtypes have none.
    pub fn from_dtype(d: DType) -> Option<LowpType> {
        match d {
            DType::BF16 => Some(LowpType::Bf16),
            DType::F16 => Some(LowpType::F16),
            _ => None,
        }
    }

    /// `x` rounded to nearest-even in this type, widened back.
    #[inline(always)]
    pub fn round(self, x: f32) -> f32 {
        match self {
            LowpType::Bf16 => f32::from_bits((bf16_bits(x) as u32) << 16),
            LowpType::F16 => f16::from_f32(x).to_f32(),
        }
    }
}

/// A kernel implementation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LowpPath {
    Portable,
    Avx512,
    Amx,
}

impl LowpPath {
    pub const ALL: [LowpPath; 3] = [LowpPath::Portable, LowpPath::Avx512, LowpPath::Amx];

    pub fn name(self) -> &'static str {
        match self {
            LowpPath::Portable => "portable",
            LowpPath::Avx512 => "avx512",
            LowpPath::Amx => "amx",
        }
    }

    /// The next slower path (where a forced path is unavailable).
    fn fallback(self) -> LowpPath {
        match self {
            LowpPath::Amx => LowpPath::Avx512,
            _ => LowpPath::Portable,
        }
    }
}

/// What an operand element is (for vectorised packing).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SrcKind {
    F32,
    Bf16,
    F16,
}

/// Operand element types.
pub trait LowpSrc: Copy + Send + Sync + 'static {
    const KIND: SrcKind;
    fn to_f32(self) -> f32;
    /// bfloat16 bits, rounded to nearest-even.
    fn to_bf16_bits(self) -> u16;
}

impl LowpSrc for f32 {
    const KIND: SrcKind = SrcKind::F32;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn to_bf16_bits(self) -> u16 {
        bf16_bits(self)
    }
}

impl LowpSrc for bf16 {
    const KIND: SrcKind = SrcKind::Bf16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    #[inline(always)]
    fn to_bf16_bits(self) -> u16 {
        self.to_bits()
    }
}

impl LowpSrc for f16 {
    const KIND: SrcKind = SrcKind::F16;
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    fn to_bf16_bits(self) -> u16 {
        bf16_bits(f16::to_f32(self))
    }
}

/// bfloat16 bits of `x`, round-to-nearest-even, NaN kept quiet (as
/// `half::bf16::from_f32`), branch-light so that loops vectorise.
#[inline(always)]
pub(crate) fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if b & 0x7fff_ffff > 0x7f80_0000 {
        ((b >> 16) | 0x0040) as u16
    } else {
        (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
    }
}

/// `dst[i] = bf16(src[i])`, round-to-nearest-even (as `bf16::from_f32`),
/// AVX-512 where present: a bfloat16 output's float32 accumulators rounded
/// once.
pub fn narrow_bf16(src: &[f32], dst: &mut [bf16]) {
    let n = src.len().min(dst.len());
    // SAFETY: bf16 is a transparent u16.
    let bits = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr().cast::<u16>(), n) };
    #[cfg(target_arch = "x86_64")]
    if pack::vector_rounding() {
        // SAFETY: AVX-512 F/BW checked; `bits` is no longer than `src`.
        unsafe { pack::narrow_run(&src[..n], bits) };
        return;
    }
    for (d, s) in bits.iter_mut().zip(src) {
        *d = bf16_bits(*s);
    }
}

/// `dst[i] = src[i]` widened to float32 (exact; a shift that vectorises).
pub fn widen_bf16(src: &[bf16], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f32::from_bits((s.to_bits() as u32) << 16);
    }
}

/// Can `path` run `lowp` on this CPU (and OS)?
pub fn path_available(path: LowpPath, lowp: LowpType) -> bool {
    match path {
        LowpPath::Portable => true,
        #[cfg(target_arch = "x86_64")]
        LowpPath::Avx512 => lowp == LowpType::Bf16 && avx512::available(),
        #[cfg(target_arch = "x86_64")]
        LowpPath::Amx => lowp == LowpType::Bf16 && amx::available(),
        #[cfg(not(target_arch = "x86_64"))]
        _ => {
            let _ = lowp;
            false
        }
    }
}

/// `TFA_LOWP_GEMM`, read once.
fn forced_path() -> Option<LowpPath> {
    static FORCED: OnceLock<Option<LowpPath>> = OnceLock::new();
    *FORCED.get_or_init(|| {
        let v = std::env::var("TFA_LOWP_GEMM").ok()?;
        let v = v.trim().to_ascii_lowercase();
        LowpPath::ALL.into_iter().find(|p| p.name() == v)
    })
}

/// The path a call for `lowp` takes: `TFA_LOWP_GEMM` if set (or the best
/// available below it), else the fastest available.
pub fn selected_path(lowp: LowpType) -> LowpPath {
    let Some(mut p) = forced_path() else {
        // Without AMX, the AVX512-BF16 kernel only where `vdpbf16ps` runs at
        // full rate (AMD): on Intel it measured slower than the portable path
        // (rounded copies + the f32 gemm); it stays available there through
        // TFA_LOWP_GEMM=avx512.
        return if path_available(LowpPath::Amx, lowp) {
            LowpPath::Amx
        } else if path_available(LowpPath::Avx512, lowp)
            && crate::host::cpu::features().bf16_dot_full_rate
        {
            LowpPath::Avx512
        } else {
            LowpPath::Portable
        };
    };
    while !path_available(p, lowp) {
        p = p.fallback();
    }
    p
}

/// Pointer wrapper that rayon closures may share.
#[derive(Copy, Clone)]
pub(crate) struct Ptr<T>(pub(crate) *const T);

impl<T> Ptr<T> {
    /// Through a method so that closures capture the (Sync) wrapper.
    #[inline(always)]
    pub(crate) fn get(self) -> *const T {
        self.0
    }
}
// SAFETY: only read through, by callers whose contract keeps the data alive
// and unmodified for the call.
unsafe impl<T> Send for Ptr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Ptr<T> {}

/// Mutable pointer wrapper; each task writes a disjoint part.
#[derive(Copy, Clone)]
pub(crate) struct MutPtr<T>(pub(crate) *mut T);
// SAFETY: tasks write disjoint elements (distinct output blocks).
unsafe impl<T> Send for MutPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for MutPtr<T> {}

/// `c[m,n] = round(a) @ round(b)` on the [`selected_path`]. `a` element
/// (i, p) is at `a + i*a_strides.0 + p*a_strides.1`, `b` (p, j) likewise;
/// `c` is row-major and overwritten. `parallel` lets it use the current
/// rayon pool.
///
/// # Safety
/// `a` and `b` must be valid for reads of every element their strides address
/// for `i < m, p < k, j < n`; `c` must hold at least `m * n` elements and
/// alias neither.
#[allow(clippy::too_many_arguments)]
pub unsafe fn lowp_gemm_strided<T: LowpSrc>(
    m: usize,
    n: usize,
    k: usize,
    a: *const T,
    a_strides: (isize, isize),
    b: *const T,
    b_strides: (isize, isize),
    c: &mut [f32],
    lowp: LowpType,
    parallel: bool,
) {
    // SAFETY: forwarded contract.
    unsafe {
        lowp_gemm_with(
            selected_path(lowp),
            m,
            n,
            k,
            a,
            a_strides,
            b,
            b_strides,
            c,
            lowp,
            parallel,
        )
    }
}

/// [`lowp_gemm_strided`] on `path` (the portable path where `path` cannot
/// run `lowp` here).
///
/// # Safety
/// As [`lowp_gemm_strided`].
#[allow(clippy::too_many_arguments)]
pub unsafe fn lowp_gemm_with<T: LowpSrc>(
    path: LowpPath,
    m: usize,
    n: usize,
    k: usize,
    a: *const T,
    a_strides: (isize, isize),
    b: *const T,
    b_strides: (isize, isize),
    c: &mut [f32],
    lowp: LowpType,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: forwarded contract (c holds m*n, so ldc = n fits).
    unsafe {
        let pb = PackedB::new(path, k, n, b, b_strides, lowp, parallel);
        lowp_gemm_packed(m, a, a_strides, &pb, c, n, parallel)
    }
}

/// B rounded (and packed for the AMX/AVX512 kernels) once, for products
/// with many A: a convolution's filter across its im2col tiles.
pub struct PackedB {
    path: LowpPath,
    lowp: LowpType,
    k: usize,
    n: usize,
    /// k padded for the kernel (packed paths).
    kpad: usize,
    /// VNNI panels (packed paths) ...
    panels: Vec<u16>,
    /// ... or the rounded k x n row-major copy (portable path).
    rounded: Vec<f32>,
}

impl PackedB {
    /// Packs `b` (`k x n`, element (p, j) at `b + p*strides.0 + j*strides.1`)
    /// for `path` (the portable path where `path` cannot run `lowp` here).
    ///
    /// # Safety
    /// `b` valid for reads of every element its strides address, `p < k,
    /// j < n`.
    pub unsafe fn new<T: LowpSrc>(
        path: LowpPath,
        k: usize,
        n: usize,
        b: *const T,
        b_strides: (isize, isize),
        lowp: LowpType,
        parallel: bool,
    ) -> PackedB {
        let path = if path_available(path, lowp) {
            path
        } else {
            LowpPath::Portable
        };
        let parallel = parallel && rayon::current_num_threads() > 1;
        let mut pb = PackedB {
            path,
            lowp,
            k,
            n,
            kpad: k,
            panels: Vec::new(),
            rounded: Vec::new(),
        };
        if k == 0 || n == 0 {
            return pb;
        }
        let b = Ptr(b);
        match path {
            #[cfg(target_arch = "x86_64")]
            LowpPath::Amx => {
                // SAFETY: `b` as the caller's contract says; this arm runs only
                // where the AMX path is available (checked above).
                (pb.panels, pb.kpad) =
                    unsafe { pack::pack_b_all::<T, amx::Amx>(k, n, b, b_strides, parallel) }
            }
            #[cfg(target_arch = "x86_64")]
            LowpPath::Avx512 => {
                // SAFETY: `b` as the caller's contract says; this arm runs only
                // where the AVX512-BF16 path is available (checked above).
                (pb.panels, pb.kpad) =
                    unsafe { pack::pack_b_all::<T, avx512::Avx512>(k, n, b, b_strides, parallel) }
            }
            // SAFETY: `b` is valid for every (p, j), p < k, j < n, at its
            // strides (the caller's contract).
            _ => pb.rounded = unsafe { rounded_copy(b, b_strides, k, n, lowp, parallel) },
        }
        pb
    }

    /// The path products with this B take.
    pub fn path(&self) -> LowpPath {
        self.path
    }
}

/// `c[i*ldc + j] = (round(a) @ B)[i, j]` for `i < m, j < n` with B packed
/// by [`PackedB::new`] (other elements of `c` untouched).
///
/// # Safety
/// `a` valid for reads of every element its strides address, `i < m,
/// p < b.k`; `c` holds at least `(m - 1) * ldc + b.n` elements (when
/// `m > 0`), `ldc >= b.n`, and aliases neither operand.
pub unsafe fn lowp_gemm_packed<T: LowpSrc>(
    m: usize,
    a: *const T,
    a_strides: (isize, isize),
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 || ldc < n || c.len() < (m - 1) * ldc + n {
        debug_assert!(m == 0 || n == 0, "lowp_gemm: output too small");
        return;
    }
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
        return;
    }
    let parallel = parallel && rayon::current_num_threads() > 1;
    let a = Ptr(a);
    match b.path {
        // SAFETY: `a` and `c` as the caller's contract says (`c`'s size and
        // `ldc` checked above); B was packed for AMX, which `PackedB::new`
        // chose only where it is available.
        #[cfg(target_arch = "x86_64")]
        LowpPath::Amx => unsafe {
            pack::run_packed::<T, amx::Amx>(
                m, n, k, b.kpad, a, a_strides, &b.panels, c, ldc, parallel,
            )
        },
        // SAFETY: as for Amx, with B packed for AVX512-BF16.
        #[cfg(target_arch = "x86_64")]
        LowpPath::Avx512 => unsafe {
            pack::run_packed::<T, avx512::Avx512>(
                m, n, k, b.kpad, a, a_strides, &b.panels, c, ldc, parallel,
            )
        },
        // SAFETY: `a` is valid for (i, p), i < m, p < k (the caller's
        // contract); `ra` is m x k and B's rounded copy k x n; `c` holds
        // `(m - 1) * ldc + n` elements with `ldc >= n` (checked above).
        _ => unsafe {
            let ra = rounded_copy(a, a_strides, m, k, b.lowp, parallel);
            portable_gemm(m, n, k, &ra, &b.rounded, c, ldc, parallel)
        },
    }
}

/// Elements below which rounding copies are made on one thread.
const PAR_MIN_COPY: usize = 1 << 15;

/// `rows x cols` row-major copy of a strided operand, each element rounded.
///
/// # Safety
/// `src` valid for every `(i, j)` its strides address, `i < rows, j < cols`.
unsafe fn rounded_copy<T: LowpSrc>(
    src: Ptr<T>,
    (rs, cs): (isize, isize),
    rows: usize,
    cols: usize,
    lowp: LowpType,
    parallel: bool,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    #[cfg(target_arch = "x86_64")]
    let vector = cs == 1 && pack::vector_rounding();
    let row = |(i, dst): (usize, &mut [f32])| {
        let base = i as isize * rs;
        #[cfg(target_arch = "x86_64")]
        if vector {
            // SAFETY: row i holds `cols` contiguous elements (cs == 1);
            // AVX-512 F/BW checked.
            unsafe {
                let src = std::slice::from_raw_parts(src.get().offset(base), cols);
                pack::round_run(src, dst, lowp);
            }
            return;
        }
        for (j, d) in dst.iter_mut().enumerate() {
            // SAFETY: (i, j) is inside the operand (caller's contract).
            let v = unsafe { *src.get().offset(base + j as isize * cs) };
            *d = lowp.round(v.to_f32());
        }
    };
    if parallel && rows * cols >= PAR_MIN_COPY {
        out.par_chunks_mut(cols).enumerate().for_each(row);
    } else {
        out.chunks_mut(cols).enumerate().for_each(row);
    }
    out
}

/// The portable product of rounded row-major copies, `c` at row stride
/// `ldc`.
///
/// # Safety
/// `a` is `m x k`, `b` `k x n`; `c` holds `(m - 1) * ldc + n`, `ldc >= n`.
#[allow(clippy::too_many_arguments)]
unsafe fn portable_gemm(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    parallel: bool,
) {
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    // SAFETY: a is m*k and b k*n row-major; c covers m rows of n at stride
    // ldc and aliases neither.
    unsafe {
        crate::host::gemm_threads::gemm(
            m,
            n,
            k,
            (c.as_mut_ptr(), ldc as isize),
            false,
            (a.as_ptr(), (k as isize, 1)),
            (b.as_ptr(), (n as isize, 1)),
            0.0f32,
            1.0f32,
            threads,
        )
    }
}

#[cfg(test)]
mod tests;
