"""Resource-variable ops on NPU variables, composed from ops the NPU has.

Why Python: a kernel that reads or updates a resource variable needs
TensorFlow's variable C API (``tensorflow/c/kernels_experimental.h``:
``TF_GetInputTensorFromVariable``, ``TF_AssignVariable``,
``TF_MaybeLockVariableInputMutexesInOrder``, ...). TensorFlow 2.21's wheel
does not export it from any of its shared libraries, so a plugin kernel
cannot touch a variable. TensorFlow registers DEVICE_DEFAULT kernels (which
the NPU gets) only for VarHandleOp, ReadVariableOp, AssignVariableOp,
AssignAdd/SubVariableOp, VarIsInitializedOp, DestroyResourceOp and int32
ResourceGather. Every other op on a variable living on the NPU fails at
placement, even with soft placement, because resource ops must run where the
variable lives.

So the generated Python wrappers TensorFlow calls at run time
(``gen_resource_variable_ops.resource_gather``,
``gen_training_ops.resource_apply_adam``, ... and their ``tf.raw_ops``
entries) are replaced by functions that, when the variable lives on an NPU,
do the same update as ReadVariableOp -> NPU math -> AssignVariableOp,
following the formulas of TensorFlow's CPU kernels (training_ops.cc) so
results agree to float rounding. Variables on other devices keep
TensorFlow's own kernels.

These ops are declared in the op table as Python composites
(``tfa_ops::composites``; docs/ops.md lists them), and the table decides
where each step runs: the scatter step of the scatter ops, of sliced
assignment and of the sparse training ops runs on the variable's NPU when
the table has a kernel for it at that dtype (TensorScatterUpdate/Add/Sub,
which apply repeated indices in order as the CPU does), else explicitly on
``/CPU:0`` (TensorScatterMin/Max, TensorStridedSliceUpdate), so it also
works with soft placement off; small integer index bookkeeping stays on the
host. Sparse updates, scatter mul/div and gathers read rows with GatherV2
and compute on the NPU.
Duplicate indices are applied one after another, in order, as TensorFlow's
CPU kernels do. ``use_locking`` is accepted but the read-compute-assign
sequence is not one atomic kernel: inside one tf.function TensorFlow orders
the ops on a variable, but steps running concurrently on the same variable
(e.g. Hogwild-style threads) may interleave.
"""

import contextlib
import functools
import sys

from . import _training_rules as _rules

_INSTALLED = False
_COMPOSITES = {}  # snake-case op name -> composite
_CPU = "/device:CPU:0"


def _tf():
    import tensorflow as tf

    return tf


# ---------------------------------------------------------------- placement


def _device_of(t, depth=0):
    """The device of a resource handle. Inside a tf.function the handle is a
    placeholder capturing an outer tensor, and the placeholder's own device
    is the device scope at capture time, not the variable's: the captured
    tensor (recursively, for nested functions) decides."""
    graph = getattr(t, "graph", None)  # EagerTensor: None
    if graph is not None and depth < 32:
        for ext, internal in getattr(graph, "captures", ()) or ():
            if internal is t:
                return _device_of(ext, depth + 1)
    return getattr(t, "device", "") or ""


def _npu_count():
    from . import _device

    return len(_device.devices())


def _on_npu(handle):
    dev = _device_of(handle)
    if dev:
        return "NPU" in dev.upper()
    return _npu_count() > 0


def _handle(x):
    """A resource handle tensor from a handle or a variable (not converted
    when it already is a tensor: converting captures it into the current
    graph under the current device scope)."""
    from tensorflow.python.framework import dtypes, ops, tensor
    from tensorflow.python.ops import resource_variable_ops

    if isinstance(x, resource_variable_ops.BaseResourceVariable):
        return x.handle
    if isinstance(x, tensor.Tensor):
        return x
    return ops.convert_to_tensor(x, dtypes.resource)


