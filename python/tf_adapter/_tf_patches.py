"""Makes TensorFlow's own memory API answer for NPU devices.

TensorFlow asks the device allocator for statistics; ours lives in the
plugin, behind TensorFlow's simple allocator which reports zeros. So
``tf.config.experimental.get_memory_info("NPU:0")`` and ``reset_memory_stats``
are routed to the plugin for NPU devices and left untouched for others.
"""

import functools

from . import _device

_INSTALLED = False


def install():
    global _INSTALLED
    if _INSTALLED:
        return
    import tensorflow as tf

    from . import _compat

    if not (_compat.enabled("memory.get_memory_info") and _compat.enabled("memory.reset_memory_stats")):
        return
    orig_get = _compat.original("memory.get_memory_info")
    orig_reset = _compat.original("memory.reset_memory_stats")

    @functools.wraps(orig_get)
    def get_memory_info(device):
        if _device.npu_ordinal(device) is None:
            return orig_get(device)
        info = _device.memory_info(device)
        return {"current": info["current"], "peak": info["peak"]}

    @functools.wraps(orig_reset)
    def reset_memory_stats(device):
        if _device.npu_ordinal(device) is None:
            return orig_reset(device)
        _device.reset_memory_stats(device)

    _compat.replace("memory.get_memory_info", get_memory_info)
    _compat.replace("memory.reset_memory_stats", reset_memory_stats)
    # The public alias module holds its own binding of the same functions.
    tf.config.experimental.get_memory_info = get_memory_info
    tf.config.experimental.reset_memory_stats = reset_memory_stats
    _memory_optimizer_off_in_user_config()


def _memory_optimizer_off_in_user_config():
    """The plugin switches grappler's memory optimizer off (crates/tfa-plugin/
    src/graph.rs says why), and TensorFlow prints a 21-line "User's config has
    been changed based on plugin's config" table for every graph it optimizes
    while the user's config still has it on. The final config is the same
    either way, so the user's config says off too: no table. A config the
    user set explicitly is left alone."""
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

    from . import _compat

    if not _compat.enabled("memory.user_config_memory_optimizer"):
        return
    from tensorflow.python.eager import context

    ctx = context.context()
    cfg = config_pb2.ConfigProto()
    if ctx._config is not None:
        cfg.CopyFrom(ctx._config)
    rewrite = cfg.graph_options.rewrite_options
    if rewrite.memory_optimization == rewriter_config_pb2.RewriterConfig.DEFAULT_MEM_OPT:
        rewrite.memory_optimization = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
        ctx._config = cfg
    _INSTALLED = True
