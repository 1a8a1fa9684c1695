"""Every speed benchmark of the host backend in one run, against TensorFlow CPU
in the same process: one table (benchmark, mode, NPU, TF CPU, ratio, target,
met?) on stdout and the same rows as JSON.

    python benches/suite.py [--iters 3] [--latency-iters 20] [--json bench-results.json]
        [--only resnet50_b32,bert_b32,...] [--image-size 224] [--list]

Each benchmark runs the same model and weights on both sides, each in a
tf.function with its device scope inside; after a warm-up the NPU and CPU runs
alternate (NPU, CPU, NPU, CPU...) so that a change of load on the machine hits
both, and the best of each is kept. Ratio = TF CPU time / NPU time (> 1: the
NPU is faster). A batch-1 latency row is one call of ~50 ms, where a VM's
speed moves by 20-30 % between calls: it runs --latency-iters alternating
calls (default 20) so that its best is a best, not a draw. Targets are issue
17's; the bfloat16 ones depend on the CPU (AMX-BF16, AVX512-BF16 without AMX,
or neither), which the header prints.
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

import keras
import tf_adapter

# Each benchmark builds fresh tf.functions on purpose (a precision mode is
# applied when a function is first traced): TensorFlow's retracing notice
# would only add noise.
tf.get_logger().setLevel("ERROR")
from tf_adapter import zoo

# Same inference function and AdamW train step as the precision benchmark.
from precision_host import infer_fn, train_step


def cpu_features():
    """(model name, bfloat16 class, flags of interest) from /proc/cpuinfo."""
    name, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and name in ("unknown", "", "x86_64"):
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    bf16 = "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none"
    shown = sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16"})
    return name, bf16, shown


# bfloat16 targets by CPU class: (vs TF CPU float32, vs TF CPU mixed_bfloat16).
BF16_INFER = {"amx": (2.0, 1.5), "avx512_bf16": (1.3, None), "none": (None, None)}
BF16_TRAIN = {"amx": 1.5, "avx512_bf16": 1.1, "none": None}


def interleaved(fns, args, warmup, iters):
    """Best seconds of each function in `fns` (a dict), runs alternating."""
    for fn in fns.values():
        for _ in range(warmup):
            np.asarray(fn(*args))
    best = {k: float("inf") for k in fns}
    for _ in range(iters):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            np.asarray(fn(*args))
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def train_fn(model, device):
    return train_step(model, device, keras.losses.CategoricalCrossentropy(from_logits=True))


def rel_diff(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def cosine(got, want):
    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    return float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))


class Models:
    """Twins (CPU, NPU) built once per model name and reused."""

    def __init__(self, image_size):
        self.image_size, self.cache = image_size, {}

    def get(self, name):
        if name not in self.cache:
            kw = {} if name in ("bert_encoder", "lstm_classifier") else {"image_size": self.image_size, "logits": True}
            self.cache[name] = zoo.twin(name, **kw)
        return self.cache[name]

    def mixed_bf16_cpu(self, name):
        """The CPU model rebuilt under Keras's mixed_bfloat16 policy, same weights."""
        key = name + ":mixed_bfloat16"
        if key not in self.cache:
            cpu, _ = self.get(name)
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
            try:
                with tf.device("/CPU:0"):
                    m = zoo.build(name, image_size=self.image_size, logits=True)
            finally:
                keras.mixed_precision.set_global_policy("float32")
            m.set_weights(cpu.get_weights())
            self.cache[key] = m
        return self.cache[key]


def with_mode(mode, body):
    """Runs `body()` with the NPU precision mode `mode`, restoring float32."""
    tf_adapter.set_precision_mode(mode)
    try:
        return body()
    finally:
        tf_adapter.set_precision_mode("must_keep_origin_dtype")


