"""Data movement (Transpose, StridedSlice, ConcatV2, Pack, Pad, PadV2,
GatherV2), reductions (Sum, Mean, Max, Min, Prod, Softmax, LogSoftmax) and
BatchMatMulV2 / Einsum against TensorFlow CPU: random shapes (size-0 dims,
negative axes, masks, keep_dims) and every registered dtype family."""

import re

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, on, random_tensor

FLOATS = [tf.float32, tf.float16, tf.bfloat16, tf.float64]
MOVE_TYPES = [tf.float32, tf.bfloat16, tf.float64, tf.int64, tf.int8, tf.uint16, tf.bool]


def run_both(name, fn):
    """Runs `fn` on NPU:0 and CPU:0; checks the NPU kernel ran once."""
    tf_adapter.reset_kernel_counts()
    npu = on("/NPU:0", fn)
    assert npu.device.endswith("NPU:0"), name
    assert tf_adapter.kernel_counts().get(name) == 1, (name, tf_adapter.kernel_counts())
    cpu = on("/CPU:0", fn)
    return npu, cpu


def rand_shape(rng, max_rank=4, max_dim=5, min_rank=0):
    rank = int(rng.integers(min_rank, max_rank + 1))
    return [int(rng.choice([0, 1, 2, 3, 4, 5][: max_dim + 1], p=None if max_dim < 5 else [0.05, 0.15, 0.2, 0.25, 0.2, 0.15])) for _ in range(rank)]


# ---------------------------------------------------------------- Transpose ----


@pytest.mark.parametrize("dtype", MOVE_TYPES + [tf.float16, tf.int32])
def test_transpose_random(dtype, rng):
    for _ in range(10):
        shape = rand_shape(rng, max_rank=5)
        x = random_tensor(rng, shape, dtype)
        perm = tf.constant(rng.permutation(len(shape)), dtype=rng.choice([tf.int32, tf.int64]))
        fn = lambda: tf.raw_ops.Transpose(x=x, perm=perm)  # noqa: E731
        if dtype == tf.int32 or list(perm.numpy()) == list(range(len(shape))):
            npu, cpu = on("/NPU:0", fn), on("/CPU:0", fn)
        else:
            npu, cpu = run_both("Transpose", fn)
        assert_matches(npu, cpu, dtype, rtol=0)


def test_transpose_layouts_large(rng):
    for shape, perm in [([4, 33, 65, 16], [0, 3, 1, 2]), ([4, 16, 33, 65], [0, 2, 3, 1]), ([300, 257], [1, 0]), ([8, 64, 48], [0, 2, 1]), ([5, 6, 7, 8], [3, 1, 2, 0])]:
        x = random_tensor(rng, shape, tf.float32)
        npu, cpu = run_both("Transpose", lambda: tf.raw_ops.Transpose(x=x, perm=perm))
        assert_matches(npu, cpu, tf.float32, rtol=0)


