"""Strict mode and host-fallback warnings.

Default: an op that asks for the NPU but has no NPU kernel runs on the host
(TensorFlow's soft placement), and tf_adapter logs one warning per op type
the first time a ``tf.function`` containing it is called on an NPU.

Strict mode (``tf_adapter.set_strict(True)`` or ``TFA_STRICT=1`` at import)
turns that into an error naming the op type, the node and, where one is
known, a supported formulation::

    Op type 'Lgamma' (node 'model/lgamma') is not supported on NPU ...

It checks every ``tf.function`` called on an NPU before it runs (ops placed
inside it by a ``tf.device("/NPU:...")`` scope, or by the scope around the
call), and switches TensorFlow's soft placement off so single eager ops fail
too; TensorFlow's placement errors about the NPU are reworded the same way.
"""

import os
import re
import warnings

from . import _native
from .coverage import CPU_REQUESTED, FALLBACK, UNSUPPORTED, dtype_text, graph_nodes, placement_of

_state = {"strict": False}
_checked = {}  # function name -> list of problems
_warned = set()


class HostFallbackWarning(UserWarning):
    """An op placed on the NPU runs on the host: the NPU has no kernel for it."""


def set_strict(enabled=True):
    """Strict mode on or off. On: an op that asks for the NPU but has no NPU
    kernel raises an error naming the op type, the node and a supported
    formulation where one is known, instead of running on the host; every
    ``tf.function`` called on an NPU is checked before it runs, and
    TensorFlow's soft placement is switched off. Same as ``TFA_STRICT=1``
    at import. (``tf_adapter.strict`` has the details.)"""
    import tensorflow as tf

    _state["strict"] = bool(enabled)
    tf.config.set_soft_device_placement(not enabled)
    _checked.clear()


def is_strict():
    """Is strict mode on (``set_strict``, ``TFA_STRICT``)?"""
    return _state["strict"]


def unsupported_message(op_type, node, detail=""):
    alt = _native.alternatives().get(op_type)
    msg = f"Op type '{op_type}' (node '{node}') is not supported on NPU"
    msg += f": {detail}." if detail else "."
    if alt:
        msg += f" Supported formulation: {alt}."
    else:
        msg += " Run it on the host with tf.device('/CPU:0'), or turn strict mode off to let TensorFlow fall back."
    return msg


def _problems(fdef_name, ctx, call_on_npu, seen):
    """(op type, node, placement, dtypes) of nodes that ask for the NPU but
    cannot run there."""
    if fdef_name in seen:
        return []
    seen.add(fdef_name)
    try:
        fdef = ctx.get_function_def(fdef_name)
    except Exception:
        return []
    out = []
    for node in fdef.node_def:
        for attr in ("f", "then_branch", "else_branch", "body", "cond"):
            if attr in node.attr and node.attr[attr].func.name:
                out += _problems(node.attr[attr].func.name, ctx, call_on_npu or "NPU" in node.device.upper(), seen)
        wants_npu = "NPU" in node.device.upper() or (call_on_npu and not node.device)
        if not wants_npu:
            continue
        placement, _ = placement_of(node)
        if placement in (FALLBACK, UNSUPPORTED) and placement != CPU_REQUESTED:
            out.append((node.op, node.name, placement, dtype_text(node)))
    return out


# Ops that only convert or pass their input on: when one of these and a
# computing op both lack a kernel (tf.signal.fft2d(tf.cast(x, tf.complex128))),
# the computing op is what the user has to change, so it is named first.
_GLUE_OPS = frozenset(
    "Cast Identity IdentityN Const Reshape Squeeze ExpandDims Bitcast StopGradient Pack Unpack "
    "ConcatV2 Transpose Complex Real Imag".split()
)


def _compute_first(problems):
    return sorted(problems, key=lambda p: p[0] in _GLUE_OPS)


def _detail(placement, dtypes):
    if placement == UNSUPPORTED:
        return "no kernel on any device here"
    return f"it has no NPU kernel for {dtypes}" if dtypes else "it has no NPU kernel for these dtypes"


def strict_error_message(function, problems):
    """Strict mode's error for a function: every op it cannot run on the NPU,
    the computing ops first (the first line names one op, as for a single op)."""
    problems = _compute_first(problems)
    op, node, placement, dtypes = problems[0]
    msg = unsupported_message(op, node, _detail(placement, dtypes))
    if len(problems) > 1:
        msg += f"\ntf.function '{function}' has {len(problems)} ops the NPU cannot run (all of them, computing ops first):"
        for op, node, placement, dtypes in problems:
            line = f"\n  {op} (node '{node}'{', ' + dtypes if dtypes else ''}): {_detail(placement, dtypes)}"
            alt = _native.alternatives().get(op)
            msg += line + (f"; supported formulation: {alt}" if alt else "")
    return msg


