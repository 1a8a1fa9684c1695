"""Argument-check cases of the elementwise family: unary, binary, gradient and clip ops."""

import numpy as np
import tensorflow as tf
from argcheck import Case, Raises, SUCCEEDS

from .common import IAE, R, UNIMP, _short, family, rand, raw


BINARY = ["AddV2", "Sub", "Mul", "RealDiv", "Maximum", "Minimum", "SquaredDifference", "DivNoNan", "Pow",
          "FloorDiv", "FloorMod", "Div", "TruncateDiv", "TruncateMod", "Xlogy", "Xlog1py", "Xdivy", "Less", "LessEqual", "Greater", "GreaterEqual", "Equal", "NotEqual"]
UNARY = ["Neg", "Square", "Sqrt", "Rsqrt", "Exp", "Log", "Relu", "Abs", "Reciprocal", "Expm1", "Log1p", "Relu6", "Elu",
         "Selu", "Softplus", "Sigmoid", "Tanh", "Erf", "Erfc", "Floor", "Ceil", "Round", "IsFinite", "IsNan", "IsInf",
         "ZerosLike", "OnesLike", "Softsign", "Sign", "Rint", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh",
         "Asinh", "Acosh", "Atanh", "LeakyRelu"]
GRADS = ["ReluGrad", "Relu6Grad", "EluGrad", "SeluGrad", "SoftplusGrad", "SigmoidGrad", "TanhGrad", "RsqrtGrad", "SqrtGrad",
         "SoftsignGrad", "LeakyReluGrad"]


def broadcastable(rng, shape):
    """A random shape that broadcasts against `shape`."""
    out = [int(d) if rng.random() < 0.6 else 1 for d in shape]
    return out[int(rng.integers(0, len(out) + 1)):]


def erf_f64_infinities():
    """TensorFlow's float64 Erf gives NaN at ±inf (its float32 Erf ±1); the
    NPU gives ±1 in both. Oracle: the CPU's Erf with ±1 put at ±inf."""
    x = tf.constant([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -2.5], tf.float64)

    def limit_at_inf(x):
        return tf.where(tf.math.is_inf(x), tf.sign(x), R.Erf(x=x))

    limit_at_inf.__name__ = "Erf with its limits at ±inf"
    return Case("Erf", lambda x: R.Erf(x=x), args=(x,), cpu_fn=limit_at_inf,
                note="deliberate difference: float64 Erf(±inf) (TensorFlow: NaN; the NPU: ±1, as TensorFlow's float32)")


