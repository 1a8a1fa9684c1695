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
    "ReciprocalGrad": ("y", "dy", -3.0),
    "InvGrad": ("y", "dy", -3.0),
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


@pytest.mark.parametrize("name", ["SqrtGrad", "RsqrtGrad", "ReciprocalGrad", "InvGrad"])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64])
def test_root_and_reciprocal_grads_are_zero_where_dy_is_zero(name, dtype):
    # TensorFlow's kernels give 0 (not NaN) where dy is 0, whatever y is
    # (0 or infinite: the root or reciprocal of 0); elsewhere the usual values.
    y = [0.0, np.inf, -np.inf, 0.0, np.inf, 2.0, -0.5, np.nan, 0.0]
    dy = [0.0, 0.0, 0.0, 1.5, -1.0, 0.0, 3.0, 0.0, np.nan]
    y, dy = tf.constant(y, dtype), tf.constant(dy, dtype)
    call = lambda: getattr(tf.raw_ops, name)(y=y, dy=dy)  # noqa: E731
    npu, cpu = on("/NPU:0", call), on("/CPU:0", call)
    assert npu.device.endswith("NPU:0")
    np.testing.assert_array_equal(tf.cast(npu, tf.float64).numpy(), tf.cast(cpu, tf.float64).numpy())
    assert np.all(tf.cast(npu, tf.float64).numpy()[[0, 1, 2, 5, 7]] == 0)


@pytest.mark.parametrize("name", ["ReluGrad", "Relu6Grad", "LeakyReluGrad", "EluGrad", "SeluGrad", "SoftplusGrad"])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64])
def test_non_finite_gradients_through_activations(name, dtype):
    # ReluGrad/Relu6Grad multiply by their mask in TensorFlow: an infinite or
    # NaN gradient gives NaN where the mask is 0 (the others select).
    first, second, _ = GRADS[name]
    g = [np.inf, -np.inf, np.nan, np.inf, np.nan, 1.0, -2.0, np.inf, np.nan, 3.0]
    f = [-1.0, 0.0, -3.0, 2.0, 6.5, np.nan, 7.0, 6.0, 0.5, -0.5]
    if second == "outputs":  # Elu/Selu outputs are above -1.76
        f = [min(max(v, -1.5), 5.0) if np.isfinite(v) else v for v in f]
    args = {first: tf.constant(g, dtype), second: tf.constant(f, dtype)}
    call = lambda: getattr(tf.raw_ops, name)(**args)  # noqa: E731
    npu, cpu = on("/NPU:0", call), on("/CPU:0", call)
    assert npu.device.endswith("NPU:0")
    got, want = tf.cast(npu, tf.float64).numpy(), tf.cast(cpu, tf.float64).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol={tf.float16: 2e-3, tf.bfloat16: 1.6e-2}.get(dtype, 1e-6))


def test_masked_roots_have_zero_gradients_where_masked(strict_placement):
    # The usual guard against sqrt's infinite slope at 0: the unused branch's
    # gradient is 0 there, so the whole gradient is finite (it was NaN on the
    # NPU until SqrtGrad/RsqrtGrad took dy == 0 into account).
    x = tf.constant([0.0, 1.0, 4.0, 0.0, 0.25], tf.float32)

    def grads(device):
        @tf.function
        def f(x):
            with tf.device(device):
                with tf.GradientTape(persistent=True) as t:
                    t.watch(x)
                    mask = x > 0
                    outs = [tf.where(mask, g(x), 0.0) for g in (tf.sqrt, tf.math.rsqrt, tf.math.reciprocal)]
                return [t.gradient(o, x) for o in outs]

        tf_adapter.reset_kernel_counts()
        return [g.numpy() for g in f(x)], tf_adapter.kernel_counts()

    npu, counts = grads("/NPU:0")
    cpu, _ = grads("/CPU:0")
    for op in ("SqrtGrad", "RsqrtGrad", "ReciprocalGrad"):
        assert counts.get(op, 0) == 1, counts
    for got, want in zip(npu, cpu):
        assert np.all(np.isfinite(got)), got
        np.testing.assert_allclose(got, want, rtol=1e-6)


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
