"""BERT-base-like encoder (12 layers, hidden 768, sequence 128) batch 32
inference: NPU (host backend) vs TensorFlow CPU, one run.

    python benches/encoder_host.py [--batch 32] [--iters 5]
"""

import sys

from inference import main

if __name__ == "__main__":
    main(["--model", "bert_encoder", *sys.argv[1:]])