def rank6(op, x, y):
    """TensorFlow's binary kernels stop at rank 5 for a broadcast that does
    not collapse (UnimplementedError "Broadcast between ... is not supported
    yet"); the NPU broadcasts any rank. Oracle: the CPU on inputs broadcast
    beforehand."""
    def pre_broadcast(x, y):
        shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(y))
        return getattr(R, op)(x=tf.tile(x, shape // tf.shape(x)), y=tf.tile(y, shape // tf.shape(y)))

    pre_broadcast.__name__ = "inputs broadcast beforehand"
    return Case(op, lambda x, y: getattr(R, op)(x=x, y=y), args=(x, y), cpu_fn=pre_broadcast,
                cpu=Raises(UNIMP, "is not supported yet"),
                note=f"deliberate difference: rank-6 broadcast (TensorFlow's kernels stop at rank 5) | {op}({_short(x)}, {_short(y)})")


@family
def cases_elementwise(rng):
    cases = []
    for op in BINARY:
        floats = ("RealDiv", "DivNoNan", "Pow", "Xlogy", "Xlog1py", "Xdivy")
        dtype = tf.float32 if op in floats or rng.random() < 0.5 else tf.int64
        if op in floats and rng.random() < 0.5:
            dtype = tf.float64
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4)))]
        other = broadcastable(rng, shape)
        x, y = rand(rng, shape, dtype, 1, 4), rand(rng, other, dtype, 1, 4)
        cases += [
            raw(op, "broadcast", x=x, y=y),
            raw(op, "broadcast swapped", x=y, y=x),
            raw(op, "rank 0", x=rand(rng, [], dtype, 1, 4), y=rand(rng, [2, 3], dtype, 1, 4)),
            raw(op, "size 0 against 1", x=rand(rng, [0, 3], dtype), y=rand(rng, [1, 3], dtype, 1, 4)),
            raw(op, "incompatible shapes", x=rand(rng, [2, 3], dtype), y=rand(rng, [3, 2], dtype)),
            raw(op, "incompatible size 0 against 2", x=rand(rng, [0], dtype), y=rand(rng, [2], dtype)),
            rank6(op, rand(rng, [2, 1, 2, 1, 2, 1], dtype, 1, 4), rand(rng, [1, 2, 1, 2, 1, 2], dtype, 1, 4)),
        ]
    i64 = tf.int64
    cases += [
        raw("FloorDiv", "integer division by zero", x=tf.constant([4, 5], i64), y=tf.constant([2, 0], i64)),
        raw("FloorMod", "integer modulo by zero", x=tf.constant([4, 5], i64), y=tf.constant([2, 0], i64)),
        raw("FloorDiv", "unsigned division by zero", x=tf.constant([4, 5], tf.uint8), y=tf.constant([2, 0], tf.uint8)),
        raw("FloorDiv", "float division by zero", x=tf.constant([4.0, -5.0, 0.0]), y=tf.constant([0.0, 0.0, 0.0])),
        raw("FloorMod", "float modulo by zero", x=tf.constant([4.0, -5.0]), y=tf.constant([0.0, 0.0])),
        raw("FloorDiv", "negative operands", x=tf.constant([-7, 7, -7, 7], i64), y=tf.constant([2, -2, -2, 2], i64)),
        raw("FloorMod", "negative operands", x=tf.constant([-7, 7, -7, 7], i64), y=tf.constant([2, -2, -2, 2], i64)),
        raw("FloorDiv", "int8 min by -1", x=tf.constant([-128], tf.int8), y=tf.constant([-1], tf.int8)),
        raw("Div", "integer division by zero", x=tf.constant([4, 5], i64), y=tf.constant([2, 0], i64)),
        # TensorFlow's TruncateDiv and TruncateMod raise InternalError here
        # (its BinaryOp knows only Div's and FloorMod's errors); the NPU says
        # what Div and FloorMod say.
        raw("TruncateDiv", "deliberate difference: integer division by zero (TensorFlow: InternalError)",
            x=tf.constant([4, 5], tf.int8), y=tf.constant([2, 0], tf.int8),
            cpu=Raises(tf.errors.InternalError, "only integer div and mod should have errors"),
            npu=Raises(IAE, "Integer division by zero")),
        raw("TruncateMod", "deliberate difference: integer modulo by zero (TensorFlow: InternalError)",
            x=tf.constant([4, 5], i64), y=tf.constant([2, 0], i64),
            cpu=Raises(tf.errors.InternalError, "only integer div and mod should have errors"),
            npu=Raises(IAE, "Integer division by zero")),
        raw("TruncateDiv", "negative operands", x=tf.constant([-7, 7, -7, 7], i64), y=tf.constant([2, -2, -2, 2], i64)),
        raw("TruncateMod", "negative operands", x=tf.constant([-7, 7, -7, 7], i64), y=tf.constant([2, -2, -2, 2], i64)),
        raw("TruncateMod", "float negative operands", x=tf.constant([-7.5, 7.5, -7.5, 0.0]), y=tf.constant([2.0, -2.0, 0.0, 3.0])),
        raw("Div", "float division by zero", x=tf.constant([4.0, -5.0, 0.0]), y=tf.constant([0.0, 0.0, 0.0])),
        raw("Atan2", "broadcast", y=rand(rng, [2, 3]), x=rand(rng, [3])),
        raw("Atan2", "incompatible", y=rand(rng, [2, 3]), x=rand(rng, [2])),
        raw("Xlogy", "zeros", x=tf.constant([0.0, 0.0, 0.0, 2.0]), y=tf.constant([0.0, np.nan, -1.0, 0.0])),
        raw("Xdivy", "zeros", x=tf.constant([0.0, 0.0, 1.0]), y=tf.constant([0.0, np.nan, 0.0])),
        raw("DivNoNan", "zero denominators", x=tf.constant([1.0, 0.0, -2.0]), y=tf.constant([0.0, 0.0, 4.0])),
        raw("AddN", "three", inputs=[rand(rng, [2, 3]) for _ in range(3)]),
        raw("AddN", "one", inputs=[rand(rng, [2, 3], i64)], graph=False),
        raw("AddN", "shape mismatch", inputs=[rand(rng, [2, 3]), rand(rng, [3, 2])]),
        raw("AddN", "no broadcasting", inputs=[rand(rng, [2, 3]), rand(rng, [1, 3])]),
        raw("AddN", "size 0", inputs=[rand(rng, [0, 3]), rand(rng, [0, 3])]),
        raw("BitwiseAnd", "broadcast", x=rand(rng, [2, 3], i64), y=rand(rng, [3], i64)),
        raw("BitwiseOr", "incompatible", x=rand(rng, [2, 3], tf.uint8), y=rand(rng, [2], tf.uint8)),
        raw("BitwiseXor", "int32", x=rand(rng, [4], tf.int32), y=rand(rng, [1], tf.int32)),
        raw("LogicalAnd", "broadcast", x=rand(rng, [2, 1], tf.bool), y=rand(rng, [3], tf.bool)),
        raw("LogicalOr", "incompatible", x=rand(rng, [2], tf.bool), y=rand(rng, [3], tf.bool)),
        raw("LogicalNot", "size 0", x=rand(rng, [0, 2], tf.bool)),
        raw("BiasAdd", "valid", value=rand(rng, [2, 3, 4]), bias=rand(rng, [4])),
        raw("BiasAdd", "NCHW", value=rand(rng, [2, 3, 4, 5]), bias=rand(rng, [3]), data_format="NCHW"),
        raw("BiasAdd", "NCHW rank 3", value=rand(rng, [2, 3, 4]), bias=rand(rng, [3]), data_format="NCHW"),
        raw("BiasAdd", "NCHW rank 2", value=rand(rng, [2, 3]), bias=rand(rng, [3]), data_format="NCHW"),
        raw("BiasAdd", "bias size mismatch", value=rand(rng, [2, 3, 4]), bias=rand(rng, [3])),
        raw("BiasAdd", "bias rank 2", value=rand(rng, [2, 3, 4]), bias=rand(rng, [1, 4])),
        raw("BiasAdd", "bias rank 0", value=rand(rng, [2, 3, 4]), bias=rand(rng, [])),
        raw("BiasAdd", "value rank 1", value=rand(rng, [4]), bias=rand(rng, [4])),
        raw("BiasAdd", "size 0", value=rand(rng, [0, 4], i64), bias=rand(rng, [4], i64)),
        raw("BiasAddV1", "valid", value=rand(rng, [2, 4]), bias=rand(rng, [4])),
        raw("BiasAddV1", "bias size mismatch", value=rand(rng, [2, 4]), bias=rand(rng, [3])),
        raw("Fill", "int32 dims", dims=[2, 3], value=tf.constant(1.5)),
        raw("Fill", "int64 dims", dims=tf.constant([2, 0, 3], i64), value=tf.constant(7, i64)),
        raw("Fill", "scalar result", dims=tf.zeros([0], tf.int32), value=tf.constant(True)),
        raw("Fill", "negative dim", dims=[2, -3], value=tf.constant(1.5)),
        raw("Fill", "dims rank 2", dims=[[2, 3]], value=tf.constant(1.5)),
        raw("Fill", "value rank 1", dims=[2, 3], value=tf.constant([1.5])),
        raw("Select", "same shapes", condition=rand(rng, [2, 3], tf.bool), x=rand(rng, [2, 3]), y=rand(rng, [2, 3])),
        raw("Select", "vector condition", condition=rand(rng, [2], tf.bool), x=rand(rng, [2, 3], i64), y=rand(rng, [2, 3], i64)),
        raw("Select", "scalar condition", condition=tf.constant(True), x=rand(rng, [2, 3]), y=rand(rng, [2, 3])),
        raw("Select", "condition mismatch", condition=rand(rng, [3], tf.bool), x=rand(rng, [2, 3]), y=rand(rng, [2, 3])),
        raw("Select", "t/e mismatch", condition=rand(rng, [2, 3], tf.bool), x=rand(rng, [2, 3]), y=rand(rng, [3, 2])),
        raw("Select", "vector condition, scalar t", condition=rand(rng, [2], tf.bool), x=rand(rng, []), y=rand(rng, [])),
        raw("SelectV2", "broadcast", condition=rand(rng, [2, 1], tf.bool), t=rand(rng, [3]), e=rand(rng, [])),
        raw("SelectV2", "incompatible", condition=rand(rng, [2], tf.bool), t=rand(rng, [3]), e=rand(rng, [3])),
        raw("SelectV2", "size 0", condition=rand(rng, [0, 1], tf.bool), t=rand(rng, [1, 2], tf.int32), e=rand(rng, [2], tf.int32)),
    ]
    for op in UNARY:
        dtype = tf.float64 if rng.random() < 0.3 else tf.float32
        if op == "Erf":
            dtype = tf.float32
        arg = "features" if op in ("Relu", "Relu6", "Elu", "Selu", "Softplus", "Softsign", "LeakyRelu") else "x"
        cases += [
            raw(op, "random", **{arg: rand(rng, [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4)))], dtype)}),
            raw(op, "special values", **{arg: tf.constant([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -2.5], dtype)}),
        ]
        if op == "Erf":
            cases.append(erf_f64_infinities())
    for alpha in (0.0, -0.5, 2.0):
        x = rand(rng, [3, 4])
        cases += [
            raw("LeakyRelu", f"alpha {alpha}", features=x, alpha=alpha),
            raw("LeakyReluGrad", f"alpha {alpha}", gradients=rand(rng, [3, 4]), features=x, alpha=alpha),
        ]
    for op in GRADS:
        a = "y" if op in ("SigmoidGrad", "TanhGrad", "RsqrtGrad", "SqrtGrad") else "gradients"
        b = "dy" if a == "y" else ("features" if op != "EluGrad" and op != "SeluGrad" else "outputs")
        cases += [
            raw(op, "same shape", **{a: rand(rng, [2, 3], tf.float32, 1, 3), b: rand(rng, [2, 3], tf.float32, 1, 3)}),
            raw(op, "shape mismatch", **{a: rand(rng, [2, 3]), b: rand(rng, [3, 2])}),
            raw(op, "no broadcasting", **{a: rand(rng, [2, 3]), b: rand(rng, [1, 3])}),
        ]
    cases += clip_cases(rng)
    return cases


