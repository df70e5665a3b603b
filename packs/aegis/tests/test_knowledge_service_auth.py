"""The knowledge service (127.0.0.1:9182) takes requests only with the pack's shared secret,
never writes a file outside its index, refuses bad Content-Length headers and closes idle
connections (issue 8, part 3)."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import socket

import pytest
from _diag_fixtures import fresh_index_config
from knowledge_service import (
    TOKEN_KEY,
    KnowledgeService,
    ServiceUnavailable,
    call_service,
    client_settings,
    ensure_token,
    search,
)
from st2tests.base import BaseActionTestCase

from knowledge import KnowledgeIndex, KnowledgeSettings

TOKEN = "the-shared-secret"


@pytest.fixture(scope="module")
def service():
    config = fresh_index_config()
    svc = KnowledgeService(KnowledgeSettings.from_config(config), TOKEN, port=0, idle_timeout=0.5)
    svc.start()
    yield svc, config
    svc.stop()


def post(svc, path: str, body: dict, token: str | None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"{}")


def raw(svc, request: bytes) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", svc.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


REMEMBER = {"signature": "HighMemoryUsage|reports", "action": "noop", "outcome": "resolved"}


def test_writes_without_the_secret_are_refused(service):
    svc, config = service
    index = KnowledgeIndex(KnowledgeSettings.from_config(config))
    before = index.incidents()
    assert post(svc, "/remember", REMEMBER, None)[0] == 401
    assert post(svc, "/remember", REMEMBER, "guess")[0] == 403
    assert post(svc, "/index", {"force": True}, None)[0] == 401
    assert post(svc, "/search", {"text": "disk full"}, "guess")[0] == 403
    assert index.incidents() == before, "a refused request changed the incident memory"


def test_reads_and_writes_with_the_secret_work(service):
    svc, config = service
    settings = dataclasses.replace(KnowledgeSettings.from_config(
        {"knowledge": {**config["knowledge"], "service_port": svc.port, "use_service": True}}), service_token=TOKEN)
    hits, via = search(settings, "TLS certificate expires in 3 days", 2)
    assert via == "service" and hits[0].id == "certificate-expiry"
    status, answer = post(svc, "/remember", {**REMEMBER, "incident_id": "inc-0123456789abcdef"}, TOKEN)
    assert status == 200 and answer["incident"]["id"] == "inc-0123456789abcdef"
    # Without the token the client does not even ask (search() then goes in-process).
    with pytest.raises(ServiceUnavailable, match="no knowledge service token"):
        call_service(dataclasses.replace(settings, service_token=""), "POST", "/search", {"text": "x"})


@pytest.mark.parametrize("incident_id", ["/tmp/aegis-kss-evil", "../../../../tmp/aegis-kss-evil", "..", "a/b", ""])
def test_no_file_outside_the_index_even_with_a_path_like_id(service, tmp_path, incident_id):
    svc, config = service
    target = f"{tmp_path}/evil" if incident_id.startswith("/tmp") else incident_id
    index_dir = KnowledgeSettings.from_config(config).index_dir
    before = {p for p in index_dir.rglob("*")}
    status, answer = post(svc, "/remember", {**REMEMBER, "incident_id": target}, TOKEN)
    assert status == 400 and "incident_id" in answer["error"]
    assert not os.path.exists(f"{tmp_path}/evil.json") and not os.path.exists("/tmp/aegis-kss-evil.json")
    assert {p for p in index_dir.rglob("*")} == before


def test_incident_files_are_named_by_a_digest_not_by_the_id(service):
    svc, config = service
    settings = KnowledgeSettings.from_config(config)
    incident = KnowledgeIndex(settings).remember_incident(
        "Sig|x", "restart", "resolved", incident_id="inc-fedcba9876543210", update_index=False)
    names = [p.name for p in (settings.index_dir / "incidents").rglob("*.json")]
    assert incident.id not in "".join(names) and len(names) >= 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"", 411),  # no Content-Length
        (b"Content-Length: -1\r\n", 400),
        (b"Content-Length: +2\r\n", 400),
        (b"Content-Length: 2\r\nContent-Length: 3\r\n", 400),
        (b"Content-Length: 9999999999\r\n", 413),
        (b"Transfer-Encoding: chunked\r\n", 411),
    ],
)
def test_bad_content_length_is_refused(service, headers, status):
    svc, _ = service
    request = (b"POST /search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
               + headers + b"\r\n{}")
    answer = raw(svc, request)
    assert answer.startswith(f"HTTP/1.0 {status}".encode()), answer[:200]


def test_an_idle_connection_is_closed(service):
    svc, _ = service
    with socket.create_connection(("127.0.0.1", svc.port), timeout=30) as sock:
        sock.sendall(b"POST /search HTTP/1.1\r\n")  # and then nothing
        assert sock.recv(1024) == b"", "the server closed the idle connection"


def test_healthz_needs_no_secret(service):
    svc, config = service
    settings = KnowledgeSettings.from_config({"knowledge": {**config["knowledge"], "service_port": svc.port}})
    assert call_service(settings, "GET", "/healthz")["status"]["runbooks"] >= 30


class TokenInTheDatastoreTest(BaseActionTestCase):
    """The secret is generated into the datastore once and read back by actions."""

    from knowledge_search import KnowledgeSearchAction as action_cls  # noqa: N811

    def test_generated_once_encrypted_and_read_by_actions(self):
        action = self.get_action_instance(fresh_index_config())
        first = ensure_token(action.action_service)
        assert ensure_token(action.action_service) == first and len(first) >= 32
        [pair] = action.action_service.list_values(local=False, prefix=TOKEN_KEY)
        assert pair.secret
        assert client_settings(action.config, action.action_service).service_token == first
        assert first not in repr(client_settings(action.config, action.action_service))
