"""Inference throughput on the NPU (host backend) against TensorFlow CPU, in
one process and one run: the same model and weights, each in a tf.function
with its device scope inside, timed after warm-up. Prints items/s of both and
the ratio NPU/CPU (> 1.0: the NPU path is faster).

    python benches/inference.py --model resnet50 --batch 32
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tf_adapter
from tf_adapter import zoo


def timed(fn, x, warmup, iters):
    for _ in range(warmup):
        fn(x).numpy()
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        fn(x).numpy()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=zoo.NAMES)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=5, help="timed runs (best is reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224)
    args = p.parse_args(argv)

    # Logits (no final softmax) so the error figure compares real signal.
    cpu_model, npu_model = zoo.twin(args.model, image_size=args.image_size, logits=True)
    x = tf.constant(zoo.example_input(cpu_model, args.batch))

    @tf.function
    def on_npu(inp):
        with tf.device("/NPU:0"):
            return npu_model(inp, training=False)

    @tf.function
    def on_cpu(inp):
        with tf.device("/CPU:0"):
            return cpu_model(inp, training=False)

    report = tf_adapter.coverage(npu_model, x)
    got, want = on_npu(x).numpy(), on_cpu(x).numpy()
    err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))
    t_npu = timed(on_npu, x, args.warmup, args.iters)
    t_cpu = timed(on_cpu, x, args.warmup, args.iters)
    unit = "seq/s" if args.model == "bert_encoder" else "img/s"
    cfg = tf_adapter.config()
    print(f"model {args.model}, batch {args.batch}, NPU threads {cfg['threads']}, best of {args.iters}")
    print(f"coverage: {'all ops on the NPU' if report.fully_on_npu else 'HOST FALLBACK: ' + ', '.join(o.op_type for o in report.fallback)}")
    print(f"max relative difference NPU vs CPU: {err:.2e}")
    print(f"NPU (tf_adapter host backend): {args.batch / t_npu:8.2f} {unit}  ({t_npu * 1e3:.1f} ms/batch)")
    print(f"TensorFlow CPU:                {args.batch / t_cpu:8.2f} {unit}  ({t_cpu * 1e3:.1f} ms/batch)")
    print(f"ratio NPU/CPU: {t_cpu / t_npu:.3f}")
    return t_cpu / t_npu


if __name__ == "__main__":
    main()
