"""The fusion pass (README "Fusion"): a product and the elementwise ops after
it, and chains of elementwise ops, become one `_TfaFused` NPU op. A fused
graph gives exactly what the unfused graph gives on the NPU (the same
kernels run, in cache-sized blocks) and agrees with TensorFlow CPU;
`TFA_FUSION=0` gives the unfused graph back. Training graphs keep every
intermediate their gradients need."""

import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, run_traced, twin_models

NPU = "/NPU:0"
CPU = "/CPU:0"
SEED = int(os.environ.get("TFA_TEST_SEED", "20261202"))


@pytest.fixture
def rng():
    print(f"seed {SEED} (TFA_TEST_SEED to replay)")
    return np.random.default_rng(SEED)


def run(fn, *args, device=NPU, fusion=True):
    return run_traced(fn, *args, fusion=fusion, device=device)


def check_fused(fn, *args, min_fused=1, rtol=2e-5, atol=1e-5, exact=True):
    """Fused == unfused on the NPU (bit for bit, or with `exact=False` within
    float32 rounding) and ~= TensorFlow CPU."""
    fused, counts = run(fn, *args)
    plain, plain_counts = run(fn, *args, fusion=False)
    cpu, _ = run(fn, *args, device=CPU)
    assert counts.get("_TfaFused", 0) >= min_fused, counts
    assert "_TfaFused" not in plain_counts
    for f, p, c in zip(tf.nest.flatten(fused), tf.nest.flatten(plain), tf.nest.flatten(cpu)):
        if exact:
            np.testing.assert_array_equal(f, p)
        else:
            np.testing.assert_allclose(f, p, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(f.astype(np.float64), c.astype(np.float64), rtol=rtol, atol=atol)
    return counts


ACTIVATIONS = {
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "elu": tf.nn.elu,
    "selu": tf.nn.selu,
    "sigmoid": tf.sigmoid,
    "tanh": tf.tanh,
    "swish": lambda y: y * tf.sigmoid(y),
    "softplus": tf.nn.softplus,
    "gelu": lambda y: tf.nn.gelu(y, approximate=False),
    "gelu_tanh": lambda y: tf.nn.gelu(y, approximate=True),
    "none": lambda y: y,
}


@pytest.mark.parametrize("case", range(12))
def test_conv_epilogues_random(case, strict_placement):
    """Conv2D, BiasAdd, a per-channel scale and shift, a residual and every
    activation, fused: equal to the unfused ops and close to TensorFlow CPU,
    under strict placement. Maps from 3x3 to 3x40x40 take both host paths:
    tiles with the epilogue in cache, and below 64 rows per tile one GEMM
    with the epilogue after it. A tile's GEMM may round differently from
    the unfused op's GEMM over all rows (`gemm` picks its kernel by size:
    1-2 float32 ulps seen on a 26x26 pointwise layer), so fused and unfused
    agree within float32 rounding here, not bit for bit."""
    rng = np.random.default_rng((1234, case))  # a shape per case
    n = int(rng.choice([1, 2, 3]))
    h, w = (int(v) for v in rng.integers(3, 40, size=2))
    cin, cout = (int(v) for v in rng.integers(1, 9, size=2))
    k = int(rng.choice([1, 3, 5]))
    stride = int(rng.choice([1, 2]))
    dilation = 1 if stride > 1 else int(rng.choice([1, 2]))
    padding = str(rng.choice(["SAME", "VALID"]))
    if padding == "VALID" and (h < (k - 1) * dilation + 1 or w < (k - 1) * dilation + 1):
        padding = "SAME"
    act = list(ACTIVATIONS)[case % len(ACTIVATIONS)]
    x = rng.normal(size=[n, h, w, cin]).astype(np.float32)
    f = (rng.normal(size=[k, k, cin, cout]) / np.sqrt(k * k * cin)).astype(np.float32)
    b, scale, shift = (rng.normal(size=[cout]).astype(np.float32) for _ in range(3))
    use_residual = bool(case % 2)

    def fn(x, f):
        y = tf.nn.conv2d(x, f, strides=stride, padding=padding, dilations=dilation)
        y = tf.nn.bias_add(y, b)
        y = y * scale + shift
        if use_residual:
            y = y + tf.reverse(y, axis=[1])  # a full-size operand from elsewhere
        return ACTIVATIONS[act](y)

    check_fused(fn, x, f, exact=False)


# Random elementwise DAGs for the fuzz tests below: unary ops on a domain
# where TensorFlow and the NPU agree (no overflow to inf), binary ops with an
# operand of a random broadcastable shape (either side) or an earlier value.
RANDOM_UNARY = {
    "neg": tf.negative, "abs": tf.abs, "square": tf.square, "relu": tf.nn.relu, "relu6": tf.nn.relu6,
    "elu": tf.nn.elu, "selu": tf.nn.selu, "softplus": tf.nn.softplus, "sigmoid": tf.sigmoid,
    "tanh": tf.tanh, "erf": tf.math.erf, "erfc": tf.math.erfc,
    "exp": lambda a: tf.exp(tf.minimum(a, 4.0)),
    "sqrt": lambda a: tf.sqrt(tf.abs(a) + 0.1),
    "rsqrt": lambda a: tf.math.rsqrt(tf.abs(a) + 0.5),
    "log": lambda a: tf.math.log(tf.abs(a) + 0.1),
    "reciprocal": lambda a: tf.math.reciprocal(tf.abs(a) + 0.5),
}
RANDOM_BINARY = {
    "add": tf.add, "sub": tf.subtract, "mul": tf.multiply, "max": tf.maximum, "min": tf.minimum,
    "div": lambda a, b: a / (tf.abs(b) + 0.5),
    "sqdiff": tf.math.squared_difference,
    "pow": lambda a, b: tf.pow(tf.abs(a) + 0.1, tf.clip_by_value(b, -2.0, 2.0)),
}


def random_dag(rng, head_shape, feed):
    """A random program over `v` (shape `head_shape`): a list of steps that
    `apply_dag` replays; `feed(shape)` adds an input and returns its index."""
    steps = []
    for _ in range(int(rng.integers(2, 8))):
        r = rng.random()
        if r < 0.4:
            steps.append(("unary", str(rng.choice(sorted(RANDOM_UNARY)))))
        elif r < 0.55 and steps:
            steps.append(("earlier", str(rng.choice(sorted(RANDOM_BINARY))), int(rng.integers(0, len(steps)))))
        elif r < 0.65 and len(head_shape) >= 2:
            steps.append(("bias", feed([head_shape[-1]])))
        else:
            k = int(rng.integers(0, len(head_shape) + 1))
            shape = [d if rng.random() < 0.5 else 1 for d in head_shape[len(head_shape) - k:]]
            steps.append(("operand", str(rng.choice(sorted(RANDOM_BINARY))), feed(shape), bool(rng.random() < 0.3)))
    return steps


def apply_dag(steps, v, inputs):
    values = [v]
    for step in steps:
        if step[0] == "unary":
            v = RANDOM_UNARY[step[1]](v)
        elif step[0] == "earlier":
            v = RANDOM_BINARY[step[1]](v, values[step[2]])
        elif step[0] == "bias":
            v = tf.nn.bias_add(v, inputs[step[1]])
        else:
            _, op, k, swap = step
            v = RANDOM_BINARY[op](inputs[k], v) if swap else RANDOM_BINARY[op](v, inputs[k])
        values.append(v)
    return v


def random_headed_dag(seed):
    """(fn, inputs, description): a random product (or none) and a random DAG after it."""
    rng = np.random.default_rng((4321, seed))
    inputs = []

    def feed(shape):
        inputs.append(rng.normal(size=shape).astype(np.float32))
        return len(inputs) - 1

    head = str(rng.choice(["none", "matmul", "batch_matmul", "conv", "depthwise"]))
    if head == "matmul":
        m, k, n = (int(v) for v in rng.integers(1, 40, size=3))
        ta, tb = (bool(v) for v in rng.random(2) < 0.3)
        a, b = feed([k, m] if ta else [m, k]), feed([n, k] if tb else [k, n])
        shape = [m, n]
        product = lambda x: tf.matmul(x[a], x[b], transpose_a=ta, transpose_b=tb)  # noqa: E731
    elif head == "batch_matmul":
        bt, m, k, n = (int(v) for v in rng.integers(1, 20, size=4))
        ta, tb = (bool(v) for v in rng.random(2) < 0.3)
        a = feed([bt] + ([k, m] if ta else [m, k]))
        b = feed(([bt] if rng.random() < 0.7 else []) + ([n, k] if tb else [k, n]))
        shape = [bt, m, n]
        product = lambda x: tf.matmul(x[a], x[b], adjoint_a=ta, adjoint_b=tb)  # noqa: E731
    elif head in ("conv", "depthwise"):
        n, h, w, c = 1 + int(rng.integers(0, 3)), int(rng.integers(3, 12)), int(rng.integers(3, 12)), int(rng.integers(1, 9))
        kh, kw, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        out_c, mult = int(rng.integers(1, 9)), int(rng.integers(1, 3))
        a = feed([n, h, w, c])
        b = feed([kh, kw, c, out_c] if head == "conv" else [kh, kw, c, mult])
        shape = [n, -(-h // stride), -(-w // stride), out_c if head == "conv" else c * mult]
        if head == "conv":
            product = lambda x: tf.nn.conv2d(x[a], x[b], stride, "SAME")  # noqa: E731
        else:
            product = lambda x: tf.nn.depthwise_conv2d(x[a], x[b], [1, stride, stride, 1], "SAME")  # noqa: E731
    else:
        shape = [int(d) for d in rng.integers(1, 9, size=int(rng.integers(1, 5)))]
        a = feed(shape)
        product = lambda x: x[a]  # noqa: E731
    steps = random_dag(rng, shape, feed)
    return (lambda *x: apply_dag(steps, product(x), x)), inputs, (head, steps)


@pytest.mark.parametrize("case", range(24))
def test_random_elementwise_dags(case, strict_placement):
    """A random product (or none) followed by a random DAG of elementwise ops
    with operands of random broadcastable shapes, under strict placement:
    fused equal to unfused within float32 rounding and close to TF CPU."""
    fn, inputs, what = random_headed_dag(case)
    print(what)
    check_fused(fn, *inputs, min_fused=1, rtol=1e-4, atol=1e-4, exact=False)


@pytest.mark.parametrize("case", range(8))
def test_random_elementwise_dag_gradients(case, strict_placement):
    """The same random DAGs in a GradientTape: the forward pass keeps every
    intermediate its gradient reads, and gradients of every input match."""
    fn, inputs, what = random_headed_dag(1000 + case)
    print(what)

    def grads(*x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(*x)
            loss = tf.reduce_sum(y * 0.37)
        return [y] + tape.gradient(loss, list(x))

    check_fused(grads, *inputs, min_fused=1, rtol=1e-4, atol=1e-4, exact=False)


@pytest.mark.parametrize("case", range(8))
def test_affine_chain_epilogues(case, strict_placement):
    """Epilogues that are chains of per-channel and scalar add, subtract and
    multiply (Keras's inference batch normalisation with the scale computed
    from its variables at run time, a shift subtracted, `c - y`), a residual
    branch with its own scale and shift joined by an add, then an
    activation: the host backend runs them in one pass per element. Channel
    counts of whole 64-lane blocks, whole vectors and neither; equal to the
    unfused ops within float32 rounding and close to TensorFlow CPU."""
    rng = np.random.default_rng((4321, case))
    cout = [64, 128, 48, 16, 37, 5, 200, 96][case]
    n, h, w, cin = int(rng.integers(1, 3)), int(rng.integers(4, 20)), int(rng.integers(4, 20)), int(rng.integers(1, 40))
    x = rng.normal(size=[n, h, w, cin]).astype(np.float32)
    f = (rng.normal(size=[1, 1, cin, cout]) / np.sqrt(cin)).astype(np.float32)
    r = rng.normal(size=[n, h, w, cout]).astype(np.float32)
    gamma, beta, mean, bias, g2, b2 = (rng.normal(size=[cout]).astype(np.float32) for _ in range(6))
    var, var2 = (rng.uniform(0.1, 2.0, size=[cout]).astype(np.float32) for _ in range(2))
    act = ["relu", "relu6", "sigmoid", "tanh", "elu", "none", "relu", "softplus"][case]

    def fn(x, f, r):
        y = tf.nn.bias_add(tf.nn.conv2d(x, f, strides=1, padding="VALID"), bias)
        sc = gamma * tf.math.rsqrt(var + 1e-3)
        y = y * sc + (beta - mean * sc)
        if case % 4 == 1:
            y = 0.5 - y  # scalar minus the chain
        if case % 2 == 1:
            sc2 = g2 * tf.math.rsqrt(var2 + 1e-3)
            y = y + (r * sc2 - b2)  # a residual branch with its own steps
        if case % 4 == 2:
            y = (y + r) * 2.0 - mean  # a plain residual, steps after the join
        return ACTIVATIONS[act](y)

    counts = check_fused(fn, x, f, r, exact=False)
    assert counts.get("_TfaFused", 0) == 1, counts


@pytest.mark.parametrize("case", range(4))
def test_winograd_conv_epilogues(case, strict_placement):
    """3x3 stride-1 Conv2D with 64-96 channels on 16-31 pixel maps, the
    shapes the host kernel's cost rule sends to Winograd F(2x2) or F(4x4)
    (any batch x pixels above 160 with 64+ channels), with BiasAdd, a scale
    and shift, a residual and Relu fused after it, in a tf.function under
    strict placement: equal to the unfused graph within float32 rounding and
    to TensorFlow CPU within Winograd's documented error (up to 2e-5 of the
    output's scale for F(4x4), README "Winograd")."""
    rng = np.random.default_rng((4321, case))
    n = int(rng.choice([1, 2]))
    h, w = (int(v) for v in rng.integers(16, 32, size=2))
    cin, cout = (int(v) for v in rng.integers(64, 97, size=2))
    padding = "SAME" if case % 2 == 0 else "VALID"
    x = rng.normal(size=[n, h, w, cin]).astype(np.float32)
    f = (rng.normal(size=[3, 3, cin, cout]) / np.sqrt(9 * cin)).astype(np.float32)
    b, scale, shift = (rng.normal(size=[cout]).astype(np.float32) for _ in range(3))

    def fn(x, f):
        y = tf.nn.bias_add(tf.nn.conv2d(x, f, strides=1, padding=padding), b)
        y = y * scale + shift
        return tf.nn.relu(y + tf.reverse(y, axis=[2]))

    counts = check_fused(fn, x, f, exact=False, rtol=1e-4, atol=1e-4)
    assert counts.get("Conv2D") == 1, counts  # kernel_counts lists a fused op's steps too


@pytest.mark.parametrize("case", range(8))
def test_short_row_conv_epilogues(case, strict_placement):
    """Conv2D to 64 or 128 channels from an image-like input (1-4 channels,
    kernel sizes 2-7) or pointwise from 16-64 channels: the shapes the
    host's direct short-row kernel takes on AVX-512 CPUs (ResNet50's 7x7
    stride-2 stem among them; pointwise maps of 1024 pixels or more take
    the packed pointwise kernel, see the next test), with
    strides, SAME/VALID and a zero Pad folded into EXPLICIT padding, and
    BiasAdd, a scale and shift, a residual and every activation fused after
    it. Fused equals unfused bit for bit (both run the same kernel per
    element) and TensorFlow CPU within float32 rounding, under strict
    placement."""
    rng = np.random.default_rng((2468, case))
    n = int(rng.choice([1, 2]))
    h, w = (int(v) for v in rng.integers(9, 48, size=2))
    pointwise = case >= 4
    cin = int(rng.integers(16, 65)) if pointwise else int(rng.integers(1, 5))
    cout = int(rng.choice([64, 128, 256]))
    k = 1 if pointwise else 7 if case == 0 else int(rng.integers(2, 8))
    stride = 2 if case == 0 else int(rng.choice([1, 2, 3]))
    padding = str(rng.choice(["SAME", "VALID"]))
    pad = case % 3 == 0 and not pointwise  # ZeroPadding2D before a VALID convolution
    act = list(ACTIVATIONS)[(3 * case) % len(ACTIVATIONS)]
    x = rng.normal(size=[n, h, w, cin]).astype(np.float32)
    f = (rng.normal(size=[k, k, cin, cout]) / np.sqrt(k * k * cin)).astype(np.float32)
    b, scale, shift = (rng.normal(size=[cout]).astype(np.float32) for _ in range(3))

    def fn(x, f):
        if pad:
            x = tf.pad(x, [[0, 0], [k // 2, k // 2], [k // 2, k // 2], [0, 0]])
        y = tf.nn.conv2d(x, f, strides=stride, padding="VALID" if pad else padding)
        y = tf.nn.bias_add(y, b) * scale + shift
        if case % 2:
            y = y + tf.reverse(y, axis=[1])
        return ACTIVATIONS[act](y)

    counts = check_fused(fn, x, f, rtol=1e-4, atol=1e-4)
    assert counts.get("Conv2D") == 1, counts
    assert "Pad" not in counts, counts  # folded into the convolution


@pytest.mark.parametrize("case", range(6))
def test_packed_pointwise_conv_epilogues(case, strict_placement):
    """1x1 Conv2D of 1024+ output pixels to 64, 128 or 192 channels from
    1-300 channels, strides 1-3 (different along height and width): the
    shapes the host's packed-filter pointwise kernel takes on AVX-512 CPUs
    (ResNet50's 1x1 layers at batch 32, its strided projections among them),
    with BiasAdd, a scale and shift, a residual and an activation fused
    after it, under strict placement. Fused equals unfused bit for bit (the
    same kernel computes each output) and TensorFlow CPU within float32
    rounding."""
    rng = np.random.default_rng((1357, case))
    sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
    h, w = (int(v) for v in rng.integers(20, 60, size=2))
    padding = str(rng.choice(["SAME", "VALID"]))
    pixels = -(-h // sh) * -(-w // sw)
    n = -(-1100 // pixels)
    cin = int(rng.integers(1, 301))
    cout = int(rng.choice([64, 128, 192]))
    act = list(ACTIVATIONS)[(5 * case) % len(ACTIVATIONS)]
    x = rng.normal(size=[n, h, w, cin]).astype(np.float32)
    f = (rng.normal(size=[1, 1, cin, cout]) / np.sqrt(cin)).astype(np.float32)
    b, scale, shift = (rng.normal(size=[cout]).astype(np.float32) for _ in range(3))

    def fn(x, f):
        y = tf.nn.conv2d(x, f, strides=[1, sh, sw, 1], padding=padding)
        y = tf.nn.bias_add(y, b) * scale + shift
        if case % 2:
            y = y + tf.reverse(y, axis=[2])
        return ACTIVATIONS[act](y)

    counts = check_fused(fn, x, f, rtol=1e-4, atol=1e-4)
    assert counts.get("Conv2D") == 1, counts


@pytest.mark.parametrize("case", range(8))
def test_depthwise_epilogues_random(case, rng, strict_placement):
    """DepthwiseConv2dNative runs its epilogue on each task's rows (float32
    NHWC): every activation, strides, dilations, channel multipliers, and
    outputs of a few rows to many tasks' worth."""
    n = int(rng.choice([1, 2, 3]))
    h, w = (int(v) for v in rng.integers(3, 40, size=2))
    cin, mult = int(rng.integers(1, 40)), int(rng.choice([1, 2]))
    k = int(rng.choice([1, 3, 5]))
    stride = int(rng.choice([1, 2]))
    dilation = 1 if stride > 1 else int(rng.choice([1, 2]))
    padding = "SAME" if (h < (k - 1) * dilation + 1 or w < (k - 1) * dilation + 1) else str(rng.choice(["SAME", "VALID"]))
    act = list(ACTIVATIONS)[(case * 3) % len(ACTIVATIONS)]
    x = rng.normal(size=[n, h, w, cin]).astype(np.float32)
    f = (rng.normal(size=[k, k, cin, mult]) / k).astype(np.float32)
    scale, shift = (rng.normal(size=[cin * mult]).astype(np.float32) for _ in range(2))

    def conv(x, f):
        return tf.nn.depthwise_conv2d(x, f, [1, stride, stride, 1], padding, dilations=[dilation, dilation])

    # A full-size operand read by the epilogue (a residual): each task must
    # read its own rows of it.
    residual = rng.normal(size=conv(x, f).shape).astype(np.float32)

    def fn(x, f, r):
        y = conv(x, f) * scale + shift
        if case % 2:
            y = y + r
        return ACTIVATIONS[act](y)

    check_fused(fn, x, f, residual)


@pytest.mark.parametrize("conv", ["depthwise", "conv2d"])
def test_zero_pad_folds_into_the_convolution(conv, rng, strict_placement):
    """Keras's ZeroPadding2D before a VALID stride-2 convolution: the Pad
    becomes the convolution's explicit padding (no Pad kernel runs), with
    the results of the padded convolution; TFA_FUSION=0 keeps the Pad.
    Soft placement off: the rewritten convolution runs on the NPU."""
    x = rng.normal(size=[2, 9, 8, 6]).astype(np.float32)
    f = rng.normal(size=[3, 3, 6, 1 if conv == "depthwise" else 5]).astype(np.float32)
    pads = [[0, 0], [0, 1], [1, 2], [0, 0]]

    def fn(x, f):
        y = tf.pad(x, pads)
        if conv == "depthwise":
            return tf.nn.relu(tf.nn.depthwise_conv2d(y, f, [1, 2, 2, 1], "VALID"))
        return tf.nn.relu(tf.nn.conv2d(y, f, 2, "VALID"))

    counts = check_fused(fn, x, f)
    assert "Pad" not in counts, counts
    _, plain = run(fn, x, f, fusion=False)
    assert plain.get("Pad") == 1, plain


def test_pad_read_elsewhere_or_not_zero_is_kept(rng):
    """A Pad another op also reads, or one that pads the channels, stays."""
    x = rng.normal(size=[1, 6, 6, 3]).astype(np.float32)
    f = rng.normal(size=[3, 3, 3, 1]).astype(np.float32)

    def shared(x, f):
        y = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return tf.nn.depthwise_conv2d(y, f, [1, 1, 1, 1], "VALID"), tf.reduce_sum(y)

    def channels(x, f):
        y = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 1]])
        return tf.nn.depthwise_conv2d(y, tf.concat([f, f[:, :, :1]], 2), [1, 1, 1, 1], "VALID")

    for fn in (shared, channels):
        out, counts = run(fn, x, f)
        cpu, _ = run(fn, x, f, device=CPU)
        assert counts.get("Pad") == 1, counts
        for a, b in zip(tf.nest.flatten(out), tf.nest.flatten(cpu)):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("case", range(6))
def test_tall_matmul_epilogues(case, strict_placement):
    """MatMul of 2048+ rows to 64-256 columns (the host's `tall` kernel on
    AVX-512 CPUs: a transformer's feed-forward layers), `b` stored as is or
    transposed, with BiasAdd, a scale and shift, a residual read from a
    full-size input or a per-row operand, and an activation fused after it
    (finished in one blocked pass after the product), under strict
    placement. Fused equals unfused bit for bit and TensorFlow CPU within
    float32 rounding."""
    rng = np.random.default_rng((2468, case))
    m = int(rng.integers(2048, 2400))
    k = int(rng.integers(1, 300))
    n = 64 * int(rng.integers(1, 5))
    tb = bool(case % 2)
    act = list(ACTIVATIONS)[(3 * case + 1) % len(ACTIVATIONS)]
    a = rng.normal(size=[m, k]).astype(np.float32)
    w = (rng.normal(size=[n, k] if tb else [k, n]) / np.sqrt(k)).astype(np.float32)
    r = rng.normal(size=[m, n]).astype(np.float32)
    row = rng.normal(size=[m, 1]).astype(np.float32)
    b, scale, shift = (rng.normal(size=[n]).astype(np.float32) for _ in range(3))

    def fn(a, r):
        y = tf.nn.bias_add(tf.matmul(a, w, transpose_b=tb), b) * scale + shift
        y = y + (r if case % 3 else row)
        return ACTIVATIONS[act](y)

    counts = check_fused(fn, a, r, rtol=1e-4, atol=1e-4)
    assert counts.get("MatMul") == 1, counts


@pytest.mark.parametrize("act", ["relu", "gelu", "gelu_tanh", "swish", "tanh"])
def test_matmul_and_batch_matmul_epilogues(act, rng):
    a = rng.normal(size=[7, 33]).astype(np.float32)
    w = rng.normal(size=[33, 65]).astype(np.float32) / 6
    b = rng.normal(size=[65]).astype(np.float32)
    q = rng.normal(size=[2, 5, 9, 16]).astype(np.float32)
    kk = rng.normal(size=[2, 5, 16, 9]).astype(np.float32)

    def fn(a, q):
        dense = ACTIVATIONS[act](tf.nn.bias_add(tf.matmul(a, w), b))
        scores = tf.matmul(q, kk) * 0.25 + 1.0
        return dense, tf.exp(scores - 3.0)

    counts = check_fused(fn, a, q, min_fused=2)
    # Each product with its whole epilogue is one op (tanh-GELU's Pow too).
    assert counts["_TfaFused"] == 2, counts


def test_keras_cnn_inference_and_training_step(rng):
    import keras

    def model(seed):
        keras.utils.set_random_seed(seed)
        inp = keras.Input((12, 12, 5))
        y = keras.layers.Conv2D(8, 3, padding="same")(inp)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Activation("relu")(y)
        skip = y
        y = keras.layers.Conv2D(8, 1, use_bias=False)(y)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Add()([y, skip])
        y = keras.layers.ReLU(max_value=6.0)(y)
        y = keras.layers.DepthwiseConv2D(3, padding="same")(y)
        y = keras.layers.BatchNormalization()(y)
        y = keras.layers.Activation("swish")(y)
        y = keras.layers.GlobalAveragePooling2D()(y)
        y = keras.layers.Dense(16, activation="gelu")(y)
        y = keras.layers.LayerNormalization()(y)
        return keras.Model(inp, keras.layers.Dense(3)(y))

    with tf.device(NPU):
        m = model(3)
    with tf.device(CPU):
        cm = model(3)
    for w in m.weights:  # non-trivial batch-norm statistics
        w.assign(tf.random.uniform(w.shape, 0.5, 1.5) if "variance" in w.path else tf.random.normal(w.shape, stddev=0.3))
    cm.set_weights(m.get_weights())
    x = rng.normal(size=[4, 12, 12, 5]).astype(np.float32)
    counts = check_fused(lambda x: m(x, training=False), x, min_fused=5, rtol=1e-4, atol=1e-5)
    # Every op a fused op replaced is counted with it (kernel_counts still
    # proves each ran on the NPU).
    assert counts.get("Relu", 0) >= 1 and counts.get("BiasAdd", 0) >= 1 and counts.get("Conv2D", 0) >= 2

    labels = np.array([0, 2, 1, 2])
    loss_fn = __import__("keras").losses.SparseCategoricalCrossentropy(from_logits=True)

    def step(x):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, m(x, training=True))
        return loss, tape.gradient(loss, m.trainable_variables)

    fused, counts = run(step, x)
    plain, _ = run(step, x, fusion=False)
    assert counts.get("_TfaFused", 0) >= 1, counts
    assert counts.get("Conv2DBackpropFilter", 0) >= 2  # the backward pass still runs
    for f, p in zip(tf.nest.flatten(fused), tf.nest.flatten(plain)):
        np.testing.assert_array_equal(f, p)


def test_intermediates_used_elsewhere_are_not_fused(rng):
    x = rng.normal(size=[2, 6, 6, 3]).astype(np.float32)
    f = rng.normal(size=[3, 3, 3, 4]).astype(np.float32)

    def fn(x, f):
        y = tf.nn.conv2d(x, f, 1, "SAME")
        z = tf.nn.relu(y + 1.0)
        return z, y  # the product is fetched: it cannot be fused away

    counts = check_fused(fn, x, f, min_fused=1)
    assert counts.get("Conv2D", 0) == 1


def test_output_broadcast_larger_than_the_product(rng):
    x = rng.normal(size=[1, 5, 5, 3]).astype(np.float32)
    f = rng.normal(size=[3, 3, 3, 4]).astype(np.float32)
    big = rng.normal(size=[3, 1, 1, 4]).astype(np.float32)

    check_fused(lambda x, f: tf.nn.relu(tf.nn.conv2d(x, f, 1, "SAME") * big), x, f)


def test_errors_inside_a_fused_region_match_the_unfused_ops(rng):
    spec = [tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.float32)]
    for fusion in ("1", "0"):
        os.environ["TFA_FUSION"] = fusion
        try:

            @tf.function(input_signature=spec)
            def f(a, b):
                with tf.device(NPU):
                    return tf.nn.relu(tf.nn.bias_add(tf.matmul(a, a), b))

            with pytest.raises(tf.errors.InvalidArgumentError, match="Must provide as many biases"):
                f(np.ones([3, 3], np.float32), np.ones([4], np.float32))
        finally:
            del os.environ["TFA_FUSION"]


@pytest.mark.parametrize("mode", ["allow_mix_precision_bf16", "allow_mix_precision_fp16"])
def test_fusion_under_mixed_precision(mode, rng):
    x = rng.normal(size=[2, 8, 8, 4]).astype(np.float32)
    f = (rng.normal(size=[3, 3, 4, 6]) / 6).astype(np.float32)
    b = rng.normal(size=[6]).astype(np.float32)
    before = tf_adapter.get_precision_mode()
    tf_adapter.set_precision_mode(mode)
    try:
        fn = lambda x, f: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, f, 1, "SAME"), b)) * 0.5  # noqa: E731
        fused, counts = run(fn, x, f)
        plain, _ = run(fn, x, f, fusion=False)
    finally:
        tf_adapter.set_precision_mode(before)
    cpu, _ = run(fn, x, f, device=CPU)
    assert counts.get("_TfaFused", 0) >= 1, counts
    if mode.endswith("bf16"):
        assert_bf16_fused_close(fused, plain, cpu)
    else:
        np.testing.assert_array_equal(fused, plain)
    np.testing.assert_allclose(fused, cpu, rtol=0.05, atol=0.05)


def test_bf16_conv_epilogue_with_residual_over_many_tiles(rng):
    """A bfloat16 convolution whose program reads a full-size operand (a
    residual add), over enough rows for several tiles on every thread: each
    tile gets its own rows of the residual."""
    n, h, w = int(rng.integers(1, 4)), int(rng.integers(15, 24)), int(rng.integers(15, 24))
    x = rng.normal(size=[n, h, w, 16]).astype(np.float32)
    f = (rng.normal(size=[3, 3, 16, 32]) / 12).astype(np.float32)
    b = rng.normal(size=[32]).astype(np.float32)
    r = (rng.normal(size=[n, h, w, 32]) + np.arange(n * h * w).reshape(n, h, w, 1) / (n * h * w)).astype(np.float32)
    before = tf_adapter.get_precision_mode()
    tf_adapter.set_precision_mode("allow_mix_precision_bf16")
    try:
        fn = lambda x, f, r: tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, f, 1, "SAME"), b) + r)  # noqa: E731
        fused, counts = run(fn, x, f, r)
        plain, _ = run(fn, x, f, r, fusion=False)
    finally:
        tf_adapter.set_precision_mode(before)
    cpu, _ = run(fn, x, f, r, device=CPU)
    assert counts.get("_TfaFused", 0) >= 1, counts
    assert_bf16_fused_close(fused, plain, cpu)
    np.testing.assert_allclose(fused, cpu, rtol=0.05, atol=0.05)