def _check_function(name, ctx):
    device = ctx.device_name or ""
    key = (name, "NPU" in device.upper())
    if key not in _checked:
        _checked[key] = _problems(name, ctx, key[1], set())
    problems = _checked[key]
    if not problems:
        return
    if _state["strict"]:
        import tensorflow as tf

        from ._jit import display_name

        raise tf.errors.InvalidArgumentError(None, None, strict_error_message(display_name(name), problems))
    for op, node, _, dtypes in _compute_first(problems):
        if op not in _warned:
            _warned.add(op)
            from ._jit import _user_frame

            # Pointed at the user's line: the call that ran the function, not
            # the TensorFlow frame that executes it.
            path, line = _user_frame()
            warnings.warn_explicit(
                f"tf_adapter: op type '{op}' (node '{node}'{', ' + dtypes if dtypes else ''}) runs on the host: "
                "the NPU has no kernel for it. Set TFA_STRICT=1 or tf_adapter.set_strict(True) to make this an error.",
                HostFallbackWarning,
                path,
                line,
            )


_EAGER = re.compile(r"Could not satisfy device specification '[^']*NPU[^']*'.*\[Op:(\w+)\](?: name: (\S*))?", re.S)
_GRAPH = re.compile(r"Cannot assign a device for operation ([^:]+): Could not satisfy explicit device specification '[^']*NPU[^']*'.*?\nOp: (\w+)", re.S)


def reword(message):
    """TensorFlow's NPU placement error in tf_adapter's words (or None)."""
    m = _GRAPH.search(message)
    if m:
        node, op = m.group(1), m.group(2)
    else:
        m = _EAGER.search(message)
        if not m:
            return None
        op, node = m.group(1), m.group(2) or m.group(1)
    return unsupported_message(op, node, "no NPU kernel for it") + "\n\nTensorFlow said: " + message


# What TensorFlow says when an allocation it made itself on the NPU failed
# (a host-to-NPU copy, a receive): the reason is not in it.
_ALLOCATION_FAILED = ("Dst tensor is not initialized", "unable to allocate", "OOM when allocating")


def _message_with_oom_reason(message):
    """`message` led by the pending NPU out-of-memory reason when it is one
    of TensorFlow's reasonless allocation errors (None otherwise). Takes the
    pending reason either way, so that a later error does not get a stale one."""
    try:
        reason = _native.take_oom_message()
    except Exception:  # never let building an error fail
        return None
    if reason is None or not isinstance(message, str) or reason in message:
        return None
    if not any(p in message for p in _ALLOCATION_FAILED):
        return None
    return f"{reason}\n\nTensorFlow said: {message}"


def _pin_input_pipeline_to_host():
    """tf.data ops run on the host with every device, but Keras ``fit``
    builds its dataset under the user's ``tf.device`` scope: with soft
    placement off (strict mode) they would fail on the NPU. Their Python
    wrappers take TensorFlow's C fast path, so wrap them at the module level."""
    import functools

    from tensorflow.python.framework import ops
    from tensorflow.python.ops import gen_dataset_ops, gen_experimental_dataset_ops, gen_optional_ops

    def pinned(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            if _state["strict"]:
                with ops.device("/device:CPU:0"):
                    return fn(*args, **kwargs)
            return fn(*args, **kwargs)

        return call

    from . import _compat

    families = {
        "strict.input_pipeline": gen_dataset_ops,
        "strict.input_pipeline_experimental": gen_experimental_dataset_ops,
        "strict.input_pipeline_optional": gen_optional_ops,
    }
    for patch, module in families.items():
        if not _compat.enabled(patch):
            continue
        for name, fn in list(vars(module).items()):
            if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "") == module.__name__:
                setattr(module, name, pinned(fn))


def install():
    from . import _compat

    if _compat.applied("strict.execute"):
        return
    patches = ("strict.execute", "strict.quick_execute", "strict.status_to_exception")
    if not all([_compat.enabled(p) for p in patches]):
        return
    orig_execute = _compat.original("strict.execute")
    orig_to_exception = _compat.original("strict.status_to_exception")

    def execute_checked(op_name, num_outputs, inputs, attrs, ctx, name=None):
        fname = op_name.decode() if isinstance(op_name, bytes) else op_name
        if fname.startswith("__inference") or ctx.has_function(fname):
            _check_function(fname, ctx)
        return orig_execute(op_name, num_outputs, inputs, attrs, ctx, name)

    def status_to_exception(status):
        e = orig_to_exception(status)
        new = reword(getattr(e, "message", "") or "")
        if new is not None:
            return type(e)(None, None, new)
        return e

    _pin_input_pipeline_to_host()
    if _compat.enabled("memory.op_error_reason"):
        orig_init = _compat.original("memory.op_error_reason")

        def op_error_init(self, node_def, op, message, error_code, *args):
            message = _message_with_oom_reason(message) or message
            orig_init(self, node_def, op, message, error_code, *args)

        _compat.replace("memory.op_error_reason", op_error_init)
    _compat.replace("strict.execute", execute_checked)
    _compat.replace("strict.quick_execute", execute_checked)
    _compat.replace("strict.status_to_exception", status_to_exception)
    if os.environ.get("TFA_STRICT", "").strip().lower() in ("1", "true", "yes", "on"):
        set_strict(True)
    elif os.environ.get("TFA_STRICT", "").strip().lower() not in ("", "0", "false", "no", "off"):
        raise ImportError(f"tf_adapter: invalid configuration: TFA_STRICT='{os.environ['TFA_STRICT']}': expected 1/true/yes/on or 0/false/no/off")
