//! The CPU's vector features, probed once: every kernel that picks a code
//! path by instruction set asks here, so the checks match what the
//! `#[target_feature]` functions are compiled for, and `tf_adapter.config()`
//! can say what this machine runs.

use std::sync::OnceLock;

/// What this CPU runs, as the kernels group it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// AVX2 and FMA (the `avx2,fma` kernels).
    pub avx2: bool,
    /// AVX-512 F, DQ, VL and BW with AVX2 and FMA: every subset the
    /// `avx512` kernels are compiled for (F alone is not enough).
    pub avx512: bool,
    /// `vdpbf16ps` (AVX512-BF16) on top of `avx512`.
    pub avx512_bf16: bool,
    /// AMX-TILE and AMX-BF16 reported by CPUID, on top of `avx512`. The
    /// operating system must still grant the tile state (see
    /// `lowp_gemm::amx`).
    pub amx_bf16: bool,
    /// `avx512_bf16` where `vdpbf16ps` issues as fast as a float32 FMA, so
    /// its two products per lane make bfloat16 products about twice as fast
    /// as float32 ones: AMD Zen 4/5 (a 2048^3 bfloat16 MatMul on two Zen 4
    /// cores: 361 GFLOP/s against 162 through the float32 GEMM). On Intel
    /// CPUs without AMX the AVX512-BF16 kernel measured slower than the
    /// float32 GEMM, so they keep the portable path.
    pub bf16_dot_full_rate: bool,
}

/// The features of this CPU (probed on first use).
pub fn features() -> CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    *FEATURES.get_or_init(probe)
}

impl CpuFeatures {
    /// The names of the features present, widest last (for logs and
    /// `tf_adapter.config()`).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.avx2, "avx2+fma"),
            (self.avx512, "avx512"),
            (self.avx512_bf16, "avx512_bf16"),
            (self.amx_bf16, "amx_bf16"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

#[cfg(target_arch = "x86_64")]
fn probe() -> CpuFeatures {
    use std::arch::is_x86_feature_detected as has;
    let avx2 = has!("avx2") && has!("fma");
    let avx512 =
        avx2 && has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx512bw");
    CpuFeatures {
        avx2,
        avx512,
        avx512_bf16: avx512 && has!("avx512bf16"),
        amx_bf16: avx512 && cpuid_amx_bf16(),
        bf16_dot_full_rate: avx512 && has!("avx512bf16") && cpuid_vendor_amd(),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn probe() -> CpuFeatures {
    CpuFeatures::default()
}

/// AMX is not in `is_x86_feature_detected!` on stable Rust: CPUID leaf 7
/// subleaf 0, EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
#[cfg(target_arch = "x86_64")]
fn cpuid_amx_bf16() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    #[allow(unused_unsafe)]
    // SAFETY: cpuid exists on every x86_64 CPU; leaf 7 is read only where
    // leaf 0 reports it.
    let edx = unsafe {
        if __cpuid(0).eax < 7 {
            return false;
        }
        __cpuid_count(7, 0).edx
    };
    edx & (1 << 22) != 0 && edx & (1 << 24) != 0
}

/// CPUID leaf 0's vendor string is "AuthenticAMD" (EBX, EDX, ECX).
#[cfg(target_arch = "x86_64")]
fn cpuid_vendor_amd() -> bool {
    use std::arch::x86_64::__cpuid;
    #[allow(unused_unsafe)]
    // SAFETY: cpuid leaf 0 exists on every x86_64 CPU.
    let r = unsafe { __cpuid(0) };
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..].copy_from_slice(&r.ecx.to_le_bytes());
    &v == b"AuthenticAMD"
}

/// The instruction sets the window kernels (pooling, depthwise and their
/// gradients) are compiled for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Simd {
    Base,
    /// AVX2 + FMA.
    Avx2,
    /// AVX-512 (see [`CpuFeatures::avx512`]).
    Avx512,
}

/// The best of [`Simd`] this CPU runs.
pub(crate) fn simd_level() -> Simd {
    let f = features();
    if f.avx512 {
        Simd::Avx512
    } else if f.avx2 {
        Simd::Avx2
    } else {
        Simd::Base
    }
}

/// Says on stderr that a test of `feature`-only code did not run here (so
/// a green run on a CPU without it is not mistaken for coverage) and
/// returns whether the CPU has it.
#[cfg(test)]
pub(crate) fn test_needs(feature: &str, present: bool) -> bool {
    if !present {
        eprintln!("skipped: this CPU lacks {feature}");
    }
    present
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wider_features_imply_narrower_ones() {
        let f = features();
        assert!(!f.avx512 || f.avx2);
        assert!(!f.avx512_bf16 || f.avx512);
        assert!(!f.amx_bf16 || f.avx512);
        assert!(!f.bf16_dot_full_rate || f.avx512_bf16);
        assert_eq!(
            f.names().len(),
            [f.avx2, f.avx512, f.avx512_bf16, f.amx_bf16]
                .iter()
                .filter(|b| **b)
                .count()
        );
    }
}
