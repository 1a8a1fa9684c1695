"""Ops that write into a buffer in place, or hand out a buffer for such
writes, give TensorFlow CPU's results on the NPU: in the default placement,
under an NPU scope, with soft placement off (strict), eagerly (where the op
exists eagerly), inside a tf.function and in a TF1 graph.

The hazard (README "In-place ops and device boundaries"): a reader on one
device ordered after an in-place writer on another only by control edges
(or by its other inputs) got the buffer before the writes, e.g.
`tf.parallel_stack` returned zeros. Each test below failed before the fix
for the placements that split the chain over two devices."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches
from tensorflow.core.framework import attr_value_pb2, tensor_shape_pb2

NPU = "/NPU:0"
CPU = "/CPU:0"
PLACEMENTS = ["default", "npu_scope", "strict"]


def _scope(placement):
    return tf.device(NPU) if placement in ("npu_scope", "strict") else _nullcontext()


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _run(mode, placement, body):
    """body() eagerly, or in a tf.function with the scope inside the body."""
    if mode == "eager":
        with _scope(placement):
            return body()

    @tf.function
    def f():
        with _scope(placement):
            return body()

    return f()


def _strict(placement):
    """Soft placement off for `strict` (restored by the caller's finally)."""
    tf.config.set_soft_device_placement(placement != "strict")


@pytest.fixture(autouse=True)
def _restore_soft_placement():
    yield
    tf.config.set_soft_device_placement(True)


def _session(graph, placement):
    config = tf.compat.v1.ConfigProto(allow_soft_placement=placement != "strict")
    return tf.compat.v1.Session(graph=graph, config=config)


def _values(rng, dtype, shape):
    if dtype == tf.bool:
        return rng.random(shape) > 0.5
    if dtype.is_complex:
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype.as_numpy_dtype)
    if dtype.is_integer:
        return rng.integers(-50, 50, size=shape).astype(dtype.as_numpy_dtype)
    return tf.cast(rng.normal(size=shape), dtype).numpy()


def _expect_equal(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ parallel_stack

# complex64/complex128 have no NPU kernel: _ParallelConcatStart/Update stay
# on the host while the final Identity can run on the NPU (the graph pass
# orders that read); the others run entirely on the NPU.
STACK_DTYPES = [tf.float32, tf.float16, tf.bfloat16, tf.float64, tf.int32, tf.int64, tf.int8, tf.bool, tf.complex64]


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("dtype", STACK_DTYPES, ids=lambda d: d.name)
def test_parallel_stack_in_tf_function(placement, dtype, rng):
    n = int(rng.integers(1, 7))
    row = list(rng.integers(1, 5, size=int(rng.integers(0, 3))))
    data = _values(rng, dtype, [n] + row)

    def f():
        with _scope(placement):
            return tf.parallel_stack([tf.constant(r) for r in data])

    _strict(placement)
    if placement == "strict" and dtype.is_complex:
        # No NPU kernel for complex data: strict placement refuses, it never
        # returns a wrong buffer.
        with pytest.raises(tf.errors.InvalidArgumentError, match="ParallelConcat|NPU"):
            tf.function(f)()
        return
    tf_adapter.reset_kernel_counts()
    _expect_equal(tf.function(f)(), np.stack(data))
    if not dtype.is_complex:
        assert tf_adapter.kernel_counts().get("_ParallelConcatUpdate", 0) == n


def test_parallel_stack_is_graph_only_as_on_cpu():
    for dev in (CPU, NPU):
        with tf.device(dev), pytest.raises(RuntimeError, match="eager"):
            tf.parallel_stack([tf.constant([1.0])])


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("dtype", [tf.float32, tf.int64, tf.complex128], ids=lambda d: d.name)
def test_parallel_stack_in_tf1_graph(placement, dtype, rng):
    data = _values(rng, dtype, [5, 3, 2])
    g = tf.Graph()
    with g.as_default(), _scope(placement):
        out = tf.parallel_stack([tf.constant(r) for r in data])
    with _session(g, placement) as s:
        if placement == "strict" and dtype.is_complex:
            with pytest.raises(tf.errors.InvalidArgumentError):
                s.run(out)
            return
        _expect_equal(s.run(out), np.stack(data))


def _node_attrs(dtype, shape):
    return {
        "dtype": attr_value_pb2.AttrValue(type=dtype.as_datatype_enum),
        "shape": attr_value_pb2.AttrValue(shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape])),
    }


