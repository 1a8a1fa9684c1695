//! AVX512-BF16 kernel (for CPUs without AMX: Cooper Lake, Zen 4/5): 8 rows x
//! 32 columns of float32 accumulators in 16 zmm registers; per k pair one
//! broadcast of A's (k, k+1) pair per row and one VNNI row per B panel.
//! The loop is bound by `vdpbf16ps` throughput: on Sapphire Rapids that
//! makes it slower than the float32 gemm (measured 55-80 vs 110-160 GFLOP/s
//! on one core), so it is only chosen where AMX is absent.

use super::pack::Micro;
use std::arch::x86_64::*;

pub(super) fn available() -> bool {
    crate::host::cpu::features().avx512_bf16
}

pub(super) struct Avx512;

const MR: usize = 8;

/// [`Micro::tile`] for this kernel.
///
/// # Safety
/// The CPU must have AVX-512 F/BW/BF16; the pointers as in [`Micro::tile`]
/// (`kpad` even).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile_impl(
    a: *const u16,
    kpad: usize,
    b0: *const u16,
    b1: *const u16,
    out: *mut f32,
    ldo: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kpad / 2 {
        // SAFETY: pair p < kpad/2 of each panel is 32 u16 (64 bytes); each
        // A row of the strip holds kpad elements, 2p + 1 < kpad.
        unsafe {
            let vb0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b0.add(32 * p).cast()));
            let vb1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b1.add(32 * p).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = a.add(r * kpad + 2 * p).cast::<i32>().read_unaligned();
                let va: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                acc[0] = _mm512_dpbf16_ps(acc[0], va, vb0);
                acc[1] = _mm512_dpbf16_ps(acc[1], va, vb1);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: `out` is writable for MR rows of 32 at stride ldo.
        unsafe {
            _mm512_storeu_ps(out.add(r * ldo), acc[0]);
            _mm512_storeu_ps(out.add(r * ldo + 16), acc[1]);
        }
    }
}

impl Micro for Avx512 {
    const MR: usize = MR;
    const KSTEP: usize = 2;

    unsafe fn begin() {}

    unsafe fn tile(
        a: *const u16,
        kpad: usize,
        b0: *const u16,
        b1: *const u16,
        out: *mut f32,
        ldo: usize,
    ) {
        // SAFETY: the CPU has AVX512-BF16 (path available); bounds as the
        // trait contract.
        unsafe { tile_impl(a, kpad, b0, b1, out, ldo) }
    }

    unsafe fn end() {}
}
