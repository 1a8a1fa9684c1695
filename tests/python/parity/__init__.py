"""The argument-check cases of test_argument_parity.py, one module per
family of crates/tfa-ops/src/families (importing them fills FAMILIES)."""

from . import (  # noqa: F401  (each registers its family)
    conv,
    pool,
    elementwise,
    matmul,
    reduce,
    segment,
    loss,
    movement,
    image,
    volume,
    complex,
    inplace,
    random,
)
from .common import FAMILIES, SEED, build  # noqa: F401
