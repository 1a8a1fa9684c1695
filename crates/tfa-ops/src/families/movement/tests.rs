use super::{reshape_target, split_v_sizes};
use tfa_core::Error;

#[test]
fn split_v_sizes_follow_tensorflow() {
    assert_eq!(split_v_sizes(&[2, -1, 6], true, 10).unwrap(), vec![2, 2, 6]);
    let msg = |r: tfa_core::Result<Vec<usize>>| r.unwrap_err().to_string();
    assert_eq!(
        msg(split_v_sizes(&[-1, -1, 6], true, 10)),
        "There can only be one -1 in the input."
    );
    assert_eq!(
        msg(split_v_sizes(&[-2, 6, 6], true, 10)),
        "Split size at index 0 must be >= 0. Got: -2"
    );
    // The sum wraps in the sizes' own type, as TensorFlow's does.
    assert!(msg(split_v_sizes(&[(1 << 31) - 1, 2], false, 10)).ends_with("Got: -2147483647"));
    assert!(msg(split_v_sizes(&[i64::MAX, 2], true, 10)).ends_with("Got: -9223372036854775807"));
    // Sizes that only add up by wrapping: TensorFlow runs out of memory.
    let e = split_v_sizes(&[1 << 62, 1 << 62, 1 << 62, -1], true, 10).unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted(_)), "{e}");
    let e = split_v_sizes(&[(1 << 31) - 1, (1 << 31) - 1, 4, -1], false, 10).unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted(_)), "{e}");
}

#[test]
fn reshape_rules() {
    assert_eq!(reshape_target(&[6], &[2, -1]).unwrap(), vec![2, 3]);
    assert_eq!(reshape_target(&[0], &[0, 5]).unwrap(), vec![0, 5]);
    assert_eq!(reshape_target(&[1], &[]).unwrap(), Vec::<usize>::new());
    assert!(reshape_target(&[6], &[4])
        .unwrap_err()
        .to_string()
        .contains("6 values, but the requested shape has 4"));
    assert!(reshape_target(&[6], &[-1, -1])
        .unwrap_err()
        .to_string()
        .contains("Only one input size may be -1"));
    // Zero-sized dims stay out of the products (TensorFlow's rule).
    assert_eq!(reshape_target(&[0, 3], &[0, -1]).unwrap(), vec![0, 3]);
    assert_eq!(reshape_target(&[2, 0], &[-1, 0]).unwrap(), vec![2, 0]);
    assert_eq!(reshape_target(&[0, 3], &[-1]).unwrap(), vec![0]);
    assert_eq!(reshape_target(&[0, 3], &[0, -1, 4]).unwrap(), vec![0, 0, 4]);
}

#[test]
fn concat_leaves_int32_to_tensorflows_default_kernel() {
    // TensorFlow registers a DEVICE_DEFAULT int32 ConcatV2 (host memory).
    let (_, d) = crate::find("ConcatV2").unwrap();
    assert!(!d.supports(tfa_core::DType::I32));
    for name in [
        "Transpose",
        "StridedSlice",
        "Pack",
        "Pad",
        "PadV2",
        "GatherV2",
    ] {
        assert!(crate::find(name).is_some(), "{name}");
    }
}
