"""Training utilities: gradient accumulation over micro-batches.

When a batch does not fit in NPU memory, split it: ``accumulate_gradients``
runs the forward and backward pass on one micro-batch at a time (a
``tf.while_loop`` with ``parallel_iterations=1``, so only one micro-batch's
activations are alive) and averages the gradients. For a loss that is a mean
over the batch, N micro-batches give the loss and gradients of the whole batch
(up to float rounding) — except for layers whose output depends on the batch
as a whole (BatchNormalization in training uses each micro-batch's statistics)
and random layers (Dropout draws other masks).

With Keras ``fit``, the same effect comes from the optimizer itself:
``keras.optimizers.AdamW(..., gradient_accumulation_steps=N)`` with a batch
size N times smaller applies the averaged gradients every N steps.
"""

import tensorflow as tf

__all__ = ["accumulate_gradients", "make_train_step"]


def _split(t, n):
    t = tf.convert_to_tensor(t)
    batch = t.shape[0]
    if batch is not None and batch % n:
        raise ValueError(f"batch size {batch} is not divisible by micro_batches={n}")
    rest = tf.shape(t)[1:]
    return tf.reshape(t, tf.concat([[n, -1], rest], 0))


def _dense(g, v):
    if g is None:
        return tf.zeros_like(v)
    if isinstance(g, tf.IndexedSlices):
        return tf.convert_to_tensor(g)
    return g


def accumulate_gradients(loss_fn, variables, *batch, micro_batches=1):
    """Mean loss and mean gradients of ``loss_fn(*batch)`` w.r.t. ``variables``,
    computed over ``micro_batches`` equal slices of the batch (axis 0), one
    slice at a time.

    ``loss_fn`` takes the slices of ``batch`` and returns a scalar loss that
    is a mean over its examples. Returns ``(loss, gradients)`` with one dense
    gradient per variable (zeros for variables the loss does not use).
    """
    variables = list(variables)
    n = int(micro_batches)
    if n < 1:
        raise ValueError(f"micro_batches must be >= 1, got {micro_batches}")
    if n == 1:
        with tf.GradientTape() as tape:
            loss = loss_fn(*batch)
        grads = tape.gradient(loss, variables)
        return loss, [_dense(g, v) for g, v in zip(grads, variables)]

    parts = [_split(t, n) for t in batch]

    def body(i, loss_sum, *acc):
        micro = [p[i] for p in parts]
        with tf.GradientTape() as tape:
            loss = loss_fn(*micro)
        grads = tape.gradient(loss, variables)
        acc = [a + _dense(g, v) for a, g, v in zip(acc, grads, variables)]
        return (i + 1, loss_sum + tf.cast(loss, loss_sum.dtype), *acc)

    zeros = [tf.zeros_like(v) for v in variables]
    out = tf.while_loop(
        lambda i, *_: i < n,
        body,
        (tf.constant(0), tf.constant(0.0, tf.float32), *zeros),
        parallel_iterations=1,
    )
    scale = 1.0 / n
    grads = [g * tf.cast(scale, g.dtype) for g in out[2:]]
    return out[1] * scale, grads


def make_train_step(model, loss, optimizer, micro_batches=1, device=None):
    """A compiled train step ``step(x, y) -> loss`` for a Keras model:
    forward, backward (accumulated over ``micro_batches``) and the optimizer
    update, with every op under ``device`` (e.g. ``"/NPU:0"``) when given."""

    def loss_fn(x, y):
        return loss(y, model(x, training=True))

    def run(x, y):
        value, grads = accumulate_gradients(
            loss_fn, model.trainable_variables, x, y, micro_batches=micro_batches
        )
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value

    @tf.function
    def step(x, y):
        if device is None:
            return run(x, y)
        with tf.device(device):
            return run(x, y)

    return step
