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
  (``first_divergence``), each fed the CPU values of its inputs;
- training: N steps on CPU and NPU from the same weights; the NPU loss must go
  down (a least-squares trend, not two points), stay finite and track CPU
  within max(tolerance, 2 x CPU's own spread under a 1e-6 weight perturbation);
- memory: peak NPU memory against capacity (default limit 80%), with the
  largest batch that would fit;
- latency: p50/p90/p99 at batch 1 and at the chosen batch, and throughput;
  passes when p99 meets ``--latency-ms`` (None when none is given);
- coverage: every op type, where it runs, dtypes, host fallbacks.

Exit status: 0 when every check that ran passed, 1 when one failed, 2 for bad
input (missing file, model that does not load, wrong input shape).

- scaling: train-step throughput on 1 and N NPUs under MirroredStrategy at
  the same per-device batch (each configuration in its own process, as
  ``TFA_NPU_COUNT`` is read at import); passes at 0.75 x N (3x on 4); on the
  host backend the report says when the NPUs share fewer cores than they need.

``--json PATH`` writes every figure (schema in the README, "Migration
checklist"); ``--html PATH`` a self-contained HTML report with plots
(``tf_adapter.check_html``). Progress bars go to stderr (``--quiet``: none).
"""

import argparse
import importlib.util
import json
import math
import os
import sys
import time

__all__ = ["CheckError", "run", "main", "schema"]


class CheckError(Exception):
    """Bad input: reported in one line, exit status 2."""


# ------------------------------------------------------------ loading ----


class Subject:
    """What is being checked: a callable model plus how to train it."""

    def __init__(self, name, build, loss=None, optimizer=None, dataset=None, keras_model=True):
        self.name = name
        self.build = build  # () -> model (fresh weights are copied in)
        self.loss = loss
        self.optimizer = optimizer
        self.dataset = dataset
        self.keras_model = keras_model


def load(path):
    import keras
    import tensorflow as tf

    if not os.path.exists(path):
        raise CheckError(f"{path}: no such file or directory")
    if path.endswith(".py"):
        spec = importlib.util.spec_from_file_location("_tfa_check_user_model", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise CheckError(f"{path}: could not be executed: {type(e).__name__}: {e}") from None
        if not callable(getattr(module, "build_model", None)):
            raise CheckError(f"{path}: defines no build_model()")
        return Subject(
            os.path.basename(path),
            module.build_model,
            loss=getattr(module, "loss", None),
            optimizer=getattr(module, "optimizer", None),
            dataset=getattr(module, "dataset", None),
        )
    if path.endswith((".keras", ".h5")):
        try:
            keras.models.load_model(path, compile=False)
        except Exception as e:
            raise CheckError(f"{path}: not a loadable Keras model: {type(e).__name__}: {str(e)[:300]}") from None
        return Subject(os.path.basename(path), lambda: keras.models.load_model(path, compile=False))
    if os.path.isdir(path):
        try:
            loaded = tf.saved_model.load(path)
        except Exception as e:
            raise CheckError(f"{path}: not a loadable SavedModel: {type(e).__name__}: {str(e)[:300]}") from None
        if "serving_default" not in getattr(loaded, "signatures", {}):
            raise CheckError(f"{path}: the SavedModel has no serving_default signature")
        return Subject(os.path.basename(path.rstrip("/")), lambda: tf.saved_model.load(path), keras_model=False)
    raise CheckError(f"{path}: expected a .keras/.h5 file, a SavedModel directory or a .py file")


def _signature(model):
    """[(name, shape without batch, dtype)] of the model's inputs."""
    import tensorflow as tf

    if hasattr(model, "inputs") and model.inputs:
        return [(t.name, tuple(t.shape[1:]), tf.as_dtype(t.dtype)) for t in model.inputs]
    fn = model.signatures["serving_default"]
    _, kwargs = fn.structured_input_signature
    return [(k, tuple(v.shape[1:]), v.dtype) for k, v in sorted(kwargs.items())]


def example_inputs(model, batch, data=None, seed=0):
    """Inputs from an .npz file (arrays in input order, or by input name) or
    random ones from the model's input signature."""
    import numpy as np

    sig = _signature(model)
    if data is not None:
        if not os.path.exists(data):
            raise CheckError(f"{data}: no such file")
        try:
            arrays = np.load(data)
        except Exception as e:
            raise CheckError(f"{data}: not an .npz file: {e}") from None
        names = list(arrays.files)
        out = []
        for i, (name, shape, dtype) in enumerate(sig):
            key = name if name in arrays.files else (names[i] if i < len(names) else None)
            if key is None:
                raise CheckError(f"{data}: no array for input {i} ('{name}')")
            a = arrays[key]
            if tuple(a.shape[1:]) != tuple(d if d is not None else a.shape[1 + j] for j, d in enumerate(shape)):
                raise CheckError(
                    f"{data}: input '{name}' has shape {tuple(a.shape)}, the model expects (batch,) + {shape}"
                )
            out.append(a.astype(dtype.as_numpy_dtype))
        return out
    rng = np.random.default_rng(seed)
    out = []
    for name, shape, dtype in sig:
        if any(d is None for d in shape):
            raise CheckError(f"input '{name}' has unknown dimensions {shape}: give inputs with --data")
        if dtype.is_integer:
            out.append(rng.integers(0, 100, size=(batch,) + shape).astype(dtype.as_numpy_dtype))
        else:
            out.append(rng.normal(size=(batch,) + shape).astype(dtype.as_numpy_dtype))
    return out


def _call(model, inputs):
    """Model outputs as a list of tensors."""
    import tensorflow as tf

    if hasattr(model, "inputs") and model.inputs:
        out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    else:
        fn = model.signatures["serving_default"]
        _, kwargs = fn.structured_input_signature
        out = fn(**{k: tf.convert_to_tensor(v) for k, v in zip(sorted(kwargs), inputs)})
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _on(device, fn, *args):
    import tensorflow as tf

    with tf.device(device):
        return fn(*args)


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


def errors(npu, cpu):
    """Relative L2 error, max abs error and cosine similarity of two arrays."""
    import numpy as np

    a, b = np.asarray(npu, np.float64).ravel(), np.asarray(cpu, np.float64).ravel()
    diff = a - b
    nb = float(np.linalg.norm(b))
    rel = float(np.linalg.norm(diff) / nb) if nb > 0 else float(np.linalg.norm(diff))
    na = float(np.linalg.norm(a))
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return {"rel_l2": rel, "max_abs": float(np.abs(diff).max()) if diff.size else 0.0, "cosine": cos}


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


def first_divergence(cpu_model, npu_model, inputs, max_error):
    """The first op whose NPU output differs from its CPU output by more than
    `max_error` when both see the same (CPU) inputs, so an error is charged
    to the op that makes it, not to those downstream. Keras models: first the
    layer (in graph order), then the op inside it; SavedModels: the ops of the
    serving signature, descending into the functions it calls."""
    import keras
    import tensorflow as tf

    layers = getattr(cpu_model, "layers", None)
    if not layers or not getattr(cpu_model, "inputs", None):
        return _signature_divergence(cpu_model, inputs, max_error)
    cpu_probe = keras.Model(cpu_model.inputs, [l.output for l in layers if not isinstance(l, keras.layers.InputLayer)])
    cpu_acts = _on("/CPU:0", lambda: cpu_probe(list(inputs), training=False))
    acts = dict(zip([l.name for l in layers if not isinstance(l, keras.layers.InputLayer)], cpu_acts))
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        npu_layer = npu_model.get_layer(layer.name)
        nodes = layer._inbound_nodes
        if not nodes:
            continue
        parents = [t._keras_history.operation.name for t in nodes[0].input_tensors]
        feed = [acts.get(p) for p in parents]
        if any(f is None for f in feed):
            feed = [tf.convert_to_tensor(x) for x in inputs] if len(parents) == len(inputs) else None
        if feed is None:
            continue
        args = feed[0] if len(feed) == 1 else feed
        cpu_y = _on("/CPU:0", lambda: layer(args, training=False))
        npu_y = _on("/NPU:0", lambda: npu_layer(args, training=False))
        for cy, ny in zip(tf.nest.flatten(cpu_y), tf.nest.flatten(npu_y)):
            e = errors(ny.numpy(), cy.numpy())
            if not e["rel_l2"] <= max_error:
                found = {"node": layer.name, "op_type": type(layer).__name__, "error": e["rel_l2"],
                         "max_abs": e["max_abs"], "cosine": e["cosine"], "layer": layer.name,
                         "layer_type": type(layer).__name__}
                try:
                    op = first_diverging_op(layer, args, max_error)
                except Exception as err:  # the layer-level answer stands
                    op = {"op_level_error": f"{type(err).__name__}: {str(err)[:200]}"}
                if op:
                    found.update(op)  # the op, or why the op level failed
                else:
                    found["note"] = "no single op of the layer exceeds the tolerance; their sum does"
                return found
    return None


def first_diverging_op(cpu_layer, args, max_error):
    """Inside a diverging layer: its call traced on CPU, then op by op (see
    `_diverging_op_in_graph`)."""
    import tensorflow as tf

    flat = [tf.convert_to_tensor(a) for a in tf.nest.flatten(args)]

    @tf.function(autograph=False)
    def call(*xs):
        return cpu_layer(tf.nest.pack_sequence_as(args, list(xs)), training=False)

    with tf.device("/CPU:0"):
        concrete = call.get_concrete_function(*flat)
    graph = concrete.graph
    with _tf_log_level("ERROR"):  # one trace per op probe is the point here
        return _diverging_op_in_graph(graph, flat + list(concrete.captured_inputs), max_error,
                                      _function_library(graph))


def _signature_divergence(cpu_model, inputs, max_error):
    """A SavedModel's serving signature (loaded on CPU), op by op."""
    import tensorflow as tf

    signatures = getattr(cpu_model, "signatures", None)
    if not signatures or "serving_default" not in signatures:
        return None
    fn = signatures["serving_default"]
    feeds = [tf.convert_to_tensor(x) for x in inputs] + list(fn.captured_inputs)
    if len(feeds) != len(fn.graph.inputs):
        return None
    try:
        with _tf_log_level("ERROR"):
            return _diverging_op_in_graph(fn.graph, feeds, max_error, _function_library(fn.graph))
    except Exception as err:
        return {"node": "", "op_type": "", "error": None,
                "op_level_error": f"{type(err).__name__}: {str(err)[:200]}"}


_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def _function_library(graph):
    """Name -> function of every function `graph` calls, nested ones included."""
    library = {}
    for fn in graph._functions.values():
        todo = [fn]
        while todo:
            f = todo.pop()
            name = f.name.decode() if isinstance(f.name, bytes) else f.name  # bytes on AtomicFunction
            if name not in library:
                library[name] = f
                todo.extend(getattr(f, "children", []) or [])
    return library


def _diverging_op_in_graph(graph, feeds, max_error, library, depth=0):
    """Runs each op of `graph` alone on CPU and on the NPU, both fed the CPU
    values of the op's inputs (`feeds` for the graph's placeholders); returns
    the first op whose NPU outputs exceed `max_error`. Function calls are
    searched inside (their body graph, fed the call's inputs) before their
    CPU outputs feed the ops after them."""
    import tensorflow as tf
    from tensorflow.python.framework import function_def_to_graph

    values = {t.name: v for t, v in zip(graph.inputs, feeds)}
    for op in graph.get_operations():
        if op.type == "Placeholder" or not op.outputs:
            continue
        if any(t.name not in values for t in op.inputs):
            continue  # fed by something skipped: nothing to compare with
        inputs = [values[t.name] for t in op.inputs]
        if op.type in _CALL_OPS and depth < 8 and op.get_attr("f").name in library:
            body = function_def_to_graph.function_def_to_graph(library[op.get_attr("f").name].definition)
            found = _diverging_op_in_graph(body, inputs, max_error, library, depth + 1)
            if found:
                return found
            values.update({t.name: v for t, v in zip(op.outputs, _run_op_alone(op, "/CPU:0", inputs, library))})
            continue
        cpu_out = _run_op_alone(op, "/CPU:0", inputs, library)
        values.update({t.name: v for t, v in zip(op.outputs, cpu_out)})
        # Ops on resources (variable reads) have no NPU twin of the CPU
        # variables; constants and shape ops compute nothing worth comparing.
        if (op.type in ("Const", "Shape", "Identity") or any(t.dtype == tf.resource for t in op.inputs)
                or not all(t.dtype.is_floating or t.dtype.is_complex for t in op.outputs)):
            continue
        npu_out = _run_op_alone(op, "/NPU:0", inputs, library)
        for c, n in zip(cpu_out, npu_out):
            e = errors(n.numpy(), c.numpy())
            if not e["rel_l2"] <= max_error:
                return {"node": op.name, "op_type": op.type, "error": e["rel_l2"], "max_abs": e["max_abs"],
                        "cosine": e["cosine"]}
    return None


class _tf_log_level:
    def __init__(self, level):
        import tensorflow as tf

        self.logger, self.level = tf.get_logger(), level

    def __enter__(self):
        self.saved = self.logger.level
        self.logger.setLevel(self.level)

    def __exit__(self, *exc):
        self.logger.setLevel(self.saved)


def _run_op_alone(op, device, inputs, library):
    """Runs a copy of graph op `op` (same type and attributes) on `device`;
    `library` holds the functions it may call (If/While branches, calls)."""
    import tensorflow as tf

    attrs = {k: v for k, v in op.node_def.attr.items() if not k.startswith("_")}  # not colocation hints

    @tf.function(autograph=False)
    def single(*xs):
        g = tf.compat.v1.get_default_graph()
        for fn in library.values():
            g._add_function_recursive(fn)
        new = g._create_op_internal(op.type, list(xs), [t.dtype for t in op.outputs], attrs=attrs, name="probe")
        return [tf.identity(t) for t in new.outputs]

    with tf.device(device):
        return single(*inputs)


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
    return {"passed": None if latency_ms is None else bool(result["batch_1"]["p99_ms"] <= latency_ms),
            "latency_ms": latency_ms, "p99_ms_worst": worst, **result}


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
    result["largest_batch_estimate"] = int(budget // per_sample) if per_sample > 0 and budget > 0 else 0
    return result


def trend(values):
    """Least-squares slope of values over their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(values) / n
    sxx = sum((i - mx) ** 2 for i in range(n))
    return sum((i - mx) * (v - my) for i, v in enumerate(values)) / sxx


def _train_curve(subject, device, weights, inputs, labels, steps, lr, advance=lambda: None):
    """Losses of `steps` training steps of a fresh model on `device` from
    `weights` with the subject's loss and optimizer (defaults: SGD(lr))."""
    import keras
    import tensorflow as tf

    with tf.device(device):
        model = subject.build()
        if weights is not None:
            model.set_weights(weights)
        loss_fn = subject.loss() if callable(subject.loss) and not isinstance(subject.loss, keras.losses.Loss) else subject.loss
        loss_fn = loss_fn or _default_loss(model, labels)
        opt = subject.optimizer() if callable(subject.optimizer) else (subject.optimizer or keras.optimizers.SGD(lr))

        @tf.function
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

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


def check_training(subject, inputs, labels, steps, lr, tolerance, progress=_QUIET, noise=1e-6):
    """N steps on CPU and on the NPU from the same weights, plus a third run on
    CPU from the weights perturbed by `noise` (relative): how far CPU's own
    trajectory moves under rounding-sized changes. Deep networks trained on
    one batch amplify 1e-6 into tens of percent within a few steps (ResNet50
    from random weights: the perturbed CPU run's gradients differ by ~4% at
    step 1), so the NPU must track CPU within max(tolerance, 2 x that spread)."""
    import numpy as np

    if not subject.keras_model:
        return {"passed": None, "skipped": "a SavedModel has no training entry point"}
    advance = progress.task("training", 3 * steps)
    init = _on("/CPU:0", subject.build).get_weights()
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
    passed = bad is None and slope < 0 and npu[-1] < npu[0] and gap <= allowed
    return {"passed": bool(passed), "steps": steps, "npu_loss": npu, "cpu_loss": cpu,
            "cpu_perturbed_loss": cpu2, "npu_trend": slope, "max_relative_gap": gap,
            "cpu_self_gap": spread, "allowed_gap": allowed, "tolerance": tolerance, "perturbation": noise,
            "first_non_finite_step": bad}


def _default_loss(model, labels):
    import keras

    out_dim = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if labels.dtype.kind in "iu" and out_dim and out_dim > 1:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def _labels_for(model, batch, seed=1):
    import numpy as np

    rng = np.random.default_rng(seed)
    out = model.outputs[0]
    classes = out.shape[-1]
    if len(out.shape) == 2 and classes and classes > 1:
        return rng.integers(0, classes, size=batch).astype(np.int32)
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
    loss_fn = subject.loss or _default_loss(net, labels)
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
            checks["training"] = {"passed": None, "skipped": "a SavedModel has no training entry point"
                                  if not subject.keras_model else "the model has no outputs to train"}
        memory.phase("scaling")
        checks["scaling"] = (_guarded(check_scaling, model, batch, devices, threshold=scaling_threshold, progress=bars)
                             if subject.keras_model
                             else {"passed": None, "skipped": "a SavedModel has no training entry point"})
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
    if c.get("passed") is None and c.get("skipped"):
        return c["skipped"]
    if name == "consistency":
        worst = max(o["rel_l2"] for o in c["outputs"])
        return f"rel L2 {worst:.2e} (max {c['max_error']:g})"
    if name == "training":
        return (f"loss {c['npu_loss'][0]:.4g} -> {c['npu_loss'][-1]:.4g}, trend {c['npu_trend']:.3g}/step, "
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
        return (f"peak {c['peak_share']:.1%} of {cap} (limit {c['limit']:.0%}); "
                f"largest batch ~{c['largest_batch_estimate']}"
                + (f"; {c['failed_allocs']} allocation(s) failed" if c.get("failed_allocs") else ""))
    b1 = c["batch_1"]
    return (f"batch 1 p50 {b1['p50_ms']:.2f} / p99 {b1['p99_ms']:.2f} ms"
            + (f" (limit {c['latency_ms']:g} ms)" if c["latency_ms"] is not None else ""))


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
    p = argparse.ArgumentParser(prog="tf-adapter-check", description="tf_adapter's migration checklist")
    p.add_argument("model")
    p.add_argument("--data")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--devices", type=int, default=1, help="NPUs for the scaling check (1: skipped)")
    p.add_argument("--scaling-threshold", type=float, help="speed-up needed (default 0.75 x devices)")
    p.add_argument("--scaling-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--precision")
    p.add_argument("--max-error", type=float, default=0.01)
    p.add_argument("--latency-ms", type=float)
    p.add_argument("--memory-limit", type=float, default=0.8)
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--html", help="write a self-contained HTML report with plots to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
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
