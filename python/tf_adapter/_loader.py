"""Loads the plugin into TensorFlow, exactly once per process."""

from . import _native

_LATE_IMPORT = (
    "tf_adapter must be imported before TensorFlow runs any operation: TensorFlow has "
    "already initialised its devices, so the NPU cannot be added to this process and "
    "ops would silently run on the CPU. Move `import tf_adapter` to the top of your "
    "program, next to `import tensorflow`."
)


def _tensorflow_initialised(context_module) -> bool:
    ctx = context_module.context()
    return bool(getattr(ctx, "_initialized", False) or getattr(ctx, "_context_handle", None) is not None)


def load() -> None:
    try:
        _native.config()
    except ValueError as e:
        raise ImportError(f"tf_adapter: invalid configuration: {e}") from None

    if _native.plugin_registered():
        # A second import (or importlib.reload): the platform is already there.
        # Loading it again would abort the process ("platform is already registered").
        return

    import tensorflow  # noqa: F401  (TensorFlow must be loaded before its plugin)

    from . import _compat

    _compat.gate()
    from tensorflow.python.eager import context
    from tensorflow.python.framework import load_library

    if _tensorflow_initialised(context):
        raise ImportError(_LATE_IMPORT)

    load_library.load_pluggable_device_library(_native.__file__)
    if not _native.plugin_registered():
        raise ImportError("tf_adapter: TensorFlow loaded the plugin but did not register the NPU platform")

    from . import _jit, _keras, _tf_patches, strict

    _tf_patches.install()
    _keras.install()
    strict.install()
    _jit.install()
