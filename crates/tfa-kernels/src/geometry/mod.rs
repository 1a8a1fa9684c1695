//! Backend-neutral shape rules: what an op's attributes, input shapes and
//! host-memory inputs make of its output (window geometry, product
//! dimensions, slice plans...), with TensorFlow's checks and messages. The
//! op specs in `tfa-ops` build these plans and every backend's kernels take
//! them. (The fused program's shapes are computed in `tfa-ops`, from its
//! product's shape rule.)

pub mod axes;
pub mod einsum;
pub mod image;
pub mod index;
pub mod matmul;
pub mod mirror_pad;
pub mod pool;
pub mod sequence;
pub mod slice;
pub mod space_batch;
pub mod volume;
pub mod window;
