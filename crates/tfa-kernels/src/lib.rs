//! Backend kernels. They take typed views and parameters (no TensorFlow
//! types): the op table in `tfa-ops` decides which kernel serves which op.
//!
//! Kernels parallelise with rayon and run on whatever pool is current, so the
//! caller decides the thread budget (the plugin installs a pool per NPU).

pub mod host;

/// Random generators for the randomised tests: seeded from `TFA_TEST_SEED`
/// when set, else from the clock, and the seed is printed (cargo shows it
/// beside a failure) so that any failing case can be replayed.
#[cfg(test)]
pub(crate) fn test_rng() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    let seed = std::env::var("TFA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("random cases from TFA_TEST_SEED={seed}");
    rand::rngs::StdRng::seed_from_u64(seed)
}
