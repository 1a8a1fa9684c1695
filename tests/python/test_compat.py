"""The TensorFlow/Keras patch table and the version gate (python/tf_adapter/_compat.py).

Every private symbol tf_adapter replaces is listed in ``_compat.PATCHES``;
these tests fail as soon as an installed TensorFlow or Keras moves one of
them or changes its parameters, and check what ``import tf_adapter`` does on
a version outside the supported range (simulated in a subprocess)."""

import importlib
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest
import tf_adapter  # noqa: F401  (applies the patches)
from tf_adapter import _compat

PACKAGE = pathlib.Path(_compat.__file__).parent


@pytest.mark.parametrize("name", sorted(_compat.PATCHES))
def test_every_patch_target_exists_with_the_expected_parameters(name):
    assert _compat.problem(name) is None, _compat.problem(name)


@pytest.mark.parametrize("name", sorted(n for n, p in _compat.PATCHES.items() if p.attr != "*" and p.replaced))
def test_every_patch_is_applied(name):
    importlib.import_module(_compat.PATCHES[name].module)  # Keras modules patch as they load
    assert _compat.applied(name), f"{name}: {_compat.PATCHES[name].target} is not tf_adapter's replacement"
    assert _compat.skipped() == []


def test_every_patch_in_the_table_is_used_and_nothing_patches_outside_it():
    sources = {p.name: p.read_text() for p in PACKAGE.glob("*.py") if p.name != "_compat.py"}
    text = "\n".join(sources.values())
    for name in _compat.PATCHES:
        assert f'"{name}"' in text, f"patch {name} is declared but no module applies it"
    # Replacements go through _compat.replace: no direct rebinding of a
    # TensorFlow/Keras module attribute (the table's `_tfa_patched` markers
    # of the old style are gone too).
    for file, source in sources.items():
        assert not re.search(r"^\s*(execute|core|tf_config|trainer|module|base|lso|extended|optimizer)\."
                             r"\w+\s*=[^=]", source, re.M), file


def test_pyproject_declares_the_supported_tensorflow_range():
    pyproject = (pathlib.Path(__file__).parents[2] / "pyproject.toml").read_text()
    lo, hi = _compat.TENSORFLOW_RANGE
    assert f'tensorflow = ["tensorflow-cpu>={lo},<{hi}"]' in pyproject
    assert f"TensorFlow >={lo},<{hi} and Keras >={_compat.KERAS_RANGE[0]},<{_compat.KERAS_RANGE[1]}" in pyproject


def test_test_requirements_match_the_test_extra():
    # requirements-test.txt (what scripts/test.sh installs) and the package's
    # [test] extra name the same test tools.
    root = pathlib.Path(__file__).parents[2]
    lines = [ln.strip() for ln in (root / "requirements-test.txt").read_text().splitlines()]
    reqs = {ln for ln in lines if ln and not ln.startswith("#")}
    extra = re.search(r"^test = \[(.*)\]$", (root / "pyproject.toml").read_text(), re.M).group(1)
    assert {x.strip().strip('"') for x in extra.split(",")} == reqs - {"tensorflow-cpu==2.21.0", "maturin>=1.16,<2"}
    assert "bash scripts/test.sh" in (root / "README.md").read_text()
    assert "requirements-test.txt" in (root / "scripts" / "test.sh").read_text()


def test_python_range_is_stated_the_same_everywhere():
    # TensorFlow 2.21 has no wheel for 3.9 or 3.14: the package must not claim them.
    root = pathlib.Path(__file__).parents[2]
    lo, hi = _compat.PYTHON_RANGE
    assert f'requires-python = ">={lo},<{hi}"' in (root / "pyproject.toml").read_text()
    last = f"{hi.split('.')[0]}.{int(hi.split('.')[1]) - 1}"
    assert f"Python {lo}–{last}" in (root / "README.md").read_text()
    assert f'"abi3-py{lo.replace(".", "")}"' in (root / "Cargo.toml").read_text()
    assert _compat._in_range(".".join(map(str, sys.version_info[:3])), _compat.PYTHON_RANGE)


@pytest.mark.parametrize("version,release", [("2.21.0", (2, 21, 0)), ("2.22.0rc1", (2, 22, 0)),
                                             ("2.21.1.dev20260101", (2, 21, 1)), ("3.15.1", (3, 15, 1)),
                                             ("2.21", (2, 21))])
