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
    "DivNoNan": (tf.raw_ops.DivNoNan, FLOATS),
    "Pow": (tf.raw_ops.Pow, FLOATS),
    "FloorDiv": (tf.raw_ops.FloorDiv, FLOATS + [tf.int64, tf.int8]),
    "FloorMod": (tf.raw_ops.FloorMod, FLOATS + [tf.int64, tf.int8]),
    "Div": (tf.raw_ops.Div, FLOATS + INTS + [tf.uint16, tf.uint32, tf.uint64]),
    "TruncateDiv": (tf.raw_ops.TruncateDiv, FLOATS + INTS + [tf.uint16, tf.uint32, tf.uint64]),
    "TruncateMod": (tf.raw_ops.TruncateMod, [tf.float32, tf.float64, tf.int64]),
    "Xlogy": (tf.raw_ops.Xlogy, FLOATS),
    "Xlog1py": (tf.raw_ops.Xlog1py, FLOATS),
    "Xdivy": (tf.raw_ops.Xdivy, FLOATS),
    "Atan2": (lambda x, y: tf.raw_ops.Atan2(y=x, x=y), FLOATS),
}

UNARY = {
    "Neg": (lambda x: tf.raw_ops.Neg(x=x), FLOATS + [tf.int64, tf.int8]),
    "Square": (lambda x: tf.raw_ops.Square(x=x), FLOATS + [tf.int64]),
    "Sqrt": (lambda x: tf.raw_ops.Sqrt(x=x), FLOATS),
    "Rsqrt": (lambda x: tf.raw_ops.Rsqrt(x=x), FLOATS),
    "Exp": (lambda x: tf.raw_ops.Exp(x=x), FLOATS),
    "Log": (lambda x: tf.raw_ops.Log(x=x), FLOATS),
    "Relu": (lambda x: tf.raw_ops.Relu(features=x), FLOATS + [tf.int32, tf.int64, tf.uint8]),
    "Relu6": (lambda x: tf.raw_ops.Relu6(features=x), FLOATS + [tf.int32, tf.int64]),
    "Elu": (lambda x: tf.raw_ops.Elu(features=x), FLOATS),
    "Selu": (lambda x: tf.raw_ops.Selu(features=x), FLOATS),
    "Softplus": (lambda x: tf.raw_ops.Softplus(features=x), FLOATS),
    "Abs": (lambda x: tf.raw_ops.Abs(x=x), FLOATS + [tf.int64, tf.int8]),
    "Reciprocal": (lambda x: tf.raw_ops.Reciprocal(x=x), FLOATS),
    "Expm1": (lambda x: tf.raw_ops.Expm1(x=x), FLOATS),
    "Log1p": (lambda x: tf.raw_ops.Log1p(x=x), FLOATS),
    "Sigmoid": (lambda x: tf.raw_ops.Sigmoid(x=x), FLOATS),
    "Tanh": (lambda x: tf.raw_ops.Tanh(x=x), FLOATS),
    "Erf": (lambda x: tf.raw_ops.Erf(x=x), FLOATS),
    "Erfc": (lambda x: tf.raw_ops.Erfc(x=x), FLOATS),
    "Floor": (lambda x: tf.raw_ops.Floor(x=x), FLOATS),
    "Ceil": (lambda x: tf.raw_ops.Ceil(x=x), FLOATS),
    "Round": (lambda x: tf.raw_ops.Round(x=x), FLOATS),
    # One-line map ops (crates/tfa-ops/src/families/maps.rs).
    "Softsign": (lambda x: tf.raw_ops.Softsign(features=x), FLOATS),
    "Sign": (lambda x: tf.raw_ops.Sign(x=x), FLOATS),
    "Rint": (lambda x: tf.raw_ops.Rint(x=x), [tf.float32, tf.float64]),  # TensorFlow CPU has no half Rint
    **{op: ((lambda op: lambda x: getattr(tf.raw_ops, op)(x=x))(op), FLOATS)
       for op in ("Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh")},
}
# Where the op is defined (outside: NaN on both devices, compared as such, but
# mostly NaN would test little).
DOMAIN = {"Sqrt": (0.05, 3.0), "Rsqrt": (0.05, 3.0), "Log": (0.05, 3.0), "Softplus": (-20.0, 3.0),
          "Asin": (-1.0, 1.0), "Acos": (-1.0, 1.0), "Atanh": (-0.999, 0.999), "Acosh": (1.0, 5.0)}
TRANSCENDENTAL = ("Sigmoid", "Tanh", "Erf", "Erfc", "Expm1", "Log1p", "Elu", "Selu", "Softplus", "Sin", "Cos",
                  "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh")

