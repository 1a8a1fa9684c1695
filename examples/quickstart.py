"""tf_adapter quickstart: the two-line change on an ordinary TensorFlow program.

Runs a small Keras model and a matmul on /NPU:0 (the `host` backend by
default), compares them with TensorFlow CPU, and prints where they ran.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tf_adapter  # line 1 of 2: registers the NPU devices

print("TensorFlow", tf.__version__, "| tf_adapter", tf_adapter.__version__, "| config", tf_adapter.config())
print("physical devices:", [d.name for d in tf.config.list_physical_devices()])

rng = np.random.default_rng(0)
a = tf.constant(rng.normal(size=[256, 512]), tf.float32)
b = tf.constant(rng.normal(size=[512, 128]), tf.float32)

with tf.device("/NPU:0"):  # line 2 of 2
    c = tf.nn.relu(tf.matmul(a, b) + 1.0)
with tf.device("/CPU:0"):
    c_cpu = tf.nn.relu(tf.matmul(a, b) + 1.0)

err = float(np.max(np.abs(c.numpy() - c_cpu.numpy())) / np.max(np.abs(c_cpu.numpy())))
print(f"matmul+relu: result on {c.device}, max relative difference to CPU {err:.2e}")

# A Keras model: the ops with NPU kernels run there, the others on the host.
tf_adapter.reset_kernel_counts()
with tf.device("/NPU:0"):
    model = tf.keras.Sequential(
        [tf.keras.Input([32]), tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(10)]
    )
    x = tf.constant(rng.normal(size=[16, 32]), tf.float32)
    y = model(x)
print(f"keras Dense model: output {tuple(y.shape)} on {y.device}")
print("NPU kernels that ran:", dict(sorted(tf_adapter.kernel_counts().items())))
info = tf_adapter.memory_info("NPU:0")
print(f"NPU:0 memory: {info['current']} bytes in use, peak {info['peak']}, capacity {info['capacity']}")
assert err < 1e-5, "NPU result differs from CPU"