@pytest.mark.parametrize("writer,reader", [(CPU, NPU), (NPU, CPU), (NPU, "/NPU:1")])
def test_explicitly_split_parallel_concat_chain_is_ordered(writer, reader, rng):
    """The pieces of parallel_stack placed by hand on two devices: the reader
    still sees every update (the graph pass reads through an Identity on the
    writer's device)."""
    data = rng.normal(size=[4, 3]).astype(np.float32)

    @tf.function
    def f():
        g = tf.compat.v1.get_default_graph()
        with tf.device(writer):
            start = g.create_op("_ParallelConcatStart", [], [tf.float32], name="start", attrs=_node_attrs(tf.float32, [4, 3])).outputs[0]
            updates = [
                g.create_op("_ParallelConcatUpdate", [start, tf.constant(r[None])], [tf.float32], name=f"update{i}", attrs={"loc": attr_value_pb2.AttrValue(i=i), "T": attr_value_pb2.AttrValue(type=tf.float32.as_datatype_enum)})
                for i, r in enumerate(data)
            ]
        with tf.device(reader), tf.control_dependencies(updates):
            return tf.identity(start) * 1.0

    _expect_equal(f(), data)


def test_graph_pass_shows_its_ordered_reads(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    data = _values(rng, tf.complex64, [3, 2])
    out = tf.function(lambda: tf.parallel_stack([tf.constant(r) for r in data]))()
    _expect_equal(out, np.stack(data))
    after = [p.read_text() for p in tmp_path.glob("*_after.txt")]
    assert any("tfa_ordered_read" in t and "_tfa_ordered_read=" in t for t in after), [p.name for p in tmp_path.iterdir()]


# ------------------------------------------------------------ InplaceUpdate/Add/Sub


INPLACE = {
    "InplaceUpdate": tf.raw_ops.InplaceUpdate,
    "InplaceAdd": tf.raw_ops.InplaceAdd,
    "InplaceSub": tf.raw_ops.InplaceSub,
}


def _inplace_case(rng, op, dtype):
    shape = [int(rng.integers(1, 6))] + list(rng.integers(1, 4, size=int(rng.integers(0, 3))))
    k = int(rng.integers(1, 5))
    i = rng.integers(-shape[0], shape[0], size=k).astype(np.int32)  # repeats and negatives
    return _values(rng, dtype, shape), i, _values(rng, dtype, [k] + shape[1:])


def _run_inplace(device, mode, placement, op, x, i, v):
    """(y, x after the op): the op aliases x on every device."""

    def body():
        xt = tf.identity(x)  # a fresh buffer on this device
        y = INPLACE[op](x=xt, i=i, v=v)
        with tf.control_dependencies([y]):
            return y, tf.identity(xt)

    if mode == "eager":
        with tf.device(device):
            return body()

    @tf.function
    def f():
        with tf.device(device) if device == CPU or placement != "default" else _nullcontext():
            return body()

    return f()


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("op", list(INPLACE))
@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float16, tf.int64, tf.uint8, tf.int32, tf.bool], ids=lambda d: d.name)
def test_inplace_ops_match_cpu(placement, mode, op, dtype, rng):
    if dtype == tf.bool and op != "InplaceUpdate":
        pytest.skip("TensorFlow's CPU kernel has no bool add/sub")
    x, i, v = _inplace_case(rng, op, dtype)
    want = _run_inplace(CPU, mode, placement, op, x, i, v)
    _strict(placement)
    tf_adapter.reset_kernel_counts()
    got = _run_inplace(NPU, mode, placement, op, x, i, v)
    for g, w in zip(got, want):
        assert_matches(g, w, dtype)
    if dtype != tf.int32:  # int32 runs TensorFlow's host-memory kernel for the NPU
        assert tf_adapter.kernel_counts().get(op, 0) >= 1


def test_inplace_argument_errors_match_cpu():
    x = np.zeros([3, 2], np.float32)
    cases = [
        dict(x=x, i=[[0]], v=np.zeros([1, 2], np.float32)),  # i not a vector
        dict(x=x, i=[0], v=np.zeros([2], np.float32)),  # ranks differ
        dict(x=x, i=[0], v=np.zeros([1, 3], np.float32)),  # row width
        dict(x=x, i=[0, 1], v=np.zeros([1, 2], np.float32)),  # i vs v rows
    ]
    tf.config.set_soft_device_placement(False)
    for kw in cases:
        for dev in (CPU, NPU):
            with tf.device(dev), pytest.raises(tf.errors.InvalidArgumentError, match="i must be a vector|shape doesn't match"):
                tf.raw_ops.InplaceAdd(**kw)
    # Empty x or v: nothing to do, x passes through.
    for dev in (CPU, NPU):
        with tf.device(dev):
            y = tf.raw_ops.InplaceUpdate(x=np.zeros([0, 2], np.float32), i=[], v=np.zeros([0, 2], np.float32))
        assert y.shape == (0, 2)