def test_transpose_errors():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"1 is missing from \{0,0\}"):
        on("/NPU:0", lambda: tf.raw_ops.Transpose(x=tf.zeros([2, 3]), perm=[0, 0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="transpose expects a vector of size 2"):
        on("/NPU:0", lambda: tf.raw_ops.Transpose(x=tf.zeros([2, 3]), perm=[0]))


# ------------------------------------------------------------- StridedSlice ----


def random_slice(rng, shape):
    n = len(shape) + int(rng.integers(-1, 2)) if shape else int(rng.integers(0, 2))
    n = max(n, 0)
    begin, end, strides = [], [], []
    masks = dict(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0)
    ell = int(rng.integers(-1, n)) if n and rng.random() < 0.3 else -1
    for i in range(n):
        begin.append(int(rng.integers(-7, 7)))
        end.append(int(rng.integers(-7, 7)))
        strides.append(int(rng.choice([1, 1, 2, 3, -1, -2])))
        if rng.random() < 0.3:
            masks["begin_mask"] |= 1 << i
        if rng.random() < 0.3:
            masks["end_mask"] |= 1 << i
        if i == ell:
            masks["ellipsis_mask"] |= 1 << i
        elif rng.random() < 0.1:
            masks["new_axis_mask"] |= 1 << i
        elif rng.random() < 0.2:
            masks["shrink_axis_mask"] |= 1 << i
    return begin, end, strides, masks


def outcome(fn):
    try:
        return fn(), None
    except tf.errors.InvalidArgumentError as e:
        msg = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", e.message)
        msg = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]", "", msg)
        return None, msg.split("[Op:")[0].strip()


@pytest.mark.parametrize("dtype", [tf.float32, tf.int64, tf.int32, tf.bool, tf.float16])
def test_strided_slice_random(dtype, rng):
    checked = 0
    for _ in range(150):
        shape = rand_shape(rng, max_rank=4, max_dim=5)
        x = random_tensor(rng, shape, dtype)
        begin, end, strides, masks = random_slice(rng, shape)
        idx = rng.choice([tf.int32, tf.int64])
        b, e, s = (tf.constant(v, dtype=idx, shape=[len(v)]) for v in (begin, end, strides))
        fn = lambda: tf.raw_ops.StridedSlice(input=x, begin=b, end=e, strides=s, **masks)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu, nerr = outcome(lambda: on("/NPU:0", fn))
        cpu, cerr = outcome(lambda: on("/CPU:0", fn))
        assert (nerr is None) == (cerr is None), (shape, begin, end, strides, masks, nerr, cerr)
        if cerr is not None:
            assert nerr == cerr
            continue
        if dtype != tf.int32:
            assert npu.device.endswith("NPU:0")
            assert tf_adapter.kernel_counts().get("StridedSlice") == 1
        assert_matches(npu, cpu, dtype, rtol=0)
        checked += 1
    assert checked > 60


def test_strided_slice_python_indexing(rng):
    x = random_tensor(rng, [4, 5, 6], tf.float32)
    for key in [
        (slice(None), 1),
        (Ellipsis, -1),
        (Ellipsis, tf.newaxis, slice(None, None, -2)),
        (slice(1, None, 2), tf.newaxis, slice(-1, 0, -1), 3),
        (slice(None, None, -1),),
        (0, 0, 0),
    ]:
        npu = on("/NPU:0", lambda: x[key])
        cpu = on("/CPU:0", lambda: x[key])
        assert_matches(npu, cpu, tf.float32, rtol=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="slice index 7 of dimension 0 out of bounds"):
        on("/NPU:0", lambda: x[7])


# ------------------------------------------------------------ Concat / Pack ----


@pytest.mark.parametrize("dtype", MOVE_TYPES)
def test_concat_random(dtype, rng):
    for _ in range(10):
        shape = rand_shape(rng, max_rank=4, min_rank=1)
        axis = int(rng.integers(-len(shape), len(shape)))
        xs = []
        for _ in range(int(rng.integers(2, 5))):
            s = list(shape)
            s[axis] = int(rng.integers(0, 4))
            xs.append(random_tensor(rng, s, dtype))
        ax = tf.constant(axis, dtype=rng.choice([tf.int32, tf.int64]))
        npu, cpu = run_both("ConcatV2", lambda: tf.raw_ops.ConcatV2(values=xs, axis=ax))
        assert_matches(npu, cpu, dtype, rtol=0)


def test_concat_large_and_errors(rng):
    xs = [random_tensor(rng, [2, 40000], tf.float32), random_tensor(rng, [2, 30000], tf.float32)]
    npu, cpu = run_both("ConcatV2", lambda: tf.raw_ops.ConcatV2(values=xs, axis=1))
    assert_matches(npu, cpu, tf.float32, rtol=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="ConcatOp : Dimension 1 in both shapes must be equal"):
        on("/NPU:0", lambda: tf.raw_ops.ConcatV2(values=[tf.zeros([2, 3]), tf.zeros([2, 4])], axis=0))


def test_concat_int32_stays_with_tensorflow():
    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        c = tf.concat([tf.constant([1, 2]), tf.constant([3])], axis=0)
    assert c.numpy().tolist() == [1, 2, 3]
    assert "ConcatV2" not in tf_adapter.kernel_counts()


@pytest.mark.parametrize("dtype", MOVE_TYPES)
def test_pack_random(dtype, rng):
    for _ in range(8):
        shape = rand_shape(rng, max_rank=3)
        axis = int(rng.integers(-len(shape) - 1, len(shape) + 1))
        xs = [random_tensor(rng, shape, dtype) for _ in range(int(rng.integers(1, 4)))]
        npu, cpu = run_both("Pack", lambda: tf.raw_ops.Pack(values=xs, axis=axis))
        assert_matches(npu, cpu, dtype, rtol=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Shapes of all inputs must match"):
        on("/NPU:0", lambda: tf.raw_ops.Pack(values=[tf.zeros([2], dtype), tf.zeros([3], dtype)]))


# --------------------------------------------------------------------- Pad ----


@pytest.mark.parametrize("dtype", MOVE_TYPES)
def test_pad_random(dtype, rng):
    for _ in range(8):
        shape = rand_shape(rng, max_rank=4)
        pads = tf.constant(rng.integers(0, 3, size=(len(shape), 2)), dtype=rng.choice([tf.int32, tf.int64]), shape=[len(shape), 2])
        x = random_tensor(rng, shape, dtype)
        npu, cpu = run_both("Pad", lambda: tf.raw_ops.Pad(input=x, paddings=pads))
        assert_matches(npu, cpu, dtype, rtol=0)
        c = random_tensor(rng, [], dtype)
        npu, cpu = run_both("PadV2", lambda: tf.raw_ops.PadV2(input=x, paddings=pads, constant_values=c))
        assert_matches(npu, cpu, dtype, rtol=0)


def test_pad_large_and_errors(rng):
    x = random_tensor(rng, [3, 100, 120], tf.float32)
    pads = [[0, 1], [2, 3], [4, 5]]
    npu, cpu = run_both("Pad", lambda: tf.raw_ops.Pad(input=x, paddings=pads))
    assert_matches(npu, cpu, tf.float32, rtol=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Paddings must be non-negative: -1 0"):
        on("/NPU:0", lambda: tf.raw_ops.Pad(input=tf.zeros([2]), paddings=[[-1, 0]]))


# ------------------------------------------------------------------ Gather ----


@pytest.mark.parametrize("dtype", MOVE_TYPES + [tf.int32])
def test_gather_random(dtype, rng):
    for _ in range(12):
        shape = rand_shape(rng, max_rank=4, min_rank=1)
        params = random_tensor(rng, shape, dtype)
        batch_dims = int(rng.integers(0, len(shape))) if rng.random() < 0.4 else 0
        axis = int(rng.integers(batch_dims, len(shape)))
        ishape = shape[:batch_dims] + [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 3)))]
        hi = max(shape[axis], 1)
        idx = tf.constant(rng.integers(0, hi, size=ishape), dtype=rng.choice([tf.int32, tf.int64]), shape=ishape)
        if shape[axis] == 0 and np.prod(ishape) > 0:
            continue
        if rng.random() < 0.5:
            axis -= len(shape)
        ax = tf.constant(axis, dtype=rng.choice([tf.int32, tf.int64]))
        fn = lambda: tf.raw_ops.GatherV2(params=params, indices=idx, axis=ax, batch_dims=batch_dims)  # noqa: E731
        npu, cpu = run_both("GatherV2", fn)
        assert_matches(npu, cpu, dtype, rtol=0)


