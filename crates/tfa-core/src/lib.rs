//! Core types shared by every tf_adapter layer. Nothing here knows about the
//! TensorFlow C API; dtype numbers and status codes match TensorFlow's so the
//! plugin can pass them through unchanged.

pub mod dtype;
pub mod error;
pub mod shape;
pub mod tensor;

pub use dtype::{c64, DType, Element};
pub use error::{Code, Error, Result};
pub use shape::Shape;
pub use tensor::{TensorMut, TensorView};

pub use half::{bf16, f16};

/// The seed of a randomised test: `TFA_TEST_SEED` when set, else the clock.
/// It is printed (cargo shows it beside a failure), so that any failing case
/// can be replayed with `TFA_TEST_SEED=<seed> cargo test ...`.
pub fn test_seed() -> u64 {
    let seed = std::env::var("TFA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("random cases from TFA_TEST_SEED={seed}");
    seed
}
