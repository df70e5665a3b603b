"""Authentication as st2 does it: flat-file users, tokens, API keys.

- **Users** live in an htpasswd file (st2's ``flat_file`` auth backend reads one with
  passlib's ``HtpasswdFile``): ``$AEGIS_HOME/htpasswd``, one ``user:hash`` a line. st2lite
  verifies bcrypt (``$2a$``/``$2b$``/``$2y$``: ``htpasswd -B``, and what ``aegis user add``
  writes), ``$apr1$`` (``htpasswd -m``, its default) and ``{SHA}`` (``htpasswd -s``); DES
  crypt and plain-text lines are refused with a warning (a subset of what passlib accepts).
- **Tokens** (``POST /tokens`` on the auth port, HTTP Basic): random, valid for ``ttl``
  seconds (st2's default and maximum 86400), kept hashed in ``$AEGIS_HOME/auth.sqlite``.
- **API keys** (``St2-Api-Key``): shown once at creation, kept as their SHA-256 as st2
  does (``key_hash``), enabled or not.

    store = AuthStore(home)
    store.add_user("alice", "s3cret")
    token = store.issue_token("alice", ttl=3600)           # {"token": ..., "expiry": ...}
    store.user_for_token(token["token"])                    # "alice"
    key = store.create_api_key("alice")                     # {"key": ..., "id": ...}
    store.user_for_api_key(key["key"])                      # "alice"

The clock is injectable (``clock=``) so that expiry is tested without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt

from ..pack_env.pack_runtime.records import new_id
from ..pack_env.pack_runtime.sqlite import ThreadConnections

LOG = logging.getLogger(__name__)

DEFAULT_TOKEN_TTL = 86400  # st2's auth.token_ttl
MAX_TOKEN_TTL = 86400  # st2's auth.service_token_ttl caps user requests at token_ttl

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    user TEXT NOT NULL,
    expiry REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    user TEXT NOT NULL,
    created_at REAL NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    metadata TEXT NOT NULL DEFAULT '{}'
);
"""


def isotime(ts: float) -> str:
    """A POSIX time as st2 prints it: ``2026-11-30T10:00:00.000000Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _apr1(password: str, salt: str) -> str:
    """Apache's ``$apr1$`` (md5-crypt with its own magic), what ``htpasswd -m`` writes."""
    pw, salt_b, magic = password.encode(), salt.encode()[:8], b"$apr1$"
    alternate = hashlib.md5(pw + salt_b + pw).digest()
    ctx = pw + magic + salt_b
    for i in range(len(pw), 0, -16):
        ctx += alternate[: min(16, i)]
    i = len(pw)
    while i:
        ctx += b"\x00" if i & 1 else pw[:1]
        i >>= 1
    final = hashlib.md5(ctx).digest()
    for i in range(1000):  # the algorithm's deliberate slowness
        step = (pw if i & 1 else final) + (salt_b if i % 3 else b"") + (pw if i % 7 else b"") + (final if i & 1 else pw)
        final = hashlib.md5(step).digest()

    def to64(value: int, count: int) -> str:
        out = ""
        for _ in range(count):
            out += _ITOA64[value & 0x3F]
            value >>= 6
        return out

    f = final
    encoded = "".join(to64((f[a] << 16) | (f[b] << 8) | f[c], 4) for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)))
    return f"$apr1${salt_b.decode()}${encoded}{to64(f[11], 2)}"


def _verify_hash(password: str, stored: str) -> bool:
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        # bcrypt only knows $2a$/$2b$; $2y$ (htpasswd -B) is the same algorithm.
        normalized = "$2b$" + stored[4:]
        try:
            return bcrypt.checkpw(password.encode(), normalized.encode())
        except ValueError:
            return False
    if stored.startswith("$apr1$"):
        salt = stored[len("$apr1$"):].split("$", 1)[0]
        return hmac.compare_digest(_apr1(password, salt), stored)
    if stored.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        return hmac.compare_digest(digest, stored[5:])
    LOG.warning("htpasswd: unsupported hash scheme (st2lite verifies bcrypt, apr1 and {SHA}); user refused")
    return False


