"""The durable record of what happened: trigger instances, rule enforcements, executions.

This is st2lite's answer to ``st2 execution list`` and ``st2 trigger-instance list``.
SQLite in WAL mode with ``synchronous=NORMAL``: a committed record survives the process
being killed (SIGKILL); it may not survive a power loss of the machine.

Standard library only, because sensor processes (in the pack's virtualenv) record the
trigger instances they dispatch straight into it, before they answer their clients.

    >>> db = Records("/tmp/history.sqlite")
    >>> ti = db.record_trigger_instance("aegis.alert", {"status": "firing"})
    >>> db.get_trigger_instance(ti)["status"]
    'pending'
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .sqlite import ThreadConnections

# st2's action execution statuses (st2common/constants/action.py).
REQUESTED = "requested"
SCHEDULED = "scheduled"
DELAYED = "delayed"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMEOUT = "timeout"
ABANDONED = "abandoned"
CANCELING = "canceling"
CANCELED = "canceled"
PENDING = "pending"
PAUSING = "pausing"
PAUSED = "paused"
RESUMING = "resuming"
EXECUTION_STATUSES = (
    REQUESTED, SCHEDULED, DELAYED, RUNNING, SUCCEEDED, FAILED, TIMEOUT,
    ABANDONED, CANCELING, CANCELED, PENDING, PAUSING, PAUSED, RESUMING,
)  # fmt: skip
COMPLETED_STATUSES = (SUCCEEDED, FAILED, TIMEOUT, ABANDONED, CANCELED)
# Statuses of an execution that a process was working on; after a crash nobody is.
IN_FLIGHT_STATUSES = (REQUESTED, SCHEDULED, DELAYED, RUNNING, CANCELING, PAUSING, RESUMING)

# st2's trigger instance statuses (st2common/constants/trigger.py).
TI_PENDING = "pending"
TI_PROCESSING = "processing"
TI_PROCESSED = "processed"
TI_PROCESSING_FAILED = "processing_failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trigger_instances (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    payload TEXT NOT NULL,
    occurrence_time TEXT NOT NULL,
    status TEXT NOT NULL,
    trace_tag TEXT,
    sensor TEXT
);
CREATE INDEX IF NOT EXISTS ti_status ON trigger_instances(status);
CREATE TABLE IF NOT EXISTS rule_enforcements (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    trigger_instance_id TEXT NOT NULL,
    execution_id TEXT,
    status TEXT NOT NULL,
    failure_reason TEXT,
    enforced_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    runner TEXT NOT NULL,
    status TEXT NOT NULL,
    parameters TEXT NOT NULL,
    result TEXT,
    context TEXT NOT NULL,
    start_timestamp TEXT NOT NULL,
    end_timestamp TEXT,
    parent TEXT,
    task_name TEXT,
    rule TEXT,
    trigger_instance_id TEXT,
    workflow_state TEXT
);
CREATE INDEX IF NOT EXISTS ex_parent ON executions(parent);
CREATE INDEX IF NOT EXISTS ex_start ON executions(start_timestamp);
"""

_counter_lock = threading.Lock()
_counter = int.from_bytes(os.urandom(3), "big")
_process_random = os.urandom(5).hex()


def _reseed() -> None:
    global _process_random, _counter
    _process_random, _counter = os.urandom(5).hex(), int.from_bytes(os.urandom(3), "big")


os.register_at_fork(after_in_child=_reseed)  # a forked child must not repeat its parent's ids


def new_id() -> str:
    """A 24-hex-digit id shaped like st2's (MongoDB ObjectId): time-ordered, unique.

    As an ObjectId: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter.
    """
    global _counter
    with _counter_lock:
        _counter = (_counter + 1) & 0xFFFFFF
        count = _counter
    return f"{int(time.time()):08x}{_process_random}{count:06x}"


def utc_now() -> str:
    """Now as RFC 3339 with microseconds, the way st2 prints timestamps."""
    return timestamp(time.time())


