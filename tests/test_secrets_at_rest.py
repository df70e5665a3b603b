"""Secrets at rest (issue 8, part 4): a private AEGIS_HOME, and secret datastore values
encrypted in StackStorm's format, never printed in clear unless asked for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

from st2lite.pack_env.pack_runtime.datastore import KeyValueStore

SECRET = "sk-ant-VERY-SECRET-4242"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _b64ws(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def st2_decrypt(key_file: Path, ciphertext: str) -> str:
    """Decryption written from st2's documented algorithm (st2common/util/crypto.py) with
    OpenSSL for AES and the standard library for the HMAC: nothing of st2lite's code.

    The value is upper-case hex of: 5-byte keyczar header, 16-byte IV, AES-CBC ciphertext
    of the PKCS#5-padded text, 20-byte HMAC-SHA1 of everything before it. The key file is
    keyczar JSON with web-safe base64 keys without padding.
    """
    key = json.loads(key_file.read_text())
    assert key["mode"] == "CBC" and key["size"] == 256 and key["hmacKey"]["size"] == 256
    aes_key, hmac_key = _b64ws(key["aesKeyString"]), _b64ws(key["hmacKey"]["hmacKeyString"])
    assert ciphertext == ciphertext.upper()
    raw = binascii.unhexlify(ciphertext)
    header, iv, body, signature = raw[:5], raw[5:21], raw[21:-20], raw[-20:]
    assert len(header) == 5 and len(body) % 16 == 0
    assert hmac.compare_digest(hmac.new(hmac_key, raw[:-20], hashlib.sha1).digest(), signature)
    out = subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-K", aes_key.hex(), "-iv", iv.hex()],
        input=body, capture_output=True, check=True,
    )  # openssl strips the PKCS#5 padding
    return out.stdout.decode("utf-8")


def st2_encrypt(key_file: Path, plaintext: str) -> str:
    """The other way round: what st2 would store, made without st2lite."""
    key = json.loads(key_file.read_text())
    aes_key, hmac_key = _b64ws(key["aesKeyString"]), _b64ws(key["hmacKey"]["hmacKeyString"])
    iv = os.urandom(16)
    body = subprocess.run(
        ["openssl", "enc", "-e", "-aes-256-cbc", "-K", aes_key.hex(), "-iv", iv.hex()],
        input=plaintext.encode(), capture_output=True, check=True,
    ).stdout
    message = b"00000" + iv + body
    return binascii.hexlify(message + hmac.new(hmac_key, message, hashlib.sha1).digest()).decode().upper()


def test_a_fresh_home_is_private_and_the_secret_is_encrypted_in_the_database(aegis_env):
    home = Path(aegis_env["AEGIS_HOME"])
    assert not home.exists()
    result = run_cli(["key", "set", "aegis.anthropic_api_key", SECRET, "--encrypt"], aegis_env)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert run_cli(["key", "set", "aegis.mode", "monitor"], aegis_env).returncode == 0

    assert mode(home) == 0o700
    for sub in ("configs", "logs", "run", "keys"):
        assert mode(home / sub) == 0o700, sub
    key_file = home / "keys" / "datastore_key.json"
    assert mode(key_file) == 0o600
    db = home / "datastore.sqlite"
    assert mode(db) == 0o600
    on_disk = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    assert SECRET.encode() not in on_disk, "the secret is stored in clear"
    assert b"monitor" in on_disk  # a plain value is plain (the check above can see text)

    # While a process has the database open its -wal and -shm exist: 0600 too, whatever the
    # umask of that process (SQLite gives them the database's mode).
    old_umask = os.umask(0o022)
    try:
        store = KeyValueStore(str(db))
        store.set("aegis.other", SECRET, secret=True)
        sidecars = [Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in sidecars)
        assert [mode(p) for p in sidecars] == [0o600, 0o600]
        assert SECRET.encode() not in b"".join(p.read_bytes() for p in (db, *sidecars))
    finally:
        os.umask(old_umask)

    # st2's own decryption logic, given st2lite's key file, reads the value.
    stored = sqlite3.connect(db).execute("SELECT value FROM kv WHERE name='aegis.anthropic_api_key'").fetchone()[0]
    assert st2_decrypt(key_file, stored) == SECRET


def test_key_get_masks_unless_decrypt_and_key_list_never_shows_it(aegis_env):
    assert run_cli(["key", "set", "aegis.token", SECRET, "--encrypt"], aegis_env).returncode == 0
    masked = json.loads(run_cli(["key", "get", "aegis.token"], aegis_env).stdout)
    assert masked["value"] == "********" and masked["secret"] is True
    clear = json.loads(run_cli(["key", "get", "aegis.token", "--decrypt"], aegis_env).stdout)
    assert clear["value"] == SECRET
    for args in (["key", "list"], ["key", "list", "--json"], ["key", "list", "--prefix", "aegis."]):
        out = run_cli(args, aegis_env)
        assert out.returncode == 0 and SECRET not in out.stdout and "********" in out.stdout
    assert run_cli(["key", "list", "--decrypt"], aegis_env).returncode != 0  # no such option any more


def test_values_encrypted_by_st2_are_read_and_st2_reads_ours(tmp_path):
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    store.set("ours", SECRET, secret=True)
    key_file = tmp_path / "keys" / "datastore_key.json"
    assert st2_decrypt(key_file, store.get("ours")) == SECRET
    for text in ("", "x", "é ünïcode ✓", "a" * 16, "b" * 1000):
        assert st2_decrypt(key_file, store.encrypt(text)) == text
        assert store.decrypt(st2_encrypt(key_file, text)) == text
    assert store.get("ours", decrypt=True) == SECRET
    assert store.encrypt(SECRET) != store.encrypt(SECRET), "a fresh IV each time"


def test_a_value_tampered_with_or_from_another_key_is_refused(tmp_path):
    from st2lite.pack_env.pack_runtime.crypto import CryptoError

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = KeyValueStore(str(tmp_path / "a" / "datastore.sqlite"))
    other = KeyValueStore(str(tmp_path / "b" / "datastore.sqlite"))
    token = one.encrypt(SECRET)
    with pytest.raises(CryptoError, match="HMAC"):
        other.decrypt(token)
    flipped = token[:-3] + ("0" if token[-3] != "0" else "1") + token[-2:]
    with pytest.raises(CryptoError):
        one.decrypt(flipped)


def test_secrets_an_older_version_stored_in_clear_are_encrypted_on_open(tmp_path):
    db = tmp_path / "datastore.sqlite"
    KeyValueStore(str(db)).set("plain", "visible")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO kv(scope, name, value, secret, expire_at, updated_at) VALUES ('system', 'old', ?, 1, NULL, 0)", (SECRET,))
    conn.commit()
    conn.close()
    store = KeyValueStore(str(db))
    assert store.get("old") != SECRET and store.get("old", decrypt=True) == SECRET
    assert KeyValueStore(str(db)).get("old", decrypt=True) == SECRET, "encrypted once, not twice"
    assert store.get("plain") == "visible"


def test_an_existing_world_readable_database_is_narrowed(tmp_path):
    db = tmp_path / "history.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    os.chmod(db, 0o644)
    KeyValueStore(str(db))
    assert mode(db) == 0o600
