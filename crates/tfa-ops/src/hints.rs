//! Equivalent formulations for TensorFlow ops the NPU does not run, quoted by
//! strict mode and the coverage report: "use this instead".

/// (op type, supported formulation).
pub const ALTERNATIVES: &[(&str, &str)] = &[
    (
        "ClipByValue",
        "tf.minimum(tf.maximum(x, lo), hi) (Maximum, Minimum)",
    ),
    (
        "FFT",
        "a MatMul with the DFT matrix, real and imaginary parts as float32 tensors",
    ),
    (
        "RFFT",
        "a MatMul with the real-input DFT matrix (cos and sin parts as float32 tensors)",
    ),
    (
        "IRFFT",
        "a MatMul with the inverse DFT matrix (cos and sin parts as float32 tensors)",
    ),
    (
        "L2Loss",
        "tf.reduce_sum(tf.square(x)) / 2 (Square, Sum, Mul)",
    ),
];

/// The supported formulation for `op`, if there is one.
pub fn alternative(op: &str) -> Option<&'static str> {
    ALTERNATIVES.iter().find(|(o, _)| *o == op).map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hints_are_for_unsupported_ops_only() {
        for (op, _) in super::ALTERNATIVES {
            assert!(
                crate::find(op).is_none(),
                "{op} is supported: drop its hint"
            );
        }
    }
}