def bench_infer(models, name, batch, args, mode="must_keep_origin_dtype", vs_mixed=False, iters=None):
    cpu, npu = models.get(name)
    x = tf.constant(zoo.example_input(cpu, batch))

    def body():
        fns = {"npu": infer_fn(npu, "/NPU:0"), "cpu": infer_fn(cpu, "/CPU:0")}
        if vs_mixed:
            fns["mixed"] = infer_fn(models.mixed_bf16_cpu(name), "/CPU:0")
        got, want = fns["npu"](x), fns["cpu"](x)
        acc = (
            f"max rel diff {rel_diff(got, want):.1e}"
            if mode == "must_keep_origin_dtype"
            else f"cosine {cosine(got, want):.5f}"
        )
        return interleaved(fns, (x,), args.warmup, iters or args.iters), acc

    t, acc = with_mode(mode, body)
    return t, acc


def bench_train(models, name, batch, args, mode="must_keep_origin_dtype"):
    cpu, npu = models.get(name)
    initial = npu.get_weights()
    rng = np.random.default_rng(0)
    x = tf.constant(zoo.example_input(cpu, batch))
    classes = int(cpu.outputs[0].shape[-1])
    y = tf.one_hot(rng.integers(0, classes, size=batch), classes)

    def body():
        fns = {"npu": train_fn(npu, "/NPU:0"), "cpu": train_fn(cpu, "/CPU:0")}
        first = (float(fns["npu"](x, y)), float(fns["cpu"](x, y)))
        return interleaved(fns, (x, y), args.warmup, args.iters), f"first loss {first[0]:.4f} vs {first[1]:.4f}"

    try:
        return with_mode(mode, body)
    finally:
        npu.set_weights(initial)
        cpu.set_weights(initial)


def benchmarks(bf16):
    """(key, description, mode, unit, items, runner, [(vs, target)...])."""
    f32 = "must_keep_origin_dtype"
    mix = "allow_mix_precision_bf16"
    infer_t, mixed_t = BF16_INFER[bf16]
    return [
        ("resnet50_b32", "ResNet50 inference b32", f32, "img/s", 32,
         lambda m, a: bench_infer(m, "resnet50", 32, a), [("cpu", 1.2)]),
        ("mobilenetv2_b32", "MobileNetV2 inference b32", f32, "img/s", 32,
         lambda m, a: bench_infer(m, "mobilenetv2", 32, a), [("cpu", 1.2)]),
        ("efficientnetb0_b32", "EfficientNetB0 inference b32", f32, "img/s", 32,
         lambda m, a: bench_infer(m, "efficientnetb0", 32, a), [("cpu", 1.1)]),
        ("bert_b32", "BERT-like encoder seq 128 b32", f32, "seq/s", 32,
         lambda m, a: bench_infer(m, "bert_encoder", 32, a), [("cpu", 1.2)]),
        ("resnet50_b1", "ResNet50 latency b1", f32, "ms", 1,
         lambda m, a: bench_infer(m, "resnet50", 1, a, iters=max(a.iters, a.latency_iters)), [("cpu", 1.0)]),
        ("resnet50_train_b32", "ResNet50 train step AdamW b32", f32, "img/s", 32,
         lambda m, a: bench_train(m, "resnet50", 32, a), [("cpu", 1.1)]),
        # No target in issue 17: parity with TF CPU is the bar.
        ("lstm_b32", "2-layer LSTM(256) seq 50 inference b32", f32, "seq/s", 32,
         lambda m, a: bench_infer(m, "lstm_classifier", 32, a), [("cpu", 1.0)]),
        ("lstm_train_b32", "2-layer LSTM(256) seq 50 train step AdamW b32", f32, "seq/s", 32,
         lambda m, a: bench_train(m, "lstm_classifier", 32, a), [("cpu", 1.0)]),
        ("resnet50_bf16_b32", "ResNet50 inference b32", mix, "img/s", 32,
         lambda m, a: bench_infer(m, "resnet50", 32, a, mix, vs_mixed=True),
         [("cpu", infer_t), ("mixed", mixed_t)]),
        ("resnet50_bf16_train_b32", "ResNet50 train step AdamW b32", mix, "img/s", 32,
         lambda m, a: bench_train(m, "resnet50", 32, a, mix), [("cpu", BF16_TRAIN[bf16])]),
    ]


