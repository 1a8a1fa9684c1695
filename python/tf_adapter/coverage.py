"""Coverage report: which ops of a model run on the NPU, before running it.

``tf_adapter.coverage(fn_or_model, *example_inputs)`` traces the function (a
Keras model, a ``tf.function`` or a plain Python function) and decides for
every node, from TensorFlow's kernel registry, where it will run:

- ``NPU``: a tf_adapter kernel, or TensorFlow's own device-agnostic kernel
  for the NPU (int32 shape arithmetic, Const, Identity-like ops);
- ``host fallback``: only a CPU kernel exists, so TensorFlow's soft placement
  runs it on the host (and copies its inputs and outputs);
- ``unsupported``: no kernel on any device here;
- ``CPU (requested)``: the node asks for the CPU explicitly;
- ``host (input pipeline)``: tf.data iterator ops (e.g. in Keras ``fit``),
  which run on the host with every TensorFlow device.

Function-call and graph-structure nodes (arguments, results, NoOp, calls)
are not ops that run on a device and are left out.
"""

import collections
import dataclasses

from . import _native

# Nodes that structure the graph rather than compute on a device.
_STRUCTURAL = {
    "Placeholder", "_Arg", "_Retval", "NoOp", "PartitionedCall", "StatefulPartitionedCall",
    "If", "StatelessIf", "While", "StatelessWhile", "Case", "StatelessCase",
    "_DeviceArg", "_DeviceRetval",
}

NPU, FALLBACK, UNSUPPORTED, CPU_REQUESTED = "NPU", "host fallback", "unsupported", "CPU (requested)"
# tf.data ops inside a train function (Keras `fit`): the input pipeline runs
# on the host with every TensorFlow device, GPUs included; not a fallback.
HOST_INPUT = "host (input pipeline)"
_INPUT_PIPELINE_WORDS = ("Dataset", "Iterator", "SeedGenerator", "MemoryCache")


def is_input_pipeline(op_type):
    return op_type.startswith("Optional") or any(w in op_type for w in _INPUT_PIPELINE_WORDS)


@dataclasses.dataclass
class OpCoverage:
    op_type: str
    placement: str
    count: int
    dtypes: list
    nodes: list
    kernel: str  # "tf_adapter", "TensorFlow" or "" (none on the NPU)
    alternative: str = ""

    def to_dict(self):
        return dataclasses.asdict(self)


class CoverageReport:
    """Per op type: where it runs, how many nodes, their dtypes and names."""

    def __init__(self, ops):
        order = {NPU: 0, FALLBACK: 1, UNSUPPORTED: 2, CPU_REQUESTED: 3, HOST_INPUT: 4}
        self.ops = sorted(ops, key=lambda o: (order[o.placement], o.op_type))

    def _with(self, placement):
        return [o for o in self.ops if o.placement == placement]

    @property
    def on_npu(self):
        return self._with(NPU)

    @property
    def fallback(self):
        return self._with(FALLBACK)

    @property
    def unsupported(self):
        return self._with(UNSUPPORTED)

    @property
    def fully_on_npu(self):
        return not self.fallback and not self.unsupported

    def counts(self):
        c = collections.Counter()
        for o in self.ops:
            c[o.placement] += o.count
        return dict(c)

    def to_dict(self):
        return {
            "fully_on_npu": self.fully_on_npu,
            "nodes": self.counts(),
            "ops": [o.to_dict() for o in self.ops],
        }

    def __str__(self):
        total = sum(o.count for o in self.ops)
        npu = sum(o.count for o in self.on_npu)
        lines = [f"tf_adapter coverage: {npu}/{total} nodes on the NPU ({len(self.ops)} op types)"]
        lines.append(f"{'op type':<28} {'where':<16} {'nodes':>5}  dtypes")
        for o in self.ops:
            lines.append(f"{o.op_type:<28} {o.placement:<16} {o.count:>5}  {','.join(o.dtypes)}")
            if o.placement in (FALLBACK, UNSUPPORTED):
                lines.append(f"{'':<28}   e.g. node '{o.nodes[0]}'")
                if o.alternative:
                    lines.append(f"{'':<28}   supported formulation: {o.alternative}")
        return "\n".join(lines)

    __repr__ = __str__


_kernel_cache = {}


def _kernels(op_type):
    if op_type not in _kernel_cache:
        from tensorflow.python.framework import kernels

        try:
            _kernel_cache[op_type] = list(kernels.get_registered_kernels_for_op(op_type).kernel)
        except Exception:  # an op type unknown to this TensorFlow
            _kernel_cache[op_type] = []
    return _kernel_cache[op_type]


def _matches(kernel, node):
    for c in kernel.constraint:
        allowed = set(c.allowed_values.list.type)
        if c.name not in node.attr or not allowed:
            continue
        attr = node.attr[c.name]
        types = list(attr.list.type) if attr.HasField("list") else [attr.type]
        if any(t not in allowed for t in types):
            return False
    return True


def _dtypes(node):
    from tensorflow.python.framework import dtypes

    out = set()
    for name in ("T", "dtype", "SrcT", "DstT", "Tparams"):
        if name in node.attr and node.attr[name].type:
            try:
                out.add(dtypes.as_dtype(node.attr[name].type).name)
            except TypeError:
                pass
    return out


def placement_of(node):
    """(placement, kernel source) of one NodeDef."""
    if "CPU" in node.device.upper():
        return CPU_REQUESTED, ""
    ks = [k for k in _kernels(node.op) if _matches(k, node)]
    if any(k.device_type == "NPU" for k in ks):
        return NPU, "tf_adapter"
    if any(k.device_type == "DEFAULT" for k in ks):
        return NPU, "TensorFlow"
    if is_input_pipeline(node.op):
        return HOST_INPUT, ""
    if any(k.device_type == "CPU" for k in ks):
        return FALLBACK, ""
    return UNSUPPORTED, ""


def _concrete(fn_or_model, example_inputs):
    import tensorflow as tf

    if hasattr(fn_or_model, "get_concrete_function"):
        return fn_or_model.get_concrete_function(*example_inputs)
    is_keras = hasattr(fn_or_model, "layers") and hasattr(fn_or_model, "predict")
    if is_keras:
        model = fn_or_model
        args = example_inputs[0] if len(example_inputs) == 1 else list(example_inputs)
        return tf.function(lambda x: model(x, training=False)).get_concrete_function(args)
    return tf.function(fn_or_model).get_concrete_function(*example_inputs)


def graph_nodes(graph_def):
    """Every NodeDef of a GraphDef, function bodies included."""
    yield from graph_def.node
    for f in graph_def.library.function:
        yield from f.node_def


def coverage(fn_or_model, *example_inputs):
    """Traces ``fn_or_model`` with ``example_inputs`` (tensors or
    ``tf.TensorSpec``) and reports where each op type runs."""
    concrete = _concrete(fn_or_model, example_inputs)
    alternatives = _native.alternatives()
    groups = {}
    for node in graph_nodes(concrete.graph.as_graph_def()):
        if node.op in _STRUCTURAL:
            continue
        placement, kernel = placement_of(node)
        key = (node.op, placement)
        g = groups.setdefault(key, OpCoverage(node.op, placement, 0, set(), [], kernel, alternatives.get(node.op, "")))
        g.count += 1
        g.dtypes |= _dtypes(node)
        g.nodes.append(node.name)
    for g in groups.values():
        g.dtypes = sorted(g.dtypes)
    return CoverageReport(list(groups.values()))
