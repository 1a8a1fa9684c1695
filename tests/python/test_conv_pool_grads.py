"""Convolution and pooling gradients on the NPU (Conv2DBackpropInput/Filter,
DepthwiseConv2dNativeBackpropInput/Filter, MaxPoolGrad, AvgPoolGrad) against
TensorFlow CPU in the same process, over random shapes and attributes
(strides, dilations, SAME/VALID/EXPLICIT padding, groups, odd sizes, NHWC and
NCHW, every registered dtype), raw and through tf.GradientTape of Keras layers.

Soft placement is off and `tf.device("/NPU:0")` is inside the tf.function
body: an op without an NPU kernel fails the test. The reference is the CPU's
NHWC result (NCHW inputs transposed) where the CPU computes the case and
agrees with a float64 NumPy adjoint, else the NumPy adjoint (the CPU refuses
NCHW MaxPoolGrad and, through oneDNN, gets some strided cases wrong). Half
types are compared with the reference computed in float32 on the same
rounded inputs: the NPU computes in float32 and rounds once."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import on
from tensorflow.python.util import _pywrap_util_port
from test_conv_pool import (
    FLOATS,
    TOL,
    explicit_list,
    nhwc_list,
    out_and_pads,
    random_conv_case,
    random_input,
    random_pool_case,
    rel_err,
    to_nchw,
    to_nhwc,
    wide,
)


def on_npu(fn):
    """`fn` traced with its ops placed on NPU:0 inside the function body."""

    @tf.function(autograph=False)
    def run(*args):
        with tf.device("/NPU:0"):
            return fn(*args)

    return run


# ------------------------------------------------------- NumPy adjoints ----


def np_conv_grads(x, f, dy, strides, dil, padding, pads, depthwise=False):
    """float64 NHWC (dx, df) of np_conv's convolution for output gradient dy."""
    n, h, w, cin = x.shape
    kh, kw = f.shape[:2]
    oh, ph = out_and_pads(h, kh, dil[0], strides[0], padding, pads[0])
    ow, pw = out_and_pads(w, kw, dil[1], strides[1], padding, pads[1])
    ph = (ph[0], max(ph[1], (oh - 1) * strides[0] + (kh - 1) * dil[0] + 1 - h - ph[0], 0))
    pw = (pw[0], max(pw[1], (ow - 1) * strides[1] + (kw - 1) * dil[1] + 1 - w - pw[0], 0))
    xp = np.pad(x, [(0, 0), ph, pw, (0, 0)])
    dxp = np.zeros_like(xp)
    df = np.zeros_like(f)
    if dy.size == 0:
        return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w], df
    cout = dy.shape[3]
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dil[0], kx * dil[1]
            sl = (slice(None), slice(y0, y0 + (oh - 1) * strides[0] + 1, strides[0]),
                  slice(x0, x0 + (ow - 1) * strides[1] + 1, strides[1]), slice(None))
            patch = xp[sl]
            if depthwise:
                mult = f.shape[3]
                d = dy.reshape(n, oh, ow, cin, mult)
                dxp[sl] += np.einsum("nhwcm,cm->nhwc", d, f[ky, kx])
                df[ky, kx] += np.einsum("nhwc,nhwcm->cm", patch, d)
            else:
                cg = f.shape[2]
                groups = cin // cg
                fk = f[ky, kx].reshape(cg, groups, cout // groups)
                d = dy.reshape(n, oh, ow, groups, cout // groups)
                dxp[sl] += np.einsum("nhwgj,cgj->nhwgc", d, fk).reshape(n, oh, ow, cin)
                p = patch.reshape(n, oh, ow, groups, cg)
                df[ky, kx] += np.einsum("nhwgc,nhwgj->cgj", p, d).reshape(cg, cout)
    return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w], df


def np_pool_grad(x, dy, kind, ksize, strides, padding, pads):
    """float64 NHWC input gradient; MaxPool routes to the first maximum of
    each window in row-major order (TensorFlow CPU's tie rule)."""
    n, h, w, c = x.shape
    oh, ph = out_and_pads(h, ksize[0], 1, strides[0], padding, pads[0])
    ow, pw = out_and_pads(w, ksize[1], 1, strides[1], padding, pads[1])
    dx = np.zeros_like(x)
    for oy in range(oh):
        y0 = oy * strides[0] - ph[0]
        ys = range(max(y0, 0), min(y0 + ksize[0], h))
        for ox in range(ow):
            x0 = ox * strides[1] - pw[0]
            xs = range(max(x0, 0), min(x0 + ksize[1], w))
            cells = [(iy, ix) for iy in ys for ix in xs]
            if not cells:
                continue
            g = dy[:, oy, ox, :]
            if kind == "avg":
                for iy, ix in cells:
                    dx[:, iy, ix, :] += g / len(cells)
                continue
            vals = np.stack([x[:, iy, ix, :] for iy, ix in cells])  # [cells, n, c]
            first = np.argmax(vals == vals.max(axis=0), axis=0)  # [n, c]
            for i, (iy, ix) in enumerate(cells):
                dx[:, iy, ix, :] += np.where(first == i, g, 0.0)
    return dx


def reference(cpu_fn, np_ref, empty):
    """(expected float64 NHWC result, source): see the module docstring."""
    if empty:
        return np_ref, "numpy"
    try:
        cpu = on("/CPU:0", cpu_fn).numpy().astype(np.float64)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.AbortedError):
        return np_ref, "numpy"
    if cpu.shape == np_ref.shape and rel_err(cpu, np_ref) <= 1e-5:
        return cpu, "cpu"
    return np_ref, "numpy (CPU disagrees)"


