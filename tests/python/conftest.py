"""Test process set-up: four NPUs (for MirroredStrategy) with a 1 GiB capacity
each (cheap out-of-memory tests). tf_adapter is imported before TensorFlow
runs anything, exactly as users must."""

import os

os.environ.setdefault("TFA_NPU_COUNT", "4")
os.environ.setdefault("TFA_NPU_MEMORY", "1G")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tf_adapter  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

pytest_plugins = ["browser"]  # Chromium for the HTML-report tests, loud when missing

# Tolerances per dtype for results that are not bit-exact (transcendentals,
# matmul summation order): float32 as the issue demands, half types to their
# precision (bfloat16 has 8 significant bits, float16 11).
RTOL = {
    tf.float32: 1e-6,
    tf.float64: 1e-12,
    tf.float16: 2e-3,
    tf.bfloat16: 1.6e-2,
}


def to_numpy(t):
    t = tf.convert_to_tensor(t)
    if t.dtype in (tf.float16, tf.bfloat16):
        return t.numpy().astype(np.float64)
    return t.numpy()


def assert_matches(npu, cpu, dtype, rtol=None, atol=0.0):
    """NPU result equals the CPU result: exactly for integers and bools, to a
    relative tolerance for floats (NaN where CPU has NaN, same infinities)."""
    assert npu.dtype == cpu.dtype, (npu.dtype, cpu.dtype)
    assert npu.shape == cpu.shape, (npu.shape, cpu.shape)
    a, b = to_numpy(npu), to_numpy(cpu)
    if dtype.is_floating:
        tol = RTOL[dtype] if rtol is None else rtol
        np.testing.assert_allclose(a, b, rtol=tol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def run_traced(fn, *args, fusion=True, device="/NPU:0"):
    """fn(*args) in a fresh tf.function with the device scope inside, the
    graph passes on (`fusion`) or off (`TFA_FUSION=0`); returns (outputs as
    numpy, NPU kernel counts)."""
    old = os.environ.get("TFA_FUSION")
    os.environ["TFA_FUSION"] = "1" if fusion else "0"
    try:

        @tf.function
        def f(*a):
            with tf.device(device):
                return fn(*a)

        tf_adapter.reset_kernel_counts()
        out = f(*args)
        counts = tf_adapter.kernel_counts()
    finally:
        if old is None:
            del os.environ["TFA_FUSION"]
        else:
            os.environ["TFA_FUSION"] = old
    return tf.nest.map_structure(lambda t: t.numpy(), out), counts


@pytest.fixture
def strict_placement():
    """Soft placement off for the test: an op without an NPU kernel fails."""
    tf.config.set_soft_device_placement(False)
    try:
        yield
    finally:
        tf.config.set_soft_device_placement(True)


def twin_models(build, cpu_build=None):
    """`build()` called under /CPU:0 (`cpu_build()` if given) and under
    /NPU:0, the NPU model given the CPU model's weights: (cpu_model, npu_model)."""
    with tf.device("/CPU:0"):
        cpu_model = (cpu_build or build)()
    with tf.device("/NPU:0"):
        npu_model = build()
    npu_model.set_weights(cpu_model.get_weights())
    return cpu_model, npu_model


def on(device, fn, *args):
    with tf.device(device):
        return fn(*args)


def random_tensor(rng, shape, dtype, low=-3.0, high=3.0):
    if dtype.is_bool:
        return tf.constant(rng.random(shape) > 0.5)
    if dtype.is_integer:
        lo = 0 if dtype.is_unsigned else int(low) * 4
        return tf.constant(rng.integers(lo, int(high) * 4 + 1, size=shape), dtype=dtype)
    return tf.cast(tf.constant(rng.uniform(low, high, size=shape)), dtype)


# scikit-learn's digits (8x8 images, 10 classes), split 1400/397: a real
# classification task small enough to train to its accuracy in seconds.
@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]  # 1797 x 8 x 8 x 1
    y = d.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def digits_cnn():
    import keras

    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ])
