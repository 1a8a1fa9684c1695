#!/usr/bin/env bash
# Runs every test: Rust (format, lints, unit tests) then the Python package
# against TensorFlow CPU. Installs the Python packages the tests need first
# (requirements-test.txt); needs a Rust toolchain with rustfmt and clippy.
# The HTML-report tests need Chromium (apt install chromium): without it they
# are skipped, and this script says so at the start and at the end.
# About 35 minutes on a 2-core machine (each stage prints its time).
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { echo "== $1 (at ${SECONDS} s)"; }
no_browser() {
    ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
        && ! command -v google-chrome >/dev/null
}
browser_banner() {
    if no_browser; then
        echo "!!!!!! No Chromium here: the HTML-report tests will be SKIPPED (apt install chromium;"
        echo "!!!!!! TFA_REQUIRE_BROWSER=1 makes that an error, as in .ci/run)."
    fi
}
browser_banner

stage "pip install -r requirements-test.txt"
python3 -m pip install -q -r requirements-test.txt
stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p tfa-plugin --features python -- -D warnings
stage "cargo test --workspace"
cargo test --workspace

stage "pip install . (maturin, release build)"
python3 -m pip install --no-deps --force-reinstall . 2>&1 | tail -n 2
stage "pytest"
# Run from the tests folder so the installed package (not ./python) is imported.
cd tests/python
status=0
python3 -m pytest -q -p no:cacheprovider "$@" || status=$?
stage "done"
browser_banner
exit $status
