"""Keras 3's layer catalogue on the NPU, one layer configuration at a time.

Each entry of CATALOGUE is one layer (or a few, e.g. a merge of two inputs)
alone in a small functional model. The test builds it twice with the same
weights (CPU and NPU:0), then runs, strictly on the NPU (soft placement off,
device scope inside the tf.function):

* the forward pass in inference mode and in training mode, and
* the gradients of a loss (half the sum of squared outputs) with respect to
  the float inputs and every trainable weight,

and compares every tensor with TensorFlow CPU (float32, 1e-4 relative).

Entries the NPU cannot run yet carry `gap=` (the op that stops them, and why):
they are expected to fail and are the "not covered" list the README links.
The marks are strict: an entry that starts passing fails the run until its
mark is removed, so the counts stay true. Layers that draw random numbers in
training (Dropout, GaussianNoise, the Random* augmentations) are left out:
the two devices draw different streams, so there is nothing to compare.
"""

import dataclasses
from typing import Callable, Optional

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import twin_models

keras = pytest.importorskip("keras")
L = keras.layers


@dataclasses.dataclass
class Entry:
    """One configuration: `make(inputs)` returns the outputs for a list of
    keras.Input built from `shapes` (per-example shapes); `ints` gives the
    exclusive upper bound of integer inputs (None: float inputs)."""

    name: str
    make: Callable
    shapes: list
    ints: Optional[int] = None
    gap: Optional[str] = None
    backward: bool = True
    # The CPU model's make where TensorFlow CPU cannot run the layer itself
    # on every machine (None: `make`).
    reference: Optional[Callable] = None


def one(layer_fn, *shapes, reference=None, **kw):
    """An entry whose make applies one layer to its single input
    (`reference`: the layer the CPU model uses instead)."""
    ref_make = (lambda i: reference()(i[0])) if reference else None
    return lambda name: Entry(name, lambda i: layer_fn()(i[0]), list(shapes) or [[6, 4]], reference=ref_make, **kw)


def merge(layer_fn, **kw):
    return lambda name: Entry(name, lambda i: layer_fn()([i[0], i[1]]), [[5, 4], [5, 4]], **kw)


def act(fn, shape=(6, 4), **kw):
    return one(lambda: L.Activation(fn), list(shape), **kw)


SEQ, IMG, VOL = [8, 3], [7, 7, 3], [5, 5, 5, 2]


class ZerosInsertedConv2DTranspose(L.Conv2DTranspose):
    """A dilated Conv2DTranspose computed as an undilated one whose kernel has
    dilation-1 zeros between taps: the same function, with the same variables
    (the zeros are inserted by a differentiable einsum, exact in float32).
    The CPU reference uses it because TensorFlow's CPU kernel refuses
    dilations > 1 where oneDNN is off (e.g. on AMD CPUs)."""

    def call(self, inputs):
        kh, kw = self.kernel.shape[:2]
        dh, dw = self.dilation_rate
        rows = np.eye((kh - 1) * dh + 1, kh * dh, dtype="float32")[:, ::dh]  # rows[i * dh, i] = 1
        cols = np.eye((kw - 1) * dw + 1, kw * dw, dtype="float32")[:, ::dw]
        kernel = tf.einsum("ai,bj,ijoc->aboc", rows, cols, self.kernel)
        outputs = keras.ops.conv_transpose(inputs, kernel, strides=list(self.strides), padding=self.padding,
                                           output_padding=self.output_padding, data_format=self.data_format)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs

