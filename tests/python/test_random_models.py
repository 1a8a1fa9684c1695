"""Random Keras models on the NPU: stacks of 2-6 random layers (convolutions
of every kind with random kernels, strides, dilations, groups and
activations, normalisations, pooling, residual and squeeze-excite blocks,
concatenations, resizing, padding; or Dense, attention, Conv1D, recurrent
and normalisation layers over sequences), so the graph passes (fusion,
transpose folding, loop hoisting) meet layer combinations no hand-written
test has. Each model runs strictly on the NPU (soft placement off) in
inference and training mode with the gradients of every input and weight,
and is compared with the same model on TensorFlow CPU (the keras catalogue's
harness). A scratch fuzzer ran 200 such models per scale without a
difference; these seeds keep a sample in the suite.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import twin_models

keras = pytest.importorskip("keras")
import test_keras_catalogue as catalogue  # noqa: E402

L = keras.layers

ACTS = ["relu", "relu6", "gelu", "swish", "tanh", "sigmoid", "elu", "selu", "softplus", "hard_sigmoid",
        "leaky_relu", "linear", "softsign", "mish", "hard_swish", "silu"]


def img_block(rng, x, desc):
    k = rng.choice(["conv", "dw", "sep", "bn", "ln", "pool", "act", "res", "cat", "up", "pad", "crop", "convt", "mul", "gn", "drop"])
    c = x.shape[-1]
    h, w = x.shape[1], x.shape[2]
    act = str(rng.choice(ACTS)) if rng.random() < 0.5 else None
    if k == "conv":
        ks = int(rng.integers(1, 4))
        st = int(rng.integers(1, 3)) if min(h, w) > 3 else 1
        dil = int(rng.integers(1, 3)) if st == 1 and rng.random() < 0.3 else 1
        pad = str(rng.choice(["same", "valid"])) if min(h, w) >= (ks - 1) * dil + 2 else "same"
        f = int(rng.integers(1, 17))
        g = 1
        if rng.random() < 0.2 and c % 2 == 0 and f % 2 == 0:
            g = 2
        desc.append(f"conv(k{ks},s{st},d{dil},{pad},f{f},g{g},{act})")
        return L.Conv2D(f, ks, strides=st, dilation_rate=dil, padding=pad, groups=g, activation=act,
                        use_bias=bool(rng.random() < 0.7))(x)
    if k == "dw":
        ks = int(rng.integers(1, 4))
        st = int(rng.integers(1, 3)) if min(h, w) > 3 else 1
        m = int(rng.integers(1, 3))
        desc.append(f"dw(k{ks},s{st},m{m},{act})")
        return L.DepthwiseConv2D(ks, strides=st, padding="same", depth_multiplier=m, activation=act)(x)
    if k == "sep":
        ks = int(rng.integers(1, 4))
        f = int(rng.integers(1, 13))
        desc.append(f"sep(k{ks},f{f},{act})")
        return L.SeparableConv2D(f, ks, padding="same", activation=act)(x)
    if k == "convt":
        ks = int(rng.integers(1, 4))
        st = int(rng.integers(1, 3))
        f = int(rng.integers(1, 9))
        if h * st > 24:
            st = 1
        desc.append(f"convt(k{ks},s{st},f{f})")
        return L.Conv2DTranspose(f, ks, strides=st, padding=str(rng.choice(["same", "valid"])), activation=act)(x)
    if k == "bn":
        desc.append("bn")
        return L.BatchNormalization(momentum=0.5, epsilon=float(rng.choice([1e-3, 1e-5])),
                                    center=bool(rng.random() < 0.8), scale=bool(rng.random() < 0.8))(x)
    if k == "ln":
        ax = [-1] if rng.random() < 0.6 else [1, 2, 3]
        desc.append(f"ln{ax}")
        return L.LayerNormalization(axis=ax)(x)
    if k == "gn":
        g = 1 if c % 2 else 2
        desc.append(f"gn{g}")
        return L.GroupNormalization(groups=g)(x)
    if k == "pool":
        t = rng.choice(["max", "avg"])
        ps = int(rng.integers(1, 4))
        st = int(rng.integers(1, 3))
        pad = "same" if min(h, w) < ps + 1 else str(rng.choice(["same", "valid"]))
        desc.append(f"{t}pool(p{ps},s{st},{pad})")
        P = L.MaxPooling2D if t == "max" else L.AveragePooling2D
        return P(ps, strides=st, padding=pad)(x)
    if k == "act":
        a = str(rng.choice(ACTS))
        desc.append(f"act({a})")
        return L.Activation(a)(x)
    if k == "res":
        y = L.Conv2D(c, int(rng.integers(1, 4)), padding="same")(x)
        y = L.BatchNormalization()(y) if rng.random() < 0.5 else y
        y = L.Activation(str(rng.choice(["relu", "swish", "gelu"])))(y)
        desc.append("res")
        return L.Add()([x, y]) if rng.random() < 0.7 else L.Subtract()([x, y])
    if k == "cat":
        y = L.Conv2D(int(rng.integers(1, 9)), 1, activation=act)(x)
        desc.append("cat")
        return L.Concatenate(axis=-1)([x, y])
    if k == "mul":  # squeeze-excite
        s = L.GlobalAveragePooling2D(keepdims=True)(x)
        s = L.Conv2D(max(1, c // 2), 1, activation="relu")(s)
        s = L.Conv2D(c, 1, activation="sigmoid")(s)
        desc.append("se")
        return L.Multiply()([x, s])
    if k == "up":
        if h > 10:
            return x
        desc.append("up")
        return L.UpSampling2D(2, interpolation=str(rng.choice(["nearest", "bilinear"])))(x)
    if k == "pad":
        desc.append("pad")
        return L.ZeroPadding2D(((int(rng.integers(0, 3)), int(rng.integers(0, 2))), (1, 0)))(x)
    if k == "crop":
        if min(h, w) < 4:
            return x
        desc.append("crop")
        return L.Cropping2D(((1, 0), (0, 1)))(x)
    if k == "drop":
        desc.append("drop0")
        return L.Dropout(0.0)(x)
    return x


def seq_block(rng, x, desc):
    k = rng.choice(["dense", "ln", "mha", "conv1d", "gru", "lstm", "act", "res", "pool", "bn", "rnn"])
    d = x.shape[-1]
    act = str(rng.choice(ACTS)) if rng.random() < 0.5 else None
    if k == "dense":
        u = int(rng.integers(1, 33))
        desc.append(f"dense({u},{act})")
        return L.Dense(u, activation=act)(x)
    if k == "ln":
        desc.append("ln")
        return L.LayerNormalization(epsilon=1e-6, center=bool(rng.random() < 0.8))(x)
    if k == "mha":
        h = int(rng.integers(1, 4))
        kd = int(rng.integers(2, 9))
        desc.append(f"mha(h{h},k{kd})")
        return L.MultiHeadAttention(h, kd)(x, x, use_causal_mask=bool(rng.random() < 0.5))
    if k == "conv1d":
        ks = int(rng.integers(1, 4))
        f = int(rng.integers(1, 17))
        desc.append(f"conv1d(k{ks},f{f},{act})")
        return L.Conv1D(f, ks, padding=str(rng.choice(["same", "causal"])), activation=act)(x)
    if k in ("gru", "lstm", "rnn"):
        u = int(rng.integers(1, 17))
        R = {"gru": L.GRU, "lstm": L.LSTM, "rnn": L.SimpleRNN}[k]
        gb = bool(rng.random() < 0.3)
        desc.append(f"{k}({u},gb{gb})")
        return R(u, return_sequences=True, go_backwards=gb)(x)
    if k == "act":
        a = str(rng.choice(ACTS))
        desc.append(f"act({a})")
        return L.Activation(a)(x)
    if k == "res":
        y = L.Dense(d, activation=str(rng.choice(["gelu", "relu"])))(x)
        desc.append("res")
        return L.LayerNormalization()(L.Add()([x, y]))
    if k == "pool":
        if x.shape[1] < 3:
            return x
        desc.append("pool1d")
        return L.MaxPooling1D(2, padding="same")(x) if rng.random() < 0.5 else L.AveragePooling1D(2)(x)
    if k == "bn":
        desc.append("bn")
        return L.BatchNormalization()(x)
    return x


def make_model(seed):
    """(input shape, input, output, layer descriptions) of model `seed`."""
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    desc = []
    if rng.random() < 0.65:
        h, w, c = int(rng.integers(3, 14)), int(rng.integers(3, 14)), int(rng.integers(1, 7))
        shape = [h, w, c]
        inp = keras.Input(shape)
        x = inp
        for _ in range(int(rng.integers(2, 7))):
            x = img_block(rng, x, desc)
        tail = rng.choice(["gap", "flat", "none"])
        if tail == "gap":
            x = L.GlobalAveragePooling2D()(x) if rng.random() < 0.6 else L.GlobalMaxPooling2D()(x)
        elif tail == "flat":
            x = L.Flatten()(x)
        if tail != "none":
            x = L.Dense(int(rng.integers(1, 11)), activation=str(rng.choice(["softmax", "linear", "sigmoid"])))(x)
        desc.append(tail)
    else:
        t, d = int(rng.integers(2, 12)), int(rng.integers(1, 17))
        shape = [t, d]
        inp = keras.Input(shape)
        x = inp
        for _ in range(int(rng.integers(2, 6))):
            x = seq_block(rng, x, desc)
        if rng.random() < 0.5:
            x = L.GlobalAveragePooling1D()(x)
            x = L.Dense(int(rng.integers(1, 8)), activation="softmax")(x)
            desc.append("head")
    return shape, inp, x, desc


def check(seed):
    shape, _, _, desc = make_model(seed)  # (built again below, once per device)

    def build():
        _, inp, out, _ = make_model(seed)
        return keras.Model(inp, out)

    cpu_model, npu_model = twin_models(build)
    rng = np.random.default_rng(seed + 1)
    xs = [tf.constant(rng.normal(size=[int(rng.integers(1, 5))] + shape), tf.float32)]
    tf.config.set_soft_device_placement(False)
    try:
        got = catalogue.run(npu_model, "/NPU:0", xs)
    finally:
        tf.config.set_soft_device_placement(True)
    want = catalogue.run(cpu_model, "/CPU:0", xs)
    for part, g, w in zip(("inference output", "training output", "gradient"), got, want):
        assert len(g) == len(w)
        for k, (a, b) in enumerate(zip(g, w)):
            assert a.device.endswith("NPU:0"), a.device
            a, b = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
            assert a.shape == b.shape, (desc, part, k)
            # Relative to the tensor's largest magnitude: a gradient through a
            # normalisation is a difference of nearly equal sums.
            scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-4 * scale, err_msg=f"seed {seed} {desc}: {part} {k}")


@pytest.mark.parametrize("seed", range(24))
def test_random_model_matches_tensorflow_cpu(seed):
    check(seed)
    keras.backend.clear_session()