def _var_dtype(handle, *tensors):
    from tensorflow.python.framework import dtypes
    from tensorflow.python.ops import resource_variable_ops

    try:
        data = resource_variable_ops.get_eager_safe_handle_data(handle)
        if data is not None and data.is_set and data.shape_and_type:
            dt = dtypes.as_dtype(data.shape_and_type[0].dtype)
            if dt != dtypes.variant:
                return dt
    except Exception:  # pragma: no cover - TensorFlow internals moved
        pass
    for t in tensors:
        if hasattr(t, "dtype") and not isinstance(t, (int, float)):
            return dtypes.as_dtype(t.dtype)
    return dtypes.as_dtype(_tf().convert_to_tensor(tensors[0]).dtype)


# ------------------------------------------------------------------ helpers

_KERNEL_TYPES = {}  # op type -> dtype names of its NPU kernel (type attribute T)


def npu_kernel(op_type, dtype):
    """Does the op table have an NPU kernel for `op_type` at `dtype`?"""
    if not _KERNEL_TYPES:
        from . import _native

        for name, _family, _summary, types in _native.op_table():
            _KERNEL_TYPES[name] = set(types.get("T", ()))
    return dtype.name in _KERNEL_TYPES.get(op_type, ())


@contextlib.contextmanager
def _kernel_device(h, op_type, dtype):
    """Place the enclosed `op_type` on the variable's NPU when the table has a
    kernel for it at `dtype`, else on the host."""
    from tensorflow.python.framework import ops

    dev = _device_of(h)
    if dev and "NPU" in dev.upper() and npu_kernel(op_type, dtype):
        with ops.colocate_with(None, ignore_existing=True), ops.device(dev):
            yield
    else:
        with _host():
            yield


@contextlib.contextmanager
def _host():
    """Place the enclosed ops on the host CPU, also inside a colocation
    scope (v1 optimizers build updates under ``colocate_with(var)``)."""
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops

    if context.executing_eagerly():
        with ops.device(_CPU):
            yield
    else:
        with ops.colocate_with(None, ignore_existing=True), ops.device(_CPU):
            yield


def _read(h, dtype):
    from tensorflow.python.ops import gen_resource_variable_ops as g

    return g.read_variable_op(h, dtype)


def _assign(h, value):
    from tensorflow.python.ops import gen_resource_variable_ops as g

    return g.assign_variable_op(h, value)


def _finish(ops_, scope):
    """What a generated wrapper of an op with no outputs returns: None
    eagerly, the Operation in a graph."""
    from tensorflow.python.eager import context
    from tensorflow.python.ops import control_flow_ops

    if context.executing_eagerly():
        return None
    return control_flow_ops.group(*[o for o in ops_ if o is not None], name=scope)


class _Step:
    """An int64 step count (AdagradDA's global_step), cast to the variable
    dtype on the host."""

    def __init__(self, value):
        self.value = value


def _scalars(dtype, *xs):
    tf = _tf()
    out = []
    for x in xs:
        if isinstance(x, _Step):
            with _host():
                out.append(tf.cast(tf.convert_to_tensor(x.value, tf.int64), dtype))
        else:
            out.append(tf.convert_to_tensor(x, dtype=dtype))
    return out


def _composite(op_name, default_name):
    """Register `fn(name_scope, *args, **kwargs)` as the composite of `op_name`."""

    def register(fn):
        @functools.wraps(fn)
        def composite(*args, name=None, **kwargs):
            from tensorflow.python.framework import ops

            with ops.name_scope(name, default_name) as scope:
                return fn(scope, *args, **kwargs)

        composite._tfa_op = default_name
        _COMPOSITES[op_name] = composite
        return composite

    return register


# --------------------------------------------------------- gather / scatter


@_composite("resource_gather", "ResourceGather")
def _resource_gather(scope, resource, indices, dtype, batch_dims=0, validate_indices=True):
    from tensorflow.python.ops import gen_array_ops

    h = _handle(resource)
    return gen_array_ops.gather_v2(_read(h, dtype), indices, batch_dims, batch_dims=batch_dims, name=scope)