def timestamp(seconds: float) -> str:
    """``seconds`` since the epoch as :func:`utc_now` prints it (such strings sort by time)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_dumps = json.JSONEncoder(default=str, sort_keys=True).encode  # one encoder, not one per record
encode_payload = _dumps  # how a payload is stored (JSON text)


def _status_sets(status: str | None, result: Any) -> tuple[list[str], list[Any]]:
    """SET clauses for a new status (ending it stamps ``end_timestamp``) and result."""
    sets: list[str] = []
    args: list[Any] = []
    if status is not None:
        sets.append("status=?")
        args.append(status)
        if status in COMPLETED_STATUSES:
            sets.append("end_timestamp=?")
            args.append(utc_now())
    if result is not None:
        sets.append("result=?")
        args.append(_dumps(result))
    return sets, args


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


class Records:
    """Thread-safe access to the history database (one connection per thread)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        self._connections = ThreadConnections(self.path, _SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def checkpoint_in_background(self) -> None:
        """WAL checkpoints on a thread of their own, not in this process's commits (``sqlite.py``)."""
        self._connections.checkpoint_in_background()

    # -- trigger instances -------------------------------------------------------------

    def record_trigger_instance(
        self, trigger: str, payload: dict[str, Any], trace_tag: str | None = None, sensor: str | None = None
    ) -> str:
        ti_id = new_id()
        self._conn().execute(
            "INSERT INTO trigger_instances(id, trigger, payload, occurrence_time, status, trace_tag, sensor)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (ti_id, trigger, _dumps(payload), utc_now(), TI_PENDING, trace_tag, sensor),
        )
        return ti_id

    def record_trigger_instances(self, rows: list[tuple[str, str, dict[str, Any] | str, str | None, str | None]]) -> None:
        """Record many trigger instances in one commit: rows of ``(id, trigger, payload, trace_tag, sensor)``.

        A payload may come already encoded (:func:`encode_payload`), e.g. when it was
        captured earlier than it is written.
        """
        now = utc_now()
        with self._connections.transaction() as conn:
            conn.executemany(
                "INSERT INTO trigger_instances(id, trigger, payload, occurrence_time, status, trace_tag, sensor)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(ti_id, trigger, payload if isinstance(payload, str) else _dumps(payload), now, TI_PENDING, tag, sensor)
                 for ti_id, trigger, payload, tag, sensor in rows],
            )  # fmt: skip

    def set_trigger_instance_status(self, ti_id: str, status: str) -> None:
        self._conn().execute("UPDATE trigger_instances SET status=? WHERE id=?", (status, ti_id))

    def pending_trigger_instances(self, limit: int = 500) -> list[dict[str, Any]]:
        rows = self._conn().execute(
            "SELECT * FROM trigger_instances WHERE status IN (?, ?) ORDER BY rowid LIMIT ?",
            (TI_PENDING, TI_PROCESSING, limit),
        )
        return [self._trigger_row(r, rows.description) for r in rows.fetchall()]

    def get_trigger_instance(self, ti_id: str) -> dict[str, Any] | None:
        cur = self._conn().execute("SELECT * FROM trigger_instances WHERE id=?", (ti_id,))
        row = cur.fetchone()
        return self._trigger_row(row, cur.description) if row else None

    def list_trigger_instances(self, trigger: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM trigger_instances", []
        if trigger:
            sql += " WHERE trigger=?"
            args.append(trigger)
        sql += " ORDER BY rowid DESC LIMIT ?"
        cur = self._conn().execute(sql, [*args, limit])
        return [self._trigger_row(r, cur.description) for r in cur.fetchall()]

    @staticmethod
    def _trigger_row(row: tuple, description: Any) -> dict[str, Any]:
        record = dict(zip([d[0] for d in description], row, strict=True))
        record["payload"] = _loads(record["payload"])
        return record

    # -- rule enforcements -------------------------------------------------------------

    def record_rule_enforcement(
        self,
        rule: str,
        trigger_instance_id: str,
        execution_id: str | None,
        status: str,
        failure_reason: str | None = None,
    ) -> str:
        enf_id = new_id()
        self._conn().execute(
            "INSERT INTO rule_enforcements VALUES (?,?,?,?,?,?,?)",
            (enf_id, rule, trigger_instance_id, execution_id, status, failure_reason, utc_now()),
        )
        return enf_id

    def list_rule_enforcements(self, trigger_instance_id: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM rule_enforcements", []
        if trigger_instance_id:
            sql += " WHERE trigger_instance_id=?"
            args.append(trigger_instance_id)
        cur = self._conn().execute(sql + " ORDER BY enforced_at", args)
        return [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]

    # -- executions --------------------------------------------------------------------

    def create_execution(
        self,
        action: str,
        runner: str,
        parameters: dict[str, Any],
        context: dict[str, Any] | None = None,
        parent: str | None = None,
        task_name: str | None = None,
        rule: str | None = None,
        trigger_instance_id: str | None = None,
        status: str = REQUESTED,
        execution_id: str | None = None,
    ) -> str:
        ex_id = execution_id or new_id()
        self._conn().execute(
            "INSERT INTO executions(id, action, runner, status, parameters, context, start_timestamp,"
            " parent, task_name, rule, trigger_instance_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (ex_id, action, runner, status, _dumps(parameters), _dumps(context or {}), utc_now(),
             parent, task_name, rule, trigger_instance_id),
        )  # fmt: skip
        return ex_id

    def update_execution(
        self,
        ex_id: str,
        status: str | None = None,
        result: Any = None,
        workflow_state: Any = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        sets, args = _status_sets(status, result)
        if workflow_state is not None:
            sets.append("workflow_state=?")
            args.append(_dumps(workflow_state))
        if parameters is not None:
            sets.append("parameters=?")
            args.append(_dumps(parameters))
        if sets:
            self._conn().execute(f"UPDATE executions SET {', '.join(sets)} WHERE id=?", [*args, ex_id])

    def transition_execution(self, ex_id: str, expected: str, status: str, result: Any = None) -> bool:
        """Set ``status`` (and ``result``) only if the execution is still ``expected``; True if it was.

        Two deciders racing (an inquiry answered as its ttl expires) cannot both win.
        """
        sets, args = _status_sets(status, result)
        cur = self._conn().execute(f"UPDATE executions SET {', '.join(sets)} WHERE id=? AND status=?", [*args, ex_id, expected])
        return cur.rowcount == 1

    def get_execution(self, ex_id: str) -> dict[str, Any] | None:
        cur = self._conn().execute("SELECT * FROM executions WHERE id=?", (ex_id,))
        row = cur.fetchone()
        if not row:
            return None
        record = self._execution_row(row, cur.description)
        record["children"] = [c["id"] for c in self.list_executions(parent=ex_id, limit=10_000, newest_first=False)]
        return record

    def list_executions(
        self,
        action: str | None = None,
        status: str | None = None,
        parent: str | None = None,
        top_level_only: bool = False,
        limit: int = 50,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        return self.query_executions(action=action, status=status, parent=parent, top_level_only=top_level_only,
                                     limit=limit, newest_first=newest_first, with_total=False)[0]  # fmt: skip

    def query_executions(
        self,
        *,
        action: str | None = None,
        status: str | None = None,
        runner: str | None = None,
        parent: str | None = None,
        top_level_only: bool = False,
        user: str | None = None,
        trigger_instance_id: str | None = None,
        timestamp_gt: str | None = None,
        timestamp_lt: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
        newest_first: bool = True,
        with_total: bool = True,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of executions matching every filter given, and how many match in all (st2's API)."""
        where, args = [], []
        for column, value in (("action", action), ("status", status), ("runner", runner), ("parent", parent),
                              ("trigger_instance_id", trigger_instance_id)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if top_level_only:
            where.append("parent IS NULL")
        if user is not None:
            where.append("json_extract(context, '$.user')=?")
            args.append(user)
        if timestamp_gt:
            where.append("start_timestamp>?")
            args.append(timestamp_gt)
        if timestamp_lt:
            where.append("start_timestamp<?")
            args.append(timestamp_lt)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        conn = self._conn()
        total = conn.execute(f"SELECT count(*) FROM executions{clause}", args).fetchone()[0] if with_total else None
        order = "DESC" if newest_first else "ASC"
        cur = conn.execute(
            f"SELECT * FROM executions{clause} ORDER BY start_timestamp {order}, id LIMIT ? OFFSET ?",
            [*args, -1 if limit is None else limit, offset],
        )
        rows = [self._execution_row(r, cur.description) for r in cur.fetchall()]
        return rows, total

    def abandon_in_flight(self) -> list[str]:
        """Mark executions a dead process was working on as ``abandoned``; return their ids."""
        marks = ",".join("?" * len(IN_FLIGHT_STATUSES))
        conn = self._conn()
        ids = [r[0] for r in conn.execute(f"SELECT id FROM executions WHERE status IN ({marks})", IN_FLIGHT_STATUSES)]
        for ex_id in ids:
            self.update_execution(ex_id, status=ABANDONED)
        return ids

    @staticmethod
    def _execution_row(row: tuple, description: Any) -> dict[str, Any]:
        record = dict(zip([d[0] for d in description], row, strict=True))
        for key in ("parameters", "result", "context", "workflow_state"):
            record[key] = _loads(record[key])
        return record