def clip_cases(rng):
    x = rand(rng, [3, 4])
    x_nan = tf.constant([[1.0, np.nan, -2.0, 5.0]])
    cases = []
    for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int64):
        t = tf.cast(x, dtype)
        cases += [
            raw("ClipByValue", f"scalar bounds {dtype.name}", t=t, clip_value_min=tf.cast(-1, dtype), clip_value_max=tf.cast(1, dtype)),
            raw("ClipByValue", f"tensor bounds {dtype.name}", t=t, clip_value_min=tf.cast(rand(rng, [3, 4]) - 1, dtype),
                clip_value_max=tf.cast(rand(rng, [3, 4]) + 1, dtype)),
        ]
    cases += [
        raw("ClipByValue", "lo > hi", t=x, clip_value_min=2.0, clip_value_max=-2.0),
        raw("ClipByValue", "NaN input", t=x_nan, clip_value_min=-1.0, clip_value_max=1.0),
        raw("ClipByValue", "NaN bounds", t=x_nan, clip_value_min=float("nan"), clip_value_max=float("nan")),
        raw("ClipByValue", "bound of another shape", t=x, clip_value_min=rand(rng, [4]), clip_value_max=1.0),
        raw("ClipByValue", "bound vector of 1", t=x, clip_value_min=[0.0], clip_value_max=1.0),
        raw("ClipByValue", "empty", t=rand(rng, [0, 4]), clip_value_min=0.0, clip_value_max=1.0),
    ]
    return cases


