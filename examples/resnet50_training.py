"""ResNet50 training on the NPU: a TensorFlow user's own training loop
(AdamW, CategoricalCrossentropy, GradientTape, tf.function, an epoch loop)
plus two lines.

The data is a small synthetic set (random images, fixed labels) so the example
needs no download; the loss goes down as the network fits it. Defaults are
sized for a small CPU machine; `--image-size 224 --batch 32` is the real shape.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tf_adapter  # added line 1

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--image-size", type=int, default=64)
parser.add_argument("--batches-per-epoch", type=int, default=4)
parser.add_argument("--classes", type=int, default=10)
args = parser.parse_args()

rng = np.random.default_rng(0)
n = args.batch * args.batches_per_epoch
images = rng.uniform(0, 255, size=[n, args.image_size, args.image_size, 3]).astype(np.float32)
labels = tf.one_hot(rng.integers(0, args.classes, size=n), args.classes)
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(args.batch)

with tf.device("/NPU:0"):  # added line 2
    model = tf.keras.applications.ResNet50(
        weights=None,
        input_shape=(args.image_size, args.image_size, 3),
        classes=args.classes,
        classifier_activation=None,
    )
    optimizer = tf.keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4)
    loss_fn = tf.keras.losses.CategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for epoch in range(args.epochs):
        start, total, steps = time.perf_counter(), 0.0, 0
        for x, y in dataset:
            total += float(train_step(x, y))
            steps += 1
        seconds = time.perf_counter() - start
        print(f"epoch {epoch + 1}: loss {total / steps:.4f}  ({n / seconds:.1f} img/s)")

print(f"weights on: {model.trainable_variables[0].value.device}")
print(f"peak NPU memory: {tf_adapter.memory_info('NPU:0')['peak'] / 2**20:.0f} MiB")
cov = tf_adapter.coverage(train_step, x, y)
print(f"train step: {cov.counts().get('NPU', 0)}/{sum(cov.counts().values())} nodes on the NPU"
      f"{'' if cov.fully_on_npu else ' (see tf_adapter.coverage for the rest)'}")
