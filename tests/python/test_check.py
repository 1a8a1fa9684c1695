"""tf_adapter.check: the migration checklist on small models, including
models and settings built to fail each check; the JSON report against its
schema and the HTML report in a real headless browser."""

import html
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_adapter import check, check_html

import browser


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
    # CPU's own spread (weights perturbed by 1e-6) is tiny for a small model:
    # the tolerance, not the spread, sets the allowed gap.
    assert c["training"]["cpu_self_gap"] < 1e-3 and c["training"]["allowed_gap"] == 0.05
    assert c["memory"]["passed"] and 0 < c["memory"]["peak_bytes"] < c["memory"]["capacity_bytes"]
    assert c["latency"]["passed"] is None and c["latency"]["batch_1"]["p99_ms"] > 0
    assert c["latency"]["batch_8"]["throughput_per_s"] > 0
    assert c["scaling"]["passed"] is None  # --devices 1
    assert r["coverage"]["fully_on_npu"]
    saved = json.loads(out.read_text())
    assert saved["checks"]["consistency"]["passed"] is True and "coverage" in saved
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(saved, check.schema())
    timeline = c["memory"]["timeline"]
    assert len(timeline) > 3 and max(b for _, b in timeline) <= c["memory"]["peak_bytes"]
    assert [p for _, p in c["memory"]["phases"]] == ["consistency", "training", "scaling", "latency", "memory"]


def test_json_schema_catches_a_malformed_report(small_keras, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    r = json.loads(json.dumps(check._jsonable(check.run(small_keras, batch=4, steps=3))))
    jsonschema.validate(r, check.schema())
    del r["checks"]["memory"]["peak_bytes"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(r, check.schema())
    r = check._jsonable({"x": [float("nan"), float("inf"), 1.5]})
    assert r == {"x": [None, None, 1.5]}


def test_tight_tolerance_names_the_first_diverging_op(small_keras):
    r = check.run(small_keras, batch=8, steps=3, max_error=1e-12)
    con = r["checks"]["consistency"]
    assert con["passed"] is False and r["passed"] is False
    d = con["first_divergence"]
    # The TensorFlow op (not just the Keras layer) that first exceeds the
    # tolerance when fed the CPU values of its inputs.
    assert d["layer"] in {"conv2d", "batch_normalization", "global_average_pooling2d", "dense"}
    assert hasattr(tf.raw_ops, d["op_type"]), d
    assert "/" in d["node"] and d["error"] > 1e-12, d


def test_op_level_bisection_finds_the_op_a_layer_breaks():
    # A layer whose only inexact op on the NPU is its Rsqrt (the one a
    # BatchNormalization trips on), under a tolerance that exact ops pass:
    # the op named must be that one.
    class Twist(keras.layers.Layer):
        def call(self, x):
            return tf.math.rsqrt(tf.abs(x) + 1.0) * 2.0

    keras.utils.set_random_seed(3)
    inp = keras.Input((64,))
    model = keras.Model(inp, Twist(name="twist")(keras.layers.ReLU(name="relu")(inp)))
    x = np.random.default_rng(0).normal(size=(16, 64)).astype(np.float32)
    d = check.first_divergence(model, model, [x], max_error=1e-12)
    if d is None:
        pytest.skip("Rsqrt is bit-exact with TensorFlow CPU here")
    assert d["layer"] == "twist" and d["op_type"] == "Rsqrt", d


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
        ([str(tmp_path / "junk.keras")], "not a Keras archive"),
        ([str(tmp_path / "nomodel.py")], "defines no build_model()"),
        ([small_keras, "--data", str(tmp_path / "wrong.npz")], "the model expects"),
    ]
    for args, words in cases:
        p = _cli(*args)
        assert p.returncode == 2, p.stderr[-2000:]
        assert words in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]


