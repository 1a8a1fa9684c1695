"""What the migration checklist checks: a model loaded from a Keras file, a
SavedModel directory or a Python file (``Subject``), its example inputs and
how to call it. Part of ``tf_adapter.check``."""

import importlib.util
import os


class CheckError(Exception):
    """Bad input: reported in one line, exit status 2."""



class Subject:
    """What is being checked: a callable model plus how to train it."""

    def __init__(self, name, build, loss=None, optimizer=None, dataset=None, keras_model=True):
        self.name = name
        self.build = build  # () -> model (fresh weights are copied in)
        self.loss = loss
        self.optimizer = optimizer
        self.dataset = dataset
        self.keras_model = keras_model


def load(path):
    import keras
    import tensorflow as tf

    from tf_adapter_cli import check_model_path

    problem = check_model_path(path)
    if problem:
        raise CheckError(problem)
    if path.endswith(".py"):
        spec = importlib.util.spec_from_file_location("_tfa_check_user_model", path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise CheckError(f"{path}: could not be executed: {type(e).__name__}: {e}") from None
        if not callable(getattr(module, "build_model", None)):
            raise CheckError(f"{path}: defines no build_model()")
        return Subject(
            os.path.basename(path),
            module.build_model,
            loss=getattr(module, "loss", None),
            optimizer=getattr(module, "optimizer", None),
            dataset=getattr(module, "dataset", None),
        )
    if path.endswith((".keras", ".h5")):
        try:
            keras.models.load_model(path, compile=False)
        except Exception as e:
            raise CheckError(f"{path}: not a loadable Keras model: {type(e).__name__}: {str(e)[:300]}") from None
        loss, optimizer = _saved_training_setup(path)
        return Subject(os.path.basename(path), lambda: keras.models.load_model(path, compile=False),
                       loss=loss, optimizer=optimizer)
    if os.path.isdir(path):
        try:
            loaded = tf.saved_model.load(path)
        except Exception as e:
            raise CheckError(f"{path}: not a loadable SavedModel: {type(e).__name__}: {str(e)[:300]}") from None
        if "serving_default" not in getattr(loaded, "signatures", {}):
            raise CheckError(f"{path}: the SavedModel has no serving_default signature")
        return Subject(os.path.basename(path.rstrip("/")), lambda: tf.saved_model.load(path), keras_model=False)
    raise CheckError(f"{path}: expected a .keras/.h5 file, a SavedModel directory or a .py file")


def _saved_training_setup(path):
    """(loss, optimizer factory) the Keras file was compiled with, each None
    when it has none (saved uncompiled, or a compile that does not load)."""
    import keras

    import warnings

    try:
        with warnings.catch_warnings():  # "Skipping variable loading for optimizer": its state is not needed
            warnings.simplefilter("ignore")
            compiled = keras.models.load_model(path)
    except Exception:  # e.g. a custom loss not registered here: fall back to the defaults
        return None, None
    loss = getattr(compiled, "loss", None)
    if isinstance(loss, (dict, list, tuple)):
        loss = None  # several outputs: the check trains on the first with a default loss
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    opt = getattr(compiled, "optimizer", None)
    if opt is None:
        return loss, None
    config = opt.get_config()

    def make_optimizer():
        return type(opt).from_config(config)

    make_optimizer._tfa_saved = True  # training_setup reports the source
    return loss, make_optimizer


def _signature(model):
    """[(name, shape without batch, dtype)] of the model's inputs."""
    import tensorflow as tf

    if hasattr(model, "inputs") and model.inputs:
        return [(t.name, tuple(t.shape[1:]), tf.as_dtype(t.dtype)) for t in model.inputs]
    fn = model.signatures["serving_default"]
    _, kwargs = fn.structured_input_signature
    return [(k, tuple(v.shape[1:]), v.dtype) for k, v in sorted(kwargs.items())]


def example_inputs(model, batch, data=None, seed=0):
    """Inputs from an .npz file (arrays in input order, or by input name) or
    random ones from the model's input signature."""
    import numpy as np

    sig = _signature(model)
    if data is not None:
        if not os.path.exists(data):
            raise CheckError(f"{data}: no such file")
        try:
            arrays = np.load(data)
        except Exception as e:
            raise CheckError(f"{data}: not an .npz file: {e}") from None
        names = list(arrays.files)
        out = []
        for i, (name, shape, dtype) in enumerate(sig):
            key = name if name in arrays.files else (names[i] if i < len(names) else None)
            if key is None:
                raise CheckError(f"{data}: no array for input {i} ('{name}')")
            a = arrays[key]
            if tuple(a.shape[1:]) != tuple(d if d is not None else a.shape[1 + j] for j, d in enumerate(shape)):
                raise CheckError(
                    f"{data}: input '{name}' has shape {tuple(a.shape)}, the model expects (batch,) + {shape}"
                )
            out.append(a.astype(dtype.as_numpy_dtype))
        return out
    rng = np.random.default_rng(seed)
    out = []
    for name, shape, dtype in sig:
        if any(d is None for d in shape):
            raise CheckError(f"input '{name}' has unknown dimensions {shape}: give inputs with --data")
        if dtype.is_integer:
            out.append(rng.integers(0, 100, size=(batch,) + shape).astype(dtype.as_numpy_dtype))
        else:
            out.append(rng.normal(size=(batch,) + shape).astype(dtype.as_numpy_dtype))
    return out


def _call(model, inputs):
    """Model outputs as a list of tensors."""
    import tensorflow as tf

    if hasattr(model, "inputs") and model.inputs:
        out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    else:
        fn = model.signatures["serving_default"]
        _, kwargs = fn.structured_input_signature
        out = fn(**{k: tf.convert_to_tensor(v) for k, v in zip(sorted(kwargs), inputs)})
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]
