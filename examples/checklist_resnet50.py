"""The migration checklist on ResNet50 (or MobileNetV2, or the BERT-like
encoder): is the model ready on the NPU?

Saves the model the way a team would hand it over (a ``.keras`` file; the
encoder, which has a custom layer, as a ``.py`` file defining
``build_model()``), then runs exactly what a user types:

    tf-adapter-check resnet50.keras --batch 8 --steps 20 --json report.json --html report.html

and prints the paths of the reports. Random weights (``weights=None``: no
download); the classifier returns logits so CPU/NPU differences are not
hidden by a near-uniform softmax. Exit status as tf-adapter-check's: 0 when
every check that ran passed.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tf_adapter  # noqa: E402,F401  (registers the NPUs)
from tf_adapter import check, zoo  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--model", default="resnet50", choices=["resnet50", "mobilenetv2", "bert_encoder"])
parser.add_argument("--image-size", type=int, default=224)
parser.add_argument("--out", default="checklist-report", help="folder for the model file and the reports")
parser.add_argument("check_args", nargs=argparse.REMAINDER,
                    help="more tf-adapter-check options after --, e.g. -- --devices 2 --latency-ms 200")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

if args.model == "bert_encoder":
    model_path = os.path.join(args.out, "bert_encoder.py")
    with open(model_path, "w") as f:
        f.write("from tf_adapter import zoo\n\n\ndef build_model():\n    return zoo.build('bert_encoder')\n")
else:
    model_path = os.path.join(args.out, f"{args.model}.keras")
    if not os.path.exists(model_path):
        zoo.build(args.model, image_size=args.image_size, logits=True).save(model_path)

json_path = os.path.join(args.out, f"{args.model}.json")
html_path = os.path.join(args.out, f"{args.model}.html")
extra = [a for a in args.check_args if a != "--"]
cmd = [model_path, "--batch", "8", "--steps", "20", "--json", json_path, "--html", html_path, *extra]
print("tf-adapter-check " + " ".join(cmd), flush=True)
status = check.main(cmd)
print(f"reports: {json_path} {html_path}")
sys.exit(status)
