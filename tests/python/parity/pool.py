"""Argument-check cases of the pool family: MaxPool/AvgPool, their gradients and argmax."""

import tensorflow as tf
from argcheck import Case, Raises, SUCCEEDS

from .common import BIG, IAE, R, family, rand, raw
from .conv import ABORTED, ABORTS, eigen_differs, floats, out_size


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
