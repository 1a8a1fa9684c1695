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
  which run on the host with every TensorFlow device;
- ``host (variant bookkeeping)``: TensorList ops on element types TensorFlow
  has no device-agnostic kernel for (the boolean mask list of a masked
  recurrent layer), ``ZerosLike`` of a TensorList (the zero gradients of a
  recurrent layer's while loop) and ``AddN`` of TensorLists (the sum of two
  list gradients): TensorFlow's C API cannot give a plugin kernels on
  ``DT_VARIANT``, so tf_adapter puts them on the host (``_host_bookkeeping``
  says why that is sound); strict mode allows them.

Each NPU op also lists the dtypes it computes in under the precision mode in
force (``compute_dtypes``): e.g. a float32 MatMul under ``allow_fp32_to_bf16``
multiplies in bfloat16.

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
HOST_BOOKKEEPING = "host (variant bookkeeping)"
_DT_VARIANT = 21  # types.proto


def is_input_pipeline(op_type):
    return op_type.startswith("Optional") or any(w in op_type for w in _INPUT_PIPELINE_WORDS)


def may_be_variant_bookkeeping(op_type):
    """Cheap first test (the op type alone) for `is_variant_bookkeeping`."""
    return op_type.startswith("TensorList") or op_type in ("EmptyTensorList", "ZerosLike", "AddN")


def is_variant_bookkeeping(node):
    """A TensorList op, or a ZerosLike or AddN of TensorLists (NodeDef
    `node`), that has no kernel for the NPU: kept on the host rather than
    counted as a fallback (see `_host_bookkeeping`)."""
    if not may_be_variant_bookkeeping(node.op):
        return False
    if node.op in ("ZerosLike", "AddN") and node.attr["T"].type != _DT_VARIANT:
        return False
    ks = [k for k in _kernels(node.op) if _matches(k, node)]
    return not any(k.device_type in ("NPU", "DEFAULT") for k in ks) and any(k.device_type == "CPU" for k in ks)


@dataclasses.dataclass
class OpCoverage:
    op_type: str
    placement: str
    count: int
    dtypes: list
    nodes: list
    kernel: str  # "tf_adapter", "TensorFlow" or "" (none on the NPU)
    alternative: str = ""
    compute_dtypes: list = dataclasses.field(default_factory=list)

    def to_dict(self):
        return dataclasses.asdict(self)


