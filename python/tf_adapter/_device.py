"""Device queries: configuration, memory and kernel counters."""

import re

from . import _native

_DEVICE_RE = re.compile(r"(?:^|[/:])NPU:(\d+)$", re.IGNORECASE)


def npu_ordinal(device):
    """The NPU index in ``device`` ("NPU:0", "/device:NPU:1", a full name, or an
    int), or None if it names another device type."""
    if isinstance(device, int):
        return device
    name = getattr(device, "name", device)
    if not isinstance(name, str):
        raise TypeError(f"expected a device name or index, got {device!r}")
    m = _DEVICE_RE.search(name.strip())
    return int(m.group(1)) if m else None


def config():
    """The configuration in effect (from the TFA_* environment variables),
    and ``cpu_features``: the vector instruction sets the host kernels use
    on this CPU (``avx2+fma``, ``avx512``, ``avx512_bf16``, ``amx_bf16``)."""
    c = _native.config()
    return {
        "npu_count": int(c["npu_count"]),
        "memory": int(c["memory"]),
        "threads": int(c["threads"]),
        "backend": c["backend"],
        "spin_us": int(c["spin_us"]),
        "cpu_features": [f for f in c["cpu_features"].split(",") if f],
    }


def devices():
    """Names of the NPU devices, e.g. ``["/device:NPU:0"]``."""
    return [f"/device:NPU:{i}" for i in range(config()["npu_count"])]


def _ordinal_or_raise(device):
    i = npu_ordinal(device)
    if i is None:
        raise ValueError(f"{device!r} is not an NPU device (expected e.g. 'NPU:0')")
    if not 0 <= i < config()["npu_count"]:
        raise ValueError(f"there is no NPU:{i} (TFA_NPU_COUNT={config()['npu_count']})")
    return i


def memory_info(device="NPU:0"):
    """Device memory of an NPU in bytes: ``current`` and ``peak`` (live tensors),
    ``capacity`` (TFA_NPU_MEMORY), ``cached`` (freed blocks kept for reuse),
    ``num_allocs``, ``largest_alloc`` and ``failed_allocs``."""
    return dict(_native.memory_info(_ordinal_or_raise(device)))


def reset_memory_stats(device="NPU:0"):
    """Sets the peak of an NPU's memory to its current usage."""
    _native.reset_memory_stats(_ordinal_or_raise(device))


def kernel_counts():
    """How many times each NPU kernel ran, by TensorFlow op type."""
    return dict(_native.kernel_counts())


def kernel_times():
    """Seconds spent in each NPU kernel, by TensorFlow op type (a profile)."""
    return dict(_native.kernel_times())


def reset_kernel_counts():
    """Resets the counts and times of ``kernel_counts()``/``kernel_times()``."""
    _native.reset_kernel_counts()
