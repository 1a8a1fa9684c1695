"""Headless Chromium for the HTML-report tests, and a loud line when it is
missing: those tests are skipped then, and a skip in a summary of hundreds of
passes is easy to miss. A pytest plugin (conftest.py loads it)."""

import os
import shutil

import pytest

SKIP_REASON = "no Chromium here (apt install chromium)"


def chromium():
    """Chromium's executable; skips the test without one (fails it with
    TFA_REQUIRE_BROWSER=1, as in CI)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("TFA_REQUIRE_BROWSER"):
            pytest.fail("TFA_REQUIRE_BROWSER is set but there is no Chromium (apt install chromium)")
        pytest.skip(SKIP_REASON)
    return exe


def pytest_terminal_summary(terminalreporter):
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if SKIP_REASON in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} HTML-report test(s) SKIPPED: {SKIP_REASON}; the reports were not checked in a browser",
            red=True, bold=True)