# --------------------------------------------------------- convolutions ----


def conv_attrs(case, fmt):
    sh, sw = case["strides"]
    dh, dw = case["dil"]
    return dict(
        strides=nhwc_list([1, sh, sw, 1], fmt),
        padding=case["padding"],
        explicit_paddings=explicit_list(case["pads"], fmt) if case["padding"] == "EXPLICIT" else [],
        data_format=fmt,
        dilations=nhwc_list([1, dh, dw, 1], fmt),
    )


def conv_out_shape(case, depthwise):
    n, h, w, cin = case["xshape"]
    kh, kw, _, last = case["fshape"]
    oh, _ = out_and_pads(h, kh, case["dil"][0], case["strides"][0], case["padding"], case["pads"][0])
    ow, _ = out_and_pads(w, kw, case["dil"][1], case["strides"][1], case["padding"], case["pads"][1])
    return [n, oh, ow, cin * last if depthwise else last]


OPS = {
    False: (tf.raw_ops.Conv2DBackpropInput, tf.raw_ops.Conv2DBackpropFilter),
    True: (tf.raw_ops.DepthwiseConv2dNativeBackpropInput, tf.raw_ops.DepthwiseConv2dNativeBackpropFilter),
}


def input_grad(depthwise, sizes, f, dy, case, fmt):
    return OPS[depthwise][0](input_sizes=sizes, filter=f, out_backprop=dy, **conv_attrs(case, fmt))


def filter_grad(depthwise, x, sizes, dy, case, fmt):
    return OPS[depthwise][1](input=x, filter_sizes=sizes, out_backprop=dy, **conv_attrs(case, fmt))


