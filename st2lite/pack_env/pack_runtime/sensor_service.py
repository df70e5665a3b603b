"""st2's sensor service: what a sensor sees as ``self.sensor_service``.

``dispatch`` validates the payload against the trigger type's ``payload_schema`` (a payload
that fails it is logged and not dispatched, and ``dispatch`` does not raise for it, as in
st2) and then records the trigger instance durably before it returns, so a sensor that
answers its client after ``dispatch`` returned has not lost anything. An error while
recording raises, so the sensor can answer "try again" (HTTP 503).

``transaction()`` is st2lite's extension for sensors that take many events at once (st2
has no such method; a sensor looks for it with ``getattr`` and does without)::

    with sensor_service.transaction():      # one commit for the whole block
        for event in events:
            sensor_service.set_value(...)   # datastore reads and writes of this thread
            sensor_service.dispatch(...)    # trigger instances, inserted in one statement
    # here every trigger instance and datastore write is durable; on an exception, none is

Inside the block the datastore writes wait in memory and are written in one statement at
the end (``KeyValueStore.transaction``), and ``prefetch_values(names, local=...)`` reads
many keys in one query.

The trigger instances are committed first, then the datastore: a crash between the two
(microseconds) leaves dispatched triggers whose datastore writes are lost, never the
reverse (datastore state claiming events that were never dispatched).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .datastore import DatastoreService, KeyValueStore
from .records import Records, encode_payload, new_id
from .schema import payload_errors, with_defaults


class SensorService:
    def __init__(
        self,
        pack: str,
        class_name: str,
        trigger_types: dict[str, dict[str, Any]],
        records: Records,
        store: KeyValueStore,
        on_dispatched: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.pack = pack
        self.class_name = class_name
        self._trigger_types = trigger_types
        self._records = records
        self._store = store
        self._batch = threading.local()  # .rows: trigger instances waiting for this thread's commit
        self._datastore = DatastoreService(store, pack, class_name)
        self._on_dispatched = on_dispatched
        self._logger = self.get_logger("sensor_service")

    def get_logger(self, name: str) -> logging.Logger:
        return logging.getLogger(f"st2.sensors.{self.pack}.{self.class_name}.{name}")

    def dispatch(self, trigger: str, payload: dict[str, Any] | None = None, trace_tag: str | None = None) -> str | None:
        """Record one trigger instance; return its id, or None when it was rejected."""
        return self.dispatch_with_context(trigger, payload, trace_context={"trace_tag": trace_tag} if trace_tag else None)

    def dispatch_with_context(
        self, trigger: str, payload: dict[str, Any] | None = None, trace_context: Any = None
    ) -> str | None:
        payload = payload if payload is not None else {}
        trigger_type = self._trigger_types.get(trigger)
        if trigger_type is None:
            self._logger.error("not dispatching to unknown trigger type %r (known: %s)", trigger, sorted(self._trigger_types))
            return None
        schema = trigger_type.get("payload_schema") or {}
        payload = with_defaults(payload, schema)
        errors = payload_errors(payload, schema)
        if errors:
            self._logger.error("payload for trigger %s fails its payload_schema, not dispatched: %s", trigger, "; ".join(errors))
            return None
        trace_tag = trace_context.get("trace_tag") if isinstance(trace_context, dict) else trace_context
        sensor = f"{self.pack}.{self.class_name}"
        rows = getattr(self._batch, "rows", None)
        if rows is not None:
            ti_id = new_id()
            # Encoded now, as st2 serializes at dispatch: the sensor may reuse the dict.
            rows.append((ti_id, trigger, encode_payload(payload), trace_tag, sensor))
            return ti_id
        ti_id = self._records.record_trigger_instance(trigger, payload, trace_tag=trace_tag, sensor=sensor)
        if self._on_dispatched:
            self._on_dispatched([ti_id])
        return ti_id

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group commit (st2lite only): this thread's dispatches and datastore calls in the
        block are durable together when it exits, or not at all if it raises."""
        if getattr(self._batch, "rows", None) is not None:  # nested: the outer block commits
            yield
            return
        rows: list[tuple[str, str, dict[str, Any] | str, str | None, str | None]] = []
        self._batch.rows = rows
        try:
            with self._store.transaction():
                yield
                if rows:
                    self._records.record_trigger_instances(rows)
        finally:
            self._batch.rows = None
        if rows and self._on_dispatched:
            self._on_dispatched([row[0] for row in rows])

    # The datastore half, with st2's signatures.
    def list_values(self, local: bool = True, prefix: str | None = None, limit=None, offset=None):
        return self._datastore.list_values(local=local, prefix=prefix, limit=limit, offset=offset)

    def prefetch_values(self, names: list[str], local: bool = True, scope: str = "system") -> None:
        """st2lite only, inside ``transaction()``: load many keys in one query before reading them."""
        self._datastore.prefetch_values(names, local=local, scope=scope)

    def get_value(self, name: str, local: bool = True, scope: str = "system", decrypt: bool = False):
        return self._datastore.get_value(name, local=local, scope=scope, decrypt=decrypt)

    def set_value(self, name: str, value: Any, ttl: int | None = None, local: bool = True, scope: str = "system", encrypt: bool = False):
        return self._datastore.set_value(name, value, ttl=ttl, local=local, scope=scope, encrypt=encrypt)

    def delete_value(self, name: str, local: bool = True, scope: str = "system"):
        return self._datastore.delete_value(name, local=local, scope=scope)
