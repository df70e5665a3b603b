"""The shapes of st2's pack test base classes (st2tests.base), for a pack's own tests.

    from st2tests.base import BaseSensorTestCase

    class AlertmanagerSensorTest(BaseSensorTestCase):
        sensor_cls = AlertmanagerWebhookSensor

        def test_dispatch(self):
            sensor = self.get_sensor_instance(config={...})
            ...
            self.assertTriggerDispatched(trigger="aegis.alert", payload={...})

Sensors get a recording sensor service (it keeps what was dispatched, and validates the
payload against the trigger type's schema from the sensor's metadata when it can find
it); actions get a datastore-backed action service. Each test case gets its own
temporary datastore.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
import unittest
from pathlib import Path
from typing import Any

import yaml
from pack_runtime.aliases import (
    AliasDefinition,
    ParseException,
    extract_parameters,
    extract_parameters_for_action_alias_db,
)
from pack_runtime.datastore import DatastoreService, KeyValueStore
from pack_runtime.schema import payload_errors


def _pack_dir_of(cls: type) -> Path:
    path = Path(inspect.getfile(cls)).resolve()
    for parent in path.parents:
        if (parent / "pack.yaml").exists():
            return parent
    raise RuntimeError(f"no pack.yaml above {path}")


def _trigger_types_of(sensor_cls: type) -> dict[str, dict[str, Any]]:
    pack_dir = _pack_dir_of(sensor_cls)
    pack_ref = yaml.safe_load((pack_dir / "pack.yaml").read_text()).get("ref") or pack_dir.name
    types: dict[str, dict[str, Any]] = {}
    for meta_file in sorted((pack_dir / "sensors").glob("*.yaml")):
        meta = yaml.safe_load(meta_file.read_text()) or {}
        if meta.get("class_name") != sensor_cls.__name__:
            continue
        for trigger_type in meta.get("trigger_types", []):
            types[f"{pack_ref}.{trigger_type['name']}"] = trigger_type
    return types


class _TempDatastoreMixin:
    def _make_store(self) -> KeyValueStore:
        tmp = tempfile.mkdtemp(prefix="st2tests-")
        return KeyValueStore(os.path.join(tmp, "datastore.sqlite"))


class RecordingSensorService:
    """A sensor service that records dispatched triggers instead of sending them on."""

    def __init__(self, sensor_cls: type, store: KeyValueStore) -> None:
        self.dispatched_triggers: list[dict[str, Any]] = []
        self.rejected_triggers: list[dict[str, Any]] = []
        self._trigger_types = _trigger_types_of(sensor_cls)
        pack = _pack_dir_of(sensor_cls).name
        self._datastore = DatastoreService(store, pack, sensor_cls.__name__)
        self.fail_dispatch: Exception | None = None  # set it to make dispatch raise

    def get_logger(self, name: str) -> logging.Logger:
        return logging.getLogger(f"st2tests.sensor.{name}")

    def dispatch(self, trigger: str, payload: dict[str, Any] | None = None, trace_tag: str | None = None):
        return self.dispatch_with_context(trigger, payload, trace_context={"trace_tag": trace_tag})

    def dispatch_with_context(self, trigger: str, payload=None, trace_context=None):
        if self.fail_dispatch is not None:
            raise self.fail_dispatch
        trigger_type = self._trigger_types.get(trigger)
        errors = ["unknown trigger type"] if trigger_type is None and self._trigger_types else []
        if trigger_type:
            errors = payload_errors(payload or {}, trigger_type.get("payload_schema") or {})
        record = {"trigger": trigger, "payload": payload, "trace_context": trace_context}
        if errors:
            self.rejected_triggers.append({**record, "errors": errors})
            return None
        self.dispatched_triggers.append(record)
        return str(len(self.dispatched_triggers))

    def list_values(self, local=True, prefix=None, limit=None, offset=None):
        return self._datastore.list_values(local=local, prefix=prefix, limit=limit, offset=offset)

    def get_value(self, name, local=True, scope="system", decrypt=False):
        return self._datastore.get_value(name, local=local, scope=scope, decrypt=decrypt)

    def set_value(self, name, value, ttl=None, local=True, scope="system", encrypt=False):
        return self._datastore.set_value(name, value, ttl=ttl, local=local, scope=scope, encrypt=encrypt)

    def delete_value(self, name, local=True, scope="system"):
        return self._datastore.delete_value(name, local=local, scope=scope)


class BaseSensorTestCase(_TempDatastoreMixin, unittest.TestCase):
    sensor_cls: type | None = None

    def setUp(self) -> None:
        super().setUp()
        self.sensor_service = RecordingSensorService(self.sensor_cls, self._make_store())

    def get_sensor_instance(self, config: dict[str, Any] | None = None, poll_interval: float | None = None):
        kwargs: dict[str, Any] = {"sensor_service": self.sensor_service, "config": config or {}}
        if poll_interval is not None:
            kwargs["poll_interval"] = poll_interval
        return self.sensor_cls(**kwargs)

    def get_dispatched_triggers(self) -> list[dict[str, Any]]:
        return self.sensor_service.dispatched_triggers

    def get_last_dispatched_trigger(self) -> dict[str, Any]:
        return self.sensor_service.dispatched_triggers[-1]

    def assertTriggerDispatched(
        self, trigger: str, payload: dict[str, Any] | None = None, trace_context=None
    ):
        for record in self.sensor_service.dispatched_triggers:
            if record["trigger"] != trigger:
                continue
            if payload is not None and record["payload"] != payload:
                continue
            if trace_context is not None and record["trace_context"] != trace_context:
                continue
            return record
        self.fail(
            f"trigger {trigger} with payload {json.dumps(payload, default=str)} was not dispatched; "
            f"dispatched: {json.dumps(self.sensor_service.dispatched_triggers, default=str)[:2000]}"
        )


class BaseActionTestCase(_TempDatastoreMixin, unittest.TestCase):
    action_cls: type | None = None

    def setUp(self) -> None:
        super().setUp()
        self.datastore = self._make_store()

    def get_action_instance(self, config: dict[str, Any] | None = None):
        pack = _pack_dir_of(self.action_cls).name
        service = DatastoreService(self.datastore, pack, self.action_cls.__name__)
        return self.action_cls(config=config or {}, action_service=service)


class BaseActionAliasTestCase(unittest.TestCase):
    """st2's alias test case: set ``action_alias_name``; the alias is read from the
    ``aliases/`` directory of the pack the test module lives in (``packs/<pack>/tests/``).

        class SetModeAliasTest(BaseActionAliasTestCase):
            action_alias_name = "set_mode"

            def test_reason(self):
                format_string = self.action_alias_db.formats[0]["representation"][0]
                self.assertExtractedParametersMatch(
                    format_string, "aegis mode auto ok now", {"mode": "auto", "reason": "ok now"})
    """

    action_alias_name: str | None = None
    action_alias_db: AliasDefinition | None = None

    def setUp(self) -> None:
        super().setUp()
        if not self.action_alias_name:
            raise ValueError('"action_alias_name" class attribute needs to be provided')
        self.action_alias_db = self._get_action_alias_db_by_name(self.action_alias_name)

    def assertCommandMatchesExactlyOneFormatString(self, format_strings: list[str], command: str) -> None:
        """The command fits exactly one of ``format_strings`` (two would be ambiguous to st2)."""
        matched = []
        for format_string in format_strings:
            try:
                extract_parameters(format_str=format_string, param_stream=command)
            except ParseException:
                continue
            matched.append(format_string)
        if not matched:
            raise AssertionError(f'Command "{command}" didn\'t match any of the provided format strings')
        if len(matched) > 1:
            raise AssertionError(f'Command "{command}" matched multiple format strings: {", ".join(matched)}')

    def assertExtractedParametersMatch(self, format_string: str, command: str, parameters: dict[str, Any]) -> None:
        """``format_string`` is one of the alias's, the command fits it, and gives ``parameters``."""
        extracted = extract_parameters_for_action_alias_db(
            action_alias_db=self.action_alias_db, format_str=format_string, param_stream=command
        )
        if extracted != parameters:
            message = (
                f'Extracted parameters from command string "{command}" against format string '
                f'"{format_string}" didn\'t match the provided parameters: '
            )
            try:
                self.assertEqual(extracted, parameters)
            except AssertionError as exc:
                message += str(exc)
            raise AssertionError(message)

    def _get_action_alias_db_by_name(self, name: str) -> AliasDefinition:
        pack_dir = _pack_dir_of(type(self))
        pack_meta = yaml.safe_load((pack_dir / "pack.yaml").read_text()) or {}
        pack_ref = pack_meta.get("ref") or pack_meta.get("name") or pack_dir.name
        for alias_file in sorted((pack_dir / "aliases").glob("*.y*ml")):
            meta = yaml.safe_load(alias_file.read_text()) or {}
            if isinstance(meta, dict) and meta.get("name") == name:
                return AliasDefinition.from_meta(meta, pack=pack_ref)
        raise ValueError(f'Alias with name "{name}" not found in {pack_dir / "aliases"}')
