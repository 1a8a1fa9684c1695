"""The moves by an index pattern (`families/rearrange.rs`) against TensorFlow
CPU: ReverseV2 (`tf.reverse`), MatrixBandPart (`tf.linalg.band_part`),
SpaceToBatchND/BatchToSpaceND; and what Keras and tf.nn build from them:
recurrent layers with `go_backwards=True` and `Bidirectional`,
`ops.tril`/`ops.triu`, causal attention, dilated convolutions, strictly on
the NPU (soft placement off, device scope inside the function)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import on, random_tensor, twin_models

TYPES = [tf.float32, tf.bfloat16, tf.float16, tf.float64, tf.int32, tf.int64, tf.int8, tf.uint16, tf.bool]


@pytest.mark.parametrize("dtype", TYPES)
def test_reverse_random_shapes_and_axes(dtype, rng):
    for _ in range(12):
        rank = int(rng.integers(1, 7))
        shape = [int(d) for d in rng.choice([0, 1, 1, 2, 3, 5], size=rank, p=[0.05, 0.15, 0.15, 0.25, 0.25, 0.15])]
        picked = rng.permutation(rank)[: int(rng.integers(0, rank + 1))]
        # Some entries counted from the end, as TensorFlow allows.
        axis = [int(a) - (rank if rng.random() < 0.4 else 0) for a in picked]
        x = random_tensor(rng, shape, dtype)
        itype = tf.int64 if rng.random() < 0.5 else tf.int32
        call = lambda: tf.reverse(x, tf.constant(axis, itype))  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", call)
        assert npu.device.endswith("NPU:0")
        assert tf_adapter.kernel_counts().get("ReverseV2") == 1, (shape, axis)
        np.testing.assert_array_equal(npu.numpy(), on("/CPU:0", call).numpy(), err_msg=f"{shape} {axis}")


def test_reverse_large_rows_and_scalar(rng):
    # Parallel paths (more than one chunk of rows), inner dim kept and reversed.
    x = random_tensor(rng, [33, 257, 65], tf.float32)
    for axis in ([0], [1], [2], [0, 2], [0, 1, 2]):
        np.testing.assert_array_equal(on("/NPU:0", tf.reverse, x, axis).numpy(), on("/CPU:0", tf.reverse, x, axis).numpy())
    # A scalar is its own reverse whatever the axis says (as on the CPU).
    s = tf.constant(2.5)
    assert on("/NPU:0", lambda: tf.raw_ops.ReverseV2(tensor=s, axis=[7])).numpy() == 2.5


def recurrent_model(kind, rng):
    import keras
    from keras import layers as L

    cell = {"lstm": L.LSTM, "gru": L.GRU, "simple": L.SimpleRNN}
    keras.utils.set_random_seed(int(rng.integers(1 << 30)))
    inp = keras.Input([7, 5])
    if kind.startswith("bidirectional"):
        merge = kind.split(":")[1]
        out = L.Bidirectional(L.LSTM(6, return_sequences=True), merge_mode=merge)(inp)
    else:
        out = cell[kind](6, go_backwards=True, return_sequences=True)(inp)
    return keras.Model(inp, out)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple", "bidirectional:concat", "bidirectional:sum",
                                  "bidirectional:mul", "bidirectional:ave"])
def test_backwards_and_bidirectional_recurrent_layers_run_forward_on_the_npu(kind, rng):
    # Built with soft placement (the orthogonal initializer's Qr is a host
    # op), run without it.
    cpu_model, npu_model = twin_models(lambda: recurrent_model(kind, rng))
    x = tf.constant(rng.normal(size=[3, 7, 5]), tf.float32)

    def run(model, device):
        @tf.function
        def f(x):
            with tf.device(device):
                return model(x, training=False)

        return f(x)

    tf_adapter.reset_kernel_counts()
    tf.config.set_soft_device_placement(False)
    try:
        got = run(npu_model, "/NPU:0")
    finally:
        tf.config.set_soft_device_placement(True)
    assert got.device.endswith("NPU:0")
    assert tf_adapter.kernel_counts().get("ReverseV2", 0) >= 1, tf_adapter.kernel_counts()
    np.testing.assert_allclose(got.numpy(), run(cpu_model, "/CPU:0").numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.int32, tf.int64, tf.bool, tf.uint8])
def test_band_part_random(dtype, rng):
    for _ in range(10):
        shape = [int(d) for d in rng.integers(0, 5, size=int(rng.integers(2, 5)))]
        rows, cols = shape[-2], shape[-1]
        lower, upper = int(rng.integers(-1, rows + 1)), int(rng.integers(-1, cols + 1))
        x = random_tensor(rng, shape, dtype)
        call = lambda: tf.linalg.band_part(x, lower, upper)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", call)
        assert tf_adapter.kernel_counts().get("MatrixBandPart") == 1, (shape, lower, upper)
        np.testing.assert_array_equal(npu.numpy(), on("/CPU:0", call).numpy(), err_msg=f"{shape} {lower} {upper}")


def test_keras_tril_and_triu_run_strictly_on_the_npu(rng, strict_placement):
    from keras import ops

    x = tf.constant(rng.normal(size=[2, 5, 6]), tf.float32)

    @tf.function
    def f(x):
        with tf.device("/NPU:0"):
            return ops.tril(x, 1), ops.triu(x, -1)

    tf_adapter.reset_kernel_counts()
    lo, up = f(x)
    assert tf_adapter.kernel_counts().get("MatrixBandPart") == 2, tf_adapter.kernel_counts()
    np.testing.assert_array_equal(lo.numpy(), np.tril(x.numpy(), 1))
    np.testing.assert_array_equal(up.numpy(), np.triu(x.numpy(), -1))


def test_causal_attention_trains_strictly_on_the_npu(rng, strict_placement):
    import keras

    keras.utils.set_random_seed(0)

    def build():
        inp = keras.Input([6, 8])
        out = keras.layers.MultiHeadAttention(2, 4)(inp, inp, use_causal_mask=True)
        return keras.Model(inp, out)

    cpu_model, npu_model = twin_models(build)
    x = tf.constant(rng.normal(size=[3, 6, 8]), tf.float32)

    def step(model, device):
        # Unknown sequence length: the causal mask (a MatrixBandPart)
        # cannot be constant-folded away.
        @tf.function(input_signature=[tf.TensorSpec([None, None, 8], tf.float32)])
        def f(x):
            with tf.device(device):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    loss = tf.reduce_sum(model(x, training=True) ** 2)
                return loss, tape.gradient(loss, [x] + model.trainable_variables)

        return f(x)

    tf_adapter.reset_kernel_counts()
    loss, grads = step(npu_model, "/NPU:0")
    assert tf_adapter.kernel_counts().get("MatrixBandPart", 0) >= 1, tf_adapter.kernel_counts()
    want_loss, want_grads = step(cpu_model, "/CPU:0")
    np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-5)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.int64, tf.int32, tf.bool])
def test_space_to_batch_and_back_random(dtype, rng):
    for _ in range(10):
        m = int(rng.integers(1, 4))
        block = [int(b) for b in rng.integers(1, 4, size=m)]
        pads = [[int(p) for p in rng.integers(0, 3, size=2)] for _ in range(m)]
        spatial = []
        for b, (p0, p1) in zip(block, pads):
            # A size whose padded length the block divides.
            spatial.append(int(rng.integers(1, 4)) * b - p0 - p1 if rng.random() < 0.9 else 0)
            if spatial[-1] < 0:
                pads[len(spatial) - 1] = [0, 0]
                spatial[-1] = b * int(rng.integers(1, 3))
        shape = [int(rng.integers(1, 4))] + spatial + [int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3)))]
        x = random_tensor(rng, shape, dtype)
        itype = tf.int64 if rng.random() < 0.5 else tf.int32
        to_batch = lambda: tf.space_to_batch_nd(x, tf.constant(block, itype), tf.constant(pads, itype))  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", to_batch)
        want = on("/CPU:0", to_batch)
        np.testing.assert_array_equal(npu.numpy(), want.numpy(), err_msg=f"{shape} {block} {pads}")
        # Crops of the same size give the input back.
        back = lambda: tf.batch_to_space(want, tf.constant(block, itype), tf.constant(pads, itype))  # noqa: E731
        got = on("/NPU:0", back)
        np.testing.assert_array_equal(got.numpy(), on("/CPU:0", back).numpy())
        np.testing.assert_array_equal(got.numpy(), x.numpy())
        counts = tf_adapter.kernel_counts()
        if any(b > 1 for b in block) or any(p for pp in pads for p in pp):
            assert counts.get("SpaceToBatchND", 0) >= 1 and counts.get("BatchToSpaceND", 0) >= 1, (shape, block, pads, counts)


def test_dilated_convolution_trains_strictly_on_the_npu(rng, strict_placement):
    # tf.nn.conv2d with dilations > 1 runs natively; tf.nn.atrous_conv2d and
    # Keras's dilated Conv1D go through SpaceToBatchND/BatchToSpaceND.
    x = tf.constant(rng.normal(size=[2, 9, 11, 3]), tf.float32)
    f = tf.constant(rng.normal(size=[3, 3, 3, 4]), tf.float32)

    def run(device):
        @tf.function
        def step(x, f):
            with tf.device(device):
                with tf.GradientTape() as tape:
                    tape.watch([x, f])
                    y = tf.nn.atrous_conv2d(x, f, rate=2, padding="SAME")
                    loss = tf.reduce_sum(y * y)
                return y, tape.gradient(loss, [x, f])

        return step(x, f)

    tf_adapter.reset_kernel_counts()
    y, grads = run("/NPU:0")
    counts = tf_adapter.kernel_counts()
    assert counts.get("SpaceToBatchND", 0) >= 1 and counts.get("BatchToSpaceND", 0) >= 1, counts
    want_y, want_grads = run("/CPU:0")
    np.testing.assert_allclose(y.numpy(), want_y.numpy(), rtol=1e-4, atol=1e-4)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-3)
