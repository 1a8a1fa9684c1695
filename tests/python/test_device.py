"""The NPU devices as TensorFlow and tf_adapter report them."""

import tensorflow as tf
import tf_adapter


def test_physical_and_logical_devices():
    phys = tf.config.list_physical_devices("NPU")
    assert [d.name for d in phys] == [f"/physical_device:NPU:{i}" for i in range(4)]
    assert all(d.device_type == "NPU" for d in phys)
    logical = [d.name for d in tf.config.list_logical_devices("NPU")]
    assert logical == [f"/device:NPU:{i}" for i in range(4)]


def test_config_reflects_environment():
    cfg = tf_adapter.config()
    assert cfg["npu_count"] == 4
    assert cfg["memory"] == 1 << 30
    assert cfg["backend"] == "host"
    assert cfg["threads"] >= 1
    assert tf_adapter.devices() == [f"/device:NPU:{i}" for i in range(4)]


def test_result_lives_on_npu_and_kernel_ran():
    tf_adapter.reset_kernel_counts()
    a = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    with tf.device("/NPU:0"):
        c = tf.matmul(a, a)
    assert c.device.endswith("device:NPU:0")
    assert tf_adapter.kernel_counts().get("MatMul", 0) >= 1
    assert c.numpy().tolist() == [[7.0, 10.0], [15.0, 22.0]]


def test_second_device_runs_kernels_too():
    with tf.device("/NPU:1"):
        c = tf.constant([1.0, 2.0]) + tf.constant([3.0, 4.0])
    assert c.device.endswith("device:NPU:1")
    assert c.numpy().tolist() == [4.0, 6.0]
