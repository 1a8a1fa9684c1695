"""What every family's cases use: `raw` (a case calling one tf.raw_ops op),
`rand`, the family registry and the seeded generator each family gets."""

import inspect
import os

import numpy as np
import tensorflow as tf
from argcheck import Case
from tensorflow.python.framework import op_def_registry

SEED = int(os.environ.get("ARGCHECK_SEED", "1617"))
R = tf.raw_ops
IAE = tf.errors.InvalidArgumentError
UNIMP = tf.errors.UnimplementedError
BIG = 2**32 + 1  # an int attribute TensorFlow reads as int32


def raw(op, note="", onednn=None, **kw):
    """A case calling tf.raw_ops.<op>: keyword arguments that are op inputs
    become the case's args (placeholders in graph mode; Python lists become
    int32/float32 constants), the others are attributes. `kernel=` names the
    NPU kernel if it is not `op`; Case fields (npu=, cpu=, graph=, ...) pass
    through.

    onednn: for a float32 case, why TensorFlow's default float32 kernel (a
    oneDNN kernel) cannot be the oracle: the oracle is then the same call in
    float64, TensorFlow's reference (Eigen) kernel, its result cast back."""
    fields = {k: kw.pop(k) for k in list(kw) if k in CASE_FIELDS}
    kernel = kw.pop("kernel", op)
    # tf.raw_ops names some inputs differently from the OpDef (SplitV's
    # split_dim is `axis`): its parameters list the inputs first, in order.
    op_def = op_def_registry.get(op)
    params = list(inspect.signature(getattr(R, op)).parameters)
    inputs = dict(zip(params, op_def.input_arg))
    layout, args, attrs = [], [], {}
    for k, v in kw.items():
        if k not in inputs:
            attrs[k] = v
        elif inputs[k].number_attr or inputs[k].type_list_attr:
            ts = [tf.convert_to_tensor(t) for t in v]
            layout.append((k, len(ts)))
            args.extend(ts)
        else:
            layout.append((k, None))
            args.append(tf.convert_to_tensor(v))

    def call(*a):
        it = iter(a)
        return getattr(R, op)(**{k: ([next(it) for _ in range(n)] if n is not None else next(it)) for k, n in layout}, **attrs)

    shown = ", ".join(f"{k}={_short(v)}" for k, v in kw.items())
    note = f"{note} | {op}({shown})" if note else f"{op}({shown})"
    if onednn and any(a.dtype == tf.float32 for a in args):
        def eigen(*a):
            out = call(*[tf.cast(t, tf.float64) if t.dtype == tf.float32 else t for t in a])
            outs = out if isinstance(out, (list, tuple)) else [out]
            outs = [tf.cast(t, tf.float32) if t.dtype == tf.float64 else t for t in outs]
            return outs if isinstance(out, (list, tuple)) else outs[0]

        eigen.__name__ = "float64, TensorFlow's Eigen kernel"
        fields.setdefault("cpu_fn", eigen)
        note += f" [oneDNN float32 kernel: {onednn}]"
    return Case(kernel, call, note=note, args=tuple(args), **fields)


CASE_FIELDS = {"match", "cpu", "npu", "cpu_fn", "graph", "rtol", "atol"}


def _short(v):
    if isinstance(v, (tf.Tensor, np.ndarray)):
        t = tf.convert_to_tensor(v)
        if t.shape.num_elements() is not None and t.shape.num_elements() <= 8 and t.dtype.is_integer:
            return f"{t.dtype.name}{t.numpy().tolist()}"
        return f"{t.dtype.name}{list(t.shape)}"
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (tf.Tensor, np.ndarray)):
        return "[" + ", ".join(_short(t) for t in v) + "]"
    return repr(v)


def rand(rng, shape, dtype=tf.float32, low=-3, high=3):
    if dtype == tf.bool:
        return tf.constant(rng.random(shape) > 0.5)
    if dtype.is_integer:
        lo = 0 if dtype.is_unsigned else low
        return tf.constant(rng.integers(lo, high + 1, size=shape), dtype)
    return tf.cast(tf.constant(rng.uniform(low, high, size=shape)), dtype)


FAMILIES = {}


def family(fn):
    FAMILIES[fn.__name__.removeprefix("cases_")] = fn
    return fn


def build(name):
    rng = np.random.default_rng([SEED, sorted(FAMILIES).index(name)])
    return FAMILIES[name](rng)
