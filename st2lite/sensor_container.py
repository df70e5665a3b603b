"""st2's sensor container: one process per sensor, in the pack's virtualenv, restarted with backoff.

Each sensor runs ``pack_runtime.sensor_wrapper``; it records the trigger instances it
dispatches itself and prints their ids, which this container hands to ``on_trigger``. A
sensor that exits is started again after 1, 2, 4, ... seconds (at most 60); the backoff
resets once a run has lasted a minute.

Readiness (st2lite only; st2's container has no such signal): the wrapper writes
``READY_LINE`` once the sensor is set up and its ``run()`` begins; ``ready()`` is true
from then until the process exits. Sensors run in their own session, so a Ctrl-C at the
terminal reaches the runtime only, which then stops them (no "exited; restarting" race).
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .pack_env.pack_runtime.sensor_wrapper import READY_LINE
from .pack_processes import pack_process_env

LOG = logging.getLogger(__name__)
MAX_BACKOFF = 60.0
STABLE_AFTER = 60.0


@dataclass
class SensorSpec:
    ref: str
    pack_ref: str
    pack_dir: Path
    python: Path
    file: Path
    class_name: str
    trigger_types: dict[str, dict]
    config_file: Path | None
    poll_interval: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # Triggers (a trigger type with the parameters a rule gives it) for add_trigger().
    triggers: list[dict] = field(default_factory=list)


def _last_line(path: Path, offset: int) -> str:
    """The last non-empty line written to ``path`` after ``offset`` (bounded read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(offset, path.stat().st_size - 4096))
            lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


class SensorProcess:
    def __init__(
        self,
        spec: SensorSpec,
        datastore: Path,
        records: Path,
        log_file: Path,
        on_trigger: Callable[[str], None],
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self._datastore = datastore
        self._records = records
        self._log_file = log_file
        self._on_trigger = on_trigger
        self._on_restart = on_restart
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._thread = threading.Thread(target=self._supervise, daemon=True, name=f"sensor-{spec.ref}")

    def command(self) -> list[str]:
        spec = self.spec
        cmd = [
            str(spec.python), "-m", "pack_runtime.sensor_wrapper",
            "--pack-dir", str(spec.pack_dir), "--pack", spec.pack_ref, "--file", str(spec.file),
            "--class-name", spec.class_name, "--trigger-types", json.dumps(spec.trigger_types),
            "--datastore", str(self._datastore), "--records", str(self._records),
        ]  # fmt: skip
        if spec.config_file:
            cmd += ["--config", str(spec.config_file)]
        if spec.poll_interval is not None:
            cmd += ["--poll-interval", str(spec.poll_interval)]
        if spec.triggers:
            cmd += ["--triggers", json.dumps(spec.triggers)]
        return cmd

    def start(self) -> None:
        self._thread.start()

    def _supervise(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            log_offset = self._log_file.stat().st_size if self._log_file.exists() else 0
            with open(self._log_file, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                    env=pack_process_env(self.spec.pack_dir, self.spec.python, self.spec.extra_env),
                    start_new_session=True,
                )  # fmt: skip
            if self._stop.is_set():  # stop() came while we were starting it
                self.proc.terminate()
            LOG.info("sensor %s started (pid %d), log %s", self.spec.ref, self.proc.pid, self._log_file)
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                trigger_instance_id = line.strip()
                if trigger_instance_id == READY_LINE:
                    LOG.info("sensor %s is ready", self.spec.ref)
                    self._ready.set()
                elif trigger_instance_id:
                    self._on_trigger(trigger_instance_id)
            code = self.proc.wait()
            was_ready = self._ready.is_set()
            self._ready.clear()
            if self._stop.is_set():
                break
            if time.monotonic() - started > STABLE_AFTER:
                backoff = 1.0
            self.restarts += 1
            # Say why in one line (e.g. "OSError: [Errno 98] Address already in use"): the
            # traceback is in the sensor's log.
            why = _last_line(self._log_file, log_offset)
            LOG.error("sensor %s exited with %s%s%s; restarting in %.0f s (see %s)", self.spec.ref, code,
                      "" if was_ready else " before it was ready", f": {why}" if why else "", backoff, self._log_file)
            if self._on_restart:
                self._on_restart(self.spec.ref)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """Set up and in ``run()`` (the wrapper said so) and still running."""
        return self._ready.is_set() and self.running()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def request_stop(self) -> None:
        """Stop restarting and send SIGTERM; ``stop()`` then waits (stop many at once)."""
        self._stop.set()
        proc = self.proc
        if proc and proc.poll() is None:
            proc.terminate()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        proc = self.proc
        if proc and proc.poll() is None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout)
