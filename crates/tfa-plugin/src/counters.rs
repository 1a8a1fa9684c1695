//! How many times each NPU kernel ran: proof for tests and users that an op
//! really executed on the NPU (`tf_adapter.kernel_counts()`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

fn counts() -> &'static [AtomicU64] {
    static C: OnceLock<Vec<AtomicU64>> = OnceLock::new();
    C.get_or_init(|| tfa_ops::table().iter().map(|_| AtomicU64::new(0)).collect())
}

/// Counts one run of the op at `index` in `tfa_ops::table()`.
pub fn record(index: usize) {
    if let Some(c) = counts().get(index) {
        c.fetch_add(1, Ordering::Relaxed);
    }
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
    counts().iter().for_each(|c| c.store(0, Ordering::Relaxed));
}
