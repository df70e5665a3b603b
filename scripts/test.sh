#!/usr/bin/env bash
# Sets up everything (environments and the Debian servers the tests start on loopback),
# then runs the whole test suite: lint, the runtime's tests, the pack's tests, and the pack
# on StackStorm's Python 3.10 with its light dependencies (scripts/py310.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export AEGIS_VIRTUALENVS=${AEGIS_VIRTUALENVS:-$PWD/.venvs}
scripts/setup.sh --services
.venv/bin/ruff check .
# Tests never reach a real LLM: the LLM path is tested against a local stand-in server.
unset ANTHROPIC_API_KEY ANTHROPIC_BASE_URL
.venv/bin/python -m pytest tests -q -p no:cacheprovider "$@"
# The pack's own tests run in the pack's virtualenv, as st2-run-pack-tests does.
PYTHONPATH="$PWD/st2lite/pack_env:$PWD/packs/aegis/actions/lib" \
  "$AEGIS_VIRTUALENVS/aegis/bin/python" -m pytest packs/aegis/tests -q -p no:cacheprovider "$@"
# st2 3.9's images run packs on Python 3.10: every pack module imports there, the tests
# that need no torch pass (a cached light virtualenv in .venvs/py310).
scripts/py310.sh
