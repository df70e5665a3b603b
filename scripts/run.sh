#!/usr/bin/env bash
# The main job: set up (first time only takes minutes), then serve the packs in packs/
# with the embedded runtime on defaults. State goes to $AEGIS_HOME (~/.local/share/aegis).
set -euo pipefail
cd "$(dirname "$0")/.."
export AEGIS_VIRTUALENVS=${AEGIS_VIRTUALENVS:-$PWD/.venvs}
scripts/setup.sh
exec .venv/bin/aegis run "$@"
