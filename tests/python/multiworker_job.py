"""One training job for the multi-worker tests, run in-process (reference) or
as a worker process (``python multiworker_job.py --steps N --out F`` with
TF_CONFIG set by the test).

The global batch is fixed and each replica takes its slice by replica id, so
any number of workers x NPUs computes the same steps as one process."""

import argparse
import json
import os
import sys

GLOBAL_BATCH = 16
FEATURES = 12
CLASSES = 5


def data(step):
    import numpy as np

    rng = np.random.default_rng(100 + step)
    x = rng.normal(size=[GLOBAL_BATCH, FEATURES]).astype(np.float32)
    y = rng.integers(0, CLASSES, size=GLOBAL_BATCH).astype(np.int32)
    return x, y


def build(strategy):
    import keras

    with strategy.scope():
        keras.utils.set_random_seed(7)
        model = keras.Sequential([
            keras.Input((FEATURES,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(CLASSES),
        ])
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(model.trainable_variables)
    return model, optimizer


def make_step(strategy, model, optimizer):
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    @tf.function
    def step(xs, ys):
        def replica(x, y):
            with tf.GradientTape() as tape:
                per_example = loss_fn(y, model(x, training=True))
                loss = tf.reduce_sum(per_example) / GLOBAL_BATCH
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.reduce("SUM", strategy.run(replica, args=(xs, ys)), axis=None)

    def run(step_index):
        x, y = data(step_index)
        n = strategy.num_replicas_in_sync
        per = GLOBAL_BATCH // n

        def slice_of(arr):
            def fn(ctx):
                i = ctx.replica_id_in_sync_group
                return tf.constant(arr[i * per:(i + 1) * per])

            return strategy.experimental_distribute_values_from_function(fn)

        return float(step(slice_of(x), slice_of(y)))

    return run


def train(strategy, steps, checkpoint_dir=None, die_at=None, log=None):
    """Trains ``steps`` steps (resuming from ``checkpoint_dir`` if it holds a
    checkpoint); returns {"losses": {step: loss}, "weights": [...]}."""
    import tensorflow as tf

    model, optimizer = build(strategy)
    run = make_step(strategy, model, optimizer)
    done = tf.Variable(0, dtype=tf.int64, trainable=False) if checkpoint_dir else None
    manager = None
    if checkpoint_dir:
        ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=done)
        # Every worker saves (TensorFlow's rule under MultiWorkerMirroredStrategy);
        # only the chief's copy is kept in checkpoint_dir.
        resolver = getattr(strategy, "cluster_resolver", None)
        chief = resolver is None or not resolver.task_type or strategy.extended.should_checkpoint
        directory = checkpoint_dir if chief else os.path.join(checkpoint_dir, f"worker{resolver.task_id}")
        manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=2)
        if tf.train.latest_checkpoint(checkpoint_dir):
            ckpt.restore(tf.train.latest_checkpoint(checkpoint_dir))
    start = int(done.numpy()) if done is not None else 0
    losses = {}
    for i in range(start, steps):
        if die_at is not None and i == die_at:
            if log:
                print(json.dumps({"dying_at": i}), file=log, flush=True)
            os._exit(3)
        losses[i] = run(i)
        if manager:
            done.assign(i + 1)
            manager.save()
        if log:
            print(json.dumps({"step": i, "loss": losses[i]}), file=log, flush=True)
    return {"losses": losses, "weights": [w.tolist() for w in model.get_weights()], "start": start}


def fit(strategy, epochs, checkpoint_dir=None, die_at=None, log=None):
    """``model.fit`` over ``epochs`` epochs of 4 global batches, with
    ``BackupAndRestore`` in ``checkpoint_dir``; the process exits at the start
    of epoch ``die_at``."""
    import keras
    import numpy as np

    model, optimizer = build(strategy)
    with strategy.scope():
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = [data(i) for i in range(4)]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])

    class Log(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if die_at is not None and epoch == die_at:
                if log:
                    print(json.dumps({"dying_at": epoch}), file=log, flush=True)
                os._exit(3)

        def on_epoch_end(self, epoch, logs=None):
            if log:
                print(json.dumps({"epoch": epoch, "loss": logs["loss"]}), file=log, flush=True)

    callbacks = [Log()]
    if checkpoint_dir:
        # One backup per worker (each has its own disk in a real cluster; the
        # copies are identical).
        resolver = getattr(strategy, "cluster_resolver", None)
        if resolver is not None and resolver.task_type:
            checkpoint_dir = os.path.join(checkpoint_dir, f"{resolver.task_type}{resolver.task_id}")
        callbacks.insert(0, keras.callbacks.BackupAndRestore(checkpoint_dir))
    hist = model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
    return {"losses": dict(enumerate(hist.history["loss"])), "weights": [w.tolist() for w in model.get_weights()]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--out", required=True)
    p.add_argument("--checkpoint-dir")
    p.add_argument("--die-at", type=int)
    p.add_argument("--timeout", type=float, default=60.0, help="collective timeout (seconds)")
    p.add_argument("--fit", action="store_true", help="Keras fit (epochs) instead of a custom loop (steps)")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tf_adapter  # noqa: F401
    import tensorflow as tf

    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=args.timeout)
    strategy = tf_adapter.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    run = fit if args.fit else train
    result = run(strategy, args.steps, args.checkpoint_dir, args.die_at, log=sys.stdout)
    result["replicas"] = strategy.num_replicas_in_sync
    result["devices"] = list(strategy.extended.worker_devices)
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
