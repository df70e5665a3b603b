"""Sensors run in their own processes, dispatch durably, and come back after a crash."""

from __future__ import annotations

import json

from conftest import FIXTURE_PACKS, wait_for

SVCTEST = FIXTURE_PACKS / "svctest"


def test_dispatch_reaches_rules_and_runs_the_workflow(make_runtime):
    runtime = make_runtime(SVCTEST)
    runtime.start()
    runtime.store.set("svctest.fire", json.dumps({"n": 7, "sleep": 0}))
    done = wait_for(
        lambda: [e for e in runtime.records.list_executions(action="svctest.slow") if e["status"] == "succeeded"],
        what="svctest.slow to succeed",
    )
    execution = done[0]
    assert execution["result"]["output"] == {"n": 7, "slept": 0}
    assert execution["rule"] == "svctest.on_tick"
    ti = runtime.records.get_trigger_instance(execution["trigger_instance_id"])
    assert ti["trigger"] == "svctest.tick" and ti["payload"] == {"n": 7, "sleep": 0}
    assert ti["status"] == "processed" and ti["trace_tag"] == "tick"
    (enforcement,) = runtime.records.list_rule_enforcements(ti["id"])
    assert enforcement["execution_id"] == execution["id"]


def test_payload_failing_the_schema_is_logged_not_dispatched(make_runtime):
    runtime = make_runtime(SVCTEST)
    runtime.start()
    runtime.store.set("svctest.fire", json.dumps({"n": "seven"}))
    log = runtime.settings.logs_dir / "sensor.svctest.TickSensor.log"
    wait_for(lambda: log.exists() and "fails its payload_schema" in log.read_text(), what="the rejection in the sensor log")
    assert "n: 'seven' is not of type 'integer'" in log.read_text()
    assert runtime.records.list_trigger_instances() == []


def test_non_matching_trigger_is_recorded_without_execution(make_runtime):
    runtime = make_runtime(SVCTEST)
    runtime.start()
    runtime.store.set("svctest.fire", json.dumps({"n": 0}))
    ti = wait_for(lambda: [t for t in runtime.records.list_trigger_instances() if t["status"] == "processed"])[0]
    assert ti["payload"] == {"n": 0, "sleep": 0}, "schema defaults are filled in, as st2's use_default does"
    assert runtime.records.list_rule_enforcements(ti["id"]) == []
    assert runtime.records.list_executions() == []


def test_crashed_sensor_is_restarted_and_keeps_its_datastore(make_runtime):
    runtime = make_runtime(SVCTEST)
    runtime.start()
    wait_for(lambda: runtime.store.get("svctest.TickSensor:starts") == "1", what="first start")
    runtime.store.set("svctest.crash", "1")
    wait_for(lambda: runtime.store.get("svctest.TickSensor:starts") == "2", what="restart after crash")
    assert runtime.health()["sensors"]["svctest.TickSensor"]["restarts"] == 1
    assert b'st2lite_sensor_restarts_total{sensor="svctest.TickSensor"} 1.0' in runtime.metrics.exposition()
    runtime.store.set("svctest.fire", json.dumps({"n": 1}))
    wait_for(lambda: runtime.records.list_executions(action="svctest.slow", status="succeeded"), what="dispatch after restart")


def test_triggers_recorded_while_the_runtime_was_down_are_processed_at_start(make_runtime, tmp_path):
    from st2lite.pack_env.pack_runtime.records import Records

    home = tmp_path / "home"
    home.mkdir()
    # A sensor recorded this trigger instance, then the runtime died before processing it.
    Records(str(home / "history.sqlite")).record_trigger_instance("svctest.tick", {"n": 2, "sleep": 0})
    runtime = make_runtime(SVCTEST, home=home)
    runtime.start(sensors=False)
    wait_for(lambda: runtime.records.list_executions(action="svctest.slow", status="succeeded"), what="the pending trigger")


def test_sensor_gets_add_trigger_for_the_triggers_rules_use(make_runtime):
    runtime = make_runtime(SVCTEST)
    runtime.start()
    seen = wait_for(lambda: runtime.store.get("svctest.TickSensor:triggers"), what="add_trigger calls")
    assert json.loads(seen) == [{"type": "svctest.tick", "parameters": {}}]
