"""Distributed training over NPUs with TensorFlow's own runtime.

``tf.distribute.MirroredStrategy(devices=["/NPU:0", ...])`` works unchanged:
TensorFlow picks its ring collective (``CollectiveReduceV2``, registered for
every device type) for devices that are neither CPU nor GPU, and the NPU
supplies the kernels it needs (``Add`` computing in place on its first input,
``RealDiv`` for MEAN, device-to-device copies).

``tf.distribute.MultiWorkerMirroredStrategy`` only looks for GPUs or TPUs on
each worker and otherwise trains on one CPU. :class:`MultiWorkerMirroredStrategy`
here takes the same arguments and reads ``TF_CONFIG`` the same way, but each
worker contributes its NPUs to TensorFlow's collective group; tensors travel
between workers over TensorFlow's gRPC runtime (through host memory, as GPU
tensors do).

Several MirroredStrategy objects over the same NPUs in one process (a
notebook, a test suite) would share TensorFlow's collective keys and fail with
"Shape mismatch in the collective instance": GPUs escape this through NCCL, the
NPU ring does not. :func:`install` gives each strategy over NPUs its own key
range.
"""

import itertools
import threading
import weakref

from tensorflow.python.distribute import collective_all_reduce_strategy as _cars
from tensorflow.python.distribute import collective_util as _collective_util
from tensorflow.python.distribute import cross_device_ops as _cdo
from tensorflow.python.distribute import device_util as _device_util
from tensorflow.python.distribute import reduce_util as _reduce_util
from tensorflow.python.distribute import values as _values
from tensorflow.python.distribute import distribute_lib as _distribute_lib
from tensorflow.python.util import nest as _nest

from . import _device

__all__ = ["MultiWorkerMirroredStrategy", "NpuAllReduce", "npu_devices", "train_step_seconds"]


def npu_devices(worker_device=""):
    """This process's NPUs as device strings (``TFA_NPU_COUNT`` of them),
    optionally prefixed by a worker (``/job:worker/task:0``)."""
    return tuple(f"{worker_device}/device:NPU:{i}" for i in range(_device.config()["npu_count"]))


class _NpuCollectiveAllReduceExtended(_cars.CollectiveAllReduceExtended):
    """TensorFlow's multi-worker implementation with the NPUs as each
    worker's local devices (TensorFlow's own picks GPU, TPU or one CPU)."""

    def _initialize_local_devices(self, cluster_resolver, worker_device):
        return npu_devices(worker_device), "NPU"

    def _reduce_to(self, reduce_op, value, destinations, options):
        # Keras 3's fit reduces a whole (x, y) batch structure at once
        # (keras-team/keras#20585); TensorFlow's multi-worker path only takes
        # one value, so reduce the structure leaf by leaf.
        if isinstance(value, (tuple, list, dict)):
            reduce_one = super()._reduce_to
            return _nest.map_structure(lambda v: reduce_one(reduce_op, v, destinations, options), value)
        return super()._reduce_to(reduce_op, value, destinations, options)


class MultiWorkerMirroredStrategy(_cars.CollectiveAllReduceStrategy):
    """``tf.distribute.MultiWorkerMirroredStrategy`` over every NPU of every
    worker.

    Same arguments as TensorFlow's: an optional cluster resolver (default: the
    ``TF_CONFIG`` environment variable) and optional
    ``tf.distribute.experimental.CommunicationOptions``. Without a cluster it
    is a single-worker strategy over this process's NPUs. It is an instance of
    ``tf.distribute.MultiWorkerMirroredStrategy``, so Keras and checkpointing
    treat it as TensorFlow's.

    Each worker must import tf_adapter with the same ``TFA_NPU_COUNT``.
    """

    def __init__(self, cluster_resolver=None, communication_options=None):
        if communication_options is None:
            communication_options = _collective_util.Options()
        # TensorFlow's __init__ builds its own extended object (GPU/CPU
        # devices); ours differs only in the local devices, so the base
        # Strategy is initialised directly with it.
        _distribute_lib.Strategy.__init__(
            self,
            _NpuCollectiveAllReduceExtended(
                self,
                cluster_resolver=cluster_resolver,
                communication_options=communication_options,
            ),
        )
        _distribute_lib.distribution_strategy_gauge.get_cell("V2").set("MultiWorkerMirroredStrategy")
        gauge = _distribute_lib.distribution_strategy_replica_gauge
        gauge.get_cell("num_workers").set(self.extended._num_workers)
        gauge.get_cell("num_replicas_per_worker").set(self.extended._num_devices_per_worker)


# Group keys one strategy may use before the next strategy's range starts
# (a strategy takes one per device subset it reduces over: a handful).
_KEYS_PER_STRATEGY = 1000
_key_ranges = itertools.count(1)
_key_lock = threading.Lock()


