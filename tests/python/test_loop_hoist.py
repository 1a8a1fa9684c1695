"""Moving a recurrent layer's products out of its loops (README "Fusion"):
each step's input projection `x[t] @ W` becomes a row block of one product
computed before the loop, when the graph pass can prove the steps' list and
the weight do not change inside the loop; a sum of per-step products
`acc += a_t^T @ b_t` (the weight gradients of the backward loop) becomes one
product after the loop. Results agree with TensorFlow CPU and with the loops
as written (`TFA_FUSION=0`), in inference and training, with soft placement
on and off; a loop that writes the weight, writes ordered before or after
the loop, a running sum read inside the loop and a loop of no step keep
their meaning."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import run_traced

NPU = "/NPU:0"
CPU = "/CPU:0"
SEED = int(os.environ.get("TFA_TEST_SEED", "20261202"))


@pytest.fixture
def rng():
    print(f"seed {SEED} (TFA_TEST_SEED to replay)")
    return np.random.default_rng(SEED)


def run(fn, *args, device=NPU, hoist=True):
    return run_traced(fn, *args, fusion=hoist, device=device)


def close(got, want, rtol=2e-5, atol=2e-5):
    for g, w in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def layer(kind, units, rng):
    opts = dict(
        return_sequences=bool(rng.integers(2)),
        go_backwards=bool(rng.integers(2)),
    )
    make = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}[kind]
    if kind == "gru":
        opts["reset_after"] = bool(rng.integers(2))
    if rng.integers(3) == 0:
        opts["go_backwards"] = False  # Bidirectional makes the backward copy
        return keras.layers.Bidirectional(make(units, **opts))
    return make(units, **opts)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("case", range(2))
@pytest.mark.parametrize("soft", [True, False], ids=["default", "strict"])
def test_keras_recurrent_layers_forward_and_gradients(kind, case, soft, rng):
    rng = np.random.default_rng([SEED, case, ["lstm", "gru", "rnn"].index(kind)])
    steps, batch, features, units = (int(v) for v in rng.integers([2, 1, 1, 1], [12, 6, 20, 24]))
    keras.utils.set_random_seed(int(rng.integers(1 << 30)))
    net = layer(kind, units, rng)
    x = tf.constant(rng.normal(size=[batch, steps, features]).astype(np.float32))
    net(x)  # builds the weights (on the host; both devices read them)

    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = net(x)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, [x] + net.trainable_weights)

    tf.config.set_soft_device_placement(soft)
    try:
        hoisted, counts = run(step, x)
    finally:
        tf.config.set_soft_device_placement(True)
    plain, plain_counts = run(step, x, hoist=False)
    cpu, _ = run(step, x, device=CPU)
    # One hoisted product per direction, none with the passes off.
    directions = 2 if isinstance(net, keras.layers.Bidirectional) else 1
    assert counts.get("BatchMatMulV2", 0) == directions, counts
    assert "BatchMatMulV2" not in plain_counts, plain_counts
    close(hoisted, cpu)
    close(hoisted, plain)


def unrolled(x, w, h0):
    """A tf.while_loop over x's steps reading a TensorArray: h = tanh(x[t] @ w + h)."""
    steps = x.shape[0]
    ta = tf.TensorArray(tf.float32, size=steps).unstack(x)
    out = tf.TensorArray(tf.float32, size=steps)

    def body(t, h, out):
        z = tf.matmul(ta.read(t), w) + h
        return t + 1, tf.tanh(z), out.write(t, z)

    _, h, out = tf.while_loop(lambda t, *_: t < steps, body, (0, h0, out))
    return out.stack(), h


def reference(x, w, h0):
    h, zs = h0, []
    for t in range(x.shape[0]):
        z = x[t] @ w + h
        zs.append(z)
        h = np.tanh(z)
    return np.stack(zs), h


def weights(rng, *shape):
    return rng.normal(size=shape).astype(np.float32) * 0.3


def test_writes_before_and_after_the_loop_keep_their_order(rng):
    x = weights(rng, 7, 3, 5)
    w0, w1, w2 = (weights(rng, 5, 4) for _ in range(3))
    h0 = weights(rng, 3, 4)
    with tf.device(NPU):
        w = tf.Variable(w0)

    def fn(x):
        w.assign(w1)  # the loop must read w1...
        y = unrolled(x, w, h0)
        w.assign(w2)  # ...not w2
        return y

    got, counts = run(fn, x)
    assert counts.get("BatchMatMulV2", 0) == 1, counts
    close(got, reference(x, w1, h0))
    np.testing.assert_array_equal(w.numpy(), w2)


def test_a_loop_that_writes_the_weight_is_left_as_written(rng):
    x = weights(rng, 6, 2, 3)
    w0 = weights(rng, 3, 3)
    h0 = weights(rng, 2, 3)
    with tf.device(NPU):
        w = tf.Variable(w0)

    def fn(x):
        steps = x.shape[0]
        ta = tf.TensorArray(tf.float32, size=steps).unstack(x)

        def body(t, h):
            z = tf.matmul(ta.read(t), w) + h
            w.assign_add(tf.ones_like(w0) * 0.1)
            return t + 1, tf.tanh(z)

        return tf.while_loop(lambda t, _: t < steps, body, (0, h0))[1]

    got, counts = run(fn, x)
    assert "BatchMatMulV2" not in counts, counts
    h, wt = h0, w0.copy()
    for t in range(x.shape[0]):
        h = np.tanh(x[t] @ wt + h)
        wt = wt + np.float32(0.1)
    close(got, h)


