//! Backend kernels. They take typed views and parameters (no TensorFlow
//! types): the op table in `tfa-ops` decides which kernel serves which op.
//!
//! Kernels parallelise with rayon and run on whatever pool is current, so the
//! caller decides the thread budget (the plugin installs a pool per NPU).

pub mod geometry;
pub mod host;

/// Random generators for the randomised tests, seeded by
/// `tfa_core::test_seed` (printed; `TFA_TEST_SEED` replays a failure).
#[cfg(test)]
pub(crate) fn test_rng() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(tfa_core::test_seed())
}

/// A rayon pool of `threads` for the tests that check a kernel's parallel
/// splits (odd counts such as 3 cut work where two threads would not).
#[cfg(test)]
pub(crate) fn test_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a test thread pool")
}
