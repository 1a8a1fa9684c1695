"""Keras 3 adjustments for NPU devices.

``model.fit``/``evaluate``/``predict`` default to ``jit_compile="auto"``, which
Keras resolves to XLA as soon as the machine has any non-CPU device. There is
no XLA JIT device for NPU ("No JIT device registered for NPU"), so with only
NPUs next to the CPU we resolve "auto" the way Keras does on a CPU-only
machine: no XLA. An explicit ``jit_compile=True`` is left as the user wrote it.

Keras may be imported after tf_adapter, so the patch is applied when its
trainer module loads (an import hook), or at once if it is already loaded.
"""

import importlib.abc
import importlib.machinery
import sys

_TRAINER = "keras.src.trainers.trainer"


def _only_cpu_and_npu():
    import tensorflow as tf

    return all(d.device_type in ("CPU", "NPU") for d in tf.config.list_physical_devices())


def _patch_trainer(module):
    trainer = getattr(module, "Trainer", None)
    if trainer is None or getattr(trainer, "_tfa_patched", False):
        return
    orig = trainer._resolve_auto_jit_compile

    def _resolve_auto_jit_compile(self):
        from keras.src import backend

        if backend.backend() == "tensorflow" and _only_cpu_and_npu():
            return False
        return orig(self)

    trainer._resolve_auto_jit_compile = _resolve_auto_jit_compile
    trainer._tfa_patched = True


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs the patch right after the trainer module executes."""

    def find_spec(self, name, path, target=None):
        if name != _TRAINER:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch_trainer(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install():
    if _TRAINER in sys.modules:
        _patch_trainer(sys.modules[_TRAINER])
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
