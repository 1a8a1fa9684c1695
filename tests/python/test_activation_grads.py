"""Activation-gradient kernels (the first training ops) against TensorFlow CPU."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, on, random_tensor

GRADS = {
    # name: (raw op, first argument name, second argument name, second input low bound)
    "ReluGrad": ("gradients", "features", -3.0),
    "Relu6Grad": ("gradients", "features", -3.0),
    "EluGrad": ("gradients", "outputs", -0.99),
    "SeluGrad": ("gradients", "outputs", -1.7),
    "SoftplusGrad": ("gradients", "features", -3.0),
    "SoftsignGrad": ("gradients", "features", -3.0),
    "LeakyReluGrad": ("gradients", "features", -3.0),
    "SigmoidGrad": ("y", "dy", -3.0),
    "TanhGrad": ("y", "dy", -3.0),
    "RsqrtGrad": ("y", "dy", -3.0),
    "SqrtGrad": ("y", "dy", -3.0),
}


@pytest.mark.parametrize("name", sorted(GRADS))
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64])
def test_activation_grad_matches_cpu(name, dtype, rng):
    first, second, low = GRADS[name]
    fn = getattr(tf.raw_ops, name)
    for _ in range(5):
        shape = [int(d) for d in rng.integers(0, 6, size=int(rng.integers(0, 4)))]
        a = random_tensor(rng, shape, dtype)
        b = random_tensor(rng, shape, dtype, low=low, high=7.0)
        if name in ("SigmoidGrad", "TanhGrad", "RsqrtGrad", "SqrtGrad"):
            # `y` is the forward output: keep it in its range (positive for the roots).
            a = random_tensor(rng, shape, dtype, low=0.1, high=0.9)
        call = lambda: fn(**{first: a, second: b})  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", call)
        assert tf_adapter.kernel_counts().get(name) == 1
        assert npu.device.endswith("NPU:0")
        # float16/bfloat16: TensorFlow rounds after each Eigen op, we once.
        rtol = {tf.float16: 4e-3, tf.bfloat16: 3e-2}.get(dtype, 2e-6 if dtype == tf.float32 else None)
        assert_matches(npu, on("/CPU:0", call), dtype, rtol=rtol, atol=1e-6 if dtype.is_floating else 0)


def test_gradient_tape_uses_npu_gradient_kernels(rng):
    x = tf.constant(rng.normal(size=[4, 5]), tf.float32)
    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.nn.relu(x) * tf.sigmoid(x) + tf.tanh(x))
        g = tape.gradient(y, x)
    counts = tf_adapter.kernel_counts()
    for op in ("ReluGrad", "SigmoidGrad", "TanhGrad"):
        assert counts.get(op, 0) >= 1, counts
    with tf.device("/CPU:0"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.nn.relu(x) * tf.sigmoid(x) + tf.tanh(x))
        want = tape.gradient(y, x)
    np.testing.assert_allclose(g.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(tf.errors.InvalidArgumentError):
        on("/NPU:0", lambda: tf.raw_ops.ReluGrad(gradients=tf.ones([2]), features=tf.ones([3])))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16])
def test_bias_add_grad_matches_cpu(dtype, rng):
    for fmt, shape in (("NHWC", [2, 5, 3, 7]), ("NHWC", [4, 7]), ("NCHW", [2, 7, 5, 3]), ("NHWC", [0, 7])):
        g = random_tensor(rng, shape, dtype)
        fn = lambda: tf.raw_ops.BiasAddGrad(out_backprop=g, data_format=fmt)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", fn)
        assert tf_adapter.kernel_counts().get("BiasAddGrad") == 1
        axes = [0, 2, 3] if fmt == "NCHW" else list(range(len(shape) - 1))
        want = on("/CPU:0", lambda: tf.cast(tf.reduce_sum(tf.cast(g, tf.float32), axis=axes), dtype))  # noqa: B023
        rtol = {tf.float32: 1e-5, tf.float16: 5e-3, tf.bfloat16: 3e-2}[dtype]
        assert_matches(npu, want, dtype, rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.int32, tf.bool, tf.bfloat16, tf.int64])
def test_tile_matches_cpu(dtype, rng):
    for _ in range(6):
        rank = int(rng.integers(0, 4))
        shape = [int(d) for d in rng.integers(0, 4, size=rank)]
        multiples = [int(m) for m in rng.integers(0, 4, size=rank)]
        x = random_tensor(rng, shape, dtype)
        for mdtype in (tf.int32, tf.int64):
            fn = lambda: tf.tile(x, tf.constant(multiples, dtype=mdtype))  # noqa: E731
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", fn)
            assert tf_adapter.kernel_counts().get("Tile") == 1
            assert_matches(npu, on("/CPU:0", fn), dtype, rtol=0.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiples"):
        on("/NPU:0", lambda: tf.raw_ops.Tile(input=tf.ones([2, 2]), multiples=tf.constant([2])))