class AuthStore:
    """Users (htpasswd), tokens and API keys under ``home``."""

    def __init__(self, home: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.home = Path(home)
        self.htpasswd = self.home / "htpasswd"
        self.clock = clock
        db = self.home / "auth.sqlite"
        if not db.exists():
            # Token and key hashes only, but still nobody else's business.
            os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
        self._connections = ThreadConnections(str(db), _SCHEMA)
        self._file_lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    # -- users (htpasswd) ----------------------------------------------------------------

    def _read_users(self) -> dict[str, str]:
        users: dict[str, str] = {}
        if not self.htpasswd.exists():
            return users
        for line in self.htpasswd.read_text().splitlines():
            name, sep, hashed = line.strip().partition(":")
            if sep and name:
                users[name] = hashed
        return users

    def add_user(self, name: str, password: str) -> None:
        """Add or replace a user (bcrypt, as ``htpasswd -B`` writes it)."""
        if not name or ":" in name or any(c.isspace() for c in name):
            raise ValueError(f"invalid user name {name!r}")
        if not password:
            raise ValueError("the password is empty")
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        with self._file_lock:
            users = self._read_users()
            users[name] = hashed
            tmp = self.htpasswd.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.writelines(f"{u}:{h}\n" for u, h in users.items())
            os.replace(tmp, self.htpasswd)

    def users(self) -> list[str]:
        return sorted(self._read_users())

    def authenticate(self, name: str, password: str) -> bool:
        stored = self._read_users().get(name)
        return stored is not None and _verify_hash(password, stored)

    # -- tokens --------------------------------------------------------------------------

    def issue_token(self, user: str, ttl: int | None = None, issued_at: float | None = None) -> dict[str, Any]:
        """A new token for ``user``; st2's TokenAPI shape, with the token in clear (only here)."""
        ttl = DEFAULT_TOKEN_TTL if ttl is None else int(ttl)
        if ttl <= 0 or ttl > MAX_TOKEN_TTL:
            raise ValueError(f"TTL specified {ttl} is greater than max allowed {MAX_TOKEN_TTL}." if ttl > 0
                             else "TTL must be a positive number of seconds.")
        token = secrets.token_hex(16)
        token_id = new_id()
        expiry = (self.clock() if issued_at is None else issued_at) + ttl
        self._conn().execute(
            "INSERT INTO tokens(token_hash, id, user, expiry) VALUES (?,?,?,?)", (_sha256(token), token_id, user, expiry)
        )
        return {"id": token_id, "user": user, "token": token, "ttl": ttl, "expiry": isotime(expiry), "metadata": {}}

    def user_for_token(self, token: str) -> str | None:
        """The user of a valid, unexpired token, else None."""
        row = self._conn().execute("SELECT user, expiry FROM tokens WHERE token_hash=?", (_sha256(token),)).fetchone()
        if row is None or row[1] <= self.clock():
            return None
        return row[0]

    # -- API keys ------------------------------------------------------------------------

    def create_api_key(self, user: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """A new API key; the key itself is returned once and stored as its SHA-256."""
        import json

        key = secrets.token_urlsafe(48)
        key_id = new_id()
        now = self.clock()
        self._conn().execute(
            "INSERT INTO api_keys(id, key_hash, user, created_at, metadata) VALUES (?,?,?,?,?)",
            (key_id, _sha256(key), user, now, json.dumps(metadata or {})),
        )
        return {**self._api_key(key_id), "key": key}

    def _api_key(self, key_id: str) -> dict[str, Any]:
        import json

        row = self._conn().execute(
            "SELECT id, key_hash, user, created_at, enabled, metadata FROM api_keys WHERE id=?", (key_id,)
        ).fetchone()
        if row is None:
            raise KeyError(key_id)
        return {"id": row[0], "uid": f"api_key:{row[1]}", "key_hash": row[1], "user": row[2],
                "created_at": isotime(row[3]), "enabled": bool(row[4]), "metadata": json.loads(row[5])}

    def list_api_keys(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self._conn().execute("SELECT id FROM api_keys ORDER BY created_at, id")]
        return [self._api_key(i) for i in ids]

    def get_api_key(self, id_or_key: str) -> dict[str, Any] | None:
        row = self._conn().execute(
            "SELECT id FROM api_keys WHERE id=? OR key_hash=?", (id_or_key, _sha256(id_or_key))
        ).fetchone()
        return self._api_key(row[0]) if row else None

    def set_api_key_enabled(self, key_id: str, enabled: bool) -> None:
        self._conn().execute("UPDATE api_keys SET enabled=? WHERE id=?", (int(enabled), key_id))

    def delete_api_key(self, key_id: str) -> bool:
        return self._conn().execute("DELETE FROM api_keys WHERE id=?", (key_id,)).rowcount > 0

    def user_for_api_key(self, key: str) -> str | None:
        row = self._conn().execute("SELECT user, enabled FROM api_keys WHERE key_hash=?", (_sha256(key),)).fetchone()
        return row[0] if row and row[1] else None
