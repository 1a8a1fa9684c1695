//! Intel AMX-BF16 kernel. AMX intrinsics are unstable in Rust, so the tile
//! instructions are written with `asm!` (LLVM knows the mnemonics).
//!
//! Tile use: tmm0..3 hold a 32x32 float32 block (2x2 tiles of 16x16),
//! tmm4/tmm5 two 16-row x 32-k bfloat16 A tiles, tmm6/tmm7 two 16-pair x 16
//! column VNNI B tiles; one k step of 32 is 4 `tdpbf16ps`.

use super::pack::Micro;
use std::arch::asm;
use std::sync::OnceLock;

/// CPU has AMX-TILE and AMX-BF16, AVX-512 (for packing), and Linux granted
/// this process the tile data state. Checked once.
pub(super) fn available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| crate::host::cpu::features().amx_bf16 && request_tile_permission())
}

/// Linux (5.16+) hands out the 8 KB tile state only on request; without it
/// the first tile instruction faults (SIGILL).
fn request_tile_permission() -> bool {
    #[cfg(target_os = "linux")]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with these arguments only changes this
        // process's permitted xsave features; it reads no user memory.
        let r = unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            )
        };
        r == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The `ldtilecfg` operand: palette 1, tiles 0..8 of 16 rows x 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

static CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut i = 0;
    while i < 8 {
        colsb[i] = 64;
        rows[i] = 16;
        i += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

pub(super) struct Amx;

impl Micro for Amx {
    const MR: usize = 32;
    const KSTEP: usize = 32;

    unsafe fn begin() {
        // SAFETY: AMX is available (caller's contract); CONFIG is a valid
        // 64-byte palette-1 configuration.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) &CONFIG as *const TileConfig, options(nostack, readonly));
        }
    }

    unsafe fn tile(
        a: *const u16,
        kpad: usize,
        b0: *const u16,
        b1: *const u16,
        out: *mut f32,
        ldo: usize,
    ) {
        let lda = 2 * kpad;
        // SAFETY: tiles configured by `begin`; every load reads 16 rows of 64
        // bytes inside the packed A strip (32 x kpad) or a B panel (kpad/2
        // rows of 64 bytes), kk < kpad, kpad a multiple of 32; the stores
        // write 32 rows of 32 float32 at stride ldo, inside `out`.
        unsafe {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            let a1 = a.add(16 * kpad);
            let mut kk = 0;
            while kk < kpad {
                asm!(
                    "tileloadd tmm4, [{a0} + {lda}*1]",
                    "tileloadd tmm6, [{b0} + {s64}*1]",
                    "tileloadd tmm5, [{a1} + {lda}*1]",
                    "tileloadd tmm7, [{b1} + {s64}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a.add(kk),
                    a1 = in(reg) a1.add(kk),
                    b0 = in(reg) b0.add(16 * kk),
                    b1 = in(reg) b1.add(16 * kk),
                    lda = in(reg) lda,
                    s64 = in(reg) 64usize,
                    options(nostack, readonly)
                );
                kk += 32;
            }
            asm!(
                "tilestored [{c0} + {ld}*1], tmm0",
                "tilestored [{c1} + {ld}*1], tmm1",
                "tilestored [{c2} + {ld}*1], tmm2",
                "tilestored [{c3} + {ld}*1], tmm3",
                c0 = in(reg) out,
                c1 = in(reg) out.add(16),
                c2 = in(reg) out.add(16 * ldo),
                c3 = in(reg) out.add(16 * ldo + 16),
                ld = in(reg) 4 * ldo,
                options(nostack)
            );
        }
    }

    unsafe fn end() {
        // Releasing keeps the 8 KB tile state out of this pool thread's
        // context switches while it runs other kernels.
        // SAFETY: tilerelease only resets tile state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}
