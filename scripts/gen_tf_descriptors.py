#!/usr/bin/env python3
"""Regenerates crates/tfa-proto/tf_descriptors.bin: TensorFlow's own protobuf
descriptors for GraphDef (and everything reachable from it) and OpList.

The TensorFlow wheel ships no .proto files, but every *_pb2 module embeds its
serialized FileDescriptorProto. This script collects them, dependencies first,
into one FileDescriptorSet that crates/tfa-proto/build.rs hands to
prost-build's `compile_fds` (no protoc needed).

Run with the TensorFlow the plugin targets (2.21):
    python3 scripts/gen_tf_descriptors.py
"""
import os
import sys

from google.protobuf import descriptor_pb2
from tensorflow.core.framework import graph_pb2, op_def_pb2
import tensorflow as tf

ROOTS = [graph_pb2.DESCRIPTOR, op_def_pb2.DESCRIPTOR]


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "crates", "tfa-proto", "tf_descriptors.bin")
    seen = {}

    def walk(fd):
        if fd.name in seen:
            return
        for dep in fd.dependencies:
            walk(dep)
        seen[fd.name] = fd

    for root in ROOTS:
        walk(root)
    fds = descriptor_pb2.FileDescriptorSet()
    for fd in seen.values():
        fds.file.add().ParseFromString(fd.serialized_pb)
    data = fds.SerializeToString(deterministic=True)
    with open(out, "wb") as f:
        f.write(data)
    print(f"TensorFlow {tf.__version__}: {len(seen)} files, {len(data)} bytes -> {os.path.normpath(out)}",
          file=sys.stderr)
    for name in seen:
        print("  " + name, file=sys.stderr)


if __name__ == "__main__":
    main()
