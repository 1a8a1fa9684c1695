"""The migration checklist: is a model ready on the NPU?

    tf-adapter-check MODEL [--data inputs.npz] [--batch N] [--devices N]
        [--steps N] [--precision MODE] [--max-error 0.01] [--latency-ms MS]
        [--memory-limit 0.8] [--json PATH] [--html PATH]

or ``python -m tf_adapter.check ...``, or ``tf_adapter.check.run(...)``.

MODEL is a Keras file (``.keras``, ``.h5``), a SavedModel directory, or a
Python file defining ``build_model()`` (and optionally ``dataset()``, ``loss``,
``optimizer``). Checks, each with its figures and ``passed`` (True, False, or
None when skipped):

- consistency: the same inputs on CPU and NPU, per output relative L2 error,
  max abs error and cosine similarity; on failure, for Keras models, the first
  layer whose NPU output diverges and inside it the first TensorFlow op
  (``first_divergence``, see ``tf_adapter.check_divergence``);
- training: N steps on one fixed batch on CPU and NPU from the same weights,
  with the model's own loss and optimizer (else a loss chosen from its output
  and Adam; ``setup`` says which and why); the NPU loss must fall by at least
  MIN_LOSS_DROP with a slope t-statistic <= MAX_TREND_T, stay finite and
  track CPU within max(tolerance, 2 x CPU's own spread under a 1e-6 weight
  perturbation);
- scaling: train-step throughput on 1 and N NPUs under MirroredStrategy at
  the same per-device batch (each configuration in its own process, as
  ``TFA_NPU_COUNT`` is read at import); passes at 0.75 x N (3x on 4); on the
  host backend the report says when the NPUs share fewer cores than they need;
- memory: peak NPU memory against capacity (default limit 80%), with the
  largest batch that would fit;
- latency: p50/p90/p99 at batch 1 and at the chosen batch, and throughput;
  passes when p99 meets ``--latency-ms`` (None when none is given);
- coverage: every op type, where it runs, dtypes, host fallbacks.

Exit status: 0 when every check that ran passed, 1 when one failed, 2 for bad
input (missing file, model that does not load, wrong input shape). A check
that raises (an op failing on the NPU, out of memory) is a failed check
carrying the error.

``--json PATH`` writes every figure (schema in the README, "Migration
checklist"); ``--html PATH`` a self-contained HTML report with plots
(``tf_adapter.check_html``). Progress bars go to stderr (``--quiet``: none).
"""

import json
import math
import os
import sys
import time

from tf_adapter.check_divergence import _on, errors, first_divergence  # noqa: F401  (errors: part of this API)
from tf_adapter.check_html import _bytes
from tf_adapter.check_subject import CheckError, _call, example_inputs, load
from tf_adapter.train import make_train_step

__all__ = ["CheckError", "run", "main", "schema"]


_NO_TRAINING = "a SavedModel has no training entry point"


# ------------------------------------------------- memory and progress ----


