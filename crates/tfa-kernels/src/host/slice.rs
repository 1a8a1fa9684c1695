//! Strided slice, pad, concat and stack.
