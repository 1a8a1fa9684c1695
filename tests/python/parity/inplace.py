"""Argument-check cases of the inplace family: InplaceUpdate/Add/Sub and Empty."""

import tensorflow as tf
from argcheck import Case

from .common import R, _short, family, rand, raw


def inplace(op, note, x, i, v):
    """InplaceUpdate/Add/Sub write into `x`'s own buffer, on the CPU as on
    the NPU: each run works on its own DeepCopy of `x`, so that the CPU's run
    does not change the NPU's input."""
    i = tf.constant(i, tf.int32)

    def call(x, i, v):
        return getattr(R, op)(x=R.DeepCopy(x=x), i=i, v=v)

    return Case(op, call, args=(x, i, v), note=f"{note} | {op}({_short(x)}, i={_short(i)}, v={_short(v)})")


@family
def cases_inplace(rng):
    cases = []
    x = rand(rng, [5, 3])
    for op in ("InplaceUpdate", "InplaceAdd", "InplaceSub"):
        cases += [
            inplace(op, "valid", x, [4, 0], rand(rng, [2, 3])),
            inplace(op, "int64", rand(rng, [4, 2, 2], tf.int64), [1], rand(rng, [1, 2, 2], tf.int64)),
            inplace(op, "repeated row", x, [2, 2, -5], rand(rng, [3, 3])),
            inplace(op, "no rows", x, tf.zeros([0], tf.int32), rand(rng, [0, 3])),
            inplace(op, "i scalar", x, 1, rand(rng, [1, 3])),
            inplace(op, "ranks differ", x, [1], rand(rng, [3])),
            inplace(op, "row shape mismatch", x, [1], rand(rng, [1, 2])),
            inplace(op, "i and v rows differ", x, [1, 2], rand(rng, [1, 3])),
        ]
    cases += [
        raw("DeepCopy", "valid", x=rand(rng, [2, 3], tf.int64)),
        raw("DeepCopy", "size 0", x=rand(rng, [0, 3])),
        raw("Empty", "init", shape=[2, 3], dtype=tf.float32, init=True),
        raw("Empty", "init, int32", shape=[4], dtype=tf.int32, init=True),
        raw("Empty", "shape 2-D", shape=[[2, 3]], dtype=tf.float32, init=True),
        raw("Empty", "negative dim", shape=[2, -3], dtype=tf.float32, init=True),
    ]
    return cases
