"""st2's API on the wire: paths, status codes, faultstrings, paging headers, authentication.

What the st2 CLI tests do not show directly: the exact HTTP answers (st2client prints
only part of them), the htpasswd formats, and that secrets are kept hashed.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time

import pytest
import requests
from conftest import FIXTURE_PACKS, VIRTUALENVS

from st2lite.api import AuthStore, start_api


@pytest.fixture
def api(make_runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("AEGIS_VIRTUALENVS", str(VIRTUALENVS))
    home = tmp_path / "home"
    runtime = make_runtime(FIXTURE_PACKS / "apitest", home=home)
    runtime.inquiries.interval = 0
    runtime.start(sensors=False)
    auth = AuthStore(home)
    auth.add_user("alice", "wonderland")
    servers = start_api(runtime, home, auth, api_listen=("127.0.0.1", 0), auth_listen=("127.0.0.1", 0), stream_listen=("127.0.0.1", 0))
    token = requests.post(f"{servers.auth.url}/tokens", auth=("alice", "wonderland"), timeout=10).json()["token"]
    session = requests.Session()
    session.headers["X-Auth-Token"] = token
    yield runtime, servers, session, auth
    servers.stop()


def test_tokens_from_the_auth_service(api) -> None:
    _runtime, servers, _session, _auth = api
    for path in ("/tokens", "/v1/tokens", "/auth/v1/tokens"):
        response = requests.post(servers.auth.url + path, auth=("alice", "wonderland"), json={"ttl": 60}, timeout=10)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["user"] == "alice" and body["ttl"] == 60 and body["expiry"].endswith("Z") and len(body["token"]) == 32
    wrong = requests.post(servers.auth.url + "/tokens", auth=("alice", "nope"), timeout=10)
    assert wrong.status_code == 401 and wrong.json() == {"faultstring": "Invalid or missing credentials"}
    assert requests.post(servers.auth.url + "/tokens", timeout=10).status_code == 401
    too_long = requests.post(servers.auth.url + "/tokens", auth=("alice", "wonderland"), json={"ttl": 10**6}, timeout=10)
    assert too_long.status_code == 400 and "max allowed" in too_long.json()["faultstring"]


def test_every_endpoint_needs_credentials(api) -> None:
    _runtime, servers, session, auth = api
    base = servers.api.url
    for method, path in (("GET", "/v1/executions"), ("GET", "/v1/keys/x"), ("PUT", "/v1/keys/x"),
                         ("GET", "/v1/nothing/here"), ("POST", "/v1/executions")):  # fmt: skip
        response = requests.request(method, base + path, timeout=10)
        assert response.status_code == 401, (method, path)
        assert response.json()["faultstring"].startswith("Unauthorized")
    key = auth.create_api_key("bob")["key"]
    assert requests.get(f"{base}/v1/actions", headers={"St2-Api-Key": key}, timeout=10).status_code == 200
    assert requests.get(f"{base}/v1/actions", params={"st2-api-key": key}, timeout=10).status_code == 200
    assert requests.get(f"{base}/v1/actions", headers={"St2-Api-Key": key + "x"}, timeout=10).status_code == 401
    token = session.headers["X-Auth-Token"]
    assert requests.get(f"{base}/v1/actions", params={"x-auth-token": token}, timeout=10).status_code == 200
    expired = auth.issue_token("alice", ttl=10, issued_at=time.time() - 11)["token"]
    response = requests.get(f"{base}/v1/actions", headers={"X-Auth-Token": expired}, timeout=10)
    assert response.status_code == 401 and "expired" in response.json()["faultstring"]
    # Keys and tokens are kept as hashes only.
    db = sqlite3.connect(auth.home / "auth.sqlite")
    stored = [r[0] for r in db.execute("SELECT key_hash FROM api_keys")] + [r[0] for r in db.execute("SELECT token_hash FROM tokens")]
    assert key not in stored and token not in stored and hashlib.sha256(key.encode()).hexdigest() in stored
    assert oct((auth.home / "auth.sqlite").stat().st_mode & 0o777) == "0o600"


def test_unimplemented_endpoints_answer_501_by_name(api) -> None:
    _runtime, servers, session, _auth = api
    response = session.post(f"{servers.api.url}/v1/packs/install", json={"packs": ["x"]}, timeout=10)
    assert response.status_code == 501
    assert response.json() == {"faultstring": "st2lite does not implement POST /v1/packs/install"}
    assert session.get(f"{servers.api.url}/api/v1/webhooks", timeout=10).status_code == 501


def test_executions_paging_filters_and_errors(api) -> None:
    runtime, servers, session, _auth = api
    base = servers.api.url + "/v1"
    ids = [session.post(f"{base}/executions", json={"action": "apitest.add", "parameters": {"a": i, "b": 1}}, timeout=10).json()["id"]
           for i in range(3)]  # fmt: skip
    for ex_id in ids:
        runtime.wait(ex_id, 60)
    page = session.get(f"{base}/executions", params={"limit": 2, "parent": "null"}, timeout=10)
    assert page.status_code == 200 and page.headers["X-Total-Count"] == "3" and page.headers["X-Limit"] == "2"
    assert [e["id"] for e in page.json()] == ids[::-1][:2]  # newest first
    rest = session.get(f"{base}/executions", params={"limit": 2, "offset": 2}, timeout=10).json()
    assert [e["id"] for e in rest] == [ids[0]]
    oldest = session.get(f"{base}/executions", params={"sort_asc": "True", "limit": 1}, timeout=10).json()
    assert oldest[0]["id"] == ids[0]
    slim = session.get(f"{base}/executions", params={"include_attributes": "id,status,action.ref"}, timeout=10).json()
    assert set(slim[0]) == {"id", "status", "action"}
    one = session.get(f"{base}/executions/{ids[0]}", timeout=10).json()
    assert one["status"] == "succeeded" and one["result"]["result"] == 1 and one["context"]["user"] == "alice"
    assert one["action"]["runner_type"] == "python-script" and one["runner"]["name"] == "python-script"
    assert one["elapsed_seconds"] >= 0 and one["log"][0]["status"] == "requested"
    missing = session.get(f"{base}/executions/nope", timeout=10)
    assert missing.status_code == 404 and "not found" in missing.json()["faultstring"]
    bad = session.post(f"{base}/executions", json={"action": "apitest.add", "parameters": {"a": "x"}}, timeout=10)
    assert bad.status_code == 400 and "faultstring" in bad.json()
    unknown = session.post(f"{base}/executions", json={"action": "apitest.nope"}, timeout=10)
    assert unknown.status_code == 400 and "not registered" in unknown.json()["faultstring"]
    garbage = session.post(f"{base}/executions", data=b"{not json", timeout=10)
    assert garbage.status_code == 400
    done = session.delete(f"{base}/executions/{ids[0]}", timeout=10)
    assert done.status_code == 200 and "cannot be canceled" in done.json()["faultstring"]
    status = session.put(f"{base}/executions/{ids[0]}", json={"status": "succeeded"}, timeout=10)
    assert status.status_code == 400


def test_keys_scopes_and_secrets(api) -> None:
    runtime, servers, session, _auth = api
    base = servers.api.url + "/v1"
    assert session.put(f"{base}/keys/a.b", json={"name": "a.b", "value": "1"}, timeout=10).json()["scope"] == "st2kv.system"
    mine = session.put(f"{base}/keys/pref", json={"name": "pref", "value": "dark", "scope": "user"}, timeout=10).json()
    assert mine["scope"] == "st2kv.user" and mine["user"] == "alice" and mine["name"] == "pref"
    assert runtime.store.get("alice:pref", scope="user") == "dark"  # where st2 keeps user keys
    secret = session.put(f"{base}/keys/pw", json={"name": "pw", "value": "hunter2", "secret": True}, timeout=10).json()
    assert secret["secret"] is True and secret["value"] != "hunter2"
    encrypted = session.get(f"{base}/keys/pw", timeout=10).json()
    assert encrypted["value"] == runtime.store.get("pw") != "hunter2" and encrypted["encrypted"] is True
    clear = session.get(f"{base}/keys/pw", params={"decrypt": "true"}, timeout=10).json()
    assert clear["value"] == "hunter2" and clear["encrypted"] is False
    listed = session.get(f"{base}/keys", timeout=10)
    assert {k["name"] for k in listed.json()} == {"a.b", "pref", "pw"} and "hunter2" not in listed.text
    assert "hunter2" in session.get(f"{base}/keys", params={"decrypt": "true"}, timeout=10).text
    assert listed.headers["X-Total-Count"] == "3"
    assert session.delete(f"{base}/keys/a.b", timeout=10).status_code == 204
    assert session.get(f"{base}/keys/a.b", timeout=10).status_code == 404
    assert session.put(f"{base}/keys/x", json={"value": "1", "ttl": -5}, timeout=10).status_code == 400


def test_inquiry_endpoints(api) -> None:
    runtime, servers, session, _auth = api
    base = servers.api.url + "/v1"
    ask = runtime.execute("core.ask", {"ttl": 5, "route": "ops"})
    runtime.wait(ask, 30)
    listed = session.get(f"{base}/inquiries", timeout=10)
    assert listed.json() == [{"id": ask, "route": "ops", "ttl": 5, "users": [], "roles": [],
                              "schema": runtime.parameter_schema(runtime.actions["core.ask"])["schema"]["default"]}]  # fmt: skip
    assert listed.headers["X-Total-Count"] == "1"
    bad = session.put(f"{base}/inquiries/{ask}", json={"id": ask, "response": {"continue": "yes"}}, timeout=10)
    assert bad.status_code == 400 and "did not pass schema validation" in bad.json()["faultstring"]
    good = session.put(f"{base}/inquiries/{ask}", json={"id": ask, "response": {"continue": True}}, timeout=10)
    assert good.status_code == 200 and good.json() == {"id": ask, "response": {"continue": True}}
    assert session.get(f"{base}/inquiries/{ask}", timeout=10).status_code == 400  # answered: no longer an inquiry
    assert session.get(f"{base}/inquiries/nope", timeout=10).status_code == 404


def test_htpasswd_formats_st2_reads(tmp_path) -> None:
    auth = AuthStore(tmp_path)
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"pw-sha").digest()).decode()
    y_bcrypt = "$2y$" + __import__("bcrypt").hashpw(b"pw-2y", __import__("bcrypt").gensalt())[4:].decode()
    apr1 = "$apr1$ml4nWU4u$jhxhZ0rod/KdgsOD0VcVx0"  # openssl passwd -apr1 -salt ml4nWU4u pw-apr1
    (tmp_path / "htpasswd").write_text(f"sha:{sha}\nbob:{y_bcrypt}\ncarol:{apr1}\n")
    assert auth.authenticate("sha", "pw-sha") and not auth.authenticate("sha", "x")
    assert auth.authenticate("bob", "pw-2y") and not auth.authenticate("bob", "x")
    assert auth.authenticate("carol", "pw-apr1") and not auth.authenticate("carol", "x")
    assert not auth.authenticate("nobody", "pw-sha")
    auth.add_user("dave", "pw")
    assert auth.users() == ["bob", "carol", "dave", "sha"]
    assert oct((tmp_path / "htpasswd").stat().st_mode & 0o777) == "0o600"
