"""``tf-adapter-check``'s command line, parsed and validated before
TensorFlow is imported.

Importing ``tf_adapter`` imports TensorFlow (about 20 s on a small machine),
so this package stays outside it: ``--help`` and every usage error answer at
once, in one line with exit status 2, before any work. The checks themselves
are ``tf_adapter.check.run``.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import zipfile

PROG = "tf-adapter-check"

# The precision modes (tf_adapter.precision.MODES is this tuple; declared here
# because importing tf_adapter would import TensorFlow).
PRECISION_MODES = (
    "must_keep_origin_dtype",
    "force_fp32",
    "allow_fp32_to_bf16",
    "allow_fp32_to_fp16",
    "allow_mix_precision",
    "allow_mix_precision_bf16",
    "allow_mix_precision_fp16",
)
MAX_NPUS = 64  # TFA_NPU_COUNT's range
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class UsageError(Exception):
    """Bad command-line input: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parser():
    p = _Parser(
        prog=PROG,
        description="tf_adapter's migration checklist: is this model ready on the NPU? Checks consistency "
                    "with TensorFlow CPU, training, multi-device scaling, memory, latency and op coverage.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Exit status: 0 every check that ran passed, 1 a check failed, 2 bad input.",
    )
    p.add_argument("model", help="a Keras file (.keras, .h5), a SavedModel directory, or a .py file defining "
                                 "build_model() (and optionally dataset(), loss, optimizer)")
    p.add_argument("--data", help="inputs as an .npz file, one array per model input (default: random inputs)")
    p.add_argument("--batch", type=int, default=8, help="batch size of every check (>= 1)")
    p.add_argument("--steps", type=int, default=20, help="training steps of the training check (>= 2)")
    p.add_argument("--devices", type=int, default=1,
                   help=f"NPUs for the scaling check, 1 to {MAX_NPUS} (1: skipped); each configuration runs in "
                        "its own process with TFA_NPU_COUNT set")
    p.add_argument("--scaling-threshold", type=float,
                   help="speed-up the scaling check needs (default: 0.75 x devices)")
    p.add_argument("--scaling-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--precision", choices=PRECISION_MODES, metavar="MODE",
                   help="precision mode for the NPU run: " + ", ".join(PRECISION_MODES)
                        + " (default: the mode in force, TFA_PRECISION_MODE or must_keep_origin_dtype)")
    p.add_argument("--max-error", type=float, default=0.01,
                   help="largest relative L2 error of the NPU outputs against TensorFlow CPU (> 0)")
    p.add_argument("--latency-ms", type=float, help="p99 latency budget at batch 1, in ms (> 0; default: none)")
    p.add_argument("--memory-limit", type=float, default=0.8,
                   help="largest peak NPU memory as a fraction of its capacity (0 < limit <= 1)")
    p.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report with plots to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="also show TensorFlow's own log messages")
    return p


def check_model_path(path):
    """A one-line reason why `path` is not a model file tf-adapter-check can
    read (missing, unreadable, wrong format, corrupt), or None. Loading may
    still fail later (a model that does not build): that is reported then."""
    if not os.path.exists(path):
        return f"{path}: no such file or directory"
    if not os.access(path, os.R_OK):
        return f"{path}: permission denied"
    if os.path.isdir(path):
        if not any(os.path.exists(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
            return f"{path}: a directory without saved_model.pb: not a SavedModel"
        return None
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            return f"{path}: not a Keras archive (a .keras file is a zip archive): corrupt, or not a Keras model"
        return None
    if path.endswith(".h5"):
        with open(path, "rb") as f:
            if f.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
                return f"{path}: not an HDF5 file: corrupt, or not a Keras .h5 model"
        return None
    if path.endswith(".py"):
        return None
    return f"{path}: expected a .keras or .h5 file, a SavedModel directory or a .py file"


def validate(args):
    """Every option, before any work: raises UsageError naming the first bad one."""
    problem = check_model_path(args.model)
    if problem:
        raise UsageError(problem)
    if args.data is not None and not os.path.isfile(args.data):
        raise UsageError(f"--data {args.data}: no such file")
    if args.batch < 1:
        raise UsageError(f"--batch {args.batch}: must be at least 1")
    if args.steps < 2:
        raise UsageError(f"--steps {args.steps}: must be at least 2 (the training check compares losses)")
    if not 1 <= args.devices <= MAX_NPUS:
        raise UsageError(f"--devices {args.devices}: must be 1 to {MAX_NPUS} (the scaling check runs "
                         f"TFA_NPU_COUNT=N NPUs in a child process; TFA_NPU_COUNT allows 1 to {MAX_NPUS})")
    for name, value in [("--max-error", args.max_error), ("--latency-ms", args.latency_ms),
                        ("--scaling-threshold", args.scaling_threshold)]:
        if value is not None and not value > 0:
            raise UsageError(f"{name} {value}: must be greater than 0")
    if not 0 < args.memory_limit <= 1:
        raise UsageError(f"--memory-limit {args.memory_limit}: must be a fraction in (0, 1]")
    for name, path in [("--json", args.json), ("--html", args.html)]:
        folder = os.path.dirname(os.path.abspath(path)) if path else None
        if folder and not os.path.isdir(folder):
            raise UsageError(f"{name} {path}: the folder {folder} does not exist")


def parse(argv=None):
    """The validated arguments (raises UsageError)."""
    args = parser().parse_args(argv)
    if not args.scaling_worker:
        validate(args)
    return args


def main(argv=None):
    try:
        args = parse(argv)
    except UsageError as e:
        print(f"{PROG}: error: {e} (see {PROG} --help)", file=sys.stderr)
        return 2
    if args.verbose:
        from tf_adapter import check
    else:
        # TensorFlow's own notices (oneDNN, device creation, retracing) only
        # with --verbose: its C++ log level for what comes after the import...
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # ...and what TensorFlow 2.21 prints while it loads, before that
        # level applies.
        with _native_stderr_held():
            from tf_adapter import check
        import logging

        import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)
    return check.main_parsed(args)


@contextlib.contextmanager
def _native_stderr_held():
    """File descriptor 2 (what C++ writes too) goes to a temporary file for
    the block, and is shown only if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