_SPECS = {
    # Core.
    "Dense relu": one(lambda: L.Dense(5, activation="relu"), [6]),
    "Dense no bias on 3-D": one(lambda: L.Dense(5, use_bias=False), [4, 6]),
    "EinsumDense": one(lambda: L.EinsumDense("abc,cd->abd", output_shape=(None, 5), bias_axes="d"), [4, 6]),
    "Embedding": lambda n: Entry(n, lambda i: L.Embedding(20, 4)(i[0]), [[5]], ints=20),
    "Masking + LSTM": one(lambda: keras.Sequential([L.Masking(0.0), L.LSTM(4)]), SEQ),
    # Convolution.
    "Conv1D same": one(lambda: L.Conv1D(4, 3, padding="same"), SEQ),
    "Conv1D strided": one(lambda: L.Conv1D(4, 3, strides=2), SEQ),
    "Conv1D dilated": one(lambda: L.Conv1D(4, 3, dilation_rate=2), SEQ),
    "Conv1D causal": one(lambda: L.Conv1D(4, 3, padding="causal"), SEQ),
    "Conv1D grouped": one(lambda: L.Conv1D(4, 3, groups=2), [8, 4]),
    "Conv2D same": one(lambda: L.Conv2D(4, 3, padding="same"), IMG),
    "Conv2D strided": one(lambda: L.Conv2D(4, 3, strides=2), IMG),
    "Conv2D dilated": one(lambda: L.Conv2D(4, 3, dilation_rate=2), IMG),
    "Conv2D grouped": one(lambda: L.Conv2D(4, 3, groups=2), [7, 7, 4]),
    "Conv3D": one(lambda: L.Conv3D(3, 2), VOL),
    "Conv3D strided same": one(lambda: L.Conv3D(3, 3, strides=2, padding="same"), VOL),
    "Conv3D dilated": one(lambda: L.Conv3D(2, 2, dilation_rate=2), VOL),
    "Conv1DTranspose": one(lambda: L.Conv1DTranspose(3, 3, strides=2), SEQ),
    "Conv2DTranspose": one(lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same"), IMG),
    "Conv2DTranspose dilated": one(lambda: L.Conv2DTranspose(3, 3, dilation_rate=2), IMG,
                                   reference=lambda: ZerosInsertedConv2DTranspose(3, 3, dilation_rate=2)),
    "Conv3DTranspose": one(lambda: L.Conv3DTranspose(2, 2, strides=2), VOL),
    "Conv3DTranspose same": one(lambda: L.Conv3DTranspose(2, 3, strides=(1, 2, 2), padding="same"), VOL),
    "SeparableConv1D": one(lambda: L.SeparableConv1D(4, 3, depth_multiplier=2), SEQ),
    "SeparableConv2D": one(lambda: L.SeparableConv2D(4, 3, padding="same"), IMG),
    "SeparableConv2D dilated": one(lambda: L.SeparableConv2D(4, 3, dilation_rate=2), IMG),
    "DepthwiseConv1D": one(lambda: L.DepthwiseConv1D(3, depth_multiplier=2), SEQ),
    "DepthwiseConv2D": one(lambda: L.DepthwiseConv2D(3, strides=2, padding="same"), IMG),
    "DepthwiseConv2D dilated": one(lambda: L.DepthwiseConv2D(3, dilation_rate=2), IMG),
    # Pooling.
    "MaxPooling1D": one(lambda: L.MaxPooling1D(2), SEQ),
    "MaxPooling2D same": one(lambda: L.MaxPooling2D(3, strides=2, padding="same"), IMG),
    "MaxPooling3D": one(lambda: L.MaxPooling3D(2), VOL),
    "MaxPooling3D same": one(lambda: L.MaxPooling3D(3, strides=2, padding="same"), VOL),
    "AveragePooling1D same": one(lambda: L.AveragePooling1D(3, strides=2, padding="same"), SEQ),
    "AveragePooling2D": one(lambda: L.AveragePooling2D(2), IMG),
    "AveragePooling3D": one(lambda: L.AveragePooling3D(2), VOL),
    "AveragePooling3D same": one(lambda: L.AveragePooling3D(3, strides=2, padding="same"), VOL),
    "GlobalMaxPooling1D": one(lambda: L.GlobalMaxPooling1D(), SEQ),
    "GlobalMaxPooling2D": one(lambda: L.GlobalMaxPooling2D(), IMG),
    "GlobalMaxPooling3D": one(lambda: L.GlobalMaxPooling3D(), VOL),
    "GlobalAveragePooling1D": one(lambda: L.GlobalAveragePooling1D(), SEQ),
    "GlobalAveragePooling2D keepdims": one(lambda: L.GlobalAveragePooling2D(keepdims=True), IMG),
    "GlobalAveragePooling3D": one(lambda: L.GlobalAveragePooling3D(), VOL),
    "AdaptiveAveragePooling1D": one(lambda: L.AdaptiveAveragePooling1D(3), SEQ),
    "AdaptiveAveragePooling2D": one(lambda: L.AdaptiveAveragePooling2D((3, 2)), IMG),
    "AdaptiveMaxPooling2D": one(lambda: L.AdaptiveMaxPooling2D((3, 2)), IMG),
    "AdaptiveAveragePooling3D": one(lambda: L.AdaptiveAveragePooling3D(2), VOL),
    "AdaptiveMaxPooling3D": one(lambda: L.AdaptiveMaxPooling3D((2, 3, 2)), VOL),
    # Normalisation.
    "BatchNormalization 4-D": one(lambda: L.BatchNormalization(), IMG),
    "BatchNormalization 2-D": one(lambda: L.BatchNormalization(), [6]),
    "LayerNormalization": one(lambda: L.LayerNormalization(), [5, 6]),
    "LayerNormalization two axes": one(lambda: L.LayerNormalization(axis=[1, 2]), [5, 6]),
    "GroupNormalization": one(lambda: L.GroupNormalization(groups=2), [5, 4]),
    "UnitNormalization": one(lambda: L.UnitNormalization(), [5, 6]),
    "RMSNormalization": one(lambda: L.RMSNormalization(), [5, 6]),
    "SpectralNormalization": one(lambda: L.SpectralNormalization(L.Dense(4)), [6]),
    "Normalization": one(lambda: L.Normalization(mean=0.5, variance=2.0), [6]),
    # Activation layers.
    "ReLU": one(lambda: L.ReLU(), [6]),
    "ReLU max_value slope threshold": one(lambda: L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.3), [6]),
    "LeakyReLU": one(lambda: L.LeakyReLU(0.2), [6]),
    "PReLU": one(lambda: L.PReLU(), [6]),
    "ELU": one(lambda: L.ELU(0.5), [6]),
    "Softmax last axis": one(lambda: L.Softmax(), [5, 6]),
    "Softmax axis 1": one(lambda: L.Softmax(axis=1), [5, 6]),
    # Attention.
    "Attention": lambda n: Entry(n, lambda i: L.Attention()([i[0], i[1]]), [[5, 4], [6, 4]]),
    "AdditiveAttention": lambda n: Entry(n, lambda i: L.AdditiveAttention()([i[0], i[1]]), [[5, 4], [6, 4]]),
    "MultiHeadAttention": lambda n: Entry(n, lambda i: L.MultiHeadAttention(2, 4)(i[0], i[1]), [[5, 8], [6, 8]]),
    "MultiHeadAttention causal": lambda n: Entry(
        n, lambda i: L.MultiHeadAttention(2, 4)(i[0], i[0], use_causal_mask=True), [[5, 8]]),
    "GroupQueryAttention": lambda n: Entry(
        n, lambda i: L.GroupQueryAttention(4, 4, 2)(i[0], i[1]), [[5, 8], [6, 8]]),
    # Recurrent.
    "SimpleRNN": one(lambda: L.SimpleRNN(4), SEQ),
    "LSTM sequences": one(lambda: L.LSTM(4, return_sequences=True), SEQ),
    "LSTM go_backwards": one(lambda: L.LSTM(4, go_backwards=True), SEQ),
    "LSTM return_state": lambda n: Entry(n, lambda i: L.LSTM(4, return_state=True)(i[0]), [SEQ]),
    "GRU reset_after": one(lambda: L.GRU(4), SEQ),
    "GRU reset_before": one(lambda: L.GRU(4, reset_after=False), SEQ),
    "Bidirectional LSTM concat": one(lambda: L.Bidirectional(L.LSTM(4)), SEQ),
    "Bidirectional GRU sum": one(lambda: L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum"), SEQ),
    "StackedRNNCells": one(lambda: L.RNN(L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)])), SEQ),
    "ConvLSTM1D": one(lambda: L.ConvLSTM1D(3, 3, padding="same"), [4, 6, 2]),
    "ConvLSTM2D": one(lambda: L.ConvLSTM2D(2, 3), [3, 5, 5, 2]),
    "TimeDistributed Dense": one(lambda: L.TimeDistributed(L.Dense(3)), [4, 5]),
    # Merging.
    "Add": merge(L.Add),
    "Subtract": merge(L.Subtract),
    "Multiply": merge(L.Multiply),
    "Average": merge(L.Average),
    "Maximum": merge(L.Maximum),
    "Minimum": merge(L.Minimum),
    "Concatenate": merge(lambda: L.Concatenate(axis=1)),
    "Dot": merge(lambda: L.Dot(axes=2)),
    # Reshaping.
    "Cropping1D": one(lambda: L.Cropping1D((1, 2)), SEQ),
    "Cropping2D": one(lambda: L.Cropping2D(((1, 0), (2, 1))), IMG),
    "Cropping3D": one(lambda: L.Cropping3D(1), VOL),
    "ZeroPadding1D": one(lambda: L.ZeroPadding1D(2), SEQ),
    "ZeroPadding2D": one(lambda: L.ZeroPadding2D(((1, 0), (2, 1))), IMG),
    "ZeroPadding3D": one(lambda: L.ZeroPadding3D(1), VOL),
    "UpSampling1D": one(lambda: L.UpSampling1D(2), SEQ),
    "UpSampling2D nearest": one(lambda: L.UpSampling2D(2), IMG),
    "UpSampling2D bilinear": one(lambda: L.UpSampling2D(2, interpolation="bilinear"), IMG),
    "UpSampling2D bicubic": one(lambda: L.UpSampling2D(2, interpolation="bicubic"), IMG),
    "UpSampling3D": one(lambda: L.UpSampling3D(2), VOL),
    "Permute": one(lambda: L.Permute((2, 1)), [5, 6]),
    "RepeatVector": one(lambda: L.RepeatVector(3), [6]),
    "Flatten": one(lambda: L.Flatten(), IMG),
    "Reshape": one(lambda: L.Reshape((3, -1)), [4, 6]),
    # Image preprocessing that is part of the model.
    "Resizing bilinear": one(lambda: L.Resizing(5, 9), IMG),
    "Resizing nearest": one(lambda: L.Resizing(5, 9, interpolation="nearest"), IMG),
    "Resizing bicubic": one(lambda: L.Resizing(5, 9, interpolation="bicubic"), IMG),
    # TensorFlow registers no gradient for ResizeArea: forward only.
    "Resizing area": one(lambda: L.Resizing(5, 4, interpolation="area"), IMG, backward=False),
    "Resizing bicubic downscale": one(lambda: L.Resizing(4, 3, interpolation="bicubic"), IMG),
    "Resizing lanczos3": one(lambda: L.Resizing(5, 9, interpolation="lanczos3"), IMG),
    "Resizing lanczos5": one(lambda: L.Resizing(5, 9, interpolation="lanczos5"), IMG),
    "Resizing lanczos3 antialias": one(lambda: L.Resizing(4, 3, interpolation="lanczos3", antialias=True), IMG),
    "CenterCrop": one(lambda: L.CenterCrop(4, 5), IMG),
    "Rescaling": one(lambda: L.Rescaling(1 / 255.0, offset=-0.5), IMG),
    "CategoryEncoding": lambda n: Entry(n, lambda i: L.CategoryEncoding(8, output_mode="count")(i[0]), [[5]], ints=8),
    "CategoryEncoding multi_hot": lambda n: Entry(n, lambda i: L.CategoryEncoding(6, output_mode="multi_hot")(i[0]), [[5]], ints=6),
    "CategoryEncoding one_hot": lambda n: Entry(n, lambda i: L.CategoryEncoding(6, output_mode="one_hot")(i[0]), [[1]], ints=6),
    # Audio.
    "MelSpectrogram": one(lambda: L.MelSpectrogram(fft_length=64, sequence_stride=16, num_mel_bins=8), [256]),
    "MelSpectrogram power": one(lambda: L.MelSpectrogram(fft_length=32, sequence_stride=8, num_mel_bins=6, power_to_db=False), [96]),
    "STFTSpectrogram magnitude": one(lambda: L.STFTSpectrogram(mode="magnitude", frame_length=32, frame_step=8, fft_length=32), [128, 1]),
    "STFTSpectrogram": one(lambda: L.STFTSpectrogram(frame_length=32, frame_step=16), [128, 1]),
}

