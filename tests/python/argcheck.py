"""Argument-check parity between the NPU kernels and TensorFlow's CPU kernels.

One `Case` is one op call. `check(case)` runs it on /CPU:0 and on /NPU:0
with soft placement off and asserts that

* both succeed with equal results (same dtypes and shapes; values exact for
  integers and bools, `allclose` for floats), or
* both raise the same `tf.errors.OpError` subclass (and, if the case gives
  `match`, both messages match that regular expression);

and that the NPU side really ran on the NPU: its kernel count for
`case.op` went up (`tf_adapter.kernel_counts()`), or it raised from the NPU
kernel's construction (attribute checks), not from placement.

`check(case, graph=True)` runs the same call inside a tf.function whose
tensor arguments (`case.args`) are placeholders of unknown shape, so that
neither shape inference nor constant folding answers for the kernel.

Where the CPU's own kernel cannot be the reference, a case gives its
oracle as `cpu_fn` (see `Case`); a documented, deliberate difference gives
the NPU's outcome as `npu`.

A failure message shows both outcomes (exception class and the first line
of its message, or the result's dtypes and shapes) and the case's note.
"""

import dataclasses
import re
from typing import Callable, Optional

import numpy as np
import tensorflow as tf
import tf_adapter
from tensorflow.python.framework import kernels as _kernels

# Relative tolerances per float dtype (the NPU sums in other orders).
RTOL = {tf.float32: 1e-5, tf.float64: 1e-12, tf.float16: 2e-3, tf.bfloat16: 1.6e-2, tf.complex64: 1e-5}

# Messages of placement failures: the op never reached an NPU kernel.
_PLACEMENT = re.compile(
    r"No registered '.*' OpKernel|Could not satisfy (explicit )?device specification|"
    r"Could not find device for node|no supported kernel for NPU devices|is not supported on NPU",
    re.IGNORECASE,
)


@dataclasses.dataclass
class Raises:
    """An expected outcome: `cls` raised, message matching `match`."""

    cls: type
    match: str = ""


SUCCEEDS = "succeeds"


@dataclasses.dataclass
class Case:
    """One op call: `fn(*args)` on both devices.

    op: the TensorFlow op type whose NPU kernel must run.
    fn: the call; takes `args` (none by default).
    note: what the case is about (shown on failure); "deliberate difference:
        ..." for a documented mismatch, with `npu` giving the NPU outcome.
    args: tensors passed to `fn`; placeholders of unknown shape in graph mode.
    match: a regular expression both error messages must match.
    cpu_fn: the oracle: the call run on the CPU instead of `fn`, where the
        CPU's own kernel for `fn` cannot be the reference (it aborts the
        process, or it is a oneDNN kernel that differs from TensorFlow's
        reference kernel; the note says why). E.g. the same op in float64
        (TensorFlow's Eigen kernel), or NHWC where the CPU lacks NCHW.
    cpu: what `fn` itself does on the CPU (`Raises(...)` or `SUCCEEDS`),
        checked, to document a case with `cpu_fn` or `npu`.
    npu: for a deliberate difference, the NPU's outcome (`Raises(...)` or
        `SUCCEEDS`) instead of the oracle's. With neither `cpu` nor `cpu_fn`,
        the CPU does not run (TensorFlow crashes on some such input).
    graph: False where shape inference rejects the case when a tf.function
        is traced (attribute errors): no kernel runs in graph mode.
    rtol, atol: float tolerances (default: RTOL of the result's dtype).
    """

    op: str
    fn: Callable
    note: str = ""
    args: tuple = ()
    match: Optional[str] = None
    cpu: Optional[object] = None
    npu: Optional[object] = None
    cpu_fn: Optional[Callable] = None
    graph: bool = True
    rtol: Optional[float] = None
    atol: float = 0.0

    def __str__(self):
        return f"{self.op}: {self.note}" if self.note else self.op


@dataclasses.dataclass
class Outcome:
    """What one device did: `values` (a list of numpy arrays with their
    TensorFlow dtypes) or `error` (the exception)."""

    values: Optional[list] = None
    dtypes: Optional[list] = None
    error: Optional[BaseException] = None

    def __str__(self):
        if self.error is not None:
            return f"{type(self.error).__name__}: {first_line(self.error)}"
        parts = [f"{d.name}{list(v.shape)}" for d, v in zip(self.dtypes, self.values)]
        return "ok " + ", ".join(parts)


def first_line(err):
    """The first line of an error's message without TensorFlow's decoration
    (the wrapped function name, `[Op:...]`, node names)."""
    msg = getattr(err, "message", None) or str(err)
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("Graph execution error"):
        # The kernel's message is the line above "[[{{node ...}}]]".
        node = next((i for i, ln in enumerate(lines) if ln.startswith("[[{{node")), len(lines))
        lines = lines[node - 1 : node] if node > 1 else lines[1:]
    line = lines[0] if lines else ""
    line = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", line)
    line = re.sub(r"\s*\[Op:\w+\].*$", "", line)
    return line.strip()[:300]


def _flatten(result):
    if isinstance(result, (list, tuple)):
        out = []
        for r in result:
            out.extend(_flatten(r))
        return out
    return [result]


def _run(fn, args, device, graph):
    try:
        if graph:
            spec = [tf.TensorSpec(None, a.dtype) for a in args]

            def body(*a):
                with tf.device(device):
                    return fn(*a)

            result = tf.function(body, input_signature=spec, autograph=False)(*args)
        else:
            with tf.device(device):
                result = fn(*args)
        tensors = _flatten(result)
        return Outcome(values=[np.asarray(t.numpy()) for t in tensors], dtypes=[t.dtype for t in tensors])
    except (tf.errors.OpError, ValueError, TypeError) as e:
        return Outcome(error=e)


