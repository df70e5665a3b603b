"""st2's ChatOps API in the runtime: what chat bridges call, with st2's shapes and codes.

``/v1/actionalias/help`` and ``/match``, ``/v1/aliasexecution/match_and_execute`` and
st2stream's ``/v1/stream``, where an alias execution's result arrives as an
``st2.announcement__<route>`` event once it completes (st2's ``chatops.post_result``).
The bridge itself (err-stackstorm) is in test_e2e_errbot.py.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

import pytest
import requests
import yaml
from conftest import REPO, run_cli


@pytest.fixture
def api(make_runtime, tmp_path: Path):
    from st2lite.api import AuthStore, start_api

    home = tmp_path / "home"
    (home / "configs").mkdir(parents=True)
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump({"mode": "advisory"}))
    runtime = make_runtime(REPO / "packs" / "aegis", home=home)
    runtime.start(sensors=False)
    servers = start_api(runtime, home, api_listen=("127.0.0.1", 0), auth_listen=("127.0.0.1", 0), stream_listen=("127.0.0.1", 0))
    key = AuthStore(home).create_api_key("chatbot")["key"]
    session = requests.Session()
    session.headers["St2-Api-Key"] = key
    yield servers, session
    servers.stop()


def sse_events(response: requests.Response):
    """(event, data) pairs of a server-sent event stream."""
    event, data = None, []
    # One byte at a time: the stream has no length and no chunking, so a bigger read would
    # wait for more bytes than an event has.
    for raw in response.iter_lines(chunk_size=1, decode_unicode=True):
        if raw == "":
            if event is not None:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif raw.startswith("event: "):
            event = raw[len("event: "):]
        elif raw.startswith("data: "):
            data.append(raw[len("data: "):])


def first_event(response: requests.Response, timeout: float = 120) -> tuple[str, dict]:
    """The stream's first event, or a failure after ``timeout`` (heartbeats keep a stream
    alive forever, so a read timeout alone would not end a test whose event never comes)."""
    box: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: box.put(next(sse_events(response), None)), daemon=True).start()
    try:
        found = box.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no event on the stream within {timeout}s")
    assert found is not None, "the stream ended"
    return found


def test_every_endpoint_needs_credentials(api) -> None:
    servers, session = api
    base = f"{servers.api.url}/v1"
    assert requests.get(base + "/", timeout=10).status_code == 401
    assert requests.post(base + "/actionalias/match", json={"command": "aegis status"}, timeout=10).status_code == 401
    assert requests.get(f"{servers.stream.url}/v1/stream", timeout=10).status_code == 401
    assert session.get(base + "/", timeout=10).status_code == 200  # how err-stackstorm checks an API key


def test_help_and_match(api) -> None:
    servers, session = api
    base = f"{servers.api.url}/v1"
    everything = session.get(base + "/actionalias/help", params={"pack": "aegis"}, timeout=10).json()
    displays = [h["display"] for h in everything["helpstrings"]]
    assert everything["available"] == len(displays) and "aegis approve <incident>" in displays
    assert all(h["pack"] == "aegis" and h["description"] for h in everything["helpstrings"])
    page = session.get(base + "/actionalias/help", params={"filter": "^aegis incident", "limit": 1, "offset": 1}, timeout=10).json()
    assert page["available"] == 2 and len(page["helpstrings"]) == 1
    assert session.get(base + "/actionalias/help", params={"pack": "nope"}, timeout=10).json() == {"available": 0, "helpstrings": []}

    match = session.post(base + "/actionalias/match", json={"command": "aegis deny inc-0123456789abcdef too risky"}, timeout=10)
    assert match.status_code == 200
    body = match.json()
    assert body["actionalias"]["ref"] == "aegis.deny" and body["actionalias"]["action_ref"] == "aegis.decide"
    assert body["display"] == "aegis deny <incident> [reason]"
    assert body["representation"] == 'aegis deny {{ incident_id }} {{ reason="" }}'
    unknown = session.post(base + "/actionalias/match", json={"command": "reboot everything"}, timeout=10)
    assert unknown.status_code == 400 and unknown.json() == {"faultstring": "Command 'reboot everything' matched no patterns"}
    assert session.post(base + "/actionalias/match", json={}, timeout=10).status_code == 400
    one = session.get(base + "/actionalias/aegis.status", timeout=10).json()
    assert one["formats"] == ["aegis status"] and one["ack"] == {"format": "Checking Aegis…"}


def test_match_and_execute_announces_the_result_on_the_stream(api) -> None:
    servers, session = api
    base = f"{servers.api.url}/v1"
    stream = session.get(f"{servers.stream.url}/v1/stream", params={"events": "st2.announcement__chatops"}, stream=True, timeout=120)
    assert stream.status_code == 200 and stream.headers["Content-Type"].startswith("text/event-stream")

    # First one for another route (errbot): this stream does not want it.
    other = session.post(base + "/aliasexecution/match_and_execute", timeout=30, json={
        "command": "aegis mode", "user": "bob", "source_channel": "D0BOB", "notification_route": "errbot"})  # fmt: skip
    assert other.status_code == 201
    created = session.post(base + "/aliasexecution/match_and_execute", timeout=30, json={
        "command": "aegis status", "user": "alice", "source_channel": "C0OPS", "notification_route": "chatops"})  # fmt: skip
    assert created.status_code == 201
    [result] = created.json()["results"]
    assert result["message"] == "Checking Aegis…"  # the ack
    assert result["actionalias"]["ref"] == "aegis.status"
    execution = result["execution"]
    assert execution["action"]["ref"] == "aegis.chat_status"
    assert execution["context"] == {"action_alias_ref": "aegis.status", "api_user": "alice", "user": "chatbot", "source_channel": "C0OPS"}
    assert "message" not in other.json()["results"][0]  # get_mode has its ack disabled

    event, data = first_event(stream)
    assert event == "st2.announcement__chatops"
    assert data["trace_context"] is None
    payload = data["payload"]
    assert (payload["user"], payload["channel"], payload["whisper"]) == ("alice", "C0OPS", False)
    assert payload["message"].startswith("*Aegis is in advisory mode* (from config)\nOpen incidents: *0*")
    stream.close()

    nothing = session.post(base + "/aliasexecution/match_and_execute", json={"command": "reboot", "user": "x"}, timeout=10)
    assert nothing.status_code == 400 and "matched no patterns" in nothing.json()["faultstring"]


def test_aegis_chat_prints_what_the_channel_would_show(aegis_env, tmp_path: Path) -> None:
    home = Path(aegis_env["AEGIS_HOME"])
    (home / "configs").mkdir(parents=True)
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump({"mode": "monitor", "chatops": {"approvers": ["carol"]}}))
    shown = run_cli(["chat", "!st2 aegis status"], aegis_env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == ["Checking Aegis…", "*Aegis is in monitor mode* (from config)"]
    refused = run_cli(["chat", "-u", "dave", "aegis pause"], aegis_env)
    assert refused.returncode == 1 and "dave, you may not change Aegis's mode" in refused.stdout
    unknown = run_cli(["chat", "reboot everything"], aegis_env)
    assert unknown.returncode == 2 and "st2 command 'reboot everything' not found" in unknown.stdout
