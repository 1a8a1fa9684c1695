"""Which op makes a model's NPU output diverge from CPU (tf-adapter-check's
``first_divergence``): each op is run alone on CPU and on the NPU from the CPU
values of its inputs, so an error is charged to the op that makes it, not to
those downstream. Keras models are searched layer by layer first, then op by
op inside the first diverging layer; SavedModels op by op through the serving
signature, descending into the functions it calls."""

__all__ = ["errors", "first_divergence", "first_diverging_op"]


def _on(device, fn, *args):
    import tensorflow as tf

    with tf.device(device):
        return fn(*args)


def errors(npu, cpu):
    """Relative L2 error, max abs error and cosine similarity of two arrays."""
    import numpy as np

    a, b = np.asarray(npu, np.float64).ravel(), np.asarray(cpu, np.float64).ravel()
    diff = a - b
    nb = float(np.linalg.norm(b))
    rel = float(np.linalg.norm(diff) / nb) if nb > 0 else float(np.linalg.norm(diff))
    na = float(np.linalg.norm(a))
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return {"rel_l2": rel, "max_abs": float(np.abs(diff).max()) if diff.size else 0.0, "cosine": cos}


def first_divergence(cpu_model, npu_model, inputs, max_error):
    """The first op whose NPU output differs from its CPU output by more than
    `max_error` when both see the same (CPU) inputs, so an error is charged
    to the op that makes it, not to those downstream. Keras models: first the
    layer (in graph order), then the op inside it; SavedModels: the ops of the
    serving signature, descending into the functions it calls."""
    import keras
    import tensorflow as tf

    layers = getattr(cpu_model, "layers", None)
    if not layers or not getattr(cpu_model, "inputs", None):
        return _signature_divergence(cpu_model, inputs, max_error)
    cpu_probe = keras.Model(cpu_model.inputs, [l.output for l in layers if not isinstance(l, keras.layers.InputLayer)])
    cpu_acts = _on("/CPU:0", lambda: cpu_probe(list(inputs), training=False))
    acts = dict(zip([l.name for l in layers if not isinstance(l, keras.layers.InputLayer)], cpu_acts))
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        npu_layer = npu_model.get_layer(layer.name)
        nodes = layer._inbound_nodes
        if not nodes:
            continue
        parents = [t._keras_history.operation.name for t in nodes[0].input_tensors]
        feed = [acts.get(p) for p in parents]
        if any(f is None for f in feed):
            feed = [tf.convert_to_tensor(x) for x in inputs] if len(parents) == len(inputs) else None
        if feed is None:
            continue
        args = feed[0] if len(feed) == 1 else feed
        cpu_y = _on("/CPU:0", lambda: layer(args, training=False))
        npu_y = _on("/NPU:0", lambda: npu_layer(args, training=False))
        for cy, ny in zip(tf.nest.flatten(cpu_y), tf.nest.flatten(npu_y)):
            e = errors(ny.numpy(), cy.numpy())
            if not e["rel_l2"] <= max_error:
                found = {"node": layer.name, "op_type": type(layer).__name__, "error": e["rel_l2"],
                         "max_abs": e["max_abs"], "cosine": e["cosine"], "layer": layer.name,
                         "layer_type": type(layer).__name__}
                try:
                    op = first_diverging_op(layer, args, max_error)
                except Exception as err:  # the layer-level answer stands
                    op = {"op_level_error": f"{type(err).__name__}: {str(err)[:200]}"}
                if op:
                    found.update(op)  # the op, or why the op level failed
                else:
                    found["note"] = "no single op of the layer exceeds the tolerance; their sum does"
                return found
    return None


def first_diverging_op(cpu_layer, args, max_error):
    """Inside a diverging layer: its call traced on CPU, then op by op (see
    `_diverging_op_in_graph`)."""
    import tensorflow as tf

    flat = [tf.convert_to_tensor(a) for a in tf.nest.flatten(args)]

    @tf.function(autograph=False)
    def call(*xs):
        return cpu_layer(tf.nest.pack_sequence_as(args, list(xs)), training=False)

    with tf.device("/CPU:0"):
        concrete = call.get_concrete_function(*flat)
    graph = concrete.graph
    with _tf_log_level("ERROR"):  # one trace per op probe is the point here
        return _diverging_op_in_graph(graph, flat + list(concrete.captured_inputs), max_error,
                                      _function_library(graph))


