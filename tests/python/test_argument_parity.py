"""Argument checks of every NPU kernel family against TensorFlow's CPU
kernels (argcheck.py). One table of `Case`s per family of
crates/tfa-ops/src/families (elementwise, cast, matmul, conv, pool, reduce,
segment, loss, movement, random, image, inplace): valid and invalid argument sets, fixed
edge cases (size-0 dims, rank 0, negative and out-of-range axes, mismatched
shapes, bad attributes, int32 and int64 index tensors, attributes out of
int32 range) and seeded random ones (ARGCHECK_SEED; failures print it).
Every case runs eagerly; every case whose error does not come from shape
inference (`graph=True`) also inside a tf.function, on placeholders of
unknown shape. Cases marked "issue 16" are those of issue 16.

The oracle is what TensorFlow 2.21's CPU does for the same call by default.
For float32 conv/pool that is a oneDNN kernel, so those families run every
case in float32 and float64 (TensorFlow's reference Eigen kernels):

* Where the default float32 kernel aborts the process, takes invalid input,
  returns garbage (a wrong shape, stale memory) or fails with an internal
  error (AbortedError), the float32 case says so (`onednn=`) and its oracle
  is the same call in float64.
* Where the Eigen kernels (float64, float16) differ from the default
  float32 kernel, the NPU follows the default kernel and the float64 case
  is a documented difference (`eigen=`): the error class for dilations or
  strides in the batch/depth dimension (Conv2D dilations,
  Conv2DBackpropInput, DepthwiseConv2dNative), grouped and dilated conv
  gradients, unequal depthwise strides and dilations, 2-value input_sizes
  of DepthwiseConv2dNativeBackpropInput, AvgPoolGrad with a window larger
  than the input (the NPU and oneDNN: AvgPool's adjoint), AvgPoolGrad with
  ksize 0 or stride 0 and an empty output (refused, as by default), and
  depthwise gradients the Eigen kernel leaves uninitialized (the NPU gives
  zeros).

Deliberate differences from TensorFlow (`npu=` or an oracle spelled another
way, `cpu_fn=`), each where its case says why:

* NCHW conv/pool: TensorFlow's Eigen kernels take only NHWC; the NPU takes
  NCHW for every type, as TensorFlow's GPU kernels do (compared with the
  CPU's NHWC result, transposed).
* DepthwiseConv2dNativeBackpropInput/Filter: TensorFlow ignores
  `dilations` (any value; it computes the undilated gradient); the NPU
  honours and checks them, as the forward op does.
* AvgPoolGrad with a grad of another depth or more images: TensorFlow 2.21
  reads or writes out of bounds (it crashes or scrambles channels); the NPU
  refuses it ("Expected grad shape ...", as newer TensorFlow does). A grad
  whose rows/columns differ, or with fewer images, is taken as in 2.21.
* SplitV sizes that add up only by int32 wrap-around: TensorFlow crashes;
  the NPU raises ResourceExhausted (what TensorFlow raises where it tries
  to allocate such outputs).
* Transpose: an int64 perm entry outside int32 range is out of range
  (TensorFlow narrows it: 2**32 reads as 0).
* Binary ops broadcasting 6 dims that do not collapse: TensorFlow raises
  UnimplementedError; the NPU computes them.
* float64 Erf(±inf): TensorFlow gives NaN, the NPU ±1 (as TensorFlow's
  float32 Erf).
* Cast of an out-of-range float to an integer: undefined in C++;
  TensorFlow's result depends on the SIMD path, the NPU's is fixed.
* Einsum with an output label missing from the inputs or repeated:
  TensorFlow's kernel returns a result of a made-up shape (shape inference
  rejects it in a graph); the NPU raises InvalidArgumentError.
* Stateless random ops with a 1-element Philox counter: TensorFlow reads
  past its end; the NPU reads the missing word as 0.
"""

import inspect
import os

import numpy as np
import pytest
import tensorflow as tf
from argcheck import SUCCEEDS, Case, Raises, check_all
from tensorflow.python.framework import op_def_registry

SEED = int(os.environ.get("ARGCHECK_SEED", "1617"))
R = tf.raw_ops
IAE = tf.errors.InvalidArgumentError
UNIMP = tf.errors.UnimplementedError
BIG = 2**32 + 1  # an int attribute TensorFlow reads as int32


def raw(op, note="", onednn=None, **kw):
    """A case calling tf.raw_ops.<op>: keyword arguments that are op inputs
    become the case's args (placeholders in graph mode; Python lists become
    int32/float32 constants), the others are attributes. `kernel=` names the
    NPU kernel if it is not `op`; Case fields (npu=, cpu=, graph=, ...) pass
    through.

    onednn: for a float32 case, why TensorFlow's default float32 kernel (a
    oneDNN kernel) cannot be the oracle: the oracle is then the same call in
    float64, TensorFlow's reference (Eigen) kernel, its result cast back."""
    fields = {k: kw.pop(k) for k in list(kw) if k in CASE_FIELDS}
    kernel = kw.pop("kernel", op)
    # tf.raw_ops names some inputs differently from the OpDef (SplitV's
    # split_dim is `axis`): its parameters list the inputs first, in order.
    op_def = op_def_registry.get(op)
    params = list(inspect.signature(getattr(R, op)).parameters)
    inputs = dict(zip(params, op_def.input_arg))
    layout, args, attrs = [], [], {}
    for k, v in kw.items():
        if k not in inputs:
            attrs[k] = v
        elif inputs[k].number_attr or inputs[k].type_list_attr:
            ts = [tf.convert_to_tensor(t) for t in v]
            layout.append((k, len(ts)))
            args.extend(ts)
        else:
            layout.append((k, None))
            args.append(tf.convert_to_tensor(v))

    def call(*a):
        it = iter(a)
        return getattr(R, op)(**{k: ([next(it) for _ in range(n)] if n is not None else next(it)) for k, n in layout}, **attrs)

    shown = ", ".join(f"{k}={_short(v)}" for k, v in kw.items())
    note = f"{note} | {op}({shown})" if note else f"{op}({shown})"
    if onednn and any(a.dtype == tf.float32 for a in args):
        def eigen(*a):
            out = call(*[tf.cast(t, tf.float64) if t.dtype == tf.float32 else t for t in a])
            outs = out if isinstance(out, (list, tuple)) else [out]
            outs = [tf.cast(t, tf.float32) if t.dtype == tf.float64 else t for t in outs]
            return outs if isinstance(out, (list, tuple)) else outs[0]

        eigen.__name__ = "float64, TensorFlow's Eigen kernel"
        fields.setdefault("cpu_fn", eigen)
        note += f" [oneDNN float32 kernel: {onednn}]"
    return Case(kernel, call, note=note, args=tuple(args), **fields)


CASE_FIELDS = {"match", "cpu", "npu", "cpu_fn", "graph", "rtol", "atol"}


def _short(v):
    if isinstance(v, (tf.Tensor, np.ndarray)):
        t = tf.convert_to_tensor(v)
        if t.shape.num_elements() is not None and t.shape.num_elements() <= 8 and t.dtype.is_integer:
            return f"{t.dtype.name}{t.numpy().tolist()}"
        return f"{t.dtype.name}{list(t.shape)}"
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (tf.Tensor, np.ndarray)):
        return "[" + ", ".join(_short(t) for t in v) + "]"
    return repr(v)


def rand(rng, shape, dtype=tf.float32, low=-3, high=3):
    if dtype == tf.bool:
        return tf.constant(rng.random(shape) > 0.5)
    if dtype.is_integer:
        lo = 0 if dtype.is_unsigned else low
        return tf.constant(rng.integers(lo, high + 1, size=shape), dtype)
    return tf.cast(tf.constant(rng.uniform(low, high, size=shape)), dtype)


FAMILIES = {}


def family(fn):
    FAMILIES[fn.__name__.removeprefix("cases_")] = fn
    return fn


def build(name):
    rng = np.random.default_rng([SEED, sorted(FAMILIES).index(name)])
    return FAMILIES[name](rng)


# --------------------------------------------------------------- conv ----
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


# --------------------------------------------------------------- pool ----

NO_LENGTH_CHECK = "does not check the length of strides"
GRAD_GARBAGE = "computes garbage for a grad whose shape differs from the forward output's"
DEPTH_GARBAGE = "returns a wrong, empty shape for a depth window"


@family
def cases_pool(rng):
    cases = []
    x = rand(rng, [2, 6, 7, 4])
    k2, s1 = [1, 2, 2, 1], [1, 1, 1, 1]

    def pool(op, note, dtype, onednn=None, inp=None, **kw):
        kw["value" if op == "AvgPool" else "input"] = x if inp is None else inp
        kw.setdefault("ksize", k2)
        kw.setdefault("strides", s1)
        kw.setdefault("padding", "VALID")
        return raw(op, note, onednn=onednn if dtype == tf.float32 else None, **floats(dtype, kw))

    for dtype in (tf.float32, tf.float64):
        for op in ("MaxPool", "AvgPool"):
            avg = op == "AvgPool"
            cases += [
                pool(op, "valid", dtype),
                pool(op, "SAME, strides", dtype, padding="SAME", strides=[1, 2, 3, 1], ksize=[1, 3, 2, 1]),
                pool(op, "window larger than input, SAME", dtype, padding="SAME", ksize=[1, 9, 9, 1]),
                pool(op, "window larger than input, VALID", dtype, ksize=[1, 9, 2, 1]),
                pool(op, "window larger than input, VALID, strided", dtype,
                     "fails with AbortedError for a strided window past the input" if not avg else None, ksize=[1, 9, 2, 1],
                     strides=[1, 2, 1, 1]),
                pool(op, "stride larger than window", dtype, strides=[1, 3, 4, 1]),
                pool(op, "batch 0", dtype, inp=rand(rng, [0, 6, 7, 4])),
                pool(op, "height 0, SAME", dtype, padding="SAME", inp=rand(rng, [2, 0, 7, 4])),
                pool(op, "0 channels", dtype, inp=rand(rng, [2, 6, 7, 0])),
                pool(op, "input rank 3", dtype, inp=rand(rng, [6, 7, 4])),
                pool(op, "ksize of 3", dtype, ksize=[1, 2, 2], graph=False),
                pool(op, "strides of 5", dtype, NO_LENGTH_CHECK, strides=[1, 1, 1, 1, 1], graph=False),
                pool(op, "ksize 0", dtype, ksize=[1, 0, 2, 1], graph=False),
                pool(op, "stride 0", dtype, strides=[1, 0, 1, 1], graph=False),
                pool(op, "negative ksize", dtype, ksize=[1, -2, 2, 1], graph=False),
                pool(op, "issue 16: ksize in batch", dtype, ksize=[2, 2, 2, 1], graph=False,
                     match="^Pooling is not yet supported on the batch dimension.$"),
                pool(op, "issue 16: stride in batch", dtype, strides=[2, 1, 1, 1], graph=False,
                     match="^Pooling is not yet supported on the batch dimension.$"),
                pool(op, "issue 16: depth window", dtype, DEPTH_GARBAGE if avg else None, ksize=[1, 1, 1, 2], strides=[1, 1, 1, 2], graph=False),
                pool(op, "issue 16: depth and spatial window", dtype, ksize=[1, 2, 2, 2], strides=[1, 1, 1, 2], graph=False),
                pool(op, "issue 16: depth window not dividing depth", dtype, DEPTH_GARBAGE if avg else None, ksize=[1, 1, 1, 3],
                     strides=[1, 1, 1, 3], graph=False),
                pool(op, "issue 16: depth stride != depth window", dtype, DEPTH_GARBAGE if avg else None, ksize=[1, 1, 1, 2],
                     strides=[1, 1, 1, 1], graph=False),
                pool(op, "issue 16: depth stride only (ignored)", dtype, ksize=[1, 1, 1, 1], strides=[1, 1, 1, 2], graph=False),
                pool(op, "depth stride 0 (ignored)", dtype, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 0], graph=False),
                pool(op, "depth window, SAME", dtype, DEPTH_GARBAGE if avg else None, ksize=[1, 1, 1, 2], strides=[1, 1, 1, 2],
                     padding="SAME", graph=False),
                pool(op, "depth window, spatial stride", dtype, DEPTH_GARBAGE if avg else None, ksize=[1, 1, 1, 2],
                     strides=[1, 2, 1, 2], graph=False),
                pool(op, "issue 16: stride out of int32 range", dtype, ABORTS if not avg else None, strides=[1, BIG, 1, 1], graph=False,
                     match="Attr strides has value 4294967297 out of range for an int32"),
                pool(op, "ksize out of int32 range", dtype, ABORTS if not avg else None, ksize=[1, BIG, 2, 1], graph=False,
                     match="Attr ksize has value 4294967297 out of range for an int32"),
                pool(op, "stride -2**32 + 1 (1 as an int32)", dtype, ABORTS if not avg else None, strides=[1, -(2**32) + 1, 1, 1],
                     graph=False, match="out of range for an int32"),
            ]
        cases += [
            pool("MaxPool", "explicit", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 0, 0, 1, 0, 0]),
            pool("MaxPool", "explicit padding not smaller than the window", dtype, padding="EXPLICIT",
                 explicit_paddings=[0, 0, 2, 0, 0, 0, 0, 0], graph=False),
            pool("MaxPool", "explicit right padding not smaller than the window", dtype, padding="EXPLICIT",
                 explicit_paddings=[0, 0, 0, 0, 0, 3, 0, 0], graph=False),
            pool("MaxPool", "explicit padding 2**32", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 2**32, 0, 0, 0, 0, 0],
                 graph=False),
            pool("MaxPool", "negative explicit padding", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, -1, 0, 0, 0, 0, 0],
                 graph=False),
            pool("MaxPool", "explicit paddings of 4", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 0], graph=False),
            pool("MaxPool", "explicit padding in depth", dtype, padding="EXPLICIT", explicit_paddings=[0, 0, 1, 0, 0, 0, 0, 1],
                 graph=False),
            pool("MaxPool", "explicit padding with a depth window", dtype, padding="EXPLICIT", ksize=[1, 1, 1, 2],
                 strides=[1, 1, 1, 2], explicit_paddings=[0, 0, 0, 0, 0, 0, 0, 0], graph=False),
        ]
    for _ in range(10):
        op = str(rng.choice(["MaxPool", "AvgPool"]))
        n, h, w, c = (int(v) for v in (rng.integers(0, 3), rng.integers(1, 8), rng.integers(1, 8), rng.integers(1, 4)))
        ks = [1, int(rng.integers(1, 4)), int(rng.integers(1, 4)), 1]
        st = [1, int(rng.integers(1, 4)), int(rng.integers(1, 4)), 1]
        dtype = tf.float32 if rng.random() < 0.6 else tf.float64
        padding = str(rng.choice(["SAME", "VALID"]))
        empty = out_size(h, ks[1], 1, st[1], padding, []) * out_size(w, ks[2], 1, st[2], padding, []) == 0
        onednn = "fails with AbortedError for a strided window past the input" if op == "MaxPool" and empty else None
        cases.append(pool(op, "random", dtype, onednn, ksize=ks, strides=st, padding=padding, inp=rand(rng, [n, h, w, c])))
    cases += pool_grad_cases(rng)
    cases += argmax_cases(rng)
    # NCHW: TensorFlow's Eigen pooling kernels take only NHWC; the NPU takes
    # NCHW for every type. Oracle: the CPU's NHWC result, transposed.
    xc = tf.transpose(x, [0, 3, 1, 2])

    def nhwc_pool(xc):
        y = R.MaxPool(input=tf.transpose(xc, [0, 2, 3, 1]), ksize=k2, strides=s1, padding="VALID")
        return tf.transpose(y, [0, 3, 1, 2])

    nhwc_pool.__name__ = "NHWC, transposed"
    cases.append(Case("MaxPool", lambda xc: R.MaxPool(input=xc, ksize=[1, 1, 2, 2], strides=s1, padding="VALID", data_format="NCHW"),
                      note="deliberate difference: NCHW float64 (the Eigen kernel takes only NHWC)", args=(tf.cast(xc, tf.float64),),
                      cpu_fn=nhwc_pool, cpu=Raises(IAE, "only supports NHWC")))
    return cases


