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

from tensorflow.python.distribute import collective_all_reduce_strategy as _cars
from tensorflow.python.distribute import collective_util as _collective_util
from tensorflow.python.distribute import distribute_lib as _distribute_lib
from tensorflow.python.distribute import mirrored_strategy as _mirrored
from tensorflow.python.util import nest as _nest

from . import _device

__all__ = ["MultiWorkerMirroredStrategy", "npu_devices"]


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
    """Each MirroredStrategy over NPUs gets its own collective key range."""
    extended = _mirrored.MirroredExtended
    orig = extended._make_collective_ops_with_fallbacks
    if getattr(orig, "_tfa_patched", False):
        return

    def _make_collective_ops_with_fallbacks(self):
        if any("NPU" in d.upper() for d in self._devices):
            with _key_lock:
                self._collective_key_base += _KEYS_PER_STRATEGY * next(_key_ranges)
        return orig(self)

    _make_collective_ops_with_fallbacks._tfa_patched = True
    extended._make_collective_ops_with_fallbacks = _make_collective_ops_with_fallbacks
