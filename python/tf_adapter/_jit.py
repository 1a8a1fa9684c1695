"""``tf.function(jit_compile=True)`` once tf_adapter is imported.

XLA has no NPU backend, yet TensorFlow places a function on the device of
highest priority, the NPU, and then fails with "No JIT device registered for
NPU", even in code that never asks for the NPU. tf_adapter decides where each
call of an XLA-compiled function runs:

- **It does not ask for the NPU** (no ``tf.device`` scope around the call,
  no variable on an NPU): it is compiled with XLA **on the CPU**, exactly as
  before ``import tf_adapter``; tensor arguments on an NPU are copied over.
- **It asks for the NPU** (an NPU scope around the call, or variables that
  live on an NPU, which XLA on the CPU cannot use): it runs **on the NPU
  without XLA**, through
  tf_adapter's kernels, and tf_adapter warns once per function
  (``tf_adapter.JitWarning``). In strict mode this is an error that says
  what to do instead.
- A scope naming another device (``/CPU:0``, ``/GPU:0``) is left to
  TensorFlow.

This holds for eager calls, for jit functions called from other
``tf.function``s and for the forward/backward functions of their gradients.
``tf.config.optimizer.set_jit(True)`` (auto-clustering) needs nothing: XLA
clusters only ops on devices it can compile for, and NPU ops keep their
kernels.
"""

import re
import sys
import warnings

_XLA = "_XlaMustCompile"
_twins = {}  # name of an XLA function -> its copy without XLA
_warned = set()


class JitWarning(UserWarning):
    """A ``jit_compile=True`` function runs on the NPU without XLA."""


def display_name(fname):
    """``__inference_train_step_42`` -> ``train_step``."""
    name = fname.decode() if isinstance(fname, bytes) else str(fname)
    name = re.sub(r"^(__(inference|forward|backward)_)+", "", name)
    return re.sub(r"(_\d+)+$", "", name)


def _scope_device():
    """The innermost ``tf.device`` scope at the call ('' when none)."""
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops

    if context.executing_eagerly():
        return context.context().device_name or ""
    try:
        specs = ops.get_default_graph()._device_function_stack.peek_objs()
    except AttributeError:  # TensorFlow internals moved: no scope known
        return ""
    for spec in reversed(list(specs)):
        name = getattr(spec, "display_name", None)
        if isinstance(name, str) and name:
            return name
    return ""


def _variable_devices(atomic, args):
    """Devices of the variables the call uses: resource arguments (an eager
    call passes captured variables as arguments) and, when tracing, the
    variables the function's graph captures."""
    from tensorflow.python.framework import dtypes

    out = [getattr(a, "device", "") or "" for a in args if getattr(a, "dtype", None) == dtypes.resource]
    graph = getattr(atomic, "_cached_graph", None)
    for v in getattr(graph, "variables", None) or ():
        out.append(getattr(v, "device", "") or "")
    return out


def route(atomic, args):
    """'cpu' (compile with XLA on the CPU), 'npu' (run on the NPU without
    XLA) or None (leave the call to TensorFlow). Tensor arguments on an NPU
    (every eager tensor made without a scope lives there once tf_adapter is
    imported) are copied to the CPU; variables cannot be, so a function
    that uses NPU variables runs on the NPU."""
    scope = _scope_device().upper()
    if scope:
        return "npu" if "NPU" in scope else None
    if any("NPU" in d.upper() for d in _variable_devices(atomic, args)):
        return "npu"
    return "cpu"


def _user_frame():
    """(file, line) of the first frame outside TensorFlow, Keras and tf_adapter."""
    f = sys._getframe(1)
    while f is not None:
        path = f.f_code.co_filename.replace("\\", "/")
        skip = ("/tensorflow/", "/keras/", "/tf_adapter/", "__autograph_generated", "<frozen")
        if not any(p in path for p in skip):
            return path, f.f_lineno
        f = f.f_back
    return "<unknown>", 0


def _explain(name):
    return (
        f"tf.function '{name}' has jit_compile=True, but XLA has no NPU backend and the call asks for the NPU. "
        "Remove jit_compile=True to run it on the NPU with tf_adapter's kernels, or call it under "
        "tf.device('/CPU:0') (with its variables on the CPU) to compile it with XLA on the CPU."
    )


def _on_npu_without_xla(atomic):
    """The AtomicFunction to call instead: a copy of `atomic`'s FunctionDef
    without the XLA attribute (registered once)."""
    from . import strict

    name = display_name(atomic.name)
    if strict.is_strict():
        import tensorflow as tf

        raise tf.errors.InvalidArgumentError(None, None, _explain(name) + " (strict mode)")
    if name not in _warned:
        _warned.add(name)
        path, line = _user_frame()
        warnings.warn_explicit(
            f"tf_adapter: tf.function '{name}' has jit_compile=True; XLA has no NPU backend, so it runs on the NPU "
            "with tf_adapter's kernels, without XLA. Call it under tf.device('/CPU:0') to compile it with XLA "
            "on the CPU, or remove jit_compile=True to silence this warning.",
            JitWarning,
            path,
            line,
        )
    twin = _twins.get(atomic.name)
    if twin is None:
        from tensorflow.python.eager.polymorphic_function import atomic_function

        fdef = atomic.cached_definition.__deepcopy__({})
        fdef.signature.name = atomic.name.decode() + "_tfa_no_xla"
        fdef.attr[_XLA].b = False
        ctx = atomic._bound_context
        if not ctx.has_function(fdef.signature.name):
            ctx.add_function_def(fdef)
        twin = atomic_function.AtomicFunction(
            fdef.signature.name,
            ctx,
            atomic.function_type,
            children=atomic.children,
            call_options=atomic.call_options,
            cached_graph=getattr(atomic, "_cached_graph", None),
        )
        _twins[atomic.name] = twin
    return twin


def install():
    from tensorflow.python.eager.polymorphic_function import atomic_function
    from tensorflow.python.framework import ops

    from . import _compat

    cls = atomic_function.AtomicFunction
    if getattr(cls, "_tfa_jit_patched", False) or not _compat.enabled("jit.call_flat"):
        return
    orig = _compat.original("jit.call_flat")

    def call_flat(self, *args):
        attr = self.cached_definition.attr.get(_XLA)
        if attr is None or not attr.b:
            return orig(self, *args)
        where = route(self, args)
        if where == "cpu":
            with ops.device("/device:CPU:0"):
                return orig(self, *args)
        if where == "npu":
            return orig(_on_npu_without_xla(self), *args)
        return orig(self, *args)

    _compat.replace("jit.call_flat", call_flat)
    cls._tfa_jit_patched = True