def assert_bf16_fused_close(fused, plain, exact=None):
    """A bfloat16 convolution's fused program runs on the float32
    accumulators and rounds once (README "Fusion"), where the unfused ops
    round after every op: the two agree within a few bfloat16 roundings, and
    the fused result is no farther from the float32 result `exact`."""
    fused, plain = np.asarray(fused, np.float64), np.asarray(plain, np.float64)
    scale = np.abs(plain).max() + 1e-30
    np.testing.assert_allclose(fused, plain, rtol=2**-6, atol=2**-6 * scale)
    if exact is None:
        return
    exact = np.asarray(exact, np.float64)
    assert np.abs(fused - exact).mean() <= 1.05 * np.abs(plain - exact).mean() + 1e-7 * scale


def test_graph_dump_shows_the_fused_ops(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    x = rng.normal(size=[4, 8]).astype(np.float32)
    w = rng.normal(size=[8, 8]).astype(np.float32)
    run(lambda x: tf.nn.relu(tf.matmul(x, w) + 1.0), x)
    after = "".join(p.read_text() for p in tmp_path.glob("*_after.txt"))
    assert "op=_TfaFused" in after and "fused_ops=[\"MatMul\", \"AddV2\", \"Relu\"]" in after, after[-2000:]
    assert 'program="AddV2(h,i0);Relu(r0)"' in after


def test_strict_placement_with_fusion(rng, strict_placement):
    x = rng.normal(size=[3, 10]).astype(np.float32)
    out, counts = run(lambda x: tf.tanh(x * 2.0 - 1.0) * tf.sigmoid(x), x)
    assert counts.get("_TfaFused", 0) == 1
    assert_matches(tf.constant(out), tf.tanh(x * 2.0 - 1.0) * tf.sigmoid(x), tf.float32, rtol=1e-6)


def test_coverage_lists_fused_groups(rng):
    import keras

    with tf.device(NPU):
        m = keras.Sequential([
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="gelu"),
        ])
    report = tf_adapter.coverage(m, tf.TensorSpec([2, 8, 8, 3]))
    patterns = report.fusion_patterns()
    assert any(p.startswith("Conv2D+BiasAdd+Relu") for p in patterns), patterns
    assert any(p.startswith("MatMul+BiasAdd") for p in patterns), patterns
    assert report.to_dict()["fused"] and "fused on the NPU" in str(report)
    os.environ["TFA_FUSION"] = "0"
    try:
        assert tf_adapter.coverage(m, tf.TensorSpec([2, 8, 8, 3])).fused == []
    finally:
        del os.environ["TFA_FUSION"]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_keras_mixed_policy_resnet_stem(policy, rng):
    """Keras' mixed-precision BatchNormalization reshapes its variables to
    [1, 1, 1, C]: the fused program must broadcast them like the unfused ops
    (it once broadcast them to rank 4 and returned garbage)."""
    import keras

    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        with tf.device(NPU):
            full = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
            m = keras.Model(full.input, full.get_layer("conv2_block1_out").output)
        for w in m.weights:
            if "moving_variance" in w.path:
                w.assign(tf.random.uniform(w.shape, 0.5, 1.5))
            elif "moving_mean" in w.path or "beta" in w.path:
                w.assign(tf.random.normal(w.shape, stddev=0.2))
        x = rng.uniform(0, 1, size=[2, 64, 64, 3]).astype(np.float32)
        fused, counts = run(lambda x: m(x, training=False), x)
        plain, _ = run(lambda x: m(x, training=False), x, fusion=False)
    finally:
        keras.mixed_precision.set_global_policy(old)
    assert counts.get("_TfaFused", 0) >= 3, counts
    if policy == "mixed_bfloat16":
        assert_bf16_fused_close(fused, plain)
    else:
        np.testing.assert_array_equal(fused, plain)


