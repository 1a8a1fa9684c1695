"""Keras mixed-precision policies entirely on the NPU, with soft placement off.

Under ``mixed_float16`` / ``mixed_bfloat16`` a small CNN and small ResNet50,
MobileNetV2 and BERT-like encoder run inference in strict mode on the NPU and
match the same model, weights and policy on TensorFlow CPU; ``fit`` runs a
few steps in strict mode (``mixed_float16``: through Keras 3's
LossScaleOptimizer, i.e. IsFinite, All, a StatelessIf and the variable
updates) with the CPU's losses. A custom loop that trains float16 without
loss scaling warns once (``tf_adapter.PrecisionWarning``).

Tolerances. Both devices compute each layer in the policy's half type from
the same half-type inputs, so they differ by roundings of the half type
(different summation orders, float32 accumulators rounded once), compounded
over the network's depth. On the logits we compare the largest difference to
the largest magnitude (element-wise relative error is meaningless for logits
near zero). float16 has 11 significant bits (unit roundoff 4.9e-4), bfloat16
8 (3.9e-3): measured on these models, float16 differs by at most 2e-3 and
bfloat16 by 2e-2 (bert_encoder, resnet50), a few roundings each; the bounds
1e-2 and 5e-2 leave 5x and 2.5x headroom. The cosine similarity of the logit
vectors must be >= 0.999 (float16) / 0.99 (bfloat16) (measured: > 0.9999):
a wrong kernel (a swapped axis, a dropped term) gives far less. fit losses
and the trained weights use the same relative bounds.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
import keras
from tf_adapter import _keras, zoo

POLICIES = ["mixed_float16", "mixed_bfloat16"]
# (max |npu - cpu| / max |cpu|, min cosine similarity) per policy, see above.
TOL = {"mixed_float16": (1e-2, 0.999), "mixed_bfloat16": (5e-2, 0.99)}


@pytest.fixture(params=POLICIES)
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    request.addfinalizer(lambda: keras.mixed_precision.set_global_policy("float32"))
    return request.param


@pytest.fixture
def strict():
    """tf_adapter strict mode: soft placement off, every function checked
    before it runs, tf.data pinned to the host."""
    tf_adapter.set_strict(True)
    try:
        assert not tf.config.get_soft_device_placement()
        yield
    finally:
        tf_adapter.set_strict(False)


def small_cnn(dropout=0.2):
    layers = [
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(),
        keras.layers.DepthwiseConv2D(3, padding="same"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    # Keras' advice for mixed precision: the logits in float32.
    layers += [keras.layers.Dense(10), keras.layers.Activation("linear", dtype="float32")]
    return keras.Sequential(layers)


def build(name):
    if name == "cnn":
        return small_cnn()
    if name == "bert_encoder":
        return zoo.build(name, small=True)
    model = zoo.build(name, image_size=32, logits=True)
    if name == "mobilenetv2":
        zoo.he_init(model)
    return model


def example(name, model, batch=2):
    if name == "cnn":
        return np.random.default_rng(0).uniform(0, 1, (batch, 16, 16, 3)).astype(np.float32)
    x = zoo.example_input(model, batch)
    return x if name == "bert_encoder" else x / 255.0


def twins(name):
    """The model on the CPU and on NPU:0, same weights and dropout seeds."""
    keras.utils.set_random_seed(0)
    with tf.device("/CPU:0"):
        cpu = build(name)
    keras.utils.set_random_seed(0)
    with tf.device("/NPU:0"):
        npu = build(name)
    npu.set_weights(cpu.get_weights())
    return cpu, npu


def compare(npu, cpu, policy):
    a = np.asarray(npu, np.float64).ravel()
    b = np.asarray(cpu, np.float64).ravel()
    assert np.all(np.isfinite(b)) and np.max(np.abs(b)) > 1e-3, "degenerate CPU reference"
    assert np.all(np.isfinite(a)), a
    rel_tol, cos_tol = TOL[policy]
    rel = np.max(np.abs(a - b)) / np.max(np.abs(b))
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert rel <= rel_tol and cos >= cos_tol, (rel, cos)


@pytest.mark.parametrize("name", ["cnn", "resnet50", "mobilenetv2", "bert_encoder"])
def test_inference_in_strict_mode_matches_cpu(policy, name):
    """As a tf.function, checked by the coverage report and by strict mode
    before it runs. The CPU reference is the same model (same variables)
    traced under a CPU device scope."""
    keras.utils.set_random_seed(0)
    with tf.device("/NPU:0"):
        model = build(name)
    half = tf.float16 if policy == "mixed_float16" else tf.bfloat16
    assert model.layers[1].compute_dtype == half.name
    x = tf.constant(example(name, model))
    fn = tf.function(lambda t: model(t, training=False))
    with tf.device("/CPU:0"):
        want = fn(x)
    tf_adapter.reset_kernel_counts()
    tf_adapter.set_strict(True)
    try:
        assert not tf.config.get_soft_device_placement()
        with tf.device("/NPU:0"):
            report = tf_adapter.coverage(fn, x)
            assert report.fully_on_npu, report
            assert any(half.name in o.dtypes for o in report.on_npu if o.op_type in ("Conv2D", "MatMul", "BatchMatMulV2", "Einsum"))
            got = fn(x)
    finally:
        tf_adapter.set_strict(False)
    assert "NPU" in got.device and "CPU" in want.device
    counts = tf_adapter.kernel_counts()
    assert counts.get("Conv2D", 0) + counts.get("MatMul", 0) + counts.get("BatchMatMulV2", 0) + counts.get("Einsum", 0) > 0, counts
    compare(got, want, policy)


def fit_losses(model, x, y, device, steps):
    with tf.device(device):
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, batch_size=len(x), epochs=steps, shuffle=False, verbose=0)
    return history.history["loss"]


@pytest.mark.parametrize("name", ["cnn", "bert_encoder"])
def test_fit_in_strict_mode_matches_cpu(policy, name):
    cpu, npu = twins(name)
    x = example(name, cpu, batch=8)
    y = np.arange(8) % int(cpu.outputs[0].shape[-1])
    want = fit_losses(cpu, x, y, "/CPU:0", 4)
    tf_adapter.reset_kernel_counts()
    tf_adapter.set_strict(True)
    try:
        got = fit_losses(npu, x, y, "/NPU:0", 4)
    finally:
        tf_adapter.set_strict(False)
    counts = tf_adapter.kernel_counts()
    if policy == "mixed_float16":
        # compile() wrapped SGD in a LossScaleOptimizer: its finiteness check ran on the NPU.
        assert isinstance(npu.optimizer, keras.optimizers.LossScaleOptimizer)
        assert counts.get("IsFinite", 0) > 0, counts
        if name == "bert_encoder":  # isfinite of the embedding's IndexedSlices gradient
            assert counts.get("TensorScatterUpdate", 0) > 0, counts
        assert float(npu.optimizer.dynamic_scale.numpy()) == float(cpu.optimizer.dynamic_scale.numpy())
    assert all(np.isfinite(got)), got
    assert got[-1] < got[0], got
    rel_tol = TOL[policy][0]
    np.testing.assert_allclose(got, want, rtol=rel_tol)
    for w_npu, w_cpu in zip(npu.trainable_weights, cpu.trainable_weights):
        np.testing.assert_allclose(w_npu.numpy(), w_cpu.numpy(), rtol=rel_tol, atol=rel_tol * 1e-1)


def test_train_step_graph_fully_on_npu(policy):
    """The whole train step fit() runs (forward, backward, loss scaling,
    update) has NPU kernels, as the coverage report sees it."""
    from tf_adapter.coverage import graph_nodes

    with tf.device("/NPU:0"):
        model = build("bert_encoder")
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.optimizer.build(model.trainable_variables)
        x = tf.constant(example("bert_encoder", model))
        y = tf.constant([1, 2])
        step = tf.function(lambda a, b: model.train_step((a, b)))
        report = tf_adapter.coverage(step, x, y)
        graph = step.get_concrete_function(x, y).graph.as_graph_def()
    assert report.fully_on_npu, report
    ops = {o.op_type for o in report.on_npu}
    if policy == "mixed_float16":
        assert {"IsFinite", "All", "TensorScatterUpdate"} <= ops, ops
        # the finite/non-finite cond: TensorFlow's DEVICE_DEFAULT If kernel
        assert {"If", "StatelessIf"} & {n.op for n in graph_nodes(graph)}


# ------------------------------------------------------------- warnings ----


@pytest.fixture
def fp16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    _keras._precision["warned"] = False
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")
        _keras._precision["warned"] = False


def custom_step(model, optimizer, x, y, scale):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            scaled = optimizer.scale_loss(loss) if scale else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step(x, y)


def dense_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, dtype="float32")])


def test_fp16_custom_loop_without_loss_scaling_warns_once(fp16, strict):
    x, y = np.ones((4, 4), np.float32), np.array([0, 1, 2, 0])
    with tf.device("/NPU:0"):
        model, opt = dense_model(), keras.optimizers.SGD(0.01)
        assert _keras.loss_scaling_missing(opt)
        with pytest.warns(tf_adapter.PrecisionWarning, match="LossScaleOptimizer"):
            custom_step(model, opt, x, y, scale=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", tf_adapter.PrecisionWarning)
            custom_step(model, keras.optimizers.SGD(0.01), x, y, scale=False)  # once only
    assert issubclass(tf_adapter.PrecisionWarning, UserWarning)


def test_fp16_custom_loop_with_loss_scaling_does_not_warn(fp16, strict):
    x, y = np.ones((4, 4), np.float32), np.array([0, 1, 2, 0])
    with tf.device("/NPU:0"):
        model = dense_model()
        opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01))
        assert not _keras.loss_scaling_missing(opt)
        assert not _keras.loss_scaling_missing(opt.inner_optimizer)
        with warnings.catch_warnings():
            warnings.simplefilter("error", tf_adapter.PrecisionWarning)
            loss = custom_step(model, opt, x, y, scale=True)
            # compile() wraps the optimizer itself: fit does not warn either.
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
            model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(loss.numpy())
    assert not _keras._precision["warned"]


def test_loss_scale_optimizer_skips_an_overflowing_step_on_the_npu(fp16, strict):
    """float16 gradients that overflow take the LossScaleOptimizer's other
    branch, in strict mode too: no update, the loss scale halves."""
    x, y = np.full((4, 4), 300.0, np.float32), np.array([0, 1, 2, 0])
    with tf.device("/NPU:0"):
        model = dense_model()
        opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01), initial_scale=2.0**15)
        opt.build(model.trainable_variables)
        before = [w.numpy() for w in model.trainable_weights]
        tf_adapter.reset_kernel_counts()
        custom_step(model, opt, x, y, scale=True)
    assert tf_adapter.kernel_counts().get("IsFinite", 0) > 0
    assert float(opt.dynamic_scale.numpy()) == 2.0**14
    for b, w in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(w.numpy(), b)


def test_no_warning_outside_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert not _keras.loss_scaling_missing(keras.optimizers.SGD(0.01))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert not _keras.loss_scaling_missing(keras.optimizers.SGD(0.01))


# ------------------------------------------- ops the policies brought in ----


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.float16, tf.bfloat16])
@pytest.mark.parametrize("op", [tf.math.is_finite, tf.math.is_nan, tf.math.is_inf])
def test_float_classification_matches_cpu(op, dtype, strict):
    v = np.array([0.0, -1.5, 3e38, np.inf, -np.inf, np.nan, 1e-45, 7.0], np.float64)
    x = tf.cast(tf.constant(np.tile(v, 5000).reshape(5, 8000)), dtype)  # large: the parallel path too
    with tf.device("/CPU:0"):
        want = op(x)
    tf_adapter.reset_kernel_counts()
    with tf.device("/NPU:0"):
        got = op(x)
    assert "NPU" in got.device and sum(tf_adapter.kernel_counts().values()) == 1
    np.testing.assert_array_equal(got.numpy(), want.numpy())


SCATTERS = {
    "update": tf.tensor_scatter_nd_update,
    "add": tf.tensor_scatter_nd_add,
    "sub": tf.tensor_scatter_nd_sub,
}


SCATTER_CASES = [(k, d) for k in sorted(SCATTERS) for d in (tf.float32, tf.float16, tf.bfloat16, tf.int32, tf.int64, tf.uint8)]
SCATTER_CASES.append(("update", tf.bool))  # TensorFlow has no bool TensorScatterAdd/Sub


@pytest.mark.parametrize("kind,dtype", SCATTER_CASES)
@pytest.mark.parametrize("index_dtype", [tf.int32, tf.int64])
def test_tensor_scatter_matches_cpu(kind, dtype, index_dtype, strict, rng):
    op = SCATTERS[kind]

    def cast(a):
        return tf.constant(a > 0) if dtype == tf.bool else tf.cast(tf.constant(a), dtype)

    tensor = cast(rng.integers(-4, 5, (5, 3, 4)).astype(np.float64))
    cases = [
        # rows, repeated (order matters: last wins / sums in order)
        (np.array([[4], [0], [4]]), rng.integers(-4, 5, (3, 3, 4))),
        # single elements of a 3-D tensor
        (np.array([[1, 2, 3], [0, 0, 0], [1, 2, 3]]), rng.integers(-4, 5, (3,))),
        # batched index grid [2, 2] of (i, j) pairs
        (np.array([[[0, 1], [2, 2]], [[4, 0], [0, 1]]]), rng.integers(-4, 5, (2, 2, 4))),
    ]
    for idx, upd in cases:
        i, u = tf.constant(idx, index_dtype), cast(upd.astype(np.float64))
        with tf.device("/CPU:0"):
            want = op(tensor, i, u)
        tf_adapter.reset_kernel_counts()
        with tf.device("/NPU:0"):
            got = op(tensor, i, u)
        assert "NPU" in got.device
        if dtype != tf.int32:  # int32 runs in host memory, counted all the same
            assert sum(tf_adapter.kernel_counts().values()) == 1, tf_adapter.kernel_counts()
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_tensor_scatter_errors_match_cpu(strict):
    tensor = tf.zeros([4, 2])
    for idx, upd in [([[1], [4]], tf.ones([2, 2])), ([[-1]], tf.ones([1, 2])), ([[0]], tf.ones([1, 3]))]:
        msgs = []
        for dev in ("/CPU:0", "/NPU:0"):
            with tf.device(dev), pytest.raises(tf.errors.InvalidArgumentError) as e:
                tf.tensor_scatter_nd_update(tensor, tf.constant(idx), upd)
            # "{{function_node ..._device_/...CPU:0}} indices[1] = ..." -> the kernel's message
            msgs.append(e.value.message.split("}} ")[-1].split(" [Op:")[0])
        assert msgs[0] == msgs[1], msgs
