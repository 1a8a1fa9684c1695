"""Argument-check cases of the random family: the stateless random ops."""

import tensorflow as tf
from argcheck import Case

from .common import R, family, raw


def short_counter(op, key):
    """A Philox counter of one element: TensorFlow reads the second word past
    the end of the tensor (garbage); the NPU reads it as 0. Oracle: the
    CPU with the counter padded with 0."""
    def padded(shape, key, counter):
        return getattr(R, op)(shape=shape, key=key, counter=tf.concat([counter, tf.zeros([1], tf.uint64)], 0), alg=1)

    padded.__name__ = "counter padded with 0"
    return Case(op, lambda shape, key, counter: getattr(R, op)(shape=shape, key=key, counter=counter, alg=1),
                args=(tf.constant([2]), key, tf.constant([1], tf.uint64)), cpu_fn=padded,
                note="deliberate difference: counter of 1 (TensorFlow reads past its end)")


@family
def cases_random(rng):
    cases = []
    key, counter = tf.constant([7], tf.uint64), tf.constant([1, 2], tf.uint64)
    for op in ("StatelessRandomUniformV2", "StatelessRandomNormalV2", "StatelessTruncatedNormalV2"):
        cases += [
            raw(op, "valid", shape=[2, 3], key=key, counter=counter, alg=1),
            raw(op, "int64 shape", shape=tf.constant([4], tf.int64), key=key, counter=counter, alg=1, dtype=tf.float64),
            raw(op, "negative dim", shape=[2, -3], key=key, counter=counter, alg=1),
            raw(op, "key of 2", shape=[2], key=tf.constant([7, 8], tf.uint64), counter=counter, alg=1),
            short_counter(op, key),
            raw(op, "bad alg", shape=[2], key=key, counter=counter, alg=7),
            raw(op, "shape 2-D", shape=[[2]], key=key, counter=counter, alg=1),
            raw(op, "size 0", shape=[0, 3], key=key, counter=counter, alg=1),
        ]
    seed = tf.constant([1, 2])
    for op in ("StatelessRandomUniform", "StatelessRandomNormal", "StatelessTruncatedNormal"):
        cases += [
            raw(op, "valid", shape=[3, 2], seed=seed),
            raw(op, "int64 seed", shape=tf.constant([3], tf.int64), seed=tf.constant([5, 6], tf.int64), dtype=tf.float64),
            raw(op, "seed of 3", shape=[3], seed=tf.constant([1, 2, 3])),
            raw(op, "negative dim", shape=[-1], seed=seed),
        ]
    cases += [
        raw("StatelessRandomUniformInt", "valid", shape=[5], seed=seed, minval=tf.constant(-3), maxval=tf.constant(4)),
        raw("StatelessRandomUniformInt", "minval == maxval", shape=[5], seed=seed, minval=tf.constant(4), maxval=tf.constant(4)),
        raw("StatelessRandomUniformInt", "minval vector", shape=[5], seed=seed, minval=tf.constant([1]), maxval=tf.constant(4)),
        raw("StatelessRandomUniformIntV2", "valid", shape=[5], key=key, counter=counter, alg=1, minval=tf.constant(-3, tf.int64),
            maxval=tf.constant(9, tf.int64)),
        raw("StatelessRandomUniformIntV2", "minval > maxval", shape=[5], key=key, counter=counter, alg=1,
            minval=tf.constant(3, tf.int64), maxval=tf.constant(1, tf.int64)),
        raw("StatelessRandomUniformFullIntV2", "valid", shape=[5], key=key, counter=counter, alg=1, dtype=tf.uint32),
        raw("StatelessRandomUniformFullIntV2", "bad alg", shape=[5], key=key, counter=counter, alg=9, dtype=tf.int64),
        raw("StatelessRandomGetKeyCounter", "valid", seed=seed),
        raw("StatelessRandomGetKeyCounter", "int64 seed", seed=tf.constant([-1, 2**40], tf.int64)),
        raw("StatelessRandomGetKeyCounter", "seed of 1", seed=tf.constant([1])),
        raw("StatelessRandomGetKeyCounter", "seed 2-D", seed=tf.constant([[1, 2]])),
    ]
    return cases
