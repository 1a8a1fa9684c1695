"""The reference models on the NPU: every op placed there (soft placement off,
device scope inside the tf.function), outputs equal TensorFlow CPU."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from tf_adapter import zoo


@pytest.mark.parametrize("name,kw,batch", [
    ("resnet50", {"image_size": 64, "logits": True}, 2),
    ("mobilenetv2", {"image_size": 64, "logits": True}, 2),
    ("efficientnetb0", {"image_size": 64, "logits": True}, 2),
    ("bert_encoder", {"small": True}, 2),
])
def test_model_runs_entirely_on_npu_and_matches_cpu(name, kw, batch):
    # Built with soft placement on: weight initialisers (random ops) are
    # training-side ops; inference is what is checked with it off.
    cpu_model, npu_model = zoo.twin(name, **kw)
    x = zoo.example_input(cpu_model, batch)

    @tf.function
    def on_npu(inp):
        with tf.device("/NPU:0"):
            return npu_model(inp, training=False)

    @tf.function
    def on_cpu(inp):
        with tf.device("/CPU:0"):
            return cpu_model(inp, training=False)

    report = tf_adapter.coverage(npu_model, tf.constant(x))
    assert report.fully_on_npu, str(report)
    tf_adapter.reset_kernel_counts()
    tf.config.set_soft_device_placement(False)
    try:
        got = on_npu(tf.constant(x))
        want = on_cpu(tf.constant(x)).numpy()
    finally:
        tf.config.set_soft_device_placement(True)
    assert got.device.endswith("NPU:0")
    counts = tf_adapter.kernel_counts()
    assert sum(counts.values()) > 10, counts
    assert np.std(want) > 0, "outputs carry no signal to compare"
    err = np.max(np.abs(got.numpy() - want)) / max(np.max(np.abs(want)), 1e-30)
    assert err <= 1e-4, f"{name}: max relative error {err:.3g}"
