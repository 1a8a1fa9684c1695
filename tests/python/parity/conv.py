"""Argument-check cases of the conv family: Conv2D, depthwise and their gradients."""

import numpy as np
import tensorflow as tf
from argcheck import Case, Raises, SUCCEEDS

from .common import BIG, IAE, R, UNIMP, family, rand, raw


#
# Every conv and pool case runs in float32 (TensorFlow's default CPU kernels
# are oneDNN kernels) and float64 (TensorFlow's reference Eigen kernels). A
# float32 case where the oneDNN kernel aborts the process, accepts invalid
# input, returns a wrong shape or fails with an internal error says so in
# `onednn=` and takes the float64 (Eigen) call as its oracle.

ABORTS = "aborts the process (a CHECK failure)"
EMPTY = "returns its input as the output when there is nothing to compute"
NO_EXPLICIT_CHECK = "does not check explicit_paddings"
ABORTED = "fails with AbortedError (a oneDNN primitive it cannot create)"
EMPTY_FILTER = "rejects a filter with no elements, which the Eigen kernel takes"
NO_DEPTH_CHECK = "takes a filter of input depth 0"


def eigen_differs(dtype, eigen, note):
    """For a float64 case where TensorFlow's Eigen kernel (float64, float16)
    differs from its default float32 (oneDNN) kernel, which the NPU follows:
    `eigen` is (the Eigen kernel's outcome, the NPU's outcome, why)."""
    if eigen is None or dtype != tf.float64:
        return note, {}
    cpu, npu, why = eigen
    return f"deliberate difference: {note}, float64 ({why})", dict(cpu=cpu, npu=npu)


def floats(dtype, kw):
    return {k: (tf.cast(v, dtype) if isinstance(v, tf.Tensor) and v.dtype.is_floating else v) for k, v in kw.items()}


def out_size(size, k, dil, stride, padding, pads):
    """TensorFlow's windowed output size (the negative ones as 0)."""
    eff = (k - 1) * dil + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    extra = sum(pads) if padding == "EXPLICIT" else 0
    return max(0, int(np.trunc((size + extra - eff + stride) / stride)))


