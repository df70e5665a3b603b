"""The webhook under attack: slow bodies (slowloris), connection floods, client resets.

Every wait here is on an event (an answer, a closed socket, a metric reaching a value),
bounded generously; nothing is timed and nothing passes because something had not
happened yet.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
import requests
from alertmanager_webhook_sensor import AlertmanagerWebhookSensor, ConfigError, _settings
from fixtures.alerts import alert, notification
from fixtures.waiting import wait_for
from pack_runtime.datastore import KeyValueStore
from prometheus_client import REGISTRY
from servers.webhook import running_webhook_sensor
from st2tests.base import RecordingSensorService

BOUND = 60  # seconds: generous, only reached when the behaviour under test is missing


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def service(tmp_path):
    return RecordingSensorService(AlertmanagerWebhookSensor, KeyValueStore(str(tmp_path / "datastore.sqlite")))


def request_head(length: int) -> bytes:
    return (f"POST /alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()  # fmt: skip


@contextlib.contextmanager
def tricklers(port: int, count: int, chunks: list[bytes], interval: float = 0.1) -> Iterator[list[socket.socket]]:
    """``count`` connections that each send ``chunks`` one by one, ``interval`` apart, until the block ends."""
    stop = threading.Event()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=BOUND) for _ in range(count)]

    def trickle(sock: socket.socket) -> None:
        for chunk in chunks:
            if stop.is_set():
                return
            try:
                sock.sendall(chunk)
            except OSError:
                return  # the server closed it: what a deadline does
            stop.wait(interval)

    threads = [threading.Thread(target=trickle, args=(s,), daemon=True) for s in sockets]
    for thread in threads:
        thread.start()
    try:
        yield sockets
    finally:
        stop.set()
        for thread in threads:
            thread.join(BOUND)
        for sock in sockets:
            sock.close()


def read_response(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read() or b"{}")


def test_slow_bodies_never_starve_legitimate_posts(service):
    """16 connections trickle their bodies; every legitimate POST meanwhile is answered 200."""
    slow = 16
    body = json.dumps(notification([alert(instance="slow")])).encode()
    config = {"alertmanager": {"max_concurrent_requests": 4, "request_timeout": BOUND * 2, "read_timeout": BOUND}}
    with running_webhook_sensor(service, config) as (sensor, url):
        # Headers, then the body one byte at a time: each connection is mid-body for minutes.
        with tricklers(sensor.port, slow, [request_head(len(body))] + [body[i:i + 1] for i in range(len(body))]):
            wait_for(lambda: sensor._server.pending >= slow, BOUND, f"{slow} slow connections to be in the sensor")
            answers = [requests.post(url, json=notification([alert(instance=f"legit-{i}")]), timeout=BOUND)
                       for i in range(5)]  # fmt: skip
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    recorded = [t["payload"]["labels"]["instance"] for t in service.dispatched_triggers]
    assert recorded == [f"legit-{i}" for i in range(5)]


def test_a_request_trickled_past_request_timeout_gets_408_and_is_closed(service):
    body = json.dumps(notification([alert(instance="slow")])).encode()
    config = {"alertmanager": {"request_timeout": 1, "read_timeout": BOUND}}
    with running_webhook_sensor(service, config) as (sensor, url):
        # a body trickled a byte per 0.1 s (never idle long enough for read_timeout) ...
        with tricklers(sensor.port, 1, [request_head(len(body))] + [body[i:i + 1] for i in range(len(body))]) as (sock,):
            status, answer = read_response(sock)
            assert (status, answer["status"]) == (408, "error") and "not received within 1s" in answer["error"]
            assert sock.recv(1) == b"", "the connection is closed after the 408"
        # ... and headers trickled the same way
        head = request_head(len(body))
        with tricklers(sensor.port, 1, [head[i:i + 1] for i in range(len(head))]) as (sock,):
            assert read_response(sock)[0] == 408
        assert requests.post(url, json=notification([alert(instance="after")]), timeout=BOUND).status_code == 200
    assert [t["payload"]["labels"]["instance"] for t in service.dispatched_triggers] == ["after"]


def test_connections_over_the_pending_cap_get_503_at_once(service):
    config = {"alertmanager": {"max_pending_connections": 3, "read_timeout": BOUND}}
    with running_webhook_sensor(service, config) as (sensor, url):
        before = sample("aegis_webhook_pending_connections")
        silent = [socket.create_connection(("127.0.0.1", sensor.port), timeout=BOUND) for _ in range(3)]
        try:
            wait_for(lambda: sensor._server.pending >= 3, BOUND, "three pending connections")
            assert sample("aegis_webhook_pending_connections") >= before + 3, "the gauge counts them"
            refused = requests.post(url, json=notification([alert(instance="refused")]), timeout=BOUND)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        finally:
            for sock in silent:
                sock.close()
        wait_for(lambda: sensor._server.pending == 0, BOUND, "the silent connections to go")
        accepted = requests.post(url, json=notification([alert(instance="accepted")]), timeout=BOUND)
    assert accepted.status_code == 200
    assert [t["payload"]["labels"]["instance"] for t in service.dispatched_triggers] == ["accepted"]


def test_a_client_reset_is_logged_without_a_traceback(service, caplog):
    stderr = io.StringIO()
    before = sample("aegis_webhook_rejected_requests_total", reason="client_gone")
    with caplog.at_level(logging.DEBUG), contextlib.redirect_stderr(stderr):
        with running_webhook_sensor(service, {}) as (sensor, url):
            for _ in range(3):  # a reset mid-headers, whenever the server notices it
                sock = socket.create_connection(("127.0.0.1", sensor.port), timeout=BOUND)
                sock.sendall(b"POST /alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
                sock.close()
            wait_for(lambda: sensor._server.events["client_gone"] >= 3, BOUND, "three client resets to be noticed")
            assert requests.post(url, json=notification([alert()]), timeout=BOUND).status_code == 200
    assert "Traceback" not in stderr.getvalue(), stderr.getvalue()
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    assert any("ended by the client" in r.getMessage() for r in caplog.records)
    assert sample("aegis_webhook_rejected_requests_total", reason="client_gone") >= before + 3


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.1/8", "write 10.0.0.0/8 for the whole network or 10.0.0.1/32 for the one host"),
        ("192.168.1.77/24", "has host bits set"),
        ("fd00::1/64", "write fd00::/64"),
        ("10.0.0.0/33", "not a network"),
        ("example.com", "not a network"),
    ],
)
def test_allowed_sources_with_host_bits_is_a_config_error_not_a_wider_net(entry, message):
    with pytest.raises(ConfigError) as caught:
        _settings({"alertmanager": {"allowed_sources": [entry]}})
    assert "alertmanager.allowed_sources" in str(caught.value) and message in str(caught.value)


def test_allowed_sources_accepts_networks_and_single_addresses():
    settings = _settings({"alertmanager": {"allowed_sources": ["10.0.0.0/8", "192.168.1.7", "::1", "fd00::/64"]}})
    assert [str(n) for n in settings["networks"]] == ["10.0.0.0/8", "192.168.1.7/32", "::1/128", "fd00::/64"]
