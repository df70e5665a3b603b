"""Import every module of a pack (actions, actions/lib, sensors) and report the ones that fail.

    PYTHONPATH=st2lite/pack_env:packs/aegis/actions/lib python scripts/import_pack_modules.py packs/aegis

Run by ``scripts/py310.sh`` with StackStorm's Python and the pack's light dependencies: a
module that needs Python 3.11 or imports the ML stack at import time fails here. Each file is
imported by path under a unique name, as st2's runners load actions and sensors.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path

HEAVY = ("torch", "sentence_transformers", "faiss")


def import_file(path: Path, name: str) -> None:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def main(pack_dir: Path) -> int:
    files = [
        *sorted((pack_dir / "actions" / "lib").glob("*.py")),
        *sorted((pack_dir / "actions").glob("*.py")),
        *sorted((pack_dir / "sensors").glob("*.py")),
    ]
    failed = []
    for path in files:
        name = "_pack_check." + "_".join(path.relative_to(pack_dir).with_suffix("").parts)
        try:
            import_file(path, name)
        except Exception:  # noqa: BLE001 (every failure is reported, then the exit code says it)
            failed.append(path)
            print(f"FAILED {path}:\n{traceback.format_exc()}", file=sys.stderr)
    loaded_heavy = [m for m in HEAVY if m in sys.modules]
    if loaded_heavy:
        print(f"FAILED: importing the pack loaded {loaded_heavy} (they must be imported lazily)", file=sys.stderr)
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"py{version}: imported {len(files) - len(failed)}/{len(files)} pack modules")
    return 1 if failed or loaded_heavy else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "packs/aegis")))
