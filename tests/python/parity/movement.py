"""Argument-check cases of the movement family: reshape, slicing, concat/split, gather/scatter, padding."""

import numpy as np
import tensorflow as tf
from argcheck import Raises, SUCCEEDS

from .common import IAE, family, rand, raw


@family
def cases_movement(rng):
    cases = []
    x4 = rand(rng, [2, 3, 4, 5])
    x10 = tf.constant(np.arange(10.0))
    i64 = tf.int64
    # Transpose: TensorFlow takes perm entries in [-rank, rank).
    perms = [[0, -1, 1, 2], [-4, -3, -2, -1], [3, 2, 1, 0], [0, -1, 3, 2], [0, 1, 1, 2], [-5, 1, 2, 3], [4, 1, 2, 3],
             [0, 1, 2], [0, 1, 2, 3, 4], [-1, 1, 2, 0]]
    for p in perms:
        for itype in (tf.int32, i64):
            cases.append(raw("Transpose", f"issue 16: perm {p}", x=x4, perm=tf.constant(p, itype), match=r"out of range|missing|expects a vector"))
    cases += [
        raw("Transpose", "perm 2-D", x=x4, perm=[[0, 1, 2, 3]]),
        raw("Transpose", "rank 0", x=tf.constant(1.0), perm=tf.zeros([0], tf.int32)),
        raw("Transpose", "size 0", x=rand(rng, [0, 3], i64), perm=[1, 0]),
        raw("Transpose", "perm of 2**31 + 1", x=rand(rng, [2, 3]), perm=tf.constant([2**31 + 1, 0], i64)),
        raw("Transpose", "perm of -2**31 - 1", x=rand(rng, [2, 3]), perm=tf.constant([-(2**31) - 1, 0], i64)),
        # TensorFlow narrows int64 perm entries to int32: 2**32 reads as 0.
        raw("Transpose", "deliberate difference: perm entry 2**32 (TensorFlow: 0)", x=rand(rng, [2, 3]),
            perm=tf.constant([2**32, 1], i64), cpu=SUCCEEDS, npu=Raises(IAE, "4294967296 is out of range")),
    ]
    # Split / SplitV.
    cases += [
        raw("SplitV", "valid", value=x10, size_splits=[2, 2, 6], axis=0, num_split=3),
        raw("SplitV", "one -1", value=x10, size_splits=[2, -1, 6], axis=0, num_split=3),
        raw("SplitV", "issue 16: num_split larger than size_splits", value=x10, size_splits=[2, 2, 6], axis=0, num_split=4,
            match="size of the split_tensor must be 1-D and have the same elements as outputs got 1 -D and 3 elements"),
        raw("SplitV", "num_split smaller than size_splits", value=x10, size_splits=[2, 2, 6], axis=0, num_split=2,
            match="same elements as outputs"),
        raw("SplitV", "issue 16: size -2", value=x10, size_splits=[-2, 6, 6], axis=0, num_split=3,
            match=r"^Split size at index 0 must be >= 0. Got: -2$"),
        raw("SplitV", "two -1", value=x10, size_splits=[-1, -1, 6], axis=0, num_split=3, match="^There can only be one -1 in the input.$"),
        raw("SplitV", "-1 with sizes over the dim", value=x10, size_splits=[-1, 6, 6], axis=0, num_split=3),
        raw("SplitV", "-1 and -2", value=x10, size_splits=[-1, -2, 6], axis=0, num_split=3),
        raw("SplitV", "sum short", value=x10, size_splits=[2, 2, 5], axis=0, num_split=3),
        raw("SplitV", "issue 16: axis [0]", value=x10, size_splits=[2, 2, 6], axis=[0], num_split=3),
        raw("SplitV", "axis [[0]]", value=x10, size_splits=[2, 2, 6], axis=[[0]], num_split=3),
        raw("SplitV", "axis [0, 0]", value=x10, size_splits=[2, 2, 6], axis=[0, 0], num_split=3,
            match="split_dim_tensor must have exactly one element"),
        raw("SplitV", "axis empty", value=x10, size_splits=[2, 2, 6], axis=tf.zeros([0], tf.int32), num_split=3),
        raw("SplitV", "axis out of range", value=x10, size_splits=[2, 2, 6], axis=1, num_split=3),
        raw("SplitV", "negative axis", value=x4, size_splits=[1, 4], axis=-1, num_split=2),
        raw("SplitV", "size_splits 2-D", value=x10, size_splits=[[2, 2, 6]], axis=0, num_split=3),
        # Grappler removes a one-way split from a graph: eager only.
        raw("SplitV", "num_split 1", value=x10, size_splits=[10], axis=0, num_split=1, graph=False),
        raw("SplitV", "num_split 1, wrong size", value=x10, size_splits=[9], axis=0, num_split=1, graph=False),
        raw("SplitV", "num_split 1, -1", value=x10, size_splits=[-1], axis=0, num_split=1, graph=False),
        raw("SplitV", "int64 sizes", value=x4, size_splits=tf.constant([1, 0, 2], i64), axis=1, num_split=3),
        raw("SplitV", "issue 16: int64 overflow to a match", value=x10, size_splits=tf.constant([2**62, 2**62, 2**62, -1], i64), axis=0, num_split=4),
        raw("SplitV", "int64 overflow", value=x10, size_splits=tf.constant([2**63 - 1, 2], i64), axis=0, num_split=2),
        raw("SplitV", "int64 overflow with -1", value=x10, size_splits=tf.constant([2**63 - 1, 2, -1], i64), axis=0, num_split=3),
        raw("SplitV", "int32 overflow", value=x10, size_splits=tf.constant([2**31 - 1, 2], tf.int32), axis=0, num_split=2),
        # TensorFlow's int32 sum wraps to 2: outputs of 2**31 - 1 elements
        # sliced out of a 10-element input crash the process. The NPU raises
        # ResourceExhausted (what TensorFlow raises where it allocates them).
        raw("SplitV", "deliberate difference: int32 overflow with -1 (TensorFlow crashes)", value=x10,
            size_splits=tf.constant([2**31 - 1, 2**31 - 1, 4, -1], tf.int32), axis=0, npu=Raises(tf.errors.ResourceExhaustedError),
            num_split=4),
        raw("SplitV", "rank 0 value", value=tf.constant(1.0), size_splits=[1], axis=0, num_split=1, graph=False),
        raw("SplitV", "size 0 dim", value=rand(rng, [0, 3]), size_splits=[0, -1], axis=0, num_split=2),
        raw("Split", "valid", axis=1, value=x4, num_split=3),
        raw("Split", "negative axis", axis=-3, value=x4, num_split=3),
        raw("Split", "not divisible", axis=1, value=x4, num_split=2),
        raw("Split", "axis [1]", axis=[1], value=x4, num_split=3),
        raw("Split", "axis out of range", axis=4, value=x4, num_split=2),
        raw("Split", "size 0", axis=0, value=rand(rng, [0, 3]), num_split=2),
        raw("Unpack", "valid", value=x4, num=3, axis=1),
        raw("Unpack", "negative axis", value=x4, num=5, axis=-1),
        raw("Unpack", "num mismatch", value=x4, num=4, axis=1),
        raw("Unpack", "axis out of range", value=x4, num=2, axis=4),
    ]
    # Reshape.
    cases += [
        raw("Reshape", "valid", tensor=x4, shape=[6, -1]),
        raw("Reshape", "int64", tensor=x4, shape=tf.constant([-1, 2, 5], i64)),
        raw("Reshape", "two -1", tensor=x4, shape=[-1, -1]),
        raw("Reshape", "mismatch", tensor=x4, shape=[7, 3]),
        raw("Reshape", "negative", tensor=x4, shape=[-2, 60]),
        raw("Reshape", "-1 with 0", tensor=rand(rng, [0, 3]), shape=[0, -1]),
        raw("Reshape", "scalar to []", tensor=tf.constant([1.0]), shape=tf.zeros([0], tf.int32)),
        raw("Reshape", "shape 2-D", tensor=x4, shape=[[120]]),
        raw("Reshape", "scalar shape", tensor=tf.constant([1.0]), shape=1),
    ]
    # Slices.
    cases += [
        raw("Slice", "valid", input=x4, begin=[0, 1, 0, 2], size=[2, -1, 3, 2]),
        raw("Slice", "int64", input=x4, begin=tf.constant([1, 0, 0, 0], i64), size=tf.constant([1, 1, 1, 1], i64)),
        raw("Slice", "out of bounds", input=x4, begin=[0, 2, 0, 0], size=[1, 2, 1, 1]),
        raw("Slice", "negative begin", input=x4, begin=[0, -1, 0, 0], size=[1, 1, 1, 1]),
        raw("Slice", "size -2", input=x4, begin=[0, 0, 0, 0], size=[1, -2, 1, 1]),
        raw("Slice", "length mismatch", input=x4, begin=[0, 0, 0], size=[1, 1, 1, 1]),
        raw("Slice", "size 0", input=x4, begin=[2, 3, 4, 5], size=[0, 0, 0, 0]),
        raw("StridedSlice", "valid", input=x4, begin=[0, 1], end=[2, 3], strides=[1, 1]),
        raw("StridedSlice", "negative stride", input=x4, begin=[-1, 0], end=[0, 3], strides=[-1, 2]),
        raw("StridedSlice", "stride 0", input=x4, begin=[0], end=[1], strides=[0]),
        raw("StridedSlice", "length mismatch", input=x4, begin=[0, 0], end=[1], strides=[1]),
        raw("StridedSlice", "shrink out of range", input=x4, begin=[5], end=[6], strides=[1], shrink_axis_mask=1),
        raw("StridedSlice", "shrink negative", input=x4, begin=[-1], end=[0], strides=[1], shrink_axis_mask=1),
        raw("StridedSlice", "ellipsis and new axis", input=x4, begin=[0, 0, 1], end=[0, 0, 2], strides=[1, 1, 1],
            ellipsis_mask=1, new_axis_mask=2),
        raw("StridedSlice", "two ellipses", input=x4, begin=[0, 0], end=[0, 0], strides=[1, 1], ellipsis_mask=3),
        raw("StridedSlice", "begin 2-D", input=x4, begin=[[0]], end=[[1]], strides=[[1]]),
        raw("StridedSlice", "int64 indices", input=x4, begin=tf.constant([0, 1], i64), end=tf.constant([2, 3], i64),
            strides=tf.constant([1, 1], i64)),
        raw("StridedSliceGrad", "valid", shape=[2, 3], begin=[0, 1], end=[2, 3], strides=[1, 1], dy=rand(rng, [2, 2])),
        raw("StridedSliceGrad", "dy shape mismatch", shape=[2, 3], begin=[0, 1], end=[2, 3], strides=[1, 1], dy=rand(rng, [2, 3])),
    ]
    # Concat / Pack.
    a, b = rand(rng, [2, 3]), rand(rng, [2, 4])
    cases += [
        raw("ConcatV2", "valid", values=[a, b], axis=1),
        raw("ConcatV2", "negative axis int64", values=[a, b], axis=tf.constant(-1, i64)),
        raw("ConcatV2", "axis out of range", values=[a, b], axis=2),
        raw("ConcatV2", "shape mismatch", values=[a, b], axis=0),
        raw("ConcatV2", "rank mismatch", values=[a, rand(rng, [2, 3, 1])], axis=1),
        raw("ConcatV2", "axis vector", values=[a, b], axis=[1]),
        raw("ConcatV2", "size 0 piece", values=[a, rand(rng, [2, 0])], axis=1),
        raw("ConcatV2", "rank 0 pieces", values=[tf.constant(1.0), tf.constant(2.0)], axis=0),
        raw("Pack", "valid", values=[a, a], axis=1),
        raw("Pack", "negative axis", values=[a, a], axis=-3),
        raw("Pack", "axis out of range", values=[a, a], axis=3),
        raw("Pack", "shape mismatch", values=[a, b], axis=0),
    ]
    # Pad / Tile / BroadcastTo.
    cases += [
        raw("Pad", "valid", input=x4, paddings=[[0, 1], [2, 0], [0, 0], [1, 1]]),
        raw("Pad", "int64", input=rand(rng, [2, 3], i64), paddings=tf.constant([[1, 1], [0, 2]], i64)),
        raw("Pad", "negative", input=x4, paddings=[[0, 1], [-1, 0], [0, 0], [1, 1]]),
        raw("Pad", "wrong rows", input=x4, paddings=[[0, 1], [2, 0]]),
        raw("Pad", "wrong columns", input=x4, paddings=[[0], [2], [0], [1]]),
        raw("Pad", "rank 0", input=tf.constant(1.0), paddings=tf.zeros([0, 2], tf.int32)),
        raw("PadV2", "valid", input=rand(rng, [2, 3]), paddings=[[1, 0], [0, 2]], constant_values=tf.constant(7.0)),
        raw("PadV2", "constant not scalar", input=rand(rng, [2, 3]), paddings=[[1, 0], [0, 2]], constant_values=tf.constant([7.0])),
        raw("Tile", "valid", input=rand(rng, [2, 3]), multiples=[2, 0]),
        raw("Tile", "int64", input=rand(rng, [2, 3], tf.bool), multiples=tf.constant([1, 3], i64)),
        raw("Tile", "negative", input=rand(rng, [2, 3]), multiples=[2, -1]),
        raw("Tile", "length mismatch", input=rand(rng, [2, 3]), multiples=[2]),
        raw("Tile", "multiples 2-D", input=rand(rng, [2, 3]), multiples=[[2, 1]]),
        raw("BroadcastTo", "valid", input=rand(rng, [3, 1]), shape=[2, 3, 4]),
        raw("BroadcastTo", "incompatible", input=rand(rng, [3, 2]), shape=[3, 4]),
        raw("BroadcastTo", "fewer dims", input=rand(rng, [2, 3]), shape=[3]),
        raw("BroadcastTo", "negative", input=rand(rng, [1]), shape=[-2]),
        raw("BroadcastTo", "int64 size 0", input=rand(rng, [1, 3]), shape=tf.constant([0, 3], i64)),
    ]
    # Gather / OneHot / DynamicStitch / scatter / Bitcast.
    params = rand(rng, [4, 3])
    cases += [
        raw("GatherV2", "valid", params=params, indices=[3, 0, 1], axis=0),
        raw("GatherV2", "int64 indices, axis", params=params, indices=tf.constant([[2, 0]], i64), axis=tf.constant(-1, i64)),
        raw("GatherV2", "index out of range", params=params, indices=[4], axis=0),
        raw("GatherV2", "negative index", params=params, indices=[-1], axis=0),
        raw("GatherV2", "axis out of range", params=params, indices=[0], axis=2),
        raw("GatherV2", "axis vector", params=params, indices=[0], axis=[0]),
        raw("GatherV2", "batch_dims", params=rand(rng, [2, 3, 4]), indices=tf.constant([[0, 2], [1, 1]]), axis=2, batch_dims=1),
        raw("GatherV2", "batch_dims > axis", params=rand(rng, [2, 3, 4]), indices=tf.constant([[0, 2], [1, 1]]), axis=0, batch_dims=1),
        raw("GatherV2", "negative batch_dims", params=rand(rng, [2, 3, 4]), indices=tf.constant([[0, 2], [1, 1]]), axis=1, batch_dims=-1),
        raw("GatherV2", "batch_dims >= indices rank", params=rand(rng, [2, 3]), indices=tf.constant([0, 1]), axis=1, batch_dims=2),
        raw("GatherV2", "empty params axis", params=rand(rng, [0, 3]), indices=tf.zeros([0], tf.int32), axis=0),
        raw("GatherV2", "index into empty", params=rand(rng, [0, 3]), indices=[0], axis=0),
        raw("GatherNd", "full tuples", params=params, indices=[[3, 2], [0, 0]]),
        raw("GatherNd", "row slices, int64", params=params, indices=tf.constant([[[1]], [[3]]], i64)),
        raw("GatherNd", "empty tuples", params=params, indices=tf.zeros([2, 0], tf.int32)),
        raw("GatherNd", "vector indices", params=params, indices=[1, 2]),
        raw("GatherNd", "tuple out of range", params=params, indices=[[0, 1], [4, 0]]),
        raw("GatherNd", "negative coordinate", params=params, indices=[[0, -1]]),
        raw("GatherNd", "out of range ignored", params=params, indices=[[0, 1], [4, 0]], bad_indices_policy="IGNORE"),
        raw("GatherNd", "tuple longer than params rank", params=params, indices=[[0, 1, 0]]),
        raw("GatherNd", "scalar params", params=tf.constant(1.0), indices=tf.zeros([1, 0], tf.int32)),
        raw("GatherNd", "scalar indices", params=params, indices=tf.constant(1)),
        raw("GatherNd", "empty params", params=rand(rng, [0, 3]), indices=tf.zeros([2, 0], tf.int32)),
        raw("GatherNd", "no tuples into empty params", params=rand(rng, [0, 3]), indices=tf.zeros([0, 1], tf.int32)),
        raw("OneHot", "valid", indices=[0, 2, -1, 5], depth=4, on_value=tf.constant(1.0), off_value=tf.constant(0.0)),
        raw("OneHot", "axis 0", indices=tf.constant([[0, 2]], i64), depth=3, on_value=tf.constant(5, i64), off_value=tf.constant(1, i64),
            axis=0),
        raw("OneHot", "negative depth", indices=[0, 1], depth=-1, on_value=tf.constant(1.0), off_value=tf.constant(0.0)),
        raw("OneHot", "depth vector", indices=[0, 1], depth=[2], on_value=tf.constant(1.0), off_value=tf.constant(0.0)),
        raw("OneHot", "axis -2", indices=[0, 1], depth=2, on_value=tf.constant(1.0), off_value=tf.constant(0.0), axis=-2, graph=False),
        raw("OneHot", "on_value vector", indices=[0, 1], depth=2, on_value=tf.constant([1.0]), off_value=tf.constant(0.0)),
        raw("DynamicStitch", "valid", indices=[tf.constant([0, 2]), tf.constant([1])], data=[rand(rng, [2, 3]), rand(rng, [1, 3])]),
        raw("DynamicStitch", "repeated index", indices=[tf.constant([0, 1]), tf.constant([1])], data=[rand(rng, [2]), rand(rng, [1])]),
        raw("DynamicStitch", "negative index", indices=[tf.constant([0, -1])], data=[rand(rng, [2])]),
        raw("DynamicStitch", "data shape mismatch", indices=[tf.constant([0, 1])], data=[rand(rng, [3])]),
        raw("DynamicStitch", "gap", indices=[tf.constant([0, 3])], data=[rand(rng, [2, 2])]),
        raw("TensorScatterUpdate", "valid", tensor=rand(rng, [4, 3]), indices=[[1], [3]], updates=rand(rng, [2, 3])),
        raw("TensorScatterUpdate", "index out of range", tensor=rand(rng, [4, 3]), indices=[[1], [4]], updates=rand(rng, [2, 3])),
        raw("TensorScatterAdd", "updates shape mismatch", tensor=rand(rng, [4, 3]), indices=[[1], [3]], updates=rand(rng, [2, 2])),
        raw("TensorScatterSub", "index too deep", tensor=rand(rng, [4, 3]), indices=[[1, 0, 0]], updates=rand(rng, [1])),
        raw("TensorScatterAdd", "int64 indices", tensor=rand(rng, [4, 3], i64), indices=tf.constant([[1, 2], [3, 0]], i64),
            updates=rand(rng, [2], i64)),
        raw("ScatterNd", "valid", indices=[[1], [3], [1]], updates=rand(rng, [3, 3]), shape=[4, 3]),
        raw("ScatterNd", "int64, element indices", indices=tf.constant([[1, 2], [3, 0]], i64), updates=rand(rng, [2], i64),
            shape=tf.constant([4, 3], i64)),
        raw("ScatterNd", "index out of range", indices=[[1], [4]], updates=rand(rng, [2, 3]), shape=[4, 3]),
        raw("ScatterNd", "negative index", indices=[[-1]], updates=rand(rng, [1, 3]), shape=[4, 3]),
        raw("ScatterNd", "updates shape mismatch", indices=[[1], [3]], updates=rand(rng, [2, 2]), shape=[4, 3]),
        raw("ScatterNd", "index too deep", indices=[[1, 0, 0]], updates=rand(rng, [1]), shape=[4, 3]),
        raw("ScatterNd", "shape 2-D", indices=[[1]], updates=rand(rng, [1, 3]), shape=[[4, 3]]),
        raw("ScatterNd", "negative dim", indices=[[1]], updates=rand(rng, [1, 3]), shape=[4, -3]),
        raw("ScatterNd", "empty output", indices=[[0]], updates=rand(rng, [1, 0]), shape=[4, 0]),
        raw("ScatterNd", "no updates", indices=tf.zeros([0, 1], tf.int32), updates=rand(rng, [0, 3]), shape=[4, 3]),
        raw("Bitcast", "float32 to int8", input=rand(rng, [2, 3]), type=tf.int8),
        raw("Bitcast", "int8 to float32", input=rand(rng, [2, 4], tf.int8), type=tf.float32),
        raw("Bitcast", "int8 to float32, bad last dim", input=rand(rng, [2, 3], tf.int8), type=tf.float32),
        raw("Bitcast", "int16 to int64 rank 0", input=tf.constant(3, tf.int16), type=tf.int64),
        raw("Identity", "rank 0", input=tf.constant(1.0), graph=False),
    ]
    for _ in range(8):
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(1, 5)))]
        perm = [int(p) - (len(shape) if rng.random() < 0.3 else 0) for p in rng.permutation(len(shape))]
        cases.append(raw("Transpose", "random", x=rand(rng, shape, tf.float32), perm=perm))
    # Random SplitV sizes: some -1, some negative, some not adding up.
    for _ in range(8):
        n = int(rng.integers(1, 5))
        sizes = [int(v) for v in rng.integers(-2, 5, size=n)]
        dim = int(rng.integers(0, 8))
        if rng.random() < 0.5 and n > 1:
            sizes[-1] = dim - sum(sizes[:-1])
        itype = tf.int32 if rng.random() < 0.5 else i64
        cases.append(raw("SplitV", "random", value=rand(rng, [2, dim], i64), size_splits=tf.constant(sizes, itype), axis=-1,
                         num_split=n, graph=n > 1))
    # Roll: shifts add up per axis, any size, negative axes count from the end.
    x3 = rand(rng, [2, 3, 4])
    cases += [
        raw("Roll", "scalar shift", input=x3, shift=5, axis=1),
        raw("Roll", "repeated axis, int64", input=x3, shift=tf.constant([1, -3, 2**40], i64), axis=tf.constant([0, 0, -1], i64)),
        raw("Roll", "axis out of range", input=x3, shift=[1], axis=[3]),
        raw("Roll", "negative axis out of range", input=x3, shift=1, axis=-4),
        raw("Roll", "sizes differ", input=x3, shift=[1, 2], axis=[0]),
        raw("Roll", "shift 2-D", input=x3, shift=[[1]], axis=[[0]]),
        raw("Roll", "scalar input", input=tf.constant(1.0), shift=1, axis=0),
        raw("Roll", "size 0", input=rand(rng, [0, 3]), shift=[2, 1], axis=[0, 1]),
    ]
    # DepthToSpace / SpaceToDepth: NHWC only (as TensorFlow's CPU kernels).
    x4 = rand(rng, [2, 4, 6, 8])
    cases += [
        raw("DepthToSpace", "block 2", input=x4, block_size=2),
        raw("DepthToSpace", "depth not divisible", input=x4, block_size=3),
        raw("DepthToSpace", "rank 3", input=x3, block_size=2),
        raw("DepthToSpace", "NCHW", input=x4, block_size=2, data_format="NCHW"),
        raw("DepthToSpace", "size 0", input=rand(rng, [0, 2, 2, 4]), block_size=2),
        raw("SpaceToDepth", "block 2", input=x4, block_size=2),
        raw("SpaceToDepth", "width not divisible", input=x4, block_size=4),
        raw("SpaceToDepth", "int64", input=rand(rng, [1, 3, 3, 2], i64), block_size=3),
        raw("SpaceToDepth", "NCHW", input=x4, block_size=2, data_format="NCHW"),
    ]
    # ReverseV2: axis entries in [-rank, rank), each once; rank <= 8.
    for axis, itype in [([0], tf.int32), ([-1, 0], i64), ([], tf.int32), ([3], tf.int32), ([-4], i64), ([1, -2], tf.int32),
                        ([2, 2], i64)]:
        cases.append(raw("ReverseV2", f"axis {axis}", tensor=x3, axis=tf.constant(axis, itype),
                         match=r"out of valid range|specified more than once"))
    cases += [
        raw("ReverseV2", "axis 2-D", tensor=x3, axis=[[0]], match="'dims' must be 1-dimension, not 2"),
        raw("ReverseV2", "rank 9", tensor=rand(rng, [1] * 9), axis=[0], match="rank > 8"),
        raw("ReverseV2", "rank 9, no axis", tensor=rand(rng, [1] * 9), axis=tf.zeros([0], tf.int32)),
        raw("ReverseV2", "size 0", tensor=rand(rng, [3, 0, 2], i64), axis=[0, 2]),
        raw("ReverseV2", "bool, size-1 dims", tensor=tf.constant(rng.random([1, 4, 1, 3]) > 0.5), axis=[0, 1, 3]),
    ]
    # SpaceToBatchND / BatchToSpaceND: block_shape 1-D and positive,
    # paddings/crops [M, 2] and non-negative, padded sizes divisible. (Eager
    # only: their shape functions refuse inputs of unknown rank.)
    x16 = rand(rng, [2, 4, 6, 3])
    xb = rand(rng, [8, 2, 3, 3])
    for op, arg, x_ in (("SpaceToBatchND", "paddings", x16), ("BatchToSpaceND", "crops", xb)):
        for block, pairs, note in (([2, 2], [[0, 0], [0, 0]], "valid"), ([2, 3], [[0, 2], [1, 2]], "with pairs"),
                                   ([1, 1], [[0, 0], [0, 0]], "identity"), ([2], [[0, 0]], "one block dim"),
                                   ([0, 2], [[0, 0], [0, 0]], "block 0"), ([2, -1], [[0, 0], [0, 0]], "block -1"),
                                   ([2, 2], [[0, 0]], "pairs [1, 2]"), ([2, 2], [[-1, 1], [0, 0]], "negative pair"),
                                   ([3, 2], [[0, 0], [0, 0]], "not divisible"), ([[2, 2]], [[0, 0], [0, 0]], "block 2-D"),
                                   ([2, 2, 2, 2], [[0, 0]] * 4, "rank too small"), ([2, 2], [[0, 9], [0, 0]], "large pair")):
            cases.append(raw(op, note, input=x_, block_shape=block, **{arg: pairs}, graph=False,
                             match="block_shape|rank|should have shape|must be|divisible|instead"))
        cases.append(raw(op, "int64 block and pairs", input=x_, block_shape=tf.constant([2, 1], i64), graph=False,
                         **{arg: tf.constant([[0, 0], [1, 1]] if op == "SpaceToBatchND" else [[0, 0], [0, 1]], i64)}))
    # MatrixBandPart: rank >= 2, scalar limits at most rows / columns.
    x34 = rand(rng, [2, 3, 4])
    for lower, upper in [(-1, 0), (0, -1), (3, 4), (4, 0), (0, 5), (-7, -9), (1, 2)]:
        cases.append(raw("MatrixBandPart", f"band ({lower}, {upper})", input=x34, num_lower=lower, num_upper=upper,
                         match="number of rows|number of columns"))
    cases += [
        raw("MatrixBandPart", "int64 limits", input=tf.cast(x34, i64), num_lower=tf.constant(1, i64),
            num_upper=tf.constant(0, i64)),
        raw("MatrixBandPart", "rank 1", input=rand(rng, [4]), num_lower=0, num_upper=0, match="at least 2-dim"),
        raw("MatrixBandPart", "num_lower vector", input=x34, num_lower=[0], num_upper=0, match="num_lower must be scalar"),
        raw("MatrixBandPart", "num_upper vector", input=x34, num_lower=0, num_upper=[0], match="num_upper must be scalar"),
        raw("MatrixBandPart", "size 0", input=rand(rng, [2, 0, 3]), num_lower=0, num_upper=-1),
    ]
    for _ in range(8):
        shape = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(1, 6)))]
        axis = [int(a) - (len(shape) if rng.random() < 0.3 else 0)
                for a in rng.permutation(len(shape))[: int(rng.integers(0, len(shape) + 1))]]
        cases.append(raw("ReverseV2", "random", tensor=rand(rng, shape, tf.float32), axis=tf.constant(axis, tf.int32)))
    cases += mirror_pad_cases(rng)
    return cases