def argmax_cases(rng):
    """MaxPoolWithArgmax and its gradient (float32 has no oneDNN kernel for
    them: TensorFlow's own CPU kernel is the oracle in every type)."""
    cases = []
    ties = tf.constant(rng.integers(0, 3, size=[2, 5, 6, 3]), tf.float32)
    for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16):
        for batch in (False, True):
            for padding, ks, st in (("VALID", [1, 2, 2, 1], [1, 2, 2, 1]), ("SAME", [1, 3, 2, 1], [1, 2, 1, 1])):
                x = tf.cast(ties, dtype)
                kw = dict(ksize=ks, strides=st, padding=padding, include_batch_in_index=batch)
                cases.append(raw("MaxPoolWithArgmax", f"ties {dtype.name}", input=x, **kw))
                _, arg = R.MaxPoolWithArgmax(input=x, **kw)
                cases.append(raw("MaxPoolGradWithArgmax", f"{dtype.name}", input=x, grad=tf.cast(rand(rng, arg.shape), dtype),
                                 argmax=arg, **kw))
    x = rand(rng, [2, 5, 6, 3])
    kw = dict(ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    cases += [
        raw("MaxPoolWithArgmax", "ksize of 3", input=x, ksize=[1, 2, 2], strides=[1, 1, 1, 1], padding="VALID", graph=False),
        raw("MaxPoolWithArgmax", "ksize in batch", input=x, ksize=[2, 2, 2, 1], strides=[1, 1, 1, 1], padding="VALID", graph=False),
        raw("MaxPoolWithArgmax", "input rank 3", input=rand(rng, [5, 6, 3]), **kw),
        raw("MaxPoolWithArgmax", "window larger than input", input=x, ksize=[1, 9, 2, 1], strides=[1, 1, 1, 1], padding="VALID"),
        raw("MaxPoolWithArgmax", "batch 0", input=rand(rng, [0, 5, 6, 3]), **kw),
        raw("MaxPoolGradWithArgmax", "grad of the wrong shape", input=x, grad=rand(rng, [2, 2, 2, 3]),
            argmax=tf.zeros([2, 2, 2, 3], tf.int64), **kw),
    ]
    return cases


def pool_grad_cases(rng):
    cases = []
    x = rand(rng, [2, 6, 7, 4])
    k2, s1 = [1, 2, 2, 1], [1, 1, 1, 1]

    def mpg(note, dtype, onednn=None, x=x, **kw):
        a = dict(ksize=kw.pop("ksize", k2), strides=kw.pop("strides", s1), padding=kw.pop("padding", "VALID"))
        try:
            y = R.MaxPool(input=x, **a)
        except (tf.errors.OpError, ValueError):
            y = tf.zeros([2, 5, 6, 4])
        kw.setdefault("orig_output", y)
        kw.setdefault("grad", rand(rng, y.shape))
        return raw("MaxPoolGrad", note, onednn=onednn if dtype == tf.float32 else None, **floats(dtype, dict(orig_input=x, **a, **kw)))

    def apg(note, dtype, onednn=None, eigen=None, **kw):
        kw.setdefault("orig_input_shape", [2, 6, 7, 4])
        kw.setdefault("grad", rand(rng, [2, 5, 6, 4]))
        kw.setdefault("ksize", k2)
        kw.setdefault("strides", s1)
        kw.setdefault("padding", "VALID")
        note, fields = eigen_differs(dtype, eigen, note)
        return raw("AvgPoolGrad", note, onednn=onednn if dtype == tf.float32 else None, **fields, **floats(dtype, kw))

    zeros = "the Eigen kernel takes it and returns zeros; the default oneDNN kernel refuses it"

    for dtype in (tf.float32, tf.float64):
        cases += [
            mpg("valid", dtype),
            mpg("SAME, strides", dtype, padding="SAME", strides=[1, 2, 2, 1], ksize=[1, 3, 3, 1]),
            mpg("grad shape mismatch", dtype, grad=rand(rng, [2, 5, 5, 4])),
            mpg("orig_output shape mismatch", dtype, orig_output=rand(rng, [2, 5, 5, 4])),
            mpg("batch 0", dtype, x=rand(rng, [0, 6, 7, 4])),
            mpg("ksize in batch", dtype, ksize=[2, 2, 2, 1], graph=False),
            mpg("stride 0", dtype, strides=[1, 0, 1, 1], graph=False),
            mpg("depth window", dtype, ksize=[1, 1, 1, 2], strides=[1, 1, 1, 2], graph=False),
            mpg("depth stride only (ignored)", dtype, ksize=[1, 2, 2, 1], strides=[1, 1, 1, 2], graph=False),
            mpg("ksize of 3", dtype, ksize=[1, 2, 2], graph=False),
            mpg("issue 16: stride out of int32 range", dtype, strides=[1, BIG, 1, 1], graph=False, match="out of range for an int32"),
            apg("valid", dtype),
            apg("SAME, strides", dtype, padding="SAME", strides=[1, 2, 2, 1], ksize=[1, 3, 3, 1], grad=rand(rng, [2, 3, 4, 4])),
            apg("window larger than the input, SAME", dtype, padding="SAME", ksize=[1, 9, 9, 1], grad=rand(rng, [2, 6, 7, 4]),
                eigen=(SUCCEEDS, SUCCEEDS, "the Eigen kernel's windows overhang the input there; the NPU computes AvgPool's adjoint, "
                       "as the default oneDNN kernel does")),
            apg("issue 16: grad smaller than the forward output (in bounds)", dtype, GRAD_GARBAGE, grad=rand(rng, [2, 4, 5, 4])),
            apg("grad with fewer images", dtype, "refuses a grad with fewer images, which the Eigen kernel takes",
                grad=rand(rng, [1, 5, 6, 4])),
            apg("issue 16: grad with more rows than the output", dtype, GRAD_GARBAGE, grad=rand(rng, [2, 6, 6, 4])),
            apg("issue 16: grad with rows past the input", dtype, grad=rand(rng, [2, 8, 6, 4])),
            apg("grad with rows past the input, strided", dtype, strides=[1, 2, 2, 1], grad=rand(rng, [2, 5, 3, 4])),
            apg("grad rank 3", dtype, ABORTS, grad=rand(rng, [5, 6, 4])),
            apg("orig_input_shape of 3", dtype, ABORTS, orig_input_shape=[2, 6, 7]),
            apg("orig_input_shape 2-D", dtype, ABORTS, orig_input_shape=[[2, 6, 7, 4]]),
            apg("negative orig_input_shape", dtype, orig_input_shape=[2, -6, 7, 4]),
            apg("batch 0", dtype, orig_input_shape=[0, 6, 7, 4], grad=rand(rng, [0, 5, 6, 4])),
            apg("empty input, stride 0", dtype, orig_input_shape=[0, 6, 7, 4], strides=[1, 0, 1, 1], graph=False,
                eigen=(SUCCEEDS, Raises(IAE), zeros)),
            apg("stride 0", dtype, strides=[1, 0, 1, 1], graph=False),
            apg("ksize 0", dtype, ksize=[1, 0, 1, 1], graph=False, eigen=(SUCCEEDS, Raises(IAE), zeros)),
            apg("ksize in batch", dtype, ksize=[2, 2, 2, 1], graph=False),
            apg("stride in batch", dtype, strides=[2, 1, 1, 1], graph=False),
            apg("depth window", dtype, ABORTED, ksize=[1, 1, 1, 2], strides=[1, 1, 1, 2], graph=False),
            apg("issue 16: depth stride only (ignored)", dtype, strides=[1, 1, 1, 2], graph=False),
            apg("issue 16: depth stride, grad rows past the input", dtype, strides=[1, 1, 1, 2], grad=rand(rng, [2, 8, 6, 4]), graph=False),
            apg("window larger than input, VALID", dtype, ksize=[1, 9, 2, 1], graph=False),
            apg("issue 16: stride out of int32 range", dtype, ABORTS, strides=[1, BIG, 1, 1], graph=False, match="out of range for an int32"),
        ]
        # A grad with another depth, or more images: TensorFlow 2.21 reads or
        # writes out of bounds (the process crashes) or scrambles channels;
        # the NPU refuses it, as newer TensorFlow refuses every mismatch.
        for note, shape in [("fewer channels", [2, 5, 6, 2]), ("more channels", [2, 5, 6, 5]), ("more images", [3, 5, 6, 4])]:
            cases.append(apg(f"deliberate difference: grad with {note} (TensorFlow: out of bounds)", dtype, grad=rand(rng, shape),
                             npu=Raises(IAE, "Expected grad shape")))
    return cases


# -------------------------------------------------------- elementwise ----

BINARY = ["AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "SquaredDifference", "DivNoNan", "Pow",
          "FloorDiv", "FloorMod", "Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual"]
UNARY = ["Neg", "Square", "Sqrt", "Rsqrt", "Exp", "Log", "Relu", "Abs", "Reciprocal", "Expm1", "Log1p", "Relu6", "Elu",
         "Selu", "Softplus", "Sigmoid", "Tanh", "Erf", "Erfc", "Floor", "Ceil", "Round", "IsFinite", "IsNan", "IsInf",
         "ZerosLike", "OnesLike", "Softsign", "Sign", "Rint", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
         "Asinh", "Acosh", "Atanh", "LeakyRelu"]
GRADS = ["ReluGrad", "Relu6Grad", "EluGrad", "SeluGrad", "SoftplusGrad", "SigmoidGrad", "TanhGrad", "RsqrtGrad", "SqrtGrad",
         "SoftsignGrad", "LeakyReluGrad"]


def broadcastable(rng, shape):
    """A random shape that broadcasts against `shape`."""
    out = [int(d) if rng.random() < 0.6 else 1 for d in shape]
    return out[int(rng.integers(0, len(out) + 1)):]


def erf_f64_infinities():
    """TensorFlow's float64 Erf gives NaN at ±inf (its float32 Erf ±1); the
    NPU gives ±1 in both. Oracle: the CPU's Erf with ±1 put at ±inf."""
    x = tf.constant([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -2.5], tf.float64)

    def limit_at_inf(x):
        return tf.where(tf.math.is_inf(x), tf.sign(x), R.Erf(x=x))

    limit_at_inf.__name__ = "Erf with its limits at ±inf"
    return Case("Erf", lambda x: R.Erf(x=x), args=(x,), cpu_fn=limit_at_inf,
                note="deliberate difference: float64 Erf(±inf) (TensorFlow: NaN; the NPU: ±1, as TensorFlow's float32)")


def rank6(op, x, y):
    """TensorFlow's binary kernels stop at rank 5 for a broadcast that does
    not collapse (UnimplementedError "Broadcast between ... is not supported
    yet"); the NPU broadcasts any rank. Oracle: the CPU on inputs broadcast
    beforehand."""
    def pre_broadcast(x, y):
        shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(y))
        return getattr(R, op)(x=tf.tile(x, shape // tf.shape(x)), y=tf.tile(y, shape // tf.shape(y)))

    pre_broadcast.__name__ = "inputs broadcast beforehand"
    return Case(op, lambda x, y: getattr(R, op)(x=x, y=y), args=(x, y), cpu_fn=pre_broadcast,
                cpu=Raises(UNIMP, "is not supported yet"),
                note=f"deliberate difference: rank-6 broadcast (TensorFlow's kernels stop at rank 5) | {op}({_short(x)}, {_short(y)})")


@family
def cases_elementwise(rng):
    cases = []
    for op in BINARY:
        dtype = tf.float32 if op in ("RealDiv", "DivNoNan", "Pow") or rng.random() < 0.5 else tf.int64
        if op in ("RealDiv", "DivNoNan", "Pow") and rng.random() < 0.5:
            dtype = tf.float64
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4)))]
        other = broadcastable(rng, shape)
        x, y = rand(rng, shape, dtype, 1, 4), rand(rng, other, dtype, 1, 4)
        cases += [
            raw(op, "broadcast", x=x, y=y),
            raw(op, "broadcast swapped", x=y, y=x),
            raw(op, "rank 0", x=rand(rng, [], dtype, 1, 4), y=rand(rng, [2, 3], dtype, 1, 4)),
            raw(op, "size 0 against 1", x=rand(rng, [0, 3], dtype), y=rand(rng, [1, 3], dtype, 1, 4)),
            raw(op, "incompatible shapes", x=rand(rng, [2, 3], dtype), y=rand(rng, [3, 2], dtype)),
            raw(op, "incompatible size 0 against 2", x=rand(rng, [0], dtype), y=rand(rng, [2], dtype)),
            rank6(op, rand(rng, [2, 1, 2, 1, 2, 1], dtype, 1, 4), rand(rng, [1, 2, 1, 2, 1, 2], dtype, 1, 4)),
        ]
    i64 = tf.int64
    cases += [
        raw("FloorDiv", "integer division by zero", x=tf.constant([4, 5], i64), y=tf.constant([2, 0], i64)),
        raw("FloorMod", "integer modulo by zero", x=tf.constant([4, 5], i64), y=tf.constant([2, 0], i64)),
        raw("FloorDiv", "unsigned division by zero", x=tf.constant([4, 5], tf.uint8), y=tf.constant([2, 0], tf.uint8)),
        raw("FloorDiv", "float division by zero", x=tf.constant([4.0, -5.0, 0.0]), y=tf.constant([0.0, 0.0, 0.0])),
        raw("FloorMod", "float modulo by zero", x=tf.constant([4.0, -5.0]), y=tf.constant([0.0, 0.0])),
        raw("FloorDiv", "negative operands", x=tf.constant([-7, 7, -7, 7], i64), y=tf.constant([2, -2, -2, 2], i64)),
        raw("FloorMod", "negative operands", x=tf.constant([-7, 7, -7, 7], i64), y=tf.constant([2, -2, -2, 2], i64)),
        raw("FloorDiv", "int8 min by -1", x=tf.constant([-128], tf.int8), y=tf.constant([-1], tf.int8)),
        raw("DivNoNan", "zero denominators", x=tf.constant([1.0, 0.0, -2.0]), y=tf.constant([0.0, 0.0, 4.0])),
        raw("AddN", "three", inputs=[rand(rng, [2, 3]) for _ in range(3)]),
        raw("AddN", "one", inputs=[rand(rng, [2, 3], i64)], graph=False),
        raw("AddN", "shape mismatch", inputs=[rand(rng, [2, 3]), rand(rng, [3, 2])]),
        raw("AddN", "no broadcasting", inputs=[rand(rng, [2, 3]), rand(rng, [1, 3])]),
        raw("AddN", "size 0", inputs=[rand(rng, [0, 3]), rand(rng, [0, 3])]),
        raw("BitwiseAnd", "broadcast", x=rand(rng, [2, 3], i64), y=rand(rng, [3], i64)),
        raw("BitwiseOr", "incompatible", x=rand(rng, [2, 3], tf.uint8), y=rand(rng, [2], tf.uint8)),
        raw("BitwiseXor", "int32", x=rand(rng, [4], tf.int32), y=rand(rng, [1], tf.int32)),
        raw("LogicalAnd", "broadcast", x=rand(rng, [2, 1], tf.bool), y=rand(rng, [3], tf.bool)),
        raw("LogicalOr", "incompatible", x=rand(rng, [2], tf.bool), y=rand(rng, [3], tf.bool)),
        raw("LogicalNot", "size 0", x=rand(rng, [0, 2], tf.bool)),
        raw("BiasAdd", "valid", value=rand(rng, [2, 3, 4]), bias=rand(rng, [4])),
        raw("BiasAdd", "NCHW", value=rand(rng, [2, 3, 4, 5]), bias=rand(rng, [3]), data_format="NCHW"),
        raw("BiasAdd", "NCHW rank 3", value=rand(rng, [2, 3, 4]), bias=rand(rng, [3]), data_format="NCHW"),
        raw("BiasAdd", "NCHW rank 2", value=rand(rng, [2, 3]), bias=rand(rng, [3]), data_format="NCHW"),
        raw("BiasAdd", "bias size mismatch", value=rand(rng, [2, 3, 4]), bias=rand(rng, [3])),
        raw("BiasAdd", "bias rank 2", value=rand(rng, [2, 3, 4]), bias=rand(rng, [1, 4])),
        raw("BiasAdd", "bias rank 0", value=rand(rng, [2, 3, 4]), bias=rand(rng, [])),
        raw("BiasAdd", "value rank 1", value=rand(rng, [4]), bias=rand(rng, [4])),
        raw("BiasAdd", "size 0", value=rand(rng, [0, 4], i64), bias=rand(rng, [4], i64)),
        raw("BiasAddV1", "valid", value=rand(rng, [2, 4]), bias=rand(rng, [4])),
        raw("BiasAddV1", "bias size mismatch", value=rand(rng, [2, 4]), bias=rand(rng, [3])),
        raw("Fill", "int32 dims", dims=[2, 3], value=tf.constant(1.5)),
        raw("Fill", "int64 dims", dims=tf.constant([2, 0, 3], i64), value=tf.constant(7, i64)),
        raw("Fill", "scalar result", dims=tf.zeros([0], tf.int32), value=tf.constant(True)),
        raw("Fill", "negative dim", dims=[2, -3], value=tf.constant(1.5)),
        raw("Fill", "dims rank 2", dims=[[2, 3]], value=tf.constant(1.5)),
        raw("Fill", "value rank 1", dims=[2, 3], value=tf.constant([1.5])),
        raw("Select", "same shapes", condition=rand(rng, [2, 3], tf.bool), x=rand(rng, [2, 3]), y=rand(rng, [2, 3])),
        raw("Select", "vector condition", condition=rand(rng, [2], tf.bool), x=rand(rng, [2, 3], i64), y=rand(rng, [2, 3], i64)),
        raw("Select", "scalar condition", condition=tf.constant(True), x=rand(rng, [2, 3]), y=rand(rng, [2, 3])),
        raw("Select", "condition mismatch", condition=rand(rng, [3], tf.bool), x=rand(rng, [2, 3]), y=rand(rng, [2, 3])),
        raw("Select", "t/e mismatch", condition=rand(rng, [2, 3], tf.bool), x=rand(rng, [2, 3]), y=rand(rng, [3, 2])),
        raw("Select", "vector condition, scalar t", condition=rand(rng, [2], tf.bool), x=rand(rng, []), y=rand(rng, [])),
        raw("SelectV2", "broadcast", condition=rand(rng, [2, 1], tf.bool), t=rand(rng, [3]), e=rand(rng, [])),
        raw("SelectV2", "incompatible", condition=rand(rng, [2], tf.bool), t=rand(rng, [3]), e=rand(rng, [3])),
        raw("SelectV2", "size 0", condition=rand(rng, [0, 1], tf.bool), t=rand(rng, [1, 2], tf.int32), e=rand(rng, [2], tf.int32)),
    ]
    for op in UNARY:
        dtype = tf.float64 if rng.random() < 0.3 else tf.float32
        if op == "Erf":
            dtype = tf.float32
        arg = "features" if op in ("Relu", "Relu6", "Elu", "Selu", "Softplus", "Softsign", "LeakyRelu") else "x"
        cases += [
            raw(op, "random", **{arg: rand(rng, [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4)))], dtype)}),
            raw(op, "special values", **{arg: tf.constant([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -2.5], dtype)}),
        ]
        if op == "Erf":
            cases.append(erf_f64_infinities())
    for alpha in (0.0, -0.5, 2.0):
        x = rand(rng, [3, 4])
        cases += [
            raw("LeakyRelu", f"alpha {alpha}", features=x, alpha=alpha),
            raw("LeakyReluGrad", f"alpha {alpha}", gradients=rand(rng, [3, 4]), features=x, alpha=alpha),
        ]
    for op in GRADS:
        a = "y" if op in ("SigmoidGrad", "TanhGrad", "RsqrtGrad", "SqrtGrad") else "gradients"
        b = "dy" if a == "y" else ("features" if op != "EluGrad" and op != "SeluGrad" else "outputs")
        cases += [
            raw(op, "same shape", **{a: rand(rng, [2, 3], tf.float32, 1, 3), b: rand(rng, [2, 3], tf.float32, 1, 3)}),
            raw(op, "shape mismatch", **{a: rand(rng, [2, 3]), b: rand(rng, [3, 2])}),
            raw(op, "no broadcasting", **{a: rand(rng, [2, 3]), b: rand(rng, [1, 3])}),
        ]
    cases += clip_cases(rng)
    return cases