def test_gather_out_of_range_index():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices\[1,1\] = 7 is not in \[0, 4\)"):
        on("/NPU:0", lambda: tf.raw_ops.GatherV2(params=tf.zeros([3, 4]), indices=[[0, 1], [0, 7]], axis=1))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices\[0\] = -1 is not in \[0, 3\)"):
        on("/NPU:0", lambda: tf.raw_ops.GatherV2(params=tf.zeros([3, 4]), indices=[-1], axis=0))
    # A scalar index has no position, as TensorFlow's SliceDebugString prints it.
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices = 7 is not in \[0, 3\)"):
        on("/NPU:0", lambda: tf.raw_ops.GatherV2(params=tf.zeros([3, 4]), indices=7, axis=0))


@pytest.mark.parametrize("dtype", MOVE_TYPES)
def test_gather_nd_random(dtype, rng):
    # Tuples of every length up to the params rank (0: whole params), outer
    # index shapes of rank 0-2 with size-0 dims, int32 and int64 indices.
    for _ in range(16):
        shape = rand_shape(rng, max_rank=4, min_rank=1)
        params = random_tensor(rng, shape, dtype)
        ix = int(rng.integers(0, len(shape) + 1))
        outer = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 3)))]
        if np.prod(outer) > 0 and np.prod(shape) == 0:
            continue
        coords = [rng.integers(0, max(shape[d], 1), size=outer) for d in range(ix)]
        idx = np.stack(coords, -1) if ix else np.zeros(outer + [0], np.int64)
        idx = tf.constant(idx, dtype=rng.choice([tf.int32, tf.int64]))
        npu, cpu = run_both("GatherNd", lambda: tf.raw_ops.GatherNd(params=params, indices=idx))
        assert_matches(npu, cpu, dtype, rtol=0)


