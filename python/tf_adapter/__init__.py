"""tf_adapter: run TensorFlow models on NPU devices.

Two lines turn an existing TensorFlow program into an NPU program::

    import tf_adapter                 # before any TensorFlow op runs
    with tf.device("/NPU:0"):
        ...

Importing registers the NPU devices with TensorFlow (a PluggableDevice plugin
written in Rust, loaded exactly once). Configuration comes from environment
variables read at import (the README's "Configuration" table has the details):

- ``TFA_NPU_COUNT`` (1-64 NPUs, default 1), ``TFA_NPU_MEMORY`` (capacity per
  NPU: bytes or K/M/G/T, default 8G), ``TFA_NPU_THREADS`` (kernel threads per
  NPU), ``TFA_BACKEND`` (``host``), ``TFA_SPIN_US`` (how long kernel threads
  stay awake after a kernel, default 1000);
- ``TFA_PRECISION_MODE`` (one of ``must_keep_origin_dtype``, ``force_fp32``,
  ``allow_fp32_to_bf16``, ``allow_fp32_to_fp16``, ``allow_mix_precision``,
  ``allow_mix_precision_bf16``, ``allow_mix_precision_fp16``; see
  ``set_precision_mode``) and ``TFA_MIXLIST`` (JSON edits of the
  mixed-precision lists);
- ``TFA_STRICT`` (1: an op without an NPU kernel is an error, see
  ``set_strict``);
- ``TFA_LOWP_GEMM``, ``TFA_ALLREDUCE_TIMEOUT``, ``TFA_DUMP_GRAPH``,
  ``TFA_FUSION`` (kernel choice, collective timeout, graph dumps, the fusion
  pass) and ``TFA_ALLOW_UNTESTED_TF`` (import on an untested TensorFlow).
"""

from . import _native
from ._device import config, devices, kernel_counts, kernel_times, memory_info, reset_kernel_counts, reset_memory_stats
from ._loader import load as _load
from .coverage import CoverageReport, coverage
from .precision import get_mixlist, get_precision_mode, set_mixlist, set_precision_mode

__version__ = _native.__version__

__all__ = [
    "CompatWarning",
    "CoverageReport",
    "HostFallbackWarning",
    "JitWarning",
    "PrecisionWarning",
    "config",
    "coverage",
    "is_strict",
    "set_strict",
    "devices",
    "check",
    "distribute",
    "get_mixlist",
    "get_precision_mode",
    "set_mixlist",
    "set_precision_mode",
    "train",
    "zoo",
    "kernel_counts",
    "kernel_times",
    "memory_info",
    "reset_kernel_counts",
    "reset_memory_stats",
]

_load()

from . import _resource_ops  # noqa: E402

_resource_ops.install()

from . import _host_bookkeeping  # noqa: E402

_host_bookkeeping.install()

from . import precision as _precision  # noqa: E402

_precision.install()

from .strict import HostFallbackWarning, is_strict, set_strict  # noqa: E402
from ._keras import PrecisionWarning  # noqa: E402
from ._jit import JitWarning  # noqa: E402
from ._compat import CompatWarning  # noqa: E402

from . import distribute  # noqa: E402

distribute.install()

# Submodules the README documents as attributes, imported on first use so
# that `import tf_adapter` stays fast.
_LAZY_SUBMODULES = ("check", "check_divergence", "check_html", "train", "zoo")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'tf_adapter' has no attribute {name!r}")