def clip_cases(rng):
    x = rand(rng, [3, 4])
    x_nan = tf.constant([[1.0, np.nan, -2.0, 5.0]])
    cases = []
    for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int64):
        t = tf.cast(x, dtype)
        cases += [
            raw("ClipByValue", f"scalar bounds {dtype.name}", t=t, clip_value_min=tf.cast(-1, dtype), clip_value_max=tf.cast(1, dtype)),
            raw("ClipByValue", f"tensor bounds {dtype.name}", t=t, clip_value_min=tf.cast(rand(rng, [3, 4]) - 1, dtype),
                clip_value_max=tf.cast(rand(rng, [3, 4]) + 1, dtype)),
        ]
    cases += [
        raw("ClipByValue", "lo > hi", t=x, clip_value_min=2.0, clip_value_max=-2.0),
        raw("ClipByValue", "NaN input", t=x_nan, clip_value_min=-1.0, clip_value_max=1.0),
        raw("ClipByValue", "NaN bounds", t=x_nan, clip_value_min=float("nan"), clip_value_max=float("nan")),
        raw("ClipByValue", "bound of another shape", t=x, clip_value_min=rand(rng, [4]), clip_value_max=1.0),
        raw("ClipByValue", "bound vector of 1", t=x, clip_value_min=[0.0], clip_value_max=1.0),
        raw("ClipByValue", "empty", t=rand(rng, [0, 4]), clip_value_min=0.0, clip_value_max=1.0),
    ]
    return cases


@family
def cases_cast(rng):
    cases = []
    f32, i64 = tf.float32, tf.int64
    special = tf.constant([0.0, -0.0, 1.5, -1.5, 2.5, -2.5, 1e10, -1e10, np.inf, -np.inf, np.nan, 3e38], f32)
    for dst in (tf.int64, tf.int32, tf.int8, tf.uint8, tf.bool, tf.float16, tf.bfloat16, tf.float64):
        cases.append(raw("Cast", f"float32 specials to {dst.name}", x=special, DstT=dst))
    # A float out of the integer type's range (or NaN, inf) converts with
    # undefined behaviour in C++: TensorFlow's result depends on the SIMD
    # path an element takes. The NPU's is fixed; it is not compared.
    for src, dst in ((f32, tf.uint32), (f32, tf.uint64), (tf.bfloat16, tf.uint8), (tf.bfloat16, tf.int8)):
        cases.append(raw("Cast", f"deliberate difference: out-of-range {src.name} to {dst.name} (undefined in TensorFlow)",
                         x=tf.cast(special, src), DstT=dst, cpu=SUCCEEDS, npu=SUCCEEDS))
    for src in (tf.int64, tf.int8, tf.uint16, tf.bool, tf.float64, tf.bfloat16):
        for dst in (tf.float32, tf.int32, tf.uint8, tf.bool):
            if src != dst:
                lo, hi = (0, 255) if src.is_floating else (-300, 300)
                cases.append(raw("Cast", f"{src.name} to {dst.name}", x=rand(rng, [3, 4], src, lo, hi), DstT=dst))
    cases += [
        raw("Cast", "Truncate", x=tf.constant([1.0e10, -3.7], tf.float64), DstT=f32, Truncate=True),
        raw("Cast", "size 0", x=rand(rng, [0, 3], i64), DstT=f32),
        raw("Cast", "rank 0", x=tf.constant(2**40, i64), DstT=tf.int32),
        raw("Cast", "int64 extremes to float", x=tf.constant([2**63 - 1, -(2**63)], i64), DstT=tf.float32),
    ]
    return cases


# ------------------------------------------------------------- matmul ----


