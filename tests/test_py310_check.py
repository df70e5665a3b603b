"""The tools of scripts/py310.sh catch what they are there to catch.

- ``scripts/import_pack_modules.py`` fails on a module that needs Python 3.11 (run with a
  Python 3.10) and on one that imports the ML stack at import time;
- ``scripts/light_env_plugin.py`` reports a test that fails for want of torch/faiss as
  skipped, and keeps every other failure a failure.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO


def _python310() -> str | None:
    candidates = [os.environ.get("AEGIS_PY310", ""), "python3.10",
                  *glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python")),
                  *glob.glob("/root/.pyenv/versions/3.10.*/bin/python")]  # fmt: skip
    for candidate in filter(None, candidates):
        try:
            ok = subprocess.run([candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 10))"],
                                capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ok:
            return candidate
    return None


def _pack(tmp_path: Path, files: dict[str, str]) -> Path:
    pack = tmp_path / "pack"
    for name, text in files.items():
        path = pack / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (pack / "actions" / "lib").mkdir(parents=True, exist_ok=True)
    (pack / "sensors").mkdir(exist_ok=True)
    return pack


def test_import_check_fails_on_3_11_only_code_and_eager_ml_imports(tmp_path):
    python = _python310()
    if python is None:
        pytest.skip("no Python 3.10 here (python3.10 or pyenv's 3.10.x; scripts/py310.sh needs one too)")
    script = str(REPO / "scripts" / "import_pack_modules.py")
    good = _pack(tmp_path / "good", {"actions/lib/clock.py": "from datetime import timezone\nUTC = timezone.utc\n",
                                     "actions/tick.py": "import clock\n"})
    env = {**os.environ, "PYTHONPATH": str(good / "actions" / "lib")}
    proc = subprocess.run([python, script, str(good)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "imported 2/2" in proc.stdout, proc.stdout + proc.stderr

    bad = _pack(tmp_path / "bad", {"actions/lib/clock.py": "from datetime import UTC\n"})
    proc = subprocess.run([python, script, str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "cannot import name 'UTC'" in proc.stderr, proc.stdout + proc.stderr

    fake_faiss = tmp_path / "fake" / "faiss"
    fake_faiss.mkdir(parents=True)
    (fake_faiss / "__init__.py").write_text("")
    eager = _pack(tmp_path / "eager", {"sensors/index.py": "import faiss\n"})
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    proc = subprocess.run([python, script, str(eager)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "must be imported lazily" in proc.stderr, proc.stdout + proc.stderr


def test_light_env_plugin_skips_only_what_needs_the_ml_stack(tmp_path):
    (tmp_path / "test_things.py").write_text(textwrap.dedent("""
        import pytest

        def test_needs_faiss():
            import faiss_missing_for_this_test as faiss  # noqa: F401

        def test_needs_torch_deep_down():
            try:
                import torch  # noqa: F401
            except ImportError as exc:
                raise RuntimeError("the model could not load") from exc

        def test_plain_failure():
            assert 1 == 2

        def test_other_missing_module():
            import yaml_missing_for_this_test  # noqa: F401

        @pytest.mark.torch
        def test_marked():
            raise AssertionError("never runs")

        def test_passes():
            pass
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "light_env_plugin",
                           "-rs", "test_things.py"], cwd=tmp_path, capture_output=True, text=True, env=env)
    out = proc.stdout
    # "faiss_missing_for_this_test" is not a heavy module: only torch (in the chain) is.
    assert "3 failed, 1 passed, 2 skipped" in out, out
    assert "test_plain_failure" in out and "test_other_missing_module" in out and "test_needs_faiss" in out, out
    assert "needs the ML stack: no module 'torch'" in out and "light env: 1 tests need torch/faiss" in out, out