def check_conv_grads(depthwise, rng, cases):
    names = (["DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"] if depthwise
             else ["Conv2DBackpropInput", "Conv2DBackpropFilter"])
    sources = set()
    for dtype in FLOATS:
        for fmt in ["NHWC", "NCHW"]:
            for _ in range(cases):
                case = random_conv_case(rng, depthwise)
                yshape = conv_out_shape(case, depthwise)
                x = random_input(rng, case["xshape"], dtype)
                f = random_input(rng, case["fshape"], dtype)
                dy = random_input(rng, yshape, dtype)
                xin, dyin = (x, dy) if fmt == "NHWC" else (to_nchw(x), to_nchw(dy))
                xsizes = tf.constant(nhwc_list(case["xshape"], fmt), tf.int32)
                fsizes = tf.constant(case["fshape"], tf.int32)

                def npu_fn(xin, f, dyin, xsizes, fsizes):
                    return (input_grad(depthwise, xsizes, f, dyin, case, fmt),
                            filter_grad(depthwise, xin, fsizes, dyin, case, fmt))

                tf_adapter.reset_kernel_counts()
                dx, df = on_npu(npu_fn)(xin, f, dyin, xsizes, fsizes)
                counts = tf_adapter.kernel_counts()
                assert all(counts.get(nm) == 1 for nm in names), (counts, case)
                assert dx.device.endswith("NPU:0") and df.device.endswith("NPU:0")
                assert dx.dtype == dtype and df.dtype == dtype
                dx = dx if fmt == "NHWC" else to_nhwc(dx)
                xw, fw, dyw = (tf.cast(t, wide(dtype)) for t in (x, f, dy))
                np_dx, np_df = np_conv_grads(
                    *(t.numpy().astype(np.float64) for t in (xw, fw, dyw)),
                    case["strides"], case["dil"], case["padding"], case["pads"], depthwise)
                want_dx, s1 = reference(
                    lambda: input_grad(depthwise, case["xshape"], fw, dyw, case, "NHWC"),
                    np_dx, case["empty"])
                want_df, s2 = reference(
                    lambda: filter_grad(depthwise, xw, case["fshape"], dyw, case, "NHWC"),
                    np_df, case["empty"])
                sources |= {s1, s2}
                for got, want, what, src in [(dx, want_dx, "dx", s1), (df, want_df, "df", s2)]:
                    err = rel_err(tf.cast(got, tf.float64).numpy(), want)
                    assert err <= TOL[dtype], (what, dtype, fmt, case, err, src)
    assert "cpu" in sources


def test_conv2d_backprop_matches_cpu(strict_placement, rng):
    check_conv_grads(False, rng, cases=10)


def test_depthwise_backprop_matches_cpu(strict_placement, rng):
    check_conv_grads(True, rng, cases=8)


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize(
    "xshape,k,cout,stride,padding,groups",
    [
        ([4, 14, 14, 32], 3, 32, 1, "SAME", 1),  # 3x3 im2col, parallel tiles
        ([8, 28, 28, 16], 3, 24, 1, "SAME", 1),  # filter gradient over several tiles
        ([3, 9, 17, 48], 3, 40, 1, "VALID", 1),  # Winograd filter gradient, partial edge tiles
        ([40, 8, 8, 32], 3, 64, 1, "SAME", 1),  # Winograd filter gradient, one part per thread
        ([4, 14, 14, 64], 1, 16, 1, "VALID", 1),  # 1x1 direct GEMM
        ([4, 14, 14, 32], 1, 64, 2, "VALID", 1),  # strided 1x1
        ([1, 15, 15, 16], 3, 24, 2, "SAME", 1),  # strided 3x3, batch 1
        ([2, 32, 32, 3], 7, 16, 2, "SAME", 1),  # stem
        ([3, 13, 11, 24], 3, 36, 1, "SAME", 3),  # grouped 3x3
        ([2, 9, 9, 24], 1, 12, 1, "VALID", 4),  # grouped 1x1 direct
    ],
)
def test_conv2d_backprop_resnet_like_shapes(strict_placement, rng, xshape, k, cout, stride, padding, groups, dtype):
    """bfloat16 gradients read the bfloat16 tensors as stored (no float32
    copies): compared with float64 and TensorFlow CPU float32 gradients of
    the same rounded values, within bfloat16's output rounding. float32
    filter gradients of 3x3 stride-1 layers of 32+ channels run Winograd's
    F(4x4, 3x3) transposed: within its documented 3e-5 (README)."""
    x = random_input(rng, xshape, dtype)
    fshape = [k, k, xshape[3] // groups, cout]
    f = random_input(rng, fshape, dtype)
    y = on("/CPU:0", lambda: tf.nn.conv2d(tf.cast(x, tf.float32), tf.cast(f, tf.float32), stride, padding))
    dy = random_input(rng, y.shape, dtype)
    attrs = dict(strides=[1, stride, stride, 1], padding=padding)

    def both(x, f, dy):
        return (tf.raw_ops.Conv2DBackpropInput(input_sizes=xshape, filter=f, out_backprop=dy, **attrs),
                tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=fshape, out_backprop=dy, **attrs))

    dx, df = on_npu(both)(x, f, dy)
    assert dx.dtype == dtype and df.dtype == dtype
    winograd = dtype == tf.float32 and k == 3 and stride == 1 and groups == 1 and min(xshape[3], cout) >= 32
    tol = TOL[dtype]
    df_tol = 3e-5 if winograd else tol
    wide64 = [tf.cast(t, tf.float64).numpy() for t in (x, f, dy)]
    np_dx, np_df = np_conv_grads(*wide64, (stride, stride), (1, 1), padding, ((0, 0), (0, 0)))
    for got, ref, bound in [(dx, np_dx, tol), (df, np_df, df_tol)]:
        assert rel_err(tf.cast(got, tf.float64).numpy(), ref) <= bound
    if groups > 1 and not _pywrap_util_port.IsMklEnabled():
        return  # TensorFlow's Eigen CPU kernels have no grouped gradients
    cdx, cdf = on("/CPU:0", both, *(tf.cast(t, tf.float32) for t in (x, f, dy)))
    for got, cpu, bound in [(dx, cdx, tol), (df, cdf, df_tol)]:
        assert rel_err(tf.cast(got, tf.float32).numpy(), cpu.numpy()) <= bound


