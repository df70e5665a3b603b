"""One SQLite connection per thread, in WAL mode, for the datastore and the history.

WAL with ``synchronous=NORMAL``: readers never block the writer, a commit survives the
process being killed (SIGKILL), and only a power cut can lose the last commits. Several
processes (the runtime, sensors, action workers) share the files.

    connections = ThreadConnections("/tmp/history.sqlite", schema="CREATE TABLE IF NOT EXISTS t (x);")
    connections.get().execute("INSERT INTO t VALUES (1)")
    with connections.transaction() as conn:    # several statements, one commit
        conn.execute("INSERT INTO t VALUES (2)")
        conn.execute("INSERT INTO t VALUES (3)")

Checkpoints (copying the WAL back into the database, with an fsync) happen, by SQLite's
default, inside the commit that makes the WAL pass 1000 pages: one commit in a few hundred
then takes milliseconds. A process whose commits answer clients (a webhook sensor) calls
``checkpoint_in_background()``: its connections stop checkpointing, and a thread of its
own does it after commits. Durability is the same: a commit is durable once in the WAL.

The files hold secrets and alert data: the database is created 0600 before SQLite opens
it (SQLite gives its -wal and -shm files the database's mode), and files an older version
left group- or world-readable are narrowed to 0600.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator


def private_database(path: str) -> None:
    """Create ``path`` empty with mode 0600 if it is missing; narrow it and its -wal/-shm to 0600."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours: leave it
            if stat.S_IMODE(os.stat(name).st_mode) & 0o077:
                os.chmod(name, 0o600)


class ThreadConnections:
    def __init__(self, path: str, schema: str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            private_database(self.path)
        self._local = threading.local()
        self._checkpoints: threading.Event | None = None  # set after a commit, when checkpointing in background
        self.get().executescript(schema)

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._checkpoints is not None:
                conn.execute("PRAGMA wal_autocheckpoint=0")
            self._local.conn = conn
        return conn

    def checkpoint_in_background(self, interval: float = 0.05) -> None:
        """Take WAL checkpoints off the committing threads of this process (see the module doc).

        A daemon thread runs a PASSIVE checkpoint (it never blocks a writer) at most every
        ``interval`` seconds after a :meth:`transaction` commit, and every second anyway
        (for writes made outside a transaction). Call it once, early; it is for the process's
        lifetime.
        """
        if self._checkpoints is not None or self.path == ":memory:":
            return
        self._checkpoints = threading.Event()
        self.get().execute("PRAGMA wal_autocheckpoint=0")  # this thread's connection exists already
        threading.Thread(target=self._checkpoint_loop, args=(self._checkpoints, interval), daemon=True,
                         name=f"checkpoint {os.path.basename(self.path)}").start()  # fmt: skip

    def _checkpoint_loop(self, commits: threading.Event, interval: float) -> None:
        conn = self.get()  # this thread's own connection
        while True:
            commits.wait(1.0)
            commits.clear()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # busy or locked now; the next round retries
            time.sleep(interval)  # batch the commits of the next moment into one checkpoint

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` .. ``COMMIT`` on this thread's connection (``ROLLBACK`` on error).

        The write lock is taken at once, so reads inside see what no other writer can change
        before the commit. Inside an open transaction it joins it (one commit, the outer one).
        """
        conn = self.get()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if self._checkpoints is not None:
            self._checkpoints.set()
