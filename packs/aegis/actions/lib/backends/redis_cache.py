"""Redis caches: delete the keys under configured prefixes, in batches, never FLUSHALL.

    cache = RedisCache("redis://127.0.0.1:6379/0", prefixes=["product:v1:"])
    cache.count()            # {"product:v1:": 1234}  (the dry run: SCAN only)
    cache.clear()            # SCAN MATCH <prefix>* + UNLINK per batch; returns keys removed

Only an instance declared ``cache: true`` is ever touched: a session store or a queue in
Redis is data. Prefixes are matched literally (glob characters in them are escaped).

Config ``redis.instances.<target>``: ``url``, ``cache`` (must be true), ``prefixes``,
``batch`` (500).
"""

from __future__ import annotations

import re
from typing import Any

import redis

from backends import BackendError


def glob_escape(prefix: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix)


class RedisCache:
    def __init__(self, url: str, prefixes: list[str], batch: int = 500, timeout: float = 10) -> None:
        prefixes = [p for p in prefixes if p]
        if not prefixes:
            raise BackendError("redis: no cache prefixes configured; Aegis never clears a whole instance")
        self.prefixes, self._batch = prefixes, int(batch)
        self._client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    @classmethod
    def from_config(cls, config: dict[str, Any], target: str) -> RedisCache:
        instances = (config.get("redis") or {}).get("instances") or {}
        entry = instances.get(target)
        if not isinstance(entry, dict) or not entry.get("url"):
            raise BackendError(f"redis: no instance {target!r} in config redis.instances")
        if entry.get("cache") is not True:
            raise BackendError(f"redis: instance {target!r} is not declared a cache (cache: true); not clearing it")
        return cls(entry["url"], entry.get("prefixes") or [], entry.get("batch", 500))

    def _scan(self, prefix: str):
        try:
            yield from self._client.scan_iter(match=glob_escape(prefix) + "*", count=self._batch)
        except redis.RedisError as exc:
            raise BackendError(f"redis: {exc}") from exc

    def count(self) -> dict[str, int]:
        return {prefix: sum(1 for _ in self._scan(prefix)) for prefix in self.prefixes}

    def clear(self) -> dict[str, int]:
        removed = {}
        for prefix in self.prefixes:
            batch: list[bytes] = []
            removed[prefix] = 0
            for key in self._scan(prefix):
                batch.append(key)
                if len(batch) >= self._batch:
                    removed[prefix] += self._client.unlink(*batch)
                    batch = []
            if batch:
                removed[prefix] += self._client.unlink(*batch)
        return removed