@family
def cases_matmul(rng):
    cases = []
    for dtype in (tf.float32, tf.float64, tf.int64):
        cases += [
            raw("MatMul", "valid", a=rand(rng, [2, 3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("MatMul", "transposes", a=rand(rng, [3, 2], dtype), b=rand(rng, [4, 3], dtype), transpose_a=True, transpose_b=True),
            raw("MatMul", "inner 0", a=rand(rng, [2, 0], dtype), b=rand(rng, [0, 4], dtype)),
            raw("MatMul", "rows 0", a=rand(rng, [0, 3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("MatMul", "inner mismatch", a=rand(rng, [2, 3], dtype), b=rand(rng, [4, 4], dtype)),
            raw("MatMul", "rank 3", a=rand(rng, [1, 2, 3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("MatMul", "rank 1", a=rand(rng, [3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("BatchMatMulV2", "broadcast batch", x=rand(rng, [2, 1, 2, 3], dtype), y=rand(rng, [3, 3, 4], dtype)),
            raw("BatchMatMulV2", "adjoints", x=rand(rng, [2, 3, 2], dtype), y=rand(rng, [2, 4, 3], dtype), adj_x=True, adj_y=True),
            raw("BatchMatMulV2", "rank 2", x=rand(rng, [2, 3], dtype), y=rand(rng, [3, 4], dtype)),
            raw("BatchMatMulV2", "batch 0", x=rand(rng, [0, 2, 3], dtype), y=rand(rng, [1, 3, 4], dtype)),
            raw("BatchMatMulV2", "inner 0", x=rand(rng, [2, 2, 0], dtype), y=rand(rng, [2, 0, 4], dtype)),
            raw("BatchMatMulV2", "batch mismatch", x=rand(rng, [2, 2, 3], dtype), y=rand(rng, [3, 3, 4], dtype)),
            raw("BatchMatMulV2", "inner mismatch", x=rand(rng, [2, 2, 3], dtype), y=rand(rng, [2, 2, 4], dtype)),
            raw("BatchMatMulV2", "rank 1", x=rand(rng, [3], dtype), y=rand(rng, [3, 4], dtype)),
        ]
    f32 = tf.float32
    cases += [
        raw("Einsum", "matmul", inputs=[rand(rng, [2, 3]), rand(rng, [3, 4])], equation="ij,jk->ik"),
        raw("Einsum", "batch ellipsis", inputs=[rand(rng, [5, 2, 3]), rand(rng, [1, 3, 4])], equation="...ij,...jk->...ik"),
        raw("Einsum", "reduction", inputs=[rand(rng, [2, 3, 4])], equation="ijk->ik"),
        raw("Einsum", "transpose", inputs=[rand(rng, [2, 3, 4])], equation="ijk->kji"),
        raw("Einsum", "outer", inputs=[rand(rng, [2]), rand(rng, [3])], equation="i,j->ij"),
        raw("Einsum", "size 0", inputs=[rand(rng, [2, 0]), rand(rng, [0, 4])], equation="ij,jk->ik"),
        raw("Einsum", "dimension mismatch", inputs=[rand(rng, [2, 3]), rand(rng, [4, 4])], equation="ij,jk->ik"),
        raw("Einsum", "rank mismatch", inputs=[rand(rng, [2, 3, 1]), rand(rng, [3, 4])], equation="ij,jk->ik"),
        # TensorFlow's CPU kernel takes these equations (shape inference
        # rejects them in a graph) and returns a result of a made-up shape.
        raw("Einsum", "deliberate difference: output label not in the inputs (TensorFlow: a [2] result)",
            inputs=[rand(rng, [2, 3]), rand(rng, [3, 4])], equation="ij,jk->iz", graph=False, cpu=SUCCEEDS, npu=Raises(IAE)),
        raw("Einsum", "deliberate difference: repeated output label (TensorFlow: a [2, 2] result)",
            inputs=[rand(rng, [2, 3]), rand(rng, [3, 4])], equation="ij,jk->ii", graph=False, cpu=SUCCEEDS, npu=Raises(IAE)),
        raw("Einsum", "operand count mismatch", inputs=[rand(rng, [2, 3])], equation="ij,jk->ik", graph=False),
        raw("Einsum", "ellipsis broadcast mismatch", inputs=[rand(rng, [5, 2, 3]), rand(rng, [4, 3, 4])], equation="...ij,...jk->...ik"),
        raw("Einsum", "diagonal", inputs=[rand(rng, [3, 3], f32)], equation="ii->i"),
    ]
    return cases


# ------------------------------------------------------------- reduce ----


@family
def cases_reduce(rng):
    cases = []
    x = rand(rng, [2, 3, 4])
    i64 = tf.int64
    # TopKV2 (tf.math.top_k, tf.sort): ties to the lower index; NaN is left
    # out (TensorFlow's order for it depends on the sort it takes).
    for dtype in (tf.float32, tf.float64, tf.bfloat16, tf.int64, tf.int32, tf.uint8):
        shape = [int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 4)))]
        t = rand(rng, shape, dtype, 0, 4)  # few distinct values: many ties
        cases.append(raw("TopKV2", f"random {dtype.name}", input=t, k=int(rng.integers(0, shape[-1] + 1))))
    x5 = rand(rng, [3, 5])
    cases += [
        raw("TopKV2", "k = columns", input=x5, k=5),
        raw("TopKV2", "int64 k and indices", input=x5, k=tf.constant(2, i64), index_type=tf.int64),
        raw("TopKV2", "int16 indices", input=x5, k=3, index_type=tf.int16),
        raw("TopKV2", "k over columns", input=x5, k=6),
        raw("TopKV2", "negative k", input=x5, k=-1),
        raw("TopKV2", "k vector", input=x5, k=[2]),
        raw("TopKV2", "rank 0", input=tf.constant(1.0), k=0),
        raw("TopKV2", "no rows", input=rand(rng, [0, 4]), k=2),
        raw("TopKV2", "infinities and zeros", input=tf.constant([[0.0, -0.0, np.inf, -np.inf, 1.0, 0.0]]), k=6),
    ]
    # Range of int64 and float types (int32: TensorFlow's own kernel).
    for dtype, (start, limit, delta) in [(i64, (3, 20, 4)), (i64, (5, -7, -3)), (tf.float32, (0.0, 1.0, 0.1)),
                                         (tf.float32, (2.5, -1.0, -0.3)), (tf.float64, (0.0, 1.0, 0.1)),
                                         (tf.bfloat16, (0.0, 3.0, 0.1)), (tf.float16, (1.0, 9.0, 0.7)),
                                         (tf.float32, (1.0, 1.0, 0.5))]:
        args = [tf.constant(v, dtype) for v in (start, limit, delta)]
        cases.append(raw("Range", f"{dtype.name} {start}:{limit}:{delta}", start=args[0], limit=args[1], delta=args[2]))
    f = tf.float32
    cases += [
        raw("Range", "delta 0", start=tf.constant(0.0), limit=tf.constant(1.0), delta=tf.constant(0.0)),
        raw("Range", "start over limit", start=tf.constant(5, i64), limit=tf.constant(1, i64), delta=tf.constant(1, i64)),
        raw("Range", "start under limit, delta < 0", start=tf.constant(1.0), limit=tf.constant(5.0), delta=tf.constant(-1.0)),
        raw("Range", "infinite limit", start=tf.constant(0.0), limit=tf.constant(np.inf, f), delta=tf.constant(1.0)),
        raw("Range", "NaN delta", start=tf.constant(0.0), limit=tf.constant(1.0), delta=tf.constant(np.nan, f)),
        raw("Range", "start of one element", start=tf.constant([1], i64), limit=tf.constant(4, i64), delta=tf.constant(1, i64)),
        raw("Range", "start vector", start=tf.constant([1, 2], i64), limit=tf.constant(4, i64), delta=tf.constant(1, i64)),
    ]
    # Cumsum / Cumprod: a scalar axis in [-rank, rank).
    for op in ("Cumsum", "Cumprod"):
        cases += [
            raw(op, "valid", x=x, axis=1, exclusive=True, reverse=True),
            raw(op, "int64 axis", x=tf.cast(x, tf.int64), axis=tf.constant(-3, tf.int64)),
            raw(op, "axis 3", x=x, axis=3, match="Expected scan axis in the range"),
            raw(op, "axis -4", x=x, axis=-4, match="Expected scan axis in the range"),
            raw(op, "axis vector", x=x, axis=[1], match="axis must be a scalar"),
            raw(op, "scalar input", x=tf.constant(2.0), axis=0, match="Expected scan axis in the range"),
            raw(op, "size 0", x=rand(rng, [3, 0, 2]), axis=0),
        ]
    for op in ("Sum", "Mean", "Max", "Min", "Prod"):
        dtype = tf.float32 if rng.random() < 0.5 else tf.int64
        if op == "Mean" and dtype == tf.int64:
            dtype = tf.float64
        xd = tf.cast(x, dtype)
        cases += [
            raw(op, "one axis", input=xd, axis=1),
            raw(op, "negative axis", input=xd, axis=-1, keep_dims=True),
            raw(op, "two axes int64", input=xd, axis=tf.constant([0, -1], tf.int64)),
            raw(op, "all axes", input=xd, axis=[0, 1, 2]),
            raw(op, "no axes", input=xd, axis=tf.zeros([0], tf.int32)),
            raw(op, "duplicate axes", input=xd, axis=[1, 1]),
            raw(op, "duplicate axes via negative", input=xd, axis=[2, -1]),
            raw(op, "axis out of range", input=xd, axis=3),
            raw(op, "negative axis out of range", input=xd, axis=-4),
            raw(op, "axes 2-D", input=xd, axis=[[0], [1]]),
            raw(op, "rank 0 input, axis 0", input=tf.constant(3, dtype), axis=0),
            raw(op, "rank 0 input, no axes", input=tf.constant(3, dtype), axis=tf.zeros([0], tf.int32)),
            raw(op, "empty reduced dim", input=rand(rng, [2, 0, 3], dtype), axis=1),
            raw(op, "empty kept dim", input=rand(rng, [2, 0, 3], dtype), axis=2, keep_dims=True),
            raw(op, "int32 axis over 2**31", input=xd, axis=tf.constant([2**31 + 1], tf.int64)),
        ]
    # Random shapes and axes (some out of range, some repeated, some negative).
    for _ in range(12):
        op = str(rng.choice(["Sum", "Mean", "Max", "Min", "Prod"]))
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 5)))]
        rank = max(len(shape), 1)
        axes = [int(a) for a in rng.integers(-rank - 1, rank + 1, size=int(rng.integers(0, 3)))]
        itype = tf.int32 if rng.random() < 0.5 else tf.int64
        cases.append(raw(op, "random", input=rand(rng, shape, tf.float64), axis=tf.constant(axes, itype, shape=[len(axes)]),
                         keep_dims=bool(rng.random() < 0.5)))
    b = rand(rng, [3, 4], tf.bool)
    for op in ("All", "Any"):
        cases += [
            raw(op, "axis", input=b, axis=1),
            raw(op, "empty", input=rand(rng, [0, 4], tf.bool), axis=0),
            raw(op, "axis out of range", input=b, axis=2),
        ]
    for op in ("ArgMax", "ArgMin"):
        for dtype in (tf.float32, tf.int64):
            xd = tf.cast(x, dtype)
            cases += [
                raw(op, "axis", input=xd, dimension=1),
                raw(op, "negative axis int64 output int32", input=xd, dimension=tf.constant(-1, tf.int64), output_type=tf.int32),
                raw(op, "axis out of range", input=xd, dimension=3),
                raw(op, "axis vector", input=xd, dimension=[1]),
                raw(op, "axis vector of 2", input=xd, dimension=[0, 1]),
                raw(op, "empty reduced dim", input=rand(rng, [2, 0], dtype), dimension=1),
                raw(op, "empty other dim", input=rand(rng, [0, 3], dtype), dimension=1),
                raw(op, "rank 0", input=tf.constant(1, dtype), dimension=0),
            ]
        cases.append(raw(op, "NaN", input=tf.constant([1.0, np.nan, 3.0]), dimension=0))
    for op in ("Softmax", "LogSoftmax"):
        cases += [
            raw(op, "rank 3", logits=rand(rng, [2, 3, 4])),
            raw(op, "rank 1", logits=rand(rng, [5], tf.float64)),
            raw(op, "rank 0", ABORTED, logits=tf.constant(1.0)),
            raw(op, "size 0", logits=rand(rng, [0, 3])),
            raw(op, "last dim 0", logits=rand(rng, [3, 0])),
            raw(op, "infinities", "gives 0 next to a +inf logit, where the Eigen kernel gives NaN",
                logits=tf.constant([[np.inf, 1.0], [-np.inf, -np.inf]])),
        ]
    cases += [
        raw("BiasAddGrad", "rank 3", out_backprop=rand(rng, [2, 3, 4])),
        raw("BiasAddGrad", "NCHW", out_backprop=rand(rng, [2, 3, 4, 5]), data_format="NCHW"),
        raw("BiasAddGrad", "NCHW rank 2", out_backprop=rand(rng, [2, 3]), data_format="NCHW"),
        raw("BiasAddGrad", "rank 1", out_backprop=rand(rng, [3])),
        raw("BiasAddGrad", "size 0", out_backprop=rand(rng, [0, 3])),
    ]
    return cases


# ------------------------------------------------------------ segment ----


@family
def cases_segment(rng):
    cases = []
    data = rand(rng, [5, 3])
    ids = tf.constant([0, 2, 2, 1, 0])
    for op in ("UnsortedSegmentSum", "UnsortedSegmentProd", "UnsortedSegmentMax", "UnsortedSegmentMin"):
        dtype = tf.float32 if rng.random() < 0.5 else tf.int64
        d = tf.cast(data, dtype)
        cases += [
            raw(op, "valid", data=d, segment_ids=ids, num_segments=4),
            raw(op, "int64 ids and count", data=d, segment_ids=tf.cast(ids, tf.int64), num_segments=tf.constant(3, tf.int64)),
            raw(op, "negative ids are dropped", data=d, segment_ids=tf.constant([0, -1, 2, -5, 1]), num_segments=3),
            raw(op, "id out of range", data=d, segment_ids=tf.constant([0, 3, 2, 1, 0]), num_segments=3),
            raw(op, "2-D ids", data=rand(rng, [2, 3, 2], dtype), segment_ids=tf.constant([[0, 1, 1], [2, 0, 1]]), num_segments=3),
            raw(op, "ids shape not a prefix", data=d, segment_ids=tf.constant([0, 1, 2]), num_segments=3),
            raw(op, "negative num_segments", data=d, segment_ids=ids, num_segments=-1),
            raw(op, "num_segments vector", data=d, segment_ids=ids, num_segments=[3]),
            raw(op, "num_segments 0", data=d, segment_ids=tf.constant([-1, -1, -1, -1, -1]), num_segments=0),
            raw(op, "size-0 data", data=rand(rng, [0, 3], dtype), segment_ids=tf.zeros([0], tf.int32), num_segments=2),
            raw(op, "rank-0 ids", data=tf.constant(2.0, dtype) if dtype.is_floating else tf.constant(2, dtype), segment_ids=tf.constant(1),
                num_segments=3),
        ]
    cases += bincount_cases(rng)
    return cases


def bincount_cases(rng):
    none = tf.constant([], tf.float32)
    ids2 = tf.constant(rng.integers(0, 7, size=[4, 6]), tf.int32)
    cases = []
    for _ in range(6):
        shape = [int(rng.integers(0, 9))] if rng.random() < 0.5 else [int(v) for v in rng.integers(0, 5, size=2)]
        tidx = tf.int32 if rng.random() < 0.5 else tf.int64
        ids = tf.constant(rng.integers(0, 9, size=shape), tidx)
        size = tf.constant(int(rng.integers(0, 10)), tidx)
        dtype = [tf.float32, tf.float64, tf.int64][int(rng.integers(0, 3))]
        weights = rand(rng, shape, dtype) if rng.random() < 0.5 else tf.constant([], dtype)
        cases.append(raw("DenseBincount", "random", input=ids, size=size, weights=weights, binary_output=bool(rng.random() < 0.3)))
    cases += [
        raw("DenseBincount", "2-D counts", input=ids2, size=5, weights=none),
        raw("DenseBincount", "2-D weights", input=ids2, size=5, weights=rand(rng, [4, 6])),
        raw("DenseBincount", "2-D binary", input=ids2, size=5, weights=rand(rng, [4, 6]), binary_output=True),
        raw("DenseBincount", "1-D int64 weights", input=tf.constant([1, 1, 3, 9]), size=4, weights=tf.constant([2, 3, 4, 5], tf.int64)),
        raw("DenseBincount", "rank 0", input=tf.constant(1), size=5, weights=none),
        raw("DenseBincount", "rank 3", input=tf.constant([[[1]]]), size=5, weights=none),
        raw("DenseBincount", "negative, 1-D", input=tf.constant([1, -2]), size=5, weights=none),
        raw("DenseBincount", "negative, 2-D", input=tf.constant([[1, -2]]), size=5, weights=none),
        raw("DenseBincount", "size vector", input=tf.constant([1]), size=[5], weights=none),
        raw("DenseBincount", "negative size", input=tf.constant([1]), size=-1, weights=none),
        raw("DenseBincount", "size 0", input=tf.constant([1, 0]), size=0, weights=none),
        raw("DenseBincount", "weights shape mismatch", input=ids2, size=5, weights=rand(rng, [4, 5])),
        raw("DenseBincount", "flat weights for 2-D input", input=ids2, size=5, weights=rand(rng, [24])),
        raw("DenseBincount", "no rows", input=tf.zeros([0, 3], tf.int32), size=4, weights=none),
    ]
    return cases


# --------------------------------------------------------------- loss ----


@family
def cases_loss(rng):
    cases = []
    op = "SoftmaxCrossEntropyWithLogits"
    for dtype in (tf.float32, tf.float64):
        cases += [
            raw(op, "valid", features=rand(rng, [3, 4], dtype), labels=rand(rng, [3, 4], dtype, 0, 1)),
            raw(op, "broadcast labels", features=rand(rng, [3, 4], dtype), labels=rand(rng, [1, 4], dtype, 0, 1)),
            raw(op, "shape mismatch", features=rand(rng, [3, 4], dtype), labels=rand(rng, [3, 5], dtype)),
            raw(op, "rank 1", features=rand(rng, [4], dtype), labels=rand(rng, [4], dtype)),
            raw(op, "rank 3", features=rand(rng, [2, 3, 4], dtype), labels=rand(rng, [2, 3, 4], dtype)),
            raw(op, "batch 0", features=rand(rng, [0, 4], dtype), labels=rand(rng, [0, 4], dtype)),
            raw(op, "0 classes", features=rand(rng, [3, 0], dtype), labels=rand(rng, [3, 0], dtype)),
        ]
    op = "SparseSoftmaxCrossEntropyWithLogits"
    for itype in (tf.int32, tf.int64):
        cases += [
            raw(op, "valid", features=rand(rng, [3, 4]), labels=tf.constant([0, 3, 1], itype)),
            raw(op, "label out of range", features=rand(rng, [3, 4]), labels=tf.constant([0, 4, 1], itype)),
            raw(op, "negative label", features=rand(rng, [3, 4], tf.float64), labels=tf.constant([0, -1, 1], itype)),
            raw(op, "labels length mismatch", features=rand(rng, [3, 4]), labels=tf.constant([0, 1], itype)),
            raw(op, "labels rank 2", features=rand(rng, [3, 4]), labels=tf.constant([[0], [1], [2]], itype)),
            raw(op, "logits rank 1", features=rand(rng, [4]), labels=tf.constant(1, itype)),
            raw(op, "logits rank 3", features=rand(rng, [2, 3, 4]), labels=tf.constant([[0, 1, 2], [3, 0, 1]], itype)),
            raw(op, "batch 0", features=rand(rng, [0, 4]), labels=tf.zeros([0], itype)),
            raw(op, "0 classes", features=rand(rng, [3, 0]), labels=tf.constant([0, 0, 0], itype)),
            raw(op, "0 classes, batch 0", features=rand(rng, [0, 0]), labels=tf.zeros([0], itype)),
        ]
    return cases


# ----------------------------------------------------------- movement ----


@family
def cases_movement(rng):
    cases = []
    x4 = rand(rng, [2, 3, 4, 5])
    x10 = tf.constant(np.arange(10.0))
    i64 = tf.int64
    # Transpose: TensorFlow takes perm entries in [-rank, rank).
    perms = [[0, -1, 1, 2], [-4, -3, -2, -1], [3, 2, 1, 0], [0, -1, 3, 2], [0, 1, 1, 2], [-5, 1, 2, 3], [4, 1, 2, 3],
             [0, 1, 2], [0, 1, 2, 3, 4], [-1, 1, 2, 0]]
    for p in perms:
        for itype in (tf.int32, i64):
            cases.append(raw("Transpose", f"issue 16: perm {p}", x=x4, perm=tf.constant(p, itype), match=r"out of range|missing|expects a vector"))
    cases += [
        raw("Transpose", "perm 2-D", x=x4, perm=[[0, 1, 2, 3]]),
        raw("Transpose", "rank 0", x=tf.constant(1.0), perm=tf.zeros([0], tf.int32)),
        raw("Transpose", "size 0", x=rand(rng, [0, 3], i64), perm=[1, 0]),
        raw("Transpose", "perm of 2**31 + 1", x=rand(rng, [2, 3]), perm=tf.constant([2**31 + 1, 0], i64)),
        raw("Transpose", "perm of -2**31 - 1", x=rand(rng, [2, 3]), perm=tf.constant([-(2**31) - 1, 0], i64)),
        # TensorFlow narrows int64 perm entries to int32: 2**32 reads as 0.
        raw("Transpose", "deliberate difference: perm entry 2**32 (TensorFlow: 0)", x=rand(rng, [2, 3]),
            perm=tf.constant([2**32, 1], i64), cpu=SUCCEEDS, npu=Raises(IAE, "4294967296 is out of range")),
    ]
    # Split / SplitV.
    cases += [
        raw("SplitV", "valid", value=x10, size_splits=[2, 2, 6], axis=0, num_split=3),
        raw("SplitV", "one -1", value=x10, size_splits=[2, -1, 6], axis=0, num_split=3),
        raw("SplitV", "issue 16: num_split larger than size_splits", value=x10, size_splits=[2, 2, 6], axis=0, num_split=4,
            match="size of the split_tensor must be 1-D and have the same elements as outputs got 1 -D and 3 elements"),
        raw("SplitV", "num_split smaller than size_splits", value=x10, size_splits=[2, 2, 6], axis=0, num_split=2,
            match="same elements as outputs"),
        raw("SplitV", "issue 16: size -2", value=x10, size_splits=[-2, 6, 6], axis=0, num_split=3,
            match=r"^Split size at index 0 must be >= 0. Got: -2$"),
        raw("SplitV", "two -1", value=x10, size_splits=[-1, -1, 6], axis=0, num_split=3, match="^There can only be one -1 in the input.$"),
        raw("SplitV", "-1 with sizes over the dim", value=x10, size_splits=[-1, 6, 6], axis=0, num_split=3),
        raw("SplitV", "-1 and -2", value=x10, size_splits=[-1, -2, 6], axis=0, num_split=3),
        raw("SplitV", "sum short", value=x10, size_splits=[2, 2, 5], axis=0, num_split=3),
        raw("SplitV", "issue 16: axis [0]", value=x10, size_splits=[2, 2, 6], axis=[0], num_split=3),
        raw("SplitV", "axis [[0]]", value=x10, size_splits=[2, 2, 6], axis=[[0]], num_split=3),
        raw("SplitV", "axis [0, 0]", value=x10, size_splits=[2, 2, 6], axis=[0, 0], num_split=3,
            match="split_dim_tensor must have exactly one element"),
        raw("SplitV", "axis empty", value=x10, size_splits=[2, 2, 6], axis=tf.zeros([0], tf.int32), num_split=3),
        raw("SplitV", "axis out of range", value=x10, size_splits=[2, 2, 6], axis=1, num_split=3),
        raw("SplitV", "negative axis", value=x4, size_splits=[1, 4], axis=-1, num_split=2),
        raw("SplitV", "size_splits 2-D", value=x10, size_splits=[[2, 2, 6]], axis=0, num_split=3),
        # Grappler removes a one-way split from a graph: eager only.
        raw("SplitV", "num_split 1", value=x10, size_splits=[10], axis=0, num_split=1, graph=False),
        raw("SplitV", "num_split 1, wrong size", value=x10, size_splits=[9], axis=0, num_split=1, graph=False),
        raw("SplitV", "num_split 1, -1", value=x10, size_splits=[-1], axis=0, num_split=1, graph=False),
        raw("SplitV", "int64 sizes", value=x4, size_splits=tf.constant([1, 0, 2], i64), axis=1, num_split=3),
        raw("SplitV", "issue 16: int64 overflow to a match", value=x10, size_splits=tf.constant([2**62, 2**62, 2**62, -1], i64), axis=0, num_split=4),
        raw("SplitV", "int64 overflow", value=x10, size_splits=tf.constant([2**63 - 1, 2], i64), axis=0, num_split=2),
        raw("SplitV", "int64 overflow with -1", value=x10, size_splits=tf.constant([2**63 - 1, 2, -1], i64), axis=0, num_split=3),
        raw("SplitV", "int32 overflow", value=x10, size_splits=tf.constant([2**31 - 1, 2], tf.int32), axis=0, num_split=2),
        # TensorFlow's int32 sum wraps to 2: outputs of 2**31 - 1 elements
        # sliced out of a 10-element input crash the process. The NPU raises
        # ResourceExhausted (what TensorFlow raises where it allocates them).
        raw("SplitV", "deliberate difference: int32 overflow with -1 (TensorFlow crashes)", value=x10,
            size_splits=tf.constant([2**31 - 1, 2**31 - 1, 4, -1], tf.int32), axis=0, npu=Raises(tf.errors.ResourceExhaustedError),
            num_split=4),
        raw("SplitV", "rank 0 value", value=tf.constant(1.0), size_splits=[1], axis=0, num_split=1, graph=False),
        raw("SplitV", "size 0 dim", value=rand(rng, [0, 3]), size_splits=[0, -1], axis=0, num_split=2),
        raw("Split", "valid", axis=1, value=x4, num_split=3),
        raw("Split", "negative axis", axis=-3, value=x4, num_split=3),
        raw("Split", "not divisible", axis=1, value=x4, num_split=2),
        raw("Split", "axis [1]", axis=[1], value=x4, num_split=3),
        raw("Split", "axis out of range", axis=4, value=x4, num_split=2),
        raw("Split", "size 0", axis=0, value=rand(rng, [0, 3]), num_split=2),
        raw("Unpack", "valid", value=x4, num=3, axis=1),
        raw("Unpack", "negative axis", value=x4, num=5, axis=-1),
        raw("Unpack", "num mismatch", value=x4, num=4, axis=1),
        raw("Unpack", "axis out of range", value=x4, num=2, axis=4),
    ]
    # Reshape.
    cases += [
        raw("Reshape", "valid", tensor=x4, shape=[6, -1]),
        raw("Reshape", "int64", tensor=x4, shape=tf.constant([-1, 2, 5], i64)),
        raw("Reshape", "two -1", tensor=x4, shape=[-1, -1]),
        raw("Reshape", "mismatch", tensor=x4, shape=[7, 3]),
        raw("Reshape", "negative", tensor=x4, shape=[-2, 60]),
        raw("Reshape", "-1 with 0", tensor=rand(rng, [0, 3]), shape=[0, -1]),
        raw("Reshape", "scalar to []", tensor=tf.constant([1.0]), shape=tf.zeros([0], tf.int32)),
        raw("Reshape", "shape 2-D", tensor=x4, shape=[[120]]),
        raw("Reshape", "scalar shape", tensor=tf.constant([1.0]), shape=1),
    ]
    # Slices.
    cases += [
        raw("Slice", "valid", input=x4, begin=[0, 1, 0, 2], size=[2, -1, 3, 2]),
        raw("Slice", "int64", input=x4, begin=tf.constant([1, 0, 0, 0], i64), size=tf.constant([1, 1, 1, 1], i64)),
        raw("Slice", "out of bounds", input=x4, begin=[0, 2, 0, 0], size=[1, 2, 1, 1]),
        raw("Slice", "negative begin", input=x4, begin=[0, -1, 0, 0], size=[1, 1, 1, 1]),
        raw("Slice", "size -2", input=x4, begin=[0, 0, 0, 0], size=[1, -2, 1, 1]),
        raw("Slice", "length mismatch", input=x4, begin=[0, 0, 0], size=[1, 1, 1, 1]),
        raw("Slice", "size 0", input=x4, begin=[2, 3, 4, 5], size=[0, 0, 0, 0]),
        raw("StridedSlice", "valid", input=x4, begin=[0, 1], end=[2, 3], strides=[1, 1]),
        raw("StridedSlice", "negative stride", input=x4, begin=[-1, 0], end=[0, 3], strides=[-1, 2]),
        raw("StridedSlice", "stride 0", input=x4, begin=[0], end=[1], strides=[0]),
        raw("StridedSlice", "length mismatch", input=x4, begin=[0, 0], end=[1], strides=[1]),
        raw("StridedSlice", "shrink out of range", input=x4, begin=[5], end=[6], strides=[1], shrink_axis_mask=1),
        raw("StridedSlice", "shrink negative", input=x4, begin=[-1], end=[0], strides=[1], shrink_axis_mask=1),
        raw("StridedSlice", "ellipsis and new axis", input=x4, begin=[0, 0, 1], end=[0, 0, 2], strides=[1, 1, 1],
            ellipsis_mask=1, new_axis_mask=2),
        raw("StridedSlice", "two ellipses", input=x4, begin=[0, 0], end=[0, 0], strides=[1, 1], ellipsis_mask=3),
        raw("StridedSlice", "begin 2-D", input=x4, begin=[[0]], end=[[1]], strides=[[1]]),
        raw("StridedSlice", "int64 indices", input=x4, begin=tf.constant([0, 1], i64), end=tf.constant([2, 3], i64),
            strides=tf.constant([1, 1], i64)),
        raw("StridedSliceGrad", "valid", shape=[2, 3], begin=[0, 1], end=[2, 3], strides=[1, 1], dy=rand(rng, [2, 2])),
        raw("StridedSliceGrad", "dy shape mismatch", shape=[2, 3], begin=[0, 1], end=[2, 3], strides=[1, 1], dy=rand(rng, [2, 3])),
    ]
    # Concat / Pack.
    a, b = rand(rng, [2, 3]), rand(rng, [2, 4])
    cases += [
        raw("ConcatV2", "valid", values=[a, b], axis=1),
        raw("ConcatV2", "negative axis int64", values=[a, b], axis=tf.constant(-1, i64)),
        raw("ConcatV2", "axis out of range", values=[a, b], axis=2),
        raw("ConcatV2", "shape mismatch", values=[a, b], axis=0),
        raw("ConcatV2", "rank mismatch", values=[a, rand(rng, [2, 3, 1])], axis=1),
        raw("ConcatV2", "axis vector", values=[a, b], axis=[1]),
        raw("ConcatV2", "size 0 piece", values=[a, rand(rng, [2, 0])], axis=1),
        raw("ConcatV2", "rank 0 pieces", values=[tf.constant(1.0), tf.constant(2.0)], axis=0),
        raw("Pack", "valid", values=[a, a], axis=1),
        raw("Pack", "negative axis", values=[a, a], axis=-3),
        raw("Pack", "axis out of range", values=[a, a], axis=3),
        raw("Pack", "shape mismatch", values=[a, b], axis=0),
    ]
    # Pad / Tile / BroadcastTo.
    cases += [
        raw("Pad", "valid", input=x4, paddings=[[0, 1], [2, 0], [0, 0], [1, 1]]),
        raw("Pad", "int64", input=rand(rng, [2, 3], i64), paddings=tf.constant([[1, 1], [0, 2]], i64)),
        raw("Pad", "negative", input=x4, paddings=[[0, 1], [-1, 0], [0, 0], [1, 1]]),
        raw("Pad", "wrong rows", input=x4, paddings=[[0, 1], [2, 0]]),
        raw("Pad", "wrong columns", input=x4, paddings=[[0], [2], [0], [1]]),
        raw("Pad", "rank 0", input=tf.constant(1.0), paddings=tf.zeros([0, 2], tf.int32)),
        raw("PadV2", "valid", input=rand(rng, [2, 3]), paddings=[[1, 0], [0, 2]], constant_values=tf.constant(7.0)),
        raw("PadV2", "constant not scalar", input=rand(rng, [2, 3]), paddings=[[1, 0], [0, 2]], constant_values=tf.constant([7.0])),
        raw("Tile", "valid", input=rand(rng, [2, 3]), multiples=[2, 0]),
        raw("Tile", "int64", input=rand(rng, [2, 3], tf.bool), multiples=tf.constant([1, 3], i64)),
        raw("Tile", "negative", input=rand(rng, [2, 3]), multiples=[2, -1]),
        raw("Tile", "length mismatch", input=rand(rng, [2, 3]), multiples=[2]),
        raw("Tile", "multiples 2-D", input=rand(rng, [2, 3]), multiples=[[2, 1]]),
        raw("BroadcastTo", "valid", input=rand(rng, [3, 1]), shape=[2, 3, 4]),
        raw("BroadcastTo", "incompatible", input=rand(rng, [3, 2]), shape=[3, 4]),
        raw("BroadcastTo", "fewer dims", input=rand(rng, [2, 3]), shape=[3]),
        raw("BroadcastTo", "negative", input=rand(rng, [1]), shape=[-2]),
        raw("BroadcastTo", "int64 size 0", input=rand(rng, [1, 3]), shape=tf.constant([0, 3], i64)),
    ]
    # Gather / OneHot / DynamicStitch / scatter / Bitcast.
    params = rand(rng, [4, 3])
    cases += [
        raw("GatherV2", "valid", params=params, indices=[3, 0, 1], axis=0),
        raw("GatherV2", "int64 indices, axis", params=params, indices=tf.constant([[2, 0]], i64), axis=tf.constant(-1, i64)),
        raw("GatherV2", "index out of range", params=params, indices=[4], axis=0),
        raw("GatherV2", "negative index", params=params, indices=[-1], axis=0),
        raw("GatherV2", "axis out of range", params=params, indices=[0], axis=2),
        raw("GatherV2", "axis vector", params=params, indices=[0], axis=[0]),
        raw("GatherV2", "batch_dims", params=rand(rng, [2, 3, 4]), indices=tf.constant([[0, 2], [1, 1]]), axis=2, batch_dims=1),
        raw("GatherV2", "batch_dims > axis", params=rand(rng, [2, 3, 4]), indices=tf.constant([[0, 2], [1, 1]]), axis=0, batch_dims=1),
        raw("GatherV2", "negative batch_dims", params=rand(rng, [2, 3, 4]), indices=tf.constant([[0, 2], [1, 1]]), axis=1, batch_dims=-1),
        raw("GatherV2", "batch_dims >= indices rank", params=rand(rng, [2, 3]), indices=tf.constant([0, 1]), axis=1, batch_dims=2),
        raw("GatherV2", "empty params axis", params=rand(rng, [0, 3]), indices=tf.zeros([0], tf.int32), axis=0),
        raw("GatherV2", "index into empty", params=rand(rng, [0, 3]), indices=[0], axis=0),
        raw("OneHot", "valid", indices=[0, 2, -1, 5], depth=4, on_value=tf.constant(1.0), off_value=tf.constant(0.0)),
        raw("OneHot", "axis 0", indices=tf.constant([[0, 2]], i64), depth=3, on_value=tf.constant(5, i64), off_value=tf.constant(1, i64),
            axis=0),
        raw("OneHot", "negative depth", indices=[0, 1], depth=-1, on_value=tf.constant(1.0), off_value=tf.constant(0.0)),
        raw("OneHot", "depth vector", indices=[0, 1], depth=[2], on_value=tf.constant(1.0), off_value=tf.constant(0.0)),
        raw("OneHot", "axis -2", indices=[0, 1], depth=2, on_value=tf.constant(1.0), off_value=tf.constant(0.0), axis=-2, graph=False),
        raw("OneHot", "on_value vector", indices=[0, 1], depth=2, on_value=tf.constant([1.0]), off_value=tf.constant(0.0)),
        raw("DynamicStitch", "valid", indices=[tf.constant([0, 2]), tf.constant([1])], data=[rand(rng, [2, 3]), rand(rng, [1, 3])]),
        raw("DynamicStitch", "repeated index", indices=[tf.constant([0, 1]), tf.constant([1])], data=[rand(rng, [2]), rand(rng, [1])]),
        raw("DynamicStitch", "negative index", indices=[tf.constant([0, -1])], data=[rand(rng, [2])]),
        raw("DynamicStitch", "data shape mismatch", indices=[tf.constant([0, 1])], data=[rand(rng, [3])]),
        raw("DynamicStitch", "gap", indices=[tf.constant([0, 3])], data=[rand(rng, [2, 2])]),
        raw("TensorScatterUpdate", "valid", tensor=rand(rng, [4, 3]), indices=[[1], [3]], updates=rand(rng, [2, 3])),
        raw("TensorScatterUpdate", "index out of range", tensor=rand(rng, [4, 3]), indices=[[1], [4]], updates=rand(rng, [2, 3])),
        raw("TensorScatterAdd", "updates shape mismatch", tensor=rand(rng, [4, 3]), indices=[[1], [3]], updates=rand(rng, [2, 2])),
        raw("TensorScatterSub", "index too deep", tensor=rand(rng, [4, 3]), indices=[[1, 0, 0]], updates=rand(rng, [1])),
        raw("TensorScatterAdd", "int64 indices", tensor=rand(rng, [4, 3], i64), indices=tf.constant([[1, 2], [3, 0]], i64),
            updates=rand(rng, [2], i64)),
        raw("ScatterNd", "valid", indices=[[1], [3], [1]], updates=rand(rng, [3, 3]), shape=[4, 3]),
        raw("ScatterNd", "int64, element indices", indices=tf.constant([[1, 2], [3, 0]], i64), updates=rand(rng, [2], i64),
            shape=tf.constant([4, 3], i64)),
        raw("ScatterNd", "index out of range", indices=[[1], [4]], updates=rand(rng, [2, 3]), shape=[4, 3]),
        raw("ScatterNd", "negative index", indices=[[-1]], updates=rand(rng, [1, 3]), shape=[4, 3]),
        raw("ScatterNd", "updates shape mismatch", indices=[[1], [3]], updates=rand(rng, [2, 2]), shape=[4, 3]),
        raw("ScatterNd", "index too deep", indices=[[1, 0, 0]], updates=rand(rng, [1]), shape=[4, 3]),
        raw("ScatterNd", "shape 2-D", indices=[[1]], updates=rand(rng, [1, 3]), shape=[[4, 3]]),
        raw("ScatterNd", "negative dim", indices=[[1]], updates=rand(rng, [1, 3]), shape=[4, -3]),
        raw("ScatterNd", "empty output", indices=[[0]], updates=rand(rng, [1, 0]), shape=[4, 0]),
        raw("ScatterNd", "no updates", indices=tf.zeros([0, 1], tf.int32), updates=rand(rng, [0, 3]), shape=[4, 3]),
        raw("Bitcast", "float32 to int8", input=rand(rng, [2, 3]), type=tf.int8),
        raw("Bitcast", "int8 to float32", input=rand(rng, [2, 4], tf.int8), type=tf.float32),
        raw("Bitcast", "int8 to float32, bad last dim", input=rand(rng, [2, 3], tf.int8), type=tf.float32),
        raw("Bitcast", "int16 to int64 rank 0", input=tf.constant(3, tf.int16), type=tf.int64),
        raw("Identity", "rank 0", input=tf.constant(1.0), graph=False),
    ]
    for _ in range(8):
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(1, 5)))]
        perm = [int(p) - (len(shape) if rng.random() < 0.3 else 0) for p in rng.permutation(len(shape))]
        cases.append(raw("Transpose", "random", x=rand(rng, shape, tf.float32), perm=perm))
    # Random SplitV sizes: some -1, some negative, some not adding up.
    for _ in range(8):
        n = int(rng.integers(1, 5))
        sizes = [int(v) for v in rng.integers(-2, 5, size=n)]
        dim = int(rng.integers(0, 8))
        if rng.random() < 0.5 and n > 1:
            sizes[-1] = dim - sum(sizes[:-1])
        itype = tf.int32 if rng.random() < 0.5 else i64
        cases.append(raw("SplitV", "random", value=rand(rng, [2, dim], i64), size_splits=tf.constant(sizes, itype), axis=-1,
                         num_split=n, graph=n > 1))
    # ReverseV2: axis entries in [-rank, rank), each once; rank <= 8.
    x3 = rand(rng, [2, 3, 4])
    for axis, itype in [([0], tf.int32), ([-1, 0], i64), ([], tf.int32), ([3], tf.int32), ([-4], i64), ([1, -2], tf.int32),
                        ([2, 2], i64)]:
        cases.append(raw("ReverseV2", f"axis {axis}", tensor=x3, axis=tf.constant(axis, itype),
                         match=r"out of valid range|specified more than once"))
    cases += [
        raw("ReverseV2", "axis 2-D", tensor=x3, axis=[[0]], match="'dims' must be 1-dimension, not 2"),
        raw("ReverseV2", "rank 9", tensor=rand(rng, [1] * 9), axis=[0], match="rank > 8"),
        raw("ReverseV2", "rank 9, no axis", tensor=rand(rng, [1] * 9), axis=tf.zeros([0], tf.int32)),
        raw("ReverseV2", "size 0", tensor=rand(rng, [3, 0, 2], i64), axis=[0, 2]),
        raw("ReverseV2", "bool, size-1 dims", tensor=tf.constant(rng.random([1, 4, 1, 3]) > 0.5), axis=[0, 1, 3]),
    ]
    # SpaceToBatchND / BatchToSpaceND: block_shape 1-D and positive,
    # paddings/crops [M, 2] and non-negative, padded sizes divisible. (Eager
    # only: their shape functions refuse inputs of unknown rank.)
    x16 = rand(rng, [2, 4, 6, 3])
    xb = rand(rng, [8, 2, 3, 3])
    for op, arg, x_ in (("SpaceToBatchND", "paddings", x16), ("BatchToSpaceND", "crops", xb)):
        for block, pairs, note in (([2, 2], [[0, 0], [0, 0]], "valid"), ([2, 3], [[0, 2], [1, 2]], "with pairs"),
                                   ([1, 1], [[0, 0], [0, 0]], "identity"), ([2], [[0, 0]], "one block dim"),
                                   ([0, 2], [[0, 0], [0, 0]], "block 0"), ([2, -1], [[0, 0], [0, 0]], "block -1"),
                                   ([2, 2], [[0, 0]], "pairs [1, 2]"), ([2, 2], [[-1, 1], [0, 0]], "negative pair"),
                                   ([3, 2], [[0, 0], [0, 0]], "not divisible"), ([[2, 2]], [[0, 0], [0, 0]], "block 2-D"),
                                   ([2, 2, 2, 2], [[0, 0]] * 4, "rank too small"), ([2, 2], [[0, 9], [0, 0]], "large pair")):
            cases.append(raw(op, note, input=x_, block_shape=block, **{arg: pairs}, graph=False,
                             match="block_shape|rank|should have shape|must be|divisible|instead"))
        cases.append(raw(op, "int64 block and pairs", input=x_, block_shape=tf.constant([2, 1], i64), graph=False,
                         **{arg: tf.constant([[0, 0], [1, 1]] if op == "SpaceToBatchND" else [[0, 0], [0, 1]], i64)}))
    # MatrixBandPart: rank >= 2, scalar limits at most rows / columns.
    x34 = rand(rng, [2, 3, 4])
    for lower, upper in [(-1, 0), (0, -1), (3, 4), (4, 0), (0, 5), (-7, -9), (1, 2)]:
        cases.append(raw("MatrixBandPart", f"band ({lower}, {upper})", input=x34, num_lower=lower, num_upper=upper,
                         match="number of rows|number of columns"))
    cases += [
        raw("MatrixBandPart", "int64 limits", input=tf.cast(x34, i64), num_lower=tf.constant(1, i64),
            num_upper=tf.constant(0, i64)),
        raw("MatrixBandPart", "rank 1", input=rand(rng, [4]), num_lower=0, num_upper=0, match="at least 2-dim"),
        raw("MatrixBandPart", "num_lower vector", input=x34, num_lower=[0], num_upper=0, match="num_lower must be scalar"),
        raw("MatrixBandPart", "num_upper vector", input=x34, num_lower=0, num_upper=[0], match="num_upper must be scalar"),
        raw("MatrixBandPart", "size 0", input=rand(rng, [2, 0, 3]), num_lower=0, num_upper=-1),
    ]
    for _ in range(8):
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(1, 6)))]
        axis = [int(a) - (len(shape) if rng.random() < 0.3 else 0)
                for a in rng.permutation(len(shape))[: int(rng.integers(0, len(shape) + 1))]]
        cases.append(raw("ReverseV2", "random", tensor=rand(rng, shape, tf.float32), axis=tf.constant(axis, tf.int32)))
    cases += mirror_pad_cases(rng)
    return cases


