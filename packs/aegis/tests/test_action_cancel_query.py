"""aegis.cancel_query against a real PostgreSQL: long query cancelled, idle-in-transaction
session terminated, a superuser's session left alone."""

from __future__ import annotations

import threading
import time
import unittest

import psycopg2
from cancel_query import CancelQuery
from servers import postgres
from st2tests.base import BaseActionTestCase

SKIP = postgres.available()


@unittest.skipIf(SKIP, SKIP or "")
class CancelQueryTest(BaseActionTestCase):
    action_cls = CancelQuery

    @classmethod
    def setUpClass(cls):
        cls.pg = postgres.PostgresServer()
        cls.pg.start()
        admin = psycopg2.connect(cls.pg.dsn(cls.pg.superuser))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE ROLE app LOGIN")
            cur.execute("CREATE ROLE other LOGIN")
        admin.close()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        super().setUp()
        self.threads, self.errors, self.conns = [], {}, []

    def tearDown(self):
        admin = psycopg2.connect(self.pg.dsn(self.pg.superuser))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        admin.close()
        for t in self.threads:
            t.join(10)
        for c in self.conns:
            c.close()
        super().tearDown()

    def config(self, **instance):
        entry = {"dsn": self.pg.dsn(self.pg.superuser), "users": ["app"], "min_age_seconds": 0, **instance}
        return {"mode": "auto", "postgres": {"instances": {"db-main": entry}}}

    def long_query(self, user: str, tag: str) -> None:
        conn = psycopg2.connect(self.pg.dsn(user), application_name=tag)
        self.conns.append(conn)

        def run():
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(120)")
            except psycopg2.Error as exc:
                self.errors[tag] = exc
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def idle_in_transaction(self, user: str, tag: str):
        conn = psycopg2.connect(self.pg.dsn(user), application_name=tag)
        self.conns.append(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT 1")   # psycopg2 opened a transaction: now idle in transaction
        return conn

    def wait_states(self, want: dict[str, str]) -> None:
        admin = psycopg2.connect(self.pg.dsn(self.pg.superuser))
        admin.autocommit = True
        deadline = time.monotonic() + 30
        try:
            while True:
                with admin.cursor() as cur:
                    cur.execute("SELECT application_name, state FROM pg_stat_activity WHERE application_name = ANY(%s)", (list(want),))
                    seen = dict(cur.fetchall())
                if all(seen.get(k) == v for k, v in want.items()):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"sessions not in states {want}: {seen}")
                time.sleep(0.05)
        finally:
            admin.close()

    def test_dry_run_lists_exactly_what_would_be_cancelled(self):
        self.long_query("app", "app-long")
        self.idle_in_transaction("app", "app-idle")
        self.long_query(self.pg.superuser, "admin-long")
        self.long_query("other", "other-long")
        self.wait_states({"app-long": "active", "app-idle": "idle in transaction", "admin-long": "active", "other-long": "active"})
        report = self.get_action_instance(self.config()).run(incident_id="inc-1", target="db-main", dry_run=True)
        self.assertEqual(report["outcome"], "dry_run")
        sessions = {(s["user"], s["state"], s["command"]) for s in report["plan"]["sessions"]}
        self.assertEqual(sessions, {("app", "active", "pg_cancel_backend"), ("app", "idle in transaction", "pg_terminate_backend")})
        self.assertEqual(len(report["plan"]["commands"]), 2)
        self.wait_states({"app-long": "active", "app-idle": "idle in transaction"})  # nothing was touched

    def test_cancels_long_query_terminates_idle_transaction_spares_superuser(self):
        self.long_query("app", "app-long")
        idle = self.idle_in_transaction("app", "app-idle")
        self.long_query(self.pg.superuser, "admin-long")
        self.wait_states({"app-long": "active", "app-idle": "idle in transaction", "admin-long": "active"})
        report = self.get_action_instance(self.config()).run(incident_id="inc-2", target="db-main", dry_run=False)
        self.assertEqual(report["outcome"], "done", report)
        self.assertEqual(sorted(s["command"] for s in report["result"]["signalled"]), ["pg_cancel_backend", "pg_terminate_backend"])
        self.assertTrue(all(s["signalled"] for s in report["result"]["signalled"]))
        self.threads[0].join(30)
        self.assertIsInstance(self.errors.get("app-long"), psycopg2.errors.QueryCanceled)
        with self.assertRaises(psycopg2.OperationalError):
            with idle.cursor() as cur:
                cur.execute("SELECT 1")
        self.wait_states({"admin-long": "active"})   # the superuser's query still runs
        self.assertNotIn("admin-long", self.errors)

    def test_young_sessions_are_left_alone(self):
        self.long_query("app", "app-long")
        self.wait_states({"app-long": "active"})
        report = self.get_action_instance(self.config(min_age_seconds=3600)).run(incident_id="inc-3", target="db-main", dry_run=False)
        self.assertEqual((report["outcome"], report["plan"]["sessions"], report["result"]["signalled"]), ("done", [], []))
        self.wait_states({"app-long": "active"})

    def test_refused_outside_auto_mode(self):
        config = {**self.config(), "mode": "advisory"}
        report = self.get_action_instance(config).run(incident_id="inc-4", target="db-main", dry_run=False)
        self.assertEqual(report["outcome"], "refused")
        self.assertIn("mode is advisory", report["reason"])
        self.assertIsNone(report["result"])