@_composite("resource_gather_nd", "ResourceGatherNd")
def _resource_gather_nd(scope, resource, indices, dtype):
    """GatherNd as GatherV2 on the table flattened over the indexed dims: a
    flat index of -1 (any component out of range) makes GatherV2 raise."""
    tf = _tf()
    h = _handle(resource)
    params = _read(h, dtype)
    indices = tf.convert_to_tensor(indices)
    if indices.dtype not in (tf.int32, tf.int64):
        indices = tf.cast(indices, tf.int64)
    k = indices.shape[-1]
    if k is None:
        raise ValueError("ResourceGatherNd on an NPU variable needs a static last dimension of indices")
    with _host():  # index arithmetic (small, integer): host
        pshape = tf.shape(params, out_type=indices.dtype)
        dims = pshape[:k]
        ones = tf.ones([1], indices.dtype)
        strides = tf.math.cumprod(tf.concat([dims[1:], ones], 0), reverse=True)
        flat = tf.reduce_sum(indices * strides, axis=-1)
        valid = tf.reduce_all((indices >= 0) & (indices < dims), axis=-1)
        flat = tf.where(valid, flat, -tf.ones_like(flat))
        new_shape = tf.concat([[-1], pshape[k:]], 0)
    table = tf.reshape(params, new_shape)
    return tf.gather(table, flat, name=scope)


def _scatter_rows(h, dtype, indices, updates, kind):
    """New value of the variable after a row scatter (on the NPU where the
    table has the TensorScatter kernel, else on the host)."""
    tf = _tf()
    value = _read(h, dtype)
    with _host():
        indices = tf.convert_to_tensor(indices)
        updates = tf.convert_to_tensor(updates, dtype=dtype)
        full = tf.concat([tf.shape(indices, out_type=tf.int64), tf.shape(value, out_type=tf.int64)[1:]], 0)
        updates = tf.broadcast_to(updates, full)
        idx = tf.expand_dims(indices, -1)
    fn = {
        "add": tf.tensor_scatter_nd_add,
        "sub": tf.tensor_scatter_nd_sub,
        "update": tf.tensor_scatter_nd_update,
        "min": tf.tensor_scatter_nd_min,
        "max": tf.tensor_scatter_nd_max,
    }[kind]
    with _kernel_device(h, "TensorScatter" + kind.capitalize(), dtype):
        return fn(value, idx, updates)


def _scatter_composite(kind, camel):
    @_composite("resource_scatter_" + kind, "ResourceScatter" + camel)
    def scatter(scope, resource, indices, updates):
        h = _handle(resource)
        dtype = _var_dtype(h, updates)
        if kind in ("mul", "div"):
            # no TensorScatterMul: the rows are multiplied on the NPU, in
            # rounds over duplicate indices (sequential, as on the CPU)
            tf = _tf()
            with _host():
                indices = tf.convert_to_tensor(indices)
                row_shape = tf.shape(_read(h, dtype), out_type=tf.int64)[1:]
                full = tf.concat([tf.shape(indices, out_type=tf.int64), row_shape], 0)
                updates = tf.broadcast_to(tf.convert_to_tensor(updates, dtype=dtype), full)
                updates = tf.reshape(updates, tf.concat([[-1], row_shape], 0))
                indices = tf.reshape(indices, [-1])
            if kind == "mul":
                op = lambda rows, u: [rows[0] * u]  # noqa: E731
            else:
                op = lambda rows, u: [rows[0] / u]  # noqa: E731
            return _finish(_sparse([h], dtype, updates, indices, [], op), scope)
        return _finish([_assign(h, _scatter_rows(h, dtype, indices, updates, kind))], scope)

    return scatter


for _kind in ("add", "sub", "mul", "div", "min", "max", "update"):
    _scatter_composite(_kind, _kind.capitalize())


def _scatter_nd_composite(kind, camel):
    @_composite("resource_scatter_nd_" + kind, "ResourceScatterNd" + camel)
    def scatter_nd(scope, ref, indices, updates, use_locking=True, bad_indices_policy=""):
        from tensorflow.python.ops import gen_array_ops

        tf = _tf()
        h = _handle(ref)
        dtype = _var_dtype(h, updates)
        value = _read(h, dtype)
        with _host():
            updates = tf.convert_to_tensor(updates, dtype=dtype)
        with _kernel_device(h, "TensorScatter" + kind.capitalize(), dtype):
            fn = getattr(gen_array_ops, "tensor_scatter_" + kind)
            new = fn(value, indices, updates, bad_indices_policy=bad_indices_policy)
        return _finish([_assign(h, new)], scope)

    return scatter_nd