def install():
    """Each MirroredStrategy over NPUs gets its own collective key range, and
    TensorFlow gets at least one inter-op thread per NPU."""
    _enough_inter_op_threads()
    from . import _compat

    name = "distribute.collective_keys"
    if _compat.applied(name) or not _compat.enabled(name):
        return
    orig = _compat.original(name)

    def _make_collective_ops_with_fallbacks(self):
        if any("NPU" in d.upper() for d in self._devices):
            with _key_lock:
                self._collective_key_base += _KEYS_PER_STRATEGY * next(_key_ranges)
        return orig(self)

    _compat.replace(name, _make_collective_ops_with_fallbacks)
    from tensorflow.python.framework import ops

    ops.NotDifferentiable("TfaAllReduce")


_instance_keys = itertools.count(1)


class NpuAllReduce(_cdo.CrossDeviceOps):
    """A ``tf.distribute.CrossDeviceOps`` that all-reduces inside the plugin.

    ``tf.distribute.MirroredStrategy(devices, cross_device_ops=NpuAllReduce())``.
    The replicas of one all-reduce meet in tf_adapter's ``TfaAllReduce`` op
    and, on the host backend, one pass over their (shared) memory sums every
    tensor into every replica's output, each NPU's threads taking one slice.
    All gradients of one step travel as one op (no packing copies). Compared
    with TensorFlow's ring collective it saves the 2(N-1) chunk copies per
    tensor; use it when `benches/scaling_host.py` shows the all-reduce taking
    a visible share of the step (large models, 4+ NPUs). float16/bfloat16
    accumulate in float32 and round once.

    Values that are not floating point, not on distinct NPUs, or reduced to
    other destinations (``strategy.reduce`` to the host) go through
    TensorFlow's ``ReductionToOneDevice``.

    Each replica's op waits for the others on one of TensorFlow's inter-op
    threads (the C API cannot complete a kernel asynchronously), so an
    all-reduce over N NPUs needs at least N inter-op threads:
    ``tf.config.threading.set_inter_op_parallelism_threads(n)`` at start-up
    where the machine has fewer cores than NPUs (a clear error says so).
    """

    _FLOATS = ("float32", "float16", "bfloat16", "float64")

    def __init__(self):
        super().__init__()
        self._fallback = _cdo.ReductionToOneDevice()
        self._eager_fns = {}

    def _eager_fn(self, devices, dtype, mean, count):
        """A tf.function running one all-reduce of `count` tensors per replica
        (flattened replica-major); one instance key per cached function, as
        its calls follow each other."""
        import tensorflow as tf

        cache_key = (devices, dtype, mean, count)
        if cache_key not in self._eager_fns:
            key = next(_instance_keys)

            def run(*flat):
                per_replica = [list(flat[r * count:(r + 1) * count]) for r in range(len(devices))]
                return [t for ts in _replica_all_reduces(per_replica, devices, key, mean) for t in ts]

            self._eager_fns[cache_key] = tf.function(run, reduce_retracing=True)
        return self._eager_fns[cache_key]

    @classmethod
    def _direct(cls, value, destinations):
        """Is this an all-reduce of floats over distinct NPUs onto themselves?"""
        if not isinstance(value, _values.DistributedValues):
            return False
        parts = value.values
        if len(parts) < 2 or parts[0].dtype.base_dtype.name not in cls._FLOATS:
            return False
        devices = [_device_util.canonicalize(v.device) for v in parts]
        if len(set(devices)) != len(devices) or not all("NPU" in d.upper() for d in devices):
            return False
        try:
            targets = _cdo.get_devices_from(destinations)
        except Exception:
            return False
        return tuple(targets) == tuple(devices)

    def reduce_implementation(self, reduce_op, per_replica_value, destinations, options):
        if self._direct(per_replica_value, destinations):
            return self._all_reduce_values(reduce_op, [per_replica_value])[0]
        return self._fallback.reduce_implementation(reduce_op, per_replica_value, destinations, options)

    def batch_reduce_implementation(self, reduce_op, value_destination_pairs, options):
        if all(self._direct(v, d) for v, d in value_destination_pairs):
            return self._all_reduce_values(reduce_op, [v for v, _ in value_destination_pairs])
        return [self.reduce_implementation(reduce_op, v, d, options) for v, d in value_destination_pairs]

    def _all_reduce_values(self, reduce_op, values):
        import tensorflow as tf

        if isinstance(reduce_op, str):
            reduce_op = _reduce_util.ReduceOp(reduce_op.upper())
        mean = reduce_op == _reduce_util.ReduceOp.MEAN
        groups = {}
        for j, v in enumerate(values):
            devices = tuple(_device_util.canonicalize(t.device) for t in v.values)
            groups.setdefault((v.values[0].dtype.base_dtype, devices), []).append(j)
        results = [None] * len(values)
        for (dtype, devices), idx in groups.items():
            _check_inter_op_threads(len(devices))
            per_replica = [[values[j].values[r] for j in idx] for r in range(len(devices))]
            if tf.executing_eagerly():
                # The replicas' ops must still run concurrently (each waits for
                # the others): one function call runs them all. Cached per
                # group, so repeated eager all-reduces do not retrace.
                fn = self._eager_fn(devices, dtype, mean, len(idx))
                flat = fn(*[t for ts in per_replica for t in ts])
                outs = [flat[r * len(idx):(r + 1) * len(idx)] for r in range(len(devices))]
            else:
                outs = _replica_all_reduces(per_replica, devices, next(_instance_keys), mean)
            for k, j in enumerate(idx):
                results[j] = _values.Mirrored(tuple(outs[r][k] for r in range(len(devices))))
        return results


