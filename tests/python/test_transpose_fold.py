"""The Transposes around a float32 BatchMatMulV2 fold into it
(`_TfaTransposedBatchMatMul`, crates/tfa-plugin/src/graph/transpose_fold.rs):
results equal TensorFlow CPU's with soft placement off, the Transposes are
gone from the NPU's kernel counts, a Transpose read by anything else stays,
gradients are unchanged, and TFA_FUSION=0 keeps the plain graph."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_traced

FOLDED = "_TfaTransposedBatchMatMul"
PERMS4 = list(itertools.permutations(range(4)))


def cpu(fn, *args):
    out, _ = run_traced(fn, *args, device="/CPU:0")
    return out


def close(a, b, tol=2e-5):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("seed", range(10))
def test_random_permutations_and_adjoints(seed, strict_placement):
    rng = np.random.default_rng(seed)
    # Logical operand shapes [b0, b1, m, k] x [b0, b1, k, n] (a batch dim
    # of y may broadcast), stored in a random order of their dims.
    b0, b1, m, k, n = (int(v) for v in rng.integers(1, 6, 5))
    adj_x, adj_y, swap_out = (bool(v) for v in rng.integers(0, 2, 3))
    lx = [b0, b1] + ([k, m] if adj_x else [m, k])
    ly = [b0, 1 if seed % 3 == 0 else b1] + ([n, k] if adj_y else [k, n])
    # x's perm moves a batch dim (grappler folds a swap of the last two
    # dims into adj_x itself); y's is any.
    moving = [p for p in PERMS4 if p[:2] != (0, 1)]
    px = list(moving[int(rng.integers(len(moving)))])
    py = list(PERMS4[int(rng.integers(len(PERMS4)))])
    inverse = lambda p: list(np.argsort(p))  # noqa: E731
    x = rng.standard_normal([lx[i] for i in inverse(px)]).astype(np.float32)
    y = rng.standard_normal([ly[i] for i in inverse(py)]).astype(np.float32)

    def f(x, y):
        z = tf.matmul(tf.transpose(x, px), tf.transpose(y, py), adjoint_a=adj_x, adjoint_b=adj_y)
        return tf.transpose(z, [0, 1, 3, 2]) if swap_out else z

    assert list(np.transpose(x, px).shape) == lx
    got, counts = run_traced(f, x, y)
    close(got, cpu(f, x, y))
    plain, plain_counts = run_traced(f, x, y, fusion=False)
    close(plain, got)
    assert FOLDED not in plain_counts and plain_counts.get("Transpose"), plain_counts
    assert counts.get(FOLDED) == 1, counts
    assert "Transpose" not in counts and "BatchMatMulV2" not in counts, counts


def test_other_readers_keep_their_transposes(strict_placement, rng):
    x = rng.standard_normal([2, 5, 3, 4]).astype(np.float32)
    y = rng.standard_normal([2, 3, 4, 6]).astype(np.float32)

    def f(x, y):
        xt = tf.transpose(x, [0, 2, 1, 3])  # also returned: stays
        z = tf.matmul(xt, y)
        zt = tf.transpose(z, [0, 1, 3, 2])
        return xt, zt, z  # z is read twice: its transpose stays too

    got, counts = run_traced(f, x, y)
    for g, w in zip(got, cpu(f, x, y)):
        close(g, w)
    assert FOLDED not in counts and counts.get("Transpose") == 2, counts


def mha_case(rng, batch, seq, heads, key_dim):
    layer = keras.layers.MultiHeadAttention(heads, key_dim, dropout=0.1)
    x = rng.standard_normal([batch, seq, heads * key_dim]).astype(np.float32)
    layer(x, x)
    return layer, x


@pytest.mark.parametrize("shape", [(2, 7, 3, 5), (3, 16, 4, 8), (1, 1, 2, 3)])
def test_multi_head_attention_inference(shape, strict_placement, rng):
    # With dropout Keras lowers the attention's einsums to transposes and
    # batched products (without it, to Einsum ops).
    layer, x = mha_case(rng, *shape)

    def f(x):
        return layer(x, x, training=False)

    got, counts = run_traced(f, x)
    close(got, cpu(f, x))
    assert counts.get(FOLDED) == 2, counts
    assert counts.get("Transpose", 0) <= 1, counts


def test_multi_head_attention_gradients(strict_placement, rng):
    layer, x = mha_case(rng, 2, 6, 2, 4)

    def f(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, x, training=False)
            loss = tf.reduce_sum(y * y)
        return [loss] + tape.gradient(loss, [x] + layer.trainable_variables)

    got, _ = run_traced(f, tf.constant(x))
    for g, w in zip(got, cpu(f, tf.constant(x))):
        close(g, w, tol=1e-4)