def test_batch_norm_gradient_fuses_past_its_control_dependency(tmp_path, monkeypatch, rng, strict_placement):
    """TensorFlow's gradient of the variance (SquaredDifference) makes
    `scalar_mul(2.0, grad)` under a control dependency on `grad`: the constant
    now waits for `grad`'s inputs, so `grad` (the `moments/truediv_1` Mul over
    the whole activation) joins the fused region instead of running alone.
    Gradients as unfused and as TF CPU; no node refers to a fused-away one."""
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    x = rng.normal(size=[4, 6, 6, 3]).astype(np.float32)
    y = rng.normal(size=[4, 2]).astype(np.float32)

    def build():
        inp = keras.Input((6, 6, 3))
        h = keras.layers.Conv2D(5, 3, padding="same")(inp)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization()(h))
        return keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h)))

    cpu_model, npu_model = twin_models(build)

    def step(model):
        def fn(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
            return [loss] + tape.gradient(loss, model.trainable_variables)

        return fn

    fused, counts = run(step(npu_model), x, y)
    plain, _ = run(step(npu_model), x, y, fusion=False)
    cpu, _ = run(step(cpu_model), x, y, device=CPU)
    for f, p, c in zip(fused, plain, cpu):
        np.testing.assert_allclose(f, p, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(f, c, rtol=1e-4, atol=1e-5)
    after = "\n".join(p.read_text() for p in sorted(tmp_path.glob("*_after.txt")))
    names = set(re.findall(r'^node "([^"]+)"', after, re.M))
    assert not any(n.endswith("moments/truediv_1") for n in names), sorted(n for n in names if "moments" in n)
    scalar = [line for line in after.splitlines() if re.search(r'moments/scalar" op=Const', line)]
    assert scalar, "the gradient's scalar constant is in the graph"
    for line in scalar:
        for ref in re.findall(r'"\^([^"]+)"', line.split("inputs=")[1].split("]")[0]):
            assert ref in names, (ref, line[:300])