def test_gather_nd_errors_and_ignored_indices():
    params = tf.reshape(tf.range(12.0), [3, 4])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices\[1\] = \[1, 7\] does not index into param shape \[3,4\]"):
        on("/NPU:0", lambda: tf.raw_ops.GatherNd(params=params, indices=[[0, 1], [1, 7]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"indices = \[1, 7\] does not index into param shape \[3,4\]"):
        on("/NPU:0", lambda: tf.raw_ops.GatherNd(params=params, indices=[1, 7]))
    got = on("/NPU:0", lambda: tf.raw_ops.GatherNd(params=params, indices=[[0, 1], [1, 7], [-1, 0]], bad_indices_policy="IGNORE"))
    assert got.device.endswith("NPU:0")
    np.testing.assert_array_equal(got.numpy(), [1.0, 0.0, 0.0])


def test_gather_nd_gradient_strictly_on_the_npu(rng, strict_placement):
    # tf.gather_nd and its gradient (ScatterNd) inside a tf.function with soft
    # placement off; repeated tuples accumulate in the gradient.
    params = tf.constant(rng.normal(size=[5, 4, 3]), tf.float32)
    idx = tf.constant([[0, 1], [4, 3], [0, 1], [2, 0]])

    @tf.function
    def step(p):
        with tf.GradientTape() as tape:
            tape.watch(p)
            y = tf.gather_nd(p, idx)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, p)

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        y, g = step(params)
    assert tf_adapter.kernel_counts().get("GatherNd", 0) >= 1, tf_adapter.kernel_counts()
    assert y.device.endswith("NPU:0") and g.device.endswith("NPU:0")
    with tf.device("/CPU:0"):
        want_y, want_g = step(params)
    np.testing.assert_array_equal(y.numpy(), want_y.numpy())
    np.testing.assert_allclose(g.numpy(), want_g.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", MOVE_TYPES)
def test_roll_random(dtype, rng):
    # Shifts of any sign and size on random axes (repeated axes add up).
    for _ in range(16):
        shape = rand_shape(rng, max_rank=4, min_rank=1)
        x = random_tensor(rng, shape, dtype)
        k = int(rng.integers(0, 4))
        axis = tf.constant(rng.integers(-len(shape), len(shape), size=k), rng.choice([tf.int32, tf.int64]))
        shift = tf.constant(rng.integers(-20, 20, size=k), rng.choice([tf.int32, tf.int64]))
        if k == 1 and rng.random() < 0.5:
            axis, shift = tf.reshape(axis, []), tf.reshape(shift, [])
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", lambda: tf.raw_ops.Roll(input=x, shift=shift, axis=axis))
        cpu = on("/CPU:0", lambda: tf.raw_ops.Roll(input=x, shift=shift, axis=axis))
        assert npu.device.endswith("NPU:0")
        assert_matches(npu, cpu, dtype, rtol=0)


def test_shifted_windows_train_strictly_on_the_npu(rng, strict_placement):
    # Swin-style: roll the feature map, a Dense layer, roll back; the
    # gradient of Roll is a Roll by the opposite shift.
    x = tf.constant(rng.normal(size=[2, 8, 8, 4]), tf.float32)
    w = tf.constant(rng.normal(size=[4, 4]), tf.float32)

    @tf.function
    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = tf.roll(tf.einsum("bhwc,cd->bhwd", tf.roll(x, [-3, -3], [1, 2]), w), [3, 3], [1, 2])
            loss = tf.reduce_sum(y * tf.sin(x))
        return y, tape.gradient(loss, [x, w])

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        y, grads = step(x, w)
    assert tf_adapter.kernel_counts().get("Roll", 0) >= 3, tf_adapter.kernel_counts()
    with tf.device("/CPU:0"):
        want_y, want_grads = step(x, w)
    np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=1e-5, atol=1e-6)
    for g, w_ in zip(grads, want_grads):
        assert g.device.endswith("NPU:0")
        np.testing.assert_allclose(g.numpy(), w_.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", MOVE_TYPES)
def test_depth_to_space_and_back_random(dtype, rng):
    for _ in range(8):
        b = int(rng.integers(2, 4))
        n, h, w, c = (int(d) for d in rng.integers(0, 4, size=4))
        x = random_tensor(rng, [n, h, w, c * b * b], dtype)
        npu, cpu = run_both("DepthToSpace", lambda: tf.raw_ops.DepthToSpace(input=x, block_size=b))
        assert_matches(npu, cpu, dtype, rtol=0)
        npu, cpu = run_both("SpaceToDepth", lambda: tf.raw_ops.SpaceToDepth(input=cpu, block_size=b))
        assert_matches(npu, cpu, dtype, rtol=0)


def test_pixel_shuffle_trains_strictly_on_the_npu(rng, strict_placement):
    # A sub-pixel upsampling head (conv to 4x the channels, DepthToSpace)
    # and its gradient (SpaceToDepth) inside a tf.function, soft placement off.
    x = tf.constant(rng.normal(size=[2, 5, 6, 3]), tf.float32)
    f = tf.constant(rng.normal(size=[3, 3, 3, 8]), tf.float32)

    @tf.function
    def step(x, f):
        with tf.GradientTape() as tape:
            tape.watch([x, f])
            y = tf.nn.depth_to_space(tf.nn.conv2d(x, f, 1, "SAME"), 2)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, [x, f])

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        y, grads = step(x, f)
    counts = tf_adapter.kernel_counts()
    assert counts.get("DepthToSpace", 0) >= 1 and counts.get("SpaceToDepth", 0) >= 1, counts
    with tf.device("/CPU:0"):
        want_y, want_grads = step(x, f)
    np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=1e-5, atol=1e-5)
    for g, w in zip(grads, want_grads):
        assert g.device.endswith("NPU:0")
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-4)