def test_conv_backprop_input_sizes_forms(strict_placement, rng):
    """input_sizes of 2 values (spatial only) as TensorFlow accepts them."""
    f = random_input(rng, [3, 3, 4, 5], tf.float32)
    dy = random_input(rng, [2, 4, 4, 5], tf.float32)
    attrs = dict(strides=[1, 2, 2, 1], padding="SAME")
    two = on_npu(lambda f, dy: tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.constant([7, 8]), filter=f, out_backprop=dy, **attrs))(f, dy)
    four = on("/CPU:0", lambda: tf.raw_ops.Conv2DBackpropInput(
        input_sizes=[2, 7, 8, 4], filter=f, out_backprop=dy, **attrs))
    assert two.shape == (2, 7, 8, 4)
    assert rel_err(two.numpy(), four.numpy()) <= 1e-5


def test_conv_backprop_errors(strict_placement):
    f = tf.ones([3, 3, 4, 5])
    dy = tf.ones([2, 4, 4, 5])
    x = tf.ones([2, 7, 7, 4])
    attrs = dict(strides=[1, 2, 2, 1], padding="SAME")
    cases = [
        (lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=[2, 9, 9, 4], filter=f, out_backprop=dy, **attrs),
         "out_backprop"),
        (lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=[2, 7, 7], filter=f, out_backprop=dy, **attrs),
         "4 values or 2 values"),
        (lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=[2, -7, 7, 4], filter=f, out_backprop=dy, **attrs),
         "must be >= 0|negative"),
        (lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=[2, 7, 7, 3], filter=f, out_backprop=dy, **attrs),
         "divisible"),
        (lambda: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=[3, 3, 4, 6], out_backprop=dy, **attrs),
         "out_backprop"),
        (lambda: tf.raw_ops.DepthwiseConv2dNativeBackpropFilter(
            input=x, filter_sizes=[3, 3, 3, 1], out_backprop=dy, **attrs), "same depth"),
    ]
    for fn, msg in cases:
        # Eagerly: the kernel itself validates (graph shape inference would
        # catch constant sizes first).
        with pytest.raises(tf.errors.InvalidArgumentError, match=msg):
            on("/NPU:0", fn)


# -------------------------------------------------------------- pooling ----


def pool_attrs(case, fmt, kind):
    a = dict(
        ksize=nhwc_list([1, *case["k"], 1], fmt),
        strides=nhwc_list([1, *case["s"], 1], fmt),
        padding=case["padding"],
        data_format=fmt,
    )
    if kind == "max" and case["padding"] == "EXPLICIT":
        a["explicit_paddings"] = explicit_list(case["pads"], fmt)
    return a


