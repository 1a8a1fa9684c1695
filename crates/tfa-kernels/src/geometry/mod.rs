//! Backend-neutral shape rules: what an op's attributes and input shapes
//! make of its output (window geometry, product dimensions), with
//! TensorFlow's checks and messages. Every backend's kernels take these
//! plans; the op specs in `tfa-ops` build them.

pub mod axes;
pub mod einsum;
pub mod image;
pub mod index;
pub mod matmul;
pub mod mirror_pad;
pub mod pool;
pub mod slice;
pub mod space_batch;
pub mod volume;
pub mod window;