for _kind in ("add", "sub", "update", "min", "max"):
    _scatter_nd_composite(_kind, _kind.capitalize())


@_composite("resource_strided_slice_assign", "ResourceStridedSliceAssign")
def _resource_strided_slice_assign(scope, ref, begin, end, strides, value, **masks):
    """``variable[...].assign(value)``: TensorStridedSliceUpdate (on the host
    unless the table gains an NPU kernel for it)."""
    from tensorflow.python.ops import gen_array_ops

    tf = _tf()
    h = _handle(ref)
    dtype = _var_dtype(h, value)
    current = _read(h, dtype)
    with _kernel_device(h, "TensorStridedSliceUpdate", dtype):
        new = gen_array_ops.tensor_strided_slice_update(
            current, begin, end, strides, tf.convert_to_tensor(value, dtype=dtype), **masks
        )
    return _finish([_assign(h, new)], scope)


# ------------------------------------------------------------ training ops
#
# Each `_apply_*` takes the current values and returns the new ones; the
# dense op assigns them to the whole variables, the sparse op applies the
# same update to the rows `indices` (gathered on the NPU, scattered back on
# the host). Formulas and evaluation order follow training_ops.cc (CPU).


def _dense(scope, handles, new_values):
    return _finish([_assign(h, v) for h, v in zip(handles, new_values) if v is not None], scope)


def _run(scope, var_handles, grad, indices, scalars, update):
    """Read the variables, apply `update` and write the results back: whole
    variables, or (sparse) the rows `indices`."""
    tf = _tf()
    hs = [_handle(v) for v in var_handles]
    dtype = _var_dtype(hs[0], grad, *[x for x in scalars if not isinstance(x, _Step)])
    sc = _scalars(dtype, *scalars)
    grad = tf.convert_to_tensor(grad, dtype=dtype)
    if indices is None:
        news = update([_read(h, dtype) for h in hs], grad, *sc)
        return _dense(scope, hs, news)
    return _finish(_sparse(hs, dtype, grad, indices, sc, update), scope)


def _occurrences(indices):
    """For each position, how many earlier positions hold the same index;
    and the number of rounds (1 + the largest count). Host ops."""
    tf = _tf()
    n = tf.size(indices)
    uniq, pos = tf.unique(indices)
    order = tf.argsort(pos, stable=True)
    sorted_pos = tf.gather(pos, order)
    starts = tf.math.unsorted_segment_min(tf.range(n), sorted_pos, tf.size(uniq))
    occ_sorted = tf.range(n) - tf.gather(starts, sorted_pos)
    occ = tf.scatter_nd(tf.expand_dims(order, -1), occ_sorted, [n])
    rounds = tf.maximum(tf.reduce_max(occ) + 1, 0)
    return occ, rounds


def _sparse(hs, dtype, grad, indices, sc, update):
    """The sparse update in rounds: round r applies the r-th occurrence of
    every index, so duplicate indices are applied one after another in order,
    exactly as TensorFlow's CPU kernels do. Without duplicates (the v1
    optimizers deduplicate first) there is one round. Rows are gathered and
    updated on the NPU and scattered back where the table has a
    TensorScatterUpdate kernel for the dtype (the NPU), else on the host."""
    tf = _tf()
    from tensorflow.python.eager import context

    with _host():
        indices = tf.convert_to_tensor(indices)
        occ, rounds = _occurrences(indices)

    def one_round(r, deps=()):
        with _host():
            sel = tf.reshape(tf.where(tf.equal(occ, r)), [-1])
            idx = tf.gather(indices, sel)
        with tf.control_dependencies(deps):
            values = [_read(h, dtype) for h in hs]
        rows = [tf.gather(v, idx) for v in values]
        news = update(rows, tf.gather(grad, sel), *sc)
        with _host():
            idx2 = tf.expand_dims(idx, -1)
        with _kernel_device(hs[0], "TensorScatterUpdate", dtype):
            outs = [None if n is None else tf.tensor_scatter_nd_update(v, idx2, n) for v, n in zip(values, news)]
        return [_assign(h, o) for h, o in zip(hs, outs) if o is not None]

    if context.executing_eagerly():
        for r in range(int(rounds)):
            one_round(tf.constant(r, occ.dtype))
        return []

    def body(r):
        assigns = one_round(r, [r])
        with tf.control_dependencies(assigns):
            return r + 1

    with _host():
        r0 = tf.constant(0, occ.dtype)
    loop = tf.while_loop(lambda r: r < rounds, body, [r0])
    return [loop.op if hasattr(loop, "op") else loop]


