"""MatMul, Cast, Identity and Reshape against TensorFlow CPU."""

import numpy as np
import pytest
import tensorflow as tf
import tf_adapter
from conftest import assert_matches, on, random_tensor


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int32, tf.int64])
def test_matmul_random_shapes_and_transposes(dtype, rng):
    for _ in range(10):
        m, k, n = (int(v) for v in rng.integers(0, 40, size=3))
        ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
        a = random_tensor(rng, [k, m] if ta else [m, k], dtype, -1.0, 1.0)
        b = random_tensor(rng, [n, k] if tb else [k, n], dtype, -1.0, 1.0)
        mm = lambda: tf.raw_ops.MatMul(a=a, b=b, transpose_a=ta, transpose_b=tb)  # noqa: E731
        tf_adapter.reset_kernel_counts()
        npu = on("/NPU:0", mm)
        assert npu.device.endswith("NPU:0")
        assert tf_adapter.kernel_counts().get("MatMul") == 1
        cpu = on("/CPU:0", mm)
        # Sums of k products: relative error scaled by k for the half types.
        rtol = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 1e-2, tf.bfloat16: 3e-2}.get(dtype)
        assert_matches(npu, cpu, dtype, rtol=rtol, atol=1e-5 if dtype == tf.float32 else (rtol or 0) * 2)


def test_matmul_large_float32_within_1e_6_relative_to_magnitude(rng):
    a = random_tensor(rng, [257, 300], tf.float32)
    b = random_tensor(rng, [300, 129], tf.float32)
    npu, cpu = on("/NPU:0", tf.matmul, a, b), on("/CPU:0", tf.matmul, a, b)
    err = np.max(np.abs(npu.numpy() - cpu.numpy())) / np.max(np.abs(cpu.numpy()))
    assert err <= 1e-6


def test_few_row_matmuls_match_cpu_under_strict_placement(rng, strict_placement):
    """float32 products of few rows read their operands in place on AVX-512
    (a row-major right operand of whole 64-column panels up to 96 rows, one
    stored transposed up to 256 rows and depth 128+; other shapes and CPUs
    keep the gemm crate): MatMul and per-batch BatchMatMulV2 of random such
    shapes, and their neighbours, in a tf.function against TF CPU."""
    cases = [(32, 256, 1024, False), (32, 1024, 256, True), (96, 130, 192, False), (97, 64, 128, False),
             (256, 128, 7, True), (257, 200, 33, True), (5, 127, 40, True), (1, 2048, 64, False)]
    for _ in range(6):
        tb = bool(rng.integers(2))
        m = int(rng.integers(1, 257 if tb else 97))
        k = int(rng.integers(128, 700)) if tb else int(rng.integers(1, 400))
        n = int(rng.integers(1, 300)) if tb else 64 * int(rng.integers(1, 5))
        cases.append((m, k, n, tb))
    for m, k, n, tb in cases:
        a = random_tensor(rng, [m, k], tf.float32, -1.0, 1.0)
        b = random_tensor(rng, [n, k] if tb else [k, n], tf.float32, -1.0, 1.0)
        xb = random_tensor(rng, [3, m, k], tf.float32, -1.0, 1.0)
        yb = random_tensor(rng, [3, n, k] if tb else [3, k, n], tf.float32, -1.0, 1.0)

        def run(device):
            @tf.function(autograph=False)
            def f(a, b, xb, yb):
                with tf.device(device):
                    return (tf.raw_ops.MatMul(a=a, b=b, transpose_b=tb),
                            tf.raw_ops.BatchMatMulV2(x=xb, y=yb, adj_y=tb))
            return f(a, b, xb, yb)

        tf_adapter.reset_kernel_counts()
        npu = run("/NPU:0")
        counts = tf_adapter.kernel_counts()
        assert counts.get("MatMul") == 1 and counts.get("BatchMatMulV2") == 1, counts
        for got, want in zip(npu, run("/CPU:0")):
            assert got.device.endswith("NPU:0")
            # Sums of k products of values in [-1, 1]: float32 rounding.
            err = np.max(np.abs(got.numpy() - want.numpy()))
            assert err <= 2e-6 * k, (m, k, n, tb, err)


