"""Every TensorFlow and Keras internal that tf_adapter replaces, in one table,
and the version gate.

tf_adapter changes a few private TensorFlow and Keras functions at import
(TensorFlow offers no public hook for what they do: the memory API for a
plugin device, strict placement errors, XLA functions, Keras's choice of
XLA, ...). Private symbols change between releases without notice, so:

- ``PATCHES`` lists each one: where it lives, the parameters the replacement
  relies on, why it is patched, and the versions it was tested with.
- ``import tf_adapter`` on a TensorFlow or Keras outside the supported range
  raises ImportError naming the range. With ``TFA_ALLOW_UNTESTED_TF=1`` it
  warns instead and applies only the patches whose targets exist with the
  expected parameters (the others are skipped, each with a warning).
- Inside the range, a target that is missing or has other parameters is an
  ImportError naming the patch: a broken patch must not fail silently.
- The patching modules (``strict``, ``_jit``, ``_keras``, ...) take their
  original from ``original(name)`` and install through ``replace(name, new)``,
  so nothing is patched that this table does not list.
  ``tests/python/test_compat.py`` checks every target against the installed
  versions.
"""

import importlib
import importlib.metadata
import inspect
import os
import re
import warnings
from dataclasses import dataclass

# [lowest, first unsupported) release; tested with the versions below.
TENSORFLOW_RANGE = ("2.21", "2.22")
KERAS_RANGE = ("3.12", "4")  # TensorFlow 2.21 requires keras>=3.12
TESTED = {"tensorflow": "2.21.0", "keras": "3.15.1"}
# CPython versions TensorFlow 2.21 publishes wheels for (3.10-3.13 on PyPI):
# pyproject's requires-python, the README and pyo3's abi3 floor say the same.
PYTHON_RANGE = ("3.10", "3.14")
ALLOW_UNTESTED = "TFA_ALLOW_UNTESTED_TF"


class CompatWarning(UserWarning):
    """tf_adapter runs on a TensorFlow/Keras it was not tested with
    (``TFA_ALLOW_UNTESTED_TF=1``), or skipped a patch whose target changed."""


@dataclass(frozen=True)
class Patch:
    name: str
    module: str
    attr: str  # "function" or "Class.method"; "*" for a whole module's op wrappers
    params: tuple  # leading parameter names the replacement relies on
    reason: str
    replaced: bool = True  # False: not replaced, but its behaviour is relied on

    @property
    def target(self):
        return f"{self.module}.{self.attr}"


_TF_EXECUTE = ("op_name", "num_outputs", "inputs", "attrs", "ctx", "name")