def mirror_pad_cases(rng):
    cases = []
    for _ in range(10):
        rank = int(rng.integers(0, 6))
        shape = [int(d) for d in rng.integers(1, 5, size=rank)]
        mode = str(rng.choice(["REFLECT", "SYMMETRIC"]))
        limit = [d - (mode == "REFLECT") for d in shape]
        pads = [[int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))] for m in limit]
        dtype = [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int64][int(rng.integers(0, 5))]
        pads_t = tf.constant(np.reshape(pads, [rank, 2]), tf.int64 if rng.random() < 0.3 else tf.int32)
        x = rand(rng, shape, dtype)
        padded = [d + sum(p) for d, p in zip(shape, pads)]
        cases += [
            raw("MirrorPad", f"random {dtype.name}", input=x, paddings=pads_t, mode=mode),
            raw("MirrorPadGrad", f"random {dtype.name}", input=rand(rng, padded, dtype), paddings=pads_t, mode=mode),
        ]
    x = rand(rng, [3, 4])
    for op in ("MirrorPad", "MirrorPadGrad"):
        cases += [
            raw(op, "REFLECT", input=x, paddings=[[1, 1], [1, 0]], mode="REFLECT"),
            raw(op, "SYMMETRIC", input=x, paddings=[[1, 1], [1, 0]], mode="SYMMETRIC"),
            raw(op, "paddings of 3 columns", input=x, paddings=[[1, 1, 1], [0, 0, 0]], mode="REFLECT"),
            raw(op, "paddings 1-D", input=x, paddings=[1, 1], mode="REFLECT"),
            raw(op, "paddings rows != rank", input=x, paddings=[[1, 1]], mode="REFLECT"),
            raw(op, "negative padding", input=x, paddings=[[-1, 1], [0, 0]], mode="REFLECT"),
            raw(op, "REFLECT padding = size", input=x, paddings=[[3, 0], [0, 0]], mode="REFLECT"),
            raw(op, "SYMMETRIC padding = size", input=x, paddings=[[1, 1], [0, 3]], mode="SYMMETRIC"),
            raw(op, "SYMMETRIC padding > size", input=x, paddings=[[4, 0], [0, 0]], mode="SYMMETRIC"),
            raw(op, "no padding", input=x, paddings=[[0, 0], [0, 0]], mode="REFLECT"),
            raw(op, "rank 6", input=rand(rng, [1, 1, 1, 1, 1, 2]), paddings=[[0, 0]] * 5 + [[1, 0]], mode="REFLECT"),
        ]
    cases += [
        raw("MirrorPad", "rank 0", input=tf.constant(2.5), paddings=tf.zeros([0, 2], tf.int32), mode="REFLECT"),
        raw("MirrorPad", "empty input, no padding", input=rand(rng, [2, 0]), paddings=[[1, 0], [0, 0]], mode="SYMMETRIC"),
        raw("MirrorPad", "bool", input=tf.constant([[True, False]]), paddings=[[0, 0], [1, 1]], mode="REFLECT"),
    ]
    return cases


