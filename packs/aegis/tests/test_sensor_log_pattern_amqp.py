"""LogPatternSensor against a real RabbitMQ (Debian ``rabbitmq-server``): lines published with
kombu become ``aegis.log_pattern`` trigger instances in a real history database, and no line
is lost when the broker stops and restarts, or when the sensor is down meanwhile."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import yaml
from kombu import Connection, Exchange, Producer, Queue
from log_pattern_sensor import LogPatternSensor
from pack_runtime.datastore import KeyValueStore
from pack_runtime.records import Records
from pack_runtime.sensor_service import SensorService
from servers import rabbitmq

pytestmark = [pytest.mark.services]
if rabbitmq.available():
    pytestmark.append(pytest.mark.skip(reason=rabbitmq.available()))

SENSORS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sensors")
QUEUE = "aegis.logs"
PATTERN = {"name": "fatal", "regex": r"FATAL seq=(?P<seq>\d+)", "threshold": 1, "window": 60, "cooldown": 0, "severity": "critical"}


def trigger_types() -> dict:
    with open(os.path.join(SENSORS_DIR, "log_pattern_sensor.yaml")) as fh:
        meta = yaml.safe_load(fh)
    return {f"aegis.{t['name']}": t for t in meta["trigger_types"]}


def publish(url: str, seqs, as_json: bool = False) -> None:
    """Persistent messages to a durable queue, with publisher confirms (the broker has them)."""
    queue = Queue(QUEUE, Exchange(""), routing_key=QUEUE, durable=True, auto_delete=False)
    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn)
        for seq in seqs:
            line = f"2024-05-01T10:00:00Z web-1 FATAL seq={seq} out of memory"
            if as_json:
                body, content_type = json.dumps({"message": line, "host": "web-1", "seq_no": seq}), "application/json"
            else:
                body, content_type = f"2024-05-01 INFO noise {seq}\n{line}", "text/plain"
            producer.publish(body, routing_key=QUEUE, declare=[queue], delivery_mode=2,
                             content_type=content_type, content_encoding="utf-8", serializer=None)  # fmt: skip


class RunningSensor:
    """The sensor in a thread, with st2lite's real SensorService."""

    def __init__(self, url: str, service: SensorService) -> None:
        config = {"log_patterns": [PATTERN], "log_sources": {"amqp": {"url": url, "queue": QUEUE, "max_backoff": 1}}}
        self.sensor = LogPatternSensor(sensor_service=service, config=config)
        self.sensor.setup()
        self.thread = threading.Thread(target=self.sensor.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.sensor.cleanup()
        self.thread.join(15)
        assert not self.thread.is_alive()


def test_amqp_lines_survive_broker_and_sensor_restarts(tmp_path):
    records = Records(str(tmp_path / "history.sqlite"))
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    service = SensorService("aegis", "LogPatternSensor", trigger_types(), records, store)

    def seen() -> list[int]:
        return sorted(int(ti["payload"]["fields"]["seq"]) for ti in records.list_trigger_instances("aegis.log_pattern", limit=10_000))

    def wait_for_seqs(expected: set[int], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not expected <= set(seen()):
            assert time.monotonic() < deadline, f"missing lines: {sorted(expected - set(seen()))}"
            time.sleep(0.1)

    broker = rabbitmq.RabbitMQ(str(tmp_path / "rabbitmq"))
    running = None
    try:
        broker.start()
        publish(broker.url, range(1, 21))  # queued before the sensor is there
        running = RunningSensor(broker.url, service)
        wait_for_seqs(set(range(1, 21)))
        payload = records.list_trigger_instances("aegis.log_pattern", limit=1)[0]["payload"]
        assert (payload["pattern"], payload["severity"], payload["source"]) == ("fatal", "critical", "amqp:aegis.logs")
        assert payload["lines"][0].endswith("out of memory") and payload["count"] == 1

        # Broker stops with lines still queued or in flight; it restarts; more arrive.
        publish(broker.url, range(21, 221), as_json=True)
        broker.stop()
        broker.start()
        publish(broker.url, range(221, 241))
        wait_for_seqs(set(range(1, 241)))
        json_payload = next(ti["payload"] for ti in records.list_trigger_instances("aegis.log_pattern", limit=10_000)
                            if ti["payload"]["fields"]["seq"] == "30")  # fmt: skip
        assert json_payload["fields"]["host"] == "web-1"  # a JSON record's fields travel along

        # The sensor is down while lines arrive and the broker restarts again.
        running.stop()
        running = None
        publish(broker.url, range(241, 261))
        broker.stop()
        broker.start()
        running = RunningSensor(broker.url, service)
        wait_for_seqs(set(range(1, 261)))
        time.sleep(0.5)  # let any stray redelivery land before counting
        counts = seen()
        assert set(counts) == set(range(1, 261))
        # At-least-once: a line is recorded again only if its ack was lost with the broker.
        assert len(counts) - 260 <= 200, "far more redeliveries than lines in flight"
    finally:
        if running is not None:
            running.stop()
        broker.close()
    with Connection(broker.url, connect_timeout=1) as conn, pytest.raises(OSError):
        conn.connect()  # the broker is gone, nothing left listening


def test_unrecorded_lines_are_requeued_not_acked(tmp_path):
    records = Records(str(tmp_path / "history.sqlite"))
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    service = SensorService("aegis", "LogPatternSensor", trigger_types(), records, store)
    failures = {"left": 3}
    real_dispatch = service.dispatch

    def flaky_dispatch(*args, **kwargs):  # the history database refusing writes for a moment
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("database is locked")
        return real_dispatch(*args, **kwargs)

    service.dispatch = flaky_dispatch
    with rabbitmq.RabbitMQ(str(tmp_path / "rabbitmq")) as broker:
        running = RunningSensor(broker.url, service)
        try:
            publish(broker.url, [7])
            deadline = time.monotonic() + 30
            while not records.list_trigger_instances("aegis.log_pattern"):
                assert time.monotonic() < deadline, "the requeued line never got recorded"
                time.sleep(0.1)
        finally:
            running.stop()
    assert failures["left"] == 0
    (ti,) = records.list_trigger_instances("aegis.log_pattern")
    assert ti["payload"]["fields"]["seq"] == "7"
