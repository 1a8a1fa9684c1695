//! How many times each NPU kernel ran, and for how long: proof for tests and
//! users that an op really executed on the NPU (`tf_adapter.kernel_counts()`),
//! and a per-op-type profile (`tf_adapter.kernel_times()`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn counts() -> &'static [AtomicU64] {
    static C: OnceLock<Vec<AtomicU64>> = OnceLock::new();
    C.get_or_init(|| tfa_ops::table().iter().map(|_| AtomicU64::new(0)).collect())
}

fn nanos() -> &'static [AtomicU64] {
    static N: OnceLock<Vec<AtomicU64>> = OnceLock::new();
    N.get_or_init(|| tfa_ops::table().iter().map(|_| AtomicU64::new(0)).collect())
}

/// Counts one run of the op at `index` in `tfa_ops::table()`.
pub fn record(index: usize) {
    if let Some(c) = counts().get(index) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Adds `ns` nanoseconds of kernel time to the op at `index`.
pub fn record_time(index: usize, ns: u64) {
    if let Some(c) = nanos().get(index) {
        c.fetch_add(ns, Ordering::Relaxed);
    }
}

/// (op type, total kernel seconds) for every op that ran.
pub fn times() -> Vec<(&'static str, f64)> {
    tfa_ops::table()
        .iter()
        .zip(nanos())
        .map(|(d, c)| (d.name, c.load(Ordering::Relaxed) as f64 * 1e-9))
        .filter(|(_, s)| *s > 0.0)
        .collect()
}

/// (op type, runs) for every op that ran at least once.
pub fn snapshot() -> Vec<(&'static str, u64)> {
    tfa_ops::table()
        .iter()
        .zip(counts())
        .map(|(d, c)| (d.name, c.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

pub fn reset() {
    counts()
        .iter()
        .chain(nanos())
        .for_each(|c| c.store(0, Ordering::Relaxed));
}
