"""ResNet50 batch 32 inference: NPU (host backend) vs TensorFlow CPU, one run.

    python benches/resnet50_host.py [--batch 32] [--iters 5]
"""

import sys

from inference import main

if __name__ == "__main__":
    main(["--model", "resnet50", *sys.argv[1:]])
