"""Argument-check cases of the segment family: unsorted segment reductions and bincount."""

import tensorflow as tf

from .common import family, rand, raw


@family
def cases_segment(rng):
    cases = []
    data = rand(rng, [5, 3])
    ids = tf.constant([0, 2, 2, 1, 0])
    for op in ("UnsortedSegmentSum", "UnsortedSegmentProd", "UnsortedSegmentMax", "UnsortedSegmentMin"):
        dtype = tf.float32 if rng.random() < 0.5 else tf.int64
        d = tf.cast(data, dtype)
        cases += [
            raw(op, "valid", data=d, segment_ids=ids, num_segments=4),
            raw(op, "int64 ids and count", data=d, segment_ids=tf.cast(ids, tf.int64), num_segments=tf.constant(3, tf.int64)),
            raw(op, "negative ids are dropped", data=d, segment_ids=tf.constant([0, -1, 2, -5, 1]), num_segments=3),
            raw(op, "id out of range", data=d, segment_ids=tf.constant([0, 3, 2, 1, 0]), num_segments=3),
            raw(op, "2-D ids", data=rand(rng, [2, 3, 2], dtype), segment_ids=tf.constant([[0, 1, 1], [2, 0, 1]]), num_segments=3),
            raw(op, "ids shape not a prefix", data=d, segment_ids=tf.constant([0, 1, 2]), num_segments=3),
            raw(op, "negative num_segments", data=d, segment_ids=ids, num_segments=-1),
            raw(op, "num_segments vector", data=d, segment_ids=ids, num_segments=[3]),
            raw(op, "num_segments 0", data=d, segment_ids=tf.constant([-1, -1, -1, -1, -1]), num_segments=0),
            raw(op, "size-0 data", data=rand(rng, [0, 3], dtype), segment_ids=tf.zeros([0], tf.int32), num_segments=2),
            raw(op, "rank-0 ids", data=tf.constant(2.0, dtype) if dtype.is_floating else tf.constant(2, dtype), segment_ids=tf.constant(1),
                num_segments=3),
        ]
    cases += bincount_cases(rng)
    return cases


def bincount_cases(rng):
    none = tf.constant([], tf.float32)
    ids2 = tf.constant(rng.integers(0, 7, size=[4, 6]), tf.int32)
    cases = []
    for _ in range(6):
        shape = [int(rng.integers(0, 9))] if rng.random() < 0.5 else [int(v) for v in rng.integers(0, 5, size=2)]
        tidx = tf.int32 if rng.random() < 0.5 else tf.int64
        ids = tf.constant(rng.integers(0, 9, size=shape), tidx)
        size = tf.constant(int(rng.integers(0, 10)), tidx)
        dtype = [tf.float32, tf.float64, tf.int64][int(rng.integers(0, 3))]
        weights = rand(rng, shape, dtype) if rng.random() < 0.5 else tf.constant([], dtype)
        cases.append(raw("DenseBincount", "random", input=ids, size=size, weights=weights, binary_output=bool(rng.random() < 0.3)))
    cases += [
        raw("DenseBincount", "2-D counts", input=ids2, size=5, weights=none),
        raw("DenseBincount", "2-D weights", input=ids2, size=5, weights=rand(rng, [4, 6])),
        raw("DenseBincount", "2-D binary", input=ids2, size=5, weights=rand(rng, [4, 6]), binary_output=True),
        raw("DenseBincount", "1-D int64 weights", input=tf.constant([1, 1, 3, 9]), size=4, weights=tf.constant([2, 3, 4, 5], tf.int64)),
        raw("DenseBincount", "rank 0", input=tf.constant(1), size=5, weights=none),
        raw("DenseBincount", "rank 3", input=tf.constant([[[1]]]), size=5, weights=none),
        raw("DenseBincount", "negative, 1-D", input=tf.constant([1, -2]), size=5, weights=none),
        raw("DenseBincount", "negative, 2-D", input=tf.constant([[1, -2]]), size=5, weights=none),
        raw("DenseBincount", "size vector", input=tf.constant([1]), size=[5], weights=none),
        raw("DenseBincount", "negative size", input=tf.constant([1]), size=-1, weights=none),
        raw("DenseBincount", "size 0", input=tf.constant([1, 0]), size=0, weights=none),
        raw("DenseBincount", "weights shape mismatch", input=ids2, size=5, weights=rand(rng, [4, 5])),
        raw("DenseBincount", "flat weights for 2-D input", input=ids2, size=5, weights=rand(rng, [24])),
        raw("DenseBincount", "no rows", input=tf.zeros([0, 3], tf.int32), size=4, weights=none),
    ]
    return cases