def _apply(op_name, camel, update_for, handles, scalars, sparse=False):
    """Register a training op. `handles`, `scalars`: argument names; the
    gradient is `grad` (or `delta`), `update_for(kwargs)` builds the update."""
    grad_name = "delta" if "delta" in _ORDER[op_name] else "grad"

    @_composite(op_name, camel)
    def apply(scope, *args, **kwargs):
        bound = dict(zip(_ORDER[op_name], args))
        bound.update(kwargs)
        upd = update_for(bound)
        return _run(
            scope,
            [bound[h] for h in handles],
            bound[grad_name],
            bound.get("indices") if sparse else None,
            [_Step(bound[s]) if s == "global_step" else bound[s] for s in scalars],
            upd,
        )

    return apply


# Positional argument order of each op (as in the generated wrappers).
_ORDER = {}


def _training_table():
    """(op name, CamelName, variable handles, scalars, update builder, sparse)."""
    return [
        ("resource_apply_gradient_descent", "ResourceApplyGradientDescent", ["var"], ["alpha"], lambda k: _rules.gd, False),
        ("resource_apply_momentum", "ResourceApplyMomentum", ["var", "accum"], ["lr", "momentum"],
         lambda k: _rules.momentum(k.get("use_nesterov", False)), False),
        ("resource_apply_keras_momentum", "ResourceApplyKerasMomentum", ["var", "accum"], ["lr", "momentum"],
         lambda k: _rules.keras_momentum(k.get("use_nesterov", False)), False),
        ("resource_apply_adam", "ResourceApplyAdam", ["var", "m", "v"],
         ["beta1_power", "beta2_power", "lr", "beta1", "beta2", "epsilon"],
         lambda k: _rules.adam(k.get("use_nesterov", False)), False),
        ("resource_apply_adam_with_amsgrad", "ResourceApplyAdamWithAmsgrad", ["var", "m", "v", "vhat"],
         ["beta1_power", "beta2_power", "lr", "beta1", "beta2", "epsilon"], lambda k: _rules.amsgrad, False),
        ("resource_apply_ada_max", "ResourceApplyAdaMax", ["var", "m", "v"],
         ["beta1_power", "lr", "beta1", "beta2", "epsilon"], lambda k: _rules.ada_max, False),
        ("resource_apply_adagrad", "ResourceApplyAdagrad", ["var", "accum"], ["lr"],
         lambda k: _rules.adagrad(k.get("update_slots", True)), False),
        ("resource_apply_adagrad_v2", "ResourceApplyAdagradV2", ["var", "accum"], ["lr", "epsilon"],
         lambda k: _rules.adagrad_v2(k.get("update_slots", True)), False),
        ("resource_apply_rms_prop", "ResourceApplyRMSProp", ["var", "ms", "mom"], ["lr", "rho", "momentum", "epsilon"],
         lambda k: _rules.rms_prop, False),
        ("resource_apply_centered_rms_prop", "ResourceApplyCenteredRMSProp", ["var", "mg", "ms", "mom"],
         ["lr", "rho", "momentum", "epsilon"], lambda k: _rules.centered_rms_prop, False),
        ("resource_apply_adadelta", "ResourceApplyAdadelta", ["var", "accum", "accum_update"], ["lr", "rho", "epsilon"],
         lambda k: _rules.adadelta, False),
        ("resource_apply_ftrl", "ResourceApplyFtrl", ["var", "accum", "linear"], ["lr", "l1", "l2", "lr_power"],
         lambda k: _rules.ftrl(k.get("multiply_linear_by_lr", False)), False),
        ("resource_apply_ftrl_v2", "ResourceApplyFtrlV2", ["var", "accum", "linear"],
         ["lr", "l1", "l2", "l2_shrinkage", "lr_power"],
         lambda k: _rules.ftrl(k.get("multiply_linear_by_lr", False), shrinkage=True), False),
        ("resource_apply_proximal_gradient_descent", "ResourceApplyProximalGradientDescent", ["var"],
         ["alpha", "l1", "l2"], lambda k: _rules.proximal_gd, False),
        ("resource_apply_proximal_adagrad", "ResourceApplyProximalAdagrad", ["var", "accum"], ["lr", "l1", "l2"],
         lambda k: _rules.proximal_adagrad, False),
        ("resource_apply_add_sign", "ResourceApplyAddSign", ["var", "m"], ["lr", "alpha", "sign_decay", "beta"],
         lambda k: _rules.add_sign, False),
        ("resource_apply_power_sign", "ResourceApplyPowerSign", ["var", "m"], ["lr", "logbase", "sign_decay", "beta"],
         lambda k: _rules.power_sign, False),
        ("resource_apply_adagrad_da", "ResourceApplyAdagradDA",
         ["var", "gradient_accumulator", "gradient_squared_accumulator"], ["lr", "l1", "l2", "global_step"],
         lambda k: _rules.adagrad_da, False),
        ("resource_sparse_apply_adagrad_da", "ResourceSparseApplyAdagradDA",
         ["var", "gradient_accumulator", "gradient_squared_accumulator"], ["lr", "l1", "l2", "global_step"],
         lambda k: _rules.sparse_adagrad_da, True),
        ("resource_sparse_apply_momentum", "ResourceSparseApplyMomentum", ["var", "accum"], ["lr", "momentum"],
         lambda k: _rules.momentum(k.get("use_nesterov", False)), True),
        ("resource_sparse_apply_keras_momentum", "ResourceSparseApplyKerasMomentum", ["var", "accum"],
         ["lr", "momentum"], lambda k: _rules.keras_momentum(k.get("use_nesterov", False)), True),
        ("resource_sparse_apply_adagrad", "ResourceSparseApplyAdagrad", ["var", "accum"], ["lr"],
         lambda k: _rules.adagrad(k.get("update_slots", True), sparse=True), True),
        ("resource_sparse_apply_adagrad_v2", "ResourceSparseApplyAdagradV2", ["var", "accum"], ["lr", "epsilon"],
         lambda k: _rules.adagrad_v2(k.get("update_slots", True), sparse=True), True),
        ("resource_sparse_apply_rms_prop", "ResourceSparseApplyRMSProp", ["var", "ms", "mom"],
         ["lr", "rho", "momentum", "epsilon"], lambda k: _rules.rms_prop, True),
        ("resource_sparse_apply_centered_rms_prop", "ResourceSparseApplyCenteredRMSProp", ["var", "mg", "ms", "mom"],
         ["lr", "rho", "momentum", "epsilon"], lambda k: _rules.centered_rms_prop, True),
        ("resource_sparse_apply_adadelta", "ResourceSparseApplyAdadelta", ["var", "accum", "accum_update"],
         ["lr", "rho", "epsilon"], lambda k: _rules.adadelta, True),
        ("resource_sparse_apply_ftrl_v2", "ResourceSparseApplyFtrlV2", ["var", "accum", "linear"],
         ["lr", "l1", "l2", "l2_shrinkage", "lr_power"],
         lambda k: _rules.ftrl(k.get("multiply_linear_by_lr", False), shrinkage=True), True),
        ("resource_sparse_apply_proximal_gradient_descent", "ResourceSparseApplyProximalGradientDescent", ["var"],
         ["alpha", "l1", "l2"], lambda k: _rules.proximal_gd, True),
        ("resource_sparse_apply_proximal_adagrad", "ResourceSparseApplyProximalAdagrad", ["var", "accum"],
         ["lr", "l1", "l2"], lambda k: _rules.proximal_adagrad, True),
        ("resource_sparse_apply_ftrl", "ResourceSparseApplyFtrl", ["var", "accum", "linear"],
         ["lr", "l1", "l2", "lr_power"], lambda k: _rules.ftrl(k.get("multiply_linear_by_lr", False)), True),
    ]


