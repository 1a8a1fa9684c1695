//! Kernel threads kept awake between kernels.
//!
//! Between two kernels TensorFlow's executor runs for tens of microseconds
//! (its bookkeeping, Reshapes, the next kernel's allocation). rayon puts
//! idle workers to sleep within microseconds, and on a VM a sleeping vCPU
//! is halted: waking the worker that runs the next kernel, then the one
//! that shares its loop, made each of ResNet50's batch-1 convolutions
//! 0.1-0.3 ms slower than back to back (a 9-layer sequence of its 7x7 and
//! 14x14 layers, 2-core Zen 4 VM: 8.6 ms back to back, 9.5-10.1 ms with
//! 100 us between layers, 8.6-9.4 ms with the threads kept awake). So
//! after each kernel the pool's workers spin for a short window (OpenMP's
//! `KMP_BLOCKTIME` does the same), running any work that arrives meanwhile
//! and yielding the core to other threads (TensorFlow's) on every turn.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

thread_local! {
    /// Set while this thread runs a spinner: one started from inside it
    /// (through `rayon::yield_now`) returns at once.
    static SPINNING: Cell<bool> = const { Cell::new(false) };
}

/// Nanoseconds since the first call: one clock for every NPU.
fn clock_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// One pool's window: until when its workers stay awake, and how many are
/// spinning now.
#[derive(Default)]
pub struct Warmth {
    until_ns: AtomicU64,
    spinners: AtomicUsize,
}

impl Warmth {
    /// Extends the window to `window_ns` from now; returns whether the
    /// caller should start spinners (none is spinning to see the extension).
    pub fn extend(&self, window_ns: u64) -> bool {
        self.until_ns
            .fetch_max(clock_ns() + window_ns, Ordering::AcqRel);
        self.spinners.load(Ordering::Acquire) == 0
    }

    /// Spins on this worker until the window closes, running pool work
    /// that arrives meanwhile. A spinner that finds the window extended
    /// just as it closed goes on, so an extension is never lost.
    pub fn spin(&self) {
        if SPINNING.with(|s| s.replace(true)) {
            return;
        }
        loop {
            self.spinners.fetch_add(1, Ordering::AcqRel);
            while clock_ns() < self.until_ns.load(Ordering::Acquire) {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::thread::yield_now();
                }
            }
            self.spinners.fetch_sub(1, Ordering::AcqRel);
            if clock_ns() >= self.until_ns.load(Ordering::Acquire) {
                break;
            }
        }
        SPINNING.with(|s| s.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::Duration;

    /// Polls `done` for up to 20 s (a loaded CI machine can stall threads
    /// for seconds; nothing here is a timing claim).
    fn eventually(done: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        done()
    }

    #[test]
    fn spinners_run_arriving_work_then_stop() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let warmth: &'static Warmth = Box::leak(Box::default());
        // A window far longer than the test: the spinners are still running
        // when the work arrives.
        assert!(warmth.extend(60_000_000_000));
        pool.spawn_broadcast(move |_| warmth.spin());
        assert!(eventually(|| warmth.spinners.load(Ordering::Acquire) == 2));
        // While they spin, an extension needs no new spinners.
        assert!(!warmth.extend(1_000));
        // Work spawned into the pool runs although every worker is spinning.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        pool.spawn(move || flag.store(true, Ordering::Release));
        assert!(eventually(|| ran.load(Ordering::Acquire)));
        // So does a spinner started from inside a spinner: it returns at once.
        let nested = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&nested);
        pool.spawn(move || {
            warmth.spin();
            flag.store(true, Ordering::Release);
        });
        assert!(eventually(|| nested.load(Ordering::Acquire)));
        assert_eq!(warmth.spinners.load(Ordering::Acquire), 2);
        // Closing the window stops them.
        warmth.until_ns.store(0, Ordering::Release);
        assert!(eventually(|| warmth.spinners.load(Ordering::Acquire) == 0));
        assert!(warmth.extend(1_000));
    }
}
