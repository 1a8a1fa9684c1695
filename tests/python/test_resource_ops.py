"""Resource-variable ops (gather, scatter, training updates) on NPU variables
match TensorFlow's CPU kernels on CPU variables: eagerly, and inside a
tf.function with soft placement off and the NPU scope inside the body."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches
from tensorflow.python.ops import gen_training_ops

NPU = "/NPU:0"
CPU = "/CPU:0"


def variables(device, arrays):
    with tf.device(device):
        return [tf.Variable(a) for a in arrays]


def run(mode, device, fn):
    """Calls fn() eagerly under `device`, or in a tf.function with the device
    scope inside the body."""
    if mode == "eager":
        with tf.device(device):
            return fn()

    @tf.function
    def f():
        with tf.device(device):
            return fn()

    return f()


def assert_vars_match(npu_vars, cpu_vars, rtol=1e-6, atol=0.0):
    for n, c in zip(npu_vars, cpu_vars):
        assert "NPU" in n.handle.device and "CPU" in c.handle.device
        assert_matches(tf.convert_to_tensor(n), tf.convert_to_tensor(c), c.dtype, rtol=rtol, atol=atol)


# ------------------------------------------------------------ gather/scatter


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.int64])  # (int32 variables live on the host)
def test_gather(mode, dtype, rng, strict_placement):
    table = tf.cast(tf.constant(rng.normal(size=[6, 4, 3]) * 10), dtype).numpy()
    idx = tf.constant([[0, 5, 5], [2, 1, 0]], tf.int64)
    results = {}
    for dev in (CPU, NPU):
        (v,) = variables(dev, [table])
        results[dev] = run(
            mode,
            dev,
            lambda v=v: (
                tf.gather(v, idx),
                tf.raw_ops.ResourceGather(resource=v.handle, indices=[[1, 0], [2, 2], [3, 1], [0, 0], [1, 1], [3, 2]], dtype=dtype, batch_dims=1),
                tf.raw_ops.ResourceGatherNd(resource=v.handle, indices=[[1, 2], [5, 0], [0, 3]], dtype=dtype),
                tf.raw_ops.ResourceGatherNd(resource=v.handle, indices=[[4], [1]], dtype=dtype),
                v.sparse_read([3, 3], name="sparse"),
            ),
        )
    for n, c in zip(results[NPU], results[CPU]):
        assert_matches(n, c, dtype)


def test_out_of_range_indices_raise():
    for dev in (CPU, NPU):
        (v,) = variables(dev, [np.zeros([4, 2], np.float32)])
        with pytest.raises(tf.errors.InvalidArgumentError):
            with tf.device(dev):
                tf.gather(v, [4]).numpy()
        with pytest.raises(tf.errors.InvalidArgumentError):
            with tf.device(dev):
                tf.raw_ops.ResourceGatherNd(resource=v.handle, indices=[[1, 2]], dtype=tf.float32).numpy()
        with pytest.raises(tf.errors.InvalidArgumentError):
            with tf.device(dev):
                v.scatter_add(tf.IndexedSlices(tf.ones([1, 2]), [4]))
        with pytest.raises(tf.errors.InvalidArgumentError):
            with tf.device(dev):
                tf.raw_ops.ResourceSparseApplyMomentum(var=v.handle, accum=v.handle, lr=0.1, grad=tf.ones([1, 2]),
                                                       indices=[-1], momentum=0.9)


SCATTERS = ["add", "sub", "mul", "div", "min", "max", "update"]


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("kind", SCATTERS)
def test_scatter(kind, mode, rng, strict_placement):
    table = rng.uniform(1, 2, size=[7, 3]).astype(np.float32)
    # duplicates accumulate (sequentially, as on the CPU), except for update
    idx = tf.constant([1, 4, 1, 6, 1] if kind != "update" else [1, 4, 0, 6], tf.int32)
    upd = tf.constant(rng.uniform(0.5, 2, size=[idx.shape[0], 3]), tf.float32)
    camel = "ResourceScatter" + kind.capitalize()
    out = {}
    for dev in (CPU, NPU):
        v, w = variables(dev, [table, table])

        def body(v=v, w=w):
            getattr(v, "scatter_" + kind)(tf.IndexedSlices(upd, idx))
            getattr(tf.raw_ops, camel)(resource=w.handle, indices=idx, updates=upd)
            # a scalar update broadcasts over the rows
            getattr(tf.raw_ops, camel)(resource=w.handle, indices=[[2, 3]], updates=tf.constant(1.5))
            return tf.constant(0)

        run(mode, dev, body)
        out[dev] = (v, w)
    assert_vars_match(out[NPU], out[CPU])


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("kind", ["add", "sub", "update", "min", "max"])
def test_scatter_nd(kind, mode, rng, strict_placement):
    table = rng.normal(size=[4, 5, 2]).astype(np.float32)
    idx = tf.constant([[1, 2], [3, 0], [1, 2]] if kind != "update" else [[1, 2], [3, 0]], tf.int64)
    upd = tf.constant(rng.normal(size=[idx.shape[0], 2]), tf.float32)
    out = {}
    for dev in (CPU, NPU):
        (v,) = variables(dev, [table])

        def body(v=v):
            op = getattr(tf.raw_ops, "ResourceScatterNd" + kind.capitalize())
            op(ref=v.handle, indices=idx, updates=upd)
            # an out-of-range row is skipped with bad_indices_policy="IGNORE"
            op(ref=v.handle, indices=[[9, 0], [0, 1]], updates=upd[:2], bad_indices_policy="IGNORE")
            return tf.constant(0)

        run(mode, dev, body)
        out[dev] = (v,)
    assert_vars_match(out[NPU], out[CPU])


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_scatter_step_runs_where_the_op_table_has_a_kernel(mode, rng, strict_placement):
    """The scatter step of a composite runs on the NPU when the op table has
    the TensorScatter kernel at the variable's dtype, else on the host."""
    from tf_adapter import _resource_ops

    table = rng.normal(size=[6, 3]).astype(np.float32)
    idx = tf.constant([1, 4, 1], tf.int64)
    upd = tf.constant(rng.normal(size=[3, 3]), tf.float32)
    for kind in ["add", "update", "max"]:
        (v,) = variables(NPU, [table])
        tf_adapter.reset_kernel_counts()
        run(mode, NPU, lambda v=v: (getattr(tf.raw_ops, "ResourceScatter" + kind.capitalize())(
            resource=v.handle, indices=idx, updates=upd), tf.constant(0))[1])
        op = "TensorScatter" + kind.capitalize()
        on_npu = tf_adapter.kernel_counts().get(op, 0) >= 1
        assert on_npu == _resource_ops.npu_kernel(op, tf.float32), (kind, tf_adapter.kernel_counts())
    assert _resource_ops.npu_kernel("TensorScatterAdd", tf.float32)
    assert not _resource_ops.npu_kernel("TensorScatterMax", tf.float32)