PATCHES = {
    p.name: p
    for p in [
        Patch("memory.get_memory_info", "tensorflow.python.framework.config", "get_memory_info", ("device",),
              "answer tf.config.experimental.get_memory_info for NPU devices from the plugin's allocator"),
        Patch("memory.reset_memory_stats", "tensorflow.python.framework.config", "reset_memory_stats", ("device",),
              "reset the NPU peak through tf.config.experimental.reset_memory_stats"),
        Patch("memory.user_config_memory_optimizer", "tensorflow.python.eager.context", "Context.config", ("self",),
              "the user's ConfigProto (Context._config, copied by this property) says what the plugin's optimizer "
              "config does, memory optimizer off: else TensorFlow prints its 21-line 'User's config has been "
              "changed' table for every graph", replaced=False),
        Patch("strict.execute", "tensorflow.python.eager.execute", "execute", _TF_EXECUTE,
              "check a tf.function's placement (strict mode, host fallback warnings) before it runs"),
        Patch("strict.quick_execute", "tensorflow.python.eager.execute", "quick_execute", _TF_EXECUTE,
              "same as strict.execute for the fast path"),
        Patch("strict.status_to_exception", "tensorflow.python.eager.core", "_status_to_exception", ("status",),
              "reword TensorFlow's NPU placement errors to name the op and what to do"),
        Patch("memory.op_error_reason", "tensorflow.python.framework.errors_impl", "OpError.__init__",
              ("self", "node_def", "op", "message", "error_code"),
              "put the NPU's out-of-memory reason into TensorFlow's own reasonless allocation errors ('Dst tensor "
              "is not initialized' from its host-to-NPU copies, 'unable to allocate' from receives), which C++ "
              "raises with no Python function in between; the plugin keeps the reason instead of printing it"),
        Patch("strict.input_pipeline", "tensorflow.python.ops.gen_dataset_ops", "*", (),
              "pin tf.data ops to the host in strict mode (Keras builds datasets under the user's device scope)"),
        Patch("strict.input_pipeline_experimental", "tensorflow.python.ops.gen_experimental_dataset_ops", "*", (),
              "as strict.input_pipeline"),
        Patch("strict.input_pipeline_optional", "tensorflow.python.ops.gen_optional_ops", "*", (),
              "as strict.input_pipeline"),
        Patch("host_bookkeeping.create_op_helper", "tensorflow.python.framework.ops",
              "Graph._create_op_helper", ("self", "op"),
              "put TensorList bookkeeping the NPU has no kernel for (DT_VARIANT) on the host when it is created "
              "under an NPU scope, so recurrent layers train with soft placement off"),
        Patch("jit.call_flat", "tensorflow.python.eager.polymorphic_function.atomic_function",
              "AtomicFunction.call_flat", ("self",),
              "run jit_compile=True functions on the NPU without XLA, or on the CPU with XLA"),
        Patch("precision.set_optimizer_experimental_options", "tensorflow.python.framework.config",
              "set_optimizer_experimental_options", ("options",),
              "mirror TensorFlow's auto_mixed_precision switch into the NPU precision pass"),
        Patch("distribute.collective_keys", "tensorflow.python.distribute.mirrored_strategy",
              "MirroredExtended._make_collective_ops_with_fallbacks", ("self",),
              "give each MirroredStrategy over NPUs its own collective key range"),
        Patch("resource_ops.v1_dedup", "tensorflow.python.training.optimizer", "_deduplicate_indexed_slices",
              ("values", "indices"), "run tf.compat.v1 optimizers' duplicate-row sums on the host"),
        Patch("resource_ops.training", "tensorflow.python.ops.gen_training_ops", "*", (),
              "resource-variable optimizer updates on NPU variables as NPU kernels (the variable C API is "
              "not exported)"),
        Patch("resource_ops.variables", "tensorflow.python.ops.gen_resource_variable_ops", "*", (),
              "resource gathers/scatters on NPU variables as NPU kernels"),
        Patch("resource_ops.state", "tensorflow.python.ops.gen_state_ops", "*", (),
              "resource scatter updates on NPU variables as NPU kernels"),
        Patch("resource_ops.array", "tensorflow.python.ops.gen_array_ops", "*", (),
              "strided-slice assignment to NPU variables as NPU kernels"),
        Patch("keras.resolve_auto_jit_compile", "keras.src.trainers.trainer", "Trainer._resolve_auto_jit_compile",
              ("self",), "jit_compile='auto' means no XLA when the only accelerators are NPUs (no XLA NPU backend)"),
        Patch("keras.reduce_per_replica", "keras.src.backend.tensorflow.trainer", "reduce_per_replica",
              ("values", "strategy", "reduction"),
              "average scalar logs over replicas under MultiWorkerMirroredStrategy (keras-team/keras#20585)"),
        Patch("keras.conv", "keras.src.backend.tensorflow.nn", "conv",
              ("inputs", "kernel", "strides", "padding", "data_format", "dilation_rate"),
              "grouped convolutions on the NPU without Keras's XLA wrapper"),
        Patch("keras.optimizer_apply", "keras.src.optimizers.base_optimizer", "BaseOptimizer.apply",
              ("self", "grads", "trainable_variables"), "warn once about float16 training without loss scaling"),
        Patch("keras.loss_scale_apply", "keras.src.optimizers.loss_scale_optimizer", "LossScaleOptimizer.apply",
              ("self", "grads", "trainable_variables"), "mark the inner optimizer's apply as loss-scaled"),
        Patch("keras.loss_scale_init", "keras.src.optimizers.loss_scale_optimizer", "LossScaleOptimizer.__init__",
              ("self", "inner_optimizer"), "mark an optimizer wrapped in a LossScaleOptimizer as loss-scaled"),
    ]
}

_skipped = set()


def _release(version):
    """'2.21.0rc1' -> (2, 21, 0): the numeric release, pre-release tags dropped."""
    out = []
    for part in version.split(".")[:3]:
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
        if m.end() < len(part):
            break
    return tuple(out)


def _in_range(version, lo_hi):
    lo, hi = (_release(v) for v in lo_hi)
    return lo <= _release(version) < hi


def untested_allowed():
    return os.environ.get(ALLOW_UNTESTED, "").strip().lower() in ("1", "true", "yes", "on")


