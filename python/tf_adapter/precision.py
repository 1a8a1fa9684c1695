"""Precision modes and the mixed-precision op lists.

TensorFlow's own ``auto_mixed_precision`` grappler pass never rewrites nodes
placed on a plugin device, so tf_adapter implements precision itself:

``must_keep_origin_dtype`` (default)
    Every op computes in its graph dtype, as TensorFlow CPU does.
``force_fp32``
    float16/bfloat16 ops compute in float32 (inside a ``tf.function`` the
    activations between NPU ops also stay float32): the fix for a Keras
    mixed-policy model that loses accuracy.
``allow_fp32_to_bf16`` / ``allow_fp32_to_fp16``
    float32 matrix ops (the *allow* list: MatMul, BatchMatMul, Einsum, Conv2D,
    depthwise and their gradients) multiply in bfloat16/float16 with float32
    accumulation and float32 output; everything else stays float32.
``allow_mix_precision_bf16`` / ``allow_mix_precision_fp16``
    Automatic mixed precision: allow-list ops run in low precision, *infer*
    ops follow low-precision inputs, *clear* ops pass any dtype, *deny* ops
    (exp, log, softmax, reductions, losses) stay float32; variables stay
    float32. ``allow_mix_precision`` is the backend's preferred type
    (bfloat16 on ``host``). In eager execution each allow-list op is wrapped
    as if in casts; inside a ``tf.function`` the graph is rewritten.

TensorFlow's switch, as the migration guides write it, also works:
``tf.config.optimizer.set_experimental_options({"auto_mixed_precision": False})``
turns every automatic mode off (results equal ``must_keep_origin_dtype``) and
wins over ``set_precision_mode``; ``True`` keeps a requested mixed mode and
otherwise selects ``allow_mix_precision``.

A ``tf.function`` is rewritten when TensorFlow first runs it: set the mode
before the first call (functions already run keep theirs).
"""

import json
import os

from tf_adapter_cli import PRECISION_MODES as MODES  # declared beside the command line, which lists them

from . import _native

LISTS = ("allow", "infer", "clear", "deny")


def set_precision_mode(name):
    """Selects the precision mode (one of ``MODES``) for every NPU."""
    if not isinstance(name, str):
        raise TypeError(f"precision mode must be a string, got {type(name).__name__}")
    _native.set_precision_mode(name)


def get_precision_mode():
    """The precision mode in force (after TensorFlow's ``auto_mixed_precision``
    option, when the user set it)."""
    return _native.precision_mode()[0]


def get_mixlist():
    """The mixed-precision lists: ``{"allow"|"infer"|"clear"|"deny": [op types]}``.
    Ops on no list keep their dtype (deny ops also keep the infer/clear ops
    they feed in float32)."""
    return {k: sorted(v) for k, v in _native.mixlist().items()}


def set_mixlist(spec=None):
    """Edits the mixed-precision lists, starting from the defaults.

    ``spec`` is a path to a JSON file or a dict of the same form::

        {"allow": {"add": ["Conv3D"], "remove": ["BatchMatMulV2"]},
         "deny":  {"add": ["Tanh"]}}

    An op added to a list leaves any other list; a removed op is on no list
    (never low precision). ``None`` restores the defaults.
    """
    if spec is None:
        _native.set_mixlist([], True)
        return
    if isinstance(spec, (str, os.PathLike)):
        try:
            with open(spec, encoding="utf-8") as f:
                spec = json.load(f)
        except OSError as e:
            raise ValueError(f"cannot read mixlist file {spec}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"mixlist file {spec} is not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise ValueError('a mixlist is a JSON object such as {"allow": {"add": ["MatMul"]}}')
    edits = []
    for name, change in spec.items():
        if name not in LISTS:
            raise ValueError(f"unknown mixlist '{name}': expected one of {', '.join(LISTS)}")
        if not isinstance(change, dict) or set(change) - {"add", "remove"}:
            raise ValueError(f'mixlist "{name}" must be {{"add": [...], "remove": [...]}}')
        for action in ("remove", "add"):
            ops = change.get(action, [])
            if isinstance(ops, str) or not all(isinstance(o, str) for o in ops):
                raise ValueError(f'mixlist "{name}"."{action}" must be a list of op types')
            edits.extend((name, action, op) for op in ops)
    _native.set_mixlist(edits, True)


def precision_class(op_type):
    """The list (allow/infer/clear/deny) ``op_type`` is on; ``deny`` also
    for an op on no list (never made low precision, though unlike a deny op it
    does not hold the ops it feeds in float32; docs/ops.md shows it as —)."""
    return _native.precision_class(op_type)


def compute_dtype(op_type, dtype):
    """The dtype ``op_type`` with graph dtype ``dtype`` computes in on the NPU
    under the mode in force, per kernel call."""
    import tensorflow as tf

    return _native.compute_dtype(op_type, tf.as_dtype(dtype).name)


def _patch_tf_switch():
    """Mirrors TensorFlow's ``auto_mixed_precision`` option into tf_adapter."""
    from tensorflow.python.framework import config as tf_config

    from . import _compat

    name = "precision.set_optimizer_experimental_options"
    if _compat.applied(name) or not _compat.enabled(name):
        return
    orig = _compat.original(name)

    def set_optimizer_experimental_options(options):
        orig(options)
        if "auto_mixed_precision" in options:
            value = options["auto_mixed_precision"]
            _native.set_tf_auto_mixed_precision(None if value is None else bool(value))

    set_optimizer_experimental_options.__doc__ = orig.__doc__
    _compat.replace(name, set_optimizer_experimental_options)
    import tensorflow as tf

    for mod in (tf.config.optimizer, getattr(tf.compat.v1.config, "optimizer", None)):
        if mod is not None and getattr(mod, "set_experimental_options", None) is orig:
            mod.set_experimental_options = set_optimizer_experimental_options
    current = tf_config.get_optimizer_experimental_options().get("auto_mixed_precision")
    if current is not None:
        _native.set_tf_auto_mixed_precision(bool(current))


def install():
    """Applies ``TFA_PRECISION_MODE`` / ``TFA_MIXLIST`` and TensorFlow's switch."""
    mode = os.environ.get("TFA_PRECISION_MODE")
    if mode:
        try:
            set_precision_mode(mode)
        except ValueError as e:
            raise ValueError(f"TFA_PRECISION_MODE: {e}") from None
    path = os.environ.get("TFA_MIXLIST")
    if path:
        try:
            set_mixlist(path)
        except ValueError as e:
            raise ValueError(f"TFA_MIXLIST: {e}") from None
    _patch_tf_switch()