COMPARE = ["Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual"]


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
            if name in ("RealDiv", "FloorDiv", "FloorMod", "Pow", "Div", "TruncateDiv", "TruncateMod", "Xdivy"):
                # Away from 0 (and positive bases for Pow) so results are finite.
                if dtype.is_unsigned:
                    b = tf.where(tf.equal(b, 0), tf.ones_like(b), b)
                else:
                    b = tf.where(tf.abs(b) < tf.cast(1, dtype), tf.ones_like(b), b)
                if name == "Pow":
                    a = tf.abs(a) + tf.cast(0.5, dtype)
                    b = tf.cast(tf.clip_by_value(tf.cast(b, tf.float32), -3.0, 3.0), dtype)
            if name in ("Xlogy", "Xlog1py"):
                # y in the logarithm's domain; x zero in places (0 * log(y) is 0).
                b = tf.abs(b) + tf.cast(0.25, dtype)
                a = tf.where(tf.abs(a) < tf.cast(1, dtype), tf.zeros_like(a), a)
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", lambda: fn(x=a, y=b))
            cpu = on("/CPU:0", lambda: fn(x=a, y=b))
            assert npu.device.endswith("NPU:0"), (name, dtype)
            assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype)
            rtol = 1e-5 if (name == "Pow" and dtype == tf.float32) else None
            assert_matches(npu, cpu, dtype, rtol=rtol)


@pytest.mark.parametrize("exponent", [2.0, 3.0, 4.0, 2.5, -2.0])
def test_pow_scalar_exponent(exponent, rng):
    """Pow with a one-value exponent: 2, 3 and 4 take the product path
    (tanh-GELU's x^3), others powf. Negative bases, zeros of both signs,
    infinities, NaN and values whose powers overflow or underflow; against
    TensorFlow CPU and, for float32, the float64 power rounded once."""
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e15, -1e15, 1e-15, -3e-13, 3e38, 1e-40]
    for dtype in FLOATS:
        for shape_y in ([], [1], [1, 1]):
            x = np.concatenate([rng.uniform(-40, 40, size=int(rng.integers(1, 300))), specials])
            a = tf.cast(tf.constant(x), dtype)
            b = tf.constant(exponent, dtype, shape=shape_y)
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", lambda: tf.raw_ops.Pow(x=a, y=b))
            cpu = on("/CPU:0", lambda: tf.raw_ops.Pow(x=a, y=b))
            assert npu.device.endswith("NPU:0")
            assert tf_adapter.kernel_counts().get("Pow") == 1, dtype
            # TensorFlow's vectorised pow is within about an ulp of exact.
            rtol = {tf.float32: 3e-7, tf.float64: 1e-15}.get(dtype)
            assert_matches(npu, cpu, dtype, rtol=rtol)
            if dtype == tf.float32:
                with np.errstate(all="ignore"):
                    exact = np.power(a.numpy().astype(np.float64), exponent).astype(np.float32)
                # atol: subnormal results flush to zero, as on TensorFlow's threads.
                tiny = np.finfo(np.float32).tiny
                np.testing.assert_allclose(npu.numpy().ravel(), exact, rtol=1.2e-7, atol=tiny, equal_nan=True)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_cpu(name, rng):
    fn, dtypes = UNARY[name]
    for dtype in dtypes:
        for _ in range(8):
            shape = [int(d) for d in rng.integers(0, 7, size=int(rng.integers(0, 4)))]
            low, high = DOMAIN.get(name, (-3.0, 3.0))
            x = random_tensor(rng, shape, dtype, low=low, high=high)
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", fn, x)
            cpu = on("/CPU:0", fn, x)
            assert npu.device.endswith("NPU:0")
            assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype)
            # Transcendentals: TensorFlow's (Eigen's) vectorised approximations
            # differ from libm by a few ulp.
            rtol = 5e-6 if dtype == tf.float32 and name in TRANSCENDENTAL else None
            assert_matches(npu, cpu, dtype, rtol=rtol, atol=1e-7 if dtype == tf.float32 else 0.0)


@pytest.mark.parametrize("name", COMPARE)
def test_compare_matches_cpu(name, rng):
    fn = getattr(tf.raw_ops, name)
    for dtype in [tf.float32, tf.bfloat16, tf.int64, tf.uint8]:
        for _ in range(6):
            sa, sb = broadcast_pair(rng)
            a, b = random_tensor(rng, sa, dtype, -2, 2), random_tensor(rng, sb, dtype, -2, 2)
            if dtype.is_floating:
                a, b = tf.round(a), tf.round(b)  # make ties common
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", lambda: fn(x=a, y=b))
            assert tf_adapter.kernel_counts().get(name) == 1
            assert_matches(npu, on("/CPU:0", lambda: fn(x=a, y=b)), tf.bool)