class CoverageReport:
    """Per op type: where it runs, how many nodes, their dtypes and names;
    ``fused``: the groups of NPU ops tf_adapter's fusion pass turns into one
    ``_TfaFused`` op (``{"node", "ops"}``: the group's output node and the
    op types it replaces), as seen in the traced graph."""

    def __init__(self, ops, precision_mode="must_keep_origin_dtype", fused=()):
        self.precision_mode = precision_mode
        self.fused = [dict(f) for f in fused]
        order = {NPU: 0, FALLBACK: 1, UNSUPPORTED: 2, CPU_REQUESTED: 3, HOST_INPUT: 4, HOST_BOOKKEEPING: 5}
        self.ops = sorted(ops, key=lambda o: (order[o.placement], o.op_type))

    def _with(self, placement):
        return [o for o in self.ops if o.placement == placement]

    @property
    def on_npu(self):
        """The op types that run on the NPU (``OpCoverage`` rows)."""
        return self._with(NPU)

    @property
    def fallback(self):
        """The op types that would run on the host by soft placement (only a
        CPU kernel exists); strict mode makes each an error."""
        return self._with(FALLBACK)

    @property
    def unsupported(self):
        """The op types with no kernel on any device here."""
        return self._with(UNSUPPORTED)

    @property
    def fully_on_npu(self):
        """True when nothing falls back to the host and nothing is unsupported."""
        return not self.fallback and not self.unsupported

    def counts(self):
        """Nodes per placement: ``{"NPU": n, "host fallback": m, ...}``."""
        c = collections.Counter()
        for o in self.ops:
            c[o.placement] += o.count
        return dict(c)

    def to_dict(self):
        """The report as plain data (the checklist's JSON ``coverage``)."""
        return {
            "fully_on_npu": self.fully_on_npu,
            "precision_mode": self.precision_mode,
            "nodes": self.counts(),
            "ops": [o.to_dict() for o in self.ops],
            "fused": self.fused,
        }

    def fusion_patterns(self):
        """{"Conv2D+BiasAdd+Relu": count, ...} over the fused groups."""
        return dict(collections.Counter("+".join(f["ops"]) for f in self.fused))

    def __str__(self):
        total = sum(o.count for o in self.ops)
        npu = sum(o.count for o in self.on_npu)
        lines = [
            f"tf_adapter coverage: {npu}/{total} nodes on the NPU ({len(self.ops)} op types),"
            f" precision mode {self.precision_mode}"
        ]
        lines.append(f"{'op type':<28} {'where':<16} {'nodes':>5}  dtypes")
        for o in self.ops:
            dt = ",".join(o.dtypes)
            if o.compute_dtypes and o.compute_dtypes != o.dtypes:
                dt += f" (computes in {','.join(o.compute_dtypes)})"
            lines.append(f"{o.op_type:<28} {o.placement:<16} {o.count:>5}  {dt}")
            if o.placement in (FALLBACK, UNSUPPORTED):
                lines.append(f"{'':<28}   e.g. node '{o.nodes[0]}'")
                if o.alternative:
                    lines.append(f"{'':<28}   supported formulation: {o.alternative}")
        if self.fused:
            replaced = sum(len(f["ops"]) for f in self.fused)
            lines.append(f"fused on the NPU: {len(self.fused)} _TfaFused ops replace {replaced} nodes (TFA_FUSION=0 turns this off)")
            for pattern, n in sorted(self.fusion_patterns().items(), key=lambda kv: -kv[1]):
                lines.append(f"  {n:>4} x {pattern}")
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

    def name(t):
        try:
            return dtypes.as_dtype(t).name
        except TypeError:
            return None

    out = {name(node.attr[a].type) for a in ("T", "dtype", "SrcT", "DstT", "Tparams") if a in node.attr and node.attr[a].type}
    if not out:
        # Ops whose data type attribute has another name (FFT's Tcomplex,
        # Bincount's T on one argument only...): the type attributes that
        # the OpDef's arguments are typed by.
        from tensorflow.python.framework import op_def_registry

        op_def = op_def_registry.get(node.op)
        for arg in list(op_def.input_arg) + list(op_def.output_arg) if op_def else []:
            if arg.type_attr and arg.type_attr in node.attr:
                out.add(name(node.attr[arg.type_attr].type))
            elif arg.type_list_attr and arg.type_list_attr in node.attr:
                out |= {name(t) for t in node.attr[arg.type_list_attr].list.type}
    return out - {None}


def dtype_text(node):
    """The dtypes of one node for messages: 'float32 -> complex64' for a
    Cast, 'complex64' or 'float32,int32' otherwise."""
    from tensorflow.python.framework import dtypes

    if node.op == "Cast" and node.attr["SrcT"].type and node.attr["DstT"].type:
        return f"{dtypes.as_dtype(node.attr['SrcT'].type).name} -> {dtypes.as_dtype(node.attr['DstT'].type).name}"
    return ",".join(sorted(_dtypes(node)))


# Ops TensorFlow replaces before placement (ParallelConcatRemovePass): where
# they run is where their replacements run, each given the op's type as its
# type attribute.
_REWRITTEN_BEFORE_PLACEMENT = {
    "ParallelConcat": (("_ParallelConcatStart", "dtype"), ("_ParallelConcatUpdate", "T")),
}


def _replacement(node, op, type_attr):
    from tensorflow.core.framework import node_def_pb2

    n = node_def_pb2.NodeDef(name=node.name, op=op, device=node.device)
    if "T" in node.attr:
        n.attr[type_attr].CopyFrom(node.attr["T"])
    return n