class MemoryTimeline:
    """Samples NPU:0's memory in use every `interval` seconds on a thread
    while the checks run; `phase(name)` marks where each check starts."""

    def __init__(self, interval=0.01):
        import threading

        self.interval = interval
        self.samples = []  # (seconds, bytes in use)
        self.phases = []  # (seconds, check name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="tfa-check-memory", daemon=True)
        self._t0 = time.perf_counter()

    def _now(self):
        return time.perf_counter() - self._t0

    def _sample(self):
        import tf_adapter

        while not self._stop.is_set():
            self.samples.append((self._now(), tf_adapter.memory_info("NPU:0")["current"]))
            self._stop.wait(self.interval)

    def decimated(self, points=2000):
        """At most about `points` samples, keeping each bin's highest so peaks survive."""
        step = max(1, -(-len(self.samples) // points))
        return [max(self.samples[i:i + step], key=lambda s: s[1]) for i in range(0, len(self.samples), step)]

    def phase(self, name):
        self.phases.append((self._now(), name))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Progress:
    """Progress bars on stderr while the checks run (rich, which Keras already
    depends on); a no-op when disabled, as for the Python API by default."""

    def __init__(self, enabled):
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bars, TextColumn, TimeElapsedColumn

            self._bar = Bars(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(stderr=True), transient=False)

    def __enter__(self):
        if self._bar:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self._bar:
            self._bar.__exit__(*exc)

    def task(self, name, total):
        """A callable that advances `name`'s bar by one step."""
        if not self._bar:
            return lambda n=1: None
        tid = self._bar.add_task(name, total=total)
        return lambda n=1: self._bar.advance(tid, n)


_QUIET = Progress(False)


# ------------------------------------------------------------- checks ----


def check_consistency(subject, inputs, max_error, progress=_QUIET):
    import tensorflow as tf

    advance = progress.task("consistency", 2)

    cpu_model = _on("/CPU:0", subject.build)
    with tf.device("/NPU:0"):
        npu_model = subject.build()
    _copy_weights(cpu_model, npu_model)
    cpu_out = _on("/CPU:0", _call, cpu_model, inputs)
    advance()
    npu_out = _on("/NPU:0", _call, npu_model, inputs)
    advance()
    outputs = []
    for i, (n, c) in enumerate(zip(npu_out, cpu_out)):
        e = errors(n.numpy(), c.numpy())
        e["output"] = i
        e["passed"] = bool(e["rel_l2"] <= max_error and math.isfinite(e["rel_l2"]))
        outputs.append(e)
    passed = all(o["passed"] for o in outputs)
    result = {"passed": passed, "max_error": max_error, "outputs": outputs}
    if not passed:
        result["first_divergence"] = first_divergence(cpu_model, npu_model, inputs, max_error)
    return result


def _copy_weights(src, dst):
    if hasattr(src, "get_weights") and hasattr(dst, "set_weights"):
        dst.set_weights(src.get_weights())
    elif hasattr(src, "variables"):
        for a, b in zip(src.variables, dst.variables):
            b.assign(a)


def percentile(values, q):
    import numpy as np

    return float(np.percentile(np.asarray(values, np.float64), q))


def check_latency(subject, inputs, batch, latency_ms, iters=20, progress=_QUIET):
    import tensorflow as tf

    sizes = sorted({1, batch})
    advance = progress.task("latency", len(sizes) * iters)

    with tf.device("/NPU:0"):
        model = subject.build()
    fn = tf.function(lambda *xs: _call(model, list(xs)))
    result = {}
    for b in sizes:
        xs = [tf.constant(x[:b]) for x in inputs]
        with tf.device("/NPU:0"):
            for _ in range(3):
                out = fn(*xs)
            times = []
            for _ in range(iters):
                t0 = time.perf_counter()
                out = fn(*xs)
                [o.numpy() for o in out]
                times.append((time.perf_counter() - t0) * 1e3)
                advance()
        result[f"batch_{b}"] = {
            "batch": b, "p50_ms": percentile(times, 50), "p90_ms": percentile(times, 90),
            "p99_ms": percentile(times, 99), "throughput_per_s": b * 1e3 / percentile(times, 50),
            "samples_ms": times,
        }
    worst = max(r["p99_ms"] for r in result.values())
    judged = {"passed": bool(result["batch_1"]["p99_ms"] <= latency_ms)} if latency_ms is not None else {
        "passed": None, "skipped": "not judged: no limit given (--latency-ms); the figures are measured"}
    return {**judged, "latency_ms": latency_ms, "p99_ms_worst": worst, **result}


def check_memory(batch, limit, peak_bytes, step_bytes=None, failed_allocs=0):
    """Peak over the run against capacity. `step_bytes` ({batch: bytes} of one
    training step at two batch sizes, from `training_step_bytes`) gives a
    fixed + per-sample model of the memory, so the largest batch that fits is
    estimated without charging the weights to every sample; without it the
    estimate is proportional (conservative)."""
    import tf_adapter

    capacity = tf_adapter.memory_info("NPU:0")["capacity"]
    share = peak_bytes / capacity if capacity else 0.0
    # An allocation the NPU refused (out of memory) fails the check whatever the peak.
    result = {"passed": bool(share <= limit and not failed_allocs), "peak_bytes": peak_bytes,
              "capacity_bytes": capacity, "peak_share": share, "limit": limit, "batch": batch,
              "failed_allocs": failed_allocs}
    per_sample, fixed = peak_bytes / max(batch, 1), 0
    if step_bytes and len(step_bytes) == 2:
        (b0, m0), (b1, m1) = sorted(step_bytes.items())
        if m1 > m0:
            per_sample = (m1 - m0) / (b1 - b0)
            fixed = max(0, m0 - per_sample * b0)
        result["step_bytes"] = {str(k): v for k, v in step_bytes.items()}
    result["fixed_bytes"], result["per_sample_bytes"] = int(fixed), per_sample
    budget = limit * capacity - max(fixed, peak_bytes - per_sample * batch)
    modelled = int(budget // per_sample) if per_sample > 0 and budget > 0 else 0
    # A straight line through two small batches says nothing about a batch
    # thousands of times larger (a small MLP's line allows ~1e8): past
    # EXTRAPOLATION x the largest measured batch the estimate is capped and
    # the report says so.
    measured = max([batch] + [int(k) for k in result.get("step_bytes", {})])
    cap = EXTRAPOLATION * measured
    result["largest_batch_estimate"] = min(modelled, cap)
    if modelled > cap:
        result["largest_batch_modelled"] = modelled
        result["largest_batch_note"] = (
            f"at least {cap}: measured up to batch {measured}, and the fixed + per-sample model "
            f"({_bytes(fixed)} + {_bytes(per_sample)}/sample) would allow ~{modelled:.3g} within {limit:.0%} of "
            f"{_bytes(capacity)}, {EXTRAPOLATION}x beyond the measured range is not estimated")
    return result


# How far past the largest measured batch the memory estimate extrapolates.
EXTRAPOLATION = 64


def trend(values):
    """Least-squares slope of values over their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    sxx = sum((i - mx) ** 2 for i in range(n))
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / sxx


def training_setup(subject, model, labels, lr):
    """(loss, optimizer factory, description) the training check uses: the
    subject's own (a .keras/.h5 file's compiled loss and optimizer, a .py
    file's ``loss``/``optimizer``), else a loss chosen from the model's output
    and label dtype and Adam(lr). The description says which and why (it goes
    into every report)."""
    import keras

    loss, why_loss = subject.loss, "the model's own"
    if _is_factory(loss) and not isinstance(loss, keras.losses.Loss):
        loss = loss()  # a .py file's `loss` may build the loss
    if loss is None:
        loss, why_loss = _default_loss(model, labels)
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    if not isinstance(loss, keras.losses.Loss):
        fn = loss  # a loss function (e.g. from a compiled "sparse_categorical_crossentropy"): per-sample values

        def loss(y, p):
            import tensorflow as tf

            return tf.reduce_mean(fn(y, p))

    opt = subject.optimizer
    if opt is None:
        def opt():
            return keras.optimizers.Adam(lr)

        why_opt = f"none given: Adam at learning rate {lr:g}"
    else:
        why_opt = "the model's own (compiled and saved with it)" if getattr(opt, "_tfa_saved", False) else \
            "the model file's"
    factory = opt if _is_factory(opt) else (lambda: opt)
    sample = factory()
    return loss, factory, {
        "loss": name, "loss_from_logits": bool(getattr(loss, "from_logits", False)) if hasattr(loss, "from_logits")
        else None, "loss_source": why_loss,
        "optimizer": type(sample).__name__, "learning_rate": _learning_rate(sample), "optimizer_source": why_opt,
    }


def _is_factory(obj):
    """A callable that takes no arguments (builds the object)."""
    import inspect

    if not callable(obj):
        return False
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _learning_rate(opt):
    try:
        return float(opt.get_config()["learning_rate"])
    except (KeyError, TypeError, ValueError):  # a schedule: not one number
        return None


def _train_curve(subject, device, weights, inputs, labels, steps, lr, advance=lambda: None):
    """Losses of `steps` training steps of a fresh model on `device` from
    `weights` on the same batch every step, with the loss and optimizer of
    `training_setup`."""
    import tensorflow as tf

    with tf.device(device):
        model = subject.build()
        if weights is not None:
            model.set_weights(weights)
        loss_fn, make_optimizer, _ = training_setup(subject, model, labels, lr)
        step = make_train_step(model, loss_fn, make_optimizer(), device=device)
        x = [tf.constant(a) for a in inputs]
        y = tf.constant(labels)
        curve = []
        for _ in range(steps):
            curve.append(float(step(x if len(x) > 1 else x[0], y)))
            advance()
    return curve


def training_step_bytes(subject, inputs, labels, batch, lr=0.01):
    """NPU:0 memory a fresh model needs to build and run one training step at
    `batch` (weights, optimizer state, activations): the peak above what was
    in use before."""
    import tf_adapter

    base = tf_adapter.memory_info("NPU:0")["current"]
    tf_adapter.reset_memory_stats("NPU:0")
    _train_curve(subject, "/NPU:0", None, [x[:batch] for x in inputs], labels[:batch], 1, lr)
    return tf_adapter.memory_info("NPU:0")["peak"] - base


def _relative_gap(a, b):
    return max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b))


# "The loss goes down" on one fixed batch (can the model fit one batch, the
# classic sanity check): at least MIN_LOSS_DROP of the first loss gone by the
# last step, and a least-squares slope whose t-statistic is at most
# MAX_TREND_T (a fall that the step-to-step wobble does not explain).
MIN_LOSS_DROP = 0.05
MAX_TREND_T = -3.0


def trend_t(values):
    """t-statistic of the least-squares slope of values over their index
    (slope / its standard error); -inf for an exact straight fall, None with
    fewer than 4 values."""
    n = len(values)
    if n < 4:
        return None
    slope = trend(values)
    mx, my = (n - 1) / 2, sum(values) / n
    sxx = sum((i - mx) ** 2 for i in range(n))
    ssr = sum((v - (my + slope * (i - mx))) ** 2 for i, v in enumerate(values))
    se = math.sqrt(ssr / (n - 2) / sxx)
    if se == 0:
        return -math.inf if slope < 0 else (math.inf if slope > 0 else 0.0)
    return slope / se


def loss_falls(values):
    """(falls, relative drop, trend t-statistic) per MIN_LOSS_DROP and
    MAX_TREND_T."""
    drop = (values[0] - values[-1]) / max(abs(values[0]), 1e-12)
    t = trend_t(values)
    significant = t <= MAX_TREND_T if t is not None else trend(values) < 0
    return bool(drop >= MIN_LOSS_DROP and significant), drop, t


def check_training(subject, inputs, labels, steps, lr, tolerance, progress=_QUIET, noise=1e-6):
    """N steps on CPU and on the NPU from the same weights, plus a third run on
    CPU from the weights perturbed by `noise` (relative): how far CPU's own
    trajectory moves under rounding-sized changes. Deep networks trained on
    one batch amplify 1e-6 into tens of percent within a few steps (ResNet50
    from random weights: the perturbed CPU run's gradients differ by ~4% at
    step 1), so the NPU must track CPU within max(tolerance, 2 x that spread)."""
    import numpy as np

    if not subject.keras_model:
        return {"passed": None, "skipped": _NO_TRAINING}
    advance = progress.task("training", 3 * steps)
    probe = _on("/CPU:0", subject.build)
    init = probe.get_weights()
    setup = training_setup(subject, probe, labels, lr)[2]
    rng = np.random.default_rng(0)
    perturbed = [w * (1 + noise * rng.standard_normal(w.shape)).astype(w.dtype) if w.dtype.kind == "f" else w
                 for w in init]
    curves = {run: _train_curve(subject, device, weights, inputs, labels, steps, lr, advance)
              for run, device, weights in (("cpu", "/CPU:0", init), ("npu", "/NPU:0", init),
                                           ("cpu_perturbed", "/CPU:0", perturbed))}
    cpu, npu, cpu2 = curves["cpu"], curves["npu"], curves["cpu_perturbed"]
    bad = next((i for i, v in enumerate(npu) if not math.isfinite(v)), None)
    slope = trend(npu) if bad is None else float("nan")
    gap = _relative_gap(npu, cpu) if bad is None else float("nan")
    spread = _relative_gap(cpu2, cpu) if all(math.isfinite(v) for v in cpu + cpu2) else float("inf")
    allowed = max(tolerance, 2 * spread)
    falls, drop, t = loss_falls(npu) if bad is None else (False, float("nan"), None)
    passed = bad is None and falls and gap <= allowed
    return {"passed": bool(passed), "steps": steps, "npu_loss": npu, "cpu_loss": cpu,
            "cpu_perturbed_loss": cpu2, "npu_trend": slope, "npu_trend_t": t, "loss_drop": drop,
            "min_loss_drop": MIN_LOSS_DROP, "max_trend_t": MAX_TREND_T, "setup": setup,
            "max_relative_gap": gap, "cpu_self_gap": spread, "allowed_gap": allowed, "tolerance": tolerance,
            "perturbation": noise, "first_non_finite_step": bad}


def _output_activation(model):
    """Name of the activation of the model's last layer ('' when unknown)."""
    layers = getattr(model, "layers", None) or []
    act = getattr(layers[-1], "activation", None) if layers else None
    return getattr(act, "__name__", "") or ""


def _default_loss(model, labels):
    """(loss, why) for a model without its own: class indices -> sparse
    cross-entropy on the probabilities a softmax output gives, or on logits;
    0/1 labels on a sigmoid output -> binary cross-entropy; else MSE."""
    import keras

    out_dim = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    act = _output_activation(model)
    if labels.dtype.kind in "iu" and out_dim and out_dim > 1:
        if act == "softmax":
            return (keras.losses.SparseCategoricalCrossentropy(from_logits=False),
                    "none given: class-index labels and a softmax output (probabilities)")
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                f"none given: class-index labels and a {act or 'linear'} output (logits)")
    if act == "sigmoid":
        return keras.losses.BinaryCrossentropy(from_logits=False), "none given: a sigmoid output"
    return keras.losses.MeanSquaredError(), f"none given: a {act or 'linear'} output, real-valued labels"


def _labels_for(model, batch, seed=1):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = model.outputs[0]
    classes = out.shape[-1]
    if len(out.shape) == 2 and classes and classes > 1:
        return rng.integers(0, classes, size=batch).astype(np.int32)
    if _output_activation(model) == "sigmoid":
        return rng.integers(0, 2, size=(batch,) + tuple(out.shape[1:])).astype(np.float32)
    return rng.normal(size=(batch,) + tuple(out.shape[1:])).astype(np.float32)


def _first_batch(subject, batch):
    """(inputs, labels) of the first element of the .py file's dataset(): a
    tf.data.Dataset (or iterable) of (x, y) batches; x may be a tuple."""
    import numpy as np

    try:
        x, y = next(iter(subject.dataset()))[:2]
    except Exception as e:
        raise CheckError(f"dataset() gave no (x, y) batch: {type(e).__name__}: {str(e)[:300]}") from None
    xs = list(x) if isinstance(x, (tuple, list)) else [x]
    return [np.asarray(a) for a in xs], np.asarray(y)


def _scaling_worker(model, batch, steps):
    """In a child process with TFA_NPU_COUNT set: train-step img/s under
    MirroredStrategy over every NPU at per-device batch `batch`."""
    import keras
    import tensorflow as tf
    import tf_adapter
    from tf_adapter.distribute import train_step_seconds

    subject = load(model)
    n = tf_adapter.config()["npu_count"]
    strategy = tf.distribute.MirroredStrategy([f"/NPU:{i}" for i in range(n)])
    with strategy.scope():
        net = subject.build()
        optimizer = keras.optimizers.SGD(0.01)
        optimizer.build(net.trainable_variables)
    inputs = example_inputs(net, batch * n)
    labels = _labels_for(net, batch * n)
    loss_fn = training_setup(subject, net, labels, 0.01)[0]
    best = train_step_seconds(strategy, net, optimizer, loss_fn, inputs, labels, batch, steps=steps, repeats=2)
    print(json.dumps({"npus": n, "samples_per_s": batch * n / best, "step_s": best}))


def check_scaling(model, batch, devices, steps=3, threshold=None, progress=_QUIET):
    import subprocess

    if devices < 2:
        return {"passed": None, "skipped": "one device: nothing to scale", "devices": devices}
    threshold = 0.75 * devices if threshold is None else threshold
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // devices)
    runs = {}
    advance = progress.task("scaling", 2)
    for n in (1, devices):
        env = dict(os.environ, TFA_NPU_COUNT=str(n), TFA_NPU_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [sys.executable, "-m", "tf_adapter.check", model, "--batch", str(batch), "--steps", str(steps),
               "--scaling-worker"]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not lines:
            return {"passed": False, "devices": devices,
                    "error": f"{n} NPU(s): the training step failed: {p.stderr.strip().splitlines()[-1:]}"}
        runs[n] = json.loads(lines[-1])
        advance()
    speedup = runs[devices]["samples_per_s"] / runs[1]["samples_per_s"]
    result = {
        "passed": bool(speedup >= threshold), "devices": devices, "per_device_batch": batch,
        "threads_per_device": threads, "cores": cores, "speedup": speedup, "efficiency": speedup / devices,
        "threshold": threshold, "samples_per_s": {str(k): v["samples_per_s"] for k, v in runs.items()},
    }
    import tf_adapter

    if tf_adapter.config()["backend"] == "host":
        result["note"] = (f"host backend: the {devices} NPUs share this machine's {cores} CPU cores "
                          f"({threads} thread(s) each)"
                          + ("; fewer cores than NPUs, so they time-share them" if cores < devices else ""))
    return result


# ---------------------------------------------------------------- run ----


def run(model, data=None, batch=8, steps=20, devices=1, precision=None, max_error=0.01, latency_ms=None,
        memory_limit=0.8, learning_rate=0.01, loss_tolerance=0.05, scaling_threshold=None, json_path=None,
        html_path=None, progress=False):
    """Runs the checklist on `model` (a path); returns the report dict (the
    JSON report's content). `progress=True` draws progress bars on stderr.
    The precision mode in force before the call is restored after it."""
    kwargs = dict(locals())  # the arguments, passed on as they are
    import tf_adapter

    saved = tf_adapter.get_precision_mode()
    try:
        return _run(**kwargs)
    finally:
        if tf_adapter.get_precision_mode() != saved:
            tf_adapter.set_precision_mode(saved)


def _run(model, data, batch, steps, devices, precision, max_error, latency_ms, memory_limit, learning_rate,
         loss_tolerance, scaling_threshold, json_path, html_path, progress):
    import tensorflow as tf
    import tf_adapter

    if html_path:  # before minutes of checks, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CheckError("--html needs matplotlib: pip install matplotlib (or tf_adapter[check])") from None
    subject = load(model)
    if precision:
        try:
            tf_adapter.set_precision_mode(precision)
        except (ValueError, TypeError) as e:
            raise CheckError(f"--precision: {e}") from None
    probe = _on("/CPU:0", subject.build)
    first = _first_batch(subject, batch) if subject.dataset is not None and data is None else None
    inputs = first[0] if first else example_inputs(probe, batch, data)
    batch = int(inputs[0].shape[0])
    try:
        _on("/CPU:0", _call, probe, [x[:1] for x in inputs])
    except Exception as e:
        raise CheckError(f"the inputs do not fit the model: {type(e).__name__}: {str(e).splitlines()[0][:300]}") from None

    tf_adapter.reset_memory_stats("NPU:0")
    failed_before = tf_adapter.memory_info("NPU:0")["failed_allocs"]
    checks = {}
    with Progress(progress) as bars, MemoryTimeline() as memory:
        memory.phase("consistency")
        checks["consistency"] = _guarded(check_consistency, subject, inputs, max_error, bars)
        memory.phase("training")
        labels = first[1] if first else (
            _labels_for(probe, batch) if subject.keras_model and getattr(probe, "outputs", None) else None)
        if labels is not None:
            checks["training"] = _guarded(check_training, subject, inputs, labels, steps, learning_rate,
                                          loss_tolerance, bars)
        else:
            checks["training"] = {"passed": None, "skipped": _NO_TRAINING
                                  if not subject.keras_model else "the model has no outputs to train"}
        memory.phase("scaling")
        checks["scaling"] = (_guarded(check_scaling, model, batch, devices, threshold=scaling_threshold, progress=bars)
                             if subject.keras_model
                             else {"passed": None, "skipped": _NO_TRAINING})
        memory.phase("latency")
        checks["latency"] = _guarded(check_latency, subject, inputs, batch, latency_ms, progress=bars)
        peak = tf_adapter.memory_info("NPU:0")["peak"]
        step_bytes = None
        if labels is not None and subject.keras_model and batch > 1:
            memory.phase("memory")
            try:
                step_bytes = {b: training_step_bytes(subject, inputs, labels, b, learning_rate)
                              for b in (max(1, batch // 2), batch)}
            except Exception:  # e.g. out of memory: the proportional estimate stands
                step_bytes = None
    checks["memory"] = check_memory(batch, memory_limit, peak, step_bytes,
                                    tf_adapter.memory_info("NPU:0")["failed_allocs"] - failed_before)
    checks["memory"]["timeline"] = memory.decimated()
    checks["memory"]["phases"] = memory.phases
    spec = [tf.TensorSpec((None,) + tuple(x.shape[1:]), tf.as_dtype(x.dtype)) for x in inputs]
    if subject.keras_model:
        report = tf_adapter.coverage(probe, *spec)
    else:
        report = tf_adapter.coverage(lambda *xs: _call(probe, list(xs)), *spec)
    result = {"model": model, "batch": batch, "precision_mode": tf_adapter.get_precision_mode(),
              "backend": tf_adapter.config()["backend"], "checks": checks, "coverage": report.to_dict()}
    result["passed"] = all(c.get("passed") is not False for c in checks.values())
    if json_path:
        with open(json_path, "w") as f:
            json.dump(_jsonable(result), f, indent=1, allow_nan=False)
    if html_path:
        from tf_adapter.check_html import write_html

        write_html(result, html_path)
    return result


def _guarded(fn, *args, **kwargs):
    """Runs one check; one that raises (an op failing on the NPU, device
    memory exhausted) is a failed check carrying the error, not a traceback,
    and the other checks still run."""
    try:
        return fn(*args, **kwargs)
    except CheckError:
        raise
    except Exception as e:
        return {"passed": False, "error": f"{type(e).__name__}: {_telling_line(str(e))}"}


def _telling_line(text):
    """The line of an error message that says what happened: Keras and
    tf.function wrap the kernel's message ("Graph execution error:",
    "Exception encountered when calling ...") in lines that do not."""
    import re

    lines = [re.sub(r"\{\{[^}]*\}\}\s*", "", ln).strip() for ln in text.strip().splitlines()]
    lines = [ln for ln in lines if ln]
    keys = ("out of memory", "NPU", "not supported", "no kernel", "No registered", "Unimplemented")
    chosen = next((ln for ln in lines if any(k in ln for k in keys)), lines[0] if lines else "")
    return chosen[:400]


def _jsonable(value):
    """Plain JSON (schema: check_schema.json): non-finite numbers become null,
    tuples lists, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def schema():
    """The JSON report's schema (JSON Schema 2020-12), as a dict."""
    with open(os.path.join(os.path.dirname(__file__), "check_schema.json")) as f:
        return json.load(f)


def _figures_line(name, c):
    """The figures of one check for the terminal table."""
    if c.get("error"):
        return c["error"]
    if c.get("passed") is None and c.get("skipped") and name != "latency":
        return c["skipped"]
    if name == "consistency":
        worst = max(o["rel_l2"] for o in c["outputs"])
        return f"rel L2 {worst:.2e} (max {c['max_error']:g})"
    if name == "training":
        s = c.get("setup", {})
        lr = f" lr {s['learning_rate']:g}" if s.get("learning_rate") is not None else ""
        t = c.get("npu_trend_t")
        t_text = f", t {t:.1f}" if t is not None and math.isfinite(t) else ""
        return (f"{s.get('loss', '?')} + {s.get('optimizer', '?')}{lr} ({s.get('optimizer_source', '')}); "
                f"loss {c['npu_loss'][0]:.4g} -> {c['npu_loss'][-1]:.4g} ({c.get('loss_drop', 0):.1%} down, "
                f"needs {c.get('min_loss_drop', MIN_LOSS_DROP):.0%}), trend {c['npu_trend']:.3g}/step{t_text}, "
                f"max gap vs CPU {c['max_relative_gap']:.2e} (allowed {c['allowed_gap']:.2e}; "
                f"CPU vs CPU 1e-6-perturbed {c['cpu_self_gap']:.2e})"
                + (f"; non-finite loss at step {c['first_non_finite_step']}"
                   if c.get("first_non_finite_step") is not None else ""))
    if name == "scaling":
        return (f"{c['speedup']:.2f}x on {c['devices']} NPUs (efficiency {c['efficiency']:.0%}, threshold "
                f"{c['threshold']:.2f}x)" + (f"; {c['note']}" if c.get("note") else ""))
    if name == "memory":
        cap = (f"{c['capacity_bytes'] / 2**30:.2f} GiB" if c["capacity_bytes"] >= 2**30
               else f"{c['capacity_bytes'] / 2**20:.1f} MiB")
        largest = (f"largest batch >= {c['largest_batch_estimate']} (not estimated further: "
                   f"{EXTRAPOLATION}x the measured batch)" if c.get("largest_batch_note")
                   else f"largest batch ~{c['largest_batch_estimate']}")
        return (f"peak {c['peak_share']:.1%} of {cap} (limit {c['limit']:.0%}); {largest}"
                + (f"; {c['failed_allocs']} allocation(s) failed" if c.get("failed_allocs") else ""))
    b1 = c["batch_1"]
    return (f"batch 1 p50 {b1['p50_ms']:.2f} / p99 {b1['p99_ms']:.2f} ms"
            + (f" (limit {c['latency_ms']:g} ms)" if c["latency_ms"] is not None
               else "; not judged: no --latency-ms given"))


def summary(result):
    lines = [f"tf-adapter-check {result['model']}  (batch {result['batch']}, {result['precision_mode']}, "
             f"{result.get('backend', '?')} backend)",
             f"  {'check':<12} {'result':<5} figures", f"  {'-' * 12} {'-' * 5} {'-' * 60}"]
    word = {True: "PASS", False: "FAIL", None: "skip"}
    for name in ("consistency", "training", "scaling", "memory", "latency"):
        c = result["checks"][name]
        lines.append(f"  {name:<12} {word[c.get('passed')]:<5} {_figures_line(name, c)}")
        d = c.get("first_divergence")
        if d and d.get("node"):
            where = f" in layer {d['layer']}" if d.get("layer") and d["layer"] != d["node"] else ""
            error = f", error {d['error']:.2e}" if isinstance(d.get("error"), float) else ""
            lines.append(f"  {'':<12} {'':<5} first diverging op: {d['node']} ({d['op_type']}){where}{error}")
    cov = result["coverage"]
    lines.append(f"  {'coverage':<12} {'':<5} "
                 + ("all on NPU" if cov["fully_on_npu"] else "host fallback or unsupported ops: see the reports"))
    return "\n".join(lines)


def main(argv=None):
    """The command line (``tf_adapter_cli``: options are validated before
    any work)."""
    import tf_adapter_cli

    return tf_adapter_cli.main(argv)


def main_parsed(args):
    """Runs the checklist for validated command-line `args`; the exit status."""
    if args.scaling_worker:
        _scaling_worker(args.model, args.batch, args.steps)
        return 0
    try:
        result = run(args.model, data=args.data, batch=args.batch, steps=args.steps, devices=args.devices,
                     scaling_threshold=args.scaling_threshold, precision=args.precision,
                     max_error=args.max_error, latency_ms=args.latency_ms, memory_limit=args.memory_limit,
                     json_path=args.json, html_path=args.html, progress=not args.quiet)
    except CheckError as e:
        print(f"tf-adapter-check: {e}", file=sys.stderr)
        return 2
    print(summary(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
