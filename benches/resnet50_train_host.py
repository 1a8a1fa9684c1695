"""ResNet50 training step (forward, backward, AdamW update) on the NPU (host
backend) against TensorFlow CPU, in one process and one run: the same model,
weights and batch, each step in a tf.function with its device scope inside,
timed after warm-up. Prints img/s of both, the ratio NPU/CPU (> 1.0: the NPU
path is faster) and the NPU's time per op type.

    python benches/resnet50_train_host.py [--batch 32] [--iters 3] [--image-size 224]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import tf_adapter
import keras
from tf_adapter import train, zoo


def timed(step, x, y, warmup, iters):
    for _ in range(warmup):
        step(x, y).numpy()
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        step(x, y).numpy()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", choices=[n for n in zoo.NAMES if n != "bert_encoder"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--iters", type=int, default=3, help="timed steps (best is reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--profile", action="store_true", help="print the NPU time per op type")
    args = p.parse_args(argv)

    cpu_model, npu_model = zoo.twin(args.model, image_size=args.image_size, logits=True)
    rng = np.random.default_rng(0)
    x = tf.constant(zoo.example_input(cpu_model, args.batch))
    classes = int(cpu_model.outputs[0].shape[-1])
    y = tf.one_hot(rng.integers(0, classes, size=args.batch), classes)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)

    steps = {}
    for dev, model in (("/NPU:0", npu_model), ("/CPU:0", cpu_model)):
        with tf.device(dev):
            opt = keras.optimizers.AdamW(1e-4)
            opt.build(model.trainable_variables)
        steps[dev] = train.make_train_step(model, loss, opt, device=dev)

    report = tf_adapter.coverage(steps["/NPU:0"], x, y)
    first = (float(steps["/NPU:0"](x, y)), float(steps["/CPU:0"](x, y)))
    tf_adapter.reset_kernel_counts()
    t_npu = timed(steps["/NPU:0"], x, y, args.warmup, args.iters)
    times = tf_adapter.kernel_times()
    mem = tf_adapter.memory_info("NPU:0")
    t_cpu = timed(steps["/CPU:0"], x, y, args.warmup, args.iters)

    print(f"model {args.model} train step (AdamW), batch {args.batch}, {args.image_size}px, "
          f"NPU threads {tf_adapter.config()['threads']}, best of {args.iters}")
    where = "all ops on the NPU" if report.fully_on_npu else (
        "HOST FALLBACK: " + ", ".join(o.op_type for o in report.fallback + report.unsupported))
    print(f"coverage: {where}")
    print(f"first-step loss NPU {first[0]:.6f} vs CPU {first[1]:.6f}")
    print(f"NPU (tf_adapter host backend): {args.batch / t_npu:8.2f} img/s  ({t_npu * 1e3:.0f} ms/step)")
    print(f"TensorFlow CPU:                {args.batch / t_cpu:8.2f} img/s  ({t_cpu * 1e3:.0f} ms/step)")
    print(f"ratio NPU/CPU: {t_cpu / t_npu:.3f}")
    gib = 2**30
    print(f"NPU memory: peak {mem['peak'] / gib:.2f} GiB, cached {mem['cached'] / gib:.2f} GiB, "
          f"capacity {mem['capacity'] / gib:.2f} GiB")
    if args.profile:
        total = sum(times.values())
        steps_run = args.warmup + args.iters
        print(f"NPU kernel time per step: {total / steps_run * 1e3:.0f} ms of {t_npu * 1e3:.0f} ms wall (best step)")
        for op, s in sorted(times.items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {op:<36} {s / total:6.1%}")
    return t_cpu / t_npu


if __name__ == "__main__":
    main()
