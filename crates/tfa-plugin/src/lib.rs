//! tf_adapter's TensorFlow plugin. The three entry points TensorFlow looks up
//! are `SE_InitPlugin` (device/platform.rs), `TF_InitKernel` (kernels.rs) and
//! `TF_InitGraph` (graph.rs). With the `python` feature the same library is
//! also the `tf_adapter._native` Python module (python.rs).
//!
//! Every `extern "C"` function catches panics and reports errors through
//! TF_Status (ffi/status.rs): nothing may unwind into TensorFlow.

pub(crate) mod collective;
pub mod config;
pub mod counters;
pub(crate) mod custom_ops;
pub mod device;
pub(crate) mod ffi;
pub(crate) mod graph;
pub(crate) mod host_const;
pub(crate) mod kernels;
#[cfg(feature = "python")]
mod python;