def _cli_only(*args, env=None):
    """tf-adapter-check's entry point in a fresh process; also reports whether
    TensorFlow was imported."""
    code = ("import sys, tf_adapter_cli\n"
            "try:\n    rc = tf_adapter_cli.main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
            "print('TENSORFLOW_IMPORTED', 'tensorflow' in sys.modules)\nsys.exit(rc)\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600, env=env)


def test_help_lists_every_option_with_its_default_without_importing_tensorflow():
    p = _cli_only("--help")
    assert p.returncode == 0, p.stderr
    assert "TENSORFLOW_IMPORTED False" in p.stdout
    for option in ["--data", "--batch", "--steps", "--devices", "--scaling-threshold", "--precision", "--max-error",
                   "--latency-ms", "--memory-limit", "--json", "--html", "--quiet", "--verbose"]:
        assert option in p.stdout, option
    assert "(default: 8)" in p.stdout and "(default: 0.8)" in p.stdout
    import tf_adapter_cli
    from tf_adapter import precision

    assert tf_adapter_cli.PRECISION_MODES == tuple(precision.MODES)
    for mode in precision.MODES:
        assert mode in p.stdout


def test_bad_options_are_refused_in_one_line_before_any_work(tmp_path, small_keras):
    (tmp_path / "junk.h5").write_text("not hdf5")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "model.onnx").write_text("x")
    cases = [
        (["--batch", "-3"], "--batch -3: must be at least 1"),
        (["--batch", "0"], "--batch 0: must be at least 1"),
        (["--batch", "two"], "invalid int value"),
        (["--steps", "0"], "--steps 0: must be at least 2"),
        (["--devices", "0"], "--devices 0: must be 1 to 64"),
        (["--devices", "9999"], "TFA_NPU_COUNT"),
        (["--max-error", "0"], "--max-error 0.0: must be greater than 0"),
        (["--latency-ms", "-1"], "--latency-ms -1.0: must be greater than 0"),
        (["--memory-limit", "1.5"], "--memory-limit 1.5: must be a fraction"),
        (["--precision", "fp8"], "invalid choice: 'fp8'"),
        (["--json", str(tmp_path / "no" / "r.json")], "does not exist"),
        (["--data", str(tmp_path / "none.npz")], "--data"),
    ]
    for args, words in cases:
        p = _cli_only(small_keras, *args)
        assert p.returncode == 2, (args, p.stderr)
        assert "TENSORFLOW_IMPORTED False" in p.stdout, args
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "tf-adapter-check: error:" in lines[0], (args, p.stderr)
    for path, words in [(tmp_path / "missing.keras", "no such file or directory"),
                        (tmp_path / "junk.h5", "not an HDF5 file"),
                        (tmp_path / "emptydir", "not a SavedModel"),
                        (tmp_path / "model.onnx", "expected a .keras or .h5 file")]:
        p = _cli_only(str(path))
        assert p.returncode == 2 and words in p.stderr and "TENSORFLOW_IMPORTED False" in p.stdout, p.stderr


def test_cli_exit_status_follows_the_checks(small_keras, tmp_path):
    ok = _cli(small_keras, "--steps", "5", "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"))
    assert ok.returncode == 0, ok.stdout + ok.stderr[-2000:]
    assert "consistency  PASS" in ok.stdout and re.search(r"check +result +figures", ok.stdout)
    assert re.search(r"training .* 15/15", ok.stderr), ok.stderr[-2000:]  # the progress bars (3 runs x 5 steps)
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    bad = _cli(small_keras, "--steps", "3", "--latency-ms", "0.000001")
    assert bad.returncode == 1 and "latency      FAIL" in bad.stdout


def test_cli_shows_only_its_progress_unless_verbose(small_keras):
    # TensorFlow's start-up notices (oneDNN, device creation: printed while
    # it loads, whatever TF_CPP_MIN_LOG_LEVEL says) and its Python log stay
    # out of the way; --verbose shows them. A user's environment, not the
    # test session's quieter log level (conftest): TensorFlow's INFO lines
    # (device creation) are then printed on every CPU, and the oneDNN notice
    # only where oneDNN is on.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = _cli_only(small_keras, "--steps", "3", env=env)
    assert quiet.returncode in (0, 1), quiet.stderr[-2000:]
    lines = [ln for ln in quiet.stderr.splitlines() if ln.strip()]
    assert lines and all(re.match(r"(consistency|training|scaling|memory|latency) +\S", ln) for ln in lines), lines
    verbose = _cli_only(small_keras, "--steps", "3", "--verbose", env=env)
    assert "oneDNN" in verbose.stderr or "I0000" in verbose.stderr, verbose.stderr[-2000:]