# -------------------------------------------------------------- image ----


@family
def cases_image(rng):
    cases = []
    img = rand(rng, [2, 5, 6, 3])
    for op in ("ResizeBilinear", "ResizeNearestNeighbor"):
        for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16):
            size = [int(d) for d in rng.integers(1, 12, size=2)]
            corners = bool(rng.random() < 0.3)
            cases.append(raw(op, f"random {dtype.name}", images=tf.cast(img, dtype), size=size, align_corners=corners,
                             half_pixel_centers=not corners and bool(rng.random() < 0.5)))
        cases += [
            raw(op, "align_corners and half_pixel_centers", images=img, size=[3, 4], align_corners=True, half_pixel_centers=True),
            raw(op, "size of 3", images=img, size=[3, 4, 5]),
            raw(op, "size 2-D", images=img, size=[[3, 4]]),
            raw(op, "size 0", images=img, size=[0, 4]),
            raw(op, "negative size", images=img, size=[-3, 4]),
            raw(op, "images rank 3", images=rand(rng, [5, 6, 3]), size=[3, 4]),
            raw(op, "no images", images=rand(rng, [0, 5, 6, 3]), size=[3, 4]),
            raw(op, "no channels", images=rand(rng, [2, 5, 6, 0]), size=[3, 4]),
            raw(op, "input height 0", images=rand(rng, [2, 0, 6, 3]), size=[3, 4]),
            raw(op, "same size", images=img, size=[5, 6]),
        ]
    for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16):
        for _ in range(2):
            size = [int(d) for d in rng.integers(1, 12, size=2)]
            corners = bool(rng.random() < 0.3)
            cases += [
                raw("ResizeBicubic", f"random {dtype.name}", images=tf.cast(img, dtype), size=size, align_corners=corners,
                    half_pixel_centers=not corners and bool(rng.random() < 0.6)),
                raw("ResizeArea", f"random {dtype.name}", images=tf.cast(img, dtype), size=size, align_corners=corners),
            ]
    cases += [
        raw("ResizeBicubic", "both flags", images=img, size=[3, 4], align_corners=True, half_pixel_centers=True),
        raw("ResizeBicubic", "size of 3", images=img, size=[3, 4, 5]),
        raw("ResizeBicubic", "negative size", images=img, size=[-3, 4]),
        raw("ResizeBicubic", "images rank 3", images=rand(rng, [5, 6, 3]), size=[3, 4]),
        raw("ResizeBicubic", "no images", images=rand(rng, [0, 5, 6, 3]), size=[3, 4]),
        raw("ResizeBicubic", "one-pixel image", images=rand(rng, [1, 1, 1, 2]), size=[3, 4], half_pixel_centers=True),
        raw("ResizeArea", "size 0", images=img, size=[0, 4]),
        raw("ResizeArea", "no channels", images=rand(rng, [2, 5, 6, 0]), size=[3, 4]),
        raw("ResizeArea", "upscale", images=img, size=[11, 13]),
        raw("ResizeArea", "same size", images=img, size=[5, 6]),
    ]
    for corners, half in ((False, False), (True, False), (False, True)):
        cases += [
            raw("ResizeBicubicGrad", f"align_corners={corners} half_pixel_centers={half}", grads=rand(rng, [2, 3, 8, 3]),
                original_image=img, align_corners=corners, half_pixel_centers=half),
            raw("ResizeBicubicGrad", f"float64, upscaled, align_corners={corners} half_pixel_centers={half}",
                grads=rand(rng, [2, 9, 11, 3]), original_image=tf.cast(img, tf.float64), align_corners=corners, half_pixel_centers=half),
        ]
    cases += [
        raw("ResizeBicubicGrad", "both flags", grads=rand(rng, [2, 3, 8, 3]), original_image=img, align_corners=True, half_pixel_centers=True),
        raw("ResizeBicubicGrad", "grads rank 3", grads=rand(rng, [3, 8, 3]), original_image=img),
        raw("ResizeBicubicGrad", "original height 0", grads=rand(rng, [2, 3, 8, 3]), original_image=rand(rng, [2, 0, 6, 3])),
    ]
    for corners, half in ((False, False), (True, False), (False, True), (True, True)):
        grads = rand(rng, [2, 3, 8, 3])
        cases += [
            raw("ResizeBilinearGrad", f"align_corners={corners} half_pixel_centers={half}", grads=grads,
                original_image=img, align_corners=corners, half_pixel_centers=half),
            raw("ResizeNearestNeighborGrad", f"align_corners={corners} half_pixel_centers={half}", grads=grads,
                size=[5, 6], align_corners=corners, half_pixel_centers=half),
        ]
    cases += [
        raw("ResizeBilinearGrad", "float64 image", grads=rand(rng, [1, 4, 4, 2]), original_image=rand(rng, [1, 7, 3, 2], tf.float64)),
        raw("ResizeBilinearGrad", "float16 image", grads=rand(rng, [1, 9, 2, 2]), original_image=rand(rng, [1, 4, 5, 2], tf.float16)),
        raw("ResizeBilinearGrad", "bfloat16 image", grads=rand(rng, [1, 9, 2, 2]), original_image=rand(rng, [1, 4, 5, 2], tf.bfloat16)),
        raw("ResizeNearestNeighborGrad", "float16", grads=rand(rng, [1, 9, 9, 2], tf.float16), size=[2, 4]),
        raw("ResizeNearestNeighborGrad", "bfloat16", grads=rand(rng, [1, 9, 9, 2], tf.bfloat16), size=[2, 4]),
        raw("ResizeBilinearGrad", "grads rank 3", grads=rand(rng, [3, 8, 3]), original_image=img),
        raw("ResizeBilinearGrad", "image rank 3", grads=rand(rng, [2, 3, 8, 3]), original_image=rand(rng, [5, 6, 3])),
        raw("ResizeBilinearGrad", "batch mismatch", grads=rand(rng, [1, 3, 8, 3]), original_image=img),
        raw("ResizeBilinearGrad", "channel mismatch", grads=rand(rng, [2, 3, 8, 2]), original_image=img),
        raw("ResizeBilinearGrad", "original height 0", grads=rand(rng, [2, 3, 8, 3]), original_image=rand(rng, [2, 0, 6, 3])),
        raw("ResizeNearestNeighborGrad", "float64", grads=rand(rng, [1, 4, 4, 2], tf.float64), size=[7, 3]),
        raw("ResizeNearestNeighborGrad", "size of 1", grads=rand(rng, [2, 3, 8, 3]), size=[5]),
        raw("ResizeNearestNeighborGrad", "size 0", grads=rand(rng, [2, 3, 8, 3]), size=[0, 6]),
        raw("ResizeNearestNeighborGrad", "grads rank 2", grads=rand(rng, [3, 8]), size=[5, 6]),
        raw("ResizeNearestNeighborGrad", "no grads", grads=rand(rng, [0, 3, 8, 3]), size=[5, 6]),
    ]
    # ScaleAndTranslate and its gradient (tf.image.resize with lanczos3/5,
    # gaussian, mitchellcubic...): every kernel_type, antialias on and off,
    # downscaling and upscaling, translated.
    kernels = ("lanczos1", "lanczos3", "lanczos5", "gaussian", "box", "triangle", "keyscubic", "mitchellcubic")
    down = dict(size=[3, 4], scale=[0.6, 4 / 6], translation=[0.0, 0.0])
    up = dict(size=[11, 9], scale=[2.2, 1.5], translation=[0.7, -1.3])
    for kernel in kernels:
        for antialias in (False, True):
            kt = dict(kernel_type=kernel, antialias=antialias)
            cases += [
                raw("ScaleAndTranslate", f"{kernel} antialias={antialias} down", images=img, **down, **kt),
                raw("ScaleAndTranslate", f"{kernel} antialias={antialias} up, translated", images=img, **up, **kt),
                raw("ScaleAndTranslateGrad", f"{kernel} antialias={antialias} down", grads=rand(rng, [2, 3, 4, 3]),
                    original_image=img, scale=down["scale"], translation=down["translation"], **kt),
                raw("ScaleAndTranslateGrad", f"{kernel} antialias={antialias} up, translated", grads=rand(rng, [2, 11, 9, 3]),
                    original_image=img, scale=up["scale"], translation=up["translation"], **kt),
            ]
    st = dict(scale=[0.6, 1.5], translation=[0.5, 0.0])
    for dtype in (tf.float64, tf.float16, tf.bfloat16):
        cases.append(raw("ScaleAndTranslate", f"{dtype.name} images", images=tf.cast(img, dtype), size=[3, 9], **st))
    cases += [
        raw("ScaleAndTranslate", "default attributes (lanczos3, antialias)", images=img, size=[3, 9], **st),
        raw("ScaleAndTranslate", "kernel_type in capitals", images=img, size=[3, 9], kernel_type="MitchellCubic", **st),
        raw("ScaleAndTranslate", "translated out of the image (zeros)", images=img, size=[4, 4], scale=[1.0, 1.0],
            translation=[9.0, -20.0]),
        raw("ScaleAndTranslate", "size unrelated to the scale", images=img, size=[2, 12], scale=[1.7, 0.4],
            translation=[-0.3, 0.8], kernel_type="gaussian"),
        raw("ScaleAndTranslate", "unknown kernel_type", images=img, size=[3, 9], kernel_type="bicubic", **st),
        raw("ScaleAndTranslate", "size of 3", images=img, size=[3, 4, 5], **st),
        raw("ScaleAndTranslate", "size 2-D", images=img, size=[[3, 4]], **st),
        raw("ScaleAndTranslate", "size 0", images=img, size=[0, 4], **st),
        raw("ScaleAndTranslate", "negative size", images=img, size=[3, -4], **st),
        raw("ScaleAndTranslate", "scale of 3", images=img, size=[3, 4], scale=[1.0, 1.0, 1.0], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "scale 2-D", images=img, size=[3, 4], scale=[[1.0, 1.0]], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "zero scale", images=img, size=[3, 4], scale=[1.0, 0.0], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "negative scale", images=img, size=[3, 4], scale=[-1.0, 1.0], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "translation of 1", images=img, size=[3, 4], scale=[1.0, 1.0], translation=[0.0]),
        raw("ScaleAndTranslate", "images rank 3", images=rand(rng, [5, 6, 3]), size=[3, 4], **st),
        raw("ScaleAndTranslate", "no images", images=rand(rng, [0, 5, 6, 3]), size=[3, 4], **st),
        raw("ScaleAndTranslate", "no channels", images=rand(rng, [2, 5, 6, 0]), size=[3, 4], **st),
        raw("ScaleAndTranslate", "input width 0", images=rand(rng, [2, 5, 0, 3]), size=[3, 4], **st),
        raw("ScaleAndTranslateGrad", "default attributes", grads=rand(rng, [2, 3, 9, 3]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "batch and channels from grads", grads=rand(rng, [1, 3, 9, 2]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "original height 0", grads=rand(rng, [2, 3, 9, 3]), original_image=rand(rng, [2, 0, 6, 3]), **st),
        raw("ScaleAndTranslateGrad", "no grads", grads=rand(rng, [0, 3, 9, 3]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "unknown kernel_type", grads=rand(rng, [2, 3, 9, 3]), original_image=img, kernel_type="cubic", **st),
        raw("ScaleAndTranslateGrad", "grads rank 3", grads=rand(rng, [3, 9, 3]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "original rank 3", grads=rand(rng, [2, 3, 9, 3]), original_image=rand(rng, [5, 6, 3]), **st),
        raw("ScaleAndTranslateGrad", "zero scale", grads=rand(rng, [2, 3, 9, 3]), original_image=img, scale=[0.0, 1.5],
            translation=[0.0, 0.0]),
        raw("ScaleAndTranslateGrad", "scale of 3", grads=rand(rng, [2, 3, 9, 3]), original_image=img, scale=[1.0, 1.0, 1.0],
            translation=[0.0, 0.0]),
        raw("ScaleAndTranslateGrad", "translation of 3", grads=rand(rng, [2, 3, 9, 3]), original_image=img, scale=[0.6, 1.5],
            translation=[0.0, 0.0, 0.0]),
    ]
    return cases


# ------------------------------------------------------------- volume ----


def dilate_filter(f, dil):
    """A DHWIO filter with dil-1 zeros between taps: Conv3D by it equals the
    dilated Conv3D (TensorFlow's CPU kernels reject dilations; the NPU's
    oracle for them)."""
    k = f.shape
    out = np.zeros([(k[i] - 1) * dil[i] + 1 for i in range(3)] + list(k[3:]), f.dtype.as_numpy_dtype)
    out[:: dil[0], :: dil[1], :: dil[2]] = f.numpy()
    return tf.constant(out)


ONEDNN_3D = "its 3-D kernels check less (a rank-4 input runs, bad shape vectors abort the process)"


def raw3(op, note, **kw):
    """A 3-D case: in float32 the oracle is TensorFlow's Eigen kernel (float64)."""
    return raw(op, note, onednn=ONEDNN_3D, **kw)


@family
def cases_volume(rng):
    """Conv3D, its gradients and the 3-D pools, in float32 and float64."""
    cases = []
    x, f = rand(rng, [2, 5, 6, 4, 3]), rand(rng, [2, 3, 2, 3, 4])
    s1 = [1, 1, 1, 1, 1]

    def conv(note, dtype, inp=x, flt=f, **kw):
        kw.setdefault("strides", s1)
        kw.setdefault("padding", "VALID")
        return raw3("Conv3D", note, **floats(dtype, dict(input=inp, filter=flt, **kw)))

    for dtype in (tf.float32, tf.float64):
        cases += [
            conv("valid", dtype),
            conv("SAME, strides", dtype, padding="SAME", strides=[1, 2, 1, 3, 1]),
            conv("window larger than input, SAME", dtype, padding="SAME", flt=rand(rng, [7, 1, 5, 3, 2])),
            conv("window larger than input, VALID (empty)", dtype, flt=rand(rng, [7, 1, 1, 3, 2])),
            conv("batch 0", dtype, inp=rand(rng, [0, 5, 6, 4, 3])),
            conv("input rank 4", dtype, inp=rand(rng, [5, 6, 4, 3])),
            conv("filter rank 4", dtype, flt=rand(rng, [2, 3, 3, 4])),
            conv("grouped (filter depth divides input depth)", dtype, inp=rand(rng, [1, 3, 3, 3, 4]), flt=rand(rng, [1, 1, 1, 2, 2])),
            conv("filter depth not dividing input depth", dtype, flt=rand(rng, [1, 1, 1, 2, 2])),
            conv("filter depth 0", dtype, flt=rand(rng, [1, 1, 1, 0, 2])),
            conv("no output channels", dtype, flt=rand(rng, [1, 1, 1, 3, 0])),
            conv("strides of 4", dtype, strides=[1, 1, 1, 1], graph=False),
            conv("stride in batch", dtype, strides=[2, 1, 1, 1, 1], graph=False),
            conv("stride 0", dtype, strides=[1, 0, 1, 1, 1], graph=False),
            conv("dilation in depth", dtype, dilations=[1, 1, 1, 1, 2], graph=False),
            conv("stride out of int32 range", dtype, strides=[1, BIG, 1, 1, 1], graph=False, match="out of range for an int32"),
        ]
    # Dilations: TensorFlow's CPU kernel rejects them, its GPU kernel and the
    # NPU do not; the oracle convolves by the zero-dilated filter.
    for dil in ([1, 2, 1, 1, 1], [1, 1, 2, 3, 1]):
        fd = dilate_filter(f, dil[1:4])

        def oracle(x, f, fd=fd):
            return R.Conv3D(input=x, filter=fd, strides=s1, padding="SAME")

        oracle.__name__ = "Conv3D by the zero-dilated filter"
        cases.append(Case("Conv3D", lambda x, f, dil=dil: R.Conv3D(input=x, filter=f, strides=s1, padding="SAME", dilations=dil),
                          note=f"dilations {dil} (TensorFlow's Eigen kernel has none, its oneDNN kernel in a graph has)",
                          args=(x, f), cpu_fn=oracle))
    for _ in range(8):
        n, c, o = (int(v) for v in rng.integers(1, 4, size=3))
        size = [int(v) for v in rng.integers(1, 7, size=3)]
        k = [int(v) for v in rng.integers(1, 4, size=3)]
        st = [1] + [int(v) for v in rng.integers(1, 3, size=3)] + [1]
        padding = str(rng.choice(["SAME", "VALID"]))
        dtype = tf.float32 if rng.random() < 0.6 else tf.float64
        xi, fi = rand(rng, [n] + size + [c]), rand(rng, k + [c, o])
        cases.append(conv("random", dtype, inp=xi, flt=fi, strides=st, padding=padding))
        out = [out_size(size[i], k[i], 1, st[i + 1], padding, []) for i in range(3)]
        if 0 in out:
            continue  # TensorFlow's CPU input gradient crashes on an empty out_backprop
        dy = rand(rng, [n] + out + [o])
        cases += [
            raw3("Conv3DBackpropInputV2", "random", **floats(dtype, dict(input_sizes=[n] + size + [c], filter=fi, out_backprop=dy,
                                                                         strides=st, padding=padding))),
            raw3("Conv3DBackpropFilterV2", "random", **floats(dtype, dict(input=xi, filter_sizes=k + [c, o], out_backprop=dy,
                                                                          strides=st, padding=padding))),
        ]
    dy = rand(rng, [2, 4, 4, 3, 4])
    grad_in = dict(input_sizes=[2, 5, 6, 4, 3], filter=f, out_backprop=dy, strides=s1, padding="VALID")
    grad_f = dict(input=x, filter_sizes=[2, 3, 2, 3, 4], out_backprop=dy, strides=s1, padding="VALID")
    cases += [
        raw3("Conv3DBackpropInputV2", "int64 input_sizes", **dict(grad_in, input_sizes=tf.constant([2, 5, 6, 4, 3], tf.int64))),
        raw3("Conv3DBackpropInputV2", "input_sizes of 4", **dict(grad_in, input_sizes=[2, 5, 6, 4])),
        raw3("Conv3DBackpropInputV2", "input_sizes 2-D", **dict(grad_in, input_sizes=[[2, 5, 6, 4, 3]])),
        raw3("Conv3DBackpropInputV2", "negative input size", **dict(grad_in, input_sizes=[2, -5, 6, 4, 3])),
        raw3("Conv3DBackpropInputV2", "channel mismatch", **dict(grad_in, input_sizes=[2, 5, 6, 4, 2])),
        raw3("Conv3DBackpropInputV2", "out_backprop channels mismatch", **dict(grad_in, out_backprop=rand(rng, [2, 4, 4, 3, 3]))),
        raw3("Conv3DBackpropInputV2", "batch mismatch", **dict(grad_in, out_backprop=rand(rng, [1, 4, 4, 3, 4]))),
        raw3("Conv3DBackpropInputV2", "out_backprop size mismatch", **dict(grad_in, out_backprop=rand(rng, [2, 4, 5, 3, 4]))),
        raw3("Conv3DBackpropInputV2", "out_backprop rank 4", **dict(grad_in, out_backprop=rand(rng, [2, 4, 4, 3]))),
        raw3("Conv3DBackpropInputV2", "batch 0", **dict(grad_in, input_sizes=[0, 5, 6, 4, 3], out_backprop=rand(rng, [0, 4, 4, 3, 4]))),
        raw3("Conv3DBackpropInputV2", "SAME, strides", **dict(grad_in, padding="SAME", strides=[1, 2, 2, 2, 1],
                                                               out_backprop=rand(rng, [2, 3, 3, 2, 4]))),
        raw3("Conv3DBackpropInputV2", "stride 0", **dict(grad_in, strides=[1, 0, 1, 1, 1]), graph=False),
        raw3("Conv3DBackpropInputV2", "stride in depth", **dict(grad_in, strides=[1, 1, 1, 1, 2]), graph=False),
        raw3("Conv3DBackpropFilterV2", "filter_sizes 2-D", **dict(grad_f, filter_sizes=[[2, 3, 2, 3, 4]])),
        raw3("Conv3DBackpropFilterV2", "filter_sizes of 4", **dict(grad_f, filter_sizes=[2, 3, 2, 3])),
        raw3("Conv3DBackpropFilterV2", "channel mismatch", **dict(grad_f, filter_sizes=[2, 3, 2, 2, 4])),
        raw3("Conv3DBackpropFilterV2", "size mismatch", **dict(grad_f, filter_sizes=[2, 2, 2, 3, 4])),
        raw3("Conv3DBackpropFilterV2", "batch 0", **dict(grad_f, input=rand(rng, [0, 5, 6, 4, 3]), out_backprop=rand(rng, [0, 4, 4, 3, 4]))),
        raw3("Conv3DBackpropFilterV2", "float64, SAME, strides", **floats(tf.float64, dict(grad_f, padding="SAME", strides=[1, 2, 2, 2, 1],
                                                                                     out_backprop=rand(rng, [2, 3, 3, 2, 4])))),
    ]
    cases += pool3d_cases(rng)
    return cases


NO_CHECK_3D = "TensorFlow's oneDNN kernel does not check it"


def pool3d_cases(rng):
    cases = []
    x = rand(rng, [2, 5, 6, 4, 3])
    k2, s1 = [1, 2, 2, 2, 1], [1, 1, 1, 1, 1]

    def pool(op, note, inp=x, **kw):
        kw.setdefault("ksize", k2)
        kw.setdefault("strides", s1)
        kw.setdefault("padding", "VALID")
        return raw(op, note, input=inp, **kw)

    for op in ("MaxPool3D", "AvgPool3D"):
        cases += [
            pool(op, "valid"),
            pool(op, "SAME, strides", padding="SAME", ksize=[1, 3, 2, 3, 1], strides=[1, 2, 3, 1, 1]),
            pool(op, "window larger than input, SAME", padding="SAME", ksize=[1, 9, 2, 9, 1]),
            pool(op, "window larger than input, VALID (empty)", ksize=[1, 9, 2, 1, 1]),
            pool(op, "batch 0", inp=rand(rng, [0, 5, 6, 4, 3])),
            pool(op, "0 channels", inp=rand(rng, [2, 5, 6, 4, 0])),
            pool(op, "input rank 4", inp=rand(rng, [5, 6, 4, 3])),
            pool(op, "ksize of 4", ksize=[1, 2, 2, 1], graph=False),
            pool(op, "ksize 0", ksize=[1, 0, 2, 2, 1], graph=False),
            pool(op, "stride 0", strides=[1, 0, 1, 1, 1], graph=False),
            pool(op, "ksize in batch", ksize=[2, 2, 2, 2, 1], graph=False),
            pool(op, "window in depth", ksize=[1, 2, 2, 2, 2], graph=False),
        ]
    cases += [
        pool("MaxPool3D", "NCDHW", data_format="NCDHW", graph=False),
        pool("AvgPool3D", "deliberate difference: NCDHW (InvalidArgument as TensorFlow's Eigen kernel; its oneDNN kernel: Unimplemented)",
             data_format="NCDHW", graph=False, cpu=Raises(UNIMP), npu=Raises(IAE, "only supports NDHWC")),
    ]
    for _ in range(8):
        op = str(rng.choice(["MaxPool3D", "AvgPool3D"]))
        n, c = (int(v) for v in rng.integers(1, 3, size=2))
        size = [int(v) for v in rng.integers(1, 7, size=3)]
        ks = [1] + [int(v) for v in rng.integers(1, 4, size=3)] + [1]
        st = [1] + [int(v) for v in rng.integers(1, 4, size=3)] + [1]
        padding = str(rng.choice(["SAME", "VALID"]))
        xi = rand(rng, [n] + size + [c])
        cases.append(pool(op, "random", inp=xi, ksize=ks, strides=st, padding=padding))
        out = [out_size(size[i], ks[i + 1], 1, st[i + 1], padding, []) for i in range(3)]
        dy = rand(rng, [n] + out + [c])
        if op == "AvgPool3D":
            cases.append(raw("AvgPool3DGrad", "random", orig_input_shape=[n] + size + [c], grad=dy, ksize=ks, strides=st, padding=padding))
        else:
            y = R.MaxPool3D(input=xi, ksize=ks, strides=st, padding=padding)
            cases.append(raw("MaxPool3DGrad", "random", orig_input=xi, orig_output=y, grad=dy, ksize=ks, strides=st, padding=padding))
    # Ties: every element equal to the window's maximum takes the gradient.
    ties = tf.constant(rng.integers(0, 3, size=[1, 4, 4, 4, 2]), tf.float32)
    y = R.MaxPool3D(input=ties, ksize=k2, strides=s1, padding="SAME")
    dy = rand(rng, [1, 4, 4, 4, 2])
    grad = dict(orig_input=ties, orig_output=y, grad=dy, ksize=k2, strides=s1, padding="SAME")
    avg = dict(orig_input_shape=[1, 4, 4, 4, 2], grad=dy, ksize=k2, strides=s1, padding="SAME")
    cases += [
        raw("MaxPool3DGrad", "ties", **grad),
        raw("MaxPool3DGrad", "orig_output shape mismatch", **dict(grad, orig_output=dy[:, :3])),
        raw("MaxPool3DGrad", "grad rank 4", **dict(grad, grad=dy[0])),
        raw("MaxPool3DGrad", "bfloat16", **{k: tf.cast(v, tf.bfloat16) if isinstance(v, tf.Tensor) else v for k, v in grad.items()}),
        raw("AvgPool3DGrad", "SAME", **avg),
        raw("AvgPool3DGrad", f"orig_input_shape of 4 (TensorFlow's oneDNN kernel {ABORTS}; no other CPU kernel)",
            **dict(avg, orig_input_shape=[1, 4, 4, 4]), npu=Raises(IAE, "1-dimensional and 5 elements")),
        raw("AvgPool3DGrad", "batch mismatch", **dict(avg, orig_input_shape=[2, 4, 4, 4, 2])),
        # TensorFlow's oneDNN kernel (its only float32 one) checks none of
        # these and leaves a short grad's elements uninitialised; the NPU
        # follows its Eigen kernel (pooling_ops_3d.cc).
        raw("AvgPool3DGrad", f"deliberate difference: channel mismatch ({NO_CHECK_3D})", **dict(avg, orig_input_shape=[1, 4, 4, 4, 3]),
            cpu=SUCCEEDS, npu=Raises(IAE, "last dimension of tensor_in_shape and out_backprop")),
        raw("AvgPool3DGrad", f"deliberate difference: grad smaller than the pool's output ({NO_CHECK_3D})", **dict(avg, grad=dy[:, :2]),
            cpu=SUCCEEDS, npu=SUCCEEDS),
        raw("AvgPool3DGrad", f"deliberate difference: grad windows past the input ({NO_CHECK_3D})",
            **dict(avg, orig_input_shape=[1, 2, 4, 4, 2], strides=[1, 2, 1, 1, 1]), cpu=SUCCEEDS,
            npu=Raises(IAE, "index \\* stride must be less than or equal to input size")),
        raw("AvgPool3DGrad", "no grad", **dict(avg, grad=dy[:0], orig_input_shape=[0, 4, 4, 4, 2])),
        raw("AvgPool3DGrad", "ksize 0", **dict(avg, ksize=[1, 0, 2, 2, 1]), graph=False),
    ]
    return cases


# ------------------------------------------------------------ complex ----


def crand(rng, shape):
    return tf.complex(rand(rng, shape), rand(rng, shape))


@family
def cases_complex(rng):
    """complex64: Complex/Real/Imag, RFFT/IRFFT, complex arithmetic, casts."""
    c = crand(rng, [3, 5])
    cases = [
        raw("Complex", "same shape", real=rand(rng, [3, 5]), imag=rand(rng, [3, 5]), Tout=tf.complex64),
        raw("Complex", "broadcast", real=rand(rng, [3, 1]), imag=rand(rng, [4]), Tout=tf.complex64),
        raw("Complex", "scalar part", real=rand(rng, []), imag=rand(rng, [2, 3]), Tout=tf.complex64),
        raw("Complex", "incompatible shapes", real=rand(rng, [3]), imag=rand(rng, [4]), Tout=tf.complex64),
        raw("Complex", "empty", real=rand(rng, [0, 3]), imag=rand(rng, [1, 3]), Tout=tf.complex64),
        raw("Real", "valid", input=c, Tout=tf.float32),
        raw("Imag", "valid", input=c, Tout=tf.float32),
        raw("Imag", "empty", input=crand(rng, [0, 2]), Tout=tf.float32),
        raw("Cast", "complex64 -> float32 (real part)", x=c, DstT=tf.float32),
        raw("Cast", "complex64 -> int64", x=c, DstT=tf.int64),
        raw("Cast", "float32 -> complex64", x=rand(rng, [4]), DstT=tf.complex64),
        raw("Cast", "float64 -> complex64", x=rand(rng, [4], tf.float64), DstT=tf.complex64),
        raw("Cast", "int64 -> complex64", x=rand(rng, [4], tf.int64), DstT=tf.complex64),
        raw("Cast", "bool -> complex64", x=rand(rng, [4], tf.bool), DstT=tf.complex64),
        raw("StridedSlice", "complex64", input=c, begin=[1, 0], end=[3, 5], strides=[1, 2]),
        raw("AddN", "complex64", inputs=[c, crand(rng, [3, 5]), crand(rng, [3, 5])]),
    ]
    for op in ("AddV2", "Sub", "Mul", "Add"):
        cases += [
            raw(op, "complex64", x=c, y=crand(rng, [3, 5])),
            raw(op, "complex64 broadcast", x=c, y=crand(rng, [5])),
            raw(op, "complex64 incompatible", x=c, y=crand(rng, [4])),
        ]
    for _ in range(8):
        rows = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 3)))]
        n = int(rng.integers(1, 20))
        have = n + int(rng.integers(0, 3))
        # An FFT's float32 rounding is relative to the signal, not to each bin.
        cases.append(raw("RFFT", f"random n={n}", input=rand(rng, rows + [have]), fft_length=[n], atol=1e-5))
        half = n // 2 + 1 + int(rng.integers(0, 3))
        cases.append(raw("IRFFT", f"random n={n}", input=crand(rng, rows + [half]), fft_length=[n], atol=1e-5))
    for _ in range(4):
        shape = [int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 2)))] + [int(rng.integers(1, 17))]
        cases += [
            raw("FFT", "random", input=crand(rng, shape), atol=1e-5),
            raw("IFFT", "random", input=crand(rng, shape), atol=1e-5),
        ]
    cases += [
        raw("FFT", "scalar", input=crand(rng, [])),
        raw("FFT", "no rows", input=crand(rng, [0, 4])),
        raw("IFFT", "empty rows", input=crand(rng, [3, 0])),
        raw("RFFT", "input shorter than fft_length", input=rand(rng, [3, 8]), fft_length=[9]),
        raw("RFFT", "fft_length of 2", input=rand(rng, [3, 8]), fft_length=[8, 8]),
        raw("RFFT", "negative fft_length", input=rand(rng, [3, 8]), fft_length=[-2]),
        raw("RFFT", "scalar input", input=rand(rng, []), fft_length=[1]),
        raw("RFFT", "no rows", input=rand(rng, [0, 8]), fft_length=[8]),
        raw("IRFFT", "too few bins", input=crand(rng, [3, 5]), fft_length=[10]),
        raw("IRFFT", "odd length", input=crand(rng, [3, 5]), fft_length=[9], atol=1e-5),
        raw("IRFFT", "cropped bins", input=crand(rng, [3, 5]), fft_length=[4], atol=1e-5),
        raw("IRFFT", "no rows", input=crand(rng, [0, 5]), fft_length=[8]),
    ]
    return cases