def pool_grad(kind, x, y, dy, case, fmt):
    a = pool_attrs(case, fmt, kind)
    if kind == "max":
        return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=dy, **a)
    return tf.raw_ops.AvgPoolGrad(orig_input_shape=tf.shape(x), grad=dy, **a)


def pool_forward(kind, x, case, fmt):
    a = pool_attrs(case, fmt, kind)
    if kind == "max":
        return tf.raw_ops.MaxPool(input=x, **a)
    return tf.raw_ops.AvgPool(value=x, **a)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_grad_matches_cpu(kind, strict_placement, rng):
    name = {"max": "MaxPoolGrad", "avg": "AvgPoolGrad"}[kind]
    sources = set()
    for dtype in FLOATS:
        for fmt in ["NHWC", "NCHW"]:
            for i in range(12):
                case = random_pool_case(rng, kind)
                x = random_input(rng, case["xshape"], dtype)
                if i % 2:
                    # Few distinct values: ties decide where max gradients go.
                    x = tf.cast(tf.constant(rng.integers(-2, 3, size=case["xshape"])), dtype)
                xin = x if fmt == "NHWC" else to_nchw(x)
                y = on("/NPU:0", pool_forward, kind, xin, case, fmt)
                dy = random_input(rng, y.shape, dtype)

                def npu_fn(xin, y, dy):
                    return pool_grad(kind, xin, y, dy, case, fmt)

                tf_adapter.reset_kernel_counts()
                dx = on_npu(npu_fn)(xin, y, dy)
                assert tf_adapter.kernel_counts().get(name) == 1, (name, case)
                assert dx.device.endswith("NPU:0") and dx.dtype == dtype
                dx = dx if fmt == "NHWC" else to_nhwc(dx)
                xw = tf.cast(x, wide(dtype))
                dyw = tf.cast(dy if fmt == "NHWC" else to_nhwc(dy), wide(dtype))
                yw = tf.cast(y if fmt == "NHWC" else to_nhwc(y), wide(dtype))
                np_dx = np_pool_grad(xw.numpy().astype(np.float64), dyw.numpy().astype(np.float64),
                                     kind, case["k"], case["s"], case["padding"], case["pads"])
                want, src = reference(lambda: pool_grad(kind, xw, yw, dyw, case, "NHWC"), np_dx,
                                      case["empty"])
                sources.add(src)
                err = rel_err(tf.cast(dx, tf.float64).numpy(), want)
                assert err <= TOL[dtype], (name, dtype, fmt, case, err, src)
    assert "cpu" in sources


def test_max_pool_grad_ties_follow_cpu(strict_placement, rng):
    """Every window full of equal maxima: the gradient goes exactly where
    TensorFlow's CPU kernel sends it, eagerly and inside a tf.function."""
    x = tf.constant(rng.integers(0, 2, size=[2, 9, 10, 3]), tf.float32)
    a = dict(ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
    y = tf.nn.max_pool2d(x, 3, 2, "SAME")
    dy = tf.constant(rng.uniform(1, 2, size=y.shape), tf.float32)

    def fn(x, y, dy):
        return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=y, grad=dy, **a)

    npu = on_npu(fn)(x, y, dy).numpy()
    np.testing.assert_array_equal(npu, on("/CPU:0", fn, x, y, dy).numpy())
    cpu_graph = tf.function(lambda *t: on("/CPU:0", fn, *t))(x, y, dy).numpy()
    np.testing.assert_array_equal(npu, cpu_graph)


def test_pool_grad_errors(strict_placement):
    x = tf.ones([1, 6, 6, 2])
    a = dict(ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    with pytest.raises(tf.errors.InvalidArgumentError, match="grad shape"):
        on("/NPU:0", lambda: tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=tf.ones([1, 3, 3, 2]),
                                                    grad=tf.ones([1, 2, 3, 2]), **a))
    with pytest.raises(tf.errors.InvalidArgumentError, match="orig_output shape"):
        on("/NPU:0", lambda: tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=tf.ones([1, 2, 3, 2]),
                                                    grad=tf.ones([1, 3, 3, 2]), **a))
    with pytest.raises(tf.errors.InvalidArgumentError, match="orig_input_shape"):
        on("/NPU:0", lambda: tf.raw_ops.AvgPoolGrad(orig_input_shape=[1, 6, 6], grad=tf.ones([1, 3, 3, 2]),
                                                    **a))


