"""PostgreSQL: cancel runaway queries, terminate sessions idle in a transaction.

    pg = Postgres(dsn="host=db port=5432 dbname=app user=aegis", users=["app"], min_age_seconds=300)
    pg.candidates()          # what would be cancelled / terminated (the dry run)
    pg.cancel(plan)          # pg_cancel_backend / pg_terminate_backend each, by pid

Only client sessions of the configured ``users`` older than ``min_age_seconds`` are touched,
never a superuser's, a replication role's, a walsender or Aegis's own session. Active
queries get ``pg_cancel_backend`` (the query stops, the session lives); sessions ``idle in
transaction`` (they hold locks and snapshots) get ``pg_terminate_backend``. The same filter is
applied again in the statement that cancels, so a pid reused in between is never hit.

Config ``postgres.instances.<target>``: ``dsn`` (libpq string; keep the password in the
datastore), ``users``, ``min_age_seconds`` (300), ``databases`` (optional filter).
"""

from __future__ import annotations

from typing import Any

import psycopg2

from backends import BackendError

# The filter both the dry run and the act use; parameters: users, databases (or NULL), age.
_ELIGIBLE = """
    FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
    WHERE a.backend_type = 'client backend'
      AND a.pid <> pg_backend_pid()
      AND NOT r.rolsuper AND NOT r.rolreplication
      AND a.usename = ANY(%(users)s)
      AND (%(databases)s::text[] IS NULL OR a.datname = ANY(%(databases)s::text[]))
      AND ((a.state = 'active' AND now() - a.query_start > make_interval(secs => %(age)s))
        OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
            AND now() - a.state_change > make_interval(secs => %(age)s)))
"""
_LIST = "SELECT a.pid, a.usename, a.datname, a.state, EXTRACT(EPOCH FROM now() - COALESCE(a.query_start, a.state_change))::float, left(a.query, 200)" + _ELIGIBLE + " ORDER BY a.pid"
_ACT = ("SELECT a.pid, a.state, CASE WHEN a.state = 'active' THEN pg_cancel_backend(a.pid) ELSE pg_terminate_backend(a.pid) END"
        + _ELIGIBLE + " AND a.pid = ANY(%(pids)s)")


class Postgres:
    def __init__(self, dsn: str, users: list[str], min_age_seconds: float = 300, databases: list[str] | None = None,
                 connect_timeout: float = 10) -> None:
        if not users:
            raise BackendError("postgres: no users configured; Aegis cancels only sessions of listed users")
        self._dsn, self._timeout = dsn, int(connect_timeout)
        self._params = {"users": list(users), "databases": list(databases) if databases else None, "age": float(min_age_seconds)}

    @classmethod
    def from_config(cls, config: dict[str, Any], target: str) -> Postgres:
        instances = (config.get("postgres") or {}).get("instances") or {}
        entry = instances.get(target)
        if not isinstance(entry, dict) or not entry.get("dsn"):
            raise BackendError(f"postgres: no instance {target!r} in config postgres.instances")
        return cls(entry["dsn"], entry.get("users") or [], entry.get("min_age_seconds", 300), entry.get("databases"))

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        try:
            conn = psycopg2.connect(self._dsn, connect_timeout=self._timeout, application_name="aegis")
        except psycopg2.Error as exc:
            raise BackendError(f"postgres: cannot connect: {str(exc).strip()}") from exc
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def candidates(self) -> list[dict[str, Any]]:
        rows = self._query(_LIST, self._params)
        return [{"pid": pid, "user": user, "database": db, "state": state, "age_seconds": round(age or 0, 1), "query": query,
                 "command": "pg_cancel_backend" if state == "active" else "pg_terminate_backend"}
                for pid, user, db, state, age, query in rows]

    def cancel(self, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pids = [s["pid"] for s in sessions]
        if not pids:
            return []
        rows = self._query(_ACT, {**self._params, "pids": pids})
        return [{"pid": pid, "state": state, "command": "pg_cancel_backend" if state == "active" else "pg_terminate_backend",
                 "signalled": bool(ok)} for pid, state, ok in rows]
