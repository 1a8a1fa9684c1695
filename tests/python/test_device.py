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


def test_config_reports_the_cpu_features_the_kernels_use():
    """One probe decides every kernel's instruction set; it agrees with what
    the operating system reports for this CPU."""
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    avx2 = {"avx2", "fma"} <= flags
    avx512 = avx2 and {"avx512f", "avx512dq", "avx512vl", "avx512bw"} <= flags
    want = [name for name, on in [("avx2+fma", avx2), ("avx512", avx512),
                                   ("avx512_bf16", avx512 and "avx512_bf16" in flags),
                                   ("amx_bf16", avx512 and {"amx_bf16", "amx_tile"} <= flags)] if on]
    assert tf_adapter.config()["cpu_features"] == want


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
