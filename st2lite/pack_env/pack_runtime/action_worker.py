"""A warm worker process that runs a pack's python-script actions, in the pack's virtualenv.

st2 starts one python process per execution; importing heavy libraries (torch, ...) then
costs seconds on every alert. This worker keeps the semantics that matter (a fresh
``Action`` instance per execution, built from the pack config with its own action
service; ``actions/lib`` on the path; stdout/stderr captured per execution; a
``(bool, result)`` return sets the status) and reuses the process, so module imports are
paid once per worker. The runtime kills a worker whose execution passes its timeout.

Protocol: one JSON request per line on stdin, one JSON reply per line on the original
stdout (the action's own prints go to a capture file, never into the protocol).

    {"id": "...", "entry_point": "/abs/path/action.py", "parameters": {...}}
    -> {"id": "...", "status": "succeeded" | "failed", "result": {"result": ..., "stdout": "...",
        "stderr": "...", "exit_code": 0}}

Run as ``python -m pack_runtime.action_worker --pack-dir DIR --pack REF --config FILE
--datastore FILE [--preload]``.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import inspect
import json
import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from .datastore import DatastoreService, KeyValueStore

_module_cache: dict[str, Any] = {}


def _load_config(path: str | None) -> dict[str, Any]:
    if not path or not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def load_action_class(entry_point: str) -> type:
    """Import the entry point once per worker and return its one ``Action`` subclass."""
    from st2common.runners.base_action import Action

    module = _module_cache.get(entry_point)
    if module is None:
        name = "st2lite_action_" + Path(entry_point).stem
        spec = importlib.util.spec_from_file_location(name, entry_point)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import action entry point {entry_point}")
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs, as an import would be: dataclasses and pickling look it up.
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _module_cache[entry_point] = module
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Action) and obj is not Action and obj.__module__ == module.__name__
    ]
    if len(classes) != 1:
        raise ImportError(f"{entry_point} must define exactly one Action subclass, found {len(classes)}")
    return classes[0]


class _CapturedOutput:
    """Point fds 1 and 2 at temp files for one execution (catches C-level output too)."""

    def __enter__(self) -> _CapturedOutput:
        sys.stdout.flush()
        sys.stderr.flush()
        self._files = [tempfile.TemporaryFile(mode="w+b") for _ in range(2)]
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._files[0].fileno(), 1)
        os.dup2(self._files[1].fileno(), 2)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self.stdout, self.stderr = (self._read(f) for f in self._files)

    @staticmethod
    def _read(fh: Any) -> str:
        fh.seek(0)
        data = fh.read().decode("utf-8", "replace")
        fh.close()
        return data


def run_one(request: dict[str, Any], pack: str, config: dict[str, Any], store: KeyValueStore) -> dict[str, Any]:
    status, value, error = "failed", None, None
    with _CapturedOutput() as captured:
        try:
            action_cls = load_action_class(request["entry_point"])
            service = DatastoreService(store, pack, action_cls.__name__)
            # Its own copy, as st2 loads the config in each execution's new process: what one
            # execution changes in self.config never reaches the next in this worker.
            action = action_cls(config=copy.deepcopy(config), action_service=service)
            value = action.run(**request.get("parameters", {}))
            status = "succeeded"
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
                status = "succeeded" if value[0] else "failed"
                value = value[1]
        except Exception:
            error = traceback.format_exc()
            sys.stderr.write(error)
    result: dict[str, Any] = {
        "result": value,
        "stdout": captured.stdout,
        "stderr": captured.stderr,
        "exit_code": 0 if status == "succeeded" else 1,
    }
    if error:
        result["error"] = error.strip().splitlines()[-1]
        result["traceback"] = error
    return {"id": request.get("id"), "status": status, "result": result}


def preload(pack_dir: str) -> None:
    """Import every python action of the pack, so the first alert pays no import cost."""
    for meta in sorted(Path(pack_dir, "actions").glob("*.py")):
        try:
            load_action_class(str(meta.resolve()))
        except Exception as exc:  # a broken action fails its own executions, not the worker
            logging.getLogger(__name__).warning("preloading %s failed: %s", meta.name, exc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack-dir", required=True)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--config", help="pack config, as JSON (already rendered by the runtime)")
    parser.add_argument("--datastore", required=True)
    parser.add_argument("--preload", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("ST2LITE_LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s [worker %(process)d] %(name)s: %(message)s")

    # Keep the protocol channel to ourselves: anything else printing to fd 1 lands on stderr.
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.path.insert(0, os.path.join(args.pack_dir, "actions", "lib"))
    config = _load_config(args.config)
    store = KeyValueStore(args.datastore)
    if args.preload:
        preload(args.pack_dir)
    protocol_out.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply = run_one(request, args.pack, config, store)
        protocol_out.write(json.dumps(reply, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