def placement_of(node):
    """(placement, kernel source) of one NodeDef."""
    if is_variant_bookkeeping(node):
        return HOST_BOOKKEEPING, ""
    if "CPU" in node.device.upper():
        return CPU_REQUESTED, ""
    if node.op in _REWRITTEN_BEFORE_PLACEMENT:
        parts = [placement_of(_replacement(node, op, a)) for op, a in _REWRITTEN_BEFORE_PLACEMENT[node.op]]
        return next((p for p in parts if p[0] != NPU), parts[0])
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


def _type_attr(node):
    """The dtype (TensorFlow enum) a node computes in: its ``T``, or a Cast's
    destination; 0 when it has none."""
    for name in ("T", "DstT"):
        if name in node.attr and node.attr[name].type:
            return node.attr[name].type
    return 0


def _graph_dtypes(nodes, placements):
    """{node name: dtype name} after the precision graph pass for the nodes of
    one graph (the pass changes dtypes inside a ``tf.function`` under the
    mixed and force_fp32 modes)."""
    from tensorflow.python.framework import dtypes

    paint = getattr(_native, "amp_paint", None)
    if paint is None:
        return {}
    index = {n.name: i for i, n in enumerate(nodes)}
    inputs = []
    for n in nodes:
        srcs = [index.get(i.split(":")[0]) for i in n.input if not i.startswith("^")]
        inputs.append([s for s in srcs if s is not None])
    painted = paint(
        [n.op for n in nodes],
        [placements[n.name] == NPU for n in nodes],
        [_type_attr(n) for n in nodes],
        inputs,
    )
    return {n.name: dtypes.as_dtype(t).name for n, t in zip(nodes, painted) if t}


def coverage(fn_or_model, *example_inputs):
    """Traces ``fn_or_model`` with ``example_inputs`` (tensors or
    ``tf.TensorSpec``) and reports where each op type runs and, on the NPU,
    which dtypes it computes in under the precision mode in force."""
    from .precision import get_precision_mode

    concrete = _concrete(fn_or_model, example_inputs)
    alternatives = _native.alternatives()
    graph_def = concrete.graph.as_graph_def()
    top = list(graph_def.node)
    placements = {n.name: placement_of(n) for n in top}
    painted = _graph_dtypes(top, {k: v[0] for k, v in placements.items()})
    groups = {}
    body_nodes = [n for f in graph_def.library.function for n in f.node_def]
    for k, node in enumerate(top + body_nodes):
        if node.op in _STRUCTURAL:
            continue
        placement, kernel = placements[node.name] if k < len(top) else placement_of(node)
        key = (node.op, placement)
        g = groups.setdefault(key, OpCoverage(node.op, placement, 0, set(), [], kernel, alternatives.get(node.op, "")))
        g.count += 1
        node_dtypes = _dtypes(node)
        g.dtypes |= node_dtypes
        g.nodes.append(node.name)
        if placement == NPU and kernel == "tf_adapter":
            graph_dtype = painted.get(node.name) if k < len(top) else None
            if graph_dtype is None and "T" in node.attr and node.attr["T"].type:
                from tensorflow.python.framework import dtypes

                graph_dtype = dtypes.as_dtype(node.attr["T"].type).name
            if graph_dtype is not None:
                g.compute_dtypes.append(_native.compute_dtype(node.op, graph_dtype))
            else:
                g.compute_dtypes.extend(node_dtypes)
    for g in groups.values():
        g.dtypes = sorted(g.dtypes)
        g.compute_dtypes = sorted(set(g.compute_dtypes))
    npu_nodes = sorted(name for name, (where, _) in placements.items() if where == NPU)
    fused = [{"node": node, "ops": list(ops)} for node, ops in _native.fusion_groups(graph_def.SerializeToString(), npu_nodes)]
    return CoverageReport(list(groups.values()), get_precision_mode(), fused)