# ------------------------------------------------------------ inplace ----


def inplace(op, note, x, i, v):
    """InplaceUpdate/Add/Sub write into `x`'s own buffer, on the CPU as on
    the NPU: each run works on its own DeepCopy of `x`, so that the CPU's run
    does not change the NPU's input."""
    i = tf.constant(i, tf.int32)

    def call(x, i, v):
        return getattr(R, op)(x=R.DeepCopy(x=x), i=i, v=v)

    return Case(op, call, args=(x, i, v), note=f"{note} | {op}({_short(x)}, i={_short(i)}, v={_short(v)})")


@family
def cases_inplace(rng):
    cases = []
    x = rand(rng, [5, 3])
    for op in ("InplaceUpdate", "InplaceAdd", "InplaceSub"):
        cases += [
            inplace(op, "valid", x, [4, 0], rand(rng, [2, 3])),
            inplace(op, "int64", rand(rng, [4, 2, 2], tf.int64), [1], rand(rng, [1, 2, 2], tf.int64)),
            inplace(op, "repeated row", x, [2, 2, -5], rand(rng, [3, 3])),
            inplace(op, "no rows", x, tf.zeros([0], tf.int32), rand(rng, [0, 3])),
            inplace(op, "i scalar", x, 1, rand(rng, [1, 3])),
            inplace(op, "ranks differ", x, [1], rand(rng, [3])),
            inplace(op, "row shape mismatch", x, [1], rand(rng, [1, 2])),
            inplace(op, "i and v rows differ", x, [1, 2], rand(rng, [1, 3])),
        ]
    cases += [
        raw("DeepCopy", "valid", x=rand(rng, [2, 3], tf.int64)),
        raw("DeepCopy", "size 0", x=rand(rng, [0, 3])),
        raw("Empty", "init", shape=[2, 3], dtype=tf.float32, init=True),
        raw("Empty", "init, int32", shape=[4], dtype=tf.int32, init=True),
        raw("Empty", "shape 2-D", shape=[[2, 3]], dtype=tf.float32, init=True),
        raw("Empty", "negative dim", shape=[2, -3], dtype=tf.float32, init=True),
    ]
    return cases