def test_inplace_update_on_cpu_read_on_npu_in_tf1_graph(rng):
    """A TF1 graph: the in-place update runs on the CPU, an NPU reader ordered
    after it by a control edge sees the update."""
    x0 = rng.normal(size=[64, 64]).astype(np.float32)
    v = rng.normal(size=[2, 64]).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        feed = tf.compat.v1.placeholder(tf.float32, [64, 64])
        with tf.device(CPU):
            x = tf.identity(feed)
            slow = feed
            for _ in range(10):  # keeps the CPU busy so the unordered copy would win
                slow = tf.matmul(slow, feed) * 1e-3
            u = tf.raw_ops.InplaceUpdate(x=x, i=[1, 3], v=v + 0.0 * slow[:2])
        with tf.device(NPU), tf.control_dependencies([u]):
            y = x * 1.0
    want = x0.copy()
    want[[1, 3]] = v
    with _session(g, "default") as s:
        for _ in range(3):
            _expect_equal(s.run(y, {feed: x0}), want)


# ------------------------------------------------------------ DeepCopy, Empty


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.int64, tf.bool, tf.int32], ids=lambda d: d.name)
def test_deep_copy_and_empty(placement, mode, dtype, rng):
    x = _values(rng, dtype, [3, 4])

    def body():
        return (
            tf.raw_ops.DeepCopy(x=x),
            tf.raw_ops.Empty(shape=[2, 0, 3], dtype=dtype, init=True),
            tf.raw_ops.Empty(shape=[4, 5], dtype=dtype, init=True),
            tf.raw_ops.Empty(shape=[4, 5], dtype=dtype, init=False),
        )

    _strict(placement)
    tf_adapter.reset_kernel_counts()
    out = _run(mode, placement, body)
    _expect_equal(out[0], x)
    _expect_equal(out[1], np.zeros([2, 0, 3], dtype.as_numpy_dtype))
    _expect_equal(out[2], np.zeros([4, 5], dtype.as_numpy_dtype))
    assert out[3].shape == (4, 5) and out[3].dtype == dtype  # uninitialised, as on the CPU
    counts = tf_adapter.kernel_counts()
    assert counts.get("Empty", 0) == 3
    if dtype != tf.int32:
        assert counts.get("DeepCopy", 0) == 1


def test_empty_argument_errors_match_cpu():
    tf.config.set_soft_device_placement(False)
    for shape in ([[2, 3]], [2, -1]):
        for dev in (CPU, NPU):
            with tf.device(dev), pytest.raises(tf.errors.InvalidArgumentError):
                tf.raw_ops.Empty(shape=shape, dtype=tf.float32, init=True)


# ------------------------------------------------------------ ref variables (TF1)


def _ref_cases():
    """op name -> (builder(var, new values, indices), numpy update of the old value)."""
    idx = np.array([2, 0], np.int32)
    nd_idx = np.array([[2], [0]], np.int32)

    def scatter(fn):
        return lambda v, upd: fn(v, idx, upd[: len(idx)])

    def np_scatter(f):
        def apply(old, upd):
            new = old.copy()
            for j, r in enumerate(idx):
                new[r] = f(new[r], upd[j])
            return new

        return apply

    return {
        "Assign": (lambda v, upd: tf.compat.v1.assign(v, upd), lambda old, upd: upd),
        "AssignAdd": (lambda v, upd: tf.compat.v1.assign_add(v, upd), lambda old, upd: old + upd),
        "AssignSub": (lambda v, upd: tf.compat.v1.assign_sub(v, upd), lambda old, upd: old - upd),
        "ScatterUpdate": (scatter(tf.compat.v1.scatter_update), np_scatter(lambda a, b: b)),
        "ScatterAdd": (scatter(tf.compat.v1.scatter_add), np_scatter(lambda a, b: a + b)),
        "ScatterSub": (scatter(tf.compat.v1.scatter_sub), np_scatter(lambda a, b: a - b)),
        "ScatterMul": (scatter(tf.compat.v1.scatter_mul), np_scatter(lambda a, b: a * b)),
        "ScatterDiv": (scatter(tf.compat.v1.scatter_div), np_scatter(lambda a, b: a / b)),
        "ScatterMin": (scatter(tf.compat.v1.scatter_min), np_scatter(np.minimum)),
        "ScatterMax": (scatter(tf.compat.v1.scatter_max), np_scatter(np.maximum)),
        "ScatterNdUpdate": (lambda v, upd: tf.compat.v1.scatter_nd_update(v, nd_idx, upd[:2]), np_scatter(lambda a, b: b)),
        "ScatterNdAdd": (lambda v, upd: tf.compat.v1.scatter_nd_add(v, nd_idx, upd[:2]), np_scatter(lambda a, b: a + b)),
        "ScatterNdSub": (lambda v, upd: tf.compat.v1.scatter_nd_sub(v, nd_idx, upd[:2]), np_scatter(lambda a, b: a - b)),
    }