def test_release_numbers(version, release):
    assert _compat._release(version) == release


def test_version_range_checks(monkeypatch):
    monkeypatch.delenv(_compat.ALLOW_UNTESTED, raising=False)
    _compat.check_versions("2.21.0", "3.15.1")
    _compat.check_versions("2.21.3", None)  # no Keras: its patches never apply
    for tf_version, keras_version, named in [("2.22.0rc1", "3.15.1", "TensorFlow 2.22.0rc1"),
                                             ("2.20.0", "3.15.1", "TensorFlow 2.20.0"),
                                             ("2.21.0", "4.0.0", "Keras 4.0.0"),
                                             ("2.21.0", "3.11.0", "Keras 3.11.0")]:
        with pytest.raises(ImportError, match=re.escape(named)) as e:
            _compat.check_versions(tf_version, keras_version)
        assert _compat.ALLOW_UNTESTED in str(e.value)
    monkeypatch.setenv(_compat.ALLOW_UNTESTED, "1")
    with pytest.warns(_compat.CompatWarning, match="not tested with TensorFlow 2.22.0"):
        _compat.check_versions("2.22.0", "3.15.1")


def run_python(code, **env):
    full_env = {**os.environ, **env}
    full_env.pop(_compat.ALLOW_UNTESTED, None)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, timeout=300)


def test_import_on_an_unsupported_tensorflow_fails_with_the_range_or_warns_when_allowed():
    code = """
        import warnings
        import tensorflow as tf
        tf.__version__ = "2.23.0"
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import tf_adapter
        print("IMPORTED", [str(x.message)[:60] for x in w if x.category.__name__ == "CompatWarning"])
        with tf.device("/NPU:0"):
            print("SUM", float(tf.reduce_sum(tf.ones([3]))))
    """
    refused = run_python(code)
    assert refused.returncode != 0
    assert "ImportError" in refused.stderr and "TensorFlow 2.23.0" in refused.stderr, refused.stderr[-2000:]
    assert ">=2.21,<2.22" in refused.stderr
    allowed = run_python(code, TFA_ALLOW_UNTESTED_TF="1")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "IMPORTED ['tf_adapter was not tested with TensorFlow 2.23.0" in allowed.stdout
    assert "SUM 3.0" in allowed.stdout


def test_a_moved_patch_target_is_an_error_or_skipped_with_a_warning_when_allowed():
    code = """
        import warnings
        from tensorflow.python.training import optimizer
        del optimizer._deduplicate_indexed_slices
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import tf_adapter
        from tf_adapter import _compat
        print("SKIPPED", _compat.skipped())
        print("WARNED", any("resource_ops.v1_dedup" in str(x.message) for x in w))
    """
    refused = run_python(code)
    assert refused.returncode != 0
    assert "cannot apply its patch 'resource_ops.v1_dedup'" in refused.stderr, refused.stderr[-2000:]
    assert "_deduplicate_indexed_slices does not exist" in refused.stderr
    allowed = run_python(code, TFA_ALLOW_UNTESTED_TF="1")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "SKIPPED ['resource_ops.v1_dedup']" in allowed.stdout
    assert "WARNED True" in allowed.stdout


def test_no_user_config_table_on_every_graph():
    """TensorFlow prints its "User's config has been changed based on plugin's
    config" table for each graph while the user's config and the plugin's
    disagree; the user's config now says what the plugin's does (memory
    optimizer off), so the table is gone and the final config is the same."""
    from tensorflow.core.protobuf import rewriter_config_pb2
    from tensorflow.python.eager import context

    rewrite = context.context().config.graph_options.rewrite_options
    assert rewrite.memory_optimization == rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
    code = """
        import tf_adapter, tensorflow as tf

        @tf.function
        def f(x):
            with tf.device("/NPU:0"):
                return tf.nn.relu(tf.matmul(x, x) + 1.0) * 2.0 - tf.reduce_sum(x)

        for i in range(3):
            print("VALUE", float(tf.reduce_sum(f(tf.ones([4, 4]) * (i + 1)))))
    """
    p = run_python(code, TF_CPP_MIN_LOG_LEVEL="0")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("VALUE") == 3
    assert "User's config has been changed" not in p.stderr, p.stderr[-3000:]
