"""Watches log streams for known fatal patterns and dispatches ``aegis.log_pattern`` triggers.

Pack config (``config.schema.yaml`` documents every key)::

    log_patterns:
      - name: oom_killed
        regex: 'Out of memory: Killed process (?P<pid>\\d+) \\((?P<process>[^)]+)\\)'
        threshold: 1          # matches ...
        window: 60            # ... within this many seconds fire the trigger
        cooldown: 300         # then stay quiet this long (per group_by key)
        severity: critical
        group_by: [process]   # count and cool down per extracted value
    log_sources:
      files: [/var/log/app/*.log]            # followed like tail -F
      amqp: {url: amqp://guest:guest@127.0.0.1:5672//, queue: aegis.logs}

Files: every glob is re-expanded each poll. A file present when the sensor starts for the
first time is read from its end; one that appears later is read from its start. Offsets
are persisted in the datastore after the lines before them were processed, so a restart
resumes where it stopped; rotation (rename + new file, also while the sensor was down:
the old inode is looked up in the same directory) and truncation are followed.

AMQP: a durable queue (a shipper such as Vector or Logstash publishes to it), each message
a text line (several lines allowed) or a JSON record ``{"message": "...", ...}`` whose other
scalar fields join the extracted fields. A message is acknowledged only after its lines
were processed: every trigger they caused is recorded, or they did not complete a
threshold. When recording fails the message is requeued. The consumer reconnects with
exponential backoff when the broker goes away.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter
from st2reactor.sensor.base import Sensor

# st2 does not put actions/lib on a sensor's path; st2lite does, this keeps both working.
_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from matched_lines import remember_matched_lines  # noqa: E402
from metrics import metric  # noqa: E402
from timestamps import utc_iso  # noqa: E402

TRIGGER = "aegis.log_pattern"
SEVERITIES = ("info", "warning", "error", "critical")
OFFSET_KEY = "offset:"



LINES = metric(Counter, "aegis_log_lines", "Log lines read, by source type.", ("source_type",))
MATCHES = metric(Counter, "aegis_log_matches", "Log lines matching a pattern.", ("pattern",))
TRIGGERS = metric(Counter, "aegis_log_triggers", "aegis.log_pattern triggers recorded.", ("pattern",))
SOURCE_ERRORS = metric(Counter, "aegis_log_source_errors", "Errors reading a log source.", ("source_type",))


class ConfigError(ValueError):
    """The ``log_patterns`` / ``log_sources`` pack config is unusable."""


@dataclass
class Pattern:
    name: str
    regex: re.Pattern[str]
    threshold: int = 1
    window: float = 60.0
    cooldown: float = 300.0
    severity: str = "warning"
    group_by: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, item: Any, index: int) -> Pattern:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"log_patterns[{index}] needs a non-empty name")
        name = item["name"]
        if not isinstance(item.get("regex"), str):
            raise ConfigError(f"log pattern {name!r}: regex must be a string")
        try:
            regex = re.compile(item["regex"], re.IGNORECASE if item.get("ignore_case") else 0)
        except re.error as exc:
            raise ConfigError(f"log pattern {name!r}: invalid regex: {exc}") from None
        threshold, window, cooldown = item.get("threshold", 1), item.get("window", 60), item.get("cooldown", 300)
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise ConfigError(f"log pattern {name!r}: threshold must be an integer >= 1, got {threshold!r}")
        for key, value in (("window", window), ("cooldown", cooldown)):
            if not isinstance(value, int | float) or isinstance(value, bool) or value < (0 if key == "cooldown" else 1e-9):
                raise ConfigError(f"log pattern {name!r}: {key} must be a {'non-negative' if key == 'cooldown' else 'positive'} number of seconds")
        severity = item.get("severity", "warning")
        if severity not in SEVERITIES:
            raise ConfigError(f"log pattern {name!r}: severity must be one of {', '.join(SEVERITIES)}")
        group_by = tuple(item.get("group_by") or ())
        unknown = [g for g in group_by if g not in regex.groupindex]
        if unknown:
            raise ConfigError(f"log pattern {name!r}: group_by names {unknown} are not named groups of its regex")
        return cls(name, regex, threshold, float(window), float(cooldown), severity, group_by)


@dataclass
class _Window:
    hits: deque = field(default_factory=deque)  # (monotonic time, wall time iso, line, source)
    quiet_until: float = 0.0


class PatternMatcher:
    """Counts matches per pattern (and ``group_by`` key) in a sliding window; thread-safe.

        >>> m = PatternMatcher([Pattern("oom", re.compile("OOM (?P<svc>\\\\w+)"), threshold=2)])
        >>> m.feed("OOM api", "test"), len(m.feed("OOM api", "test"))
        ([], 1)
    """

    def __init__(self, patterns: list[Pattern], max_lines: int = 5, max_line_chars: int = 512, clock=time.monotonic) -> None:
        self.patterns = patterns
        self._max_lines = max_lines
        self._max_chars = max_line_chars
        self._clock = clock
        self._windows: dict[tuple[str, tuple[str, ...]], _Window] = {}
        self._lock = threading.Lock()

    def feed(self, line: str, source: str, extra_fields: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Match one line; return the trigger payloads it completes (usually none)."""
        payloads = []
        for pattern in self.patterns:
            found = pattern.regex.search(line)
            if not found:
                continue
            MATCHES.labels(pattern=pattern.name).inc()
            fields = {**(extra_fields or {}), **{k: v for k, v in found.groupdict().items() if v is not None}}
            key = (pattern.name, tuple(str(fields.get(g, "")) for g in pattern.group_by))
            now = self._clock()
            with self._lock:
                window = self._windows.setdefault(key, _Window())
                window.hits.append((now, utc_iso(), line, source))
                while window.hits and window.hits[0][0] < now - pattern.window:
                    window.hits.popleft()
                if len(window.hits) < pattern.threshold or now < window.quiet_until:
                    continue
                hits = list(window.hits)
                window.hits.clear()
                window.quiet_until = now + pattern.cooldown
            payloads.append(self._payload(pattern, fields, hits, source))
        return payloads

    def _payload(self, pattern: Pattern, fields: dict[str, Any], hits: list[tuple], source: str) -> dict[str, Any]:
        def clip(text: str) -> str:
            return text if len(text) <= self._max_chars else text[: self._max_chars - 1] + "…"

        return {
            "pattern": pattern.name,
            "severity": pattern.severity,
            "fields": {k: (v if isinstance(v, str | int | float | bool) else str(v)) for k, v in fields.items()},
            "count": len(hits),
            "threshold": pattern.threshold,
            "window": pattern.window,
            "lines": [clip(h[2]) for h in hits[-self._max_lines:]],
            "source": source,
            "first_seen": hits[0][1],
            "last_seen": hits[-1][1],
        }


