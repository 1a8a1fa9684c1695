"""The update formulas of TensorFlow's training ops (training_ops.cc), written
with ops the NPU has, for the Python composites of ``_resource_ops``.

Each rule takes the variable and slot values, the gradient and the op's
scalars, and returns the new values in the order of the op's variable
handles; ``_resource_ops`` reads and assigns the variables around it (dense
or per row for the sparse ops).
"""


def tf_module():
    import tensorflow as tf

    return tf


def sign(x):
    """sgn as TensorFlow's training kernels define it (0 at 0), from ops the
    NPU has (the NPU has no Sign)."""
    tf = tf_module()
    one = tf.ones_like(x)
    zero = tf.zeros_like(x)
    return tf.where(x < zero, -one, tf.where(tf.equal(x, zero), zero, one))


def gd(vals, g, lr):
    (var,) = vals
    return [var - g * lr]


def momentum(nesterov):
    # Dense and sparse (per row) updates share the formula.
    def f(vals, g, lr, momentum):
        var, accum = vals
        accum = accum * momentum + g
        if nesterov:
            var = var - (g * lr + accum * momentum * lr)
        else:
            var = var - accum * lr
        return [var, accum]

    return f


def keras_momentum(nesterov):
    def f(vals, g, lr, momentum):
        var, accum = vals
        accum = accum * momentum - g * lr
        if nesterov:
            var = var + (accum * momentum - g * lr)
        else:
            var = var + accum
        return [var, accum]

    return f


def adam(nesterov):
    def f(vals, g, beta1_power, beta2_power, lr, beta1, beta2, epsilon):
        tf = tf_module()
        var, m, v = vals
        one = tf.ones([], g.dtype)
        alpha = lr * tf.sqrt(one - beta2_power) / (one - beta1_power)
        m = m + (g - m) * (one - beta1)
        v = v + (tf.square(g) - v) * (one - beta2)
        if nesterov:
            var = var - ((g * (one - beta1) + beta1 * m) * alpha) / (tf.sqrt(v) + epsilon)
        else:
            var = var - (m * alpha) / (tf.sqrt(v) + epsilon)
        return [var, m, v]

    return f


def amsgrad(vals, g, beta1_power, beta2_power, lr, beta1, beta2, epsilon):
    tf = tf_module()
    var, m, v, vhat = vals
    one = tf.ones([], g.dtype)
    alpha = lr * tf.sqrt(one - beta2_power) / (one - beta1_power)
    m = m + (g - m) * (one - beta1)
    v = v + (tf.square(g) - v) * (one - beta2)
    vhat = tf.maximum(vhat, v)
    var = var - (m * alpha) / (tf.sqrt(vhat) + epsilon)
    return [var, m, v, vhat]


def ada_max(vals, g, beta1_power, lr, beta1, beta2, epsilon):
    tf = tf_module()
    var, m, v = vals
    one = tf.ones([], g.dtype)
    m = m + (g - m) * (one - beta1)
    v = tf.maximum(beta2 * v, tf.abs(g))
    var = var - lr / (one - beta1_power) * (m / (v + epsilon))
    return [var, m, v]


def adagrad(update_slots, sparse=False):
    def f(vals, g, lr):
        tf = tf_module()
        var, accum = vals
        if update_slots:
            accum = accum + tf.square(g)
        if sparse:
            var = var - lr * g * tf.math.rsqrt(accum)
        else:
            var = var - g * lr * tf.math.rsqrt(accum)
        return [var, accum if update_slots else None]

    return f


def adagrad_v2(update_slots, sparse=False):
    def f(vals, g, lr, epsilon):
        tf = tf_module()
        var, accum = vals
        if update_slots:
            accum = accum + tf.square(g)
        if sparse:
            var = var - lr * g / (tf.sqrt(accum) + epsilon)
        else:
            var = var - g * lr / (tf.sqrt(accum) + epsilon)
        return [var, accum if update_slots else None]

    return f


def rms_prop(vals, g, lr, rho, momentum, epsilon):
    tf = tf_module()
    var, ms, mom = vals
    one = tf.ones([], g.dtype)
    ms = ms + (tf.square(g) - ms) * (one - rho)
    mom = mom * momentum + (g * lr) / tf.sqrt(ms + epsilon)
    return [var - mom, ms, mom]


def centered_rms_prop(vals, g, lr, rho, momentum, epsilon):
    tf = tf_module()
    var, mg, ms, mom = vals
    one = tf.ones([], g.dtype)
    ms = ms + (tf.square(g) - ms) * (one - rho)
    mg = mg + (g - mg) * (one - rho)
    denom = (ms - tf.square(mg)) + epsilon
    mom = mom * momentum + (g * lr) / tf.sqrt(denom)
    return [var - mom, mg, ms, mom]