def test_python_file_with_build_model(tmp_path):
    src = tmp_path / "model.py"
    src.write_text(
        "import keras\n"
        "def build_model():\n"
        "    keras.utils.set_random_seed(1)\n"
        "    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation='relu'), keras.layers.Dense(3)])\n"
        "loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)\n"
        "def dataset():\n"
        "    import numpy as np, tensorflow as tf\n"
        "    rng = np.random.default_rng(5)\n"
        "    x = rng.normal(size=(40, 6)).astype('float32')\n"
        "    y = (x[:, 0] > 0).astype('int32') + (x[:, 1] > 0).astype('int32')\n"
        "    return tf.data.Dataset.from_tensor_slices((x, y)).batch(12)\n"
    )
    r = check.run(str(src), batch=4, steps=10, learning_rate=0.1)
    assert r["batch"] == 12  # the dataset's batch, labels from the dataset
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


def _open_in_chromium(path, tmp_path):
    """Loads `path` in headless Chromium; returns the body's attributes set by
    the report's load script and the console errors."""
    exe = browser.chromium()
    p = subprocess.run(
        [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=180)
    body = re.search(r"<body([^>]*)>", p.stdout)
    assert body, (p.returncode, p.stderr[-3000:])
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    console = [ln for ln in p.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    return attrs, console, p.stdout


def test_html_report_opens_in_headless_chromium_with_its_plots(small_keras, tmp_path):
    page = tmp_path / "report.html"
    r = check.run(small_keras, batch=8, steps=5, devices=2, max_error=1e-12, html_path=str(page))
    assert r["checks"]["scaling"]["speedup"] > 0 and r["checks"]["consistency"]["first_divergence"]
    text = page.read_text()
    # self-contained: nothing to fetch (namespace URIs in xmlns are names, not fetched)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?(https?:|//)|@import""", text)
    attrs, console, dom = _open_in_chromium(page, tmp_path)
    assert attrs.get("data-errors") == "0" and not console, (attrs, console)
    # loss curves, latency histograms, memory over time, scaling bars, per-output error
    assert attrs.get("data-plots") == "5", attrs
    for name in ("consistency", "training", "scaling", "memory", "latency"):
        assert f'data-plot="{name}"' in dom
    assert "First diverging op" in dom and r["checks"]["consistency"]["first_divergence"]["node"] in dom


def _overlap(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_html_plots_do_not_overprint():
    # Phases a fraction of a second apart (a skipped check takes none) and a
    # latency figure with two histograms: no label may cover another, the
    # legend stays off the curve, the figure title off the subplot titles.
    memory = {"peak_bytes": 7 << 20, "capacity_bytes": 8 << 30, "limit": 0.8, "peak_share": 0.0009,
              "timeline": [[i * 0.05, (1 + i % 7) << 20] for i in range(200)],
              "phases": [[0.0, "consistency"], [0.01, "training"], [0.02, "scaling"], [0.03, "latency"],
                         [6.0, "memory"]]}
    fig = check_html.memory_figure(memory)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(labels) == 5
    assert not [(i, j) for i in range(5) for j in range(i) if _overlap(labels[i], labels[j])], labels
    assert not _overlap(ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer))
    samples = list(np.linspace(1.0, 3.0, 20))
    latency = {"latency_ms": None, **{f"batch_{b}": {"batch": b, "p50_ms": 2.0, "p99_ms": 2.9, "samples_ms": samples}
                                      for b in (1, 32)}}
    fig = check_html.latency_figure(latency)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        assert not _overlap(title, ax.title.get_window_extent(renderer)), ax.title.get_text()


def test_html_report_says_why_and_in_readable_units(small_keras, tmp_path):
    # No Python None, no raw byte counts, every skipped check with its
    # reason, and the memory estimate of a tiny model capped at what was
    # measured (a straight line through batches 4 and 8 allowed ~1e8).
    page = tmp_path / "r.html"
    r = check.run(small_keras, batch=8, steps=3, html_path=str(page))
    text = page.read_text()
    assert ">None<" not in text and "not set" in text
    assert not re.search(r"_bytes</th><td>\d{4,}", text), re.findall(r"_bytes</th><td>[^<]*", text)
    assert re.search(r"capacity_bytes</th><td>[\d.]+ GiB", text)
    for name, c in r["checks"].items():
        if c.get("passed") is None:
            assert c.get("skipped"), (name, c)
            assert html.escape(c["skipped"]) in text
    m = r["checks"]["memory"]
    assert m["largest_batch_estimate"] <= check.EXTRAPOLATION * 8 < m["largest_batch_modelled"], m
    assert "measured up to batch 8" in m["largest_batch_note"]
    assert "<ol class='phases'><li>consistency" in text
    line = check.summary(r)
    assert "largest batch >= 512" in line and "not judged: no --latency-ms given" in line, line


def test_missing_browser_is_said_loudly(tmp_path):
    # Without Chromium the browser tests skip, and the run ends with a line
    # that says so; with TFA_REQUIRE_BROWSER=1 (CI) they fail instead.
    (tmp_path / "test_page.py").write_text("import browser\n\ndef test_page():\n    browser.chromium()\n")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable), PYTHONPATH=os.path.dirname(browser.__file__))
    env.pop("TFA_REQUIRE_BROWSER", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "browser", str(tmp_path)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 0 and "1 HTML-report test(s) SKIPPED: no Chromium here" in p.stdout, p.stdout + p.stderr
    env["TFA_REQUIRE_BROWSER"] = "1"
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert p.returncode == 1 and "TFA_REQUIRE_BROWSER is set" in p.stdout, p.stdout + p.stderr


def test_browser_harness_sees_broken_pages(tmp_path):
    # The page check above must be able to fail: a script error and an empty plot.
    page = tmp_path / "broken.html"
    page.write_text(f"<!DOCTYPE html><html><head><script>{check_html._SCRIPT}</script></head><body>"
                    "<div class='plot'><svg></svg></div><script>notAFunction()</script></body></html>")
    attrs, console, _ = _open_in_chromium(page, tmp_path)
    assert attrs.get("data-plots") == "0" and attrs.get("data-errors") == "1", attrs


def test_savedmodel_checks_inference_and_skips_training(small_keras, tmp_path):
    model = keras.models.load_model(small_keras)
    export = tmp_path / "exported"
    model.export(str(export), verbose=False)
    r = check.run(str(export), batch=4, steps=3)
    c = r["checks"]
    assert c["consistency"]["passed"] and c["consistency"]["outputs"][0]["rel_l2"] < 1e-5
    assert c["training"]["passed"] is None and "SavedModel" in c["training"]["skipped"]
    assert c["scaling"]["passed"] is None and c["latency"]["batch_4"]["p50_ms"] > 0
    assert c["memory"]["passed"] and r["passed"] is True
    # A tolerance no float op meets: the signature's ops are searched inside
    # the function it calls, and the first diverging one is named.
    d = check.run(str(export), batch=4, steps=2, max_error=1e-12)["checks"]["consistency"]["first_divergence"]
    assert d and hasattr(tf.raw_ops, d["op_type"]) and d["op_type"] not in ("StatefulPartitionedCall",), d
    assert "/" in d["node"] and d["error"] > 1e-12, d


def test_low_precision_divergence_is_caught_and_the_mode_restored(small_keras):
    import tf_adapter

    before = tf_adapter.get_precision_mode()
    r = check.run(small_keras, batch=8, steps=3, precision="allow_fp32_to_bf16", max_error=1e-4)
    assert tf_adapter.get_precision_mode() == before
    con = r["checks"]["consistency"]
    assert r["precision_mode"] == "allow_fp32_to_bf16" and con["passed"] is False
    assert 1e-4 < con["outputs"][0]["rel_l2"] < 0.05  # bf16 products: ~1e-3, not garbage
    d = con["first_divergence"]
    assert d["layer"] == "conv2d" and d["op_type"] == "Conv2D", d  # the first op computing in bf16
    assert _cli(small_keras, "--precision", "no_such_mode").returncode == 2


def test_memory_estimate_separates_weights_from_samples(small_keras):
    r = check.run(small_keras, batch=8, steps=2)
    m = r["checks"]["memory"]
    assert set(m["step_bytes"]) == {"4", "8"} and m["step_bytes"]["8"] > m["step_bytes"]["4"] > 0
    assert m["per_sample_bytes"] > 0 and m["fixed_bytes"] >= 0
    # The estimate is consistent with its own model and bigger than the batch that ran.
    used = m["fixed_bytes"] + m["per_sample_bytes"] * m["largest_batch_estimate"]
    assert used <= m["limit"] * m["capacity_bytes"] and m["largest_batch_estimate"] > 8


def test_out_of_memory_is_a_failed_check_not_a_crash(small_keras, tmp_path):
    # A 4 MiB NPU and a batch that needs more: every check that touches the
    # NPU fails with the out-of-memory error, the memory check counts the
    # refused allocations, the reports are still written, no traceback.
    env = dict(os.environ, TFA_NPU_MEMORY="4M")
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "tf_adapter.check", small_keras, "--batch", "2048", "--steps", "2",
                        "--json", str(out), "--html", str(tmp_path / "r.html"), "--quiet"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stdout + p.stderr[-3000:]
    r = json.loads(out.read_text())
    c = r["checks"]
    assert "out of memory" in c["latency"]["error"], c["latency"]
    assert c["consistency"]["passed"] is False and "ResourceExhausted" in c["consistency"]["error"]
    assert c["memory"]["passed"] is False and c["memory"]["failed_allocs"] > 0
    assert "allocation(s) failed" in p.stdout
    attrs, console, _ = _open_in_chromium(tmp_path / "r.html", tmp_path)
    assert attrs.get("data-errors") == "0" and attrs.get("data-plots") == "1" and not console, attrs  # memory only
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(r, check.schema())


@pytest.fixture(scope="module")
def softmax_classifier(tmp_path_factory):
    """A softmax classifier compiled with Adam(1e-2) + sparse cross-entropy
    and saved, and the same model saved uncompiled."""
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    folder = tmp_path_factory.mktemp("softmax")
    m.save(folder / "compiled.keras")
    keras.models.load_model(folder / "compiled.keras", compile=False).save(folder / "uncompiled.keras")
    return str(folder / "compiled.keras"), str(folder / "uncompiled.keras")


def test_training_check_uses_the_saved_loss_and_optimizer(softmax_classifier):
    compiled, uncompiled = softmax_classifier
    tr = check.run(compiled, batch=8, steps=20)["checks"]["training"]
    s = tr["setup"]
    assert s["optimizer"] == "Adam" and "model's own" in s["optimizer_source"], s
    assert abs(s["learning_rate"] - 1e-2) < 1e-6 and s["loss_source"] == "the model's own", s
    assert tr["passed"] and tr["loss_drop"] > 0.15, tr
    # Without a compiled loss: chosen from the softmax output, probabilities
    # (not logits: no second softmax), and reported with the reason.
    tr = check.run(uncompiled, batch=8, steps=20)["checks"]["training"]
    s = tr["setup"]
    assert s["loss_from_logits"] is False and "softmax" in s["loss_source"], s
    assert s["optimizer"] == "Adam" and "none given" in s["optimizer_source"], s
    assert tr["passed"] and tr["loss_drop"] > 0.15, tr


def test_a_loss_that_barely_moves_does_not_pass():
    # The curve: 2.295 -> 2.238 in 20 steps is a fall, but not one a
    # healthy model fitting one batch shows.
    barely = [2.295 - 0.003 * i for i in range(20)]
    falls, drop, t = check.loss_falls(barely)
    assert not falls and drop < check.MIN_LOSS_DROP and t < check.MAX_TREND_T
    healthy = [2.3 * 0.99 ** i for i in range(20)]
    assert check.loss_falls(healthy)[0]
    # A big first-to-last drop inside wild oscillation: the slope is not significant.
    wobbly = [3.0, 0.5, 3.2, 0.4, 3.1, 0.6, 2.9, 0.5, 3.0, 0.4, 2.8, 0.5]
    falls, drop, t = check.loss_falls(wobbly)
    assert drop > check.MIN_LOSS_DROP and t > check.MAX_TREND_T and not falls