def check_versions(tf_version, keras_version):
    """Raise ImportError (or warn, with TFA_ALLOW_UNTESTED_TF=1) when a version
    is outside the supported range. `keras_version` None: Keras not installed
    (its patches are then never applied)."""
    wrong = []
    if not _in_range(tf_version, TENSORFLOW_RANGE):
        wrong.append(f"TensorFlow {tf_version} (supported: >={TENSORFLOW_RANGE[0]},<{TENSORFLOW_RANGE[1]})")
    if keras_version is not None and not _in_range(keras_version, KERAS_RANGE):
        wrong.append(f"Keras {keras_version} (supported: >={KERAS_RANGE[0]},<{KERAS_RANGE[1]})")
    if not wrong:
        return
    what = " and ".join(wrong)
    if untested_allowed():
        warnings.warn(f"tf_adapter was not tested with {what}; {ALLOW_UNTESTED}=1 is set, so it applies only the "
                      "patches whose targets exist with the expected parameters.", CompatWarning, stacklevel=3)
        return
    raise ImportError(f"tf_adapter {_our_version()} supports {what.replace(' (supported', ', not this one (supported')}. "
                      f"Install a supported version (pip install 'tensorflow>={TENSORFLOW_RANGE[0]},"
                      f"<{TENSORFLOW_RANGE[1]}'), or set {ALLOW_UNTESTED}=1 to try it anyway.")


def _our_version():
    try:
        return importlib.metadata.version("tf_adapter")
    except importlib.metadata.PackageNotFoundError:
        return "(source tree)"


def installed_keras_version():
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        return None


def gate():
    """The version gate, run once by ``import tf_adapter``."""
    import tensorflow as tf

    check_versions(tf.__version__, installed_keras_version())


def _holder_and_attr(patch, module=None):
    """(object holding the attribute, attribute name) of a patch's target;
    `module` when the caller has it (an import hook patching as it loads)."""
    module = module if module is not None else importlib.import_module(patch.module)
    *path, attr = patch.attr.split(".")
    holder = module
    for part in path:
        holder = getattr(holder, part)
    return holder, attr


def problem(name, module=None):
    """Why patch `name` cannot be applied here, or None when it can."""
    patch = PATCHES[name]
    try:
        if patch.attr == "*":
            if module is None:
                importlib.import_module(patch.module)
            return None
        holder, attr = _holder_and_attr(patch, module)
        fn = inspect.getattr_static(holder, attr)
    except (ImportError, AttributeError) as e:
        return f"{patch.target} does not exist ({e})"
    fn = getattr(fn, "_tfa_originals", {}).get(name, fn)  # already patched: check what it replaced
    fn = fn.fget if isinstance(fn, property) else fn
    if not patch.params:
        return None
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError) as e:
        return f"{patch.target} has no inspectable signature ({e})"
    if tuple(params[: len(patch.params)]) != patch.params:
        return f"{patch.target} takes ({', '.join(params)}), expected ({', '.join(patch.params)}, ...)"
    return None


def enabled(name, module=None):
    """May patch `name` be applied? Inside the supported range a changed
    target is an ImportError; with TFA_ALLOW_UNTESTED_TF=1 it is skipped with
    one warning."""
    why = problem(name, module)
    if why is None:
        return True
    patch = PATCHES[name]
    message = (f"tf_adapter cannot apply its patch '{name}' ({patch.reason}): {why}. "
               f"It was tested with TensorFlow {TESTED['tensorflow']} and Keras {TESTED['keras']}.")
    if not untested_allowed():
        raise ImportError(message + f" Set {ALLOW_UNTESTED}=1 to run without it.")
    if name not in _skipped:
        _skipped.add(name)
        warnings.warn(message + " Skipped: what it does is missing.", CompatWarning, stacklevel=3)
    return False


def skipped():
    """Names of the patches skipped on this installation."""
    return sorted(_skipped)


def original(name, module=None):
    """The current value of patch `name`'s target (the function to wrap)."""
    holder, attr = _holder_and_attr(PATCHES[name], module)
    return getattr(holder, attr)


def replace(name, new, module=None):
    """Installs `new` as patch `name`'s target (marked so that a second
    import does not wrap it twice)."""
    holder, attr = _holder_and_attr(PATCHES[name], module)
    current = inspect.getattr_static(holder, attr)
    # One replacement may serve several targets (execute and quick_execute).
    if not hasattr(new, "_tfa_originals"):
        new._tfa_originals = {}
    new._tfa_originals[name] = current
    setattr(holder, attr, new)


def applied(name, module=None):
    """Is patch `name` already installed (a second import, or reload)?"""
    try:
        holder, attr = _holder_and_attr(PATCHES[name], module)
    except (ImportError, AttributeError):
        return False  # the target moved: `enabled` says so
    return name in getattr(inspect.getattr_static(holder, attr, None), "_tfa_originals", {})