# ------------------------------------------------------------------ install


def _first_handle(args, kwargs):
    if args:
        return args[0]
    for key in ("resource", "ref", "var"):
        if key in kwargs:
            return kwargs[key]
    return None


def _dispatching(orig, composite, op_name):
    @functools.wraps(orig)
    def wrapper(*args, **kwargs):
        h = _first_handle(args, kwargs)
        try:
            npu = h is not None and _on_npu(_handle(h))
        except Exception:
            npu = False
        if npu:
            return composite(*args, **kwargs)
        return orig(*args, **kwargs)

    wrapper._tfa_patched = True
    wrapper._tfa_original = orig
    return wrapper


def _raw_dispatching(orig_raw, composite):
    def raw(**kwargs):
        h = _first_handle((), kwargs)
        try:
            npu = h is not None and _on_npu(_handle(h))
        except Exception:
            npu = False
        if npu:
            return composite(**kwargs)
        return orig_raw(**kwargs)

    functools.update_wrapper(raw, orig_raw)
    raw._tfa_patched = True
    raw._tfa_original = orig_raw
    return raw


def _replace_everywhere(replacements):
    """Point every loaded TensorFlow module attribute bound to an original
    at its replacement (``from gen_x import *`` copies the binding into other
    modules; ``tf.raw_ops`` and ``tf.compat.v1.raw_ops`` hold their own).
    `replacements`: attribute name -> (original, new). One pass over the
    module dicts: no ``__getattr__`` hooks run, and it stays fast."""
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith("tensorflow"):
            continue
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        for attr, (orig, new) in replacements.items():
            if d.get(attr) is orig:
                setattr(mod, attr, new)


