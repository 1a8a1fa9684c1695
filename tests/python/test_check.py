"""tf_adapter.check: the migration checklist on small models, including
models and settings built to fail each check (work in progress: scaling and
the HTML report are not written yet)."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from tf_adapter import check


@pytest.fixture(scope="module")
def small_keras(tmp_path_factory):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([
        keras.Input((12, 12, 3)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])
    path = tmp_path_factory.mktemp("models") / "small.keras"
    m.save(path)
    return str(path)


def test_small_model_passes_every_check_with_figures(small_keras, tmp_path):
    out = tmp_path / "report.json"
    r = check.run(small_keras, batch=8, steps=10, json_path=str(out))
    assert r["passed"] is True
    c = r["checks"]
    assert set(c) == {"consistency", "training", "scaling", "memory", "latency"}
    assert c["consistency"]["passed"] and c["consistency"]["outputs"][0]["rel_l2"] < 1e-5
    assert c["consistency"]["outputs"][0]["cosine"] > 0.99999
    assert c["training"]["passed"] and c["training"]["npu_trend"] < 0
    assert len(c["training"]["npu_loss"]) == 10 and len(c["training"]["cpu_loss"]) == 10
    assert c["memory"]["passed"] and 0 < c["memory"]["peak_bytes"] < c["memory"]["capacity_bytes"]
    assert c["latency"]["passed"] is None and c["latency"]["batch_1"]["p99_ms"] > 0
    assert c["latency"]["batch_8"]["throughput_per_s"] > 0
    assert c["scaling"]["passed"] is None  # --devices 1
    assert r["coverage"]["fully_on_npu"]
    saved = json.loads(out.read_text())
    assert saved["checks"]["consistency"]["passed"] is True and "coverage" in saved


def test_tight_tolerance_names_the_first_diverging_layer(small_keras):
    r = check.run(small_keras, batch=8, steps=3, max_error=1e-12)
    con = r["checks"]["consistency"]
    assert con["passed"] is False and r["passed"] is False
    d = con["first_divergence"]
    assert d["node"] in {"conv2d", "batch_normalization", "global_average_pooling2d", "dense"}
    assert d["error"] > 1e-12 and d["op_type"] in {"Conv2D", "BatchNormalization", "GlobalAveragePooling2D", "Dense"}


def test_diverging_loss_fails_training(small_keras):
    r = check.run(small_keras, batch=8, steps=8, learning_rate=1e4)
    tr = r["checks"]["training"]
    assert tr["passed"] is False
    assert tr["first_non_finite_step"] is not None or tr["npu_trend"] >= 0 or tr["npu_loss"][-1] >= tr["npu_loss"][0]


def test_impossible_latency_and_memory_limits_fail(small_keras):
    r = check.run(small_keras, batch=8, steps=3, latency_ms=1e-6, memory_limit=1e-9)
    assert r["checks"]["latency"]["passed"] is False
    assert r["checks"]["latency"]["batch_1"]["p99_ms"] > 1e-6
    m = r["checks"]["memory"]
    assert m["passed"] is False and m["peak_share"] > 1e-9


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tf_adapter.check", *args], capture_output=True, text=True,
                          timeout=600)


def test_bad_inputs_exit_2_without_traceback(tmp_path, small_keras):
    (tmp_path / "junk.keras").write_text("not a model")
    (tmp_path / "nomodel.py").write_text("x = 1\n")
    np.savez(tmp_path / "wrong.npz", x=np.zeros([2, 5, 5, 3], np.float32))
    cases = [
        ([str(tmp_path / "missing.keras")], "no such file"),
        ([str(tmp_path / "junk.keras")], "not a loadable Keras model"),
        ([str(tmp_path / "nomodel.py")], "defines no build_model()"),
        ([small_keras, "--data", str(tmp_path / "wrong.npz")], "the model expects"),
    ]
    for args, words in cases:
        p = _cli(*args)
        assert p.returncode == 2, p.stderr[-2000:]
        assert words in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]


def test_cli_exit_status_follows_the_checks(small_keras, tmp_path):
    ok = _cli(small_keras, "--steps", "5", "--json", str(tmp_path / "r.json"))
    assert ok.returncode == 0, ok.stdout + ok.stderr[-2000:]
    assert "consistency  PASS" in ok.stdout
    bad = _cli(small_keras, "--steps", "3", "--latency-ms", "0.000001")
    assert bad.returncode == 1 and "latency      FAIL" in bad.stdout


def test_python_file_with_build_model(tmp_path):
    src = tmp_path / "model.py"
    src.write_text(
        "import keras\n"
        "def build_model():\n"
        "    keras.utils.set_random_seed(1)\n"
        "    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation='relu'), keras.layers.Dense(3)])\n"
        "loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
    )
    r = check.run(str(src), batch=16, steps=10, learning_rate=0.1)
    assert r["checks"]["consistency"]["passed"] and r["checks"]["training"]["passed"], r["checks"]["training"]


def test_scaling_check_on_two_npus(small_keras):
    # Two NPUs on this machine's cores: the figure is reported with the
    # host-backend note; an impossible threshold must fail.
    r = check.check_scaling(small_keras, batch=8, devices=2, steps=2, threshold=100.0)
    assert r["passed"] is False and r["devices"] == 2
    assert r["speedup"] > 0 and r["efficiency"] == pytest.approx(r["speedup"] / 2)
    assert set(r["samples_per_s"]) == {"1", "2"}
    assert "share" in r["note"]
    assert check.check_scaling(small_keras, batch=8, devices=1)["passed"] is None
