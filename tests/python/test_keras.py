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
