"""pytest plugin for the pack tests in a light environment (no torch, sentence-transformers, faiss).

    pytest -p light_env_plugin packs/aegis/tests      # scripts/ on PYTHONPATH; see scripts/py310.sh

A test that needs the ML stack is one that raised ``ModuleNotFoundError`` for one of those
modules (anywhere in its exception chain): it is reported as skipped with that reason, and the
session ends with how many were. Tests marked ``torch`` are skipped up front (for a test that
needs the stack in a subprocess, where the import error does not reach this process). Every
other failure stays a failure, so the light run still checks everything that needs no torch.
"""

from __future__ import annotations

import pytest

HEAVY = {"torch", "sentence_transformers", "faiss", "transformers"}
_needs_ml: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "torch: needs the ML stack (torch, sentence-transformers, faiss)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("torch"):
            item.add_marker(pytest.mark.skip(reason="needs the ML stack (marked torch)"))


def _missing_heavy_module(exc: BaseException | None) -> str | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in HEAVY:
            return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    module = _missing_heavy_module(call.excinfo.value) if call.excinfo else None
    if module and report.failed:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"needs the ML stack: no module {module!r}")
        _needs_ml.append(item.nodeid)
    return report


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 (pytest's TerminalReporter)
    if _needs_ml:
        files = sorted({nodeid.split("::")[0] for nodeid in _needs_ml})
        terminalreporter.write_line(f"light env: {len(_needs_ml)} tests need torch/faiss, skipped ({', '.join(files)})")
