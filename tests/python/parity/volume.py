"""Argument-check cases of the volume family: Conv3D and 3-D pooling."""

import numpy as np
import tensorflow as tf
from argcheck import Case, Raises, SUCCEEDS

from .common import BIG, IAE, R, UNIMP, family, rand, raw
from .conv import ABORTS, floats, out_size


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