def test_equal_with_incompatible_shapes():
    a, b = tf.ones([2, 3]), tf.ones([4])
    for name, want in (("Equal", False), ("NotEqual", True)):
        fn = getattr(tf.raw_ops, name)
        out = on("/NPU:0", lambda: fn(x=a, y=b, incompatible_shape_error=False))
        assert out.numpy().item() is want


def test_logical_and_select(rng):
    for _ in range(8):
        sa, sb = broadcast_pair(rng)
        p, q = random_tensor(rng, sa, tf.bool), random_tensor(rng, sb, tf.bool)
        for fn in (tf.math.logical_and, tf.math.logical_or):
            assert_matches(on("/NPU:0", fn, p, q), on("/CPU:0", fn, p, q), tf.bool)
        assert_matches(on("/NPU:0", tf.math.logical_not, p), on("/CPU:0", tf.math.logical_not, p), tf.bool)
        for dtype in (tf.float32, tf.int32, tf.bfloat16):
            t, e = random_tensor(rng, sb, dtype), random_tensor(rng, sa, dtype)
            sel = lambda: tf.raw_ops.SelectV2(condition=p, t=t, e=e)  # noqa: E731
            tf_adapter.reset_kernel_counts()
            assert_matches(on("/NPU:0", sel), on("/CPU:0", sel), dtype)
            assert tf_adapter.kernel_counts().get("SelectV2") == 1
    c = tf.constant([True, False, True])
    t, e = tf.ones([3, 2]), tf.zeros([3, 2])
    v1 = lambda: tf.raw_ops.Select(condition=c, x=t, y=e)  # noqa: E731
    assert_matches(on("/NPU:0", v1), on("/CPU:0", v1), tf.float32)


def test_logical_ops_in_loop_conditions_and_on_compared_tensors(rng, strict_placement):
    """Boolean logic keeps its arguments in host memory (it mostly builds loop
    conditions out of int32 comparisons): inside a strict-placement while loop
    with `maximum_iterations` (LogicalAnd of two int32 Less results) and on
    device-memory comparisons of float tensors feeding SelectV2."""
    x = tf.constant(rng.standard_normal((6, 5)).astype(np.float32))
    y = tf.constant(rng.standard_normal((6, 5)).astype(np.float32))

    def body_fn():
        def loop(t, acc):
            return t + 1, acc * 0.5 + tf.math.tanh(acc)

        _, acc = tf.while_loop(lambda t, acc: t < 7, loop, (0, x), maximum_iterations=5)
        both = tf.math.logical_and(x > 0.0, y > 0.25)
        either = tf.math.logical_or(x > y, tf.math.logical_not(both))
        return acc, tf.where(both, x, y), tf.where(either, y, x)

    with tf.device("/NPU:0"):
        tf_adapter.reset_kernel_counts()
        got = tf.function(body_fn)()
        counts = tf_adapter.kernel_counts()
    with tf.device("/CPU:0"):
        want = tf.function(body_fn)()
    for g, w in zip(got, want):
        assert_matches(g, w, tf.float32)
    assert counts.get("LogicalAnd", 0) >= 6  # the loop condition ran on the NPU
    assert counts.get("LogicalOr") == 1 and counts.get("LogicalNot") == 1


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.int64])
def test_bias_add(dtype, rng):
    for fmt, shape in (("NHWC", [2, 5, 3, 7]), ("NHWC", [4, 7]), ("NCHW", [2, 7, 5, 3])):
        x = random_tensor(rng, shape, dtype)
        bias = random_tensor(rng, [7], dtype)
        fn = lambda: tf.nn.bias_add(x, bias, data_format=fmt)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", fn)
        assert tf_adapter.kernel_counts().get("BiasAdd") == 1
        ref = on("/CPU:0", lambda: x + (tf.reshape(bias, [7, 1, 1]) if fmt == "NCHW" else bias))
        assert_matches(npu, ref, dtype)
    with pytest.raises(tf.errors.InvalidArgumentError):
        on("/NPU:0", tf.nn.bias_add, tf.ones([2, 3]), tf.ones([4]))


def test_fill_zeros_ones_like(rng):
    for dtype in (tf.float32, tf.bfloat16, tf.int64, tf.bool):
        x = random_tensor(rng, [3, 4], dtype)
        for fn in (tf.zeros_like, tf.ones_like):
            assert_matches(on("/NPU:0", fn, x), on("/CPU:0", fn, x), dtype)
        v = tf.cast(tf.constant(7), dtype)
        fill = lambda: tf.raw_ops.Fill(dims=tf.constant([2, 3], tf.int64), value=v)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        assert_matches(on("/NPU:0", fill), on("/CPU:0", fill), dtype)
        assert tf_adapter.kernel_counts().get("Fill") == 1


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