def _patch_v1_dedup():
    """tf.compat.v1 optimizers sum duplicate sparse-gradient rows
    (Unique + UnsortedSegmentSum) under ``colocate_with(var)``; the NPU has
    no Unique kernel, so for an NPU variable the colocation makes placement
    fail. Run that step on the host explicitly."""
    from . import _compat

    name = "resource_ops.v1_dedup"
    if _compat.applied(name) or not _compat.enabled(name):
        return
    orig = _compat.original(name)

    @functools.wraps(orig)
    def dedup(values, indices):
        with _host():
            return orig(values, indices)

    _compat.replace(name, dedup)


def install():
    global _INSTALLED
    if _INSTALLED:
        return
    _patch_v1_dedup()
    import inspect

    from tensorflow.python.ops import gen_array_ops, gen_resource_variable_ops, gen_state_ops, gen_training_ops

    from . import _compat

    families = {
        "resource_ops.variables": gen_resource_variable_ops,
        "resource_ops.state": gen_state_ops,
        "resource_ops.training": gen_training_ops,
        "resource_ops.array": gen_array_ops,
    }
    modules = tuple(m for patch, m in families.items() if _compat.enabled(patch))
    for op_name, camel, handles, scalars, update_for, sparse in _training_table():
        orig = getattr(gen_training_ops, op_name, None) if gen_training_ops in modules else None
        if orig is None:
            continue
        _ORDER[op_name] = [p for p in inspect.signature(orig).parameters if p != "name"]
        _apply(op_name, camel, update_for, handles, scalars, sparse)

    tf = _tf()
    replacements = {}
    for op_name, composite in _COMPOSITES.items():
        orig = next((getattr(m, op_name) for m in modules if hasattr(m, op_name)), None)
        if orig is None or getattr(orig, "_tfa_patched", False):
            continue
        replacements[op_name] = (orig, _dispatching(orig, composite, op_name))
        camel = composite._tfa_op
        orig_raw = getattr(tf.raw_ops, camel, None)
        if orig_raw is not None and not getattr(orig_raw, "_tfa_patched", False):
            replacements[camel] = (orig_raw, _raw_dispatching(orig_raw, composite))
    _replace_everywhere(replacements)
    _INSTALLED = True
