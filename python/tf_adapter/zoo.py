"""The reference models tf_adapter is tested and benchmarked on.

Keras 3 applications (``weights=None``: no network needed) and a BERT-base-like
encoder and a two-layer LSTM sequence classifier built from ``keras.layers``. ``build(name)`` returns a fresh model;
``example_input(name, batch)`` a matching random batch.
"""

import numpy as np

IMAGE_MODELS = ("resnet50", "mobilenetv2", "efficientnetb0")
NAMES = IMAGE_MODELS + ("bert_encoder", "lstm_classifier")


_position_layer = None


def _position_embedding_layer():
    """A learned absolute position embedding added to the token embeddings
    (a layer, so its weights are part of the model)."""
    global _position_layer
    if _position_layer is None:
        import keras

        class PositionEmbedding(keras.layers.Layer):
            def build(self, input_shape):
                self.table = self.add_weight(
                    shape=(input_shape[-2], input_shape[-1]), initializer="random_normal", name="table"
                )

            def call(self, x):
                return x + self.table

        _position_layer = PositionEmbedding
    return _position_layer


def bert_encoder(vocab=30522, seq_len=128, hidden=768, heads=12, ff=3072, layers=12, dropout=0.1):
    """A BERT-base-like encoder: token + position embeddings, `layers` blocks of
    MultiHeadAttention + LayerNormalization + Dense(GELU) feed-forward with
    Dropout, and a tanh pooler on the first token."""
    import keras
    from keras import layers as L

    ids = keras.Input([seq_len], dtype="int32", name="input_ids")
    tok = L.Embedding(vocab, hidden, name="token_embedding")(ids)
    x = _position_embedding_layer()(name="position_embedding")(tok)
    x = L.LayerNormalization(epsilon=1e-12)(x)
    x = L.Dropout(dropout)(x)
    for i in range(layers):
        a = L.MultiHeadAttention(heads, hidden // heads, dropout=dropout, name=f"attention_{i}")(x, x)
        x = L.LayerNormalization(epsilon=1e-12)(x + L.Dropout(dropout)(a))
        f = L.Dense(ff, activation="gelu", name=f"ffn_in_{i}")(x)
        f = L.Dense(hidden, name=f"ffn_out_{i}")(f)
        x = L.LayerNormalization(epsilon=1e-12)(x + L.Dropout(dropout)(f))
    pooled = L.Dense(hidden, activation="tanh", name="pooler")(x[:, 0])
    return keras.Model(ids, pooled, name="bert_encoder")


def lstm_classifier(steps=50, features=64, units=256, classes=10):
    """Two stacked LSTMs over a sequence and a linear classifier (logits): the
    recurrent model of the benchmarks (a while loop of small kernels)."""
    import keras

    inputs = keras.Input((steps, features))
    h = keras.layers.LSTM(units, return_sequences=True)(inputs)
    h = keras.layers.LSTM(units)(h)
    return keras.Model(inputs, keras.layers.Dense(classes)(h), name="lstm_classifier")


def build(name, image_size=224, small=False, logits=False):
    """A fresh model. ``small``: a reduced encoder (2 layers, hidden 128) for
    tests. ``logits``: image classifiers without the final softmax (with
    random weights the softmax can be nearly uniform and hide differences)."""
    import keras

    kw = {"weights": None, "input_shape": (image_size, image_size, 3)}
    if logits:
        kw["classifier_activation"] = None
    if name == "resnet50":
        return keras.applications.ResNet50(**kw)
    if name == "mobilenetv2":
        return keras.applications.MobileNetV2(**kw)
    if name == "efficientnetb0":
        return keras.applications.EfficientNetB0(**kw)
    if name == "bert_encoder":
        if small:
            return bert_encoder(vocab=1000, seq_len=32, hidden=128, heads=4, ff=512, layers=2)
        return bert_encoder()
    if name == "lstm_classifier":
        return lstm_classifier(steps=10, features=8, units=16) if small else lstm_classifier()
    raise ValueError(f"unknown model {name!r}; expected one of {NAMES}")


def twin(name, unit_gain=False, **kw):
    """The same model twice, with the same weights: built on the CPU and on
    NPU:0, for comparing the two devices. ``kw`` as for ``build``;
    ``unit_gain``: kernels from ``he_init``."""
    import tensorflow as tf

    with tf.device("/CPU:0"):
        cpu = build(name, **kw)
        if unit_gain:
            he_init(cpu)
    with tf.device("/NPU:0"):
        npu = build(name, **kw)
    npu.set_weights(cpu.get_weights())
    return cpu, npu


def he_init(model, seed=0):
    """Re-draws the model's kernels at unit gain: He-normal over each kernel's
    true fan-in (a depthwise kernel's window only), LeCun for the linear
    projections and the classifier. Keras's default Glorot kernels shrink a
    random MobileNetV2's activations block after block (logits ~1e-11, below
    float16's range); a trained model's stay O(1), and so do these."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        k = getattr(layer, "kernel", None)
        if k is None:
            continue
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        fan_in = int(np.prod(k.shape[:2] if depthwise else k.shape[:-1]))
        linear = "project" in layer.name or isinstance(layer, keras.layers.Dense)
        k.assign(rng.normal(0.0, np.sqrt((1.0 if linear else 2.0) / fan_in), k.shape).astype(np.float32))
    return model


def example_input(model, batch, seed=0):
    """A random batch for `model`'s (single) input."""
    rng = np.random.default_rng(seed)
    shape = [batch] + [int(d) for d in model.inputs[0].shape[1:]]
    if "int" in str(model.inputs[0].dtype):
        return rng.integers(0, 1000, size=shape).astype(np.int32)
    if len(shape) == 3:  # a sequence of feature vectors: unit scale
        return rng.normal(size=shape).astype(np.float32)
    return rng.uniform(0, 255, size=shape).astype(np.float32)