def test_few_row_matmuls_match_cpu_under_default_placement(rng):
    """The same kernels reached eagerly, as a model's own code reaches them
    under default placement: MatMul and BatchMatMulV2 of few-row shapes and
    the input gradient of a Dense-like product (`dy @ W^T`, the transposed
    form) taken with a GradientTape, against TF CPU."""
    cases = [(32, 1024, 256, True), (64, 256, 1024, False), (200, 512, 100, True)]
    for _ in range(3):
        tb = bool(rng.integers(2))
        cases.append((int(rng.integers(1, 257 if tb else 97)),
                      int(rng.integers(128, 600)) if tb else int(rng.integers(1, 300)),
                      int(rng.integers(1, 300)) if tb else 64 * int(rng.integers(1, 4)), tb))
    for m, k, n, tb in cases:
        a = random_tensor(rng, [m, k], tf.float32, -1.0, 1.0)
        b = random_tensor(rng, [n, k] if tb else [k, n], tf.float32, -1.0, 1.0)
        xb = random_tensor(rng, [2, m, k], tf.float32, -1.0, 1.0)
        yb = random_tensor(rng, [2, n, k] if tb else [2, k, n], tf.float32, -1.0, 1.0)
        tf_adapter.reset_kernel_counts()
        with tf.device("/NPU:0"):
            npu = (tf.matmul(a, b, transpose_b=tb), tf.matmul(xb, yb, adjoint_b=tb))
        counts = tf_adapter.kernel_counts()
        assert counts.get("MatMul") == 1 and counts.get("BatchMatMulV2") == 1, counts
        with tf.device("/CPU:0"):
            cpu = (tf.matmul(a, b, transpose_b=tb), tf.matmul(xb, yb, adjoint_b=tb))
        for got, want in zip(npu, cpu):
            assert got.device.endswith("NPU:0")
            err = np.max(np.abs(got.numpy() - want.numpy()))
            assert err <= 2e-6 * k, (m, k, n, tb, err)

    # A Dense layer's input gradient: x [32, 256] @ W [256, 1024], so
    # dx = dy [32, 1024] @ W^T, 32 rows of depth 1024 with W read transposed.
    x = random_tensor(rng, [32, 256], tf.float32, -1.0, 1.0)
    w = random_tensor(rng, [256, 1024], tf.float32, -1.0, 1.0)
    dy = random_tensor(rng, [32, 1024], tf.float32, -1.0, 1.0)

    def input_grad(device):
        with tf.device(device):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.matmul(x, w)
            return tape.gradient(y, x, output_gradients=dy)

    tf_adapter.reset_kernel_counts()
    got = input_grad("/NPU:0")
    assert tf_adapter.kernel_counts().get("MatMul") == 2, tf_adapter.kernel_counts()
    assert got.device.endswith("NPU:0")
    err = np.max(np.abs(got.numpy() - input_grad("/CPU:0").numpy()))
    assert err <= 2e-6 * 1024, err