def test_every_python_composite_is_in_the_op_table():
    """The op table declares the ops served by Python composites
    (docs/ops.md lists them); _resource_ops implements exactly those."""
    from tf_adapter import _native, _resource_ops

    declared = {name for name, _summary in _native.composite_ops()}
    implemented = {c._tfa_op for c in _resource_ops._COMPOSITES.values()}
    assert implemented == declared
    docs = (pathlib.Path(__file__).parents[2] / "docs" / "ops.md").read_text()
    for name in declared:
        assert f"| `{name}` |" in docs, name


# --------------------------------------------------------------- training ops

# op, variables (var first), scalars, attrs, sparse
TRAINING = [
    ("ResourceApplyGradientDescent", ["var"], {"alpha": 0.1}, {}, False),
    ("ResourceApplyMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {}, False),
    ("ResourceApplyMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {"use_nesterov": True}, False),
    ("ResourceApplyKerasMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {}, False),
    ("ResourceApplyKerasMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {"use_nesterov": True}, False),
    ("ResourceApplyAdam", ["var", "m", "v"],
     {"beta1_power": 0.9, "beta2_power": 0.999, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyAdam", ["var", "m", "v"],
     {"beta1_power": 0.81, "beta2_power": 0.998, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7},
     {"use_nesterov": True}, False),
    ("ResourceApplyAdamWithAmsgrad", ["var", "m", "v", "vhat"],
     {"beta1_power": 0.9, "beta2_power": 0.999, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyAdaMax", ["var", "m", "v"],
     {"beta1_power": 0.9, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyAdagrad", ["var", "accum"], {"lr": 0.1}, {}, False),
    ("ResourceApplyAdagrad", ["var", "accum"], {"lr": 0.1}, {"update_slots": False}, False),
    ("ResourceApplyAdagradV2", ["var", "accum"], {"lr": 0.1, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyRMSProp", ["var", "ms", "mom"], {"lr": 0.01, "rho": 0.9, "momentum": 0.5, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyCenteredRMSProp", ["var", "mg", "ms", "mom"],
     {"lr": 0.01, "rho": 0.9, "momentum": 0.5, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyAdadelta", ["var", "accum", "accum_update"], {"lr": 1.0, "rho": 0.95, "epsilon": 1e-7}, {}, False),
    ("ResourceApplyFtrl", ["var", "accum", "linear"], {"lr": 0.1, "l1": 0.01, "l2": 0.02, "lr_power": -0.5}, {}, False),
    ("ResourceApplyFtrl", ["var", "accum", "linear"], {"lr": 0.1, "l1": 0.01, "l2": 0.02, "lr_power": -0.7},
     {"multiply_linear_by_lr": True}, False),
    ("ResourceApplyFtrlV2", ["var", "accum", "linear"],
     {"lr": 0.1, "l1": 0.01, "l2": 0.02, "l2_shrinkage": 0.05, "lr_power": -0.5}, {}, False),
    ("ResourceApplyProximalGradientDescent", ["var"], {"alpha": 0.1, "l1": 0.05, "l2": 0.02}, {}, False),
    ("ResourceApplyProximalGradientDescent", ["var"], {"alpha": 0.1, "l1": 0.0, "l2": 0.02}, {}, False),
    ("ResourceApplyProximalAdagrad", ["var", "accum"], {"lr": 0.1, "l1": 0.05, "l2": 0.02}, {}, False),
    ("ResourceApplyProximalAdagrad", ["var", "accum"], {"lr": 0.1, "l1": 0.0, "l2": 0.02}, {}, False),
    ("ResourceApplyAddSign", ["var", "m"], {"lr": 0.1, "alpha": 1.0, "sign_decay": 0.9, "beta": 0.9}, {}, False),
    ("ResourceApplyPowerSign", ["var", "m"], {"lr": 0.1, "logbase": 2.718, "sign_decay": 0.9, "beta": 0.9}, {}, False),
    ("ResourceApplyAdagradDA", ["var", "gradient_accumulator", "gradient_squared_accumulator"],
     {"lr": 0.1, "l1": 0.05, "l2": 0.02, "global_step": 3}, {}, False),
    ("ResourceApplyAdagradDA", ["var", "gradient_accumulator", "gradient_squared_accumulator"],
     {"lr": 0.1, "l1": 0.0, "l2": 0.02, "global_step": 3}, {}, False),
    ("ResourceSparseApplyAdagradDA", ["var", "gradient_accumulator", "gradient_squared_accumulator"],
     {"lr": 0.1, "l1": 0.05, "l2": 0.02, "global_step": 3}, {}, True),
    ("ResourceSparseApplyAdagradDA", ["var", "gradient_accumulator", "gradient_squared_accumulator"],
     {"lr": 0.1, "l1": 0.0, "l2": 0.02, "global_step": 3}, {}, True),
    ("ResourceSparseApplyMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {}, True),
    ("ResourceSparseApplyMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {"use_nesterov": True}, True),
    ("ResourceSparseApplyKerasMomentum", ["var", "accum"], {"lr": 0.1, "momentum": 0.9}, {}, True),
    ("ResourceSparseApplyAdagrad", ["var", "accum"], {"lr": 0.1}, {}, True),
    ("ResourceSparseApplyAdagradV2", ["var", "accum"], {"lr": 0.1, "epsilon": 1e-7}, {}, True),
    ("ResourceSparseApplyRMSProp", ["var", "ms", "mom"],
     {"lr": 0.01, "rho": 0.9, "momentum": 0.5, "epsilon": 1e-7}, {}, True),
    ("ResourceSparseApplyCenteredRMSProp", ["var", "mg", "ms", "mom"],
     {"lr": 0.01, "rho": 0.9, "momentum": 0.5, "epsilon": 1e-7}, {}, True),
    ("ResourceSparseApplyAdadelta", ["var", "accum", "accum_update"], {"lr": 1.0, "rho": 0.95, "epsilon": 1e-7}, {}, True),
    ("ResourceSparseApplyFtrl", ["var", "accum", "linear"], {"lr": 0.1, "l1": 0.01, "l2": 0.02, "lr_power": -0.5}, {}, True),
    ("ResourceSparseApplyFtrl", ["var", "accum", "linear"], {"lr": 0.1, "l1": 0.01, "l2": 0.02, "lr_power": -0.7},
     {"multiply_linear_by_lr": True}, True),
    ("ResourceSparseApplyFtrlV2", ["var", "accum", "linear"],
     {"lr": 0.1, "l1": 0.01, "l2": 0.02, "l2_shrinkage": 0.05, "lr_power": -0.5}, {}, True),
    ("ResourceSparseApplyProximalGradientDescent", ["var"], {"alpha": 0.1, "l1": 0.05, "l2": 0.02}, {}, True),
    ("ResourceSparseApplyProximalAdagrad", ["var", "accum"], {"lr": 0.1, "l1": 0.05, "l2": 0.02}, {}, True),
]


def _case_id(case):
    op, _, scalars, attrs, _ = case
    return op + "".join(f"-{k}" for k in attrs) + ("-l1=0" if scalars.get("l1") == 0.0 else "")


@pytest.mark.parametrize("mode", ["eager", "function"])
@pytest.mark.parametrize("case", TRAINING, ids=[_case_id(c) for c in TRAINING])
def test_training_op(case, mode, rng, strict_placement):
    op, names, scalars, attrs, sparse = case
    shape = [6, 4]
    # var anywhere, slots positive (accumulators of squares)
    arrays = [rng.normal(size=shape).astype(np.float32)] + [
        rng.uniform(0.1, 1.0, size=shape).astype(np.float32) for _ in names[1:]
    ]
    if sparse:
        # duplicates are applied one after another, as on the CPU (whose
        # Adagrad kernels update rows in parallel: no duplicates there)
        ids = [4, 0, 2] if "Adagrad" in op else [4, 0, 4, 2, 4]
        indices = tf.constant(ids, tf.int64)
        grads = [tf.constant(rng.normal(size=[len(ids), 4]), tf.float32) for _ in range(2)]
    else:
        indices = None
        grads = [tf.constant(rng.normal(size=shape), tf.float32) for _ in range(2)]
    grad_name = "delta" if op in ("ResourceApplyGradientDescent", "ResourceApplyProximalGradientDescent") else "grad"
    out = {}
    for dev in (CPU, NPU):
        vs = variables(dev, arrays)

        def body(vs=vs):
            for g in grads:  # two steps: the slots feed back
                kwargs = {n: v.handle for n, v in zip(names, vs)}
                kwargs.update({k: tf.constant(x, tf.int64 if k == "global_step" else tf.float32) for k, x in scalars.items()})
                kwargs[grad_name] = g
                if sparse:
                    kwargs["indices"] = indices
                getattr(tf.raw_ops, op)(**kwargs, **attrs)
            return tf.constant(0)

        run(mode, dev, body)
        out[dev] = vs
    assert_vars_match(out[NPU], out[CPU], rtol=1e-6, atol=1e-7)


def test_positional_gen_call_returns_like_the_original(rng):
    """The module functions keep positional arguments, `name` and the return
    value (None eagerly, an Operation in a graph)."""
    arr = rng.normal(size=[3]).astype(np.float32)
    (v,) = variables(NPU, [arr])
    assert gen_training_ops.resource_apply_gradient_descent(v.handle, 0.5, tf.ones([3]), name="gd") is None
    np.testing.assert_allclose(v.numpy(), arr - 0.5, rtol=1e-6)

    captured = {}

    @tf.function
    def f():
        with tf.device(NPU):
            op = gen_training_ops.resource_apply_gradient_descent(v.handle, 0.5, tf.ones([3]), name="my_gd")
            captured["op"] = op
        return tf.constant(0)

    f()
    assert isinstance(captured["op"], tf.Operation)
    assert captured["op"].name.endswith("my_gd")
    np.testing.assert_allclose(v.numpy(), arr - 1.0, rtol=1e-6)


def test_cpu_variables_keep_tensorflows_kernels(rng):
    cpu_v, cpu_m, cpu_s = variables(CPU, [np.ones([3], np.float32)] * 3)
    npu_v, npu_m, npu_s = variables(NPU, [np.ones([3], np.float32)] * 3)

    def graph_ops(v, m, s):
        @tf.function
        def f(g):
            tf.raw_ops.ResourceApplyAdam(
                var=v.handle, m=m.handle, v=s.handle, beta1_power=0.9, beta2_power=0.99, lr=0.1,
                beta1=0.9, beta2=0.99, epsilon=1e-7, grad=g,
            )
            v.scatter_add(tf.IndexedSlices(g[:1], [0]))
            return tf.gather(v, [0])

        graph = f.get_concrete_function(tf.TensorSpec([3], tf.float32)).graph
        return {op.type for op in graph.get_operations()}

    cpu_ops = graph_ops(cpu_v, cpu_m, cpu_s)
    assert {"ResourceApplyAdam", "ResourceScatterAdd", "ResourceGather"} <= cpu_ops, cpu_ops
    npu_ops = graph_ops(npu_v, npu_m, npu_s)
    assert not {"ResourceApplyAdam", "ResourceScatterAdd", "ResourceGather"} & npu_ops, npu_ops
    assert "AssignVariableOp" in npu_ops


def test_patched_everywhere():
    from tensorflow.python.ops import gen_resource_variable_ops, resource_variable_ops

    assert getattr(tf.raw_ops.ResourceApplyAdam, "_tfa_patched", False)
    assert getattr(tf.compat.v1.raw_ops.ResourceScatterAdd, "_tfa_patched", False)
    assert getattr(gen_training_ops.resource_apply_adam, "_tfa_patched", False)
    assert getattr(resource_variable_ops.resource_scatter_add, "_tfa_patched", False)
    assert getattr(gen_resource_variable_ops.resource_gather, "_tfa_patched", False)


# --------------------------------------------------------- v1 optimizers


OPTIMIZERS = {
    "adam": lambda: tf.compat.v1.train.AdamOptimizer(0.01),
    "momentum": lambda: tf.compat.v1.train.MomentumOptimizer(0.05, 0.9),
    "nesterov": lambda: tf.compat.v1.train.MomentumOptimizer(0.05, 0.9, use_nesterov=True),
    "rmsprop": lambda: tf.compat.v1.train.RMSPropOptimizer(0.01, momentum=0.5),
    "rmsprop_centered": lambda: tf.compat.v1.train.RMSPropOptimizer(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: tf.compat.v1.train.AdagradOptimizer(0.1),
    "sgd": lambda: tf.compat.v1.train.GradientDescentOptimizer(0.1),
    "adadelta": lambda: tf.compat.v1.train.AdadeltaOptimizer(1.0),
    "ftrl": lambda: tf.compat.v1.train.FtrlOptimizer(0.1, l1_regularization_strength=0.01),
    "ftrl_shrinkage": lambda: tf.compat.v1.train.FtrlOptimizer(0.1, l2_shrinkage_regularization_strength=0.01),
    "proximal_gd": lambda: tf.compat.v1.train.ProximalGradientDescentOptimizer(0.1, l1_regularization_strength=0.01),
    "proximal_adagrad": lambda: tf.compat.v1.train.ProximalAdagradOptimizer(0.1, l1_regularization_strength=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS) + ["adagrad_da"])
def test_v1_optimizer_trains_like_cpu(name, rng, strict_placement):
    """A small model with a dense layer and an embedding (sparse gradients)
    trained for 5 steps: NPU variables follow the CPU ones."""
    w0 = rng.normal(size=[4, 3]).astype(np.float32)
    b0 = rng.normal(size=[3]).astype(np.float32)
    e0 = rng.normal(size=[10, 4]).astype(np.float32)
    ids = tf.constant([[1, 3], [3, 7], [0, 9], [7, 7], [2, 1]], tf.int32)
    y = tf.constant(rng.normal(size=[5, 3]), tf.float32)

    out = {}
    for dev in (CPU, NPU):
        w, b, e = variables(dev, [w0, b0, e0])
        if name == "adagrad_da":
            with tf.device(CPU):
                step_count = tf.Variable(1, dtype=tf.int64)
            opt = tf.compat.v1.train.AdagradDAOptimizer(0.1, step_count, l1_regularization_strength=0.01)
        else:
            opt = OPTIMIZERS[name]()

        def loss():
            x = tf.reduce_sum(tf.gather(e, ids), axis=1)
            return tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))

        @tf.function
        def step(dev=dev, opt=opt, w=w, b=b, e=e, loss=loss):
            with tf.device(dev):
                opt.minimize(loss, var_list=[w, b, e])
                return loss()

        losses = [float(step()) for _ in range(5)]
        out[dev] = ([w, b, e], losses)
    assert_vars_match(out[NPU][0], out[CPU][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[NPU][1], out[CPU][1], rtol=1e-5)
    assert out[CPU][1][-1] < out[CPU][1][0]


def test_v1_optimizer_eager(rng):
    w0 = rng.normal(size=[4, 3]).astype(np.float32)
    x = tf.constant(rng.normal(size=[5, 4]), tf.float32)
    out = {}
    for dev in (CPU, NPU):
        (w,) = variables(dev, [w0])
        opt = tf.compat.v1.train.AdamOptimizer(0.01)
        with tf.device(dev):
            for _ in range(5):
                opt.minimize(lambda: tf.reduce_sum(tf.square(tf.matmul(x, w))), var_list=[w])
        out[dev] = [w]
    assert_vars_match(out[NPU], out[CPU], rtol=1e-5, atol=1e-6)


def test_nested_function_and_loop_follow_captures(rng, strict_placement):
    """Inside a loop body (a nested FuncGraph) the handle is a capture of a
    capture: the device is found through both."""
    table = rng.normal(size=[5, 2]).astype(np.float32)
    out = {}
    for dev in (CPU, NPU):
        (v,) = variables(dev, [table])

        @tf.function
        def f(v=v, dev=dev):
            with tf.device(dev):
                for i in tf.range(3):
                    v.scatter_add(tf.IndexedSlices(tf.ones([1, 2]), tf.reshape(i, [1])))
                return tf.gather(v, [0, 1, 2])

        f()
        out[dev] = (v,)
    assert_vars_match(out[NPU], out[CPU])


def test_v1_graph_session(rng):
    """TF1 graph mode (no automatic control dependencies): an Adam and a
    sparse Momentum update on NPU variables in a Session."""
    w0 = rng.normal(size=[4, 3]).astype(np.float32)
    x0 = rng.normal(size=[5, 4]).astype(np.float32)
    results = {}
    for dev in (CPU, NPU):
        with tf.Graph().as_default():
            with tf.device(dev):
                w = tf.compat.v1.get_variable("w", initializer=w0, use_resource=True)
                e = tf.compat.v1.get_variable("e", initializer=w0, use_resource=True)
                loss = tf.reduce_sum(tf.square(tf.matmul(x0, w))) + tf.reduce_sum(tf.gather(e, [1, 3, 1]))
                train = tf.group(
                    tf.compat.v1.train.AdamOptimizer(0.01).minimize(loss, var_list=[w]),
                    tf.compat.v1.train.MomentumOptimizer(0.1, 0.9).minimize(loss, var_list=[e]),
                )
            with tf.compat.v1.Session() as sess:
                sess.run(tf.compat.v1.global_variables_initializer())
                for _ in range(3):
                    sess.run(train)
                results[dev] = sess.run([w, e])
                types = {op.type for op in sess.graph.get_operations()}
                if dev == NPU:
                    assert not {"ResourceApplyAdam", "ResourceSparseApplyMomentum"} & types, types
    for n, c in zip(results[NPU], results[CPU]):
        np.testing.assert_allclose(n, c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [tf.float64, tf.float16, tf.bfloat16])
def test_other_float_types(dtype, rng, strict_placement):
    shape = [5, 3]
    arrays = [tf.cast(rng.normal(size=shape), dtype).numpy()] + [
        tf.cast(rng.uniform(0.1, 1, size=shape), dtype).numpy() for _ in range(2)
    ]
    grad = tf.cast(rng.normal(size=shape), dtype)
    rows = tf.cast(rng.normal(size=[2, 3]), dtype)
    s = lambda x: tf.constant(x, dtype)  # noqa: E731
    out = {}
    for dev in (CPU, NPU):
        var, m, v = variables(dev, arrays)

        @tf.function
        def f(var=var, m=m, v=v, dev=dev):
            with tf.device(dev):
                tf.raw_ops.ResourceApplyAdam(var=var.handle, m=m.handle, v=v.handle, beta1_power=s(0.9),
                                             beta2_power=s(0.999), lr=s(0.01), beta1=s(0.9), beta2=s(0.999),
                                             epsilon=s(1e-3), grad=grad)
                tf.raw_ops.ResourceSparseApplyMomentum(var=m.handle, accum=v.handle, lr=s(0.1), grad=rows,
                                                       indices=[3, 0], momentum=s(0.9))
                v.scatter_add(tf.IndexedSlices(rows, [1, 1]))
                return tf.constant(0)

        f()
        out[dev] = [var, m, v]
    assert_vars_match(out[NPU], out[CPU], rtol={tf.float64: 1e-12, tf.float16: 2e-3, tf.bfloat16: 1.6e-2}[dtype])


@pytest.mark.filterwarnings("ignore::tf_adapter.HostFallbackWarning")  # the CPU op under an NPU scope
def test_device_comes_from_the_variable_not_the_scope(rng):
    """A CPU variable used under an NPU scope keeps TensorFlow's kernel; an
    NPU variable used under a CPU scope gets the composite (the captured
    placeholder carries the scope's device, not the variable's)."""
    (c,) = variables(CPU, [np.ones([3], np.float32)])
    (n,) = variables(NPU, [np.ones([3], np.float32)])

    @tf.function
    def f():
        with tf.device(NPU):
            tf.raw_ops.ResourceApplyGradientDescent(var=c.handle, alpha=0.5, delta=tf.ones([3]))
        with tf.device(CPU):
            gen_training_ops.resource_apply_gradient_descent(n.handle, 0.5, tf.ones([3]))
        return tf.constant(0)

    types = [op.type for op in f.get_concrete_function().graph.get_operations()]
    assert types.count("ResourceApplyGradientDescent") == 1 and "AssignVariableOp" in types, types
    f()
    np.testing.assert_allclose(c.numpy(), [0.5] * 3)
    np.testing.assert_allclose(n.numpy(), [0.5] * 3)


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_empty_indices_and_scalar_updates(mode, rng, strict_placement):
    table = rng.uniform(1, 2, size=[4, 3]).astype(np.float32)
    empty = tf.zeros([0], tf.int64)
    out = {}
    for dev in (CPU, NPU):
        v, a = variables(dev, [table, table])

        def body(v=v, a=a):
            tf.raw_ops.ResourceScatterMul(resource=v.handle, indices=[[1, 3], [1, 0]], updates=tf.constant(1.5))
            tf.raw_ops.ResourceScatterDiv(resource=v.handle, indices=[2, 2], updates=tf.constant(3.0))
            tf.raw_ops.ResourceScatterAdd(resource=v.handle, indices=empty, updates=tf.zeros([0, 3]))
            tf.raw_ops.ResourceScatterMul(resource=v.handle, indices=empty, updates=tf.zeros([0, 3]))
            tf.raw_ops.ResourceSparseApplyMomentum(var=v.handle, accum=a.handle, lr=tf.constant(0.1),
                                                   grad=tf.zeros([0, 3]), indices=empty, momentum=tf.constant(0.9))
            return tf.constant(0)

        run(mode, dev, body)
        out[dev] = (v, a)
    assert_vars_match(out[NPU], out[CPU])


@pytest.mark.parametrize("mode", ["eager", "function"])
def test_sliced_assign(mode, rng, strict_placement):
    """variable[...].assign(...) (ResourceStridedSliceAssign)."""
    table = rng.normal(size=[5, 4, 3]).astype(np.float32)
    a = tf.constant(rng.normal(size=[2, 4, 3]), tf.float32)
    b = tf.constant(rng.normal(size=[3, 2]), tf.float32)
    c = tf.constant(rng.normal(size=[5]), tf.float32)
    out = {}
    for dev in (CPU, NPU):
        (v,) = variables(dev, [table])

        def body(v=v):
            v[1:3].assign(a)
            v[::2, 1, 1:].assign(b)
            v[..., 2, 0].assign(c)
            v[4, 3, 2].assign(7.0)
            return tf.constant(0)

        run(mode, dev, body)
        out[dev] = (v,)
    assert_vars_match(out[NPU], out[CPU])
