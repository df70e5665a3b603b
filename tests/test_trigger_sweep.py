"""The trigger processor's sweep and its grace (``SWEEP_GRACE``), on a controlled clock.

A sensor records a trigger instance and then announces it once everything it wrote with
it is durable; its group commit commits the history first and the datastore just after.
So an instance no one announced is taken by the sweep only once it is ``SWEEP_GRACE``
seconds old, when its datastore half is surely visible. What the sweep guarantees:

- an announced instance is processed at once, whatever its age;
- an unannounced pending one younger than the grace is left pending;
- an unannounced pending one as old as the grace or older is processed;
- one left ``processing`` by a runtime that stopped mid-way is processed at once;
- a processed one is never taken again (no second dispatch of its rules).

The runtime's own processor thread is not started: each pass is called with the time it
runs at, so nothing here waits or sleeps.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from conftest import FIXTURE_PACKS

from st2lite.engine import SWEEP_GRACE
from st2lite.pack_env.pack_runtime import records as rec


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def runtime(make_runtime):
    runtime = make_runtime(FIXTURE_PACKS / "svctest")
    (rule,) = [r for r in runtime.rules if r.trigger_type == "svctest.tick"]
    # Every tick matches, and enforcing names an action that does not exist: each dispatch
    # of the rule leaves exactly one (failed) enforcement and starts nothing.
    runtime.rules = [dataclasses.replace(rule, criteria={}, meta={**rule.meta, "criteria": {}}, action_ref="svctest.absent")]
    return runtime


def _tick(runtime, n: int) -> tuple[str, float]:
    """Record a tick as a sensor's dispatch does; (its id, when it was recorded)."""
    ti_id = runtime.records.record_trigger_instance("svctest.tick", {"n": n}, sensor="svctest.TickSensor")
    return ti_id, _epoch(runtime.records.get_trigger_instance(ti_id)["occurrence_time"])


def _status(runtime, ti_id: str) -> str:
    return runtime.records.get_trigger_instance(ti_id)["status"]


def _dispatches(runtime, ti_id: str) -> int:
    return len(runtime.records.list_rule_enforcements(ti_id))


def test_an_unannounced_trigger_younger_than_the_grace_stays_pending_and_an_older_one_is_swept(runtime):
    ti_id, recorded_at = _tick(runtime, 1)
    assert runtime.sweep_trigger_instances(set(), recorded_at) == []
    assert runtime.sweep_trigger_instances(set(), recorded_at + SWEEP_GRACE - 0.001) == []
    assert (_status(runtime, ti_id), _dispatches(runtime, ti_id)) == ("pending", 0), "taken inside the grace"

    assert runtime.sweep_trigger_instances(set(), recorded_at + SWEEP_GRACE + 0.001) == [ti_id]
    assert (_status(runtime, ti_id), _dispatches(runtime, ti_id)) == ("processing_failed", 1)

    # Later passes, announced or not, never dispatch it again.
    assert runtime.sweep_trigger_instances({ti_id}, recorded_at + 10 * SWEEP_GRACE) == []
    assert _dispatches(runtime, ti_id) == 1


def test_the_grace_is_per_instance(runtime):
    old_id, old_at = _tick(runtime, 1)
    young_id, young_at = _tick(runtime, 2)
    # A moment when the first is past the grace and the second is not (they were
    # recorded microseconds apart: the moment is placed between their deadlines).
    young_at = max(young_at, old_at + 0.002)
    runtime.records._conn().execute("UPDATE trigger_instances SET occurrence_time=? WHERE id=?",
                                    (rec.timestamp(young_at), young_id))  # fmt: skip
    now = old_at + SWEEP_GRACE + 0.001
    assert runtime.sweep_trigger_instances(set(), now) == [old_id]
    assert _status(runtime, young_id) == "pending"
    assert runtime.sweep_trigger_instances(set(), young_at + SWEEP_GRACE + 0.001) == [young_id]


def test_an_announced_trigger_is_processed_at_once_and_only_once(runtime):
    ti_id, recorded_at = _tick(runtime, 1)
    other_id, _ = _tick(runtime, 2)
    announced = {ti_id}
    assert runtime.sweep_trigger_instances(announced, recorded_at) == [ti_id]
    assert announced == set(), "an announcement is used up by processing"
    assert _dispatches(runtime, ti_id) == 1
    assert _status(runtime, other_id) == "pending", "its neighbour, not announced, waits for the grace"
    assert runtime.sweep_trigger_instances({ti_id}, recorded_at) == []  # a repeated announcement
    assert _dispatches(runtime, ti_id) == 1


def test_a_trigger_left_processing_by_a_stopped_runtime_is_taken_at_once(runtime):
    ti_id, recorded_at = _tick(runtime, 1)
    runtime.records.set_trigger_instance_status(ti_id, rec.TI_PROCESSING)  # the previous runtime died here
    assert runtime.sweep_trigger_instances(set(), recorded_at) == [ti_id]
    assert (_status(runtime, ti_id), _dispatches(runtime, ti_id)) == ("processing_failed", 1)