@family
def cases_cast(rng):
    cases = []
    f32, i64 = tf.float32, tf.int64
    special = tf.constant([0.0, -0.0, 1.5, -1.5, 2.5, -2.5, 1e10, -1e10, np.inf, -np.inf, np.nan, 3e38], f32)
    for dst in (tf.int64, tf.int32, tf.int8, tf.uint8, tf.bool, tf.float16, tf.bfloat16, tf.float64):
        cases.append(raw("Cast", f"float32 specials to {dst.name}", x=special, DstT=dst))
    # A float out of the integer type's range (or NaN, inf) converts with
    # undefined behaviour in C++: TensorFlow's result depends on the SIMD
    # path an element takes. The NPU's is fixed; it is not compared.
    for src, dst in ((f32, tf.uint32), (f32, tf.uint64), (tf.bfloat16, tf.uint8), (tf.bfloat16, tf.int8)):
        cases.append(raw("Cast", f"deliberate difference: out-of-range {src.name} to {dst.name} (undefined in TensorFlow)",
                         x=tf.cast(special, src), DstT=dst, cpu=SUCCEEDS, npu=SUCCEEDS))
    for src in (tf.int64, tf.int8, tf.uint16, tf.bool, tf.float64, tf.bfloat16):
        for dst in (tf.float32, tf.int32, tf.uint8, tf.bool):
            if src != dst:
                lo, hi = (0, 255) if src.is_floating else (-300, 300)
                cases.append(raw("Cast", f"{src.name} to {dst.name}", x=rand(rng, [3, 4], src, lo, hi), DstT=dst))
    cases += [
        raw("Cast", "Truncate", x=tf.constant([1.0e10, -3.7], tf.float64), DstT=f32, Truncate=True),
        raw("Cast", "size 0", x=rand(rng, [0, 3], i64), DstT=f32),
        raw("Cast", "rank 0", x=tf.constant(2**40, i64), DstT=tf.int32),
        raw("Cast", "int64 extremes to float", x=tf.constant([2**63 - 1, -(2**63)], i64), DstT=tf.float32),
    ]
    return cases
