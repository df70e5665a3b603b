#!/usr/bin/env bash
# Sets up both environments, as st2 has them: the runtime's (.venv, from pyproject.toml)
# and the pack's (built by `aegis pack setup` from packs/*/requirements.txt).
# With --services it also installs the Debian packages the tests start on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
export AEGIS_VIRTUALENVS=${AEGIS_VIRTUALENVS:-$PWD/.venvs}

if [[ "${1:-}" == "--services" ]]; then
  # openssl: an independent st2 decryption in tests; chromium: the cockpit's browser tests
  packages=(prometheus prometheus-alertmanager rabbitmq-server openssl postgresql redis-server supervisor docker-compose
            chromium chromium-driver)
  # A set: several features need the same servers.
  mapfile -t packages < <(printf '%s
' "${packages[@]}" | sort -u)
  missing=()
  for p in "${packages[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    echo "installing Debian packages: ${missing[*]}" >&2
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    # The packages' own services are not wanted: tests start private instances.
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    for svc in rabbitmq-server prometheus-alertmanager prometheus postgresql redis-server supervisor; do $SUDO service "$svc" stop >/dev/null 2>&1 || true; done
  fi
fi

if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/aegis pack setup

# The real st2 CLI for the API tests, in its own virtualenv (its pins clash with orquesta's);
# rebuilt only when the pin changes.
ST2CLIENT_PIN="st2client==3.9.0"
ST2CLIENT_VENV=${ST2CLIENT_VENV:-$PWD/.venvs/st2client}
if [[ "$(cat "$ST2CLIENT_VENV/PIN" 2>/dev/null)" != "$ST2CLIENT_PIN" ]]; then
  rm -rf "$ST2CLIENT_VENV"
  "$PYTHON" -m venv "$ST2CLIENT_VENV"
  "$ST2CLIENT_VENV/bin/pip" install -q --disable-pip-version-check "$ST2CLIENT_PIN"
  echo "$ST2CLIENT_PIN" > "$ST2CLIENT_VENV/PIN"
fi

# StackStorm's ChatOps bridge for the ChatOps end-to-end test: Errbot and err-stackstorm,
# unchanged, in their own virtualenv (errbot's Test backend imports pytest).
ERRBOT_PIN="errbot==6.2.1 err-stackstorm==2.3.2 pytest==9.0.3"
ERRBOT_VENV=.venvs/errbot
if [[ "$(cat "$ERRBOT_VENV/PIN" 2>/dev/null)" != "$ERRBOT_PIN" ]]; then
  rm -rf "$ERRBOT_VENV"
  "$PYTHON" -m venv "$ERRBOT_VENV"
  # shellcheck disable=SC2086 # the pin is a list of requirements
  "$ERRBOT_VENV/bin/pip" install -q --disable-pip-version-check $ERRBOT_PIN
  echo "$ERRBOT_PIN" > "$ERRBOT_VENV/PIN"
fi