class FileFollower:
    """Follows one path like ``tail -F``: complete lines only, across rotation and truncation.

    ``offset`` is the position just after the last line returned and processed; the sensor
    persists it with the file's identity ``(dev, ino)``.
    """

    def __init__(self, path: str, saved: dict[str, Any] | None, from_end: bool, max_line_bytes: int) -> None:
        self.path = path
        self._saved = saved
        self._from_end = from_end
        self._max = max_line_bytes
        self._fh: Any = None
        self._dev = self._ino = 0
        self.offset = 0
        self._draining: FileFollower | None = None  # the rotated-away file, read to its end first

    @property
    def state(self) -> dict[str, int] | None:
        if self._draining is not None and self._draining.state is not None:
            return self._draining.state  # until the old file is done, a restart must return to it
        if self._fh is None:
            return None
        return {"dev": self._dev, "ino": self._ino, "offset": self.offset}

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._draining is not None:
            self._draining.close()
            self._draining = None

    def _open(self, st: os.stat_result, offset: int) -> None:
        self.close_current()
        self._fh = open(self.path, "rb")  # noqa: SIM115 (kept open while following)
        self._dev, self._ino = st.st_dev, st.st_ino
        self.offset = offset

    def close_current(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _first_open(self, st: os.stat_result) -> None:
        saved, self._saved = self._saved, None
        if saved and (saved.get("dev"), saved.get("ino")) == (st.st_dev, st.st_ino):
            # Same file: resume, unless it was truncated while we were away.
            self._open(st, saved["offset"] if st.st_size >= saved["offset"] else 0)
            return
        if saved:
            # Rotated while we were down: finish the old file (if it is still around) first.
            old = self._find_inode(saved["dev"], saved["ino"])
            if old:
                self._draining = FileFollower(old, saved, from_end=False, max_line_bytes=self._max)
            self._open(st, 0)
            return
        self._open(st, st.st_size if self._from_end else 0)

    def _find_inode(self, dev: int, ino: int) -> str | None:
        directory = os.path.dirname(self.path) or "."
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if (st.st_dev, st.st_ino) == (dev, ino) and entry.is_file(follow_symlinks=False):
                        return entry.path
        except OSError:
            return None
        return None

    def read(self, max_bytes: int = 4 * 1024 * 1024) -> list[tuple[str, int, FileFollower]]:
        """New complete lines as ``(line, end_offset, follower)``; commit with :meth:`commit`."""
        if self._draining is not None:
            lines = self._draining.read(max_bytes)
            if lines:
                return lines
            self._draining.close()
            self._draining = None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        lines: list[tuple[str, int, FileFollower]] = []
        if self._fh is None:
            if st is None:
                return lines
            self._first_open(st)
            self._from_end = False  # a file that appears later is read from its start
            return self.read(max_bytes) if self._draining is not None else self._read_current(max_bytes)
        if st is not None and (st.st_dev, st.st_ino) != (self._dev, self._ino):
            # Rotated: take the rest of the old file (an unterminated last line too), then
            # switch to the new one.
            lines = self._read_current(max_bytes, final=True)
            if lines:
                return lines
            self._open(st, 0)
        elif os.fstat(self._fh.fileno()).st_size < self.offset:
            self.offset = 0  # truncated in place (copytruncate, > file)
        return self._read_current(max_bytes)

    def _read_current(self, max_bytes: int, final: bool = False) -> list[tuple[str, int, FileFollower]]:
        self._fh.seek(self.offset)
        data = self._fh.read(max_bytes)
        lines, start = [], 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            raw = data[start:end]
            if len(raw) > self._max:
                raw = raw[: self._max]
            lines.append((raw.rstrip(b"\r").decode("utf-8", "replace"), self.offset + end + 1, self))
            start = end + 1
        if not lines and data and final:
            lines.append((data[: self._max].decode("utf-8", "replace"), self.offset + len(data), self))
        elif not lines and len(data) > self._max:
            # One line longer than the limit and still growing: emit its head, skip the rest.
            cut = data[: self._max]
            lines.append((cut.decode("utf-8", "replace"), self.offset + len(data), self))
        return lines

    def commit(self, end_offset: int) -> None:
        self.offset = end_offset


class LogPatternSensor(Sensor):
    """Follows log files and an AMQP queue; dispatches ``aegis.log_pattern`` triggers."""

    def __init__(self, sensor_service: Any, config: dict[str, Any] | None = None) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._log = sensor_service.get_logger(__name__)
        self._stop = threading.Event()
        self._followers: dict[str, FileFollower] = {}
        self._amqp_thread: threading.Thread | None = None
        self.matcher: PatternMatcher | None = None
        self.sources: dict[str, Any] = {}
        self._first_scan = True

    # -- st2 sensor interface ------------------------------------------------------------

    def setup(self) -> None:
        raw_patterns = (self.config or {}).get("log_patterns") or []
        if not isinstance(raw_patterns, list):
            raise ConfigError("log_patterns must be a list")
        patterns = [Pattern.from_config(item, i) for i, item in enumerate(raw_patterns)]
        names = [p.name for p in patterns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"log pattern names must be unique: {duplicates}")
        sources = dict((self.config or {}).get("log_sources") or {})
        sources.setdefault("files", [])
        sources.setdefault("poll_interval", 1.0)
        sources.setdefault("max_line_bytes", 16 * 1024)
        sources.setdefault("max_lines_in_trigger", 5)
        sources.setdefault("max_trigger_line_chars", 512)
        if not isinstance(sources["files"], list) or not all(isinstance(g, str) for g in sources["files"]):
            raise ConfigError("log_sources.files must be a list of glob patterns")
        amqp = sources.get("amqp")
        # st2 fills the section's defaults even when it is absent: no url means no AMQP source.
        if amqp is not None and not isinstance(amqp, dict):
            raise ConfigError("log_sources.amqp must be an object with url and queue")
        if amqp and amqp.get("url") and not amqp.get("queue"):
            raise ConfigError("log_sources.amqp needs a queue when url is set")
        self.sources = sources
        self.matcher = PatternMatcher(patterns, sources["max_lines_in_trigger"], sources["max_trigger_line_chars"])
        if not patterns:
            self._log.warning("no log_patterns configured; lines are read and counted only")

    def run(self) -> None:
        amqp = self.sources.get("amqp")
        if amqp and amqp.get("url"):
            self._amqp_thread = threading.Thread(target=self._consume_amqp, args=(amqp,), name="amqp-logs", daemon=True)
            self._amqp_thread.start()
        while not self._stop.is_set():
            try:
                self.poll_files()
            except Exception:  # one bad poll must not stop the sensor; next poll retries
                SOURCE_ERRORS.labels(source_type="file").inc()
                self._log.exception("polling log files failed")
            self._stop.wait(self.sources["poll_interval"])

    def cleanup(self) -> None:
        self._stop.set()
        if self._amqp_thread is not None and self._amqp_thread is not threading.current_thread():
            self._amqp_thread.join(10)
        for follower in self._followers.values():
            follower.close()

    def add_trigger(self, trigger: dict[str, Any]) -> None:
        pass

    def update_trigger(self, trigger: dict[str, Any]) -> None:
        pass

    def remove_trigger(self, trigger: dict[str, Any]) -> None:
        pass

    # -- lines -------------------------------------------------------------------------

    def process_line(self, line: str, source: str, extra_fields: dict[str, Any] | None = None) -> None:
        """Match one line and dispatch what it completes; raises when recording fails."""
        assert self.matcher is not None
        for payload in self.matcher.feed(line, source, extra_fields):
            if self.sensor_service.dispatch(TRIGGER, payload, trace_tag=f"log:{payload['pattern']}") is None:
                self._log.error("trigger for pattern %s failed its payload_schema; see the sensor service log", payload["pattern"])
            else:
                TRIGGERS.labels(pattern=payload["pattern"]).inc()
                remember_matched_lines(self.sensor_service, payload)

    # -- files -------------------------------------------------------------------------

    def poll_files(self) -> None:
        """One pass over every file the globs name: read, match, dispatch, persist offsets."""
        paths = sorted({p for pattern in self.sources["files"] for p in glob.glob(pattern) if os.path.isfile(p)})
        for path in paths:
            if path not in self._followers:
                saved = self.sensor_service.get_value(OFFSET_KEY + path, local=True)
                self._followers[path] = FileFollower(
                    path, json.loads(saved) if saved else None, from_end=self._first_scan, max_line_bytes=self.sources["max_line_bytes"]
                )
        self._first_scan = False
        for path, follower in list(self._followers.items()):
            before = follower.state
            while True:
                lines = follower.read()
                if not lines:
                    break
                LINES.labels(source_type="file").inc(len(lines))
                for line, end, owner in lines:
                    self.process_line(line, path)
                    owner.commit(end)
                self._persist(path, follower)
            if follower.state != before:
                self._persist(path, follower)
            if not os.path.exists(path):
                # Gone and read to its end: stop holding the deleted file open.
                follower.close()
                del self._followers[path]
                self.sensor_service.delete_value(OFFSET_KEY + path, local=True)

    def _persist(self, path: str, follower: FileFollower) -> None:
        if follower.state is not None:
            self.sensor_service.set_value(OFFSET_KEY + path, json.dumps(follower.state), local=True)

    # -- AMQP --------------------------------------------------------------------------

    def _consume_amqp(self, settings: dict[str, Any]) -> None:
        from kombu import Connection, Exchange, Queue  # only sensors with an AMQP source need kombu

        exchange = Exchange(settings["exchange"], type=settings.get("exchange_type", "direct"), durable=True) if settings.get("exchange") else None
        queue = Queue(settings["queue"], exchange=exchange, routing_key=settings.get("routing_key", settings["queue"]),
                      durable=True, auto_delete=False)  # fmt: skip
        source = f"amqp:{settings['queue']}"
        backoff, max_backoff = 0.5, float(settings.get("max_backoff", 30))
        while not self._stop.is_set():
            try:
                with Connection(settings["url"], connect_timeout=5, heartbeat=settings.get("heartbeat", 30)) as conn:
                    conn.connect()
                    with conn.Consumer(queue, on_message=lambda m: self._on_message(m, source),
                                       prefetch_count=settings.get("prefetch_count", 100)):  # fmt: skip
                        self._log.info("consuming log lines from %s queue %s", conn.as_uri(), settings["queue"])
                        backoff = 0.5
                        while not self._stop.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                conn.heartbeat_check()
            except Exception as exc:  # broker gone, refused, channel error: reconnect later
                if self._stop.is_set():
                    break
                SOURCE_ERRORS.labels(source_type="amqp").inc()
                delay = backoff * (1 + random.random() / 2)
                self._log.warning("AMQP source %s: %s: %s; reconnecting in %.1fs", settings["queue"], type(exc).__name__, exc, delay)
                self._stop.wait(delay)
                backoff = min(backoff * 2, max_backoff)

    def _on_message(self, message: Any, source: str) -> None:
        body = message.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else str(body)
        lines, extra = _message_lines(text)
        LINES.labels(source_type="amqp").inc(len(lines))
        try:
            for line in lines:
                self.process_line(line, source, extra)
        except Exception:
            # Not recorded: give the message back to the queue and slow down a little.
            self._log.exception("could not record a trigger from %s; requeueing the message", source)
            message.requeue()
            self._stop.wait(1)
            return
        message.ack()


def _message_lines(text: str) -> tuple[list[str], dict[str, Any]]:
    """A message body as lines plus the scalar fields of a JSON record (``{"message": ...}``)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            extra = {k: v for k, v in record.items() if k != "message" and isinstance(v, str | int | float | bool)}
            return record["message"].splitlines() or [""], extra
    return text.splitlines(), {}