def _replica_all_reduces(per_replica, devices, key, mean):
    """One TfaAllReduce per replica, each on its device: lists of outputs."""
    import tensorflow as tf

    outs = []
    for r, device in enumerate(devices):
        with tf.device(device):
            outs.append(_tfa_all_reduce(per_replica[r], device, len(devices), key, mean))
    return outs


def _enough_inter_op_threads():
    """An NPU kernel holds one of TensorFlow's inter-op threads while it runs
    on its NPU's pool (and an NpuAllReduce replica while it waits for the
    others): with fewer threads than NPUs, NPUs would idle. Raised only where
    the default (the core count) is lower than TFA_NPU_COUNT, and only before
    TensorFlow's runtime starts."""
    import os

    import tensorflow as tf

    n = _device.config()["npu_count"]
    if tf.config.threading.get_inter_op_parallelism_threads() == 0 and n > (os.cpu_count() or 1):
        try:
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:
            pass  # the runtime is already up: keep TensorFlow's setting


def _check_inter_op_threads(replicas):
    import os

    import tensorflow as tf

    threads = tf.config.threading.get_inter_op_parallelism_threads() or (os.cpu_count() or 1)
    if threads < replicas:
        raise ValueError(
            f"NpuAllReduce over {replicas} NPUs needs at least {replicas} TensorFlow inter-op threads "
            f"(each replica waits for the others on one); this process has {threads}. Call "
            f"tf.config.threading.set_inter_op_parallelism_threads({replicas}) before TensorFlow runs "
            "anything, or use TensorFlow's default cross-device ops."
        )


# Per graph and device, the last TfaAllReduce op: each replica runs its
# all-reduces in the same order (as TensorFlow orders its collectives), so
# two replicas never wait in different meetings for each other.
_last_op = weakref.WeakKeyDictionary()


def _tfa_all_reduce(tensors, device, group_size, instance_key, mean):
    """One replica's part of the all-reduce (graph mode, under `device`)."""
    from tensorflow.python.framework import op_def_library, ops

    graph = ops.get_default_graph()
    previous = _last_op.setdefault(graph, {}).get(device)
    with ops.control_dependencies([previous] if previous is not None else []):
        _, _, op, _ = op_def_library._apply_op_helper(
            "TfaAllReduce", input=list(tensors), group_size=group_size, instance_key=instance_key, mean=mean
        )
    _last_op[graph][device] = op
    return list(op.outputs)


def train_step_seconds(strategy, model, optimizer, loss_fn, inputs, labels, per_device, steps=4, repeats=3):
    """Best-of-`repeats` seconds per custom-loop train step (forward, backward,
    all-reduce, update) under `strategy`, each replica on its own slice of
    `inputs` (a list of arrays) and `labels` at batch `per_device`, the slice
    placed on the replica's device. `loss_fn(y, pred)` may return per-example
    losses (summed over the global batch) or a replica mean. Shared by the
    scaling benchmark and tf-adapter-check's scaling check."""
    import time

    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    devices = strategy.extended.worker_devices

    def slices(arr):
        def fn(ctx):
            i = ctx.replica_id_in_sync_group
            with tf.device(devices[i]):
                return tf.identity(arr[i * per_device:(i + 1) * per_device])

        return strategy.experimental_distribute_values_from_function(fn)

    xs, ys = [slices(a) for a in inputs], slices(labels)

    def replica(y, *x):
        with tf.GradientTape() as tape:
            out = loss_fn(y, model(list(x) if len(x) > 1 else x[0], training=True))
            loss = tf.reduce_sum(out) / (per_device * replicas) if out.shape.rank else out / replicas
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step = tf.function(lambda y, *x: strategy.run(replica, args=(y, *x)))
    for _ in range(2):  # trace and warm up
        out = step(ys, *xs)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            out = step(ys, *xs)
        strategy.experimental_local_results(out)[0].numpy()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best