@family
def cases_conv(rng):
    cases = []
    x = rand(rng, [2, 6, 7, 4])
    f = rand(rng, [3, 2, 4, 3])
    fd = rand(rng, [3, 2, 4, 2])
    s1 = [1, 1, 1, 1]

    def conv(note, dtype, onednn=None, op="Conv2D", eigen=None, **kw):
        kw.setdefault("input", x)
        kw.setdefault("filter", fd if op == "DepthwiseConv2dNative" else f)
        kw.setdefault("strides", s1)
        kw.setdefault("padding", "VALID")
        note, fields = eigen_differs(dtype, eigen, note)
        return raw(op, note, onednn=onednn if dtype == tf.float32 else None, **fields, **floats(dtype, kw))

    def dw(note, dtype, onednn=None, **kw):
        return conv(note, dtype, onednn, op="DepthwiseConv2dNative", **kw)

    for dtype in (tf.float32, tf.float64):
        cases += [
            conv("valid", dtype),
            conv("SAME, strides", dtype, padding="SAME", strides=[1, 2, 3, 1]),
            conv("dilations", dtype, dilations=[1, 2, 2, 1]),
            conv("explicit", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 2, 0, 3, 0, 0]),
            conv("groups", dtype, filter=rand(rng, [1, 1, 2, 4])),
            conv("batch 0", dtype, EMPTY, input=rand(rng, [0, 6, 7, 4])),
            conv("height 0, SAME", dtype, EMPTY, input=rand(rng, [2, 0, 7, 4]), padding="SAME"),
            conv("height 0, VALID", dtype, input=rand(rng, [2, 0, 7, 4])),
            conv("issue 16: 0 output channels", dtype, EMPTY_FILTER, filter=rand(rng, [3, 2, 4, 0])),
            conv("0 output channels, groups", dtype, EMPTY_FILTER, filter=rand(rng, [3, 2, 2, 0])),
            conv("0 input channels", dtype, input=rand(rng, [2, 6, 7, 0]), filter=rand(rng, [3, 2, 0, 3])),
            conv("0 input channels, filter depth 2", dtype, EMPTY_FILTER, input=rand(rng, [2, 6, 7, 0]), filter=rand(rng, [3, 2, 2, 3])),
            conv("filter height 0", dtype, EMPTY_FILTER, filter=rand(rng, [0, 2, 4, 3])),
            conv("filter larger than input, VALID", dtype, EMPTY, filter=rand(rng, [7, 2, 4, 3])),
            conv("filter larger than input, SAME", dtype, filter=rand(rng, [7, 9, 4, 3]), padding="SAME"),
            conv("strides of 3", dtype, strides=[1, 1, 1], graph=False),
            conv("issue 16: stride in batch", dtype, strides=[2, 1, 1, 1], graph=False, match="strides in the batch and depth"),
            conv("issue 16: stride in depth", dtype, strides=[1, 1, 1, 2], graph=False, match="strides in the batch and depth"),
            conv("stride 0", dtype, strides=[1, 0, 1, 1], graph=False),
            conv("negative stride", dtype, strides=[1, -1, 1, 1], graph=False),
            conv("dilation in batch", dtype, dilations=[2, 1, 1, 1], graph=False, eigen=(Raises(UNIMP), Raises(IAE), "the Eigen kernel raises UnimplementedError, the default oneDNN kernel InvalidArgumentError")),
            conv("dilation in depth", dtype, dilations=[1, 1, 1, 2], graph=False, eigen=(Raises(UNIMP), Raises(IAE), "the Eigen kernel raises UnimplementedError, the default oneDNN kernel InvalidArgumentError")),
            conv("dilation 0", dtype, dilations=[1, 0, 1, 1], graph=False),
            conv("dilations of 3", dtype, dilations=[1, 1, 1], graph=False),
            conv("explicit paddings of 6", dtype, NO_EXPLICIT_CHECK, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 1, 1, 1],
                 graph=False),
            conv("negative explicit padding", dtype, NO_EXPLICIT_CHECK, padding="EXPLICIT",
                 explicit_paddings=[0, 0, -1, 0, 0, 0, 0, 0], graph=False),
            conv("explicit padding in batch", dtype, NO_EXPLICIT_CHECK, padding="EXPLICIT",
                 explicit_paddings=[1, 0, 0, 0, 0, 0, 0, 0], graph=False),
            conv("explicit paddings with VALID", dtype, NO_EXPLICIT_CHECK, explicit_paddings=[0, 0, 1, 1, 1, 1, 0, 0], graph=False),
            conv("input rank 3", dtype, ABORTS, input=rand(rng, [6, 7, 4])),
            conv("filter rank 3", dtype, filter=rand(rng, [3, 2, 4])),
            conv("filter depth 0", dtype, filter=rand(rng, [3, 2, 0, 3])),
            conv("depth not divisible", dtype, filter=rand(rng, [3, 2, 3, 3])),
            conv("groups do not divide output channels", dtype, filter=rand(rng, [1, 1, 2, 3])),
            conv("filter larger than input, negative output", dtype, filter=rand(rng, [8, 2, 4, 3])),
            dw("valid", dtype),
            dw("SAME, strides", dtype, padding="SAME", strides=[1, 2, 2, 1]),
            dw("explicit", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 0, 2, 1, 0, 0]),
            dw("issue 16: multiplier 0", dtype, EMPTY_FILTER, filter=rand(rng, [3, 2, 4, 0])),
            dw("batch 0", dtype, EMPTY, input=rand(rng, [0, 6, 7, 4])),
            dw("0 channels", dtype, EMPTY_FILTER, input=rand(rng, [2, 6, 7, 0]), filter=rand(rng, [3, 2, 0, 2])),
            dw("depth mismatch", dtype, filter=rand(rng, [3, 2, 3, 2])),
            dw("input rank 3", dtype, ABORTS, input=rand(rng, [6, 7, 4])),
            dw("filter rank 5", dtype, filter=rand(rng, [3, 2, 4, 2, 1])),
            dw("stride 0", dtype, strides=[1, 0, 0, 1], graph=False),
        ]
    # The default (oneDNN) float32 kernel takes unequal strides and
    # dilations, and raises UnimplementedError for strides in the batch or
    # depth dimension (as Conv2D); so does the NPU. TensorFlow's Eigen kernel
    # (float64, float16) refuses the former, raises InvalidArgumentError for
    # the latter.
    for note, kw, eigen, npu in [
        ("unequal strides", dict(strides=[1, 1, 2, 1]), Raises(IAE, "equal length strides"), SUCCEEDS),
        ("dilations", dict(dilations=[1, 2, 2, 1]), Raises(UNIMP, "does not support dilations"), SUCCEEDS),
        ("stride in depth", dict(strides=[1, 1, 1, 2], graph=False), Raises(IAE, "strides in the batch and depth"), Raises(UNIMP)),
        ("stride in batch", dict(strides=[2, 1, 1, 1], graph=False), Raises(IAE, "strides in the batch and depth"), Raises(UNIMP)),
    ]:
        cases.append(dw(note, tf.float32, **kw))
        cases.append(dw(note, tf.float64, eigen=(eigen, npu, "the Eigen kernel differs from the default oneDNN kernel"), **kw))
    # int32 attributes out of range: the float32 (oneDNN) graph pass aborts
    # the process on them.
    for dtype in (tf.float32, tf.float64):
        cases += [
            conv("issue 16: stride out of int32 range", dtype, ABORTS, strides=[1, BIG, 1, 1], graph=False, match="Attr strides has value 4294967297 out of range for an int32"),
            conv("issue 16: dilation out of int32 range", dtype, ABORTS, dilations=[1, BIG, 1, 1], graph=False, match="Attr dilations has value"),
            conv("stride -2**32 + 1 (1 as an int32)", dtype, ABORTS, strides=[1, -(2**32) + 1, 1, 1], graph=False, match="out of range for an int32"),
            dw("stride out of int32 range", dtype, ABORTS, strides=[1, BIG, 1, 1], graph=False, match="out of range for an int32"),
            dw("dilation out of int32 range", dtype, ABORTS, dilations=[1, BIG, 1, 1], graph=False, match="out of range for an int32"),
        ]
    # Random valid convolutions.
    for _ in range(12):
        n, h, w = (int(v) for v in (rng.integers(0, 3), rng.integers(1, 8), rng.integers(1, 8)))
        cin, kh, kw = (int(v) for v in (rng.integers(1, 5), rng.integers(1, 4), rng.integers(1, 4)))
        groups = int(rng.choice([g for g in (1, 2) if cin % g == 0]))
        cout = groups * int(rng.integers(1, 3))
        padding = str(rng.choice(["SAME", "VALID", "EXPLICIT"]))
        st = [1, int(rng.integers(1, 4)), int(rng.integers(1, 4)), 1]
        dil = [1, int(rng.integers(1, 3)), int(rng.integers(1, 3)), 1]
        pads = [0, 0] + [int(p) for p in rng.integers(0, 3, size=4)] + [0, 0] if padding == "EXPLICIT" else []
        dtype = tf.float32 if rng.random() < 0.6 else tf.float64
        oh = out_size(h, kh, dil[1], st[1], padding, pads[2:4])
        ow = out_size(w, kw, dil[2], st[2], padding, pads[4:6])
        cases.append(conv("random", dtype, EMPTY if n * oh * ow == 0 else None, input=rand(rng, [n, h, w, cin]),
                          filter=rand(rng, [kh, kw, cin // groups, cout]), strides=st, dilations=dil, padding=padding,
                          explicit_paddings=pads))
    cases += conv_grad_cases(rng)
    # NCHW: TensorFlow's Eigen kernels (float64, float16) take only NHWC; the
    # NPU takes NCHW for every type, as TensorFlow's GPU kernels do (and its
    # oneDNN CPU kernels for float16, where the CPU runs them). Oracle: the
    # CPU's NHWC result, transposed.
    xc = tf.transpose(x, [0, 3, 1, 2])
    for dtype in (tf.float64, tf.float16):
        def nhwc_conv(xc, f):
            wide = tf.float64 if xc.dtype == tf.float64 else tf.float32
            y = R.Conv2D(input=tf.transpose(tf.cast(xc, wide), [0, 2, 3, 1]), filter=tf.cast(f, wide), strides=s1, padding="VALID")
            return tf.cast(tf.transpose(y, [0, 3, 1, 2]), xc.dtype)

        nhwc_conv.__name__ = "NHWC, transposed"
        eigen = not cpu_conv_takes_nchw(dtype)
        cases.append(Case("Conv2D", lambda xc, f: R.Conv2D(input=xc, filter=f, strides=s1, padding="VALID", data_format="NCHW"),
                          note=f"deliberate difference: NCHW {dtype.name} (the Eigen kernel takes only NHWC)" if eigen
                          else f"NCHW {dtype.name} (this CPU's oneDNN kernel takes it too)",
                          args=(tf.cast(xc, dtype), tf.cast(f, dtype)), cpu_fn=nhwc_conv,
                          cpu=Raises(UNIMP, "only supports the NHWC tensor format") if eigen else None))
    return cases


def cpu_conv_takes_nchw(dtype):
    """Does TensorFlow CPU run an NCHW Conv2D of `dtype` here? Its Eigen
    kernels take only NHWC; oneDNN builds on CPUs with AVX512-FP16 run NCHW
    float16 too."""
    try:
        with tf.device("/CPU:0"):
            R.Conv2D(input=tf.zeros([1, 1, 2, 2], dtype), filter=tf.zeros([1, 1, 1, 1], dtype),
                     strides=[1, 1, 1, 1], padding="VALID", data_format="NCHW")
        return True
    except tf.errors.UnimplementedError:
        return False


def conv_grad_cases(rng):
    cases = []
    x = rand(rng, [2, 6, 7, 4])
    s1 = [1, 1, 1, 1]

    def grad(op, note, dtype, onednn=None, eigen=None, **kw):
        depthwise = op.startswith("Depthwise")
        co = 8 if depthwise else 3
        if op.endswith("Input"):
            kw.setdefault("input_sizes", [2, 6, 7, 4])
            kw.setdefault("filter", rand(rng, [3, 2, 4, 2 if depthwise else 3]))
        else:
            kw.setdefault("input", x)
            kw.setdefault("filter_sizes", [3, 2, 4, 2 if depthwise else 3])
        kw.setdefault("out_backprop", rand(rng, [2, 4, 6, co]))
        kw.setdefault("strides", s1)
        kw.setdefault("padding", "VALID")
        note, fields = eigen_differs(dtype, eigen, note)
        return raw(op, note, onednn=onednn if dtype == tf.float32 else None, **fields, **floats(dtype, kw))

    # TensorFlow's Eigen Conv2D gradient kernels raise UnimplementedError for
    # strides or dilations in the batch or depth dimension and take no
    # groups and no dilations; its default float32 (oneDNN) kernels raise
    # InvalidArgumentError and compute them; so does the NPU.
    unimp = "the Eigen kernel raises UnimplementedError, the default oneDNN kernel InvalidArgumentError"
    batch_depth = (Raises(UNIMP), Raises(IAE), unimp)
    grouped = (Raises(IAE), SUCCEEDS, "the Eigen kernel computes no grouped gradients, the default oneDNN kernel does")
    for dtype in (tf.float32, tf.float64):
        for op in ("Conv2DBackpropInput", "DepthwiseConv2dNativeBackpropInput"):
            dwise = op.startswith("Depthwise")
            co = 8 if dwise else 3
            cases += [
                grad(op, "valid", dtype),
                grad(op, "SAME, strides", dtype, padding="SAME", strides=[1, 2, 2, 1], out_backprop=rand(rng, [2, 3, 4, co])),
                grad(op, "explicit", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 1, 0, 2, 0, 0],
                     out_backprop=rand(rng, [2, 6, 8, co])),
                grad(op, "input_sizes of 3", dtype, ABORTS, input_sizes=[2, 6, 7]),
                grad(op, "input_sizes 2-D", dtype, ABORTS, input_sizes=[[2, 6, 7, 4]]),
                grad(op, "negative input size", dtype, ABORTS, input_sizes=[2, -6, 7, 4]),
                grad(op, "out_backprop mismatch", dtype, ABORTED, out_backprop=rand(rng, [2, 5, 6, co])),
                grad(op, "out_backprop rank 3", dtype, out_backprop=rand(rng, [4, 6, co])),
                grad(op, "batch 0", dtype, input_sizes=[0, 6, 7, 4], out_backprop=rand(rng, [0, 4, 6, co])),
                grad(op, "issue 16: 0 output channels", dtype, filter=rand(rng, [3, 2, 4, 0]), out_backprop=rand(rng, [2, 4, 6, 0]),
                     eigen=(SUCCEEDS, SUCCEEDS, "the Eigen kernel leaves the gradient uninitialized, the NPU zeros") if dwise else None),
                grad(op, "0 input channels", dtype, NO_DEPTH_CHECK, input_sizes=[2, 6, 7, 0], filter=rand(rng, [3, 2, 0, 2 if dwise else 3]),
                     out_backprop=rand(rng, [2, 4, 6, 0 if dwise else 3])),
                grad(op, "height 0, SAME", dtype, input_sizes=[2, 0, 7, 4], padding="SAME", out_backprop=rand(rng, [2, 0, 7, co])),
                grad(op, "stride in batch", dtype, strides=[2, 1, 1, 1], graph=False, eigen=None if dwise else batch_depth),
                grad(op, "stride in depth", dtype, strides=[1, 1, 1, 2], graph=False, eigen=None if dwise else batch_depth),
                grad(op, "strides of 3", dtype, ABORTS, strides=[1, 1, 1], graph=False),
                grad(op, "filter depth mismatch", dtype, filter=rand(rng, [3, 2, 5, 2 if dwise else 3])),
                grad(op, "stride out of int32 range", dtype, ABORTS, strides=[1, BIG, 1, 1], graph=False,
                     match="out of range for an int32"),
            ]
        cases += [
            grad("Conv2DBackpropInput", "input_sizes of 2", dtype, input_sizes=[6, 7]),
            grad("Conv2DBackpropInput", "groups", dtype, filter=rand(rng, [3, 2, 2, 4]), out_backprop=rand(rng, [2, 4, 6, 4]),
                 eigen=grouped),
            grad("Conv2DBackpropInput", "groups do not divide output channels", dtype, filter=rand(rng, [3, 2, 2, 3])),
            grad("Conv2DBackpropInput", "dilations", dtype, dilations=[1, 2, 1, 1], out_backprop=rand(rng, [2, 2, 6, 3]),
                 eigen=(Raises(IAE, "dilation rates larger than 1"), SUCCEEDS, "the Eigen kernel computes no dilated gradients")),
            grad("Conv2DBackpropInput", "dilation in batch", dtype, dilations=[2, 1, 1, 1], graph=False, eigen=batch_depth),
        ]
        for op in ("Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropFilter"):
            dwise = op.startswith("Depthwise")
            co = 8 if dwise else 3
            cases += [
                grad(op, "valid", dtype),
                grad(op, "SAME, strides", dtype, padding="SAME", strides=[1, 2, 2, 1], out_backprop=rand(rng, [2, 3, 4, co])),
                grad(op, "issue 16: 0 output channels", dtype, filter_sizes=[3, 3, 4, 0], out_backprop=rand(rng, [2, 4, 5, 0])),
                grad(op, "issue 16: 0 output channels, 3x3x3 filter", dtype, input=rand(rng, [1, 8, 8, 3]), filter_sizes=[3, 3, 3, 0],
                     out_backprop=rand(rng, [1, 6, 6, 0])),
                grad(op, "0 input channels", dtype, NO_DEPTH_CHECK, input=rand(rng, [2, 6, 7, 0]),
                     filter_sizes=[3, 2, 0, 2 if dwise else 3], out_backprop=rand(rng, [2, 4, 6, 0 if dwise else 3])),
                grad(op, "batch 0", dtype, input=rand(rng, [0, 6, 7, 4]), out_backprop=rand(rng, [0, 4, 6, co]),
                     eigen=(SUCCEEDS, SUCCEEDS, "the Eigen kernel returns uninitialized memory, the NPU zeros") if dwise else None),
                grad(op, "filter_sizes of 3", dtype, filter_sizes=[3, 2, 4]),
                grad(op, "negative filter size", dtype, filter_sizes=[3, -2, 4, 3]),
                grad(op, "out_backprop mismatch", dtype, ABORTED, out_backprop=rand(rng, [2, 4, 5, co])),
                grad(op, "input rank 3", dtype, ABORTS, input=rand(rng, [6, 7, 4])),
                grad(op, "stride in depth", dtype, strides=[1, 1, 1, 2], graph=False),
            ]
        cases += [
            grad("Conv2DBackpropFilter", "dilation out of int32 range", dtype, ABORTS, dilations=[1, BIG, 1, 1], graph=False,
                 match="out of range for an int32"),
            grad("Conv2DBackpropFilter", "groups", dtype, filter_sizes=[3, 2, 2, 4], out_backprop=rand(rng, [2, 4, 6, 4]), eigen=grouped),
        ]
    # TensorFlow's depthwise gradient kernels ignore `dilations` (any value:
    # they compute the undilated gradient); the NPU honours and checks it as
    # the forward op does, so a dilated forward gets its true gradient.
    for op in ("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"):
        for dtype in (tf.float32, tf.float64):
            cases += [
                grad(op, "deliberate difference: dilations (TensorFlow ignores them)", dtype, dilations=[1, 2, 2, 1],
                     out_backprop=rand(rng, [2, 2, 5, 8]), cpu=Raises(IAE if dtype == tf.float64 else tf.errors.AbortedError),
                     npu=SUCCEEDS),
                grad(op, "deliberate difference: dilation out of int32 range (TensorFlow ignores dilations)", dtype,
                     dilations=[1, BIG, 1, 1], graph=False, cpu=SUCCEEDS, npu=Raises(IAE, "out of range for an int32")),
            ]
    # The default (oneDNN) float32 depthwise input gradient takes 2-value
    # input_sizes and unequal strides (as Conv2DBackpropInput does); so does
    # the NPU. TensorFlow's Eigen kernel (float64, float16) refuses them.
    for op in ("DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"):
        kw = dict(strides=[1, 1, 2, 1], out_backprop=rand(rng, [2, 4, 3, 8]))
        cases += [
            grad(op, "unequal strides", tf.float32, **kw),
            grad(op, "deliberate difference: unequal strides, float64 (the Eigen kernel refuses them)", tf.float64,
                 cpu=Raises(IAE, "equal length strides"), npu=SUCCEEDS, **kw),
        ]
    cases += [
        grad("DepthwiseConv2dNativeBackpropInput", "input_sizes of 2", tf.float32, input_sizes=[6, 7]),
        grad("DepthwiseConv2dNativeBackpropInput", "deliberate difference: input_sizes of 2, float64 (the Eigen kernel takes 4 only)",
             tf.float64, input_sizes=[6, 7], cpu=Raises(IAE, "input must be 4-dimensional"), npu=SUCCEEDS),
    ]
    return cases
