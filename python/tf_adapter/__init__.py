"""tf_adapter: run TensorFlow models on NPU devices.

Two lines turn an existing TensorFlow program into an NPU program::

    import tf_adapter                 # before any TensorFlow op runs
    with tf.device("/NPU:0"):
        ...

Importing registers the NPU devices with TensorFlow (a PluggableDevice plugin
written in Rust, loaded exactly once). Configuration comes from environment
variables read at import: ``TFA_NPU_COUNT``, ``TFA_NPU_MEMORY``,
``TFA_NPU_THREADS``, ``TFA_BACKEND``, ``TFA_PRECISION_MODE`` and ``TFA_MIXLIST``
(see the README).
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