def test_transposed_weight_and_the_graph_dump(tmp_path, monkeypatch, rng):
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    x = weights(rng, 5, 2, 6)
    wt = weights(rng, 4, 6)
    h0 = weights(rng, 2, 4)
    with tf.device(NPU):
        w = tf.Variable(wt)

    def fn(x):
        steps = x.shape[0]
        ta = tf.TensorArray(tf.float32, size=steps).unstack(x)

        def body(t, h):
            return t + 1, tf.tanh(tf.matmul(ta.read(t), w, transpose_b=True) + h)

        return tf.while_loop(lambda t, _: t < steps, body, (0, h0))[1]

    got, counts = run(fn, x)
    assert counts.get("BatchMatMulV2", 0) == 1, counts
    close(got, reference(x, wt.T, h0)[1])
    after = "".join(p.read_text() for p in tmp_path.glob("*_after.txt"))
    assert '_tfa_hoisted="MatMul"' in after, after[-3000:]
    assert "tfa_hoisted/BatchMatMulV2" in after


@pytest.mark.parametrize("mode", ["allow_fp32_to_bf16", "allow_mix_precision_bf16"])
def test_low_precision_products_stay_in_the_loop(mode, rng):
    """A product the precision mode rounds to bfloat16 is not hoisted (the
    step's product and a hoisted one must round alike); float32 modes are."""
    x = weights(rng, 6, 4, 8)
    w0 = weights(rng, 8, 5)
    h0 = weights(rng, 4, 5)
    with tf.device(NPU):
        w = tf.Variable(w0)
    tf_adapter.set_precision_mode(mode)
    try:
        got, counts = run(lambda x: unrolled(x, w, h0), x)
    finally:
        tf_adapter.set_precision_mode("must_keep_origin_dtype")
    assert "BatchMatMulV2" not in counts, counts
    close(got, reference(x, w0, h0), rtol=5e-2, atol=5e-2)
    _, counts = run(lambda x: unrolled(x, w, h0), x)
    assert counts.get("BatchMatMulV2", 0) == 1, counts


def accumulate(a, b, read_inside):
    """acc += a[t]^T @ b[t] over the steps; with `read_inside` the loop also
    reads the running sum (so it cannot wait for the end)."""
    steps = a.shape[0]
    ta, tb = (tf.TensorArray(tf.float32, size=steps).unstack(v) for v in (a, b))

    def body(t, acc, s):
        acc = acc + tf.matmul(ta.read(t), tb.read(t), transpose_a=True)
        if read_inside:
            s = s + tf.reduce_sum(acc)
        return t + 1, acc, s

    acc0 = tf.zeros([a.shape[2], b.shape[2]])
    return tf.while_loop(lambda t, *_: t < steps, body, (0, acc0, 0.0))[1:]


@pytest.mark.parametrize("read_inside", [False, True], ids=["sunk", "read_inside"])
@pytest.mark.parametrize("steps", [0, 1, 9])
def test_a_sum_of_step_products_after_the_loop(read_inside, steps, tmp_path, monkeypatch, rng):
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    a = weights(rng, steps, 3, 5)
    b = weights(rng, steps, 3, 4)
    got, _ = run(lambda a, b: accumulate(a, b, read_inside), a, b)
    want = np.einsum("tbi,tbo->io", a.astype(np.float64), b.astype(np.float64))
    close(got[0], want)
    cpu, _ = run(lambda a, b: accumulate(a, b, read_inside), a, b, device=CPU)
    close(got, cpu)
    after = "".join(p.read_text() for p in tmp_path.glob("*_after.txt"))
    assert ("/tfa_sunk/" in after) != read_inside, after[-3000:]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_weight_gradients_are_summed_after_the_backward_loop(kind, tmp_path, monkeypatch, rng):
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    make = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
    keras.utils.set_random_seed(SEED % (1 << 30))
    net = make(12)
    x = tf.constant(rng.normal(size=[4, 7, 5]).astype(np.float32))
    net(x)

    def grads(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(x) ** 2)
        return tape.gradient(loss, net.trainable_weights)

    tf.config.set_soft_device_placement(False)
    try:
        got, _ = run(grads, x)
    finally:
        tf.config.set_soft_device_placement(True)
    after = "".join(p.read_text() for p in tmp_path.glob("*_after.txt"))
    # The kernel's and the recurrent kernel's gradients.
    assert after.count('op=TensorListConcatV2') >= 2, after[-3000:]
    close(got, run(grads, x, device=CPU)[0])
    close(got, run(grads, x, hoist=False)[0])


def test_loops_inside_a_loop_and_their_gradients(tmp_path, monkeypatch, rng):
    """An inner loop per outer iteration: the inner loop's projection is
    hoisted to the outer loop's body, its gradient sums after the inner
    backward loop; values and gradients agree with TensorFlow CPU."""
    monkeypatch.setenv("TFA_DUMP_GRAPH", str(tmp_path))
    x = tf.constant(weights(rng, 3, 4, 2, 5))  # [outer, steps, batch, in]
    w0 = weights(rng, 5, 6)
    h0 = weights(rng, 2, 6)
    with tf.device(NPU):
        w = tf.Variable(w0)

    def fn(x):
        with tf.GradientTape() as tape:

            def outer(i, total):
                _, h = unrolled(tf.gather(x, i), w, h0)
                return i + 1, total + tf.reduce_sum(h * h)

            loss = tf.while_loop(lambda i, _: i < x.shape[0], outer, (0, 0.0))[1]
        return loss, tape.gradient(loss, w)

    got, counts = run(fn, x)
    after = "".join(p.read_text() for p in tmp_path.glob("*_after.txt"))
    assert "/tfa_hoisted/" in after and "/tfa_sunk/" in after, after[-3000:]
    close(got, run(fn, x, device=CPU)[0])
    close(got, run(fn, x, hoist=False)[0])