# Every activation of keras.activations (glu halves an even last axis;
# threshold needs arguments, given through a lambda).
_ACTIVATIONS = ["celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_tanh",
                "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid",
                "silu", "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax",
                "squareplus", "tanh", "tanh_shrink"]
for _a in _ACTIVATIONS:
    _SPECS[f"activation {_a}"] = act(_a)
_SPECS["activation gelu approximate"] = act(lambda x: keras.activations.gelu(x, approximate=True))
_SPECS["activation threshold"] = act(lambda x: keras.activations.threshold(x, 0.2, -1.0))

# What the NPU cannot run yet, with the op that stops it (strict mode names
# it). Keep in step with README "Keras layer catalogue".
GAPS = {
}

CATALOGUE = [spec(name) for name, spec in _SPECS.items()]
for _e in CATALOGUE:
    _e.gap = GAPS.get(_e.name)


def build(entry, seed, reference=False):
    keras.utils.set_random_seed(seed)
    inputs = [keras.Input(s, dtype="int32" if entry.ints else "float32") for s in entry.shapes]
    make = entry.reference if reference and entry.reference else entry.make
    return keras.Model(inputs, make(inputs))


def example(entry, rng, batch=3):
    if entry.ints:
        return [tf.constant(rng.integers(0, entry.ints, size=[batch] + s), tf.int32) for s in entry.shapes]
    return [tf.constant(rng.normal(size=[batch] + s), tf.float32) for s in entry.shapes]


