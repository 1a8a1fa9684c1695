"""ResNet50 inference on the NPU: an ordinary Keras program plus two lines.

Prints the output shape, the largest relative difference to TensorFlow CPU,
the latency at batch 1 and the throughput at batch 32.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tf_adapter  # added line 1

BATCH = 32
rng = np.random.default_rng(0)
images = rng.uniform(0, 255, size=[BATCH, 224, 224, 3]).astype(np.float32)

with tf.device("/CPU:0"):  # the reference: TensorFlow's own CPU path
    reference = tf.keras.applications.ResNet50(weights=None)

with tf.device("/NPU:0"):  # added line 2
    model = tf.keras.applications.ResNet50(weights=None)
    model.set_weights(reference.get_weights())

    @tf.function
    def predict(x):
        return model(x, training=False)

    out = predict(tf.constant(images)).numpy()


@tf.function
def predict_cpu(x):
    with tf.device("/CPU:0"):
        return reference(x, training=False)


ref = predict_cpu(tf.constant(images)).numpy()
err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
print(f"output shape: {out.shape}")
print(f"max relative difference to TensorFlow CPU: {err:.2e}")


def best_time(x, runs):
    with tf.device("/NPU:0"):
        predict(x).numpy()
        best = float("inf")
        for _ in range(runs):
            t0 = time.perf_counter()
            predict(x).numpy()
            best = min(best, time.perf_counter() - t0)
    return best


one = tf.constant(images[:1])
lat = best_time(one, 5)
thr = best_time(tf.constant(images), 3)
print(f"latency (batch 1): {lat * 1e3:.1f} ms")
print(f"throughput (batch {BATCH}): {BATCH / thr:.1f} img/s")
print(f"NPU:0 peak memory: {tf_adapter.memory_info('NPU:0')['peak'] / 2**20:.0f} MiB")
