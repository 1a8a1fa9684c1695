//! The `host` backend: device memory is host memory, kernels run on CPU threads.

/// Defines `fn $name` that calls `$body` (an `#[inline(always)]` function
/// with the same parameters) compiled for the widest vector unit the CPU
/// has: AVX-512 F/DQ/VL/BW, else AVX2 with FMA, else baseline x86-64 (what
/// the wheel targets: its loops would otherwise run as 4-lane SSE2 code).
/// A named function rather than [`on_widest_simd`]'s closure because LLVM
/// did not inline larger closures into that wrapper (measured: SSE2 code).
/// `[...]` holds the generic parameters, an optional second `[...]` the
/// arguments the wrappers are called with where they cannot be inferred
/// (const generics); `$body` may carry a turbofish.
macro_rules! widest_simd_fn {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident[$($generics:tt)*] $([$($targs:tt)*])? ($($arg:ident: $ty:ty),* $(,)?)
        => $($body:tt)+
    ) => {
        $(#[$meta])*
        #[inline(always)]
        $vis fn $name<$($generics)*>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                /// `$body` compiled for AVX-512.
                ///
                /// # Safety
                /// The CPU must have AVX-512 F/DQ/VL/BW, AVX2 and FMA.
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
                unsafe fn avx512<$($generics)*>($($arg: $ty),*) {
                    $($body)+($($arg),*)
                }
                /// `$body` compiled for AVX2.
                ///
                /// # Safety
                /// The CPU must have AVX2 and FMA.
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<$($generics)*>($($arg: $ty),*) {
                    $($body)+($($arg),*)
                }
                match $crate::host::cpu::simd_level() {
                    // SAFETY: simd_level() reports Avx512 only where the CPU
                    // has every subset `avx512` enables (cpu::probe).
                    $crate::host::cpu::Simd::Avx512 => return unsafe { avx512$(::<$($targs)*>)?($($arg),*) },
                    // SAFETY: Avx2 only where the CPU has AVX2 and FMA.
                    $crate::host::cpu::Simd::Avx2 => return unsafe { avx2$(::<$($targs)*>)?($($arg),*) },
                    $crate::host::cpu::Simd::Base => {}
                }
            }
            $($body)+($($arg),*)
        }
    };
}

pub mod all_reduce;
pub mod arg_reduce;
pub mod arith;
pub mod band_part;
pub mod batch_matmul;
pub mod broadcast;
pub mod cast;
pub mod clip;
pub mod complex;
pub mod conv;
pub mod conv3d;
pub mod conv_grad;
mod conv_grad_lowp;
pub mod cpu;
pub mod depth_space;
pub mod einsum;
pub mod elementwise;
pub mod fft;
pub mod fused;
pub mod gather;
pub(crate) mod gemm_threads;
pub mod inplace;
pub mod loss;
pub mod lowp_gemm;
pub mod maps;
pub mod matmul;
pub mod mirror_pad;
pub mod numeric;
pub(crate) mod par;
pub mod pool;
pub mod pool3d;
pub mod pool_argmax;
pub mod pool_grad;
pub mod random;
pub mod reduce;
pub mod resize;
pub mod resize_bicubic;
pub mod reverse;
pub mod roll;
pub mod scale_translate;
pub mod scan;
pub mod scatter;
pub mod segment;
pub mod sequence;
pub mod slice;
pub mod space_batch;
pub mod topk;
pub mod transpose;
pub mod winograd;

/// Below this many elements a kernel runs on the calling thread: splitting
/// costs more than it saves.
pub(crate) const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// Elements per parallel task for memory-bound loops.
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// Elements per parallel task for a loop over `len` elements of `cost` adds'
/// work each (1 for memory-bound loops); `len` or more means one task on
/// the calling thread. Loops split once `len * cost` reaches
/// `PAR_MIN_ELEMENTS`, so a costly function over a small tensor (an LSTM
/// gate's sigmoid on 32x256) is split too, into about four tasks per thread
/// (a helper that wakes late still finds work: `par::for_each_task`) of at
/// most `PAR_CHUNK` elements. While a `par::Serial` lives, one task.
pub(crate) fn par_chunk(len: usize, cost: usize) -> usize {
    let threads = rayon::current_num_threads();
    let cost = cost.max(1);
    if len.saturating_mul(cost) < PAR_MIN_ELEMENTS || threads == 1 || par::is_serial() {
        return len.max(1);
    }
    let fewest = (PAR_MIN_ELEMENTS / 16 / cost).max(256);
    PAR_CHUNK.min(len.div_ceil(4 * threads)).max(fewest)
}

/// Calls `f(first_row, rows)` on `dst` cut into whole rows of `row` elements:
/// all at once when small, else in parallel chunks of about half the
/// threshold each.
pub(crate) fn for_row_chunks<T: Send>(
    dst: &mut [T],
    row: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if dst.len() < PAR_MIN_ELEMENTS || row == 0 {
        f(0, dst);
    } else {
        let per = (PAR_MIN_ELEMENTS / 2 / row).max(1);
        par::for_each_chunk_mut(dst, per * row, |i, c| f(i * per, c));
    }
}

/// `f(arg)` compiled for AVX-512: the loops `f` inlines vectorise 16 wide.
///
/// # Safety
/// The CPU must have every feature enabled here (`cpu::Simd::Avx512`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
pub(crate) unsafe fn with_avx512<A, R, F: FnOnce(A) -> R>(arg: A, f: F) -> R {
    f(arg)
}

/// `f(arg)` compiled for AVX2 and FMA: the loops `f` inlines vectorise 8
/// wide.
///
/// # Safety
/// The CPU must have AVX2 and FMA (`cpu::features().avx2`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn with_avx2<A, R, F: FnOnce(A) -> R>(arg: A, f: F) -> R {
    f(arg)
}

/// `f(arg)` compiled for the widest vector unit this CPU has: the wheel
/// targets baseline x86-64, whose 4-lane SSE2 code the plain loops would
/// otherwise run on. `f` must be inlined into the wrapper for this to help
/// (a closure is, a named function needs `#[inline(always)]`).
#[inline(always)]
pub(crate) fn on_widest_simd<A, R, F: FnOnce(A) -> R>(arg: A, f: F) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match cpu::simd_level() {
            // SAFETY: simd_level() reported every feature each wrapper enables.
            cpu::Simd::Avx512 => return unsafe { with_avx512(arg, f) },
            // SAFETY: as above.
            cpu::Simd::Avx2 => return unsafe { with_avx2(arg, f) },
            cpu::Simd::Base => {}
        }
    }
    f(arg)
}
