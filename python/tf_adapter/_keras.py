"""Keras 3 adjustments for NPU devices.

``model.fit``/``evaluate``/``predict`` default to ``jit_compile="auto"``, which
Keras resolves to XLA as soon as the machine has any non-CPU device. There is
no XLA JIT device for NPU ("No JIT device registered for NPU"), so with only
NPUs next to the CPU we resolve "auto" the way Keras does on a CPU-only
machine: no XLA. An explicit ``jit_compile=True`` is left as the user wrote it
and handled like any XLA-compiled tf.function (see ``_jit``: on the CPU with
XLA, or on the NPU without XLA when the model's variables live there).

Keras also wraps grouped 2-D convolutions in ``tf.function(jit_compile=True)``
because TensorFlow's CPU Conv2D lacks groups. The NPU Conv2D has them, so
when the convolution is placed on an NPU (device scope, or tensors already
there) it runs without XLA.

Mixed precision: under the ``mixed_float16`` policy, gradients computed in
float16 underflow to zero without loss scaling. Keras ``compile`` wraps the
optimizer in ``keras.optimizers.LossScaleOptimizer`` itself; a custom
``GradientTape`` loop must do it by hand. When a Keras optimizer that is not
loss-scaled applies gradients while the global policy is ``mixed_float16``,
tf_adapter warns once (``PrecisionWarning``). ``loss_scaling_missing(optimizer)``
answers the same question for checklists.

Keras may be imported after tf_adapter, so each patch is applied when its
module loads (an import hook), or at once if it is already loaded.
"""

import importlib.abc
import importlib.machinery
import sys
import threading
import warnings

from . import _compat

_TRAINER = "keras.src.trainers.trainer"
_TF_TRAINER = "keras.src.backend.tensorflow.trainer"
_TF_NN = "keras.src.backend.tensorflow.nn"


def _only_cpu_and_npu():
    import tensorflow as tf

    return all(d.device_type in ("CPU", "NPU") for d in tf.config.list_physical_devices())


def _patch_trainer(module):
    name = "keras.resolve_auto_jit_compile"
    if _compat.applied(name, module) or not _compat.enabled(name, module):
        return
    orig = _compat.original(name, module)

    def _resolve_auto_jit_compile(self):
        from keras.src import backend

        if backend.backend() == "tensorflow" and _only_cpu_and_npu():
            return False
        return orig(self)

    _compat.replace(name, _resolve_auto_jit_compile, module)


def _npu_requested(*tensors):
    """Is the current device scope, or any of `tensors`, on an NPU?"""
    import tensorflow as tf
    from tensorflow.python.eager import context

    if context.executing_eagerly():
        if "NPU" in (context.context().device_name or "").upper():
            return True
    else:
        try:
            specs = tf.compat.v1.get_default_graph()._device_function_stack.peek_objs()
            names = [getattr(s, "display_name", "") or "" for s in specs]
            if any("NPU" in str(n).upper() for n in names):
                return True
        except AttributeError:  # TensorFlow internals moved: fall back to the tensors
            pass
    for t in tensors:
        dev = getattr(t, "device", "") or getattr(getattr(t, "value", None), "device", "") or ""
        if "NPU" in str(dev).upper():
            return True
    return False


def _patch_tf_nn(module):
    name = "keras.conv"
    if _compat.applied(name, module) or not _compat.enabled(name, module):
        return
    conv = _compat.original(name, module)

    def npu_aware_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        from keras.src import backend

        channels_last = backend.standardize_data_format(data_format) == "channels_last"
        channels = inputs.shape[-1] if channels_last else inputs.shape[1]
        grouped = channels != kernel.shape[-2]
        if len(inputs.shape) == 4 and grouped and _npu_requested(inputs, kernel):
            import tensorflow as tf

            fmt = "NHWC" if channels_last else "NCHW"
            return tf.nn.convolution(inputs, kernel, strides, padding.upper(), data_format=fmt, dilations=dilation_rate)
        return conv(inputs, kernel, strides, padding, data_format, dilation_rate)

    _compat.replace(name, npu_aware_conv, module)


_BASE_OPTIMIZER = "keras.src.optimizers.base_optimizer"
_LOSS_SCALE_OPTIMIZER = "keras.src.optimizers.loss_scale_optimizer"


class PrecisionWarning(UserWarning):
    """A numerically risky mixed-precision set-up, e.g. float16 training
    without loss scaling."""


