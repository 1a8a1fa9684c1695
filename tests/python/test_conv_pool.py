"""Conv2D, DepthwiseConv2dNative, MaxPool and AvgPool on the NPU against
TensorFlow CPU over random shapes and attributes: odd spatial sizes, strides
larger than the window, dilations, SAME/VALID/EXPLICIT padding, groups,
size-0 batches, NHWC and NCHW, every registered dtype.

TensorFlow's CPU kernels do not take NCHW (nor every grouped/dilated
combination): the NCHW result on the NPU is compared with the CPU's NHWC
result transposed, and where the CPU refuses a case a float64 NumPy
reference stands in. Half types are compared with the CPU in float32 on the
same (rounded) inputs: the NPU computes in float32 and rounds once."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import on

FLOATS = [tf.float32, tf.float16, tf.bfloat16, tf.float64]

# Max abs error / max abs value of the expected result.
TOL = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 2e-3, tf.bfloat16: 1.6e-2}


def rel_err(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.size == 0:
        return 0.0
    scale = max(np.max(np.abs(want)), 1e-30)
    return float(np.max(np.abs(got - want)) / scale)


def to_nchw(t):
    return tf.transpose(t, [0, 3, 1, 2])


def to_nhwc(t):
    return tf.transpose(t, [0, 2, 3, 1])


def nhwc_list(vals, fmt):
    """[n, h, w, c] attribute list in `fmt` order."""
    n, h, w, c = vals
    return [n, h, w, c] if fmt == "NHWC" else [n, c, h, w]


def explicit_list(pads, fmt):
    """Explicit paddings ((top, bottom), (left, right)) as the 8-list of `fmt`."""
    (t, b), (lft, r) = pads
    return [0, 0, t, b, lft, r, 0, 0] if fmt == "NHWC" else [0, 0, 0, 0, t, b, lft, r]


# ------------------------------------------------------- NumPy references ----


def out_and_pads(size, k, dil, stride, padding, explicit):
    eff = (k - 1) * dil + 1
    if padding == "VALID":
        return (size - eff + stride) // stride, (0, 0)
    if padding == "EXPLICIT":
        return (size + explicit[0] + explicit[1] - eff + stride) // stride, explicit
    out = (size + stride - 1) // stride
    need = max(0, (out - 1) * stride + eff - size)
    return out, (need // 2, need - need // 2)


def np_conv(x, f, strides, dil, padding, pads, depthwise=False):
    """NHWC float64 reference; strides/dil are (h, w); f is HWIO or depthwise."""
    n, h, w, cin = x.shape
    kh, kw = f.shape[:2]
    oh, ph = out_and_pads(h, kh, dil[0], strides[0], padding, pads[0])
    ow, pw = out_and_pads(w, kw, dil[1], strides[1], padding, pads[1])
    xp = np.pad(x, [(0, 0), ph, pw, (0, 0)])
    if depthwise:
        cout = cin * f.shape[3]
    else:
        cout = f.shape[3]
        groups = cin // f.shape[2]
    y = np.zeros((n, oh, ow, cout))
    if y.size == 0:
        return y
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dil[0], kx * dil[1]
            patch = xp[:, y0:y0 + (oh - 1) * strides[0] + 1:strides[0],
                       x0:x0 + (ow - 1) * strides[1] + 1:strides[1], :]
            if depthwise:
                y += (patch[..., :, None] * f[ky, kx][None, None, None]).reshape(n, oh, ow, cout)
            else:
                cg = cin // groups
                fk = f[ky, kx].reshape(cg, groups, cout // groups)
                p = patch.reshape(n, oh, ow, groups, cg)
                y += np.einsum("nhwgc,cgj->nhwgj", p, fk).reshape(n, oh, ow, cout)
    return y


def np_pool(x, kind, ksize, strides, padding, pads):
    n, h, w, c = x.shape
    oh, ph = out_and_pads(h, ksize[0], 1, strides[0], padding, pads[0])
    ow, pw = out_and_pads(w, ksize[1], 1, strides[1], padding, pads[1])
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, [(0, 0), ph, pw, (0, 0)], constant_values=fill)
    ones = np.pad(np.ones((1, h, w, 1)), [(0, 0), ph, pw, (0, 0)])
    acc = np.full((n, oh, ow, c), fill)
    if acc.size == 0:
        return acc
    cnt = np.zeros((1, oh, ow, 1))
    for ky in range(ksize[0]):
        for kx in range(ksize[1]):
            sl = (slice(None), slice(ky, ky + (oh - 1) * strides[0] + 1, strides[0]),
                  slice(kx, kx + (ow - 1) * strides[1] + 1, strides[1]), slice(None))
            if kind == "max":
                acc = np.maximum(acc, xp[sl])
            else:
                acc = acc + xp[sl]
                cnt = cnt + ones[sl]
    return acc if kind == "max" else acc / np.maximum(cnt, 1)


# -------------------------------------------------------------- helpers ----


def random_input(rng, shape, dtype):
    x = tf.cast(tf.constant(rng.uniform(-2, 2, size=shape)), dtype)
    return x


def wide(dtype):
    """The dtype the CPU reference runs in."""
    return tf.float64 if dtype == tf.float64 else tf.float32


def cpu_or_numpy(cpu_fn, np_fn, empty=False):
    """The expected result (float64, NHWC) and where it came from: the CPU's
    when the CPU computes the case and agrees with a float64 NumPy reference,
    else NumPy's. The CPU (oneDNN) refuses some cases, returns a tensor of the
    input's shape for empty inputs or outputs, and gets some depthwise cases
    with large strides wrong (rows skipped): NumPy is the ground truth then."""
    ref = np_fn()
    if empty:
        return ref, "numpy"
    try:
        cpu = on("/CPU:0", cpu_fn).numpy().astype(np.float64)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.AbortedError):
        return ref, "numpy"
    if cpu.shape == ref.shape and rel_err(cpu, ref) <= 1e-5:
        return cpu, "cpu"
    return ref, "numpy (CPU disagrees)"


def random_conv_case(rng, depthwise):
    while True:
        n = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.4, 0.3, 0.2]))
        h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
        kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        dil = (1, 1)
        if rng.random() < 0.35:
            dil = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = str(rng.choice(["SAME", "VALID", "EXPLICIT"]))
        pads = ((0, 0), (0, 0))
        if padding == "EXPLICIT":
            pads = tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4))) for _ in range(2))
        groups = 1 if depthwise or rng.random() < 0.6 else int(rng.integers(2, 4))
        cg = int(rng.integers(1, 6))
        cin = groups * cg
        last = int(rng.integers(1, 4)) if depthwise else groups * int(rng.integers(1, 5))
        fshape = [kh, kw, cin if depthwise else cg, last]
        oh, _ = out_and_pads(h, kh, dil[0], sh, padding, pads[0])
        ow, _ = out_and_pads(w, kw, dil[1], sw, padding, pads[1])
        if oh >= 0 and ow >= 0:
            return dict(xshape=[n, h, w, cin], fshape=fshape, strides=(sh, sw), dil=dil,
                        padding=padding, pads=pads, empty=n * oh * ow == 0)


def run_conv(op, x, f, case, fmt):
    sh, sw = case["strides"]
    dh, dw = case["dil"]
    kwargs = dict(
        strides=nhwc_list([1, sh, sw, 1], fmt),
        padding=case["padding"],
        explicit_paddings=explicit_list(case["pads"], fmt) if case["padding"] == "EXPLICIT" else [],
        data_format=fmt,
        dilations=nhwc_list([1, dh, dw, 1], fmt),
    )
    return op(input=x, filter=f, **kwargs)


def check_conv(name, op, depthwise, rng, cases):
    sources = set()
    for dtype in FLOATS:
        for fmt in ["NHWC", "NCHW"]:
            for _ in range(cases):
                case = random_conv_case(rng, depthwise)
                x = random_input(rng, case["xshape"], dtype)
                f = random_input(rng, case["fshape"], dtype)
                xin = x if fmt == "NHWC" else to_nchw(x)
                tf_adapter.reset_kernel_counts()
                npu = on("/NPU:0", run_conv, op, xin, f, case, fmt)
                assert npu.device.endswith("NPU:0"), (name, case)
                assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype, fmt, case)
                assert npu.dtype == dtype
                got = npu if fmt == "NHWC" else to_nhwc(npu)
                xw, fw = tf.cast(x, wide(dtype)), tf.cast(f, wide(dtype))
                want, src = cpu_or_numpy(
                    lambda: run_conv(op, xw, fw, case, "NHWC"),
                    lambda: np_conv(xw.numpy().astype(np.float64), fw.numpy().astype(np.float64),
                                    case["strides"], case["dil"], case["padding"], case["pads"],
                                    depthwise),
                    empty=case["empty"],
                )
                sources.add(src)
                got = tf.cast(got, tf.float64).numpy()
                err = rel_err(got, want)
                assert err <= TOL[dtype], (name, dtype, fmt, case, err, src)
    assert "cpu" in sources


def test_conv2d_matches_cpu(rng):
    check_conv("Conv2D", tf.raw_ops.Conv2D, False, rng, cases=14)


def test_depthwise_conv2d_matches_cpu(rng):
    check_conv("DepthwiseConv2dNative", tf.raw_ops.DepthwiseConv2dNative, True, rng, cases=12)


def test_conv2d_resnet_like_shapes(rng):
    """Shapes that take the tiled parallel path: 1x1 direct GEMM, 3x3 im2col,
    strided 1x1 and 7x7/2 stem, grouped 3x3."""
    shapes = [
        ([4, 28, 28, 32], [1, 1, 32, 64], 1, "VALID"),
        ([4, 28, 28, 32], [3, 3, 32, 48], 1, "SAME"),
        ([4, 28, 28, 32], [1, 1, 32, 64], 2, "VALID"),
        ([2, 45, 45, 3], [7, 7, 3, 16], 2, "SAME"),
        ([2, 20, 20, 32], [3, 3, 8, 32], 1, "SAME"),
    ]
    for xs, fs, s, pad in shapes:
        x = random_input(rng, xs, tf.float32)
        f = random_input(rng, fs, tf.float32)
        fn = lambda: tf.raw_ops.Conv2D(input=x, filter=f, strides=[1, s, s, 1], padding=pad)  # noqa: E731
        npu = on("/NPU:0", fn)
        want, _ = cpu_or_numpy(fn, lambda: np_conv(x.numpy().astype(np.float64),
                                                   f.numpy().astype(np.float64),
                                                   (s, s), (1, 1), pad, ((0, 0), (0, 0))))
        assert rel_err(npu.numpy(), want) <= 1e-5, (xs, fs)


def test_depthwise_mobilenet_like_shapes(rng):
    for xs, fs, s in [([4, 28, 28, 96], [3, 3, 96, 1], 1), ([4, 29, 29, 144], [3, 3, 144, 1], 2),
                      ([2, 14, 14, 24], [5, 5, 24, 2], 1)]:
        x = random_input(rng, xs, tf.float32)
        f = random_input(rng, fs, tf.float32)
        fn = lambda: tf.raw_ops.DepthwiseConv2dNative(  # noqa: E731
            input=x, filter=f, strides=[1, s, s, 1], padding="SAME")
        assert rel_err(on("/NPU:0", fn).numpy(), on("/CPU:0", fn).numpy()) <= 1e-5


def test_conv_errors_match_tensorflow():
    x = tf.ones([1, 5, 5, 4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="evenly divisible by filter depth: 4 vs 3"):
        on("/NPU:0", lambda: tf.raw_ops.Conv2D(input=x, filter=tf.ones([1, 1, 3, 2]),
                                               strides=[1, 1, 1, 1], padding="VALID"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Computed output size would be negative"):
        on("/NPU:0", lambda: tf.raw_ops.Conv2D(input=x, filter=tf.ones([7, 1, 4, 2]),
                                               strides=[1, 1, 1, 1], padding="VALID"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="same depth: 4 vs 3"):
        on("/NPU:0", lambda: tf.raw_ops.DepthwiseConv2dNative(
            input=x, filter=tf.ones([1, 1, 3, 2]), strides=[1, 1, 1, 1], padding="VALID"))


def test_keras_conv_layers_run_on_npu(rng):
    # (Keras runs grouped convolutions through XLA, which has no NPU device.)
    x = random_input(rng, [2, 16, 16, 8], tf.float32)
    layers = [
        tf.keras.layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False),
        tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False),
        tf.keras.layers.MaxPooling2D(3, strides=2, padding="same"),
        tf.keras.layers.AveragePooling2D(2),
    ]
    for layer in layers:
        with tf.device("/CPU:0"):
            want = layer(x)
        tf_adapter.reset_kernel_counts()
        with tf.device("/NPU:0"):
            got = layer(x)
        assert got.device.endswith("NPU:0"), layer
        assert sum(tf_adapter.kernel_counts().values()) >= 1
        assert rel_err(got.numpy(), want.numpy()) <= 1e-5, layer


# -------------------------------------------------------------- pooling ----


def random_pool_case(rng, kind):
    while True:
        n = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.4, 0.3, 0.2]))
        h, w, c = int(rng.integers(1, 14)), int(rng.integers(1, 14)), int(rng.integers(1, 9))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        modes = ["SAME", "VALID", "EXPLICIT"] if kind == "max" else ["SAME", "VALID"]
        padding = str(rng.choice(modes))
        pads = ((0, 0), (0, 0))
        if padding == "EXPLICIT":
            pads = tuple((int(rng.integers(0, kk)), int(rng.integers(0, kk))) for kk in k)
        oh, _ = out_and_pads(h, k[0], 1, s[0], padding, pads[0])
        ow, _ = out_and_pads(w, k[1], 1, s[1], padding, pads[1])
        if oh >= 0 and ow >= 0:
            return dict(xshape=[n, h, w, c], k=k, s=s, padding=padding, pads=pads,
                        empty=n * oh * ow == 0)


def run_pool(kind, x, case, fmt):
    kwargs = dict(
        ksize=nhwc_list([1, *case["k"], 1], fmt),
        strides=nhwc_list([1, *case["s"], 1], fmt),
        padding=case["padding"],
        data_format=fmt,
    )
    if kind == "max":
        if case["padding"] == "EXPLICIT":
            kwargs["explicit_paddings"] = explicit_list(case["pads"], fmt)
        return tf.raw_ops.MaxPool(input=x, **kwargs)
    return tf.raw_ops.AvgPool(value=x, **kwargs)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_matches_cpu(kind, rng):
    name = {"max": "MaxPool", "avg": "AvgPool"}[kind]
    sources = set()
    for dtype in FLOATS:
        for fmt in ["NHWC", "NCHW"]:
            for _ in range(14):
                case = random_pool_case(rng, kind)
                x = random_input(rng, case["xshape"], dtype)
                xin = x if fmt == "NHWC" else to_nchw(x)
                tf_adapter.reset_kernel_counts()
                npu = on("/NPU:0", run_pool, kind, xin, case, fmt)
                assert npu.device.endswith("NPU:0")
                assert tf_adapter.kernel_counts().get(name) == 1, (name, dtype, fmt, case)
                assert npu.dtype == dtype
                got = npu if fmt == "NHWC" else to_nhwc(npu)
                xw = tf.cast(x, wide(dtype))
                want, src = cpu_or_numpy(
                    lambda: run_pool(kind, xw, case, "NHWC"),
                    lambda: np_pool(xw.numpy().astype(np.float64), kind, case["k"], case["s"],
                                    case["padding"], case["pads"]),
                    empty=case["empty"],
                )
                sources.add(src)
                err = rel_err(tf.cast(got, tf.float64).numpy(), want)
                tol = 0.0 if kind == "max" else TOL[dtype]
                assert err <= tol, (name, dtype, fmt, case, err, src)
    assert "cpu" in sources


def test_avg_pool_divides_by_valid_elements():
    x = tf.reshape(tf.range(1.0, 10.0), [1, 3, 3, 1])
    fn = lambda: tf.nn.avg_pool2d(x, 2, 2, "SAME")  # noqa: E731
    got = on("/NPU:0", fn)
    np.testing.assert_allclose(got.numpy().ravel(), [3.0, 4.5, 7.5, 9.0])
    np.testing.assert_allclose(got.numpy(), on("/CPU:0", fn).numpy())


def test_pool_errors_match_tensorflow():
    x = tf.ones([1, 4, 4, 2])
    with pytest.raises(tf.errors.UnimplementedError, match="batch dimension"):
        on("/NPU:0", lambda: tf.raw_ops.MaxPool(input=x, ksize=[2, 1, 1, 1], strides=[1, 1, 1, 1],
                                                padding="VALID"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Computed output size would be negative"):
        on("/NPU:0", lambda: tf.raw_ops.AvgPool(value=x, ksize=[1, 6, 1, 1], strides=[1, 1, 1, 1],
                                                padding="VALID"))


def test_max_pool_across_depth(rng):
    x = random_input(rng, [2, 5, 3, 12], tf.float32)
    fn = lambda: tf.raw_ops.MaxPool(input=x, ksize=[1, 1, 1, 3], strides=[1, 1, 1, 3],  # noqa: E731
                                    padding="VALID")
    tf_adapter.reset_kernel_counts()
    npu = on("/NPU:0", fn)
    assert tf_adapter.kernel_counts().get("MaxPool") == 1
    want = np.max(x.numpy().reshape(2, 5, 3, 4, 3), axis=-1)
    np.testing.assert_array_equal(npu.numpy(), want)


@pytest.mark.parametrize("case", range(8))
def test_winograd_3x3_convolutions_against_float64(case):
    """float32 3x3 stride-1 convolutions with 64+ channels on maps of a few
    hundred pixels take Winograd's F(2x2, 3x3) or F(4x4, 3x3) path (the
    cheaper of the two and the direct one, by the kernel's cost rule): error
    against a float64 reference stays under 3e-5 of the output's scale and
    within 40x TensorFlow CPU's own (F(4x4)'s transforms scale by up to 8),
    forward and input gradient (which runs the same kernel); the filter
    gradient takes F(4x4, 3x3) transposed (conv_grad/winograd.rs), within
    the same bounds."""
    rng = np.random.default_rng(500 + case)
    n, h, w = int(rng.integers(1, 5)), int(rng.integers(10, 33)), int(rng.integers(10, 33))
    cin, cout = int(rng.integers(64, 141)), int(rng.integers(64, 141))
    padding = "SAME" if case % 2 == 0 else "VALID"
    x = rng.normal(size=[n, h, w, cin])
    f = rng.normal(size=[3, 3, cin, cout])
    want = tf.nn.conv2d(tf.constant(x, tf.float64), tf.constant(f, tf.float64), 1, padding).numpy()
    scale = np.abs(want).max()
    errs = {}
    for dev in ("/CPU:0", "/NPU:0"):
        with tf.device(dev):
            got = tf.nn.conv2d(tf.constant(x, tf.float32), tf.constant(f, tf.float32), 1, padding)
        errs[dev] = np.abs(got.numpy() - want).max() / scale
    assert errs["/NPU:0"] < 3e-5 and errs["/NPU:0"] < 40 * max(errs["/CPU:0"], 1e-7), errs
    # Input gradient: a 3x3 stride-1 convolution of dy with the flipped filter.
    dy = rng.normal(size=want.shape)
    want_dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=x.shape, filter=tf.constant(f), out_backprop=tf.constant(dy), strides=[1, 1, 1, 1], padding=padding).numpy()
    with tf.device("/NPU:0"):
        dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=x.shape, filter=tf.constant(f, tf.float32), out_backprop=tf.constant(dy, tf.float32), strides=[1, 1, 1, 1], padding=padding)
    assert np.abs(dx.numpy() - want_dx).max() / np.abs(want_dx).max() < 3e-5
    fattrs = dict(filter_sizes=f.shape, strides=[1, 1, 1, 1], padding=padding)
    want_df = tf.raw_ops.Conv2DBackpropFilter(input=tf.constant(x), out_backprop=tf.constant(dy), **fattrs).numpy()
    tf_adapter.reset_kernel_counts()
    for dev in ("/CPU:0", "/NPU:0"):
        with tf.device(dev):
            df = tf.raw_ops.Conv2DBackpropFilter(input=tf.constant(x, tf.float32),
                                                 out_backprop=tf.constant(dy, tf.float32), **fattrs)
        errs[dev] = np.abs(df.numpy() - want_df).max() / np.abs(want_df).max()
    assert tf_adapter.kernel_counts().get("Conv2DBackpropFilter") == 1
    assert errs["/NPU:0"] < 3e-5 and errs["/NPU:0"] < 40 * max(errs["/CPU:0"], 1e-7), errs
