"""Variant bookkeeping on the host.

A recurrent layer's while loop keeps TensorLists (``DT_VARIANT`` tensors
holding a list of tensors). TensorFlow's device-agnostic TensorList kernels
run on the NPU for float and int32/int64 entries, but

* a masked recurrent layer keeps its boolean mask in a TensorList, and
  TensorFlow has no device-agnostic kernel for boolean entries;
* the gradient of a while loop starts from ``ZerosLike`` of each TensorList
  the loop returns, and sums the gradients of a list read twice with
  ``AddN`` of TensorLists, which TensorFlow implements for CPU and GPU only.

A plugin cannot supply either: kernels on ``DT_VARIANT`` need
``TF_ZerosLikeVariant``/``TF_AddNVariant`` and a TensorList C API that
TensorFlow 2.21's binaries do not export. These ops create or move list
entries: ZerosLike makes a list of zeros of the same entry shapes, AddN
adds two lists entry by entry where both entries are set and otherwise
takes the one that is (in a recurrent layer's gradient each index is set in
one of the two, so nothing is added). tf_adapter places them on the host of
the same task when they are created under an NPU device scope, also with
soft placement off. The coverage report lists them as ``host (variant
bookkeeping)``; strict mode allows them. TensorFlow copies the lists'
entries between host and NPU where an NPU op reads them.
"""

import functools

from . import _compat
from .coverage import is_variant_bookkeeping, may_be_variant_bookkeeping


def _host_of(device):
    """The CPU of the task of `device` (a device string naming an NPU)."""
    from tensorflow.python.framework import device_spec

    spec = device_spec.DeviceSpecV2.from_string(device)
    return spec.replace(device_type="CPU", device_index=0).to_string()


def _on_variants(op):
    from tensorflow.python.framework import dtypes

    return bool(op.inputs) and op.inputs[0].dtype == dtypes.variant


def install():
    patch = "host_bookkeeping.create_op_helper"
    if _compat.applied(patch) or not _compat.enabled(patch):
        return
    original = _compat.original(patch)

    @functools.wraps(original)
    def create_op_helper(self, op, *args, **kwargs):
        # After the device scope and the colocation stack have had their say.
        original(self, op, *args, **kwargs)
        if (
            may_be_variant_bookkeeping(op.type)
            and "NPU" in op.device.upper()
            # ZerosLike/AddN of tensors (not lists) are NPU ops: no NodeDef needed.
            and (op.type.startswith("TensorList") or op.type == "EmptyTensorList" or _on_variants(op))
            and is_variant_bookkeeping(op.node_def)
        ):
            op._set_device(_host_of(op.device))
            # Gradient sums are colocated with their first summand (on the
            # NPU); the placer would pull the op back there.
            if "_class" in op.node_def.attr:
                op._clear_attr("_class")

    _compat.replace(patch, create_op_helper)
