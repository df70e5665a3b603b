"""`aegis run` as a service: health, metrics, clean stops, and a crash that loses no record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import requests
from conftest import FIXTURE_PACKS, run_cli, start_runtime, wait_for


@pytest.fixture
def service_env(aegis_env):
    aegis_env["AEGIS_PACKS_DIR"] = str(FIXTURE_PACKS / "svctest")
    return aegis_env


def start_service(env: dict[str, str], new_session: bool = False) -> subprocess.Popen:
    log_file = Path(env["AEGIS_HOME"]).parent / "runtime.log"
    proc = start_runtime(env, log_file, new_session=new_session)
    proc.log_file = log_file
    url = f"http://{env['AEGIS_API_LISTEN']}/healthz"

    def healthy():
        assert proc.poll() is None, log_file.read_text()
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(healthy, timeout=60, what="/healthz to answer 200")
    except BaseException:
        proc.kill()  # never leak a runtime (and its ports) past a failed test
        proc.wait()
        raise
    return proc


def fire(env: dict[str, str], payload: dict) -> None:
    result = run_cli(["key", "set", "svctest.fire", json.dumps(payload)], env)
    assert result.returncode == 0, result.stderr


def executions(env: dict[str, str], *args: str) -> list[dict]:
    result = run_cli(["execution", "list", "--json", *args], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_health_metrics_and_clean_stop_on_sigterm(service_env):
    proc = start_service(service_env)
    try:
        health = requests.get(f"http://{service_env['AEGIS_API_LISTEN']}/healthz", timeout=5).json()
        assert health["status"] == "ok"
        assert health["sensors"]["svctest.TickSensor"]["running"] is True
        fire(service_env, {"n": 1})
        wait_for(lambda: executions(service_env, "--status", "succeeded"), what="a succeeded execution")
        metrics = requests.get(f"http://{service_env['AEGIS_API_LISTEN']}/metrics", timeout=5).text
        assert 'st2lite_executions_total{action="svctest.slow",status="succeeded"} 1.0' in metrics
        assert 'st2lite_trigger_instances_total{trigger="svctest.tick"} 1.0' in metrics
        assert 'st2lite_rule_enforcements_total{rule="svctest.on_tick",status="succeeded"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "stopped" in proc.log_file.read_text()


def test_sigkill_during_a_workflow_keeps_history_and_abandons_the_interrupted_execution(service_env):
    proc = start_service(service_env)
    try:
        fire(service_env, {"n": 1, "sleep": 0})
        (done,) = wait_for(lambda: executions(service_env, "--status", "succeeded"), what="first workflow")
        fire(service_env, {"n": 2, "sleep": 60})
        running = wait_for(
            lambda: [e for e in executions(service_env, "--all") if e["status"] == "running" and e["action"] == "svctest.sleep"],
            what="the sleep task to be running",
        )
    finally:
        proc.kill()
        proc.wait()
    interrupted_task = running[0]
    workflow_id = interrupted_task["parent"]

    proc = start_service(service_env)
    try:
        history = {e["id"]: e for e in executions(service_env, "--all")}
        assert history[done["id"]]["status"] == "succeeded"
        assert history[done["id"]]["result"]["output"] == {"n": 1, "slept": 0}
        assert history[workflow_id]["status"] == "abandoned"
        assert history[interrupted_task["id"]]["status"] == "abandoned"
        assert history[workflow_id]["workflow_state"], "the conductor state at the crash is kept for inspection"
        assert history[workflow_id]["end_timestamp"]
        # And the restarted runtime works.
        fire(service_env, {"n": 3})
        wait_for(lambda: [e for e in executions(service_env, "--status", "succeeded") if e["result"]["output"]["n"] == 3])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_execution_cli_reads_like_st2(service_env):
    result = run_cli(["action", "execute", "svctest.slow", "n=5", "seconds=0"], service_env)
    assert result.returncode == 0, result.stderr
    ex = json.loads(result.stdout)
    assert ex["status"] == "succeeded" and ex["result"]["output"] == {"n": 5, "slept": 0}

    table = run_cli(["execution", "list"], service_env).stdout
    assert "svctest.slow" in table and "succeeded" in table and ex["id"] in table
    assert "svctest.sleep" not in table, "task executions are listed only with --all"

    detail = run_cli(["execution", "get", ex["id"]], service_env).stdout
    assert f"id: {ex['id']}" in detail and "children:" in detail and "nap" in detail

    as_json = json.loads(run_cli(["execution", "get", ex["id"], "--json"], service_env).stdout)
    assert [c["task_name"] for c in as_json["children"]] == ["nap"]

    filtered = executions(service_env, "--action", "svctest.slow", "--status", "failed")
    assert filtered == []
    missing = run_cli(["execution", "get", "0" * 24], service_env)
    assert missing.returncode == 1 and "not found" in missing.stderr

    bad = run_cli(["action", "execute", "svctest.slow", "seconds=0"], service_env)
    assert bad.returncode == 2 and "missing required parameter 'n'" in bad.stderr


def test_trigger_instance_list(service_env):
    from st2lite.pack_env.pack_runtime.records import Records

    home = os.path.join(service_env["AEGIS_HOME"])
    os.makedirs(home, exist_ok=True)
    ti = Records(os.path.join(home, "history.sqlite")).record_trigger_instance("svctest.tick", {"n": 9})
    listed = json.loads(run_cli(["trigger-instance", "list", "--json"], service_env).stdout)
    assert [t["id"] for t in listed] == [ti] and listed[0]["payload"] == {"n": 9}
    assert "svctest.tick" in run_cli(["trigger-instance", "list"], service_env).stdout


def test_sigterm_lets_a_running_workflow_finish(service_env):
    service_env["AEGIS_SHUTDOWN_GRACE"] = "20"
    proc = start_service(service_env)
    fire(service_env, {"n": 4, "sleep": 2})
    wait_for(lambda: [e for e in executions(service_env, "--all") if e["status"] == "running" and e["action"] == "svctest.sleep"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    (workflow,) = executions(service_env, "--action", "svctest.slow")
    assert workflow["status"] == "succeeded" and workflow["result"]["output"] == {"n": 4, "slept": 2}
    assert "waiting for" in proc.log_file.read_text()


def _aegis_config(home: Path, tmp_path: Path) -> int:
    """The aegis pack's config on free ports; returns the webhook's port."""
    import yaml
    from conftest import free_port

    (home / "configs").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "alertmanager": {"host": "127.0.0.1", "port": port, "path": "/alertmanager"},
        "knowledge": {"service_port": free_port(), "index_dir": str(tmp_path / "index")},
    }
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
    return port


def test_a_post_at_the_first_healthz_200_is_taken(aegis_env, tmp_path):
    """`/healthz` says 200 only when alerts are taken: the first POST after it succeeds."""
    aegis_env.pop("AEGIS_PACKS_DIR", None)  # the repository's packs: the real webhook sensor
    # The alert starts a remediation (a cold diagnosis on a busy machine): the stop below
    # gives it a short drain, this test is about readiness (draining has its own test).
    aegis_env["AEGIS_SHUTDOWN_GRACE"] = "5"
    port = _aegis_config(Path(aegis_env["AEGIS_HOME"]), tmp_path)
    log_file = tmp_path / "runtime.log"
    proc = start_runtime(aegis_env, log_file)
    health_url = f"http://{aegis_env['AEGIS_API_LISTEN']}/healthz"
    seen: list[tuple[int, str]] = []

    def ready():
        assert proc.poll() is None, log_file.read_text()
        try:
            response = requests.get(health_url, timeout=2)
        except requests.ConnectionError:
            return False  # the runtime is still loading packs: nothing listens yet
        seen.append((response.status_code, response.json()["status"]))
        return response.status_code == 200 and response.json()

    try:
        health = wait_for(ready, timeout=240, interval=0.02, what="/healthz to answer 200")
        # At once, no retry: the webhook takes the alert.
        body = (Path(__file__).parent / "fixtures" / "alertmanager" / "two_firing.json").read_text()
        posted = requests.post(f"http://127.0.0.1:{port}/alertmanager", data=body,
                               headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
        assert posted.status_code == 200, posted.text
        assert all(s["ready"] and s["running"] for s in health["sensors"].values()), health
        assert "aegis.AlertmanagerWebhookSensor" in health["sensors"]
        assert health["worker_pools"] == {"aegis": {"ready": True}}
        assert all(code == 503 and status == "starting" for code, status in seen[:-1]), seen
        live = requests.get(f"http://{aegis_env['AEGIS_API_LISTEN']}/livez", timeout=5)
        assert live.status_code == 200 and live.json() == {"status": "alive", "stopping": False}
        assert requests.get(f"http://{aegis_env['AEGIS_API_LISTEN']}/readyz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    log = log_file.read_text()
    assert f"http://127.0.0.1:{port}/alertmanager" in log, "the console says where the webhook listens"
    assert "restarting" not in log


def test_healthz_is_starting_until_the_sensor_is_ready(service_env, tmp_path):
    """Served before sensors start: 503 "starting" (never 200 with no sensors), then 200."""
    # The sensor's setup() blocks until this file exists: the runtime is up, the sensor is not.
    gate = tmp_path / "gate"
    service_env["SVCTEST_SETUP_GATE"] = str(gate)
    log_file = tmp_path / "runtime.log"
    proc = start_runtime(service_env, log_file)
    url = f"http://{service_env['AEGIS_API_LISTEN']}/healthz"

    def answered():
        assert proc.poll() is None, log_file.read_text()
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            return None

    try:
        # (a Response is falsy for a 503: wrap it)
        # (the sensor is listed before its process runs: wait until it runs, its setup() held)
        (response,) = wait_for(lambda: (r := answered()) is not None
                               and r.json()["sensors"].get("svctest.TickSensor", {}).get("running") and (r,),
                               what="/healthz listing the sensor's process as running")
        assert response.status_code == 503 and response.json()["status"] == "starting"
        assert response.json()["sensors"]["svctest.TickSensor"] == {"running": True, "ready": False, "restarts": 0}
        gate.write_text("go")
        wait_for(lambda: (r := answered()) is not None and r.status_code == 200, what="/healthz 200")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_ctrl_c_stops_without_restarting_a_sensor(service_env):
    """Ctrl-C reaches the whole foreground process group: sensors must not see it first."""
    proc = start_service(service_env, new_session=True)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does
    assert proc.wait(timeout=30) == 0
    log = proc.log_file.read_text()
    assert "restarting" not in log and "stopped" in log, log
