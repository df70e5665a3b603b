"""kill -9 of the webhook sensor in the middle of an alert storm loses nothing answered 200.

The sensor runs as st2lite's sensor container runs it (``pack_runtime.sensor_wrapper``, its
own process, the pack virtualenv), over real history and datastore files. Clients post
batches on keep-alive connections until the process is killed mid-ingest; then every
trigger instance of every 200 answer must be in the history with its incident in the
datastore, and the unanswered requests, sent again to a restarted sensor, leave no alert
without a trigger that the remediation rule would take.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import requests
import yaml
from conftest import REPO, VIRTUALENVS, free_port, wait_for

from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
from st2lite.pack_env.pack_runtime.records import Records

PACK = REPO / "packs" / "aegis"
PYTHON = VIRTUALENVS / "aegis" / "bin" / "python"


def start_sensor(tmp: Path, port: int) -> subprocess.Popen:
    meta = yaml.safe_load((PACK / "sensors" / "alertmanager_webhook_sensor.yaml").read_text())
    config = tmp / "config.json"
    config.write_text(json.dumps({"alertmanager": {"port": port, "max_concurrent_requests": 8}}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "st2lite" / "pack_env"), str(PACK / "actions" / "lib")]))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the sensor's metrics stay in its process
    proc = subprocess.Popen(
        [str(PYTHON), "-m", "pack_runtime.sensor_wrapper", "--pack-dir", str(PACK), "--pack", "aegis",
         "--file", str(PACK / "sensors" / "alertmanager_webhook_sensor.py"), "--class-name", "AlertmanagerWebhookSensor",
         "--trigger-types", json.dumps({f"aegis.{t['name']}": t for t in meta["trigger_types"]}),
         "--datastore", str(tmp / "datastore.sqlite"), "--records", str(tmp / "history.sqlite"), "--config", str(config)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=open(tmp / "sensor.log", "ab"), env=env,  # noqa: SIM115
    )  # fmt: skip

    def healthy():
        assert proc.poll() is None, (tmp / "sensor.log").read_text()
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(healthy, timeout=60, what="the webhook sensor to listen")
    return proc


def notification(client: int, n: int, size: int = 50) -> dict:
    alerts = [
        {"status": "firing", "labels": {"alertname": "CrashTest", "instance": f"c{client}-r{n}-a{i}"},
         "annotations": {}, "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "", "fingerprint": f"{client:04x}{n:06x}{i:06x}"}
        for i in range(size)
    ]  # fmt: skip
    return {"version": "4", "status": "firing", "receiver": "aegis", "groupKey": f"{{}}:{{c={client},n={n}}}", "alerts": alerts}


def test_sigkill_mid_ingest_loses_nothing_answered_200(tmp_path):
    port = free_port()
    proc = start_sensor(tmp_path, port)
    answered: list[tuple[dict, list[str]]] = []
    unanswered: list[dict] = []
    wrong: list[str] = []  # answers other than 200 (an assert in a client thread would go unseen)
    lock, enough = threading.Lock(), threading.Event()

    def client(number: int) -> None:
        with requests.Session() as session:
            for n in range(400):  # bounded: the kill comes long before
                body = notification(number, n)
                try:
                    resp = session.post(f"http://127.0.0.1:{port}/alertmanager", json=body, timeout=30)
                except requests.RequestException:
                    with lock:
                        unanswered.append(body)
                    return
                if resp.status_code != 200:
                    with lock:
                        wrong.append(f"{resp.status_code}: {resp.text}")
                    return
                with lock:
                    answered.append((body, resp.json()["trigger_instances"]))
                    if len(answered) >= 30:
                        enough.set()

    clients = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for thread in clients:
        thread.start()
    try:
        assert enough.wait(120), "the sensor answered too few requests"
        os.kill(proc.pid, signal.SIGKILL)  # mid-ingest: the clients are still posting
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        for thread in clients:
            thread.join(60)
    assert not [t for t in clients if t.is_alive()], "a client never got an answer or an error"
    assert wrong == [], wrong
    assert unanswered, "the kill came between requests, not mid-ingest"

    records = Records(str(tmp_path / "history.sqlite"))
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    for body, ids in answered:
        assert len(ids) == len(body["alerts"])
        for alert, ti_id in zip(body["alerts"], ids, strict=True):
            instance = records.get_trigger_instance(ti_id)
            assert instance is not None, f"trigger instance {ti_id} was answered 200 and then lost"
            assert instance["payload"]["fingerprint"] == alert["fingerprint"]
            assert store.get(f"aegis.incident.{instance['payload']['incident_id']}"), "its incident was lost"

    # Alertmanager retries what was not answered; every alert then has a trigger the remediation rule takes.
    proc = start_sensor(tmp_path, port)
    try:
        for body in unanswered:
            assert requests.post(f"http://127.0.0.1:{port}/alertmanager", json=body, timeout=30).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    remediable = {ti["payload"]["fingerprint"] for ti in records.list_trigger_instances("aegis.alert", limit=1_000_000)
                  if not ti["payload"]["repeat"]}  # fmt: skip
    sent = {a["fingerprint"] for body, _ in answered for a in body["alerts"]} | {a["fingerprint"] for b in unanswered for a in b["alerts"]}
    assert sent <= remediable, f"{len(sent - remediable)} alerts would never be remediated"