def adadelta(vals, g, lr, rho, epsilon):
    tf = tf_module()
    var, accum, accum_update = vals
    one = tf.ones([], g.dtype)
    accum = accum * rho + tf.square(g) * (one - rho)
    update = tf.sqrt(accum_update + epsilon) * tf.math.rsqrt(accum + epsilon) * g
    var = var - update * lr
    accum_update = accum_update * rho + tf.square(update) * (one - rho)
    return [var, accum, accum_update]


def ftrl(multiply_linear_by_lr, shrinkage=False):
    def f(vals, g, lr, l1, l2, *rest):
        tf = tf_module()
        var, accum, linear = vals
        if shrinkage:
            l2_shrinkage, lr_power = rest
            g_shrink = g + 2 * l2_shrinkage * var
        else:
            (lr_power,) = rest
            g_shrink = g
        two = tf.constant(2, g.dtype)
        new_accum = accum + tf.square(g)
        # TF special-cases lr_power == -0.5 with sqrt; pow(x, 0.5) may round
        # differently, so pick per value at run time.
        half = tf.equal(lr_power, tf.constant(-0.5, g.dtype))
        p_new = tf.where(half, tf.sqrt(new_accum), tf.pow(new_accum, -lr_power))
        p_old = tf.where(half, tf.sqrt(accum), tf.pow(accum, -lr_power))
        if multiply_linear_by_lr:
            linear = linear + (g_shrink * lr - (p_new - p_old) * var)
            l1e = l1 * lr
            x = l1e * sign(linear) - linear
            y = p_new + two * l2 * lr
        else:
            linear = linear + (g_shrink - (p_new - p_old) / lr * var)
            l1e = l1
            x = l1 * sign(linear) - linear
            y = p_new / lr + two * l2
        var = tf.where(tf.abs(linear) > l1e, x / y, tf.zeros_like(var))
        return [var, new_accum, linear]

    return f


def proximal_gd(vals, g, lr, l1, l2):
    tf = tf_module()
    (var,) = vals
    one = tf.ones([], g.dtype)
    prox = var - g * lr
    denom = one + l2 * lr
    shrunk = sign(prox) * tf.maximum(tf.abs(prox) - lr * l1, tf.zeros([], g.dtype)) / denom
    return [tf.where(l1 > 0, shrunk, prox / denom)]


def proximal_adagrad(vals, g, lr, l1, l2):
    tf = tf_module()
    var, accum = vals
    one = tf.ones([], g.dtype)
    accum = accum + tf.square(g)
    rate = lr * tf.math.rsqrt(accum)
    prox = var - g * rate
    denom = one + l2 * rate
    shrunk = sign(prox) * tf.maximum(tf.abs(prox) - rate * l1, tf.zeros([], g.dtype)) / denom
    return [tf.where(l1 > 0, shrunk, prox / denom), accum]


def add_sign(vals, g, lr, alpha, sign_decay, beta):
    tf = tf_module()
    var, m = vals
    one = tf.ones([], g.dtype)
    m = m * beta + g * (one - beta)
    sign_gm = sign(g) * sign(m)
    return [var - lr * (alpha + sign_decay * sign_gm) * g, m]


def power_sign(vals, g, lr, logbase, sign_decay, beta):
    tf = tf_module()
    var, m = vals
    one = tf.ones([], g.dtype)
    m = m * beta + g * (one - beta)
    sign_gm = sign(g) * sign(m)
    return [var - lr * tf.exp(logbase * sign_decay * sign_gm) * g, m]


def adagrad_da(vals, g, lr, l1, l2, gs):
    tf = tf_module()
    var, ga, da = vals
    zero = tf.zeros([], g.dtype)
    ga = ga + g
    da = da + tf.square(g)
    denom = l2 * (gs * lr) + tf.sqrt(da)
    shrunk = lr * -tf.ones([], g.dtype) * sign(ga) * tf.maximum(tf.abs(ga) - gs * l1, zero) / denom
    plain = lr * ga * -tf.ones([], g.dtype) / denom
    return [tf.where(l1 > 0, shrunk, plain), ga, da]


def sparse_adagrad_da(vals, g, lr, l1, l2, gs):
    tf = tf_module()
    var, ga, da = vals
    zero = tf.zeros([], g.dtype)
    ga = ga + g
    da = da + tf.square(g)
    denom = l2 + tf.sqrt(da) / (gs * lr)
    shrunk = -tf.ones([], g.dtype) * sign(ga) * tf.maximum(tf.abs(ga) / gs - l1, zero) / denom
    plain = -tf.ones([], g.dtype) * (ga / gs) / denom
    return [tf.where(l1 > 0, shrunk, plain), ga, da]
