//! Convolution kernels (NHWC): im2col + GEMM tiles, 1x1 as plain GEMM, depthwise direct.
