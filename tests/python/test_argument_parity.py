"""Argument checks of every NPU kernel family against TensorFlow's CPU
kernels (argcheck.py). One table of `Case`s per family of
crates/tfa-ops/src/families, each in its module of parity/ (elementwise,
cast, matmul, conv, pool, reduce, segment, loss, movement, random, image,
inplace, volume, complex): valid and invalid argument sets, fixed
edge cases (size-0 dims, rank 0, negative and out-of-range axes, mismatched
shapes, bad attributes, int32 and int64 index tensors, attributes out of
int32 range) and seeded random ones (ARGCHECK_SEED; failures print it).
Every case runs eagerly; every case whose error does not come from shape
inference (`graph=True`) also inside a tf.function, on placeholders of
unknown shape. Cases marked "issue 16" are those of issue 16.

The oracle is what TensorFlow 2.21's CPU does for the same call by default.
For float32 conv/pool that is a oneDNN kernel, so those families run every
case in float32 and float64 (TensorFlow's reference Eigen kernels):

* Where the default float32 kernel aborts the process, takes invalid input,
  returns garbage (a wrong shape, stale memory) or fails with an internal
  error (AbortedError), the float32 case says so (`onednn=`) and its oracle
  is the same call in float64.
* Where the Eigen kernels (float64, float16) differ from the default
  float32 kernel, the NPU follows the default kernel and the float64 case
  is a documented difference (`eigen=`): the error class for dilations or
  strides in the batch/depth dimension (Conv2D dilations,
  Conv2DBackpropInput, DepthwiseConv2dNative), grouped and dilated conv
  gradients, unequal depthwise strides and dilations, 2-value input_sizes
  of DepthwiseConv2dNativeBackpropInput, AvgPoolGrad with a window larger
  than the input (the NPU and oneDNN: AvgPool's adjoint), AvgPoolGrad with
  ksize 0 or stride 0 and an empty output (refused, as by default), and
  depthwise gradients the Eigen kernel leaves uninitialized (the NPU gives
  zeros).

Deliberate differences from TensorFlow (`npu=` or an oracle spelled another
way, `cpu_fn=`), each where its case says why:

* NCHW conv/pool: TensorFlow's Eigen kernels take only NHWC; the NPU takes
  NCHW for every type, as TensorFlow's GPU kernels do (compared with the
  CPU's NHWC result, transposed).
* DepthwiseConv2dNativeBackpropInput/Filter: TensorFlow ignores
  `dilations` (any value; it computes the undilated gradient); the NPU
  honours and checks them, as the forward op does.
* AvgPoolGrad with a grad of another depth or more images: TensorFlow 2.21
  reads or writes out of bounds (it crashes or scrambles channels); the NPU
  refuses it ("Expected grad shape ...", as newer TensorFlow does). A grad
  whose rows/columns differ, or with fewer images, is taken as in 2.21.
* SplitV sizes that add up only by int32 wrap-around: TensorFlow crashes;
  the NPU raises ResourceExhausted (what TensorFlow raises where it tries
  to allocate such outputs).
* Integer TruncateDiv/TruncateMod by zero: TensorFlow raises InternalError
  (its binary kernel expects only Div and FloorMod to fail); the NPU raises
  InvalidArgumentError "Integer division by zero", as for Div and FloorMod.
* Transpose: an int64 perm entry outside int32 range is out of range
  (TensorFlow narrows it: 2**32 reads as 0).
* Binary ops broadcasting 6 dims that do not collapse: TensorFlow raises
  UnimplementedError; the NPU computes them.
* float64 Erf(±inf): TensorFlow gives NaN, the NPU ±1 (as TensorFlow's
  float32 Erf).
* Cast of an out-of-range float to an integer: undefined in C++;
  TensorFlow's result depends on the SIMD path, the NPU's is fixed.
* Einsum with an output label missing from the inputs or repeated:
  TensorFlow's kernel returns a result of a made-up shape (shape inference
  rejects it in a graph); the NPU raises InvalidArgumentError.
* Stateless random ops with a 1-element Philox counter: TensorFlow reads
  past its end; the NPU reads the missing word as 0.
"""

import pytest
import tensorflow as tf
from argcheck import Case, check_all
from parity import FAMILIES, SEED, build
from parity.common import R


# The conv and pool cases were recorded against TensorFlow's oneDNN CPU
# kernels (its default on AVX-512 CPUs). Where TensorFlow runs its Eigen
# kernels instead (AVX2-only CPUs, or TF_ENABLE_ONEDNN_OPTS=0), those reject
# ~30 argument sets that oneDNN and the NPU compute, so the oracle differs:
# run with TF_ENABLE_ONEDNN_OPTS=1 to check these families there.
ONEDNN_FAMILIES = {"conv", "pool", "volume"}


def skip_without_onednn(name):
    from tensorflow.python.util import _pywrap_util_port

    if name in ONEDNN_FAMILIES and not _pywrap_util_port.IsMklEnabled():
        pytest.skip("TensorFlow CPU runs its Eigen kernels here; the cases record oneDNN's (TF_ENABLE_ONEDNN_OPTS=1)")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_eager(name):
    skip_without_onednn(name)
    check_all(build(name), context=f"ARGCHECK_SEED={SEED} ")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_graph(name):
    skip_without_onednn(name)
    cases = build(name)
    check_all(cases, graph=True, context=f"ARGCHECK_SEED={SEED} ")


def test_helper_catches_differences():
    """argcheck fails a case whose op did not run on the NPU, and one whose
    outcomes differ (values, or exception classes), showing both."""
    from argcheck import Mismatch, check

    x = tf.constant([1.0, 2.0])
    add = lambda x: R.AddV2(x=x, y=x)  # noqa: E731
    with pytest.raises(Mismatch, match="kernel for Lgamma"):
        check(Case("Lgamma", lambda x: R.Lgamma(x=x), args=(x,)))
    with pytest.raises(Mismatch, match="kernel for Sub did not run"):
        check(Case("Sub", add, args=(x,)))
    with pytest.raises(Mismatch, match=r"(?s)differs at \[0\].*CPU oracle .*NPU: ok float32\[2\]"):
        check(Case("AddV2", add, args=(x,), cpu_fn=lambda x: R.AddV2(x=x, y=2 * x)))
    with pytest.raises(Mismatch, match="(?s)different exception classes.*UnimplementedError.*InvalidArgumentError"):
        check(Case("AddV2", lambda x: R.AddV2(x=x, y=tf.ones([3])), args=(x,),
                   cpu_fn=lambda x: R.MaxPool(input=tf.ones([1, 2, 2, 1]), ksize=[2, 1, 1, 1], strides=[1, 1, 1, 1], padding="VALID")))
    check(Case("AddV2", lambda x, y: R.AddV2(x=x, y=y), args=(x, 2 * x)), graph=True)
