//! Backend-neutral shape rules: what an op's attributes, input shapes and
//! host-memory inputs make of its output (window geometry, product
//! dimensions, slice plans...), with TensorFlow's checks and messages. The
//! op specs in `tfa-ops` build these plans and every backend's kernels take
//! them. (Range's length and the fused program's shapes are still computed
//! beside their host kernel and in `tfa-ops` respectively.)

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
