"""Zeros, infinities, NaNs and huge values through every NPU op whose inputs
all share the type `T` and that needs no attribute (the elementwise ops,
their gradients, comparisons...), on every float type, against TensorFlow
CPU: NaN where it gives NaN, the same infinities, the same values. Binary
ops see every pair of special values. This is where a kernel that is right
on random data can still differ silently (SqrtGrad gave NaN where
TensorFlow gives 0; ReluGrad stopped an infinite gradient that TensorFlow
turns into NaN)."""

import itertools
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import op_def_registry

DOCS = pathlib.Path(__file__).parents[2] / "docs" / "ops.md"
# The elementwise family's float ops (name, host types) from docs/ops.md.
ELEMENTWISE = DOCS.read_text().split("## Elementwise", 1)[1].split("\n## ", 1)[0]
NAMES = [n for n, types in re.findall(r"^\| `([A-Za-z0-9]+)` \| ([^|]*) \|", ELEMENTWISE, re.M) if "float32" in types and "T:" not in types]

# No value near a float32 overflow threshold (exp(88.7)): TensorFlow's own
# answer there depends on the CPU's vector width.
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 7.0, 6.0, 2.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 100.0, -100.0, 1e-5]
DTYPES = [tf.float32, tf.float64, tf.float16, tf.bfloat16]
RTOL = {tf.float32: 2e-6, tf.float64: 1e-12, tf.float16: 2e-3, tf.bfloat16: 1.6e-2}

# Where TensorFlow CPU's answer is an artefact of its own evaluation, not a
# rule to copy: (op, dtype) -> why.
KNOWN = {
    ("Erf", tf.float64): "TF CPU gives NaN for erf(+-inf); the NPU gives the limit +-1",
    # float16 ops compute in float32 here and round once; TensorFlow rounds
    # an intermediate to float16, where it overflows or underflows.
    ("SoftplusGrad", tf.float16): "exp(-features) overflows float16 in TF",
    ("RsqrtGrad", tf.float16): "y * y underflows float16 in TF",
    ("ReciprocalGrad", tf.float16): "y * y underflows float16 in TF",
    ("InvGrad", tf.float16): "y * y underflows float16 in TF",
}
# Row-wise ops with their own tests: TensorFlow's float32 oneDNN Softmax
# treats a row holding NaN differently from its Eigen one.
SKIP = {"Softmax", "LogSoftmax"}


def candidates():
    for name in NAMES:
        fn = getattr(tf.raw_ops, name, None)
        op = op_def_registry.get(name)
        if fn is None or op is None or name in SKIP:
            continue
        ins = op.input_arg
        if not ins or len(ins) > 3:
            continue
        if any(a.type_attr != "T" or a.number_attr or a.type_list_attr for a in ins):
            continue
        if any(a.name != "T" and not a.HasField("default_value") for a in op.attr):
            continue
        yield name


def columns(n):
    vals = SPECIAL if n < 3 else SPECIAL[:10]
    if n == 1:
        return [np.array(vals)]
    return list(np.array(list(itertools.product(vals, repeat=n))).T)


@pytest.mark.parametrize("name", sorted(candidates()))
def test_special_values_match_tensorflow_cpu(name):
    fn = getattr(tf.raw_ops, name)
    ins = op_def_registry.get(name).input_arg
    checked = 0
    for dtype in DTYPES:
        if (name, dtype) in KNOWN:
            continue
        cols = columns(len(ins))
        args = {a.name: tf.cast(tf.constant(c, tf.float64), dtype) for a, c in zip(ins, cols)}
        if name.startswith("BiasAdd"):  # value [n, n] (rows of one special value) + bias [n]
            n = len(SPECIAL)
            cols = [np.repeat(SPECIAL, n), np.tile(SPECIAL, n)]
            args = {"value": tf.cast(tf.reshape(cols[0], [n, n]), dtype), "bias": tf.cast(tf.constant(SPECIAL), dtype)}
        try:
            with tf.device("/CPU:0"):
                want = fn(**args)
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError, TypeError):
            continue  # not a TensorFlow CPU kernel for this type
        try:
            with tf.device("/NPU:0"):
                got = fn(**args)
        except tf.errors.NotFoundError:
            continue  # no NPU kernel for this type (docs/ops.md lists the types)
        assert "NPU" in got.device, got.device
        checked += 1
        if want.dtype == tf.bool or want.dtype.is_integer:
            np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=f"{name} {dtype.name}")
            continue
        w, g = tf.cast(want, tf.float64).numpy().ravel(), tf.cast(got, tf.float64).numpy().ravel()
        where = [tuple(float(c[i]) for c in cols) for i in range(len(cols[0]))]
        nan = np.isnan(w) != np.isnan(g)
        assert not nan.any(), f"{name} {dtype.name}: NaN differs at inputs {[where[i] for i in np.flatnonzero(nan)[:5]]}"
        inf = np.isinf(w) | np.isinf(g)
        wrong_inf = inf & (w != g)
        assert not wrong_inf.any(), (
            f"{name} {dtype.name}: infinities differ at {[(where[i], g[i], w[i]) for i in np.flatnonzero(wrong_inf)[:5]]}"
        )
        fin = np.isfinite(w) & np.isfinite(g)
        tiny = 1e-7 if dtype == tf.float16 else 1e-30
        with np.errstate(invalid="ignore"):  # inf - inf where both are inf (checked above)
            off = fin & (np.abs(w - g) > RTOL[dtype] * np.abs(w) + tiny)
        assert not off.any(), (
            f"{name} {dtype.name}: (inputs, npu, cpu) {[(where[i], g[i], w[i]) for i in np.flatnonzero(off)[:5]]}"
        )
    assert checked, f"{name}: no float type ran on both devices"


@pytest.mark.parametrize("dtype", DTYPES)
def test_abs_of_negative_zero_is_positive_zero(dtype):
    # The sign of a zero is mostly TensorFlow's accident (Relu(-0) keeps it
    # in float32 and not in float16), but |-0| = +0 is IEEE's fabs, and
    # 1/x or pow(x, -1) turn the sign into -inf against +inf.
    x = tf.constant([-0.0, 0.0, -1.5], dtype)
    with tf.device("/NPU:0"):
        got = tf.abs(x)
    with tf.device("/CPU:0"):
        want = tf.abs(x)
    np.testing.assert_array_equal(np.signbit(tf.cast(got, tf.float32).numpy()), [False, False, False])
    np.testing.assert_array_equal(tf.cast(got, tf.float32).numpy(), tf.cast(want, tf.float32).numpy())


def test_subnormals_are_flushed_as_on_tensorflow_cpu():
    # TensorFlow runs its CPU kernels with subnormals flushed to zero; so do
    # the NPU's kernel threads (a kernel large enough to run on them: exp of
    # a value whose result is subnormal, times infinity, is NaN as on TF CPU).
    x = tf.fill([256, 256], tf.constant(-100.0))
    for device in ("/CPU:0", "/NPU:0"):

        @tf.function
        def f(x):
            with tf.device(device):  # noqa: B023
                return tf.exp(x) * np.inf, tf.exp(x) * 1e30

        nan, tiny = f(x)
        assert np.isnan(nan.numpy()).all(), device
        assert (tiny.numpy() == 0).all(), device
