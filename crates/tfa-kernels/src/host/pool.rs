//! Pooling kernels (NHWC).
