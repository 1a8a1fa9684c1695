"""ResNet50 in every precision mode on the NPU (host backend) against
TensorFlow CPU float32 and TensorFlow CPU with Keras's ``mixed_bfloat16``
policy, in one process and one run: inference (batch 32) and a training step
(forward, backward, AdamW), img/s, ratios, and the accuracy gate of each mode
(logits against CPU float32: cosine similarity >= 0.999 for float16 modes,
>= 0.99 for bfloat16 modes, relative L2 < 1% for float16 modes; float32 modes
within 1e-4).

    python benches/precision_host.py [--batch 32] [--image-size 224] [--iters 3]
        [--modes allow_mix_precision_bf16,...] [--no-train]

Each mode gets fresh tf.functions: a function is rewritten for its mode when
TensorFlow first runs it. Targets (issue 7): allow_mix_precision_bf16
inference >= 2x TensorFlow CPU float32 and >= 1x TensorFlow CPU mixed_bfloat16.
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

MODES = [
    "must_keep_origin_dtype",
    "force_fp32",
    "allow_fp32_to_bf16",
    "allow_fp32_to_fp16",
    "allow_mix_precision_bf16",
    "allow_mix_precision_fp16",
]


def best_time(fn, args, warmup, iters):
    for _ in range(warmup):
        np.asarray(fn(*args))
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        np.asarray(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def infer_fn(model, device):
    @tf.function
    def f(x):
        with tf.device(device):
            return tf.cast(model(x, training=False), tf.float32)

    return f


def gate(mode, got, want):
    got, want = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
    rel_l2 = float(np.linalg.norm(got - want) / np.linalg.norm(want))
    if "fp16" in mode:
        ok = cos >= 0.999 and rel_l2 < 0.01
    elif "bf16" in mode:
        ok = cos >= 0.99
    else:
        ok = float(np.max(np.abs(got - want)) / np.max(np.abs(want))) <= 1e-4
    return cos, rel_l2, ok


def mixed_twin(cpu_model, args):
    """The CPU model rebuilt under Keras's mixed_bfloat16 policy, same weights."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        with tf.device("/CPU:0"):
            m = zoo.build("resnet50", image_size=args.image_size, logits=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    m.set_weights(cpu_model.get_weights())
    return m


def train_step(model, device, loss):
    with tf.device(device):
        opt = keras.optimizers.AdamW(1e-4)
        opt.build(model.trainable_variables)
    return train.make_train_step(model, loss, opt, device=device)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--iters", type=int, default=3, help="timed runs (best is reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--no-train", action="store_true", help="inference only")
    args = p.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    cpu_model, npu_model = zoo.twin("resnet50", image_size=args.image_size, logits=True)
    mixed_model = mixed_twin(cpu_model, args)
    rng = np.random.default_rng(0)
    x = tf.constant(zoo.example_input(cpu_model, args.batch))
    y = tf.one_hot(rng.integers(0, 1000, size=args.batch), 1000)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    n = args.batch

    rows = []
    cpu32 = infer_fn(cpu_model, "/CPU:0")
    want = np.asarray(cpu32(x))
    base = {"infer": n / best_time(cpu32, (x,), args.warmup, args.iters)}
    mixed = {"infer": n / best_time(infer_fn(mixed_model, "/CPU:0"), (x,), args.warmup, args.iters)}
    if not args.no_train:
        base["train"] = n / best_time(train_step(cpu_model, "/CPU:0", loss), (x, y), args.warmup, args.iters)
        mixed["train"] = n / best_time(train_step(mixed_model, "/CPU:0", loss), (x, y), args.warmup, args.iters)
    print(f"TensorFlow CPU float32:          inference {base['infer']:7.2f} img/s"
          + (f", train step {base['train']:6.2f} img/s" if "train" in base else ""), flush=True)
    print(f"TensorFlow CPU mixed_bfloat16:   inference {mixed['infer']:7.2f} img/s"
          + (f", train step {mixed['train']:6.2f} img/s" if "train" in mixed else ""), flush=True)

    initial = npu_model.get_weights()
    for mode in modes:
        tf_adapter.set_precision_mode(mode)
        npu_model.set_weights(initial)  # the previous mode's train steps moved them
        f = infer_fn(npu_model, "/NPU:0")
        got = np.asarray(f(x))
        r = {"mode": mode, "infer": n / best_time(f, (x,), args.warmup, args.iters)}
        r["cos"], r["rel_l2"], r["ok"] = gate(mode, got, want)
        if not args.no_train:
            r["train"] = n / best_time(train_step(npu_model, "/NPU:0", loss), (x, y), args.warmup, args.iters)
        rows.append(r)
        print(f"NPU {mode:<26} inference {r['infer']:7.2f} img/s"
              + (f", train step {r['train']:6.2f} img/s" if "train" in r else "")
              + f", cos {r['cos']:.5f}, rel L2 {r['rel_l2']:.2e}, gate {'pass' if r['ok'] else 'FAIL'}",
              flush=True)
    tf_adapter.set_precision_mode("must_keep_origin_dtype")

    print(f"\nResNet50 batch {n}, {args.image_size}x{args.image_size}, best of {args.iters};"
          " ratios are NPU / TensorFlow CPU (> 1: the NPU is faster)")
    head = f"{'mode':<26} {'infer img/s':>11} {'vs f32':>7} {'vs mixed_bf16':>13}"
    if not args.no_train:
        head += f" {'train img/s':>11} {'vs f32':>7} {'vs mixed_bf16':>13}"
    print(head + f" {'cosine':>8} {'rel L2':>8}  gate")
    for r in rows:
        line = f"{r['mode']:<26} {r['infer']:11.2f} {r['infer'] / base['infer']:7.2f} {r['infer'] / mixed['infer']:13.2f}"
        if "train" in r:
            line += f" {r['train']:11.2f} {r['train'] / base['train']:7.2f} {r['train'] / mixed['train']:13.2f}"
        print(line + f" {r['cos']:8.5f} {r['rel_l2']:8.1e}  {'pass' if r['ok'] else 'FAIL'}")
    target = [r for r in rows if r["mode"] == "allow_mix_precision_bf16"]
    if target:
        r = target[0]
        print(f"\nTarget allow_mix_precision_bf16 inference: >= 2.00x CPU float32 (reached "
              f"{r['infer'] / base['infer']:.2f}x), >= 1.00x CPU mixed_bfloat16 (reached "
              f"{r['infer'] / mixed['infer']:.2f}x)")


if __name__ == "__main__":
    main()
