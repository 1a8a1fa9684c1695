//! What a kernel sees of the runtime that calls it. The TensorFlow plugin
//! implements this over `TF_OpKernelContext`; Rust tests over vectors
//! (`crate::testing::VecContext`).

use crate::Attrs;
use tfa_core::{DType, Result, TensorMut, TensorView};

pub trait OpContext {
    /// The node's name in the graph (for error messages).
    fn node_name(&self) -> &str;
    fn num_inputs(&self) -> usize;
    fn input(&self, i: usize) -> Result<TensorView<'_>>;
    fn attrs(&self) -> &Attrs;
    fn allocate_output(&self, i: usize, dtype: DType, shape: &[usize]) -> Result<TensorMut<'_>>;
    /// Output `i`, reusing the buffer of one of `candidates` when the runtime
    /// allows it (same shape, no other reader). Returns which input was reused.
    /// By default nothing is reused.
    fn forward_or_allocate(
        &self,
        _candidates: &[usize],
        i: usize,
        dtype: DType,
        shape: &[usize],
    ) -> Result<(TensorMut<'_>, Option<usize>)> {
        Ok((self.allocate_output(i, dtype, shape)?, None))
    }
    /// Output `i` is input `input`'s buffer seen with `shape` (no copy).
    fn alias_output(&self, i: usize, input: usize, shape: &[usize]) -> Result<()>;
    /// Input `input`'s own buffer, writable, passed on as output `output`
    /// (no copy). Only for TensorFlow's intentionally aliasing ops
    /// (`_ParallelConcatUpdate`, `InplaceUpdate`...): every other reader of the
    /// buffer sees the writes, exactly as with TensorFlow's CPU kernels.
    fn input_in_place(&self, input: usize, output: usize) -> Result<TensorMut<'_>>;
    /// The low-precision type a float32 matrix op should multiply in (with
    /// float32 accumulation and output) under an `allow_*` precision mode, for
    /// kernels declared `.native_low_precision()`. `None`: multiply in
    /// the graph dtype.
    fn matrix_lowp(&self) -> Option<DType> {
        None
    }
}
