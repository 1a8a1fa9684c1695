"""Argument-check cases of the reduce family: reductions, arg-reductions and softmax."""

import numpy as np
import tensorflow as tf

from .common import family, rand, raw
from .conv import ABORTED


@family
def cases_reduce(rng):
    cases = []
    x = rand(rng, [2, 3, 4])
    i64 = tf.int64
    # TopKV2 (tf.math.top_k, tf.sort): ties to the lower index; NaN is left
    # out (TensorFlow's order for it depends on the sort it takes).
    for dtype in (tf.float32, tf.float64, tf.bfloat16, tf.int64, tf.int32, tf.uint8):
        shape = [int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4)))]
        t = rand(rng, shape, dtype, 0, 4)  # few distinct values: many ties
        cases.append(raw("TopKV2", f"random {dtype.name}", input=t, k=int(rng.integers(0, shape[-1] + 1))))
    x5 = rand(rng, [3, 5])
    cases += [
        raw("TopKV2", "k = columns", input=x5, k=5),
        raw("TopKV2", "int64 k and indices", input=x5, k=tf.constant(2, i64), index_type=tf.int64),
        raw("TopKV2", "int16 indices", input=x5, k=3, index_type=tf.int16),
        raw("TopKV2", "k over columns", input=x5, k=6),
        raw("TopKV2", "negative k", input=x5, k=-1),
        raw("TopKV2", "k vector", input=x5, k=[2]),
        raw("TopKV2", "rank 0", input=tf.constant(1.0), k=0),
        raw("TopKV2", "no rows", input=rand(rng, [0, 4]), k=2),
        raw("TopKV2", "infinities and zeros", input=tf.constant([[0.0, -0.0, np.inf, -np.inf, 1.0, 0.0]]), k=6),
    ]
    # Range of int64 and float types (int32: TensorFlow's own kernel).
    for dtype, (start, limit, delta) in [(i64, (3, 20, 4)), (i64, (5, -7, -3)), (tf.float32, (0.0, 1.0, 0.1)),
                                         (tf.float32, (2.5, -1.0, -0.3)), (tf.float64, (0.0, 1.0, 0.1)),
                                         (tf.bfloat16, (0.0, 3.0, 0.1)), (tf.float16, (1.0, 9.0, 0.7)),
                                         (tf.float32, (1.0, 1.0, 0.5))]:
        args = [tf.constant(v, dtype) for v in (start, limit, delta)]
        cases.append(raw("Range", f"{dtype.name} {start}:{limit}:{delta}", start=args[0], limit=args[1], delta=args[2]))
    f = tf.float32
    cases += [
        raw("Range", "delta 0", start=tf.constant(0.0), limit=tf.constant(1.0), delta=tf.constant(0.0)),
        raw("Range", "start over limit", start=tf.constant(5, i64), limit=tf.constant(1, i64), delta=tf.constant(1, i64)),
        raw("Range", "start under limit, delta < 0", start=tf.constant(1.0), limit=tf.constant(5.0), delta=tf.constant(-1.0)),
        raw("Range", "infinite limit", start=tf.constant(0.0), limit=tf.constant(np.inf, f), delta=tf.constant(1.0)),
        raw("Range", "NaN delta", start=tf.constant(0.0), limit=tf.constant(1.0), delta=tf.constant(np.nan, f)),
        raw("Range", "start of one element", start=tf.constant([1], i64), limit=tf.constant(4, i64), delta=tf.constant(1, i64)),
        raw("Range", "start vector", start=tf.constant([1, 2], i64), limit=tf.constant(4, i64), delta=tf.constant(1, i64)),
    ]
    # Cumsum / Cumprod: a scalar axis in [-rank, rank).
    for op in ("Cumsum", "Cumprod"):
        cases += [
            raw(op, "valid", x=x, axis=1, exclusive=True, reverse=True),
            raw(op, "int64 axis", x=tf.cast(x, tf.int64), axis=tf.constant(-3, tf.int64)),
            raw(op, "axis 3", x=x, axis=3, match="Expected scan axis in the range"),
            raw(op, "axis -4", x=x, axis=-4, match="Expected scan axis in the range"),
            raw(op, "axis vector", x=x, axis=[1], match="axis must be a scalar"),
            raw(op, "scalar input", x=tf.constant(2.0), axis=0, match="Expected scan axis in the range"),
            raw(op, "size 0", x=rand(rng, [3, 0, 2]), axis=0),
        ]
    for op in ("Sum", "Mean", "Max", "Min", "Prod"):
        dtype = tf.float32 if rng.random() < 0.5 else tf.int64
        if op == "Mean" and dtype == tf.int64:
            dtype = tf.float64
        xd = tf.cast(x, dtype)
        cases += [
            raw(op, "one axis", input=xd, axis=1),
            raw(op, "negative axis", input=xd, axis=-1, keep_dims=True),
            raw(op, "two axes int64", input=xd, axis=tf.constant([0, -1], tf.int64)),
            raw(op, "all axes", input=xd, axis=[0, 1, 2]),
            raw(op, "no axes", input=xd, axis=tf.zeros([0], tf.int32)),
            raw(op, "duplicate axes", input=xd, axis=[1, 1]),
            raw(op, "duplicate axes via negative", input=xd, axis=[2, -1]),
            raw(op, "axis out of range", input=xd, axis=3),
            raw(op, "negative axis out of range", input=xd, axis=-4),
            raw(op, "axes 2-D", input=xd, axis=[[0], [1]]),
            raw(op, "rank 0 input, axis 0", input=tf.constant(3, dtype), axis=0),
            raw(op, "rank 0 input, no axes", input=tf.constant(3, dtype), axis=tf.zeros([0], tf.int32)),
            raw(op, "empty reduced dim", input=rand(rng, [2, 0, 3], dtype), axis=1),
            raw(op, "empty kept dim", input=rand(rng, [2, 0, 3], dtype), axis=2, keep_dims=True),
            raw(op, "int32 axis over 2**31", input=xd, axis=tf.constant([2**31 + 1], tf.int64)),
        ]
    # Random shapes and axes (some out of range, some repeated, some negative).
    for _ in range(12):
        op = str(rng.choice(["Sum", "Mean", "Max", "Min", "Prod"]))
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 5)))]
        rank = max(len(shape), 1)
        axes = [int(a) for a in rng.integers(-rank - 1, rank + 1, size=int(rng.integers(0, 3)))]
        itype = tf.int32 if rng.random() < 0.5 else tf.int64
        cases.append(raw(op, "random", input=rand(rng, shape, tf.float64), axis=tf.constant(axes, itype, shape=[len(axes)]),
                         keep_dims=bool(rng.random() < 0.5)))
    cases += [
        raw("L2Loss", "rank 3", t=x),
        raw("L2Loss", "float64", t=rand(rng, [5], tf.float64)),
        raw("L2Loss", "scalar", t=tf.constant(-3.0)),
        raw("L2Loss", "size 0", t=rand(rng, [2, 0])),
    ]
    b = rand(rng, [3, 4], tf.bool)
    for op in ("All", "Any"):
        cases += [
            raw(op, "axis", input=b, axis=1),
            raw(op, "empty", input=rand(rng, [0, 4], tf.bool), axis=0),
            raw(op, "axis out of range", input=b, axis=2),
        ]
    for op in ("ArgMax", "ArgMin"):
        for dtype in (tf.float32, tf.int64):
            xd = tf.cast(x, dtype)
            cases += [
                raw(op, "axis", input=xd, dimension=1),
                raw(op, "negative axis int64 output int32", input=xd, dimension=tf.constant(-1, tf.int64), output_type=tf.int32),
                raw(op, "axis out of range", input=xd, dimension=3),
                raw(op, "axis vector", input=xd, dimension=[1]),
                raw(op, "axis vector of 2", input=xd, dimension=[0, 1]),
                raw(op, "empty reduced dim", input=rand(rng, [2, 0], dtype), dimension=1),
                raw(op, "empty other dim", input=rand(rng, [0, 3], dtype), dimension=1),
                raw(op, "rank 0", input=tf.constant(1, dtype), dimension=0),
            ]
        cases.append(raw(op, "NaN", input=tf.constant([1.0, np.nan, 3.0]), dimension=0))
    for op in ("Softmax", "LogSoftmax"):
        cases += [
            raw(op, "rank 3", logits=rand(rng, [2, 3, 4])),
            raw(op, "rank 1", logits=rand(rng, [5], tf.float64)),
            raw(op, "rank 0", ABORTED, logits=tf.constant(1.0)),
            raw(op, "size 0", logits=rand(rng, [0, 3])),
            raw(op, "last dim 0", logits=rand(rng, [3, 0])),
            raw(op, "infinities", "gives 0 next to a +inf logit, where the Eigen kernel gives NaN",
                logits=tf.constant([[np.inf, 1.0], [-np.inf, -np.inf]])),
        ]
    cases += [
        raw("BiasAddGrad", "rank 3", out_backprop=rand(rng, [2, 3, 4])),
        raw("BiasAddGrad", "NCHW", out_backprop=rand(rng, [2, 3, 4, 5]), data_format="NCHW"),
        raw("BiasAddGrad", "NCHW rank 2", out_backprop=rand(rng, [2, 3]), data_format="NCHW"),
        raw("BiasAddGrad", "rank 1", out_backprop=rand(rng, [3])),
        raw("BiasAddGrad", "size 0", out_backprop=rand(rng, [0, 3])),
    ]
    return cases