def test_tall_matmuls_match_cpu(rng):
    """Products of 2048 rows or more with whole panels of 64 columns (the
    `tall` kernel: a transformer's projections and feed-forward layers):
    MatMul with `b` stored as is and transposed, `a` transposed (the gemm
    crate's path), BatchMatMulV2 of a 3-D input by a shared weight (one tall
    product), eagerly under default placement and in a tf.function under
    strict placement, against TF CPU."""
    cases = [(4096, 768, 768, False), (2048, 100, 64, True)]
    for _ in range(2):
        cases.append((int(rng.integers(2048, 2300)), int(rng.integers(1, 400)),
                      64 * int(rng.integers(1, 5)), bool(rng.integers(2))))
    for m, k, n, tb in cases:
        a = random_tensor(rng, [m, k], tf.float32, -1.0, 1.0)
        b = random_tensor(rng, [n, k] if tb else [k, n], tf.float32, -1.0, 1.0)
        x3 = tf.reshape(a, [8, m // 8, k]) if m % 8 == 0 else tf.reshape(a[: m - m % 8], [8, m // 8, k])
        w = tf.transpose(b) if tb else b

        def products():
            return (tf.matmul(a, b, transpose_b=tb), tf.matmul(x3, w),
                    tf.matmul(a, a[:, :n % k + 1], transpose_a=True))

        tf_adapter.reset_kernel_counts()
        with tf.device("/NPU:0"):
            eager = products()
        counts = tf_adapter.kernel_counts()
        assert counts.get("MatMul") == 2 and counts.get("BatchMatMulV2") == 1, counts
        with tf.device("/CPU:0"):
            cpu = products()
        tf.config.set_soft_device_placement(False)
        try:
            with tf.device("/NPU:0"):
                strict = tf.function(products)()
        finally:
            tf.config.set_soft_device_placement(True)
        # Sums over k, k and m products.
        for got, got_fn, want, depth in zip(eager, strict, cpu, (k, k, m)):
            for g in (got, got_fn):
                assert g.device.endswith("NPU:0")
                err = np.max(np.abs(g.numpy() - want.numpy()))
                assert err <= 2e-6 * depth, (m, k, n, tb, err)


def test_matmul_shape_mismatch():
    with pytest.raises(tf.errors.InvalidArgumentError, match="Matrix size-incompatible"):
        on("/NPU:0", tf.matmul, tf.ones([2, 3]), tf.ones([4, 5]))


CAST_TYPES = [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int8, tf.int16, tf.int32, tf.int64,
              tf.uint8, tf.uint16, tf.uint32, tf.uint64, tf.bool]


def test_cast_every_pair(rng):
    for src in CAST_TYPES:
        if src.is_floating:
            x = tf.cast(tf.constant(rng.uniform(-300, 300, size=[3, 7])), src)
        else:
            x = random_tensor(rng, [3, 7], src, 0.0, 20.0)
        for dst in CAST_TYPES:
            if src.is_floating and (dst.is_unsigned or dst in (tf.int8, tf.int16)):
                # Out-of-range float -> narrow int is undefined in C++; compare
                # on in-range values only.
                x_in = tf.abs(tf.cast(tf.cast(x, tf.float32) / 4.0, src))
            else:
                x_in = x
            tf_adapter.reset_kernel_counts()
            npu = on("/NPU:0", tf.cast, x_in, dst)
            if src != dst:
                assert tf_adapter.kernel_counts().get("Cast") == 1, (src, dst)
            assert_matches(npu, on("/CPU:0", tf.cast, x_in, dst), dst, rtol=0.0)


def test_cast_special_values():
    x = tf.constant([1e10, -1e10, float("nan"), 2.7, -2.7, float("inf")])
    for dst in (tf.int32, tf.int64, tf.bool, tf.float16, tf.bfloat16):
        assert_matches(on("/NPU:0", tf.cast, x, dst), on("/CPU:0", tf.cast, x, dst), dst, rtol=0.0)
    y = tf.constant([1.0 + 2**-8 + 2**-9, -3.5, 65519.0])
    for truncate in (False, True):
        fn = lambda: tf.raw_ops.Cast(x=y, DstT=tf.bfloat16, Truncate=truncate)  # noqa: E731
        assert_matches(on("/NPU:0", fn), on("/CPU:0", fn), tf.bfloat16, rtol=0.0)


def test_identity_and_reshape_share_the_buffer(rng):
    x = on("/NPU:0", tf.identity, random_tensor(rng, [4, 6], tf.float32))
    tf_adapter.reset_kernel_counts()
    before = tf_adapter.memory_info("NPU:0")["num_allocs"]
    with tf.device("/NPU:0"):
        y = tf.identity(x)
        z = tf.reshape(x, [3, -1])
        w = tf.reshape(x, [-1])
    counts = tf_adapter.kernel_counts()
    assert counts.get("Identity") == 1 and counts.get("Reshape") == 2
    assert tf_adapter.memory_info("NPU:0")["num_allocs"] == before, "no copy"
    for t in (y, z, w):
        assert t.device.endswith("NPU:0")
    assert z.shape == (3, 8) and w.shape == (24,)
    np.testing.assert_array_equal(z.numpy(), x.numpy().reshape(3, 8))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float16, tf.bfloat16, tf.int64, tf.bool, tf.uint8])
def test_reshape_random(dtype, rng):
    for _ in range(6):
        shape = [int(d) for d in rng.integers(0, 5, size=int(rng.integers(0, 4)))]
        x = random_tensor(rng, shape, dtype)
        n = int(np.prod(shape))
        target = [n] if n else [0, 3]
        if n and rng.random() < 0.5:
            target = [-1]
        for shp_dtype in (tf.int32, tf.int64):
            s = tf.constant(target, dtype=shp_dtype)
            assert_matches(on("/NPU:0", tf.reshape, x, s), on("/CPU:0", tf.reshape, x, s), dtype, rtol=0.0)


def test_reshape_errors_match_tensorflow():
    x = on("/NPU:0", tf.identity, tf.ones([6]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="6 values, but the requested shape has 4"):
        on("/NPU:0", tf.reshape, x, [4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="Only one input size may be -1"):
        on("/NPU:0", tf.reshape, x, [-1, -1])
