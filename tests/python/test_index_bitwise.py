"""ArgMax/ArgMin, BroadcastTo, Bitcast and the bitwise ops on the NPU against
TensorFlow CPU (they appear in Keras train steps: accuracy metrics, seeds)."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_matches, random_tensor


def both(fn, *args):
    @tf.function
    def npu(*a):
        with tf.device("/NPU:0"):
            return fn(*a)

    @tf.function
    def cpu(*a):
        with tf.device("/CPU:0"):
            return fn(*a)

    got = npu(*args)
    assert got.device.endswith("NPU:0")
    return got, cpu(*args)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64, tf.int64, tf.int32, tf.uint8])
@pytest.mark.parametrize("op", [tf.math.argmax, tf.math.argmin])
def test_argmax_argmin(op, dtype, rng, strict_placement):
    for _ in range(4):
        rank = int(rng.integers(1, 4))
        shape = [int(rng.integers(1, 7)) for _ in range(rank)]
        x = random_tensor(rng, shape, dtype)
        axis = int(rng.integers(-rank, rank))
        for out in (tf.int64, tf.int32):
            got, want = both(lambda t: op(t, axis=axis, output_type=out), x)
            assert_matches(got, want, out)


def test_argmax_ties_nan_and_errors(strict_placement):
    x = tf.constant([[1.0, np.nan, 3.0, 3.0], [np.nan, np.nan, np.nan, np.nan], [2.0, 2.0, 1.0, np.nan]])
    for op in (tf.math.argmax, tf.math.argmin):
        got, want = both(lambda t: op(t, axis=1), x)
        assert_matches(got, want, tf.int64)
    with pytest.raises(tf.errors.InvalidArgumentError):
        with tf.device("/NPU:0"):
            tf.math.argmax(tf.zeros([2, 0]), axis=1)


@pytest.mark.parametrize("dtype", [tf.float32, tf.int32, tf.int64, tf.bool, tf.float16])
def test_broadcast_to(dtype, rng, strict_placement):
    for src, dst in [([3], [2, 3]), ([1], [4, 5]), ([2, 1, 3], [2, 4, 3]), ([4, 1], [3, 4, 5]), ([], [2, 2]), ([2, 3], [2, 3])]:
        x = random_tensor(rng, src, dtype)
        got, want = both(lambda t: tf.broadcast_to(t, dst), x)
        assert_matches(got, want, dtype)
    with pytest.raises(tf.errors.InvalidArgumentError):
        with tf.device("/NPU:0"):
            tf.broadcast_to(tf.ones([3], tf.float32), [4])


@pytest.mark.parametrize("src,dst", [
    (tf.float32, tf.int32), (tf.float32, tf.uint8), (tf.int64, tf.int32),
    (tf.uint8, tf.float32), (tf.float16, tf.bfloat16), (tf.int32, tf.int64),
])
def test_bitcast(src, dst, rng, strict_placement):
    ratio = dst.size // src.size
    shape = [3, ratio] if ratio > 1 else [3, 2]
    x = random_tensor(rng, shape, src)
    got, want = both(lambda t: tf.bitcast(t, dst), x)
    np.testing.assert_array_equal(got.numpy().view(np.uint8), want.numpy().view(np.uint8))
    assert got.shape == want.shape


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64, tf.uint8, tf.int8, tf.uint32])
@pytest.mark.parametrize("op", [tf.bitwise.bitwise_and, tf.bitwise.bitwise_or, tf.bitwise.bitwise_xor])
def test_bitwise(op, dtype, rng, strict_placement):
    a = random_tensor(rng, [4, 5], dtype, low=0, high=60)
    b = random_tensor(rng, [5], dtype, low=0, high=60)
    got, want = both(op, a, b)
    assert_matches(got, want, dtype)


@pytest.mark.parametrize("dtype", [tf.float32, tf.int32, tf.int64, tf.bfloat16, tf.bool])
def test_one_hot(dtype, rng, strict_placement):
    on, off = (True, False) if dtype == tf.bool else (3, -1)
    for shape, axis, index_type in [([5], -1, tf.int32), ([2, 3], 0, tf.int64), ([2, 3], 1, tf.uint8), ([4, 0], -1, tf.int32), ([], -1, tf.int64)]:
        idx = tf.cast(tf.constant(rng.integers(-1, 6, size=shape)), tf.int64)
        if index_type == tf.uint8:
            idx = tf.abs(idx)
        idx = tf.cast(idx, index_type)
        got, want = both(lambda i: tf.one_hot(i, 5, on_value=tf.cast(on, dtype), off_value=tf.cast(off, dtype), axis=axis), idx)
        assert_matches(got, want, dtype)
    with pytest.raises(tf.errors.InvalidArgumentError, match="depth must be non-negative"):
        with tf.device("/NPU:0"):
            tf.one_hot(tf.constant([1], tf.int64), -2)


@pytest.mark.parametrize("dtype", [tf.float32, tf.int32, tf.int64, tf.float16])
@pytest.mark.parametrize("op", [tf.dynamic_stitch, tf.raw_ops.ParallelDynamicStitch])
def test_dynamic_stitch(op, dtype, rng, strict_placement):
    idx = [tf.constant([6, 4, 1]), tf.constant([[5, 2], [0, 3]]), tf.constant([4])]
    data = [random_tensor(rng, [3, 2], dtype), random_tensor(rng, [2, 2, 2], dtype), random_tensor(rng, [1, 2], dtype)]

    def f(*d):
        if op is tf.dynamic_stitch:
            return op(idx, list(d))
        return op(indices=idx, data=list(d))

    got, want = both(f, *data)
    assert_matches(got, want, dtype)


def test_mean_gradient_with_dynamic_batch_stays_on_npu(strict_placement):
    # Keras fit traces with an unknown batch: Mean's gradient stitches shapes.
    @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3])])
    def grad(x):
        with tf.device("/NPU:0"):
            with tf.GradientTape() as t:
                t.watch(x)
                y = tf.reduce_mean(tf.square(x), axis=[1, 2])
            return t.gradient(y, x)

    x = tf.constant(rng_normal := np.random.default_rng(0).normal(size=[2, 4, 4, 3]).astype(np.float32))
    np.testing.assert_allclose(grad(x).numpy(), 2 * rng_normal / 16, rtol=1e-6)


@pytest.mark.parametrize("op", [tf.reduce_all, tf.reduce_any])
def test_all_any(op, rng, strict_placement):
    for shape, axis, keep in [([5], None, False), ([3, 4], 1, True), ([2, 3, 4], [0, 2], False), ([0, 3], 0, False), ([3, 0], 1, True), ([4], [], False)]:
        x = random_tensor(rng, shape, tf.bool)
        got, want = both(lambda t: op(t, axis=axis, keepdims=keep), x)
        assert_matches(got, want, tf.bool)


@pytest.mark.parametrize("dtype", [tf.float32, tf.int32, tf.int64, tf.bfloat16, tf.bool])
def test_split_splitv_unstack(dtype, rng, strict_placement):
    x = random_tensor(rng, [4, 6, 3], dtype)
    for fn in (
        lambda t: tf.split(t, 3, axis=1),
        lambda t: tf.split(t, [1, 3, 2], axis=1),
        lambda t: tf.split(t, [2, -1], axis=0),
        lambda t: tf.split(t, [0, 3], axis=-1),
        lambda t: tf.unstack(t, axis=2),
        lambda t: tf.unstack(t, axis=0),
    ):
        got, want = both(lambda t: tf.concat([tf.reshape(p, [-1]) for p in fn(t)], 0), x)
        assert_matches(got, want, dtype)
    with pytest.raises(tf.errors.InvalidArgumentError):
        with tf.device("/NPU:0"):
            tf.split(tf.ones([4, 5]), 3, axis=1)
