"""Coverage report, host-fallback warnings and strict mode."""

import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf
import tf_adapter


def test_coverage_report_lists_placements():
    def fn(x):
        y = tf.nn.relu(tf.matmul(x, x))
        return tf.math.lgamma(y) + 1.0

    report = tf_adapter.coverage(fn, tf.TensorSpec([4, 4], tf.float32))
    by_op = {o.op_type: o for o in report.ops}
    assert by_op["MatMul"].placement == "NPU" and by_op["MatMul"].kernel == "tf_adapter"
    assert by_op["Relu"].placement == "NPU"
    assert by_op["Lgamma"].placement == "host fallback"
    assert by_op["Lgamma"].dtypes == ["float32"]
    assert not report.fully_on_npu
    text = str(report)
    assert "Lgamma" in text and "host fallback" in text
    d = report.to_dict()
    assert d["fully_on_npu"] is False and d["nodes"]["host fallback"] == 1


def test_coverage_of_keras_model_and_explicit_cpu():
    import keras

    model = keras.Sequential([keras.Input([8]), keras.layers.Dense(4, activation="relu")])
    report = tf_adapter.coverage(model, tf.zeros([2, 8]))
    assert report.fully_on_npu, str(report)
    assert {"MatMul", "BiasAdd", "Relu"} <= {o.op_type for o in report.on_npu}

    def pinned(x):
        with tf.device("/CPU:0"):
            return tf.math.lgamma(x)

    r2 = tf_adapter.coverage(pinned, tf.zeros([3]))
    assert [o.placement for o in r2.ops if o.op_type == "Lgamma"] == ["CPU (requested)"]


def test_unsupported_dtype_is_a_fallback():
    fn = lambda x: tf.math.sqrt(x)  # noqa: E731
    report = tf_adapter.coverage(fn, tf.TensorSpec([3], tf.complex64))
    assert [o.placement for o in report.ops if o.op_type == "Sqrt"] == ["host fallback"]


def run(code, **env):
    import os

    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=e, timeout=300)


def test_fallback_warns_once_per_op_type():
    r = run("""
        import warnings, tf_adapter, tensorflow as tf
        @tf.function
        def f(x):
            return tf.math.lgamma(x) + tf.math.lgamma(2.0 * x)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with tf.device("/NPU:0"):
                f(tf.ones([3])); f(tf.ones([3]))
        msgs = [str(x.message) for x in w if issubclass(x.category, tf_adapter.HostFallbackWarning)]
        print(len(msgs)); print(msgs[0])
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "1"
    assert "op type 'Lgamma'" in lines[1] and "runs on the host" in lines[1]


def test_strict_mode_errors_name_the_op_and_node():
    r = run("""
        import tf_adapter, tensorflow as tf
        assert tf_adapter.is_strict()
        # Scope around the call of a tf.function: TensorFlow alone would run FFT2D on the host silently.
        @tf.function
        def f(x):
            return tf.signal.fft2d(x, name="model/fft")
        x = tf.complex(tf.ones([4, 4]), tf.zeros([4, 4]))
        try:
            with tf.device("/NPU:0"):
                f(x)
        except tf.errors.InvalidArgumentError as e:
            print("FN:", e.message.splitlines()[0])
        # Eager op with an NPU scope.
        try:
            with tf.device("/NPU:0"):
                tf.raw_ops.FFT2D(input=tf.complex(tf.ones([2, 2]), tf.zeros([2, 2])))
        except tf.errors.InvalidArgumentError as e:
            print("EAGER:", e.message.splitlines()[0])
        # Ops with NPU kernels still run.
        with tf.device("/NPU:0"):
            print("OK:", tf.matmul(tf.ones([2, 2]), tf.ones([2, 2])).numpy().tolist())
    """, TFA_STRICT="1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "FN: Op type 'FFT2D' (node 'model/fft') is not supported on NPU" in out, out
    assert "EAGER: Op type 'FFT2D'" in out and "Supported formulation: tf.signal.fft over each axis in turn" in out, out
    assert "OK: [[2.0, 2.0], [2.0, 2.0]]" in out, out


def test_strict_mode_reports_every_unsupported_op_compute_op_first():
    # The usual FFT pattern: the Cast into complex128 comes first in the graph
    # and has no NPU kernel either, but FFT2D is what the user has to change.
    r = run("""
        import tf_adapter, tensorflow as tf
        @tf.function
        def spectrum(x):
            with tf.device("/NPU:0"):
                return tf.signal.fft2d(tf.cast(x, tf.complex128))
        try:
            spectrum(tf.ones([4, 8]))
        except tf.errors.InvalidArgumentError as e:
            print(e.message)
    """, TFA_STRICT="1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("Op type 'FFT2D' (node 'FFT2D') is not supported on NPU: it has no NPU kernel for complex128"), r.stdout
    assert "tf.function 'spectrum' has 2 ops the NPU cannot run" in lines[1], r.stdout
    assert lines[2].strip().startswith("FFT2D (node 'FFT2D', complex128)") and "supported formulation" in lines[2], r.stdout
    assert lines[3].strip().startswith("Cast (node 'Cast', float32 -> complex128)"), r.stdout


def test_coverage_shows_the_dtype_of_ops_with_other_type_attributes():
    fn = lambda x: tf.signal.fft(x)  # noqa: E731  (FFT's type attribute is Tcomplex, not T)
    report = tf_adapter.coverage(fn, tf.TensorSpec([8], tf.complex64))
    assert [o.dtypes for o in report.ops if o.op_type == "FFT"] == [["complex64"]]
    assert "complex64" in [line for line in str(report).splitlines() if line.startswith("FFT")][0]


def test_fallback_warning_points_at_the_users_line(tmp_path):
    script = tmp_path / "user_model.py"
    script.write_text(textwrap.dedent("""
        import warnings, tf_adapter, tensorflow as tf
        @tf.function
        def f(x):
            return tf.math.lgamma(x)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with tf.device("/NPU:0"):
                f(tf.ones([3]))  # line 9
        [hit] = [x for x in w if issubclass(x.category, tf_adapter.HostFallbackWarning)]
        print(hit.filename, hit.lineno)
    """))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                       env=dict(__import__("os").environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(script), "9"], r.stdout


def test_set_strict_toggles_soft_placement():
    tf_adapter.set_strict(True)
    try:
        assert not tf.config.get_soft_device_placement()
        with pytest.raises(tf.errors.InvalidArgumentError, match="Op type 'Lgamma' .* is not supported on NPU"):
            with tf.device("/NPU:0"):
                tf.math.lgamma(tf.ones([2]))
    finally:
        tf_adapter.set_strict(False)
    assert tf.config.get_soft_device_placement()
    with tf.device("/NPU:0"):
        assert tf.math.lgamma(tf.ones([2])).numpy().tolist() == [0.0, 0.0]