def mirror_pad_cases(rng):
    cases = []
    for _ in range(10):
        rank = int(rng.integers(0, 6))
        shape = [int(d) for d in rng.integers(1, 5, size=rank)]
        mode = str(rng.choice(["REFLECT", "SYMMETRIC"]))
        limit = [d - (mode == "REFLECT") for d in shape]
        pads = [[int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))] for m in limit]
        dtype = [tf.float32, tf.float64, tf.float16, tf.bfloat16, tf.int64][int(rng.integers(0, 5))]
        pads_t = tf.constant(np.reshape(pads, [rank, 2]), tf.int64 if rng.random() < 0.3 else tf.int32)
        x = rand(rng, shape, dtype)
        padded = [d + sum(p) for d, p in zip(shape, pads)]
        cases += [
            raw("MirrorPad", f"random {dtype.name}", input=x, paddings=pads_t, mode=mode),
            raw("MirrorPadGrad", f"random {dtype.name}", input=rand(rng, padded, dtype), paddings=pads_t, mode=mode),
        ]
    x = rand(rng, [3, 4])
    for op in ("MirrorPad", "MirrorPadGrad"):
        cases += [
            raw(op, "REFLECT", input=x, paddings=[[1, 1], [1, 0]], mode="REFLECT"),
            raw(op, "SYMMETRIC", input=x, paddings=[[1, 1], [1, 0]], mode="SYMMETRIC"),
            raw(op, "paddings of 3 columns", input=x, paddings=[[1, 1, 1], [0, 0, 0]], mode="REFLECT"),
            raw(op, "paddings 1-D", input=x, paddings=[1, 1], mode="REFLECT"),
            raw(op, "paddings rows != rank", input=x, paddings=[[1, 1]], mode="REFLECT"),
            raw(op, "negative padding", input=x, paddings=[[-1, 1], [0, 0]], mode="REFLECT"),
            raw(op, "REFLECT padding = size", input=x, paddings=[[3, 0], [0, 0]], mode="REFLECT"),
            raw(op, "SYMMETRIC padding = size", input=x, paddings=[[1, 1], [0, 3]], mode="SYMMETRIC"),
            raw(op, "SYMMETRIC padding > size", input=x, paddings=[[4, 0], [0, 0]], mode="SYMMETRIC"),
            raw(op, "no padding", input=x, paddings=[[0, 0], [0, 0]], mode="REFLECT"),
            raw(op, "rank 6", input=rand(rng, [1, 1, 1, 1, 1, 2]), paddings=[[0, 0]] * 5 + [[1, 0]], mode="REFLECT"),
        ]
    cases += [
        raw("MirrorPad", "rank 0", input=tf.constant(2.5), paddings=tf.zeros([0, 2], tf.int32), mode="REFLECT"),
        raw("MirrorPad", "empty input, no padding", input=rand(rng, [2, 0]), paddings=[[1, 0], [0, 0]], mode="SYMMETRIC"),
        raw("MirrorPad", "bool", input=tf.constant([[True, False]]), paddings=[[0, 0], [1, 1]], mode="REFLECT"),
    ]
    return cases
