"""Processes that run pack code in the pack's virtualenv: warm action workers.

``WorkerPool.run(entry_point, parameters, timeout)`` hands one execution to an idle warm
worker (``pack_runtime.action_worker``), waits for its reply, and kills the worker when
the execution passes its timeout (a fresh worker replaces it). Workers are started
lazily and reused; each execution still gets a fresh ``Action`` instance.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import PACK_ENV_DIR

LOG = logging.getLogger(__name__)


def _site_packages(python: Path) -> list[str]:
    venv = Path(python).parent.parent
    return [str(p) for p in sorted(venv.glob("lib/python*/site-packages"))]


def pack_process_env(pack_dir: Path, python: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process running pack code, with st2's sandbox python path.

    As st2 does (``get_sandbox_python_path``, inheriting the parent virtualenv): st2's API
    modules, the pack's ``actions/lib``, the pack virtualenv's packages, and then the
    runtime's own, so a pack gets what the runtime offers (e.g. jsonschema for payload
    validation) unless it pins its own version, which wins.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PACK_ENV_DIR), str(Path(pack_dir) / "actions" / "lib"), *_site_packages(python),
         sysconfig.get_paths()["purelib"]]
    )  # fmt: skip
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class ExecutionReply:
    status: str  # succeeded | failed | timeout
    result: dict[str, Any]


class _Worker:
    def __init__(
        self, cmd: list[str], env: dict[str, str], log_file: Path | None, on_ready: Callable[[], None] | None = None
    ) -> None:
        stderr = open(log_file, "ab") if log_file else None  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env,
            text=True, bufsize=1, start_new_session=True,
        )  # fmt: skip
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._on_ready = on_ready
        #: Set when the worker said it is ready (``ready`` then True) or exited before that.
        self.started = threading.Event()
        self.ready = False
        threading.Thread(target=self._read, daemon=True, name=f"worker-{self.proc.pid}").start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                LOG.warning("worker %d wrote a non-protocol line: %r", self.proc.pid, line[:200])
                continue
            if not self.started.is_set() and isinstance(message, dict) and message.get("ready"):
                self.ready = True
                self.started.set()
                if self._on_ready:
                    self._on_ready()
                continue
            self._replies.put(message)
        self.started.set()
        self._replies.put(None)

    def wait_reply(self, timeout: float | None) -> dict[str, Any] | None:
        return self._replies.get(timeout=timeout)

    def send(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request, default=str) + "\n")
        self.proc.stdin.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


class WorkerPool:
    """Up to ``size`` warm workers for one pack."""

    startup_timeout = 300.0

    def __init__(
        self,
        python: Path,
        pack_dir: Path,
        pack_ref: str,
        config_file: Path | None,
        datastore: Path,
        size: int = 2,
        log_file: Path | None = None,
        preload: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self._cmd = [
            str(python), "-m", "pack_runtime.action_worker", "--pack-dir", str(pack_dir), "--pack", pack_ref,
            "--datastore", str(datastore),
        ]  # fmt: skip
        if config_file:
            self._cmd += ["--config", str(config_file)]
        if preload:
            self._cmd.append("--preload")
        self._env = pack_process_env(pack_dir, python, extra_env)
        self._log_file = log_file
        self._size = max(1, size)
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self._ready = threading.Event()

    def ready(self) -> bool:
        """A worker of this pool has started (imports done): executions start at once."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def _spawn(self) -> _Worker:
        worker = _Worker(self._cmd, self._env, self._log_file, on_ready=self._ready.set)
        LOG.info("started action worker %d", worker.proc.pid)
        return worker

    def warm_up(self) -> None:
        """Start every worker now, so no execution waits for a worker's imports (also the
        first time two run at once, as a workflow's parallel tasks do)."""
        while True:
            with self._cond:
                if self._count >= self._size or self._closed:
                    return
                self._count += 1
            self._add_worker()

    def _add_worker(self) -> None:
        """Start a worker (counted already) and make it available; it is used once ready."""
        try:
            worker = self._spawn()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            if self._closed:
                self._count -= 1
            else:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.kill()

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("worker pool is closed")
                while self._idle:
                    # A worker that is ready first; one still importing only when none is.
                    ready = [i for i, w in enumerate(self._idle) if w.ready]
                    worker = self._idle.pop(ready[-1] if ready else -1)
                    if worker.alive():
                        return worker
                    self._count -= 1
                if self._count < self._size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return self._spawn()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
            replace = not self._closed  # a killed or dead worker: start its successor now
            if not replace:
                self._count -= 1
            self._cond.notify()
        if replace:
            try:
                self._add_worker()
            except OSError:  # cannot start one now: the next execution starts one
                LOG.exception("could not start a replacement action worker")

    def run(self, entry_point: Path, parameters: dict[str, Any], timeout: float) -> ExecutionReply:
        worker = self._acquire()
        healthy = False
        try:
            # Imports at start-up (preload) are not the execution's time.
            if not worker.started.wait(timeout=self.startup_timeout):
                return ExecutionReply("failed", {"error": "action worker did not start in time", "exit_code": 1})
            if not worker.ready:
                return ExecutionReply("failed", {"error": "action worker failed to start", "exit_code": 1})
            deadline = time.monotonic() + timeout
            worker.send({"id": str(id(parameters)), "entry_point": str(entry_point), "parameters": parameters})
            reply = worker.wait_reply(timeout=max(0.0, deadline - time.monotonic()))
            if reply is None:
                return ExecutionReply("failed", {"error": "action worker died during the execution", "exit_code": 1})
            healthy = True
            return ExecutionReply(reply["status"], reply["result"])
        except queue.Empty:
            if not worker.ready:
                return ExecutionReply("failed", {"error": "action worker did not start in time", "exit_code": 1})
            return ExecutionReply(
                "timeout", {"error": f"action timed out after {timeout:g} seconds and was killed", "exit_code": -9}
            )
        except (BrokenPipeError, OSError) as exc:
            return ExecutionReply("failed", {"error": f"action worker unreachable: {exc}", "exit_code": 1})
        finally:
            self._release(worker, healthy)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in workers:
            worker.kill()