REF_CASES = _ref_cases()


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("op", list(REF_CASES))
def test_ref_variable_reads_after_in_place_update(placement, op, rng):
    """TF1 ref variables live on the host (a plugin cannot implement them);
    reads on the NPU ordered after an update by control dependencies see the
    updated value, as on the CPU: through the variable's snapshot (`v * 2`)
    and through `tf.identity(v)`."""
    build, update = REF_CASES[op]
    n = 256
    old = rng.uniform(1.0, 2.0, size=[4, n]).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        feed = tf.compat.v1.placeholder(tf.float32, [4, n])
        with tf.device(CPU):
            v = tf.compat.v1.Variable(old, use_resource=False)
            # ~20 ms of CPU work that depends on the feed (not foldable), so
            # an unordered copy of the variable would win the race.
            big = tf.tile(feed, [128, 2])
            slow = big
            for _ in range(8):
                slow = tf.matmul(slow, big) * 1e-3
            upd = feed + 0.0 * tf.reduce_sum(slow)
            w = build(v, upd)
        with _scope(placement), tf.control_dependencies([w]):
            doubled = v * 2.0
            copied = tf.identity(v)
    new_vals = rng.uniform(1.0, 2.0, size=[4, n]).astype(np.float32)
    want = update(old, new_vals)
    with _session(g, placement) as s:
        s.run(v.initializer)
        got_doubled, got_copied = s.run([doubled, copied], {feed: new_vals})
        assert "NPU" in doubled.device or placement == "default"
    np.testing.assert_allclose(got_copied, want, rtol=1e-6)
    np.testing.assert_allclose(got_doubled, 2.0 * want, rtol=1e-6)


# ------------------------------------------------------------ TensorArray / TensorList


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("mode", ["eager", "function"])
def test_tensor_array_writes_are_read_back(placement, mode, rng):
    x = rng.normal(size=[5, 3]).astype(np.float32)

    def body():
        ta = tf.TensorArray(tf.float32, size=5, clear_after_read=False)
        for i in range(5):
            ta = ta.write(i, tf.constant(x[i]) * 2.0)
        ta2 = tf.TensorArray(tf.float32, size=5).scatter([4, 3, 2, 1, 0], tf.constant(x))
        return ta.stack(), ta.read(3), ta.gather([4, 0]), ta2.stack()

    _strict(placement)
    out = _run(mode, placement, body)
    _expect_equal(out[0], 2.0 * x)
    _expect_equal(out[1], 2.0 * x[3])
    _expect_equal(out[2], 2.0 * x[[4, 0]])
    _expect_equal(out[3], x[::-1])


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_tensor_array_v3_in_tf1_graph(placement, rng):
    """TF1 control flow: TensorArrayV3 resource ops (host) written in a
    while loop, read on the NPU."""
    x = rng.normal(size=[6, 4]).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        from tensorflow.python.ops import control_flow_util

        old = control_flow_util.ENABLE_CONTROL_FLOW_V2
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
        try:
            with _scope(placement):
                xs = tf.constant(x)
                ta = tf.TensorArray(tf.float32, size=6)
                _, ta = tf.while_loop(lambda i, t: i < 6, lambda i, t: (i + 1, t.write(i, xs[i] * 3.0)), [0, ta])
                out = ta.stack() + 1.0
        finally:
            control_flow_util.ENABLE_CONTROL_FLOW_V2 = old
        assert any(op.type == "TensorArrayV3" for op in g.get_operations())
    with _session(g, "default" if placement == "strict" else placement) as s:
        # TensorArrayV3 has no NPU kernel (TensorFlow's resource op): soft
        # placement keeps it with its reads on the host.
        np.testing.assert_allclose(s.run(out), 3.0 * x + 1.0, rtol=1e-6)


@pytest.mark.parametrize("mode", ["allow_mix_precision_bf16", "allow_mix_precision_fp16", "force_fp32"])
def test_parallel_stack_under_precision_modes(mode, rng):
    """The precision pass must not put a Cast between the stack's buffer and
    its reader (the Cast would read before the updates)."""
    dtype = tf.bfloat16 if mode == "force_fp32" else tf.float32
    data = tf.cast(rng.normal(size=[6, 8]), dtype).numpy()
    w = tf.cast(rng.normal(size=[8, 8]), dtype).numpy()

    @tf.function
    def f():
        with tf.device(NPU):
            s = tf.parallel_stack([tf.constant(r) for r in data])
            return s, tf.matmul(s, w)

    before = tf_adapter.get_precision_mode()
    tf_adapter.set_precision_mode(mode)
    try:
        stacked, product = f()
    finally:
        tf_adapter.set_precision_mode(before)
    _expect_equal(stacked, data)
    np.testing.assert_allclose(tf.cast(product, tf.float32).numpy(), tf.cast(tf.matmul(data, w), tf.float32).numpy(), rtol=0.05, atol=0.1)
