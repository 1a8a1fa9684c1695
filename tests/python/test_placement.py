"""Whole functions on the NPU, proven with soft placement off (the device
scope inside the tf.function body, as the design notes require)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import on


def test_mlp_forward_runs_entirely_on_npu(strict_placement, rng):
    w1 = tf.constant(rng.normal(size=[16, 32]), tf.float32)
    w2 = tf.constant(rng.normal(size=[32, 4]), tf.float32)
    b1 = tf.constant(rng.normal(size=[32]), tf.float32)

    def body(x):
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        h = tf.reshape(h, [-1, 32])
        y = tf.matmul(h, w2)
        y = tf.exp(-tf.square(y)) * tf.math.rsqrt(tf.square(y) + 1.0)
        return tf.cast(tf.maximum(y, 0.1) - tf.minimum(y, 0.5) / 2.0, tf.float16)

    @tf.function
    def on_npu(x):
        with tf.device("/NPU:0"):
            return body(x)

    x = tf.constant(rng.normal(size=[8, 16]), tf.float32)
    tf_adapter.reset_kernel_counts()
    npu = on_npu(x)
    with tf.device("/CPU:0"):
        cpu = body(x)
    assert npu.device.endswith("NPU:0")
    np.testing.assert_allclose(npu.numpy().astype(np.float32), cpu.numpy().astype(np.float32), rtol=1e-3)
    counts = tf_adapter.kernel_counts()
    # (grappler drops the no-op Reshape)
    for op in ("MatMul", "AddV2", "Relu", "Exp", "Neg", "Square", "Rsqrt", "Maximum", "Minimum", "Cast"):
        assert counts.get(op, 0) >= 1, (op, counts)


def test_op_without_npu_kernel_fails_with_soft_placement_off(strict_placement):
    @tf.function
    def f(x):
        with tf.device("/NPU:0"):
            return tf.math.lgamma(x)

    with pytest.raises(tf.errors.InvalidArgumentError, match="Lgamma"):
        f(tf.constant([1.0]))


def test_grappler_rewrites_stay_on_npu(strict_placement):
    """The arithmetic optimizer turns x + x into Mul and add chains into AddN;
    both must still find NPU kernels."""

    @tf.function
    def f(a, b, c, d):
        with tf.device("/NPU:0"):
            s = a + a
            chain = a + b + c + d
            return s, chain, a * a

    args = [tf.constant(np.full([3], i + 1.0, np.float32)) for i in range(4)]
    s, chain, sq = f(*args)
    assert s.device.endswith("NPU:0") and chain.device.endswith("NPU:0")
    np.testing.assert_array_equal(s.numpy(), [2.0] * 3)
    np.testing.assert_array_equal(chain.numpy(), [10.0] * 3)
    np.testing.assert_array_equal(sq.numpy(), [1.0] * 3)


def test_ops_without_scope_prefer_the_npu():
    """PluggableDevices have priority over the CPU: an op with an NPU kernel
    and no device scope runs on the NPU (the seed training loop relies on it)."""
    tf_adapter.reset_kernel_counts()
    y = tf.matmul(tf.ones([2, 2]), tf.ones([2, 2]))
    assert y.device.endswith("NPU:0")
    assert tf_adapter.kernel_counts().get("MatMul") == 1


def test_npu_to_cpu_round_trip(rng):
    x = rng.normal(size=[5, 7]).astype(np.float32)
    y = on("/NPU:0", tf.identity, tf.constant(x))
    z = on("/CPU:0", tf.identity, y)
    assert z.device.endswith("CPU:0")
    np.testing.assert_array_equal(z.numpy(), x)
