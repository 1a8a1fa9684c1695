"""Convolution/pooling gradient kernels: NPU (host backend) vs TensorFlow CPU
on ResNet50 training shapes, float32, NHWC. Prints the best time of each op
on each device (CPU and NPU runs interleaved; the minimum resists noise from
other work on the machine) and the CPU/NPU ratio (> 1: the NPU is faster).
With `--dtype bfloat16` both devices get bfloat16 tensors (TensorFlow CPU
runs its oneDNN bfloat16 kernels; the NPU its bfloat16 GEMM paths).

    python benches/conv_grads_host.py [--batch 32] [--iters 5] [--dtype bfloat16] [--only "1x1"]

`--only` keeps the shapes whose name contains the text (e.g. "1x1", "3x3/2").
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_adapter  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

# (name, input [h, w, c], kernel, cout, stride, padding)
SHAPES = [
    ("3x3 56x56x64->64", [56, 56, 64], 3, 64, 1, "SAME"),
    ("3x3 28x28x128->128", [28, 28, 128], 3, 128, 1, "SAME"),
    ("3x3 14x14x256->256", [14, 14, 256], 3, 256, 1, "SAME"),
    ("3x3 7x7x512->512", [7, 7, 512], 3, 512, 1, "SAME"),
    ("1x1 56x56x256->64", [56, 56, 256], 1, 64, 1, "VALID"),
    ("1x1 56x56x64->256", [56, 56, 64], 1, 256, 1, "VALID"),
    ("1x1/2 56x56x256->512", [56, 56, 256], 1, 512, 2, "VALID"),
    ("3x3/2 56x56x128->128", [56, 56, 128], 3, 128, 2, "SAME"),
    ("7x7/2 224x224x3->64", [224, 224, 3], 7, 64, 2, "SAME"),
]


def timed(fns, iters):
    """Best time of each `(fn, args)`, the runs interleaved."""
    for fn, args in fns:
        fn(*args).numpy()  # trace + warm up
    ts = [[] for _ in fns]
    for _ in range(iters):
        for t, (fn, args) in zip(ts, fns):
            start = time.perf_counter()
            fn(*args).numpy()
            t.append(time.perf_counter() - start)
    return [min(t) for t in ts]


def device_fn(device, body):
    @tf.function(autograph=False)
    def run(*args):
        with tf.device(device):
            # Reduce to a scalar on the device so the copy back is negligible.
            return tf.reduce_sum(body(*args))

    return run


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--only", default="", help="run only shapes whose name contains this")
    a = p.parse_args()
    dt = tf.as_dtype(a.dtype)
    rng = np.random.default_rng(0)
    n = a.batch
    print(f"batch {n}, {a.dtype}, NHWC, best of {a.iters}; threads: {tf_adapter.config()['threads']}")
    print(f"{'shape':24} {'op':7} {'CPU ms':>9} {'NPU ms':>9} {'CPU/NPU':>8}")
    tot = {"cpu": 0.0, "npu": 0.0}
    for name, (h, w, c), k, cout, s, pad in SHAPES:
        if a.only not in name:
            continue
        x = tf.constant(rng.uniform(-1, 1, [n, h, w, c]), dt)
        f = tf.constant(rng.uniform(-1, 1, [k, k, c, cout]), dt)
        y = tf.nn.conv2d(x, f, s, pad)
        dy = tf.constant(rng.uniform(-1, 1, y.shape), dt)
        attrs = dict(strides=[1, s, s, 1], padding=pad)
        ops = {
            "input": (lambda f, dy: tf.raw_ops.Conv2DBackpropInput(
                input_sizes=[n, h, w, c], filter=f, out_backprop=dy, **attrs), (f, dy)),
            "filter": (lambda x, dy: tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=[k, k, c, cout], out_backprop=dy, **attrs), (x, dy)),
        }
        for op, (body, args) in ops.items():
            if op == "input" and c == 3:
                continue  # the stem's input gradient is never needed
            with tf.device("/NPU:0"):
                npu_args = [tf.identity(t) for t in args]
            tc, tn = timed([(device_fn("/CPU:0", body), args),
                            (device_fn("/NPU:0", body), npu_args)], a.iters)
            tot["cpu"] += tc
            tot["npu"] += tn
            print(f"{name:24} {op:7} {tc * 1e3:9.1f} {tn * 1e3:9.1f} {tc / tn:8.2f}")
    # ResNet50's stem max pool.
    x = tf.constant(rng.uniform(-1, 1, [n, 112, 112, 64]), dt)
    y = tf.nn.max_pool2d(x, 3, 2, "SAME")
    dy = tf.constant(rng.uniform(-1, 1, y.shape), dt)
    body = lambda x, y, dy: tf.raw_ops.MaxPoolGrad(  # noqa: E731
        orig_input=x, orig_output=y, grad=dy, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
    with tf.device("/NPU:0"):
        npu_args = [tf.identity(t) for t in (x, y, dy)]
    tc, tn = timed([(device_fn("/CPU:0", body), (x, y, dy)),
                    (device_fn("/NPU:0", body), npu_args)], a.iters)
    tot["cpu"] += tc
    tot["npu"] += tn
    print(f"{'maxpool 3x3/2 112x112x64':24} {'grad':7} {tc * 1e3:9.1f} {tn * 1e3:9.1f} {tc / tn:8.2f}")
    print(f"{'total':32} {tot['cpu'] * 1e3:9.1f} {tot['npu'] * 1e3:9.1f} {tot['cpu'] / tot['npu']:8.2f}")


if __name__ == "__main__":
    main()
