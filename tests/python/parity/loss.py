"""Argument-check cases of the loss family: the softmax cross-entropy losses."""

import tensorflow as tf

from .common import family, rand, raw


@family
def cases_loss(rng):
    cases = []
    op = "SoftmaxCrossEntropyWithLogits"
    for dtype in (tf.float32, tf.float64):
        cases += [
            raw(op, "valid", features=rand(rng, [3, 4], dtype), labels=rand(rng, [3, 4], dtype, 0, 1)),
            raw(op, "broadcast labels", features=rand(rng, [3, 4], dtype), labels=rand(rng, [1, 4], dtype, 0, 1)),
            raw(op, "shape mismatch", features=rand(rng, [3, 4], dtype), labels=rand(rng, [3, 5], dtype)),
            raw(op, "rank 1", features=rand(rng, [4], dtype), labels=rand(rng, [4], dtype)),
            raw(op, "rank 3", features=rand(rng, [2, 3, 4], dtype), labels=rand(rng, [2, 3, 4], dtype)),
            raw(op, "batch 0", features=rand(rng, [0, 4], dtype), labels=rand(rng, [0, 4], dtype)),
            raw(op, "0 classes", features=rand(rng, [3, 0], dtype), labels=rand(rng, [3, 0], dtype)),
        ]
    op = "SparseSoftmaxCrossEntropyWithLogits"
    for itype in (tf.int32, tf.int64):
        cases += [
            raw(op, "valid", features=rand(rng, [3, 4]), labels=tf.constant([0, 3, 1], itype)),
            raw(op, "label out of range", features=rand(rng, [3, 4]), labels=tf.constant([0, 4, 1], itype)),
            raw(op, "negative label", features=rand(rng, [3, 4], tf.float64), labels=tf.constant([0, -1, 1], itype)),
            raw(op, "labels length mismatch", features=rand(rng, [3, 4]), labels=tf.constant([0, 1], itype)),
            raw(op, "labels rank 2", features=rand(rng, [3, 4]), labels=tf.constant([[0], [1], [2]], itype)),
            raw(op, "logits rank 1", features=rand(rng, [4]), labels=tf.constant(1, itype)),
            raw(op, "logits rank 3", features=rand(rng, [2, 3, 4]), labels=tf.constant([[0, 1, 2], [3, 0, 1]], itype)),
            raw(op, "batch 0", features=rand(rng, [0, 4]), labels=tf.zeros([0], itype)),
            raw(op, "0 classes", features=rand(rng, [3, 0]), labels=tf.constant([0, 0, 0], itype)),
            raw(op, "0 classes, batch 0", features=rand(rng, [0, 0]), labels=tf.zeros([0], itype)),
        ]
    return cases