# --------------------------------------------------- through the tape ----


def layer_grads(model, x, device):
    def fn(x):
        with tf.device(device):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = model(x)
                loss = tf.reduce_sum(tf.square(y) + y)
            return tape.gradient(loss, [x] + model.trainable_variables)

    return tf.function(fn, autograph=False)(x)


GROUPS = 3  # of small_cnn's second layer


def small_cnn(fmt, groups=GROUPS):
    return tf.keras.Sequential([
        tf.keras.layers.Conv2D(12, 3, strides=2, padding="same", data_format=fmt),
        tf.keras.layers.Conv2D(12, 3, padding="valid", groups=groups, data_format=fmt),
        tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", data_format=fmt),
        tf.keras.layers.MaxPool2D(3, 2, padding="same", data_format=fmt),
        tf.keras.layers.Conv2D(8, 1, data_format=fmt),
        tf.keras.layers.AveragePooling2D(2, 1, padding="same", data_format=fmt),
    ])


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_keras_layer_gradients_run_on_npu(strict_placement, rng, fmt):
    """Gradients of Conv2D (strided, grouped, 1x1), DepthwiseConv2D, MaxPool2D
    and AveragePooling2D layers on the NPU equal TensorFlow CPU's (for
    channels_first: a channels_last twin with the same weights on the CPU,
    which has no NCHW kernels for these layers)."""
    tf.keras.utils.set_random_seed(7)
    model = small_cnn(fmt)
    x = random_input(rng, [3, 23, 21, 6], tf.float32)
    xin = x if fmt == "channels_last" else to_nchw(x)
    model(xin)
    tf_adapter.reset_kernel_counts()
    got = layer_grads(model, xin, "/NPU:0")
    counts = tf_adapter.kernel_counts()
    for op in ["Conv2DBackpropInput", "Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropInput",
               "DepthwiseConv2dNativeBackpropFilter", "MaxPoolGrad", "AvgPoolGrad"]:
        assert counts.get(op, 0) >= 1, (op, counts)
    # The twin's grouped layer is an ungrouped one with a block-diagonal
    # kernel (TensorFlow's Eigen CPU kernels, its default on CPUs without
    # AVX-512, have no grouped convolution); its kernel gradient's diagonal
    # blocks are the grouped kernel's gradient.
    twin = small_cnn("channels_last", groups=1)
    twin(x)
    weights = model.get_weights()
    weights[2] = block_diagonal(weights[2], GROUPS)
    twin.set_weights(weights)
    tf.config.set_soft_device_placement(True)
    want = layer_grads(twin, x, "/CPU:0")
    want[3] = diagonal_blocks(want[3].numpy(), GROUPS)
    got[0] = got[0] if fmt == "channels_last" else to_nhwc(got[0])
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert rel_err(g.numpy(), np.asarray(w)) <= 1e-5


def block_diagonal(kernel, groups):
    """[kh, kw, cin/groups, cout] grouped kernel -> the equivalent
    [kh, kw, cin, cout] kernel (output channel o reads input group o // (cout/groups))."""
    kh, kw, cin_g, cout = kernel.shape
    full = np.zeros([kh, kw, cin_g * groups, cout], kernel.dtype)
    per = cout // groups
    for g in range(groups):
        full[:, :, g * cin_g:(g + 1) * cin_g, g * per:(g + 1) * per] = kernel[:, :, :, g * per:(g + 1) * per]
    return full


def diagonal_blocks(full, groups):
    """Inverse of block_diagonal: the grouped kernel's entries of a full kernel."""
    kh, kw, cin, cout = full.shape
    cin_g, per = cin // groups, cout // groups
    return np.concatenate([full[:, :, g * cin_g:(g + 1) * cin_g, g * per:(g + 1) * per]
                           for g in range(groups)], axis=3)