@pytest.mark.parametrize("dtype", FLOATS)
def test_leaky_relu_and_its_gradient_match_cpu_for_random_alpha(dtype, rng):
    for _ in range(6):
        alpha = float(rng.choice([0.0, 0.01, 0.2, 0.3, 1.0, 1.7, -0.5, rng.uniform(-2, 2)]))
        shape = [int(d) for d in rng.integers(0, 7, size=int(rng.integers(0, 4)))]
        x, g = random_tensor(rng, shape, dtype), random_tensor(rng, shape, dtype)
        for name, call in (("LeakyRelu", lambda: tf.raw_ops.LeakyRelu(features=x, alpha=alpha)),
                           ("LeakyReluGrad", lambda: tf.raw_ops.LeakyReluGrad(gradients=g, features=x, alpha=alpha))):
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", call)
            assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype)
            assert_matches(npu, on("/CPU:0", call), dtype)


def test_keras_leaky_relu_and_softsign_layers_train_strictly_on_the_npu(rng, strict_placement):
    import keras

    keras.utils.set_random_seed(0)
    with tf.device("/NPU:0"):
        model = keras.Sequential([keras.Input([6]), keras.layers.Dense(8), keras.layers.LeakyReLU(0.1),
                                  keras.layers.Dense(4, activation="softsign")])
    x = tf.constant(rng.normal(size=[5, 6]), tf.float32)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x) ** 2)
        return loss, tape.gradient(loss, model.trainable_variables)

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        loss, grads = step(x)
    counts = tf_adapter.kernel_counts()
    for op in ("LeakyRelu", "LeakyReluGrad", "Softsign", "SoftsignGrad"):
        assert counts.get(op, 0) >= 1, (op, counts)
    with tf.device("/CPU:0"):
        want_loss, want_grads = step(x)
    np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-5)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def test_softsign_and_trig_train_strictly_on_the_npu(rng, strict_placement):
    # Forward and backward of the map ops inside a tf.function with soft
    # placement off: Softsign/SoftsignGrad, Sin and its gradient (Cos, Mul).
    x = tf.constant(rng.uniform(-3, 3, size=[5, 7]), tf.float32)

    @tf.function
    def loss_and_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.nn.softsign(x) * tf.sin(x) + tf.atan(x))
        return y, tape.gradient(y, x)

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        y, g = loss_and_grad(x)
    counts = tf_adapter.kernel_counts()
    for op in ("Softsign", "SoftsignGrad", "Sin", "Cos", "Atan"):
        assert counts.get(op, 0) >= 1, (op, counts)
    with tf.device("/CPU:0"):
        want_y, want_g = loss_and_grad(x)
    np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=1e-5)
    np.testing.assert_allclose(g.numpy(), want_g.numpy(), rtol=1e-5, atol=1e-6)


def test_xlogy_xdivy_atan2_train_strictly_on_the_npu(rng, strict_placement):
    # Forward and backward inside a tf.function with soft placement off,
    # operands broadcast against each other (the gradients reduce them back):
    # an entropy-style term x * log(p) with zeros in x, a ratio x / y with
    # zeros in x, and the angle atan2(y, x).
    x = tf.constant(np.where(rng.random([4, 6]) < 0.3, 0.0, rng.uniform(0.1, 2.0, [4, 6])), tf.float32)
    p = tf.constant(rng.uniform(0.05, 1.0, [6]), tf.float32)
    a = tf.constant(rng.normal(size=[4, 1]), tf.float32)

    @tf.function
    def loss_and_grads(x, p, a):
        with tf.GradientTape() as tape:
            tape.watch([x, p, a])
            y = tf.reduce_sum(tf.math.xlogy(x, p) + tf.math.xlog1py(x, p) + tf.math.xdivy(x, p + 1.0) + tf.math.atan2(a, x - 1.0))
        return y, tape.gradient(y, [x, p, a])

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        y, grads = loss_and_grads(x, p, a)
    counts = tf_adapter.kernel_counts()
    for op in ("Xlogy", "Xlog1py", "Xdivy", "Atan2"):
        assert counts.get(op, 0) >= 1, (op, counts)
    assert all(g.device.endswith("NPU:0") for g in grads)
    with tf.device("/CPU:0"):
        want_y, want_grads = loss_and_grads(x, p, a)
    np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=1e-5)
    for g, w in zip(grads, want_grads):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)
