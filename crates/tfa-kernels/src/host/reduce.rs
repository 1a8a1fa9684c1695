//! Reductions (sum, mean, max, min, prod) and softmax.