# -------------------------------------------------------------- Reductions ----

REDUCTIONS = {
    "Sum": (tf.raw_ops.Sum, FLOATS + [tf.int64]),
    "Mean": (tf.raw_ops.Mean, FLOATS),
    "Max": (tf.raw_ops.Max, FLOATS + [tf.int64]),
    "Min": (tf.raw_ops.Min, FLOATS + [tf.int64]),
    "Prod": (tf.raw_ops.Prod, FLOATS + [tf.int64]),
}


def assert_reduction_matches(name, npu, cpu, x, dtype, axes, keep=False):
    """Exact for integers and Max/Min; otherwise within a tolerance relative
    to the sum (mean) of magnitudes of the reduced elements, per output."""
    assert npu.dtype == cpu.dtype and npu.shape == cpu.shape
    a = npu.numpy().astype(np.float64) if dtype.is_floating else npu.numpy()
    b = cpu.numpy().astype(np.float64) if dtype.is_floating else cpu.numpy()
    if not dtype.is_floating or name in ("Max", "Min"):
        np.testing.assert_array_equal(a, b)
        return
    tol = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 4e-3, tf.bfloat16: 3e-2}[dtype]
    if name == "Prod":
        np.testing.assert_allclose(a, b, rtol=tol * 10, atol=0, equal_nan=True)
        return
    mag_op = tf.raw_ops.Mean if name == "Mean" else tf.raw_ops.Sum
    with tf.device("/CPU:0"):
        mag = mag_op(input=tf.abs(tf.cast(x, tf.float64)), axis=axes, keep_dims=keep).numpy()
    err = np.abs(a - b)
    ok = (err <= tol * mag + 1e-30) | (np.isnan(a) & np.isnan(b)) | (a == b)
    assert ok.all(), (name, dtype, a[~ok], b[~ok], mag[~ok] if np.ndim(mag) else mag)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_random(name, rng):
    fn, dtypes = REDUCTIONS[name]
    for dtype in dtypes:
        for _ in range(10):
            shape = rand_shape(rng, max_rank=4)
            low, high = (0.5, 1.5) if name == "Prod" else (-3.0, 3.0)
            x = random_tensor(rng, shape, dtype, low=low, high=high)
            if dtype == tf.int64 and name == "Prod":
                x = random_tensor(rng, shape, dtype, low=-1, high=1) // 3
            rank = len(shape)
            k = int(rng.integers(0, rank + 1))
            axes = [int(a) for a in rng.choice(rank, size=k, replace=False)] if rank else []
            axes = [a - rank if rng.random() < 0.4 else a for a in axes]
            ax = tf.constant(axes, dtype=rng.choice([tf.int32, tf.int64]), shape=[len(axes)])
            if len(axes) == 1 and rng.random() < 0.3:
                ax = tf.reshape(ax, [])
            keep = bool(rng.random() < 0.5)
            npu, cpu = run_both(name, lambda: fn(input=x, axis=ax, keep_dims=keep))
            assert_reduction_matches(name, npu, cpu, x, dtype, ax, keep)


