//! Generates the TensorFlow messages from `tf_descriptors.bin`, the
//! FileDescriptorSet that `scripts/gen_tf_descriptors.py` extracts from
//! TensorFlow's own `_pb2` modules (no protoc, no .proto files needed).

use prost::Message;

fn main() {
    println!("cargo:rerun-if-changed=tf_descriptors.bin");
    let bytes = std::fs::read("tf_descriptors.bin").expect("read tf_descriptors.bin");
    let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())
        .expect("tf_descriptors.bin is not a FileDescriptorSet");
    prost_build::Config::new()
        // Deterministic re-encoding of NodeDef.attr and friends.
        .btree_map(["."])
        .compile_fds(fds)
        .expect("prost-build");
}
