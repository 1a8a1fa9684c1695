//! The `host` backend: device memory is host memory, kernels run on CPU threads.

pub mod arith;
pub mod batch_matmul;
pub mod broadcast;
pub mod cast;
pub mod conv;
pub mod elementwise;
pub mod gather;
pub mod matmul;
pub mod pool;
pub mod reduce;
pub mod slice;
pub mod transpose;

/// Below this many elements a kernel runs on the calling thread: splitting
/// costs more than it saves.
pub(crate) const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// Elements per parallel task for memory-bound loops.
pub(crate) const PAR_CHUNK: usize = 1 << 14;