_precision = {"warned": False}
_applying = threading.local()  # inside a LossScaleOptimizer's apply


def _global_policy_name():
    try:
        from keras import mixed_precision

        return mixed_precision.global_policy().name
    except Exception:  # Keras missing or too old: no policy
        return "float32"


def _is_loss_scale_optimizer(optimizer):
    try:
        from keras.optimizers import LossScaleOptimizer
    except ImportError:
        return False
    return isinstance(optimizer, LossScaleOptimizer)


def loss_scaling_missing(optimizer):
    """True when ``optimizer`` would train float16 gradients without loss
    scaling: the global Keras policy is ``mixed_float16`` and the optimizer
    is neither a ``LossScaleOptimizer`` nor the inner optimizer of one."""
    if _global_policy_name() != "mixed_float16":
        return False
    if _is_loss_scale_optimizer(optimizer) or getattr(optimizer, "_tfa_loss_scaled", False):
        return False
    return not getattr(_applying, "depth", 0)


def _warn_if_unscaled(optimizer):
    if _precision["warned"] or not loss_scaling_missing(optimizer):
        return
    _precision["warned"] = True
    warnings.warn(
        f"{type(optimizer).__name__} applies gradients under the 'mixed_float16' policy without loss "
        "scaling: small float16 gradients underflow to zero. Wrap the optimizer in "
        "keras.optimizers.LossScaleOptimizer (optimizer = keras.optimizers.LossScaleOptimizer(optimizer), "
        "and scale the loss with optimizer.scale_loss(loss) before taking gradients); Keras compile() "
        "does this by itself.",
        PrecisionWarning,
        stacklevel=3,
    )


def _patch_base_optimizer(module):
    name = "keras.optimizer_apply"
    if _compat.applied(name, module) or not _compat.enabled(name, module):
        return
    orig = _compat.original(name, module)

    def apply(self, grads, trainable_variables=None):
        _warn_if_unscaled(self)
        return orig(self, grads, trainable_variables)

    _compat.replace(name, apply, module)


def _patch_loss_scale_optimizer(module):
    names = ("keras.loss_scale_apply", "keras.loss_scale_init")
    if _compat.applied(names[0], module) or not all([_compat.enabled(n, module) for n in names]):
        return
    orig = _compat.original(names[0], module)

    def apply(self, grads, trainable_variables=None):
        # The inner optimizer's apply runs inside: it is loss-scaled.
        inner = getattr(self, "inner_optimizer", None)
        if inner is not None:
            inner._tfa_loss_scaled = True
        _applying.depth = getattr(_applying, "depth", 0) + 1
        try:
            return orig(self, grads, trainable_variables)
        finally:
            _applying.depth -= 1

    _compat.replace(names[0], apply, module)
    orig_init = _compat.original(names[1], module)

    def __init__(self, inner_optimizer, *args, **kwargs):
        orig_init(self, inner_optimizer, *args, **kwargs)
        inner_optimizer._tfa_loss_scaled = True

    _compat.replace(names[1], __init__, module)


def _patch_tf_trainer(module):
    """Keras 3 reduces a multi-worker step's logs with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails on the scalar losses
    and metrics it holds ("Invalid reduction dimension 0 for input with 0
    dimensions", keras-team/keras#20585). Under tf_adapter's
    MultiWorkerMirroredStrategy scalars are averaged over the replicas
    (axis=None), which is what one device reports; other values keep Keras's
    reduction."""
    name = "keras.reduce_per_replica"
    if _compat.applied(name, module) or not _compat.enabled(name, module):
        return
    orig = _compat.original(name, module)

    def reduce_per_replica(values, strategy, reduction):
        from . import distribute

        if (
            reduction in ("auto", "mean")
            and isinstance(strategy, distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode()
        ):
            from keras.src import tree

            def _reduce(v):
                if getattr(v, "shape", None) is not None and v.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return orig(v, strategy, reduction)

            return tree.map_structure(_reduce, values)
        return orig(values, strategy, reduction)

    _compat.replace(name, reduce_per_replica, module)


_PATCHES = {
    _TRAINER: _patch_trainer,
    _TF_TRAINER: _patch_tf_trainer,
    _TF_NN: _patch_tf_nn,
    _BASE_OPTIMIZER: _patch_base_optimizer,
    _LOSS_SCALE_OPTIMIZER: _patch_loss_scale_optimizer,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs a module's patch right after the module executes."""

    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install():
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
