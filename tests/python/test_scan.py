"""Cumsum and Cumprod against TensorFlow CPU (random shapes, axes, every
`exclusive`/`reverse` combination, every registered dtype family), and their
gradients strictly on the NPU."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, on, random_tensor

TYPES = [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int32, tf.int64, tf.int8, tf.uint8]


@pytest.mark.parametrize("op", ["Cumsum", "Cumprod"])
@pytest.mark.parametrize("dtype", TYPES)
def test_scan_random(op, dtype, rng):
    fn = getattr(tf.raw_ops, op)
    for _ in range(8):
        rank = int(rng.integers(1, 5))
        shape = [int(d) for d in rng.choice([0, 1, 2, 3, 6], size=rank, p=[0.05, 0.2, 0.25, 0.25, 0.25])]
        axis = int(rng.integers(-rank, rank))
        # Products of small values, so integer types do not overflow.
        x = random_tensor(rng, shape, dtype, low=-1.5, high=1.5) if op == "Cumprod" else random_tensor(rng, shape, dtype)
        itype = tf.int64 if rng.random() < 0.5 else tf.int32
        flags = dict(exclusive=bool(rng.random() < 0.5), reverse=bool(rng.random() < 0.5))
        call = lambda: fn(x=x, axis=tf.constant(axis, itype), **flags)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", call)
        assert npu.device.endswith("NPU:0")
        assert tf_adapter.kernel_counts().get(op) == 1, (shape, axis)
        assert_matches(npu, on("/CPU:0", call), dtype)


def test_cumsum_large_matches_cpu(rng):
    # Parallel over the outer dims; a long scan along a middle axis.
    x = random_tensor(rng, [64, 300, 17], tf.float32)
    for axis in (0, 1, 2):
        got, want = on("/NPU:0", tf.math.cumsum, x, axis), on("/CPU:0", tf.math.cumsum, x, axis)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-4)


def test_cumsum_and_its_gradient_run_strictly_on_the_npu(rng, strict_placement):
    # The gradient of a cumsum is a reversed cumsum; of a cumprod, a
    # cumprod, a reversed cumsum and arithmetic.
    x = tf.constant(rng.uniform(0.5, 1.5, size=[3, 5, 4]), tf.float32)

    def loss_and_grad(device):
        @tf.function
        def f(x):
            with tf.device(device):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = tf.reduce_sum(tf.math.cumsum(x, axis=1, exclusive=True) * tf.math.cumprod(x, axis=-1, reverse=True))
                return y, tape.gradient(y, x)

        return f(x)

    tf_adapter.reset_kernel_counts()
    y, g = loss_and_grad("/NPU:0")
    counts = tf_adapter.kernel_counts()
    assert counts.get("Cumsum", 0) >= 2 and counts.get("Cumprod", 0) >= 1, counts
    want_y, want_g = loss_and_grad("/CPU:0")
    np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=1e-5)
    np.testing.assert_allclose(g.numpy(), want_g.numpy(), rtol=1e-5, atol=1e-6)
