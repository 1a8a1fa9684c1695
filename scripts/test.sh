#!/usr/bin/env bash
# Runs every test: Rust (format, lints, unit tests) then the Python package
# against TensorFlow CPU. Needs TensorFlow 2.21, maturin and pytest installed
# (.ci/run installs them on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p tfa-plugin --features python -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace

echo "== pip install . (maturin, release build)"
pip install --no-deps --force-reinstall . 2>&1 | tail -n 2
echo "== pytest"
# Run from the tests folder so the installed package (not ./python) is imported.
cd tests/python
python -m pytest -q -p no:cacheprovider "$@"
