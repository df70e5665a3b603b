"""st2's key-value datastore on SQLite, shared by the runtime and the pack processes.

Standard library only: this module is imported both by the runtime and, inside the pack's
virtualenv, by the action and sensor services (``st2lite/pack_env`` is on their path).

    >>> store = KeyValueStore("/tmp/kv.sqlite")
    >>> store.set("aegis.mode", "monitor")
    >>> store.get("aegis.mode")
    'monitor'

Scopes follow st2: ``system`` (what ``{{ st2kv.system.key }}`` reads) and ``user``
(per user). Values are strings, as in st2. ``secret`` values (``st2 key set --encrypt``,
``set_value(..., encrypt=True)``) are stored encrypted as st2 stores them (``crypto.py``:
AES-256-CBC + HMAC, st2's key file ``keys/datastore_key.json`` beside the database, made
0600 on first use); reading one gives the ciphertext unless decryption is asked for, as in
st2 (``get_value(decrypt=True)``, ``{{ st2kv.system.x | decrypt_kv }}``).

    >>> _ = store.set("aegis.token", "s3cr3t", secret=True)
    >>> store.get("aegis.token") != "s3cr3t", store.get("aegis.token", decrypt=True)
    (True, 's3cr3t')

Inside ``with store.transaction():`` (one commit for many calls, as a sensor's group commit
uses it) this thread's writes are kept in memory and written with one statement per kind
when the block ends, just before the commit; reads see them, and ``prefetch()`` loads many
keys in one query. The write lock is held from the start of the block (``BEGIN
IMMEDIATE``), so what the block read cannot change under it.

    >>> with store.transaction():
    ...     store.prefetch(["a", "b"])            # one SELECT for both
    ...     _ = store.set("a", store.get("b") or "none")
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import crypto
from .sqlite import ThreadConnections

SYSTEM_SCOPE = "system"
USER_SCOPE = "user"
SCOPES = (SYSTEM_SCOPE, USER_SCOPE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    secret INTEGER NOT NULL DEFAULT 0,
    expire_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, name)
);
"""

_UPSERT = (
    "INSERT INTO kv(scope, name, value, secret, expire_at, updated_at) VALUES (?,?,?,?,?,?)"
    " ON CONFLICT(scope, name) DO UPDATE SET value=excluded.value, secret=excluded.secret,"
    " expire_at=excluded.expire_at, updated_at=excluded.updated_at"
)


@dataclass(frozen=True)
class KeyValuePair:
    name: str
    value: str
    scope: str = SYSTEM_SCOPE
    secret: bool = False
    expire_at: float | None = None

    def to_dict(self, mask_secret: bool = True) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": "********" if (self.secret and mask_secret) else self.value,
            "scope": self.scope,
            "secret": self.secret,
            "expire_timestamp": self.expire_at,
        }


def local_key_prefix(pack: str, class_name: str) -> str:
    """The prefix st2 puts before a ``local=True`` key of a sensor or action."""
    return f"{pack}.{class_name}:"


def default_key_path(db_path: str | Path) -> Path:
    """Where the encryption key of a datastore lives: ``keys/datastore_key.json`` beside it."""
    return Path(db_path).parent / "keys" / "datastore_key.json"


