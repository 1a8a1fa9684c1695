//! The NPU devices of this process: memory and a thread pool each.

pub mod memory;
pub mod platform;
mod warm;

use crate::config;
use memory::DeviceMemory;
use std::sync::OnceLock;
use tfa_core::{Error, Result};

pub struct Npu {
    pub memory: DeviceMemory,
    threads: usize,
    pool: OnceLock<Result<rayon::ThreadPool>>,
    /// The only NPU of the process: its kernels use rayon's global pool.
    alone: bool,
    /// How long its kernel threads stay awake after a kernel (`warm`); 0
    /// where the NPUs' threads outnumber the cores (spinners would take
    /// the cores other NPUs' kernels need).
    spin_ns: u64,
    warmth: warm::Warmth,
}

impl Npu {
    /// The kernel threads of this NPU (built on first use).
    pub fn pool(&self) -> Result<&rayon::ThreadPool> {
        let ordinal = self.memory.ordinal;
        self.pool
            .get_or_init(|| {
                kernel_threads(self.threads, move |i| format!("tfa-npu{ordinal}-{i}"))
                    .build()
                    .map_err(|e| {
                        Error::Internal(format!("NPU:{ordinal}: cannot start kernel threads: {e}"))
                    })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Whether `install` runs on rayon's global pool rather than this NPU's
    /// own (see `install`).
    fn uses_global_pool(&self) -> bool {
        self.alone && rayon::current_num_threads() == self.threads
    }

    /// Runs `f` on this NPU's kernel threads, the caller blocked until it
    /// returns. The only NPU of a process uses rayon's global pool (when it
    /// has this NPU's size, see `all`): kernels run on TensorFlow's thread
    /// split their work there (`kernels::compute`), so one set of threads
    /// serves both and stays awake, where two pools took turns to fall
    /// asleep and be woken (measured with `kernels::INLINE_BELOW_NS`).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        if self.uses_global_pool() {
            // From a thread outside every pool `scope` runs `f` on a worker
            // of the global pool and waits, as `install` does.
            return Ok(rayon::scope(|_| f()));
        }
        Ok(self.pool()?.install(f))
    }

    /// Keeps the kernel threads `install` would use awake for the
    /// configured window (see `warm`), ready for the next kernel.
    pub fn keep_warm(&'static self) {
        if self.spin_ns == 0 || !self.warmth.extend(self.spin_ns) {
            return;
        }
        if self.uses_global_pool() {
            rayon::spawn_broadcast(move |_| self.warmth.spin());
        } else if let Ok(pool) = self.pool() {
            pool.spawn_broadcast(move |_| self.warmth.spin());
        }
    }
}

/// The builder of a pool of kernel threads (an NPU's own, or the global one
/// its inline kernels use): `threads` named by `name`, subnormals flushed.
fn kernel_threads(
    threads: usize,
    name: impl Fn(usize) -> String + 'static,
) -> rayon::ThreadPoolBuilder {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(name)
        .start_handler(|_| flush_denormals())
}

/// Sets this thread to flush subnormal floats to zero (FTZ) and read them as
/// zero (DAZ), as TensorFlow sets its own kernel threads (tsl's
/// `ScopedFlushDenormal`): a kernel that ran on our threads kept subnormals
/// where the same kernel run inline on TensorFlow's thread, or TensorFlow's
/// own CPU kernel, flushed them (`exp(-100) * inf` was inf here, NaN there),
/// and subnormal operands are slow on some CPUs. No-op off x86-64.
fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: MXCSR bits 15 (FTZ) and 6 (DAZ) change only how this thread
    // rounds subnormals. The intrinsics are deprecated in favour of inline
    // assembly, which would say the same thing less plainly.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// All NPUs, per the configuration.
pub fn all() -> Result<&'static [Npu]> {
    static DEVICES: OnceLock<Result<Vec<Npu>>> = OnceLock::new();
    DEVICES
        .get_or_init(|| {
            let cfg = config::get()?;
            // A kernel that runs inline on TensorFlow's thread (see
            // `kernels::compute`) parallelises on rayon's global pool, one in
            // an NPU's pool on that pool: kernels plan their partial sums by
            // the pool's size, so both pools must be the same size for a
            // kernel to give the same bits either way. Fails harmlessly if
            // something in this library already started the global pool;
            // `compute` then checks the sizes itself.
            let _ = kernel_threads(cfg.threads, |i| format!("tfa-inline-{i}")).build_global();
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            let spin_ns = if cfg.npu_count * cfg.threads <= cores {
                cfg.spin_us * 1000
            } else {
                0
            };
            Ok((0..cfg.npu_count)
                .map(|i| Npu {
                    memory: DeviceMemory::new(i, cfg.memory),
                    threads: cfg.threads,
                    pool: OnceLock::new(),
                    alone: cfg.npu_count == 1,
                    spin_ns,
                    warmth: Default::default(),
                })
                .collect())
        })
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(Clone::clone)
}

pub fn get(ordinal: usize) -> Result<&'static Npu> {
    all()?
        .get(ordinal)
        .ok_or_else(|| Error::InvalidArgument(format!("there is no NPU:{ordinal}")))
}
