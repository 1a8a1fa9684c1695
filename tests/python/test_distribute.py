"""MirroredStrategy over two NPUs: the all-reduce runs through TensorFlow's
collectives, which need the NPU `Add` kernel to forward its input."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
import keras


@pytest.fixture(scope="module")
def strategy():
    return tf.distribute.MirroredStrategy(devices=["/NPU:0", "/NPU:1"])


def test_two_npu_reduce_sum_and_mean(strategy):
    assert strategy.num_replicas_in_sync == 2

    def replica_value():
        ctx = tf.distribute.get_replica_context()
        return tf.cast(ctx.replica_id_in_sync_group + 1, tf.float32) * tf.ones([3, 4])

    per_replica = strategy.run(replica_value)
    devices = [v.device for v in strategy.experimental_local_results(per_replica)]
    assert devices[0].endswith("NPU:0") and devices[1].endswith("NPU:1")
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
    np.testing.assert_array_equal(total.numpy(), np.full([3, 4], 3.0))
    np.testing.assert_array_equal(mean.numpy(), np.full([3, 4], 1.5))


def test_all_reduce_inside_replica_function(strategy):
    @tf.function
    def step():
        ctx = tf.distribute.get_replica_context()
        x = tf.cast(ctx.replica_id_in_sync_group + 1, tf.float32) * tf.ones([5])
        return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)

    tf_adapter.reset_kernel_counts()
    out = strategy.experimental_local_results(strategy.run(step))
    # The ring collective merged with the NPU Add kernel (forwarding input 0).
    assert tf_adapter.kernel_counts().get("Add", 0) >= 1
    for t in out:
        np.testing.assert_array_equal(t.numpy(), np.full([5], 3.0))


def test_keras_fit_under_mirrored_strategy_in_strict_mode(strategy):
    # Two NPUs, every op of the replicated train step on its NPU (strict mode),
    # equal to one NPU at the same global batch.
    rng = np.random.default_rng(0)
    x = rng.normal(size=[128, 8, 8, 1]).astype(np.float32)
    y = rng.integers(0, 10, size=128)

    def build():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ])
        m.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    tf_adapter.set_strict(True)
    try:
        with strategy.scope():
            mirrored = build()
        initial = mirrored.get_weights()
        hist = mirrored.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        with tf.device("/NPU:0"):
            single = build()
            single.set_weights(initial)
            single.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    finally:
        tf_adapter.set_strict(False)
    assert all(np.isfinite(hist.history["loss"]))
    for a, b in zip(mirrored.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    var = mirrored.trainable_variables[0].value
    replicas = strategy.experimental_local_results(var)
    assert [r.device[-5:] for r in replicas] == ["NPU:0", "NPU:1"]
    np.testing.assert_array_equal(replicas[0].numpy(), replicas[1].numpy())