class KeyValueStore:
    """A process- and thread-safe key-value store (SQLite in WAL mode).

    ``clock`` (seconds since the epoch, ``time.time`` by default) decides TTL expiry; tests
    pass a controlled one.
    """

    def __init__(self, path: str, key_path: str | Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self.key_path = Path(key_path) if key_path else default_key_path(self.path)
        self._key: crypto.AESKey | None = None
        self._key_lock = threading.Lock()
        self._connections = ThreadConnections(self.path, _SCHEMA)
        # Per thread, inside transaction(): .rows is the block's view of the keys it touched
        # ((scope, name) -> row, or None when absent) and .dirty the ones it wrote (-> time).
        self._block = threading.local()
        self._encrypt_legacy_secrets()

    # -- encryption --------------------------------------------------------------------

    def _crypto_key(self) -> crypto.AESKey:
        with self._key_lock:
            if self._key is None:
                self._key = crypto.load_or_create_key(self.key_path)
            return self._key

    def encrypt(self, plaintext: str) -> str:
        return crypto.encrypt(self._crypto_key(), plaintext)

    def decrypt(self, ciphertext: str) -> str:
        """The plain text of an encrypted value; ``crypto.CryptoError`` when it is not one."""
        return crypto.decrypt(self._crypto_key(), ciphertext)

    def _encrypt_legacy_secrets(self) -> None:
        """Encrypt secrets an older st2lite stored in clear (once; a no-op afterwards)."""
        conn = self._connect()
        if conn.execute("SELECT 1 FROM kv WHERE secret=1 LIMIT 1").fetchone() is None:
            return
        key = self._crypto_key()
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT scope, name, value FROM kv WHERE secret=1").fetchall()
            for scope, name, value in rows:
                if not crypto.is_ciphertext(key, value):
                    conn.execute(
                        "UPDATE kv SET value=? WHERE scope=? AND name=? AND value=?",
                        (crypto.encrypt(key, value), scope, name, value),
                    )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _connect(self) -> sqlite3.Connection:
        return self._connections.get()

    def checkpoint_in_background(self) -> None:
        """WAL checkpoints on a thread of their own, not in this process's commits (``sqlite.py``)."""
        self._connections.checkpoint_in_background()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Every read and write of this thread inside ``with store.transaction():`` is one commit.

        Writes wait in memory until the block ends (reads in the block see them), then go
        to SQLite in one statement per kind and commit; on an exception nothing is written.
        A nested block joins the outer one.
        """
        if getattr(self._block, "rows", None) is not None:
            yield
            return
        with self._connections.transaction() as conn:
            self._block.rows, self._block.dirty = {}, {}
            try:
                yield
                self._flush(conn)
            finally:
                self._block.rows = self._block.dirty = None

    def prefetch(self, names: Iterable[str], scope: str = SYSTEM_SCOPE) -> None:
        """Inside :meth:`transaction`, read many keys in one query (later ``get``s cost no query).

        Outside a transaction it does nothing: there a read could be stale by the next call.
        """
        rows = getattr(self._block, "rows", None)
        if rows is None:
            return
        self._check_scope(scope)
        wanted = list(dict.fromkeys(n for n in names if (scope, n) not in rows))
        conn = self._connect()
        for start in range(0, len(wanted), 500):  # well under SQLite's bound-variable limit
            chunk = wanted[start:start + 500]
            for name in chunk:
                rows[(scope, name)] = None
            found = conn.execute(
                f"SELECT name, value, scope, secret, expire_at FROM kv WHERE scope=? AND name IN ({','.join('?' * len(chunk))})",
                [scope, *chunk],
            )
            for row in found:
                rows[(scope, row[0])] = row

    def _row(self, scope: str, name: str) -> tuple | None:
        """The stored row of a key, expired or not: the block's view inside a transaction."""
        rows = getattr(self._block, "rows", None)
        if rows is not None and (scope, name) in rows:
            return rows[(scope, name)]
        row = (
            self._connect()
            .execute("SELECT name, value, scope, secret, expire_at FROM kv WHERE scope=? AND name=?", (scope, name))
            .fetchone()
        )
        if rows is not None:
            rows[(scope, name)] = row
        return row

    def _flush(self, conn: sqlite3.Connection) -> None:
        """Write what the transaction block changed (last value of each key)."""
        rows, dirty = self._block.rows, self._block.dirty
        if not dirty:
            return
        upserts = [(*key, rows[key][1], rows[key][3], rows[key][4], at) for key, at in dirty.items() if rows[key] is not None]
        deletes = [key for key in dirty if rows[key] is None]
        if upserts:
            conn.executemany(_UPSERT, upserts)
        if deletes:
            conn.executemany("DELETE FROM kv WHERE scope=? AND name=?", deletes)

    def _flush_now(self) -> None:
        """Before SQL that does not go through the block's view: write the block's changes so far."""
        if getattr(self._block, "dirty", None):
            self._flush(self._connect())
            self._block.dirty.clear()

    @staticmethod
    def _check_scope(scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"invalid datastore scope {scope!r}; expected one of {', '.join(SCOPES)}")

    def get_pair(self, name: str, scope: str = SYSTEM_SCOPE, decrypt: bool = False) -> KeyValuePair | None:
        """The pair; a secret's value is its ciphertext unless ``decrypt`` (as st2's API)."""
        row = self._live_row(scope, name)
        if row is None:
            return None
        value = self.decrypt(row[1]) if (decrypt and row[3]) else row[1]
        return KeyValuePair(row[0], value, row[2], bool(row[3]), row[4])

    def get(self, name: str, scope: str = SYSTEM_SCOPE, decrypt: bool = False) -> str | None:
        row = self._live_row(scope, name)
        if row is None:
            return None
        return self.decrypt(row[1]) if (decrypt and row[3]) else row[1]

    def _live_row(self, scope: str, name: str) -> tuple | None:
        self._check_scope(scope)
        row = self._row(scope, name)
        if not row or (row[4] is not None and row[4] <= self._clock()):
            return None
        return row

    def set(
        self,
        name: str,
        value: Any,
        ttl: int | None = None,
        scope: str = SYSTEM_SCOPE,
        secret: bool = False,
    ) -> KeyValuePair:
        self._check_scope(scope)
        if ttl is not None and int(ttl) <= 0:
            raise ValueError("ttl must be a positive number of seconds")
        now = self._clock()
        expire_at = now + int(ttl) if ttl else None
        text = value if isinstance(value, str) else str(value)
        if secret:
            text = self.encrypt(text)
        rows = getattr(self._block, "rows", None)
        if rows is not None:  # in a transaction block: written when it ends
            rows[(scope, name)] = (name, text, scope, int(secret), expire_at)
            self._block.dirty[(scope, name)] = now
        else:
            self._connect().execute(_UPSERT, (scope, name, text, int(secret), expire_at, now))
        return KeyValuePair(name, text, scope, secret, expire_at)

    def set_if_absent(self, name: str, value: str, ttl: int | None = None, scope: str = SYSTEM_SCOPE) -> bool:
        """Atomically create a key unless a live one exists; True when this call created it."""
        self._check_scope(scope)
        if getattr(self._block, "rows", None) is not None:
            raise RuntimeError("set_if_absent() commits on its own; call it outside transaction()")
        now = self._clock()
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "DELETE FROM kv WHERE scope=? AND name=? AND expire_at IS NOT NULL AND expire_at <= ?",
                (scope, name, now),
            )
            cur = conn.execute(
                "INSERT OR IGNORE INTO kv(scope, name, value, secret, expire_at, updated_at)"
                " VALUES (?,?,?,0,?,?)",
                (scope, name, value, now + int(ttl) if ttl else None, now),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return cur.rowcount == 1

    def delete(self, name: str, scope: str = SYSTEM_SCOPE) -> bool:
        self._check_scope(scope)
        rows = getattr(self._block, "rows", None)
        if rows is not None:  # in a transaction block: deleted when it ends
            existed = self._row(scope, name) is not None
            rows[(scope, name)] = None
            self._block.dirty[(scope, name)] = self._clock()
            return existed
        cur = self._connect().execute("DELETE FROM kv WHERE scope=? AND name=?", (scope, name))
        return cur.rowcount > 0

    def list(
        self,
        prefix: str | None = None,
        scope: str = SYSTEM_SCOPE,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[KeyValuePair]:
        self._check_scope(scope)
        self._flush_now()
        sql = "SELECT name, value, scope, secret, expire_at FROM kv WHERE scope=? AND (expire_at IS NULL OR expire_at > ?)"
        args: list[Any] = [scope, self._clock()]
        if prefix:
            sql += " AND substr(name, 1, ?) = ?"
            args += [len(prefix), prefix]
        sql += " ORDER BY name"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args += [limit if limit is not None else -1, offset or 0]
        rows = self._connect().execute(sql, args).fetchall()
        return [KeyValuePair(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]


class DatastoreService:
    """The datastore half of st2's action and sensor services.

    ``local=True`` keys are prefixed with ``<pack>.<ClassName>:`` so that two sensors or
    actions never collide; ``local=False`` addresses the plain key.
    """

    def __init__(self, store: KeyValueStore, pack: str, class_name: str) -> None:
        self._store = store
        self._prefix = local_key_prefix(pack, class_name)

    def _key(self, name: str, local: bool) -> str:
        return self._prefix + name if local else name

    def list_values(self, local: bool = True, prefix: str | None = None, limit=None, offset=None):
        full_prefix = self._key(prefix or "", local) if (local or prefix) else None
        return self._store.list(prefix=full_prefix, limit=limit, offset=offset)

    def prefetch_values(self, names: Iterable[str], local: bool = True, scope: str = SYSTEM_SCOPE) -> None:
        """st2lite only: inside a transaction, read many keys in one query (see ``KeyValueStore.prefetch``)."""
        self._store.prefetch((self._key(name, local) for name in names), scope=scope)

    def get_value(self, name: str, local: bool = True, scope: str = SYSTEM_SCOPE, decrypt: bool = False):
        return self._store.get(self._key(name, local), scope=scope, decrypt=decrypt)

    def set_value(
        self,
        name: str,
        value: Any,
        ttl: int | None = None,
        local: bool = True,
        scope: str = SYSTEM_SCOPE,
        encrypt: bool = False,
    ) -> bool:
        self._store.set(self._key(name, local), value, ttl=ttl, scope=scope, secret=encrypt)
        return True

    def delete_value(self, name: str, local: bool = True, scope: str = SYSTEM_SCOPE) -> bool:
        return self._store.delete(self._key(name, local), scope=scope)
