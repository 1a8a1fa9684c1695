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
