"""Pack tests run in the pack virtualenv, as ``st2-run-pack-tests`` runs them:

    cd /work/main && .venvs/aegis/bin/python -m pytest packs/aegis/tests -q

st2's import paths (``st2lite/pack_env``) and ``actions/lib`` are put on sys.path here so
plain ``pytest`` works without PYTHONPATH. Tests that need real servers (Alertmanager,
RabbitMQ) skip with the Debian package to install when it is missing, except in CI
(``CI=true``), where the repository's ``conftest.py`` makes a skip a failure.
"""

from __future__ import annotations

import os
import sys

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(os.path.dirname(PACK_DIR))
for path in (
    os.path.join(REPO_DIR, "st2lite", "pack_env"),
    os.path.join(PACK_DIR, "actions", "lib"),
    os.path.join(PACK_DIR, "actions"),
    os.path.join(PACK_DIR, "sensors"),
    os.path.dirname(os.path.abspath(__file__)),
):
    if path not in sys.path:
        sys.path.insert(0, path)
