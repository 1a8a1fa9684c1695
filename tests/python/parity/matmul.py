"""Argument-check cases of the matmul family: MatMul, BatchMatMul, Einsum."""

import tensorflow as tf
from argcheck import Raises, SUCCEEDS

from .common import IAE, family, rand, raw


@family
def cases_matmul(rng):
    cases = []
    for dtype in (tf.float32, tf.float64, tf.int64):
        cases += [
            raw("MatMul", "valid", a=rand(rng, [2, 3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("MatMul", "transposes", a=rand(rng, [3, 2], dtype), b=rand(rng, [4, 3], dtype), transpose_a=True, transpose_b=True),
            raw("MatMul", "inner 0", a=rand(rng, [2, 0], dtype), b=rand(rng, [0, 4], dtype)),
            raw("MatMul", "rows 0", a=rand(rng, [0, 3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("MatMul", "inner mismatch", a=rand(rng, [2, 3], dtype), b=rand(rng, [4, 4], dtype)),
            raw("MatMul", "rank 3", a=rand(rng, [1, 2, 3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("MatMul", "rank 1", a=rand(rng, [3], dtype), b=rand(rng, [3, 4], dtype)),
            raw("BatchMatMulV2", "broadcast batch", x=rand(rng, [2, 1, 2, 3], dtype), y=rand(rng, [3, 3, 4], dtype)),
            raw("BatchMatMulV2", "adjoints", x=rand(rng, [2, 3, 2], dtype), y=rand(rng, [2, 4, 3], dtype), adj_x=True, adj_y=True),
            raw("BatchMatMulV2", "rank 2", x=rand(rng, [2, 3], dtype), y=rand(rng, [3, 4], dtype)),
            raw("BatchMatMulV2", "batch 0", x=rand(rng, [0, 2, 3], dtype), y=rand(rng, [1, 3, 4], dtype)),
            raw("BatchMatMulV2", "inner 0", x=rand(rng, [2, 2, 0], dtype), y=rand(rng, [2, 0, 4], dtype)),
            raw("BatchMatMulV2", "batch mismatch", x=rand(rng, [2, 2, 3], dtype), y=rand(rng, [3, 3, 4], dtype)),
            raw("BatchMatMulV2", "inner mismatch", x=rand(rng, [2, 2, 3], dtype), y=rand(rng, [2, 2, 4], dtype)),
            raw("BatchMatMulV2", "rank 1", x=rand(rng, [3], dtype), y=rand(rng, [3, 4], dtype)),
        ]
    f32 = tf.float32
    cases += [
        raw("Einsum", "matmul", inputs=[rand(rng, [2, 3]), rand(rng, [3, 4])], equation="ij,jk->ik"),
        raw("Einsum", "batch ellipsis", inputs=[rand(rng, [5, 2, 3]), rand(rng, [1, 3, 4])], equation="...ij,...jk->...ik"),
        raw("Einsum", "reduction", inputs=[rand(rng, [2, 3, 4])], equation="ijk->ik"),
        raw("Einsum", "transpose", inputs=[rand(rng, [2, 3, 4])], equation="ijk->kji"),
        raw("Einsum", "outer", inputs=[rand(rng, [2]), rand(rng, [3])], equation="i,j->ij"),
        raw("Einsum", "size 0", inputs=[rand(rng, [2, 0]), rand(rng, [0, 4])], equation="ij,jk->ik"),
        raw("Einsum", "dimension mismatch", inputs=[rand(rng, [2, 3]), rand(rng, [4, 4])], equation="ij,jk->ik"),
        raw("Einsum", "rank mismatch", inputs=[rand(rng, [2, 3, 1]), rand(rng, [3, 4])], equation="ij,jk->ik"),
        # TensorFlow's CPU kernel takes these equations (shape inference
        # rejects them in a graph) and returns a result of a made-up shape.
        raw("Einsum", "deliberate difference: output label not in the inputs (TensorFlow: a [2] result)",
            inputs=[rand(rng, [2, 3]), rand(rng, [3, 4])], equation="ij,jk->iz", graph=False, cpu=SUCCEEDS, npu=Raises(IAE)),
        raw("Einsum", "deliberate difference: repeated output label (TensorFlow: a [2, 2] result)",
            inputs=[rand(rng, [2, 3]), rand(rng, [3, 4])], equation="ij,jk->ii", graph=False, cpu=SUCCEEDS, npu=Raises(IAE)),
        raw("Einsum", "operand count mismatch", inputs=[rand(rng, [2, 3])], equation="ij,jk->ik", graph=False),
        raw("Einsum", "ellipsis broadcast mismatch", inputs=[rand(rng, [5, 2, 3]), rand(rng, [4, 3, 4])], equation="...ij,...jk->...ik"),
        raw("Einsum", "diagonal", inputs=[rand(rng, [3, 3], f32)], equation="ii->i"),
    ]
    return cases