# ------------------------------------------------------------- random ----


def short_counter(op, key):
    """A Philox counter of one element: TensorFlow reads the second word past
    the end of the tensor (garbage); the NPU reads it as 0. Oracle: the
    CPU with the counter padded with 0."""
    def padded(shape, key, counter):
        return getattr(R, op)(shape=shape, key=key, counter=tf.concat([counter, tf.zeros([1], tf.uint64)], 0), alg=1)

    padded.__name__ = "counter padded with 0"
    return Case(op, lambda shape, key, counter: getattr(R, op)(shape=shape, key=key, counter=counter, alg=1),
                args=(tf.constant([2]), key, tf.constant([1], tf.uint64)), cpu_fn=padded,
                note="deliberate difference: counter of 1 (TensorFlow reads past its end)")


@family
def cases_random(rng):
    cases = []
    key, counter = tf.constant([7], tf.uint64), tf.constant([1, 2], tf.uint64)
    for op in ("StatelessRandomUniformV2", "StatelessRandomNormalV2", "StatelessTruncatedNormalV2"):
        cases += [
            raw(op, "valid", shape=[2, 3], key=key, counter=counter, alg=1),
            raw(op, "int64 shape", shape=tf.constant([4], tf.int64), key=key, counter=counter, alg=1, dtype=tf.float64),
            raw(op, "negative dim", shape=[2, -3], key=key, counter=counter, alg=1),
            raw(op, "key of 2", shape=[2], key=tf.constant([7, 8], tf.uint64), counter=counter, alg=1),
            short_counter(op, key),
            raw(op, "bad alg", shape=[2], key=key, counter=counter, alg=7),
            raw(op, "shape 2-D", shape=[[2]], key=key, counter=counter, alg=1),
            raw(op, "size 0", shape=[0, 3], key=key, counter=counter, alg=1),
        ]
    seed = tf.constant([1, 2])
    for op in ("StatelessRandomUniform", "StatelessRandomNormal", "StatelessTruncatedNormal"):
        cases += [
            raw(op, "valid", shape=[3, 2], seed=seed),
            raw(op, "int64 seed", shape=tf.constant([3], tf.int64), seed=tf.constant([5, 6], tf.int64), dtype=tf.float64),
            raw(op, "seed of 3", shape=[3], seed=tf.constant([1, 2, 3])),
            raw(op, "negative dim", shape=[-1], seed=seed),
        ]
    cases += [
        raw("StatelessRandomUniformInt", "valid", shape=[5], seed=seed, minval=tf.constant(-3), maxval=tf.constant(4)),
        raw("StatelessRandomUniformInt", "minval == maxval", shape=[5], seed=seed, minval=tf.constant(4), maxval=tf.constant(4)),
        raw("StatelessRandomUniformInt", "minval vector", shape=[5], seed=seed, minval=tf.constant([1]), maxval=tf.constant(4)),
        raw("StatelessRandomUniformIntV2", "valid", shape=[5], key=key, counter=counter, alg=1, minval=tf.constant(-3, tf.int64),
            maxval=tf.constant(9, tf.int64)),
        raw("StatelessRandomUniformIntV2", "minval > maxval", shape=[5], key=key, counter=counter, alg=1,
            minval=tf.constant(3, tf.int64), maxval=tf.constant(1, tf.int64)),
        raw("StatelessRandomUniformFullIntV2", "valid", shape=[5], key=key, counter=counter, alg=1, dtype=tf.uint32),
        raw("StatelessRandomUniformFullIntV2", "bad alg", shape=[5], key=key, counter=counter, alg=9, dtype=tf.int64),
        raw("StatelessRandomGetKeyCounter", "valid", seed=seed),
        raw("StatelessRandomGetKeyCounter", "int64 seed", seed=tf.constant([-1, 2**40], tf.int64)),
        raw("StatelessRandomGetKeyCounter", "seed of 1", seed=tf.constant([1])),
        raw("StatelessRandomGetKeyCounter", "seed 2-D", seed=tf.constant([[1, 2]])),
    ]
    return cases


# ----------------------------------------------------------- runners ----


# The conv and pool cases were recorded against TensorFlow's oneDNN CPU
# kernels (its default on AVX-512 CPUs). Where TensorFlow runs its Eigen
# kernels instead (AVX2-only CPUs, or TF_ENABLE_ONEDNN_OPTS=0), those reject
# ~30 argument sets that oneDNN and the NPU compute, so the oracle differs:
# run with TF_ENABLE_ONEDNN_OPTS=1 to check these families there.
ONEDNN_FAMILIES = {"conv", "pool", "volume"}


def skip_without_onednn(name):
    from tensorflow.python.util import _pywrap_util_port

    if name in ONEDNN_FAMILIES and not _pywrap_util_port.IsMklEnabled():
        pytest.skip("TensorFlow CPU runs its Eigen kernels here; the cases record oneDNN's (TF_ENABLE_ONEDNN_OPTS=1)")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_eager(name):
    skip_without_onednn(name)
    check_all(build(name), context=f"ARGCHECK_SEED={SEED} ")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_graph(name):
    skip_without_onednn(name)
    cases = build(name)
    check_all(cases, graph=True, context=f"ARGCHECK_SEED={SEED} ")


def test_helper_catches_differences():
    """argcheck fails a case whose op did not run on the NPU, and one whose
    outcomes differ (values, or exception classes), showing both."""
    from argcheck import Mismatch, check

    x = tf.constant([1.0, 2.0])
    add = lambda x: R.AddV2(x=x, y=x)  # noqa: E731
    with pytest.raises(Mismatch, match="kernel for Lgamma"):
        check(Case("Lgamma", lambda x: R.Lgamma(x=x), args=(x,)))
    with pytest.raises(Mismatch, match="kernel for Sub did not run"):
        check(Case("Sub", add, args=(x,)))
    with pytest.raises(Mismatch, match=r"(?s)differs at \[0\].*CPU oracle .*NPU: ok float32\[2\]"):
        check(Case("AddV2", add, args=(x,), cpu_fn=lambda x: R.AddV2(x=x, y=2 * x)))
    with pytest.raises(Mismatch, match="(?s)different exception classes.*UnimplementedError.*InvalidArgumentError"):
        check(Case("AddV2", lambda x: R.AddV2(x=x, y=tf.ones([3])), args=(x,),
                   cpu_fn=lambda x: R.MaxPool(input=tf.ones([1, 2, 2, 1]), ksize=[2, 1, 1, 1], strides=[1, 1, 1, 1], padding="VALID")))
    check(Case("AddV2", lambda x, y: R.AddV2(x=x, y=y), args=(x, 2 * x)), graph=True)
