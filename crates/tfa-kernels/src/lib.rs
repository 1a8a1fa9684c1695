//! Backend kernels. They take typed views and parameters (no TensorFlow
//! types): the op table in `tfa-ops` decides which kernel serves which op.
//!
//! Kernels parallelise with rayon and run on whatever pool is current, so the
//! caller decides the thread budget (the plugin installs a pool per NPU).

pub mod host;
