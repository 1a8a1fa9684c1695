"""Precision modes inside tf.function: the plugin's grappler pass changes the
dtypes of NPU nodes (allow_mix_precision_*, force_fp32) and inserts Casts so
function signatures never change. Each test builds a fresh tf.function (the
pass runs when a function is first instantiated)."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

import tf_adapter
from tf_adapter import _native


@pytest.fixture
def precision():
    yield tf_adapter.set_precision_mode
    tf_adapter.set_precision_mode("must_keep_origin_dtype")


@pytest.fixture
def hard_placement():
    prev = tf.config.get_soft_device_placement()
    tf.config.set_soft_device_placement(False)
    yield
    tf.config.set_soft_device_placement(prev)


@pytest.fixture
def dump_dir(tmp_path, monkeypatch):
    """Dumped graphs of the precision pass alone: these tests read its
    Casts and type attributes node by node, so the fusion pass (tested in
    test_fusion.py, also under the precision modes) is off here."""
    d = tmp_path / "graphs"
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(d))
    monkeypatch.setenv("TFA_FUSION", "0")
    yield d


def _dumps(d, tag):
    return [open(p).read() for p in sorted(glob.glob(os.path.join(str(d), f"*_{tag}.txt")))]


def _node_lines(text, op):
    return [l for l in text.splitlines() if l.startswith("node ") and f" op={op} " in l]


def _dense_inputs():
    rng = np.random.default_rng(7)
    # x and w are exact in bfloat16 and their products sum exactly in
    # float32, so the only roundings are the ones the casts make: the NPU and
    # the CPU reference with explicit casts must agree to float32 precision.
    x = rng.integers(-3, 4, size=(8, 16)).astype(np.float32)
    w = (rng.integers(-3, 4, size=(16, 10)) / 16).astype(np.float32)
    b = (rng.standard_normal(10) * 0.7).astype(np.float32)
    return x, w, b


def _dense_fn():
    @tf.function
    def f(x, w, b):
        with tf.device("/NPU:0"):
            h = tf.nn.bias_add(tf.matmul(x, w), b)
            return tf.nn.softmax(tf.nn.relu(h))

    return f


def _dense_cpu(x, w, b, dtype):
    with tf.device("/CPU:0"):
        c = lambda t: tf.cast(t, dtype)  # noqa: E731
        h = tf.nn.relu(tf.nn.bias_add(tf.matmul(c(x), c(w)), c(b)))
        return tf.nn.softmax(tf.cast(h, tf.float32)).numpy()


def test_mix_bf16_dense_chain_matches_explicit_casts(precision, hard_placement, dump_dir):
    x, w, b = _dense_inputs()
    precision("allow_mix_precision_bf16")
    tf_adapter.reset_kernel_counts()
    out = _dense_fn()(x, w, b)
    assert out.dtype == tf.float32
    out = out.numpy()
    counts = tf_adapter.kernel_counts()
    assert counts.get("MatMul", 0) >= 1 and counts.get("Softmax", 0) >= 1, counts

    ref_bf16 = _dense_cpu(x, w, b, tf.bfloat16)
    ref_f32 = _dense_cpu(x, w, b, tf.float32)
    np.testing.assert_allclose(out, ref_bf16, rtol=1e-5, atol=1e-6)
    # ...and the rewrite did something: pure float32 is measurably different.
    assert np.max(np.abs(ref_f32 - ref_bf16)) > 1e-4
    assert np.max(np.abs(out - ref_f32)) > 1e-4

    after = "\n".join(_dumps(dump_dir, "after"))
    assert any("T=DT_BFLOAT16" in l for l in _node_lines(after, "MatMul")), after
    assert any("T=DT_FLOAT" in l for l in _node_lines(after, "Softmax")), after
    assert any("tfa_amp_cast" in l for l in _node_lines(after, "Cast")), after


def test_mix_fp16_changes_matmul_too(precision, hard_placement):
    x, w, b = _dense_inputs()
    precision("allow_mix_precision_fp16")
    out = _dense_fn()(x, w, b).numpy()
    np.testing.assert_allclose(out, _dense_cpu(x, w, b, tf.float16), rtol=1e-5, atol=1e-6)


def _f16_chain():
    @tf.function
    def g(x, w1, w2):
        with tf.device("/NPU:0"):
            xh = tf.cast(x, tf.float16)
            h = tf.nn.relu(tf.matmul(xh, tf.cast(w1, tf.float16)))
            y = tf.matmul(h, tf.cast(w2, tf.float16))
            return tf.cast(y, tf.float32)

    return g


def test_force_fp32_keeps_the_f16_chain_in_f32(precision, hard_placement, dump_dir):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 32)).astype(np.float32)
    w1 = rng.standard_normal((32, 24)).astype(np.float32)
    w2 = rng.standard_normal((24, 5)).astype(np.float32)
    with tf.device("/CPU:0"):
        ref = tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2).numpy()
    # The float32 computation, rounded (at most) once at the end.
    half_ulp = np.spacing(np.abs(ref).astype(np.float16)).astype(np.float32) / 2
    tol = half_ulp + 1e-5 * np.abs(ref) + 1e-5

    plain = _f16_chain()(x, w1, w2).numpy()  # must_keep_origin_dtype: f16 throughout
    assert np.any(np.abs(plain - ref) > tol), "the f16 chain should lose precision"

    precision("force_fp32")
    out = _f16_chain()(x, w1, w2)
    assert out.dtype == tf.float32
    assert np.all(np.abs(out.numpy() - ref) <= tol), np.max(np.abs(out.numpy() - ref) - tol)
    after = "\n".join(_dumps(dump_dir, "after"))
    mms = _node_lines(after, "MatMul")
    assert mms and all("T=DT_FLOAT " in l + " " for l in mms), mms


def test_must_keep_origin_dtype_leaves_graphs_unchanged(precision, hard_placement, dump_dir):
    x, w, b = _dense_inputs()
    precision("must_keep_origin_dtype")
    out = _dense_fn()(x, w, b).numpy()
    np.testing.assert_allclose(out, _dense_cpu(x, w, b, tf.float32), rtol=1e-5, atol=1e-6)
    assert _dumps(dump_dir, "before"), "the pass should have seen the graph"
    assert not _dumps(dump_dir, "after")


def test_keras_dense_predict_in_mix_mode(precision, dump_dir):
    import keras

    rng = np.random.default_rng(5)
    x = rng.standard_normal((32, 12)).astype(np.float32)
    with tf.device("/NPU:0"):
        model = keras.Sequential(
            [keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
        )
    ref = model.predict(x, verbose=0)
    precision("allow_mix_precision_bf16")
    # A new model: predict's function is traced (and rewritten) afresh.
    with tf.device("/NPU:0"):
        model2 = keras.Sequential(
            [keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
        )
    model2.set_weights(model.get_weights())
    out = model2.predict(x, verbose=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=5e-2, atol=5e-2)
    assert not np.array_equal(out, ref)
    after = "\n".join(_dumps(dump_dir, "after"))
    assert _node_lines(after, "Cast"), after[:3000]
    assert any("T=DT_BFLOAT16" in l for l in _node_lines(after, "MatMul")), after[:3000]


def test_amp_paint_for_the_coverage_report(precision):
    ops = ["_Arg", "MatMul", "BiasAdd", "Relu", "Softmax"]
    on = [True] * 5
    f32 = 1
    dtypes = [f32] * 5
    inputs = [[], [0, 0], [1, 0], [2], [3]]
    precision("allow_mix_precision_bf16")
    assert _native.amp_paint(ops, on, dtypes, inputs) == [0, 14, 14, 14, 0]
    precision("must_keep_origin_dtype")
    assert _native.amp_paint(ops, on, dtypes, inputs) == [0] * 5
    precision("force_fp32")
    assert _native.amp_paint(ops, on, [19] * 5, inputs) == [0, 1, 1, 1, 1]


def test_mix_nested_functions_and_loops(precision, hard_placement, dump_dir):
    # Grappler hands the pass the inlined, lowered body (Enter/Merge/Switch/
    # NextIteration, no library functions): MatMuls inside the loop and the
    # called function go bf16, the loop state stays float32.
    rng = np.random.default_rng(11)
    a = rng.standard_normal((4, 8)).astype(np.float32)
    w = (rng.standard_normal((8, 8)) * 0.4).astype(np.float32)

    def build():
        @tf.function
        def inner(h, w):
            with tf.device("/NPU:0"):
                return tf.nn.relu(tf.matmul(h, w))

        @tf.function
        def outer(a, w):
            with tf.device("/NPU:0"):
                _, h = tf.while_loop(
                    lambda i, h: i < 3, lambda i, h: (i + 1, inner(h, w) + 0.5), (tf.constant(0), a)
                )
                return tf.nn.softmax(h)

        return outer

    ref = build()(a, w).numpy()  # must_keep_origin_dtype: float32 throughout
    precision("allow_mix_precision_bf16")
    out = build()(a, w)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=0.05, atol=0.02)
    assert not np.array_equal(out.numpy(), ref)
    after = "\n".join(_dumps(dump_dir, "after"))
    assert "\nfunction " not in after
    assert _node_lines(after, "NextIteration") and _node_lines(after, "Merge")
    assert any("T=DT_BFLOAT16" in l for l in _node_lines(after, "MatMul")), after[:3000]
    assert not any("T=DT_BFLOAT16" in l for l in _node_lines(after, "Merge"))
