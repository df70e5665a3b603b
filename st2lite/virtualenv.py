"""Per-pack virtualenvs, built from the pack's ``requirements.txt`` as ``st2 pack install`` does.

The virtualenv is refreshed when the requirements change (a hash of the file is kept in
the virtualenv). A ``torch==X`` pin is installed on its own first, so that pip settles on
that build before it resolves the rest.

    >>> python = ensure_pack_virtualenv(Path("packs/aegis"), Path("/tmp/venvs"))
"""

from __future__ import annotations

import hashlib
import logging
import re
import subprocess
import sys
from pathlib import Path

LOG = logging.getLogger(__name__)
MARKER = ".st2lite-requirements.sha256"
_TORCH_PIN = re.compile(r"^\s*torch\s*==\s*[\w.+]+\s*$", re.MULTILINE)


class VirtualenvError(RuntimeError):
    pass


def requirements_hash(pack_dir: Path) -> str:
    req = pack_dir / "requirements.txt"
    data = req.read_bytes() if req.exists() else b""
    return hashlib.sha256(data).hexdigest()


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / "bin" / "python"


def is_current(pack_dir: Path, venv_dir: Path) -> bool:
    marker = venv_dir / MARKER
    return venv_python(venv_dir).exists() and marker.exists() and marker.read_text().strip() == requirements_hash(pack_dir)


def _run(cmd: list[str]) -> None:
    LOG.info("running: %s", " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise VirtualenvError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")


def ensure_pack_virtualenv(pack_dir: Path, virtualenvs_dir: Path, pack_ref: str | None = None) -> Path:
    """Create or refresh the pack's virtualenv; return its python interpreter."""
    pack_dir = Path(pack_dir)
    venv_dir = Path(virtualenvs_dir) / (pack_ref or pack_dir.name)
    if is_current(pack_dir, venv_dir):
        return venv_python(venv_dir)
    LOG.info("building virtualenv for pack %s in %s (takes a few minutes the first time)", pack_dir.name, venv_dir)
    if not venv_python(venv_dir).exists():
        venv_dir.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "venv", str(venv_dir)])
    pip = [str(venv_python(venv_dir)), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    requirements = pack_dir / "requirements.txt"
    if requirements.exists():
        pin = _TORCH_PIN.search(requirements.read_text())
        if pin:
            _run([*pip, pin.group(0).strip()])
        _run([*pip, "-r", str(requirements)])
    (venv_dir / MARKER).write_text(requirements_hash(pack_dir) + "\n")
    return venv_python(venv_dir)