def has_npu_kernel(op):
    return any(k.device_type == "NPU" for k in _kernels.get_registered_kernels_for_op(op).kernel)


def _same_values(npu, cpu, case):
    """None when equal, else why not."""
    if len(npu.values) != len(cpu.values):
        return f"{len(npu.values)} outputs vs {len(cpu.values)}"
    for i, (a, b, da, db) in enumerate(zip(npu.values, cpu.values, npu.dtypes, cpu.dtypes)):
        if da != db or a.shape != b.shape:
            return f"output {i}: {da.name}{list(a.shape)} vs {db.name}{list(b.shape)}"
        if da.is_floating or da.is_complex:
            # Relative to the largest value: sums in another order differ by
            # rounding of the largest terms, not of each result.
            rtol = RTOL.get(da, 1e-6) if case.rtol is None else case.rtol
            wide = np.complex128 if da.is_complex else np.float64
            a64, b64 = a.astype(wide), b.astype(wide)
            finite = np.abs(b64[np.isfinite(b64)])
            atol = case.atol + rtol * (finite.max() if finite.size else 0.0)
            if not np.allclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True):
                bad = np.argwhere(~np.isclose(a64, b64, rtol=rtol, atol=atol, equal_nan=True))
                j = tuple(int(k) for k in bad[0])
                return f"output {i} differs at {list(j)}: {a64[j].item()!r} vs {b64[j].item()!r} ({len(bad)} elements)"
        elif not np.array_equal(a, b):
            bad = np.argwhere(a != b) if a.shape else [()]
            j = tuple(int(k) for k in bad[0])
            return f"output {i} differs at {list(j)}: {a[j].item()!r} vs {b[j].item()!r} ({len(bad)} elements)"
    return None


class Mismatch(AssertionError):
    pass


def _expected(outcome, want):
    """None when `outcome` is `want` (SUCCEEDS or a `Raises`), else why not."""
    if want == SUCCEEDS:
        return None if outcome.error is None else f"expected success, got {outcome}"
    if outcome.error is None:
        return f"expected {want.cls.__name__}, got {outcome}"
    if type(outcome.error) is not want.cls:
        return f"expected {want.cls.__name__}, got {outcome}"
    if want.match and not re.search(want.match, first_line(outcome.error)):
        return f"message does not match {want.match!r}: {outcome}"
    return None


def check(case, graph=False, context=""):
    """Runs `case` on both devices and raises `Mismatch` (an AssertionError)
    with both outcomes when they differ. `context` (a seed, an index) is
    added to the message. Returns the NPU outcome."""
    was_soft = tf.config.get_soft_device_placement()
    tf.config.set_soft_device_placement(False)
    try:
        before = tf_adapter.kernel_counts().get(case.op, 0)
        npu = _run(case.fn, case.args, "/NPU:0", graph)
        ran = tf_adapter.kernel_counts().get(case.op, 0) > before
        # A deliberate difference that documents no CPU outcome does not run
        # the CPU (TensorFlow crashes on some of them).
        skip_cpu = case.npu is not None and case.cpu is None and case.cpu_fn is None
        oracle = None if skip_cpu else _run(case.cpu_fn or case.fn, case.args, "/CPU:0", graph)
        plain = oracle if case.cpu_fn is None else None
        if case.cpu is not None and plain is None:
            plain = _run(case.fn, case.args, "/CPU:0", graph)
    finally:
        tf.config.set_soft_device_placement(was_soft)

    mode = "graph" if graph else "eager"
    head = f"[{mode}] {case}" + (f" ({context})" if context else "")

    def fail(why):
        lines = [head, f"  {why}"]
        if case.cpu_fn is not None:
            lines.append(f"  CPU oracle ({case.cpu_fn.__name__}): {oracle}")
        if plain is not None:
            lines.append(f"  CPU: {plain}")
        lines.append(f"  NPU: {npu}")
        raise Mismatch("\n".join(lines))

    # Did the NPU side run on the NPU?
    if not ran:
        if npu.error is None:
            fail(f"the NPU kernel for {case.op} did not run")
        placement = _PLACEMENT.search(str(npu.error)) or not has_npu_kernel(case.op)
        if not isinstance(npu.error, tf.errors.OpError) or placement:
            fail(f"the error did not come from the NPU kernel for {case.op}")

    if case.cpu is not None:
        why = _expected(plain, case.cpu)
        if why:
            fail("the CPU no longer does what the case documents: " + why)

    if case.npu is not None:  # a documented, deliberate difference
        why = _expected(npu, case.npu)
        if why:
            fail("deliberate difference no longer as documented: " + why)
        return npu

    if (npu.error is None) != (oracle.error is None):
        fail("one device succeeded, the other raised")
    if npu.error is not None:
        if type(npu.error) is not type(oracle.error):
            fail("different exception classes")
        if case.match:
            for side, o in (("CPU", oracle), ("NPU", npu)):
                if not re.search(case.match, first_line(o.error)):
                    fail(f"{side} message does not match {case.match!r}")
        return npu
    why = _same_values(npu, oracle, case)
    if why:
        fail(why)
    return npu


def check_all(cases, graph=False, context=""):
    """Checks every case; one AssertionError listing every mismatch."""
    failures = []
    for i, case in enumerate(cases):
        if graph and not case.graph:
            continue
        try:
            check(case, graph=graph, context=f"{context}case {i}".strip())
        except Mismatch as e:
            failures.append(str(e))
    if failures:
        raise AssertionError(f"{len(failures)} of {len(cases)} cases differ:\n" + "\n".join(failures))
