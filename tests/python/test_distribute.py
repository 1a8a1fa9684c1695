"""MirroredStrategy over 1, 2 and 4 NPUs (the test process has four).

The all-reduce runs through TensorFlow's ring collectives, whose merge step
needs the NPU ``Add`` kernel to compute in place on its first input. Training
on N NPUs must equal one NPU at the same global batch."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
import keras

import multiworker_job

DTYPES = [tf.float32, tf.float16, tf.bfloat16, tf.int32]


def npus(n):
    return [f"/NPU:{i}" for i in range(n)]


@pytest.fixture(scope="module")
def strategies():
    return {n: tf.distribute.MirroredStrategy(devices=npus(n)) for n in (1, 2, 4)}


def _replica_values(n, dtype, rng):
    # Small integers: sums and halves are exact in every dtype, so the
    # reduction must be exact too.
    shape = list(rng.integers(1, 6, size=rng.integers(0, 3)))
    values = rng.integers(-8, 9, size=[n] + shape).astype(np.float64)
    return values, shape


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_strategy_reduce_sum_and_mean(strategies, n, dtype, rng):
    strategy = strategies[n]
    values, _ = _replica_values(n, dtype, rng)
    table = tf.constant(values, dtype=dtype)
    per_replica = strategy.run(lambda: tf.gather(table, tf.distribute.get_replica_context().replica_id_in_sync_group))
    devices = [v.device for v in strategy.experimental_local_results(per_replica)]
    assert [d[-5:] for d in devices] == [f"NPU:{i}" for i in range(n)]
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
    assert total.dtype == dtype
    np.testing.assert_array_equal(total.numpy().astype(np.float64), values.sum(0))
    np.testing.assert_array_equal(np.asarray(mean.numpy(), np.float64), values.mean(0))


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_all_reduce_inside_replica_function(strategies, n, dtype, rng, strict_placement):
    # Soft placement off: the collective and its merge run on the NPUs.
    strategy = strategies[n]
    values, shape = _replica_values(n, dtype, rng)
    table = tf.constant(values, dtype=dtype)

    placed = []

    def replica_fn():
        ctx = tf.distribute.get_replica_context()
        x = tf.gather(table, ctx.replica_id_in_sync_group)
        total, mean = ctx.all_reduce("SUM", x), ctx.all_reduce("MEAN", x)
        placed.append((total.device, mean.device))  # at trace time
        return total, mean

    tf_adapter.reset_kernel_counts()
    # Eager function outputs are all reported on the caller's device, so the
    # placement is read from the graph (and enforced: soft placement is off).
    sums, means = tf.function(lambda: strategy.run(replica_fn))()
    assert [(a[-5:], b[-5:]) for a, b in placed] == [(f"NPU:{i}", f"NPU:{i}") for i in range(n)]
    for s, m in zip(strategy.experimental_local_results(sums), strategy.experimental_local_results(means)):
        np.testing.assert_array_equal(s.numpy().astype(np.float64), values.sum(0))
        # int32 MEAN comes back as float64, as TensorFlow's does on CPUs.
        np.testing.assert_array_equal(np.asarray(m.numpy(), np.float64), values.mean(0))
    if dtype.is_floating:
        # The ring collective merged with the NPU Add kernel (forwarding input 0).
        assert tf_adapter.kernel_counts().get("Add", 0) >= 1


@pytest.mark.parametrize("n", [2, 4])
def test_custom_loop_matches_one_npu(strategies, n):
    one = multiworker_job.train(strategies[1], 5)
    many = multiworker_job.train(strategies[n], 5)
    np.testing.assert_allclose(list(many["losses"].values()), list(one["losses"].values()), rtol=1e-4)
    for a, b in zip(many["weights"], one["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _conv_model():
    return keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        # Synchronized: batch statistics over the global batch, as on one device.
        keras.layers.BatchNormalization(synchronized=True),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def _seed_snippet(strategy, x, y, global_batch, steps):
    """The migration guide's loop: model and AdamW built in strategy.scope(),
    a distributed dataset, compute_average_loss, strategy.run."""
    with strategy.scope():
        keras.utils.set_random_seed(3)
        model = _conv_model()
        optimizer = keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=1e-3)
        optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch)
    dist_dataset = strategy.experimental_distribute_dataset(dataset)

    @tf.function
    def train_step(batch):
        def step_fn(inputs, labels):
            with tf.GradientTape() as tape:
                per_example = loss_fn(labels, model(inputs, training=True))
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        per_replica = strategy.run(step_fn, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    losses = [float(train_step(batch)) for batch in dist_dataset]
    assert len(losses) == steps
    return losses, model


def test_seed_snippet_on_four_npus_matches_one(strategies):
    global_batch, steps = 32, 5
    rng = np.random.default_rng(11)
    x = rng.normal(size=[global_batch * steps, 12, 12, 3]).astype(np.float32)
    y = rng.integers(0, 10, size=global_batch * steps)
    tf_adapter.set_strict(True)  # every op of the replica step on its NPU
    try:
        tf_adapter.reset_kernel_counts()
        losses4, model4 = _seed_snippet(strategies[4], x, y, global_batch, steps)
        counts = tf_adapter.kernel_counts()
        losses1, model1 = _seed_snippet(strategies[1], x, y, global_batch, steps)
    finally:
        tf_adapter.set_strict(False)
    assert counts.get("Conv2DBackpropFilter", 0) >= 4 * steps and counts.get("Add", 0) >= 1
    np.testing.assert_allclose(losses4, losses1, rtol=1e-4)
    assert losses4[-1] < losses4[0]
    for a, b in zip(model4.get_weights(), model1.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for var in model4.trainable_variables:
        replicas = strategies[4].experimental_local_results(var.value)
        assert [r.device[-5:] for r in replicas] == [f"NPU:{i}" for i in range(4)]
        for r in replicas[1:]:
            np.testing.assert_array_equal(r.numpy(), replicas[0].numpy())


@pytest.mark.parametrize("n", [2, 4])
def test_keras_fit_evaluate_predict_in_strict_mode(strategies, n):
    # Every op of the replicated train step on its NPU (strict mode), equal to
    # one NPU at the same global batch.
    rng = np.random.default_rng(0)
    x = rng.normal(size=[128, 8, 8, 1]).astype(np.float32)
    y = rng.integers(0, 10, size=128)

    def build():
        keras.utils.set_random_seed(0)
        m = keras.Sequential([
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ])
        m.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
        return m

    strategy = strategies[n]
    tf_adapter.set_strict(True)
    try:
        with strategy.scope():
            mirrored = build()
        initial = mirrored.get_weights()
        hist = mirrored.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        evaluated = mirrored.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
        predicted = mirrored.predict(x, batch_size=32, verbose=0)
        with tf.device("/NPU:0"):
            single = build()
            single.set_weights(initial)
            single_hist = single.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
            single_eval = single.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
            single_pred = single.predict(x, batch_size=32, verbose=0)
    finally:
        tf_adapter.set_strict(False)
    np.testing.assert_allclose(hist.history["loss"], single_hist.history["loss"], rtol=1e-4)
    for a, b in zip(mirrored.get_weights(), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(evaluated["loss"], single_eval["loss"], rtol=1e-4)
    assert evaluated["accuracy"] == pytest.approx(single_eval["accuracy"])
    np.testing.assert_allclose(predicted, single_pred, rtol=1e-4, atol=1e-5)
    var = mirrored.trainable_variables[0].value
    replicas = strategy.experimental_local_results(var)
    assert [r.device[-5:] for r in replicas] == [f"NPU:{i}" for i in range(n)]
    for r in replicas[1:]:
        np.testing.assert_array_equal(r.numpy(), replicas[0].numpy())


def test_two_strategies_over_the_same_npus_do_not_share_collective_keys():
    # Without tf_adapter's key ranges the second strategy's first all-reduce
    # collides with the first strategy's ("Shape mismatch in the collective
    # instance").
    results = []
    for width in (3, 7):
        strategy = tf.distribute.MirroredStrategy(devices=npus(2))

        @tf.function
        def step(width=width):
            return tf.distribute.get_replica_context().all_reduce("SUM", tf.ones([width]))

        results.append(strategy.experimental_local_results(strategy.run(step))[0].numpy())
    np.testing.assert_array_equal(results[0], np.full([3], 2.0))
    np.testing.assert_array_equal(results[1], np.full([7], 2.0))


# ------------------------------------------------- NpuAllReduce ----

@pytest.fixture(scope="module")
def npu_all_reduce():
    return {n: tf.distribute.MirroredStrategy(devices=npus(n), cross_device_ops=tf_adapter.distribute.NpuAllReduce())
            for n in (2, 4)}


def test_inter_op_threads_cover_the_npus():
    # tf_adapter raised TensorFlow's default where cores < NPUs.
    import os

    threads = tf.config.threading.get_inter_op_parallelism_threads() or os.cpu_count()
    assert threads >= tf_adapter.config()["npu_count"]


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.float64], ids=lambda d: d.name)
def test_npu_all_reduce_in_replica_function(npu_all_reduce, n, dtype, rng, strict_placement):
    strategy = npu_all_reduce[n]
    values, _ = _replica_values(n, dtype, rng)
    more = rng.integers(-8, 9, size=[n, 7]).astype(np.float64)
    table, table2 = tf.constant(values, dtype=dtype), tf.constant(more, dtype=dtype)

    def replica_fn():
        ctx = tf.distribute.get_replica_context()
        i = ctx.replica_id_in_sync_group
        total = ctx.all_reduce("SUM", [tf.gather(table, i), tf.gather(table2, i)])
        return total, ctx.all_reduce("MEAN", tf.gather(table, i))

    fn = tf.function(lambda: strategy.run(replica_fn))
    (sums, sums2), means = fn()
    for s, s2, m in zip(*(strategy.experimental_local_results(v) for v in (sums, sums2, means))):
        assert s.dtype == dtype and m.dtype == dtype
        np.testing.assert_array_equal(s.numpy().astype(np.float64), values.sum(0))
        np.testing.assert_array_equal(s2.numpy().astype(np.float64), more.sum(0))
        np.testing.assert_array_equal(m.numpy().astype(np.float64), values.mean(0))
    graph = fn.get_concrete_function().graph
    placed = sorted(op.device[-5:] for op in graph.get_operations() if op.type == "TfaAllReduce")
    # One op per replica for the SUM pair (one list) and one for the MEAN.
    assert placed == sorted([f"NPU:{i}" for i in range(n)] * 2)


def test_npu_all_reduce_eagerly_reuses_its_function(npu_all_reduce, rng):
    # Eager all-reduces (strategy.run outside tf.function) run the replicas'
    # ops in one cached function: same shapes, no retrace.
    strategy = npu_all_reduce[2]
    ops = strategy.extended._cross_device_ops
    for width in (5, 5, 9):
        values = rng.integers(-8, 9, size=[2, width]).astype(np.float32)
        table = tf.constant(values)
        total = strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
            "SUM", tf.gather(table, tf.distribute.get_replica_context().replica_id_in_sync_group)))
        for t in strategy.experimental_local_results(total):
            np.testing.assert_array_equal(t.numpy(), values.sum(0))
    fns = [f for key, f in ops._eager_fns.items() if key[1] == tf.float32 and key[3] == 1]
    assert len(fns) == 1
    assert fns[0].experimental_get_tracing_count() <= 2  # width 5 once, then at most one relaxed trace


def test_npu_all_reduce_leaves_int32_and_host_reductions_to_tensorflow(npu_all_reduce, rng):
    strategy = npu_all_reduce[2]
    values, _ = _replica_values(2, tf.int32, rng)
    table = tf.constant(values, dtype=tf.int32)
    per_replica = strategy.run(lambda: tf.gather(table, tf.distribute.get_replica_context().replica_id_in_sync_group))
    total = strategy.reduce("SUM", per_replica, axis=None)
    np.testing.assert_array_equal(total.numpy(), values.sum(0))
    floats = strategy.run(lambda: tf.cast(tf.gather(table, tf.distribute.get_replica_context().replica_id_in_sync_group), tf.float32))
    np.testing.assert_array_equal(strategy.reduce("MEAN", floats, axis=None).numpy(), values.mean(0))


@pytest.mark.parametrize("n", [2, 4])
def test_npu_all_reduce_custom_loop_matches_one_npu(strategies, npu_all_reduce, n):
    one = multiworker_job.train(strategies[1], 5)
    many = multiworker_job.train(npu_all_reduce[n], 5)
    np.testing.assert_allclose(list(many["losses"].values()), list(one["losses"].values()), rtol=1e-4)
    for a, b in zip(many["weights"], one["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_npu_all_reduce_seed_snippet_and_fit(strategies, npu_all_reduce):
    global_batch, steps = 32, 5
    rng = np.random.default_rng(11)
    x = rng.normal(size=[global_batch * steps, 12, 12, 3]).astype(np.float32)
    y = rng.integers(0, 10, size=global_batch * steps)
    tf_adapter.set_strict(True)
    try:
        losses4, model4 = _seed_snippet(npu_all_reduce[4], x, y, global_batch, steps)
        losses1, _ = _seed_snippet(strategies[1], x, y, global_batch, steps)
    finally:
        tf_adapter.set_strict(False)
    np.testing.assert_allclose(losses4, losses1, rtol=1e-4)
    for var in model4.trainable_variables:
        replicas = npu_all_reduce[4].experimental_local_results(var.value)
        for r in replicas[1:]:
            np.testing.assert_array_equal(r.numpy(), replicas[0].numpy())


def test_npu_all_reduce_meeting_that_never_fills_fails_in_bounded_time():
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import tf_adapter, tensorflow as tf
        from tf_adapter.distribute import _tfa_all_reduce

        @tf.function
        def lonely():
            with tf.device("/NPU:0"):
                x = tf.ones([4])
                return _tfa_all_reduce([x], "/NPU:0", 2, 7, False)

        try:
            lonely()
        except tf.errors.DeadlineExceededError as e:
            print("DEADLINE", " ".join(e.message.split()))
    """)
    env = dict(__import__("os").environ, TFA_NPU_COUNT="2", TFA_ALLREDUCE_TIMEOUT="2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "DEADLINE" in out.stdout, out.stdout + out.stderr[-3000:]
    assert "only 1 of 2 replicas (NPU:0) arrived within 2 s" in out.stdout