def test_reductions_large_and_layouts(rng):
    x = random_tensor(rng, [64, 130, 70], tf.float32)
    for axes in ([0], [1], [2], [0, 2], [0, 1], [1, 2], [0, 1, 2], [-1]):
        for name in ("Sum", "Mean", "Max", "Min"):
            fn = REDUCTIONS[name][0]
            npu, cpu = run_both(name, lambda: fn(input=x, axis=axes, keep_dims=False))
            assert_reduction_matches(name, npu, cpu, x, tf.float32, axes)
    big = random_tensor(rng, [1 << 20], tf.float32)
    npu, cpu = run_both("Sum", lambda: tf.raw_ops.Sum(input=big, axis=[0]))
    assert_reduction_matches("Sum", npu, cpu, big, tf.float32, [0])


@pytest.mark.parametrize("dtype", FLOATS)
def test_l2_loss_random(dtype, rng):
    # Shapes up to 2**18 elements (the parallel path), size 0, rank 0;
    # within the Sum tolerance of the sum of the halved squares.
    for shape in ([], [0, 3], [7], [3, 5, 2], [64, 4096]):
        x = random_tensor(rng, shape, dtype)
        npu, cpu = run_both("L2Loss", lambda: tf.raw_ops.L2Loss(t=x))
        assert_reduction_matches("Sum", npu, cpu, tf.square(tf.cast(x, tf.float64)) / 2, dtype, list(range(len(shape))))


def test_global_norm_clipping_trains_strictly_on_the_npu(rng, strict_placement):
    # tf.clip_by_global_norm (L2Loss per gradient) and tf.nn.l2_loss weight
    # decay in a custom training step, inside a tf.function with soft placement off.
    w = [tf.Variable(rng.normal(size=s), dtype=tf.float32) for s in ([8, 4], [4])]
    x = tf.constant(rng.normal(size=[16, 8]), tf.float32)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            y = tf.matmul(x, w[0]) + w[1]
            loss = tf.reduce_mean(tf.square(y)) + 1e-2 * tf.add_n([tf.nn.l2_loss(v) for v in w])
        grads = tape.gradient(loss, w)
        clipped, norm = tf.clip_by_global_norm(grads, 0.5)
        return loss, norm, clipped

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        got = step(x)
    assert tf_adapter.kernel_counts().get("L2Loss", 0) >= 4, tf_adapter.kernel_counts()
    with tf.device("/CPU:0"):
        want = step(x)
    for a, b in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
        assert a.device.endswith("NPU:0")
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def test_reduction_special_values():
    for dtype in (tf.float32, tf.bfloat16):
        empty = tf.zeros([0, 3], dtype)
        for name in REDUCTIONS:
            fn = REDUCTIONS[name][0]
            npu, cpu = run_both(name, lambda: fn(input=empty, axis=[0]))
            assert_matches(npu, cpu, dtype, rtol=0)
    nan = tf.constant([[1.0, float("nan"), 2.0], [0.0, 1.0, -1.0]])
    for name in ("Max", "Min", "Sum"):
        fn = REDUCTIONS[name][0]
        for axes in ([0], [1], [0, 1]):
            npu, cpu = run_both(name, lambda: fn(input=nan, axis=axes))
            assert_matches(npu, cpu, tf.float32)
    e = tf.zeros([0], tf.int64)
    for name in ("Max", "Min", "Sum", "Prod"):
        npu, cpu = run_both(name, lambda: REDUCTIONS[name][0](input=e, axis=[0]))
        assert_matches(npu, cpu, tf.int64)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Invalid reduction dimension \(1 for input with 1 dimension\(s\)"):
        on("/NPU:0", lambda: tf.raw_ops.Sum(input=tf.zeros([3]), axis=[1]))


def test_max_int32_stays_with_tensorflow():
    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        m = tf.reduce_max(tf.constant([1, 5, 2]))
    assert int(m) == 5
    assert "Max" not in tf_adapter.kernel_counts()


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
def test_softmax_random(name, rng):
    fn = getattr(tf.raw_ops, name)
    for dtype in FLOATS:
        for _ in range(8):
            shape = rand_shape(rng, max_rank=4, min_rank=1)
            x = random_tensor(rng, shape, dtype, low=-20, high=20)
            npu, cpu = run_both(name, lambda: fn(logits=x))
            tol = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 4e-3, tf.bfloat16: 3e-2}[dtype]
            assert_matches(npu, cpu, dtype, rtol=tol, atol=tol if name == "Softmax" else tol * 20)
    x = tf.constant([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])
    npu, cpu = run_both(name, lambda: fn(logits=x))
    assert_matches(npu, cpu, tf.float32, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------- BatchMatMul / Einsum ----


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int64])
def test_batch_matmul_random(dtype, rng):
    for _ in range(12):
        m, k, n = (int(v) for v in rng.integers(0, 6, size=3))
        batch = [int(v) for v in rng.integers(1, 4, size=int(rng.integers(0, 3)))]

        def derive():
            keep = int(rng.integers(0, len(batch) + 1))
            return [1 if rng.random() < 0.3 else d for d in batch[len(batch) - keep:]]

        adj_x, adj_y = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
        xs = derive() + ([k, m] if adj_x else [m, k])
        ys = derive() + ([n, k] if adj_y else [k, n])
        x, y = random_tensor(rng, xs, dtype), random_tensor(rng, ys, dtype)
        fn = lambda: tf.raw_ops.BatchMatMulV2(x=x, y=y, adj_x=adj_x, adj_y=adj_y)  # noqa: E731
        npu, cpu = run_both("BatchMatMulV2", fn)
        tol = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 4e-3, tf.bfloat16: 3e-2, tf.int64: 0}[dtype]
        assert_matches(npu, cpu, dtype, rtol=tol, atol=tol * max(k, 1) * 9)