def _signature_divergence(cpu_model, inputs, max_error):
    """A SavedModel's serving signature (loaded on CPU), op by op."""
    import tensorflow as tf

    signatures = getattr(cpu_model, "signatures", None)
    if not signatures or "serving_default" not in signatures:
        return None
    fn = signatures["serving_default"]
    feeds = [tf.convert_to_tensor(x) for x in inputs] + list(fn.captured_inputs)
    if len(feeds) != len(fn.graph.inputs):
        return None
    try:
        with _tf_log_level("ERROR"):
            return _diverging_op_in_graph(fn.graph, feeds, max_error, _function_library(fn.graph))
    except Exception as err:
        return {"node": "", "op_type": "", "error": None,
                "op_level_error": f"{type(err).__name__}: {str(err)[:200]}"}


_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")


def _function_library(graph):
    """Name -> function of every function `graph` calls, nested ones included."""
    library = {}
    for fn in graph._functions.values():
        todo = [fn]
        while todo:
            f = todo.pop()
            name = f.name.decode() if isinstance(f.name, bytes) else f.name  # bytes on AtomicFunction
            if name not in library:
                library[name] = f
                todo.extend(getattr(f, "children", []) or [])
    return library


def _diverging_op_in_graph(graph, feeds, max_error, library, depth=0):
    """Runs each op of `graph` alone on CPU and on the NPU, both fed the CPU
    values of the op's inputs (`feeds` for the graph's placeholders); returns
    the first op whose NPU outputs exceed `max_error`. Function calls are
    searched inside (their body graph, fed the call's inputs) before their
    CPU outputs feed the ops after them."""
    import tensorflow as tf
    from tensorflow.python.framework import function_def_to_graph

    values = {t.name: v for t, v in zip(graph.inputs, feeds)}
    for op in graph.get_operations():
        if op.type == "Placeholder" or not op.outputs:
            continue
        if any(t.name not in values for t in op.inputs):
            continue  # fed by something skipped: nothing to compare with
        inputs = [values[t.name] for t in op.inputs]
        if op.type in _CALL_OPS and depth < 8 and op.get_attr("f").name in library:
            body = function_def_to_graph.function_def_to_graph(library[op.get_attr("f").name].definition)
            found = _diverging_op_in_graph(body, inputs, max_error, library, depth + 1)
            if found:
                return found
            values.update({t.name: v for t, v in zip(op.outputs, _run_op_alone(op, "/CPU:0", inputs, library))})
            continue
        cpu_out = _run_op_alone(op, "/CPU:0", inputs, library)
        values.update({t.name: v for t, v in zip(op.outputs, cpu_out)})
        # Ops on resources (variable reads) have no NPU twin of the CPU
        # variables; constants and shape ops compute nothing worth comparing.
        if (op.type in ("Const", "Shape", "Identity") or any(t.dtype == tf.resource for t in op.inputs)
                or not all(t.dtype.is_floating or t.dtype.is_complex for t in op.outputs)):
            continue
        npu_out = _run_op_alone(op, "/NPU:0", inputs, library)
        for c, n in zip(cpu_out, npu_out):
            e = errors(n.numpy(), c.numpy())
            if not e["rel_l2"] <= max_error:
                return {"node": op.name, "op_type": op.type, "error": e["rel_l2"], "max_abs": e["max_abs"],
                        "cosine": e["cosine"]}
    return None


class _tf_log_level:
    def __init__(self, level):
        import tensorflow as tf

        self.logger, self.level = tf.get_logger(), level

    def __enter__(self):
        self.saved = self.logger.level
        self.logger.setLevel(self.level)

    def __exit__(self, *exc):
        self.logger.setLevel(self.saved)


def _run_op_alone(op, device, inputs, library):
    """Runs a copy of graph op `op` (same type and attributes) on `device`;
    `library` holds the functions it may call (If/While branches, calls)."""
    import tensorflow as tf

    attrs = {k: v for k, v in op.node_def.attr.items() if not k.startswith("_")}  # not colocation hints

    @tf.function(autograph=False)
    def single(*xs):
        g = tf.compat.v1.get_default_graph()
        for fn in library.values():
            g._add_function_recursive(fn)
        new = g._create_op_internal(op.type, list(xs), [t.dtype for t in op.outputs], attrs=attrs, name="probe")
        return [tf.identity(t) for t in new.outputs]

    with tf.device(device):
        return single(*inputs)
