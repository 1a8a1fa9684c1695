"""Keras 3 on the NPU with default arguments."""

import numpy as np
import tensorflow as tf
import tf_adapter
import keras


def test_fit_with_default_jit_compile_runs_on_npu():
    # Default jit_compile="auto" would pick XLA, which has no NPU device.
    rng = np.random.default_rng(0)
    x = rng.normal(size=[64, 8]).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) > 0).astype(np.float32)
    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        model = keras.Sequential([keras.Input([8]), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        pred = model.predict(x, verbose=0)
        loss = model.evaluate(x, y, verbose=0)
    assert model.jit_compile is False
    assert len(hist.history["loss"]) == 3 and np.isfinite(loss)
    assert pred.shape == (64, 1)
    # The dense layers' matmuls ran on the NPU (the rest of the training step
    # falls back to the host until the training ops land).
    assert tf_adapter.kernel_counts().get("MatMul", 0) >= 3 * 4


def test_grouped_conv_layer_runs_on_npu_without_xla():
    # Keras routes grouped convolutions through tf.function(jit_compile=True);
    # on the NPU they run as a plain grouped Conv2D.
    x = np.random.default_rng(1).normal(size=[2, 9, 9, 8]).astype(np.float32)
    with tf.device("/CPU:0"):
        layer_cpu = keras.layers.Conv2D(6, 3, groups=2, padding="same")
        layer_cpu.build(x.shape)
    with tf.device("/NPU:0"):
        layer = keras.layers.Conv2D(6, 3, groups=2, padding="same")
        layer.build(x.shape)
        layer.set_weights(layer_cpu.get_weights())
        tf_adapter.reset_kernel_counts()
        got = layer(tf.constant(x))
    assert tf_adapter.kernel_counts().get("Conv2D") == 1
    assert got.device.endswith("NPU:0")
    with tf.device("/CPU:0"):
        want = layer_cpu(tf.constant(x))  # XLA on the CPU, as Keras does
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
