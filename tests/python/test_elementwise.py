"""Elementwise kernels against TensorFlow CPU over random shapes (broadcasting,
size-0 dims, rank-0 operands) and every registered dtype."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, on, random_tensor

FLOATS = [tf.float32, tf.float16, tf.bfloat16, tf.float64]
INTS = [tf.int64, tf.int8, tf.int16, tf.uint8]

BINARY = {
    "Add": (tf.raw_ops.Add, FLOATS + INTS),
    "AddV2": (tf.raw_ops.AddV2, FLOATS + INTS),
    "Sub": (tf.raw_ops.Sub, FLOATS + INTS),
    "Mul": (tf.raw_ops.Mul, FLOATS + INTS),
    "RealDiv": (tf.raw_ops.RealDiv, FLOATS),
    "Maximum": (tf.raw_ops.Maximum, FLOATS + INTS),
    "Minimum": (tf.raw_ops.Minimum, FLOATS + INTS),
    "SquaredDifference": (tf.raw_ops.SquaredDifference, FLOATS + [tf.int64]),
}

UNARY = {
    "Neg": (lambda x: tf.raw_ops.Neg(x=x), FLOATS + [tf.int64, tf.int8]),
    "Square": (lambda x: tf.raw_ops.Square(x=x), FLOATS + [tf.int64]),
    "Sqrt": (lambda x: tf.raw_ops.Sqrt(x=x), FLOATS),
    "Rsqrt": (lambda x: tf.raw_ops.Rsqrt(x=x), FLOATS),
    "Exp": (lambda x: tf.raw_ops.Exp(x=x), FLOATS),
    "Log": (lambda x: tf.raw_ops.Log(x=x), FLOATS),
    "Relu": (lambda x: tf.raw_ops.Relu(features=x), FLOATS + [tf.int32, tf.int64, tf.uint8]),
}


def broadcast_pair(rng):
    """Two shapes that broadcast: random rank 0..4, dims 0..6, some set to 1
    or dropped on the left."""
    rank = int(rng.integers(0, 5))
    out = [int(rng.choice([0, 1, 2, 3, 5, 6], p=[0.05, 0.15, 0.2, 0.25, 0.2, 0.15])) for _ in range(rank)]

    def derive():
        keep = int(rng.integers(0, rank + 1))
        return [1 if rng.random() < 0.3 else d for d in out[rank - keep:]]

    return derive(), derive()


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_cpu(name, rng):
    fn, dtypes = BINARY[name]
    for dtype in dtypes:
        for _ in range(12):
            sa, sb = broadcast_pair(rng)
            a, b = random_tensor(rng, sa, dtype), random_tensor(rng, sb, dtype)
            if name == "RealDiv":
                b = tf.where(tf.abs(b) < tf.cast(0.25, dtype), tf.ones_like(b), b)
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", lambda: fn(x=a, y=b))
            cpu = on("/CPU:0", lambda: fn(x=a, y=b))
            assert npu.device.endswith("NPU:0"), (name, dtype)
            assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype)
            assert_matches(npu, cpu, dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_cpu(name, rng):
    fn, dtypes = UNARY[name]
    for dtype in dtypes:
        for _ in range(8):
            shape = [int(d) for d in rng.integers(0, 7, size=int(rng.integers(0, 4)))]
            low = 0.05 if name in ("Sqrt", "Rsqrt", "Log") else -3.0
            x = random_tensor(rng, shape, dtype, low=low)
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", fn, x)
            cpu = on("/CPU:0", fn, x)
            assert npu.device.endswith("NPU:0")
            if dtype != tf.int32:  # int32 Relu has no TensorFlow default kernel: ours runs
                assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype)
            assert_matches(npu, cpu, dtype)


def test_special_values_follow_tensorflow():
    x = tf.constant([0.0, -1.0, 4.0, float("inf"), float("nan")])
    for fn in (tf.math.rsqrt, tf.math.log, tf.math.sqrt, tf.math.exp, tf.nn.relu):
        assert_matches(on("/NPU:0", fn, x), on("/CPU:0", fn, x), tf.float32)
    y = tf.constant([1.0, float("nan"), -2.0, 0.0, 3.0])
    for fn in (tf.maximum, tf.minimum, tf.math.divide):
        assert_matches(on("/NPU:0", fn, x, y), on("/CPU:0", fn, x, y), tf.float32)


def test_large_tensors_use_parallel_path(rng):
    a = random_tensor(rng, [300, 1000], tf.float32)
    b = random_tensor(rng, [1000], tf.float32)
    for fn in (tf.add, tf.multiply, tf.maximum):
        assert_matches(on("/NPU:0", fn, a, b), on("/CPU:0", fn, a, b), tf.float32)
    assert_matches(on("/NPU:0", tf.exp, a), on("/CPU:0", tf.exp, a), tf.float32)


def test_add_n_matches_cpu(rng):
    for dtype in [tf.float32, tf.bfloat16, tf.float16, tf.int64]:
        for n in (1, 2, 5):
            shape = [int(d) for d in rng.integers(0, 5, size=2)]
            xs = [random_tensor(rng, shape, dtype) for _ in range(n)]
            tf_adapter.reset_kernel_counts()
            add_n = lambda: tf.raw_ops.AddN(inputs=xs)  # noqa: E731
            npu = on("/NPU:0", add_n)
            assert tf_adapter.kernel_counts().get("AddN") == 1
            assert_matches(npu, on("/CPU:0", add_n), dtype)


def test_incompatible_shapes_raise_invalid_argument():
    with pytest.raises(tf.errors.InvalidArgumentError, match="Incompatible shapes"):
        on("/NPU:0", tf.add, tf.ones([2, 3]), tf.ones([4]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        on("/NPU:0", lambda: tf.raw_ops.AddN(inputs=[tf.ones([2]), tf.ones([3])]))


def test_int32_arithmetic_stays_on_tensorflows_host_memory_kernel():
    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        c = tf.constant([1, 2]) + tf.constant([3, 4])
    assert c.numpy().tolist() == [4, 6]
    assert "AddV2" not in tf_adapter.kernel_counts()


def test_in_place_forwarding_keeps_inputs_intact(rng):
    # A tensor still referenced must never be overwritten by a forwarded kernel.
    a = on("/NPU:0", tf.identity, random_tensor(rng, [64, 64], tf.float32))
    ref = a.numpy().copy()
    with tf.device("/NPU:0"):
        b = a + 1.0
        c = tf.exp(a)
    np.testing.assert_array_equal(a.numpy(), ref)
    np.testing.assert_allclose(b.numpy(), ref + 1.0)
    np.testing.assert_allclose(c.numpy(), np.exp(ref), rtol=1e-6)
