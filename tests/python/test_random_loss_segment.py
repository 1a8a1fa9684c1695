"""Stateless random ops (bit-exact with TensorFlow CPU, so Dropout masks and
initialisers agree), softmax cross-entropy losses and their gradients, int32
reductions kept in host memory, Slice, StridedSliceGrad and unsorted segment
reductions: NPU against TensorFlow CPU in the same process."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, on, random_tensor

FLOATS = [tf.float32, tf.float64, tf.float16, tf.bfloat16]


def run_both(name, fn, count=1):
    """Runs `fn` on NPU:0 and CPU:0; checks the NPU kernel ran."""
    tf_adapter.reset_kernel_counts()
    npu = on("/NPU:0", fn)
    for t in npu if isinstance(npu, (tuple, list)) else [npu]:
        assert t.device.endswith("NPU:0"), name
    assert tf_adapter.kernel_counts().get(name, 0) >= count, (name, tf_adapter.kernel_counts())
    cpu = on("/CPU:0", fn)
    return npu, cpu


def npu_fn(fn):
    """`fn` traced with the NPU scope inside the body (soft placement off in
    the tests that use it proves every op ran on the NPU)."""

    @tf.function
    def f(*args):
        with tf.device("/NPU:0"):
            return fn(*args)

    return f


def cpu_fn(fn):
    @tf.function
    def f(*args):
        with tf.device("/CPU:0"):
            return fn(*args)

    return f


def bits(t):
    """The raw bits of a tensor, for bit-for-bit comparisons."""
    a = t.numpy()
    if t.dtype == tf.bfloat16:
        return tf.bitcast(t, tf.uint16).numpy()
    return a.view(np.dtype(f"u{a.dtype.itemsize}")) if a.dtype.kind == "f" else a


def assert_bits(npu, cpu):
    assert npu.dtype == cpu.dtype and npu.shape == cpu.shape, (npu, cpu)
    np.testing.assert_array_equal(bits(npu), bits(cpu))


def rand_shape(rng, max_rank=3, max_dim=9):
    return [int(rng.integers(0, max_dim + 1)) for _ in range(int(rng.integers(0, max_rank + 1)))]


SHAPES = [[], [0], [1], [3], [5], [7, 3], [2, 0, 4], [33, 17], [1025], [3, 5, 7], [70001]]


# ------------------------------------------------------------------ random ----


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("kind", ["uniform", "normal", "truncated_normal"])
def test_stateless_v2_bit_exact(kind, dtype, rng, strict_placement):
    fn = {
        "uniform": tf.random.stateless_uniform,
        "normal": tf.random.stateless_normal,
        "truncated_normal": tf.random.stateless_truncated_normal,
    }[kind]
    for shape in SHAPES + [rand_shape(rng) for _ in range(3)]:
        seed = tf.constant(rng.integers(-(2**31), 2**31, size=2), dtype=rng.choice([tf.int32, tf.int64]))
        f = lambda s: fn(shape, seed=s, dtype=dtype)  # noqa: E731
        assert_bits(npu_fn(f)(seed), cpu_fn(f)(seed))


@pytest.mark.parametrize("op", ["StatelessRandomUniform", "StatelessRandomNormal", "StatelessTruncatedNormal"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_stateless_v1_bit_exact(op, dtype, rng):
    for shape in [[0], [5], [4, 3], [1001], [3, 0, 2]]:
        seed = tf.constant(rng.integers(-(2**40), 2**40, size=2), dtype=tf.int64)
        shape_t = tf.constant(shape, dtype=rng.choice([tf.int32, tf.int64]))
        npu, cpu = run_both(op, lambda: getattr(tf.raw_ops, op)(shape=shape_t, seed=seed, dtype=dtype))
        assert_bits(npu, cpu)


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64, tf.uint32, tf.uint64])
def test_stateless_ints(dtype, rng, strict_placement):
    for shape in [[0], [1], [7], [3, 5], [1001]]:
        seed = tf.constant(rng.integers(0, 2**31, size=2), dtype=tf.int32)
        if dtype in (tf.int32, tf.int64):
            lo, hi = sorted(int(v) for v in rng.integers(-1000, 1000, size=2))
            hi += 1
            f = lambda s: tf.random.stateless_uniform(shape, s, minval=lo, maxval=hi, dtype=dtype)  # noqa: E731
            assert_bits(npu_fn(f)(seed), cpu_fn(f)(seed))
            v1 = lambda: tf.raw_ops.StatelessRandomUniformInt(shape=shape, seed=seed, minval=tf.constant(lo, dtype), maxval=tf.constant(hi, dtype))  # noqa: E731
            npu, cpu = run_both("StatelessRandomUniformInt", v1)
            assert_bits(npu, cpu)
        f = lambda s: tf.random.stateless_uniform(shape, s, minval=None, maxval=None, dtype=dtype)  # noqa: E731
        assert_bits(npu_fn(f)(seed), cpu_fn(f)(seed))
    # Extreme range: the whole int64 line but one.
    f = lambda s: tf.random.stateless_uniform([9], s, minval=-(2**63), maxval=2**63 - 1, dtype=tf.int64)  # noqa: E731
    seed = tf.constant([3, 4])
    assert_bits(npu_fn(f)(seed), cpu_fn(f)(seed))


def test_key_counter_alg(rng):
    for seed_dtype in [tf.int32, tf.int64]:
        seed = tf.constant(rng.integers(-(2**31), 2**31, size=2), dtype=seed_dtype)
        tf_adapter.reset_kernel_counts()
        k, c = on("/NPU:0", lambda: tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed))
        assert tf_adapter.kernel_counts().get("StatelessRandomGetKeyCounter") == 1
        kc, cc = on("/CPU:0", lambda: tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed))
        assert_bits(k, kc)
        assert_bits(c, cc)
    alg = on("/NPU:0", lambda: tf.raw_ops.StatelessRandomGetAlg())
    assert alg.numpy() == 1 and alg.dtype == tf.int32
    # Explicit key/counter/alg (1 Philox, 3 auto-select).
    key = tf.constant([rng.integers(0, 2**63)], dtype=tf.uint64)
    counter = tf.constant(rng.integers(0, 2**63, size=2), dtype=tf.uint64)
    for alg in [1, 3]:
        f = lambda: tf.raw_ops.StatelessRandomNormalV2(shape=[13, 3], key=key, counter=counter, alg=alg)  # noqa: E731
        npu, cpu = run_both("StatelessRandomNormalV2", f)
        assert_bits(npu, cpu)


def test_random_errors():
    key = tf.constant([1], dtype=tf.uint64)
    counter = tf.constant([1, 2], dtype=tf.uint64)
    for device in ["/CPU:0", "/NPU:0"]:
        with pytest.raises(tf.errors.InvalidArgumentError, match="Unsupported algorithm id: 2"):
            on(device, lambda: tf.raw_ops.StatelessRandomUniformV2(shape=[3], key=key, counter=counter, alg=2))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"key must have shape \[1\], not \[2\]"):
            on(device, lambda: tf.raw_ops.StatelessRandomUniformV2(shape=[3], key=counter, counter=counter, alg=1))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"seed must have shape \[2\], not \[3\]"):
            on(device, lambda: tf.raw_ops.StatelessRandomUniform(shape=[3], seed=[1, 2, 3]))
        with pytest.raises(tf.errors.InvalidArgumentError, match="Need minval < maxval, got 5 >= 5"):
            on(device, lambda: tf.raw_ops.StatelessRandomUniformIntV2(shape=[3], key=key, counter=counter, alg=1, minval=5, maxval=5))
    # ThreeFry with an empty output is fine on CPU, and so on the NPU.
    out = on("/NPU:0", lambda: tf.raw_ops.StatelessRandomUniformV2(shape=[0, 2], key=key, counter=counter, alg=2))
    assert out.shape == (0, 2)


def test_keras_dropout_and_initializers(strict_placement):
    import keras

    x = tf.ones([17, 33])
    for seed in [1, 42, 1234]:
        layer = keras.layers.Dropout(0.4, seed=seed)
        cpu = cpu_fn(lambda v: layer(v, training=True))(x)
        layer = keras.layers.Dropout(0.4, seed=seed)
        npu = npu_fn(lambda v: layer(v, training=True))(x)
        assert_bits(npu, cpu)
    for init in [keras.initializers.GlorotUniform, keras.initializers.HeNormal, keras.initializers.TruncatedNormal, keras.initializers.RandomNormal, keras.initializers.RandomUniform]:
        for shape in [(3, 5), (7,), (4, 4, 3, 8)]:
            cpu = on("/CPU:0", lambda: init(seed=7)(shape))
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", lambda: init(seed=7)(shape))
            assert sum(v for k, v in tf_adapter.kernel_counts().items() if "Stateless" in k) >= 1
            assert_bits(tf.convert_to_tensor(npu), tf.convert_to_tensor(cpu))


# ------------------------------------------------------------------ losses ----

LOSS_RTOL = {tf.float32: 2e-5, tf.float64: 1e-11, tf.float16: 1e-2, tf.bfloat16: 4e-2}


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_xent_broadcast(dtype, rng):
    shapes = [([4, 5], [4, 5]), ([3, 7], [1, 7]), ([3, 7], [3, 1]), ([1, 6], [5, 6]), ([2, 3], [3]), ([0, 4], [0, 4]), ([5, 1], [5, 1]), ([64, 1000], [64, 1000])]
    for xs, ys in shapes:
        x = random_tensor(rng, xs, dtype)
        y = tf.cast(tf.nn.softmax(random_tensor(rng, ys, tf.float32)), dtype)
        npu, cpu = run_both("SoftmaxCrossEntropyWithLogits", lambda: tf.raw_ops.SoftmaxCrossEntropyWithLogits(features=x, labels=y))
        for a, b in zip(npu, cpu):
            assert_matches(a, b, dtype, rtol=LOSS_RTOL[dtype], atol=LOSS_RTOL[dtype])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("ldtype", [tf.int32, tf.int64])
def test_sparse_softmax_xent(dtype, ldtype, rng):
    for b, c in [(4, 5), (1, 1), (0, 3), (17, 10), (128, 1000)]:
        x = random_tensor(rng, [b, c], dtype)
        y = tf.constant(rng.integers(0, c, size=b), dtype=ldtype)
        npu, cpu = run_both("SparseSoftmaxCrossEntropyWithLogits", lambda: tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=x, labels=y))
        for a, bb in zip(npu, cpu):
            assert_matches(a, bb, dtype, rtol=LOSS_RTOL[dtype], atol=LOSS_RTOL[dtype])


def test_loss_errors():
    x = tf.zeros([3, 4])
    for bad in [[0, 4, 1], [0, -1, 2], [7, -1, 9]]:
        lbl = tf.constant(bad)
        msgs = []
        for device in ["/CPU:0", "/NPU:0"]:
            with pytest.raises(tf.errors.InvalidArgumentError) as e:
                on(device, lambda: tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=x, labels=lbl))
            msgs.append(e.value.message.split("}}")[-1])
        assert msgs[0] == msgs[1], msgs
    for device in ["/CPU:0", "/NPU:0"]:
        with pytest.raises(tf.errors.InvalidArgumentError, match="logits and labels must be broadcastable"):
            on(device, lambda: tf.raw_ops.SoftmaxCrossEntropyWithLogits(features=x, labels=tf.zeros([3, 5])))
        with pytest.raises(tf.errors.InvalidArgumentError, match="must be either 2-dimensional"):
            on(device, lambda: tf.raw_ops.SoftmaxCrossEntropyWithLogits(features=tf.zeros([4]), labels=tf.zeros([4])))
        with pytest.raises(tf.errors.InvalidArgumentError, match="logits must be 2-D"):
            on(device, lambda: tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=tf.zeros([4]), labels=[1]))


def test_loss_gradients_strict(rng, strict_placement):
    x = random_tensor(rng, [8, 11], tf.float32)
    dense = tf.nn.softmax(random_tensor(rng, [8, 11], tf.float32))
    sparse = tf.constant(rng.integers(0, 11, size=8))

    def body(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            a = tf.nn.softmax_cross_entropy_with_logits(labels=dense, logits=v)
            b = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=sparse, logits=v)
            loss = tf.reduce_sum(a * 0.3) + tf.reduce_sum(b)
        return loss, tape.gradient(loss, v)

    tf_adapter.reset_kernel_counts()
    npu = npu_fn(body)(x)
    counts = tf_adapter.kernel_counts()
    assert counts.get("SoftmaxCrossEntropyWithLogits") and counts.get("SparseSoftmaxCrossEntropyWithLogits"), counts
    cpu = cpu_fn(body)(x)
    for a, b in zip(npu, cpu):
        assert_matches(a, b, tf.float32, rtol=2e-5, atol=1e-6)


def test_keras_losses_strict(rng, strict_placement):
    import keras

    y_true = tf.one_hot(rng.integers(0, 6, size=9), 6)
    y_pred = random_tensor(rng, [9, 6], tf.float32)
    for loss in [keras.losses.CategoricalCrossentropy(from_logits=True), keras.losses.SparseCategoricalCrossentropy(from_logits=True)]:
        yt = y_true if isinstance(loss, keras.losses.CategoricalCrossentropy) else tf.argmax(y_true, axis=1)

        def body(p):
            with tf.GradientTape() as tape:
                tape.watch(p)
                value = loss(yt, p)
            return value, tape.gradient(value, p)

        npu, cpu = npu_fn(body)(y_pred), cpu_fn(body)(y_pred)
        for a, b in zip(npu, cpu):
            assert_matches(a, b, tf.float32, rtol=2e-5, atol=1e-6)


# ------------------------------------------------------ int32 reductions ----


@pytest.mark.parametrize("op", ["Sum", "Mean", "Prod"])
def test_int32_reductions_in_host_memory(op, rng, strict_placement):
    for shape, axis in [([3, 4], [0]), ([2, 3, 4], [1, 2]), ([5], [0]), ([2, 3], [])]:
        x = tf.constant(rng.integers(-5, 6, size=shape), dtype=tf.int32)
        f = lambda v: getattr(tf.raw_ops, op)(input=v, axis=tf.constant(axis, tf.int32), keep_dims=False)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        # Eagerly the NPU kernel runs; inside a tf.function it must place
        # (strict), though Grappler's pin-to-host pass may move it to the CPU.
        npu = on("/NPU:0", lambda: f(x))
        assert tf_adapter.kernel_counts().get(op) == 1, tf_adapter.kernel_counts()
        cpu = cpu_fn(f)(x)
        assert_matches(npu, cpu, tf.int32)
        assert_matches(npu_fn(f)(x), cpu, tf.int32)
    # The shape product Keras takes of an int32 shape vector.
    s = tf.constant([4, 7, 3], dtype=tf.int32)
    assert npu_fn(lambda v: tf.reduce_prod(v))(s).numpy() == 84


# --------------------------------------------------- Slice / StridedSliceGrad ----


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64, tf.int64, tf.uint8, tf.bool])
def test_slice_random(dtype, rng):
    for _ in range(12):
        shape = rand_shape(rng, max_rank=4, max_dim=6)
        x = random_tensor(rng, shape, dtype)
        begin = [int(rng.integers(0, d + 1)) for d in shape]
        size = [int(rng.integers(-1, d - b + 1)) if d else 0 for d, b in zip(shape, begin)]
        idx = rng.choice([tf.int32, tf.int64])
        f = lambda: tf.raw_ops.Slice(input=x, begin=tf.constant(begin, idx), size=tf.constant(size, idx))  # noqa: E731
        npu, cpu = on("/NPU:0", f), on("/CPU:0", f)
        assert_matches(npu, cpu, dtype, rtol=0)


def test_slice_errors():
    x = tf.zeros([3, 4])
    for msg, b, s in [(r"Expected size\[1\] in \[0, 3\], but got 4", [0, 1], [1, 4]), (r"Expected begin\[0\] in \[0, 3\], but got 5", [5, 0], [1, 1]), ("Expected begin and size arguments to be 1-D tensors of size 2", [0], [1])]:
        for device in ["/CPU:0", "/NPU:0"]:
            with pytest.raises(tf.errors.InvalidArgumentError, match=msg):
                on(device, lambda: tf.raw_ops.Slice(input=x, begin=b, size=s))


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float64, tf.int64, tf.int32])
def test_strided_slice_grad_random(dtype, rng):
    for _ in range(25):
        shape = rand_shape(rng, max_rank=4, max_dim=6) or [3]
        n = len(shape)
        begin = [int(rng.integers(-d - 1, d + 2)) for d in shape]
        end = [int(rng.integers(-d - 1, d + 2)) for d in shape]
        strides = [int(rng.choice([-2, -1, 1, 2, 3])) for _ in shape]
        masks = {k: int(rng.integers(0, 2**n)) for k in ["begin_mask", "end_mask"]}
        masks["shrink_axis_mask"] = int(rng.integers(0, 2)) if shape[0] else 0
        if masks["shrink_axis_mask"]:
            strides[0] = 1
            begin[0] = int(rng.integers(-shape[0], shape[0]))
        try:
            y = tf.raw_ops.StridedSlice(input=tf.zeros(shape), begin=begin, end=end, strides=strides, **masks)
        except tf.errors.InvalidArgumentError:
            continue
        dy = random_tensor(rng, y.shape, dtype)
        f = lambda: tf.raw_ops.StridedSliceGrad(shape=shape, begin=begin, end=end, strides=strides, dy=dy, **masks)  # noqa: E731
        npu, cpu = on("/NPU:0", f), on("/CPU:0", f)
        assert_matches(npu, cpu, dtype, rtol=0)


def test_strided_slice_grad_strict(rng, strict_placement):
    x = random_tensor(rng, [5, 6, 7], tf.float32)

    def body(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = tf.reduce_sum(tf.square(v[1:4, ::-2, tf.newaxis, ..., 3]))
        return tape.gradient(y, v)

    tf_adapter.reset_kernel_counts()
    npu = npu_fn(body)(x)
    assert tf_adapter.kernel_counts().get("StridedSliceGrad") == 1
    assert_matches(npu, cpu_fn(body)(x), tf.float32, rtol=0)


# -------------------------------------------------------- segment reductions ----


@pytest.mark.parametrize("op", ["UnsortedSegmentSum", "UnsortedSegmentMax", "UnsortedSegmentMin", "UnsortedSegmentProd"])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64, tf.int64])
def test_unsorted_segment(op, dtype, rng):
    for ids_shape, inner, nseg in [([6], [3], 4), ([2, 3], [2], 5), ([0], [4], 3), ([5], [], 2), ([7], [2, 2], 0 + 7)]:
        data = random_tensor(rng, ids_shape + inner, dtype)
        ids = tf.constant(rng.integers(-1, nseg, size=ids_shape), dtype=rng.choice([tf.int32, tf.int64]))
        f = lambda: getattr(tf.raw_ops, op)(data=data, segment_ids=ids, num_segments=nseg)  # noqa: E731
        npu, cpu = run_both(op, f)
        assert_matches(npu, cpu, dtype, rtol=0)


def test_unsorted_segment_errors():
    data = tf.ones([4, 2])
    for device in ["/CPU:0", "/NPU:0"]:
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"segment_ids\[2\] = 3 is out of range \[0, 3\)"):
            on(device, lambda: tf.raw_ops.UnsortedSegmentSum(data=data, segment_ids=[0, 1, 3, 0], num_segments=3))
        with pytest.raises(tf.errors.InvalidArgumentError, match="does not start with segment_ids.shape"):
            on(device, lambda: tf.raw_ops.UnsortedSegmentSum(data=data, segment_ids=[0, 1, 2], num_segments=3))
