"""Recurrent layers train on the NPU in strict mode (issue 19, item 3).

A recurrent layer's backward while loop needs TensorList bookkeeping on
DT_VARIANT that a plugin cannot get kernels for (``ZerosLike`` and ``AddN``
of TensorLists, TensorList ops on boolean mask entries): tf_adapter puts those
ops on the host (``tf_adapter._host_bookkeeping``), the coverage report lists
them as ``host (variant bookkeeping)``, and every op that computes runs on the
NPU. Checked here: ``model.fit`` of LSTM and GRU sequence classifiers (one
masked) under ``tf_adapter.set_strict(True)`` gives the losses and weights of
the same fit on TensorFlow CPU; the bookkeeping nodes are on the host and
nothing else is; the coverage report names them."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
import keras
from tf_adapter.coverage import HOST_BOOKKEEPING

STEPS, FEATURES, CLASSES = 7, 5, 3


def classifier(kind, masked):
    inputs = keras.Input((STEPS, FEATURES))
    h = keras.layers.Masking()(inputs) if masked else inputs
    rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple": keras.layers.SimpleRNN}[kind]
    h = rnn(8, return_sequences=True)(h)
    h = keras.layers.Bidirectional(rnn(6))(h)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(h))


def data(seed, n=48):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, STEPS, FEATURES)).astype("float32")
    lengths = rng.integers(2, STEPS + 1, size=n)
    x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0.0  # padded tails (masked away when masking)
    y = (x.sum(axis=(1, 2)) > 0).astype("int64") + (lengths > 4)
    return x, y


def fit(kind, masked, device, x, y, weights, strict=False):
    with tf.device(device):
        # Built before strict mode: the orthogonal initializer (Qr) has no
        # NPU kernel; the weights are the CPU twin's anyway.
        model = classifier(kind, masked)
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        tf_adapter.set_strict(strict)
        try:
            history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        finally:
            tf_adapter.set_strict(False)
    return model, history.history["loss"]


@pytest.mark.parametrize("kind,masked", [("lstm", False), ("gru", False), ("lstm", True), ("simple", True)])
def test_fit_in_strict_mode_matches_cpu(kind, masked):
    x, y = data(7)
    keras.utils.set_random_seed(3)
    with tf.device("/CPU:0"):
        start = classifier(kind, masked).get_weights()
    cpu_model, cpu_losses = fit(kind, masked, "/CPU:0", x, y, start)
    tf_adapter.reset_kernel_counts()
    npu_model, npu_losses = fit(kind, masked, "/NPU:0", x, y, start, strict=True)
    counts = tf_adapter.kernel_counts()
    # The recurrent cell's gradients ran on the NPU.
    grad = {"lstm": "SigmoidGrad", "gru": "SigmoidGrad", "simple": "TanhGrad"}[kind]
    assert counts.get(grad, 0) > 0 and counts.get("MatMul", 0) > 0, counts
    assert npu_losses[-1] < npu_losses[0], npu_losses
    np.testing.assert_allclose(npu_losses, cpu_losses, rtol=2e-4)
    for a, b, v in zip(npu_model.get_weights(), cpu_model.get_weights(), npu_model.weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5, err_msg=v.path)
    for v in npu_model.trainable_variables:
        assert v.value.device.endswith("NPU:0"), v.path


def _train_step(model):
    opt = keras.optimizers.SGD(0.1)

    @tf.function
    def step(x, y):
        with tf.device("/NPU:0"):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, model(x, training=True),
                                                                                   from_logits=True))
            grads = tape.gradient(loss, model.trainable_variables + [x])
            opt.apply(grads[:-1], model.trainable_variables)
            return loss, grads[-1]

    return step


def test_only_variant_bookkeeping_is_on_the_host():
    """In the traced training step, the nodes on the host are exactly the
    TensorList bookkeeping the NPU cannot have: ZerosLike/AddN on DT_VARIANT
    and TensorList ops on the boolean mask; the coverage report lists them in
    their own category and calls the step fully on the NPU."""
    x, y = data(1, n=4)
    model = classifier("lstm", masked=True)
    step = _train_step(model)
    specs = (tf.TensorSpec([None, STEPS, FEATURES]), tf.TensorSpec([None], tf.int64))
    graph = step.get_concrete_function(*specs).graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    on_host = {(n.op, tf.dtypes.as_dtype(n.attr.get("T", n.attr.get("element_dtype")).type).name)
               for n in nodes if "CPU" in n.device.upper()}
    assert ("ZerosLike", "variant") in on_host and ("AddN", "variant") in on_host, on_host
    assert ("TensorListFromTensor", "bool") in on_host and ("TensorListGetItem", "bool") in on_host, on_host
    for op, dtype in on_host:
        assert (op.startswith("TensorList") and dtype == "bool") or dtype == "variant", (op, dtype)
    # Float TensorLists stay on the NPU (TensorFlow's device-agnostic kernels).
    float_lists = [n for n in nodes if n.op == "TensorListFromTensor" and n.attr["element_dtype"].type == tf.float32]
    assert float_lists and all("NPU" in n.device for n in float_lists)

    report = tf_adapter.coverage(step, *specs)
    kept = {o.op_type for o in report.ops if o.placement == HOST_BOOKKEEPING}
    assert {"ZerosLike", "AddN", "TensorListFromTensor", "TensorListGetItem"} <= kept, str(report)
    assert report.fully_on_npu, str(report)
    assert HOST_BOOKKEEPING in str(report)

    tf.config.set_soft_device_placement(False)
    try:
        loss, dx = step(tf.constant(x), tf.constant(y))
    finally:
        tf.config.set_soft_device_placement(True)
    assert loss.device.endswith("NPU:0") and dx.device.endswith("NPU:0")
    assert np.isfinite(loss.numpy()) and dx.shape == x.shape


def test_bookkeeping_outside_an_npu_scope_is_left_alone():
    """Only ops created for the NPU are moved: the same step on the CPU keeps
    TensorFlow's placement (no device set on its nodes)."""
    model = classifier("gru", masked=True)

    @tf.function
    def grads(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = model(x, training=True)
        return tape.gradient(out, x)

    graph = grads.get_concrete_function(tf.TensorSpec([2, STEPS, FEATURES])).graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    assert any(n.op == "ZerosLike" for n in nodes)
    assert not [n.name for n in nodes if "CPU" in n.device.upper()]
