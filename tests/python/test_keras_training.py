"""Keras training on the NPU with default arguments: a small CNN trained for
real on scikit-learn's digits to a stated accuracy with `fit` (progress bar,
callbacks, validation data), `evaluate`, `predict`, then checkpoint save /
restore and SavedModel export reloaded on the CPU with the same outputs."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
import keras
from conftest import digits_cnn

DIGITS_ACCURACY = 0.97  # held-out accuracy the NPU-trained CNN must reach (reaches ~0.985)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    (x, y), (xv, yv) = digits
    keras.utils.set_random_seed(0)
    tf_adapter.reset_kernel_counts()
    # Strict mode: any op of fit's train/test steps without an NPU kernel
    # would raise instead of falling back (tf.data stays on the host).
    tf_adapter.set_strict(True)
    try:
        return _fit(x, y, xv, yv, tmp_path_factory)
    finally:
        tf_adapter.set_strict(False)


def _fit(x, y, xv, yv, tmp_path_factory):
    with tf.device("/NPU:0"):
        model = digits_cnn()
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        seen = []
        history = model.fit(
            x, y, batch_size=32, epochs=12, validation_data=(xv, yv),
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))],
        )
    return model, history, seen, tf_adapter.kernel_counts(), tmp_path_factory.mktemp("digits")


def test_fit_trains_the_digits_cnn_on_the_npu_to_its_accuracy(trained, digits):
    model, history, seen, counts, _ = trained
    (_, _), (xv, yv) = digits
    assert seen == list(range(12))
    losses = history.history["loss"]
    assert losses[-1] < losses[0] * 0.3, losses
    assert history.history["val_accuracy"][-1] >= DIGITS_ACCURACY, history.history
    for op in ("Conv2DBackpropFilter", "Conv2DBackpropInput", "MaxPoolGrad", "SparseSoftmaxCrossEntropyWithLogits"):
        assert counts.get(op, 0) > 0, (op, counts)
    with tf.device("/NPU:0"):
        loss, acc = model.evaluate(xv, yv, verbose=0)
        pred = model.predict(xv, verbose=0)
    assert acc >= DIGITS_ACCURACY
    assert pred.shape == (len(xv), 10)
    assert np.mean(np.argmax(pred, axis=1) == yv) == pytest.approx(acc, abs=1e-6)
    for v in model.trainable_variables:
        assert v.value.device.endswith("NPU:0"), v.path


def test_train_and_test_steps_with_a_dynamic_batch_are_fully_on_npu(trained):
    model = trained[0]
    specs = (tf.TensorSpec([None, 8, 8, 1]), tf.TensorSpec([None], tf.int64))

    def train_step(x, y):
        with tf.device("/NPU:0"):
            return model.train_step((x, y))

    def test_step(x, y):
        with tf.device("/NPU:0"):
            return model.test_step((x, y))

    for fn in (train_step, test_step):
        report = tf_adapter.coverage(fn, *specs)
        assert report.fully_on_npu, str(report)


def test_keras_file_and_checkpoint_reload_on_cpu_with_same_outputs(trained, digits):
    model, _, _, _, tmp = trained
    xv = digits[1][0][:64]
    with tf.device("/NPU:0"):
        want = model.predict(xv, verbose=0)
    path = os.path.join(tmp, "digits.keras")
    model.save(path)
    with tf.device("/CPU:0"):
        loaded = keras.models.load_model(path)
        got = loaded.predict(xv, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    ckpt_dir = os.path.join(tmp, "ckpt")
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), ckpt_dir, max_to_keep=2)
    saved = manager.save()
    with tf.device("/CPU:0"):
        fresh = digits_cnn()
        tf.train.Checkpoint(model=fresh).restore(saved).assert_existing_objects_matched().expect_partial()
        np.testing.assert_allclose(fresh.predict(xv, verbose=0), want, rtol=1e-4, atol=1e-5)
    # And back onto the NPU, into a model that trained differently.
    with tf.device("/NPU:0"):
        other = digits_cnn()
        tf.train.Checkpoint(model=other).restore(manager.latest_checkpoint).assert_existing_objects_matched().expect_partial()
        np.testing.assert_allclose(other.predict(xv, verbose=0), want, rtol=1e-4, atol=1e-5)


def test_savedmodel_export_reloads_on_cpu_with_same_outputs(trained, digits):
    model, _, _, _, tmp = trained
    xv = digits[1][0][:16]
    with tf.device("/NPU:0"):
        want = model(xv, training=False).numpy()
    path = os.path.join(tmp, "savedmodel")
    model.export(path, verbose=False)
    with tf.device("/CPU:0"):
        served = tf.saved_model.load(path)
        got = served.serve(tf.constant(xv))
    assert got.device.endswith("CPU:0")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)
