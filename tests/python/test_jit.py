"""`tf.function(jit_compile=True)` and `tf.config.optimizer.set_jit` keep
working once tf_adapter is imported (README "XLA: jit_compile=True"):
without an NPU request the function is compiled with XLA on the CPU, as
before the import; with one it runs on the NPU without XLA and warns once;
strict mode makes that an error saying what to do."""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from tf_adapter import _jit

NPU = "/NPU:0"
CPU = "/CPU:0"


@pytest.fixture(autouse=True)
def _fresh_warnings():
    _jit._warned.clear()
    yield
    tf_adapter.set_strict(False)


def _jit_warnings(record):
    return [w for w in record if issubclass(w.category, tf_adapter.JitWarning)]


def _reference(fn, *args):
    """What the function computes on the CPU without tf_adapter's devices."""
    with tf.device(CPU):
        return tf.function(fn)(*[tf.identity(a) for a in args])


def _body(x, w):
    return tf.nn.relu(tf.matmul(x, w)) * 2.0 + tf.reduce_sum(x, axis=1, keepdims=True)


@pytest.mark.parametrize("mode", ["decorator", "nested"])
def test_no_npu_request_compiles_with_xla_on_the_cpu(mode, rng):
    x = tf.constant(rng.normal(size=[4, 5]).astype(np.float32))  # lives on the NPU (device priority)
    w = tf.constant(rng.normal(size=[5, 3]).astype(np.float32))
    f = tf.function(_body, jit_compile=True)
    call = f if mode == "decorator" else tf.function(lambda x, w: f(x, w) + 1.0)
    tf_adapter.reset_kernel_counts()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = call(x, w)
    counts = tf_adapter.kernel_counts()
    want = _reference(_body, x, w) + (0.0 if mode == "decorator" else 1.0)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5)
    assert not _jit_warnings(record)
    if mode == "decorator":
        assert "CPU" in out.device
        assert not counts  # nothing ran on the NPU
        assert f.experimental_get_compiler_ir(x, w)(stage="hlo", platform_name="CPU")


@pytest.mark.parametrize("how", ["scope", "variables", "nested_scope"])
def test_npu_request_runs_on_the_npu_without_xla_and_warns_once(how, rng):
    x = rng.normal(size=[4, 5]).astype(np.float32)
    w0 = rng.normal(size=[5, 3]).astype(np.float32)
    with tf.device(NPU if how == "variables" else CPU):
        w = tf.Variable(w0)

    @tf.function(jit_compile=True)
    def step(x):
        return _body(x, w)

    if how == "nested_scope":

        @tf.function
        def outer(x):
            with tf.device(NPU):
                return step(x) + 1.0

        call, extra = outer, 1.0
    else:
        call, extra = step, 0.0
    want = _reference(_body, x, w0).numpy() + extra
    tf_adapter.reset_kernel_counts()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            if how == "variables":
                out = call(x)
            else:
                with tf.device(NPU):
                    out = call(x)
            np.testing.assert_allclose(out.numpy(), want, rtol=1e-5)
    jw = _jit_warnings(record)
    assert len(jw) == 1, [str(w.message) for w in jw]
    assert "'step'" in str(jw[0].message) and "without XLA" in str(jw[0].message)
    assert jw[0].filename == __file__  # points at the user's call, not at TensorFlow
    counts = tf_adapter.kernel_counts()
    # MatMul -> Relu ran on the NPU (fused into one op unless TFA_FUSION=0).
    assert counts.get("MatMul", 0) == 3 and counts.get("Relu", 0) == 3, counts


def test_gradients_of_a_jit_function_on_the_npu(rng):
    x0 = rng.normal(size=[4, 5]).astype(np.float32)
    w0 = rng.normal(size=[5, 3]).astype(np.float32)
    grads = {}
    for dev in (CPU, NPU):
        with tf.device(dev):
            w = tf.Variable(w0)
            f = tf.function(lambda x: tf.reduce_sum(_body(x, w) ** 2), jit_compile=True)
            x = tf.constant(x0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", tf_adapter.JitWarning)
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = f(x)
                grads[dev] = [g.numpy() for g in tape.gradient(y, [x, w])]
    for g_npu, g_cpu in zip(grads[NPU], grads[CPU]):
        np.testing.assert_allclose(g_npu, g_cpu, rtol=1e-4)


def test_strict_mode_makes_an_npu_request_an_error_that_says_what_to_do(rng):
    x = rng.normal(size=[4, 5]).astype(np.float32)
    w = rng.normal(size=[5, 3]).astype(np.float32)
    f = tf.function(_body, jit_compile=True)
    tf_adapter.set_strict(True)
    with tf.device(NPU), pytest.raises(tf.errors.InvalidArgumentError, match="jit_compile=True") as e:
        f(x, w)
    msg = str(e.value)
    assert "'_body'" in msg and "Remove jit_compile=True" in msg and "tf.device('/CPU:0')" in msg
    # Without an NPU request, strict mode still compiles it with XLA on the CPU.
    np.testing.assert_allclose(f(x, w).numpy(), _reference(_body, x, w).numpy(), rtol=1e-5)
    with tf.device(CPU):
        assert "CPU" in f(x, w).device


def test_auto_clustering_set_jit(rng):
    x = rng.normal(size=[8, 6]).astype(np.float32)
    w = rng.normal(size=[6, 4]).astype(np.float32)
    want = _reference(_body, x, w).numpy()
    tf.config.optimizer.set_jit(True)
    try:
        f = tf.function(lambda x, w: _body(x, w))
        tf_adapter.reset_kernel_counts()
        out = f(tf.constant(x), tf.constant(w))
        np.testing.assert_allclose(out.numpy(), want, rtol=1e-5)
        assert tf_adapter.kernel_counts().get("MatMul", 0) == 1  # NPU ops keep their kernels

        @tf.function
        def on_npu(x, w):
            with tf.device(NPU):
                return _body(x, w)

        tf.config.set_soft_device_placement(False)
        np.testing.assert_allclose(on_npu(x, w).numpy(), want, rtol=1e-5)
    finally:
        tf.config.set_soft_device_placement(True)
        tf.config.optimizer.set_jit(False)


def test_keras_fit_with_jit_compile_true(rng):
    import keras

    x = rng.normal(size=[64, 6]).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int64)
    with tf.device(NPU):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < losses[0]
    assert any("without XLA" in str(w.message) for w in _jit_warnings(record))
