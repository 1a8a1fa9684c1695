//! Equivalent formulations for TensorFlow ops the NPU does not run, quoted by
//! strict mode and the coverage report: "use this instead".

/// (op type, supported formulation).
pub const ALTERNATIVES: &[(&str, &str)] = &[(
    "FFT2D",
    "tf.signal.fft over each axis in turn (FFT runs on the NPU), with a Transpose between",
)];

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
