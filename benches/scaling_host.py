"""Multi-NPU scaling on the host backend: Keras train-step throughput of a
model under MirroredStrategy over 1, 2 (and 4) NPUs at a fixed per-device
batch, each NPU with the same thread budget, in one run. Prints img/s,
speed-up and efficiency against one NPU.

Each NPU count needs its own process (TFA_NPU_COUNT / TFA_NPU_THREADS are read
at import), so the script re-runs itself per configuration.

    python benches/scaling_host.py [--model cnn|resnet50] [--per-device-batch 32] [--threads-per-npu 1]
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
    strategy = tf.distribute.MirroredStrategy([f"/NPU:{i}" for i in range(n)])
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
    model.fit(x[:batch * 2], y[:batch * 2], batch_size=batch, epochs=1, verbose=0)  # warm-up/trace
    tf_adapter.reset_kernel_counts()
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    times = tf_adapter.kernel_times()
    allreduce = sum(v for k, v in times.items() if k in ("Add", "RealDiv")) / n
    print(json.dumps({"npus": n, "img_s": batch * steps / seconds, "step_s": seconds / steps,
                      "allreduce_s": allreduce / steps}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cnn", choices=["cnn", "resnet50"])
    p.add_argument("--per-device-batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--threads-per-npu", type=int, default=1)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    cores = os.cpu_count() or 1
    counts = [1, 2, 4]
    results = []
    for n in counts:
        if n * args.threads_per_npu > cores:
            print(f"{n} NPUs x {args.threads_per_npu} thread(s) needs {n * args.threads_per_npu} cores; "
                  f"this machine has {cores}: not measured (it would only time-share the cores)")
            continue
        env = dict(os.environ, TFA_NPU_COUNT=str(n), TFA_NPU_THREADS=str(args.threads_per_npu))
        cmd = [sys.executable, __file__, "--worker", "--model", args.model,
               "--per-device-batch", str(args.per_device_batch), "--image-size", str(args.image_size),
               "--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    base = results[0]["img_s"]
    print(f"model {args.model} {args.image_size}px, per-device batch {args.per_device_batch}, "
          f"{args.threads_per_npu} thread(s) per NPU, Keras fit under MirroredStrategy")
    print(f"{'NPUs':>4} {'img/s':>9} {'speed-up':>9} {'efficiency':>11} {'all-reduce merge share':>23}")
    for r in results:
        s = r["img_s"] / base
        share = r["allreduce_s"] / r["step_s"]
        print(f"{r['npus']:>4} {r['img_s']:>9.1f} {s:>8.2f}x {s / r['npus']:>10.0%} {share:>22.1%}")


if __name__ == "__main__":
    main()
