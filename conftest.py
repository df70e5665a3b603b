"""Shared by the runtime's tests (tests/) and the pack's (packs/aegis/tests/), run from here.

In CI (``CI=true``) a skipped test is a failure: a test that needs ``../shared/st2-schemas``
or a server from a Debian package must run there, not pass quietly.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which must have every schema and service: {reason}"