def test_batch_matmul_large_and_errors(rng):
    for xs, ys in [([64, 16, 32], [64, 32, 8]), ([2, 200, 150], [150, 120])]:
        if len(ys) == 2:
            ys = [1] + ys
        x, y = random_tensor(rng, xs, tf.float32), random_tensor(rng, ys, tf.float32)
        npu, cpu = run_both("BatchMatMulV2", lambda: tf.raw_ops.BatchMatMulV2(x=x, y=y))
        assert_matches(npu, cpu, tf.float32, rtol=1e-5, atol=1e-4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have compatible batch dimensions"):
        on("/NPU:0", lambda: tf.raw_ops.BatchMatMulV2(x=tf.zeros([2, 3, 4]), y=tf.zeros([3, 4, 5])))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Matrix size-incompatible"):
        on("/NPU:0", lambda: tf.raw_ops.BatchMatMulV2(x=tf.zeros([2, 3, 4]), y=tf.zeros([2, 5, 5])))


EINSUM_CASES = [
    ("ij,jk->ik", [[3, 4], [4, 5]]),
    ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]),
    ("bij,bkj->bki", [[2, 3, 4], [2, 5, 4]]),
    ("ij,kl->ijkl", [[2, 3], [4, 2]]),
    ("ij,ij->", [[3, 4], [3, 4]]),
    ("ij,jk->k", [[3, 4], [4, 5]]),
    ("abc,cd->da", [[2, 3, 4], [4, 2]]),
    ("...ij,...jk->...ik", [[2, 1, 3, 4], [3, 4, 2]]),
    ("b...i,bi->b...", [[2, 3, 4], [2, 4]]),
    ("bhqd,bhkd->bhqk", [[2, 3, 4, 5], [2, 3, 6, 5]]),
    ("bqhd,bkhd->bhqk", [[2, 4, 3, 5], [2, 6, 3, 5]]),
    ("ij,j->i", [[0, 4], [4]]),
    ("ij,jk->ik", [[3, 0], [0, 2]]),
    ("ii->i", [[3, 3]]),
    ("ijk->kji", [[2, 3, 4]]),
    ("ijk->j", [[2, 3, 4]]),
    ("ij->", [[3, 4]]),
    ("...ij->...ji", [[2, 3, 4]]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES)