BASELINE = {"cpu": "TF CPU float32", "mixed": "TF CPU mixed_bfloat16"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=3, help="timed runs of each side (best is kept)")
    p.add_argument("--latency-iters", type=int, default=20,
                   help="timed runs of each side for the batch-1 latency row (at least --iters)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--only", default="", help="comma-separated benchmark keys (see --list)")
    p.add_argument("--list", action="store_true", help="list the benchmark keys and exit")
    p.add_argument("--json", default="bench-results.json", help="where to write the rows ('' for nowhere)")
    args = p.parse_args(argv)

    cpu_name, bf16, flags = cpu_features()
    table = benchmarks(bf16)
    if args.list:
        for key, desc, mode, *_ in table:
            print(f"{key:<26} {desc} ({mode})")
        return 0
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(keys) - {b[0] for b in table})
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    if keys:
        table = [b for b in table if b[0] in keys]

    machine = {
        "cpu": cpu_name,
        "cores": os.cpu_count(),
        "npu_threads": tf_adapter.config()["threads"],
        "bf16_class": bf16,
        "features": flags,
        "tensorflow": tf.__version__,
        "tf_adapter": getattr(tf_adapter, "__version__", "?"),
        "image_size": args.image_size,
        "iters": args.iters,
        "latency_iters": max(args.iters, args.latency_iters),
    }
    print(f"CPU {cpu_name}, {machine['cores']} cores, NPU threads {machine['npu_threads']}, "
          f"features {' '.join(flags) or '-'}; bfloat16 targets for: {bf16}", flush=True)
    print(f"TensorFlow {tf.__version__}, best of {args.iters} interleaved runs each side "
          f"({machine['latency_iters']} for batch-1 latency)\n", flush=True)

    models, rows = Models(args.image_size), []
    for key, desc, mode, unit, items, run, targets in table:
        t0 = time.perf_counter()
        times, acc = run(models, args)
        for vs, target in targets:
            npu_s, base_s = times["npu"], times[vs]
            speed = (lambda s: s * 1e3) if unit == "ms" else (lambda s: items / s)
            ratio = base_s / npu_s
            row = {
                "key": key if vs == "cpu" else f"{key}_vs_{vs}",
                "benchmark": desc,
                "mode": mode,
                "baseline": BASELINE[vs],
                "unit": unit,
                "npu": round(speed(npu_s), 3),
                "tf": round(speed(base_s), 3),
                "ratio": round(ratio, 3),
                "target": target,
                "met": None if target is None else bool(ratio >= target),
                "accuracy": acc,
            }
            rows.append(row)
            met = "n/a" if target is None else ("yes" if row["met"] else "NO")
            print(f"  {desc} [{mode}] vs {BASELINE[vs]}: NPU {row['npu']:.2f} {unit}, "
                  f"TF {row['tf']:.2f} {unit}, ratio {ratio:.2f}, target "
                  f"{'-' if target is None else f'{target:.2f}'} {met}; {acc} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)

    head = f"{'benchmark':<31} {'mode':<24} {'baseline':<22} {'NPU':>9} {'TF CPU':>9} {'unit':<5} {'ratio':>6} {'target':>6} met"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        target = "-" if r["target"] is None else f"{r['target']:.2f}"
        met = "n/a" if r["met"] is None else ("yes" if r["met"] else "NO")
        print(f"{r['benchmark']:<31} {r['mode']:<24} {r['baseline']:<22} {r['npu']:9.2f} {r['tf']:9.2f} "
              f"{r['unit']:<5} {r['ratio']:6.2f} {target:>6} {met}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "rows": rows}, f, indent=2)
        print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
