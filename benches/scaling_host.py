"""Multi-NPU scaling on the host backend: Keras train-step throughput of
ResNet50 (small input) and a small CNN under MirroredStrategy over 1, 2 and 4
NPUs at a fixed per-device batch, each NPU with the same thread budget, in one
run. Prints img/s, speed-up, efficiency against one NPU, and the share of the
step the gradient all-reduce takes (TensorFlow's ring collective over the
NPUs, timed alone on gradient-shaped tensors, one call per step as the
optimizer makes it).

Each NPU count needs its own process (TFA_NPU_COUNT / TFA_NPU_THREADS are read
at import), so the script re-runs itself per configuration. A configuration
that needs more cores than the machine has is reported, not measured: NPUs
sharing cores would only time-share them.

    python benches/scaling_host.py [--model all|cnn|resnet50] [--per-device-batch 16] [--threads-per-npu 1]
"""

import argparse
import json
import os
import subprocess
import sys
import time


def worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    import keras
    import tf_adapter
    from tf_adapter import zoo

    n = tf_adapter.config()["npu_count"]
    if args.all_reduce == "npu":
        ops = tf_adapter.distribute.NpuAllReduce()
    else:
        ops = None  # TensorFlow's choice: the ring collective
    strategy = tf.distribute.MirroredStrategy([f"/NPU:{i}" for i in range(n)], cross_device_ops=ops)
    batch = args.per_device_batch * n
    with strategy.scope():
        if args.model == "resnet50":
            model = zoo.build("resnet50", image_size=args.image_size, logits=True)
        else:
            model = keras.Sequential([
                keras.Input((args.image_size, args.image_size, 3)),
                keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
                keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10),
            ])
        classes = int(model.outputs[0].shape[-1])
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    steps = args.steps
    x = rng.normal(size=[batch * steps, args.image_size, args.image_size, 3]).astype(np.float32)
    y = rng.integers(0, classes, size=batch * steps)

    # The train step alone: a custom loop over batches already on the NPUs.
    step_s = time_train_step(strategy, model, x[:batch], y[:batch], args.per_device_batch, steps, args.repeats)
    # Keras fit: the same step plus the input pipeline (tf.data on the host,
    # split and copied to the NPUs) and Keras's per-step bookkeeping.
    model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0)  # warm-up/trace
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    fit_s = (time.perf_counter() - t0) / steps
    allreduce_s = time_all_reduce(strategy, model.trainable_variables, steps)
    print(json.dumps({"npus": n, "img_s": batch / step_s, "step_s": step_s, "fit_img_s": batch / fit_s,
                      "allreduce_s": allreduce_s}))


def time_train_step(strategy, model, x, y, per_device, steps, repeats):
    """Best-of-`repeats` seconds per train step (forward, backward, all-reduce,
    SGD update) of a custom loop."""
    import keras

    from tf_adapter.distribute import train_step_seconds

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    return train_step_seconds(strategy, model, model.optimizer, loss_fn, [x], y, per_device, steps, repeats)


def time_all_reduce(strategy, variables, iters):
    """Seconds per all-reduce of one set of gradient-shaped tensors."""
    import tensorflow as tf

    @tf.function
    def reduce_all():
        def replica():
            grads = [tf.ones(v.shape, v.dtype) for v in variables]
            reduced = tf.distribute.get_replica_context().all_reduce("SUM", grads)
            return tf.add_n([tf.reduce_sum(g) for g in reduced])

        return strategy.run(replica)

    for _ in range(2):
        reduce_all()
    t0 = time.perf_counter()
    for _ in range(iters):
        out = reduce_all()
    strategy.experimental_local_results(out)[0].numpy()
    return (time.perf_counter() - t0) / iters


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="all", choices=["all", "cnn", "resnet50"])
    p.add_argument("--per-device-batch", type=int, default=16)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--threads-per-npu", type=int, default=1)
    p.add_argument("--steps", type=int, default=4, help="steps per timed window")
    p.add_argument("--repeats", type=int, default=3, help="timed windows of the train step (best is kept)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--all-reduce", default="ring", choices=["ring", "npu"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    models = ["resnet50", "cnn"] if args.model == "all" else [args.model]
    for model in models:
        table(args, model, cores)


def table(args, model, cores):
    results, skipped = [], []
    for n in (1, 2, 4):
        if n * args.threads_per_npu > cores:
            skipped.append(n)
            continue
        for all_reduce in ("ring", "npu") if n > 1 else ("ring",):
            env = dict(os.environ, TFA_NPU_COUNT=str(n), TFA_NPU_THREADS=str(args.threads_per_npu))
            cmd = [sys.executable, __file__, "--worker", "--model", model, "--all-reduce", all_reduce,
                   "--per-device-batch", str(args.per_device_batch), "--image-size", str(args.image_size),
                   "--steps", str(args.steps), "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            result["all_reduce"] = all_reduce if n > 1 else "-"
            results.append(result)
    base = results[0]["img_s"]
    fit_base = results[0]["fit_img_s"]
    print(f"\n{model} {args.image_size}px, per-device batch {args.per_device_batch}, "
          f"{args.threads_per_npu} thread(s) per NPU, MirroredStrategy, {cores} cores")
    print("train step: custom loop (forward, backward, all-reduce, SGD), best of "
          f"{args.repeats} x {args.steps} steps; fit: Keras fit incl. the tf.data input pipeline")
    print("all-reduce: ring = TensorFlow's CollectiveAllReduce (its default for NPUs), "
          "npu = tf_adapter.distribute.NpuAllReduce")
    print(f"{'NPUs':>4} {'all-reduce':>10} {'img/s':>8} {'speed-up':>9} {'efficiency':>11} {'step ms':>8} "
          f"{'all-reduce ms':>14} {'share':>6} {'fit img/s':>10} {'fit speed-up':>13}")
    for r in results:
        s = r["img_s"] / base
        share = r["allreduce_s"] / r["step_s"]
        print(f"{r['npus']:>4} {r['all_reduce']:>10} {r['img_s']:>8.1f} {s:>8.2f}x {s / r['npus']:>10.0%} "
              f"{r['step_s'] * 1e3:>8.1f} {r['allreduce_s'] * 1e3:>14.2f} {share:>6.1%} "
              f"{r['fit_img_s']:>10.1f} {r['fit_img_s'] / fit_base:>12.2f}x")
    for n in skipped:
        print(f"{n:>4} not measured: {n} NPUs x {args.threads_per_npu} thread(s) need "
              f"{n * args.threads_per_npu} cores, this machine has {cores} (they would only time-share them)")


if __name__ == "__main__":
    main()
