//! Transpose (general permutation).
