"""Secret datastore values encrypted as StackStorm encrypts them (st2common/util/crypto.py).

The key file is st2's (keyczar's) JSON format, so st2's ``read_crypto_key`` reads it::

    {"hmacKey": {"hmacKeyString": "<base64 web-safe, no padding>", "size": 256},
     "aesKeyString": "<base64 web-safe, no padding>", "mode": "CBC", "size": 256}

and a value is what st2's ``symmetric_encrypt`` produces, so its ``symmetric_decrypt``
decrypts it: upper-case hex of ``header (5 bytes, b"00000") | IV (16) | AES-CBC ciphertext
of the PKCS#5-padded UTF-8 text | HMAC-SHA1 (20) over header+IV+ciphertext``. (st2 kept
keyczar's SHA-1 HMAC for compatibility with values encrypted before its move to the
``cryptography`` library; mirroring it is what makes the values portable.)

    >>> key = load_or_create_key(Path("/tmp/keys/datastore_key.json"))   # 0600, made once
    >>> token = encrypt(key, "s3cr3t")                                     # 'A1B2...'
    >>> decrypt(key, token)
    's3cr3t'

Standard library at import time; ``cryptography`` is imported when a value is encrypted or
decrypted (the runtime's and the pack's virtualenvs both have it).
"""

from __future__ import annotations

import base64
import binascii
import hmac as std_hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AESKey", "CryptoError", "decrypt", "encrypt", "is_ciphertext", "load_or_create_key", "read_key"]

HEADER = b"00000"  # keyczar's 5-byte header: st2 writes zeros and never reads it
BLOCK = 16
HMAC_LEN = 20  # SHA-1
KEY_BITS = 256


class CryptoError(ValueError):
    """A value that cannot be decrypted with this key, or an unusable key file."""


def _b64ws_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").replace("=", "")


def _b64ws_decode(text: str) -> bytes:
    text = "".join(text.split())
    if len(text) % 4 == 1:
        raise CryptoError("malformed base64 in the key file")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class AESKey:
    """An AES key and its HMAC key (st2's ``AESKey``)."""

    aes_key: bytes = field(repr=False)
    hmac_key: bytes = field(repr=False)
    hmac_key_size: int = KEY_BITS
    mode: str = "CBC"
    size: int = KEY_BITS

    @classmethod
    def generate(cls) -> AESKey:
        return cls(os.urandom(KEY_BITS // 8), os.urandom(KEY_BITS // 8))

    def to_json(self) -> str:
        return json.dumps({
            "hmacKey": {"hmacKeyString": _b64ws_encode(self.hmac_key), "size": self.hmac_key_size},
            "aesKeyString": _b64ws_encode(self.aes_key), "mode": self.mode, "size": self.size,
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> AESKey:
        try:
            data = json.loads(text)
            key = cls(
                aes_key=_b64ws_decode(data["aesKeyString"]), hmac_key=_b64ws_decode(data["hmacKey"]["hmacKeyString"]),
                hmac_key_size=int(data["hmacKey"]["size"]), mode=str(data["mode"]).upper(), size=int(data["size"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise CryptoError(f"invalid or malformed key file: {exc}") from exc
        if key.mode != "CBC" or len(key.aes_key) * 8 not in (128, 192, 256):
            raise CryptoError(f"unsupported key: mode {key.mode}, {len(key.aes_key) * 8}-bit AES")
        return key


def read_key(path: Path) -> AESKey:
    return AESKey.from_json(Path(path).read_text())


def load_or_create_key(path: Path) -> AESKey:
    """The key at ``path``; generated there (file 0600, directory 0700) when absent.

    Two processes creating it at once agree: the key is written to a private temporary
    file and linked into place, and whoever loses the race reads the winner's key.
    """
    path = Path(path)
    if path.exists():
        return read_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{binascii.hexlify(os.urandom(4)).decode()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(AESKey.generate().to_json())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won; use its key
    finally:
        tmp.unlink(missing_ok=True)
    return read_key(path)


def _cipher(key: AESKey, iv: bytes):  # noqa: ANN202 - a cryptography Cipher
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key.aes_key), modes.CBC(iv))


def _signature(key: AESKey, message: bytes) -> bytes:
    # HMAC-SHA1 as st2 computes it (cryptography's HMAC with SHA1 gives the same bytes).
    return std_hmac.new(key.hmac_key, message, "sha1").digest()


def encrypt(key: AESKey, plaintext: str) -> str:
    """st2's ``symmetric_encrypt``: upper-case hex of header, IV, ciphertext and HMAC."""
    data = plaintext.encode("utf-8")
    pad = BLOCK - len(data) % BLOCK
    data += bytes([pad]) * pad
    iv = os.urandom(BLOCK)
    encryptor = _cipher(key, iv).encryptor()
    message = HEADER + iv + encryptor.update(data) + encryptor.finalize()
    return binascii.hexlify(message + _signature(key, message)).decode("ascii").upper()


def decrypt(key: AESKey, ciphertext: str) -> str:
    """st2's ``symmetric_decrypt``; :class:`CryptoError` when the HMAC does not match."""
    try:
        raw = binascii.unhexlify(ciphertext.strip())
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("not an encrypted value (not hex)") from exc
    body = raw[len(HEADER):]
    if len(body) < BLOCK + HMAC_LEN or (len(body) - BLOCK - HMAC_LEN) % BLOCK:
        raise CryptoError("not an encrypted value (malformed length)")
    if not std_hmac.compare_digest(_signature(key, raw[:-HMAC_LEN]), raw[-HMAC_LEN:]):
        raise CryptoError("the value was not encrypted with this key (HMAC mismatch)")
    iv, payload = body[:BLOCK], body[BLOCK:-HMAC_LEN]
    decryptor = _cipher(key, iv).decryptor()
    data = decryptor.update(payload) + decryptor.finalize()
    pad = data[-1] if data else 0
    if not 1 <= pad <= BLOCK or data[-pad:] != bytes([pad]) * pad:
        raise CryptoError("bad padding")
    return data[:-pad].decode("utf-8")


def is_ciphertext(key: AESKey, value: str) -> bool:
    """True when ``value`` decrypts with ``key`` (used to find legacy plain-text secrets)."""
    try:
        decrypt(key, value)
    except (CryptoError, UnicodeDecodeError):
        return False
    return True
