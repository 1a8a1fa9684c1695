"""Image resizing against TensorFlow CPU: ResizeBilinear,
ResizeNearestNeighbor and their gradients, every align_corners /
half_pixel_centers combination TensorFlow accepts, up and down, float types;
and Keras Resizing / UpSampling2D training strictly on the NPU."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import on, random_tensor, twin_models

R = tf.raw_ops
MODES = [dict(align_corners=False, half_pixel_centers=False), dict(align_corners=True, half_pixel_centers=False),
         dict(align_corners=False, half_pixel_centers=True)]


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.float16, tf.bfloat16])
@pytest.mark.parametrize("op", ["ResizeBilinear", "ResizeNearestNeighbor"])
def test_resize_random(op, dtype, rng):
    for _ in range(6):
        n, h, w, c = (int(v) for v in rng.integers(1, 6, size=4))
        size = [int(v) for v in rng.integers(1, 9, size=2)]
        mode = MODES[int(rng.integers(len(MODES)))]
        x = random_tensor(rng, [n, h, w, c], dtype)
        call = lambda: getattr(R, op)(images=x, size=size, **mode)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        got = on("/NPU:0", call)
        assert tf_adapter.kernel_counts().get(op) == 1
        want = on("/CPU:0", call)
        assert got.dtype == want.dtype and got.shape == want.shape
        tol = {tf.float32: 1e-5, tf.float64: 1e-5, tf.float16: 1e-5, tf.bfloat16: 1e-5}[dtype]
        np.testing.assert_allclose(got.numpy().astype(np.float64), want.numpy().astype(np.float64), rtol=tol, atol=tol,
                                   err_msg=f"{[n, h, w, c]} -> {size} {mode}")


@pytest.mark.parametrize("op", ["ResizeBilinearGrad", "ResizeNearestNeighborGrad"])
def test_resize_gradients_random(op, rng):
    for _ in range(8):
        n, h, w, c = (int(v) for v in rng.integers(1, 6, size=4))
        rh, rw = (int(v) for v in rng.integers(1, 9, size=2))
        mode = MODES[int(rng.integers(len(MODES)))]
        grads = random_tensor(rng, [n, rh, rw, c], tf.float32)
        if op == "ResizeBilinearGrad":
            original = random_tensor(rng, [n, h, w, c], tf.float32)
            call = lambda: R.ResizeBilinearGrad(grads=grads, original_image=original, **mode)  # noqa: E731
        else:
            call = lambda: R.ResizeNearestNeighborGrad(grads=grads, size=[h, w], **mode)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        got = on("/NPU:0", call)
        assert tf_adapter.kernel_counts().get(op) == 1
        np.testing.assert_allclose(got.numpy(), on("/CPU:0", call).numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=f"{[n, rh, rw, c]} -> {[h, w]} {mode}")


def test_resize_argument_checks_match_tensorflow(rng):
    x = random_tensor(rng, [1, 3, 3, 2], tf.float32)
    for kw in (dict(images=x, size=[4, 4], align_corners=True, half_pixel_centers=True),
               dict(images=x[0], size=[4, 4]), dict(images=x, size=[0, 4]), dict(images=x, size=[4, 4, 4]),
               dict(images=x[:, :0], size=[4, 4])):
        for op in ("ResizeBilinear", "ResizeNearestNeighbor"):
            errs = []
            for dev in ("/NPU:0", "/CPU:0"):
                try:
                    on(dev, lambda: getattr(R, op)(**kw))
                    errs.append(None)
                except tf.errors.OpError as e:
                    errs.append(type(e))
            assert errs[0] == errs[1] and errs[0] is not None, (op, kw, errs)


@pytest.mark.parametrize("layer", ["resizing_bilinear", "resizing_nearest", "upsampling_bilinear"])
def test_keras_resizing_layers_train_strictly_on_the_npu(layer, rng):
    import keras

    def build():
        keras.utils.set_random_seed(3)
        inp = keras.Input([6, 7, 3])
        conv = keras.layers.Conv2D(4, 3, padding="same")(inp)
        out = {"resizing_bilinear": keras.layers.Resizing(9, 5),
               "resizing_nearest": keras.layers.Resizing(9, 5, interpolation="nearest"),
               "upsampling_bilinear": keras.layers.UpSampling2D(2, interpolation="bilinear")}[layer](conv)
        return keras.Model(inp, out)

    cpu_model, npu_model = twin_models(build)
    x = tf.constant(rng.normal(size=[2, 6, 7, 3]), tf.float32)

    def run(model, device):
        @tf.function
        def f(x):
            with tf.device(device):
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(tf.square(model(x, training=True)))
                return loss, tape.gradient(loss, model.trainable_variables)

        return f(x)

    tf_adapter.reset_kernel_counts()
    tf.config.set_soft_device_placement(False)
    try:
        loss, grads = run(npu_model, "/NPU:0")
    finally:
        tf.config.set_soft_device_placement(True)
    counts = tf_adapter.kernel_counts()
    assert any(k.startswith("Resize") and k.endswith("Grad") for k in counts), counts
    want_loss, want_grads = run(cpu_model, "/CPU:0")
    np.testing.assert_allclose(loss.numpy(), want_loss.numpy(), rtol=1e-5)
    for a, b in zip(grads, want_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
