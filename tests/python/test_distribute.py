"""MirroredStrategy over two NPUs: the all-reduce runs through TensorFlow's
collectives, which need the NPU `Add` kernel to forward its input."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter


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