def test_einsum_matches_cpu(eq, shapes, rng):
    for dtype in FLOATS:
        xs = [random_tensor(rng, s, dtype) for s in shapes]
        npu, cpu = run_both("Einsum", lambda: tf.raw_ops.Einsum(inputs=xs, equation=eq))
        tol = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 4e-3, tf.bfloat16: 3e-2}[dtype]
        assert_matches(npu, cpu, dtype, rtol=tol, atol=tol * 50)


def test_einsum_through_tf_einsum(rng):
    a = random_tensor(rng, [2, 3, 4], tf.float32)
    b = random_tensor(rng, [4, 5], tf.float32)
    npu = on("/NPU:0", lambda: tf.einsum("bij,jk->bik", a, b))
    cpu = on("/CPU:0", lambda: tf.einsum("bij,jk->bik", a, b))
    assert_matches(npu, cpu, tf.float32, rtol=1e-5, atol=1e-5)


def test_error_messages_match_tensorflow():
    cases = [
        lambda: tf.raw_ops.Sum(input=tf.zeros([2, 3]), axis=[0, -2]),
        lambda: tf.raw_ops.Einsum(inputs=[tf.zeros([2, 3, 4])], equation="...ij->ij"),
        lambda: tf.raw_ops.Einsum(inputs=[tf.zeros([2, 3]), tf.zeros([4, 4])], equation="ij,jk->ik"),
        lambda: tf.raw_ops.GatherV2(params=tf.zeros([3, 4]), indices=[[1], [2]], axis=1, batch_dims=1),
        lambda: tf.raw_ops.ConcatV2(values=[tf.zeros([2]), tf.zeros([2, 1])], axis=0),
        lambda: tf.raw_ops.Pad(input=tf.zeros([2, 2]), paddings=[[1, 1]]),
        lambda: tf.raw_ops.StridedSlice(input=tf.zeros([3]), begin=[0], end=[1], strides=[0]),
        lambda: tf.raw_ops.StridedSlice(input=tf.zeros([3]), begin=[0, 0], end=[1, 1], strides=[1, 1]),
        lambda: tf.raw_ops.Transpose(x=tf.zeros([2, 3]), perm=[0, 2]),
    ]
    for fn in cases:
        _, nerr = outcome(lambda: on("/NPU:0", fn))
        _, cerr = outcome(lambda: on("/CPU:0", fn))
        assert nerr is not None and nerr == cerr, (nerr, cerr)


def test_attention_block_in_tf_function_runs_on_npu(strict_placement, rng):
    """Graph mode: host-memory index arguments (perm, axes, begin/end) come from
    constants and shape arithmetic; every float op runs on the NPU."""
    q = random_tensor(rng, [2, 5, 4, 8], tf.float32)
    k = random_tensor(rng, [2, 7, 4, 8], tf.float32)
    v = random_tensor(rng, [2, 7, 4, 8], tf.float32)

    def block(q, k, v):
        s = tf.einsum("bqhd,bkhd->bhqk", q, k) * 0.35
        p = tf.nn.softmax(s, axis=-1)
        o = tf.einsum("bhqk,bkhd->bqhd", p, v)
        o = tf.reshape(o, tf.stack([tf.shape(o)[0], tf.shape(o)[1], -1]))
        o = tf.concat([o[:, :2], tf.pad(o[:, 2:], [[0, 0], [0, 0], [1, 0]])[:, :, 1:]], axis=1)
        o = tf.transpose(o, [0, 2, 1])
        g = tf.gather(o, [0, 3, 3], axis=1)
        return tf.reduce_mean(g, axis=-1) + tf.reduce_max(o, axis=[1, 2], keepdims=True)[:, :, 0]

    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        npu = tf.function(block)(q, k, v)
    counts = tf_adapter.kernel_counts()
    for op in ("Einsum", "Softmax", "ConcatV2", "Pad", "Transpose", "GatherV2", "Mean", "Max"):
        assert counts.get(op, 0) >= 1, (op, counts)
    assert npu.device.endswith("NPU:0")
    with tf.device("/CPU:0"):
        cpu = tf.function(block)(q, k, v)
    assert_matches(npu, cpu, tf.float32, rtol=1e-5, atol=1e-6)
