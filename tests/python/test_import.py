"""Import behaviour, each case in a fresh interpreter."""

import os
import subprocess
import sys
import textwrap


def run(code, **env):
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for k in ("TFA_NPU_COUNT", "TFA_NPU_MEMORY", "TFA_NPU_THREADS", "TFA_BACKEND", "TFA_SPIN_US"):
        e.pop(k, None)
    e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=e, timeout=300)


def test_import_twice_and_reload_are_harmless():
    r = run("""
        import importlib
        import tf_adapter
        import tf_adapter as again
        importlib.reload(tf_adapter)
        import tensorflow as tf
        devs = [d.name for d in tf.config.list_physical_devices("NPU")]
        assert devs == ["/physical_device:NPU:0"], devs
        with tf.device("/NPU:0"):
            x = tf.constant([1.0]) + 1.0
        assert x.device.endswith("NPU:0")
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_tensorflow_first_then_tf_adapter_is_fine():
    r = run("""
        import tensorflow as tf
        print(tf.config.list_physical_devices())
        import tf_adapter
        assert tf.config.list_logical_devices("NPU")
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


def test_import_after_tensorflow_ran_an_op_raises_import_error():
    r = run("""
        import tensorflow as tf
        tf.constant(1.0) + 1.0
        try:
            import tf_adapter
        except ImportError as e:
            print("ImportError:", e)
    """)
    assert r.returncode == 0, r.stderr
    assert "ImportError: tf_adapter must be imported before TensorFlow runs any operation" in r.stdout


def test_device_count_and_bad_configuration():
    r = run("""
        import tf_adapter, tensorflow as tf
        c = tf_adapter.config()
        print(len(tf.config.list_physical_devices("NPU")), c["threads"], c["spin_us"])
    """, TFA_NPU_COUNT="3", TFA_NPU_THREADS="1", TFA_SPIN_US="250")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "1", "250"]
    for var, value in (("TFA_NPU_COUNT", "zero"), ("TFA_NPU_MEMORY", "lots"), ("TFA_BACKEND", "tpu"), ("TFA_SPIN_US", "-1")):
        r = run("""
            try:
                import tf_adapter
            except ImportError as e:
                print("ImportError:", e)
        """, **{var: value})
        assert r.returncode == 0, r.stderr
        assert "ImportError: tf_adapter: invalid configuration:" in r.stdout and var in r.stdout, r.stdout
        if var == "TFA_NPU_MEMORY":  # the accepted forms, not only "unknown suffix"
            assert "512M" in r.stdout and "powers of 1024" in r.stdout, r.stdout


def test_kernel_errors_do_not_abort_the_process():
    r = run("""
        import tf_adapter, tensorflow as tf
        for bad in (lambda: tf.matmul(tf.ones([2, 3]), tf.ones([2, 3])),
                    lambda: tf.reshape(tf.ones([6]), [5]),
                    lambda: tf.add(tf.ones([2]), tf.ones([3]))):
            try:
                with tf.device("/NPU:0"):
                    bad()
            except tf.errors.InvalidArgumentError:
                pass
        print("alive")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "alive"


def test_every_name_in_the_readme_api_table_exists():
    """The README's "Python API" table promises these names after a plain
    `import tf_adapter` (submodules load on first use)."""
    import pathlib
    import re

    import tf_adapter

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    names = set()
    for cell in re.findall(r"^\| ([^|]+) \|", table, re.M):
        names.update(re.findall(r"`(tf_adapter(?:\.\w+)+)", cell))
    assert len(names) >= 15, names
    for dotted in sorted(names):
        obj = tf_adapter
        for part in dotted.split(".")[1:]:
            assert hasattr(obj, part), f"{dotted}: {part} missing"
            obj = getattr(obj, part)


def test_help_lists_every_variable_and_precision_mode():
    """`help(tf_adapter)` names every TFA_* variable of the README and every
    precision mode; the public functions have docstrings."""
    import pathlib
    import re

    import tf_adapter
    from tf_adapter import precision

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    variables = set(re.findall(r"^\| `(TFA_\w+)`", table, re.M))
    assert len(variables) >= 10, variables
    for v in variables:
        assert v in tf_adapter.__doc__, v
    for mode in precision.MODES:
        assert mode in tf_adapter.__doc__, mode
    for name in ["is_strict", "set_strict", "config", "coverage", "set_precision_mode"]:
        assert getattr(tf_adapter, name).__doc__, name
    for name in ["on_npu", "fallback", "unsupported", "fully_on_npu", "counts", "to_dict"]:
        assert getattr(tf_adapter.CoverageReport, name).__doc__, name
