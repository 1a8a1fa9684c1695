"""Device memory: capacity, accounting, out-of-memory errors the process survives."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import on


def test_usage_is_accounted_and_released():
    # Warm-up: TensorFlow keeps a few bytes of the first op's constants on the device.
    on("/NPU:0", tf.identity, tf.ones([1024, 256]))
    before = tf_adapter.memory_info("NPU:0")
    x = on("/NPU:0", tf.identity, tf.ones([1024, 256]))  # 1 MiB
    during = tf_adapter.memory_info("NPU:0")
    assert during["current"] - before["current"] >= 1 << 20
    assert during["peak"] >= during["current"]
    assert during["capacity"] == 1 << 30
    del x
    after = tf_adapter.memory_info("/device:NPU:0")
    assert after["current"] <= before["current"]


def test_tensorflow_memory_api_reports_npu():
    x = on("/NPU:0", tf.identity, tf.ones([512, 512]))
    info = tf.config.experimental.get_memory_info("NPU:0")
    assert info["current"] >= x.numpy().nbytes
    tf.config.experimental.reset_memory_stats("NPU:0")
    assert tf.config.experimental.get_memory_info("NPU:0")["peak"] == tf_adapter.memory_info()["current"]
    # Other devices still go to TensorFlow's own implementation: the same
    # answer, or the same error (TensorFlow's CPU allocator keeps statistics
    # only where it runs oneDNN; elsewhere it raises ValueError).
    patched = tf.config.experimental.get_memory_info
    assert patched is not patched.__wrapped__
    assert outcome(patched, "CPU:0") == outcome(patched.__wrapped__, "CPU:0")


def outcome(fn, *args):
    try:
        return sorted(fn(*args))
    except ValueError as e:
        return ("ValueError", str(e))


def test_out_of_memory_raises_and_process_continues():
    a = tf.ones([20000, 1])
    b = tf.ones([1, 20000])
    with pytest.raises(tf.errors.ResourceExhaustedError) as e:
        on("/NPU:0", tf.matmul, a, b)  # 1.6 GB output, capacity 1 GiB
    msg = str(e.value)
    assert "NPU:0" in msg, msg
    assert "1600000000 bytes" in msg, msg  # the request
    assert "1073741824 bytes" in msg, msg  # the capacity
    assert "MatMul" in msg, msg
    assert tf_adapter.memory_info("NPU:0")["failed_allocs"] >= 1
    # The next op works.
    c = on("/NPU:0", tf.matmul, tf.ones([2, 2]), tf.ones([2, 2]))
    np.testing.assert_array_equal(c.numpy(), np.full([2, 2], 2.0))


def test_copy_past_capacity_fails_cleanly_with_the_reason_once(capfd):
    # TensorFlow's own host->device copy reports a failed allocation as
    # InternalError "Dst tensor is not initialized" (as on GPUs), and a
    # function's receive as ResourceExhausted "unable to allocate", neither
    # with a reason: the error raised carries the device's figures, and
    # nothing is printed besides.
    with tf.device("/CPU:0"):
        big = tf.zeros([300, 1024, 1024])  # 1.2 GiB on the host
    with pytest.raises((tf.errors.ResourceExhaustedError, tf.errors.InternalError)) as e:
        on("/NPU:1", tf.identity, big)
    reason = "NPU:1 out of memory: requested 1.17 GiB (1258291200 bytes)"
    assert str(e.value.message).startswith(reason) and "Dst tensor is not initialized" in e.value.message, e.value

    @tf.function
    def double(x):
        with tf.device("/NPU:1"):
            return x * 2.0

    with pytest.raises(tf.errors.ResourceExhaustedError) as e:
        double(big)
    assert reason in e.value.message and "TensorFlow said" in e.value.message, e.value
    # The reason was taken by the error it belongs to: a later error does not get it.
    with pytest.raises(tf.errors.InvalidArgumentError) as later:
        on("/NPU:1", tf.reshape, tf.ones([3]), [2])
    assert "out of memory" not in later.value.message
    assert "out of memory" not in capfd.readouterr().err
    del big
    assert on("/NPU:1", tf.add, tf.ones([3]), tf.ones([3])).numpy().tolist() == [2.0] * 3


def test_unknown_device_names_are_rejected():
    with pytest.raises(ValueError, match="no NPU:5"):
        tf_adapter.memory_info("NPU:5")
    with pytest.raises(ValueError, match="not an NPU"):
        tf_adapter.memory_info("GPU:0")