def run(model, device, xs, backward=True):
    @tf.function
    def f(*xs):
        with tf.device(device):
            y_inf = tf.nest.flatten(model(list(xs), training=False))
            with tf.GradientTape() as tape:
                tape.watch([x for x in xs if x.dtype.is_floating])
                y = tf.nest.flatten(model(list(xs), training=True))
                loss = tf.add_n([tf.reduce_sum(tf.square(t)) for t in y if t.dtype.is_floating]) / 2
            wrt = [x for x in xs if x.dtype.is_floating] + model.trainable_variables
            grads = tape.gradient(loss, wrt) if wrt and backward else []
            # Embedding gradients are IndexedSlices: compare them dense.
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
            return y_inf, y, grads

    return f(*xs)


def close(got, want, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize(
    "entry",
    [pytest.param(e, id=e.name, marks=[pytest.mark.xfail(strict=True, raises=tf.errors.InvalidArgumentError, reason=e.gap)] if e.gap else []) for e in CATALOGUE],
)
def test_layer_forward_and_backward_strictly_on_the_npu(entry, rng):
    # Built with soft placement (initializers such as the orthogonal one use
    # host-only ops), run without it.
    cpu_model, npu_model = twin_models(lambda: build(entry, 7), cpu_build=lambda: build(entry, 7, reference=True))
    xs = example(entry, rng)
    tf.config.set_soft_device_placement(False)
    try:
        got = run(npu_model, "/NPU:0", xs, entry.backward)
    finally:
        tf.config.set_soft_device_placement(True)
    # (Some entries compute nothing, e.g. the linear activation's gradient
    # folds to the input itself: the results' placement is the proof.)
    for t in tf.nest.flatten(got):
        assert t is None or t.device.endswith("NPU:0"), t.device
    want = run(cpu_model, "/CPU:0", xs, entry.backward)
    for part, g, w in zip(("inference output", "training output", "gradient"), got, want):
        assert len(g) == len(w), part
        for k, (a, b) in enumerate(zip(g, w)):
            if b is None:
                assert a is None, f"{part} {k}"
                continue
            close(a.numpy(), b.numpy(), f"{entry.name}: {part} {k}")


def test_catalogue_counts_are_the_readme_s():
    # The README states how many configurations the catalogue has and how
    # many run fully on the NPU; this keeps both true.
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    total, gaps = len(CATALOGUE), len(GAPS)
    assert all(name in _SPECS for name in GAPS), [n for n in GAPS if n not in _SPECS]
    phrase = f"{total - gaps} of the {total} layer configurations"
    assert phrase in readme, f"README should say: {phrase}"
