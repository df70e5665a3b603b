"""Hostile requests against the running webhook sensor: each gets the right status and a
one-line reason, is counted, dispatches nothing, and the sensor keeps serving."""

from __future__ import annotations

import http.client
import json
import socket

import pytest
from alertmanager_webhook_sensor import AlertmanagerWebhookSensor
from fixtures.alerts import alert, notification
from pack_runtime.datastore import KeyValueStore
from prometheus_client import REGISTRY
from servers.webhook import running_webhook_sensor
from st2tests.base import RecordingSensorService

JSON = {"Content-Type": "application/json"}


def raw(port: int, request: bytes, timeout: float = 60) -> tuple[int, dict, bytes]:
    """Send raw bytes, read one HTTP response: (status, headers, body); ``timeout`` only bounds a sensor that never answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def post(port: int, body: bytes, headers: dict[str, str] | list[tuple[str, str]] | None = None, path: str = "/alertmanager",
         method: str = "POST") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    fields = headers if headers is not None else {**JSON, "Content-Length": str(len(body))}
    head += [f"{k}: {v}" for k, v in (fields.items() if isinstance(fields, dict) else fields)]  # a list may repeat a name
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def jbody(doc) -> bytes:
    return json.dumps(doc).encode()


def with_length(body: bytes, **headers: str) -> dict[str, str]:
    return {"Content-Length": str(len(body)), **headers}


GOOD = notification([alert(instance="db-1")])
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_ANNOTATION = notification([alert(annotations={"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}})])  # type: ignore[dict-item]

# (id, request bytes, expected status, expected text in the reason, alerts dispatched)
CASES = [
    ("malformed_json", post(0, b'{"version": "4", "alerts": ['), 400, "malformed JSON", 0),
    ("empty_body", post(0, b""), 400, "malformed JSON", 0),
    ("json_array", post(0, b"[]"), 400, "must be a JSON object", 0),
    ("json_string", post(0, b'"hello"'), 400, "must be a JSON object", 0),
    ("nan_constant", post(0, b'{"version": "4", "x": NaN}'), 400, "NaN is not valid JSON", 0),
    ("text_plain", post(0, jbody(GOOD), with_length(jbody(GOOD), **{"Content-Type": "text/plain"})), 415, "application/json", 0),
    ("no_content_type", post(0, jbody(GOOD), with_length(jbody(GOOD))), 415, "application/json", 0),
    ("latin1_charset", post(0, jbody(GOOD), with_length(jbody(GOOD), **{"Content-Type": "application/json; charset=latin-1"})), 415, "UTF-8", 0),
    ("form_encoded", post(0, b"a=b", with_length(b"a=b", **{"Content-Type": "application/x-www-form-urlencoded"})), 415, "application/json", 0),
    ("version_3", post(0, jbody({**GOOD, "version": "3"})), 422, "unsupported payload version '3'", 0),
    ("version_int", post(0, jbody({**GOOD, "version": 4})), 422, "unsupported payload version 4", 0),
    ("missing_version", post(0, jbody({k: v for k, v in GOOD.items() if k != "version"})), 400, "missing field version", 0),
    ("missing_alerts", post(0, jbody({k: v for k, v in GOOD.items() if k != "alerts"})), 400, "missing field alerts", 0),
    ("missing_receiver", post(0, jbody({k: v for k, v in GOOD.items() if k != "receiver"})), 400, "missing field receiver", 0),
    ("alerts_not_list", post(0, jbody({**GOOD, "alerts": {"0": GOOD["alerts"][0]}})), 400, "alerts must be an array", 0),
    ("alerts_empty", post(0, jbody({**GOOD, "alerts": []})), 400, "alerts is empty", 0),
    ("group_status_invalid", post(0, jbody({**GOOD, "status": "burning"})), 400, "status must be one of", 0),
    ("receiver_wrong_type", post(0, jbody({**GOOD, "receiver": 7})), 400, "receiver must be a string", 0),
    ("common_labels_nested", post(0, jbody({**GOOD, "commonLabels": {"a": {"b": "c"}}})), 400, "commonLabels.a must be a string", 0),
    ("truncated_negative", post(0, jbody({**GOOD, "truncatedAlerts": -1})), 400, "truncatedAlerts", 0),
    ("invalid_utf8", post(0, b'{"version": "4", "receiver": "\xff\xfe"}'), 400, "not valid UTF-8", 0),
    ("utf16_body", post(0, json.dumps(GOOD).encode("utf-16")), 400, "not valid UTF-8", 0),
    ("deep_array", post(0, DEEP_ARRAY), 400, "nested too deeply", 0),
    ("deep_annotations", post(0, jbody(DEEP_ANNOTATION)), 400, "levels deep (limit 8)", 0),
    ("all_alerts_invalid", post(0, jbody(notification([{"status": "firing"}, "junk"]))), 422, "", 0),
    ("alert_labels_numbers", post(0, jbody(notification([{**alert(), "labels": {"alertname": 1}}]))), 422, "", 0),
    ("alert_bad_timestamp", post(0, jbody(notification([{**alert(), "startsAt": "yesterday"}]))), 422, "", 0),
    ("alert_bad_label_name", post(0, jbody(notification([alert(**{"bad-name": "x"})]))), 422, "", 0),
    ("fingerprint_control_chars", post(0, jbody(notification([{**alert(), "fingerprint": "fp\x00\n"}]))), 422, "", 0),
    ("fingerprint_too_long", post(0, jbody(notification([{**alert(), "fingerprint": "f" * 129}]))), 422, "", 0),
    ("fingerprint_number", post(0, jbody(notification([{**alert(), "fingerprint": 42}]))), 422, "", 0),
    ("alert_year_overflow", post(0, jbody(notification([{**alert(), "startsAt": "9999-12-31T23:59:59-23:59"}]))), 422, "", 0),
    ("alert_lone_surrogate", post(0, jbody(notification([alert(instance="LONE")])).replace(b"LONE", b"\\ud800")), 422, "", 0),
    ("partial_batch", post(0, jbody(notification([alert(instance="ok"), {**alert(), "status": "pending"}, 42]))), 200, "", 1),
    ("bad_content_length", post(0, b"{}", {**JSON, "Content-Length": "abc"}), 400, "invalid Content-Length", 0),
    ("negative_content_length", post(0, b"", {**JSON, "Content-Length": "-5"}), 400, "invalid Content-Length", 0),
    ("minus_one_content_length", post(0, b"", {**JSON, "Content-Length": "-1"}), 400, "invalid Content-Length", 0),
    ("plus_signed_content_length", post(0, b"{}   ", {**JSON, "Content-Length": "+5"}), 400, "invalid Content-Length", 0),
    ("underscored_content_length", post(0, b"{}", {**JSON, "Content-Length": "0_2"}), 400, "invalid Content-Length", 0),
    ("conflicting_content_lengths", post(0, jbody(GOOD) + b" " * 8, [("Content-Type", "application/json"),
        ("Content-Length", str(len(jbody(GOOD)))), ("Content-Length", str(len(jbody(GOOD)) + 8))]),
        400, "conflicting Content-Length", 0),  # fmt: skip
    ("no_content_length", post(0, b"", JSON), 411, "Content-Length required", 0),
    ("chunked", post(0, b"2\r\n{}\r\n0\r\n\r\n", {**JSON, "Transfer-Encoding": "chunked"}), 411, "Content-Length", 0),
    ("oversized_declared", post(0, b"", {**JSON, "Content-Length": str(2 * 1024 * 1024)}), 413, "exceeds the limit", 0),
    ("get_on_webhook", post(0, b"", {}, method="GET"), 405, "use POST", 0),
    ("put_on_webhook", post(0, b"{}", with_length(b"{}"), method="PUT"), 405, "use POST", 0),
    ("post_elsewhere", post(0, jbody(GOOD), path="/api/v2/alerts"), 404, "not found", 0),
    ("too_many_alerts", post(0, jbody(notification([alert(instance=str(i)) for i in range(6)]))), 413, "6 alerts in one request", 0),
]


@pytest.fixture(scope="module")
def sensor(tmp_path_factory):
    store = KeyValueStore(str(tmp_path_factory.mktemp("kv") / "datastore.sqlite"))
    service = RecordingSensorService(AlertmanagerWebhookSensor, store)
    config = {"alertmanager": {"max_alerts_per_request": 5, "read_timeout": 1}}
    with running_webhook_sensor(service, config) as (running, _url):
        yield running, service


@pytest.mark.parametrize("request_bytes, status, reason, dispatched", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_request(sensor, request_bytes, status, reason, dispatched):
    running, service = sensor
    before = len(service.dispatched_triggers)
    code_before = REGISTRY.get_sample_value("aegis_webhook_requests_total", {"code": str(status)}) or 0
    got, headers, body = raw(running.port, request_bytes)
    assert got == status, body
    answer = json.loads(body)
    if reason:  # the whole request was refused, with a one-line reason
        assert reason in answer["error"]
        assert "\n" not in answer["error"]
    else:  # a group with bad alerts: the answer lists each rejected one
        assert answer["rejected"], "the response must say what was rejected"
        assert all(item["reason"] for item in answer["rejected"])
    assert len(service.dispatched_triggers) - before == dispatched
    assert (REGISTRY.get_sample_value("aegis_webhook_requests_total", {"code": str(status)}) or 0) - code_before == 1


def test_stalled_body_is_dropped_and_the_sensor_keeps_serving(sensor):
    running, service = sensor
    with socket.create_connection(("127.0.0.1", running.port), timeout=60) as sock:
        sock.sendall(post(0, b"", {**JSON, "Content-Length": "100"}) + b'{"version"')
        assert sock.recv(1024) == b""  # closed without an answer once read_timeout (1 s) passed
    got, _headers, body = raw(running.port, post(0, jbody(notification([alert(instance="after-stall")]))))
    assert got == 200, body


def test_sensor_still_accepts_valid_notifications_after_the_onslaught(sensor):
    running, service = sensor
    for case in CASES:
        raw(running.port, case[1])
    before = len(service.dispatched_triggers)
    got, _headers, body = raw(running.port, post(0, jbody(notification([alert(instance="still-alive")]))))
    assert got == 200, body
    assert service.dispatched_triggers[before]["payload"]["labels"]["instance"] == "still-alive"


def test_many_hostile_cases():
    assert len(CASES) >= 20
