#!/usr/bin/env bash
# The demo: a service breaks, Prometheus notices, Alertmanager notifies Aegis, Aegis
# diagnoses, fixes, verifies, and shows each incident with its MTTR.
#
#   ./scripts/demo.sh                    # every scenario in turn
#   ./scripts/demo.sh memory_leak disk   # the named ones
#   ./scripts/demo.sh --help             # scenarios, cost per minute, manual MTTR baseline
#
# Everything runs on loopback on free ports (supervisord with the victim, Redis, PostgreSQL,
# Prometheus and Alertmanager; the Aegis runtime in auto mode) and is stopped at the end,
# also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export AEGIS_VIRTUALENVS=${AEGIS_VIRTUALENVS:-$PWD/.venvs}
scripts/setup.sh --services >&2
exec .venv/bin/python -m demo.run "$@"
