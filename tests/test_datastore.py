"""st2's datastore semantics: scopes, local keys, TTL, persistence across processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO

from st2lite.pack_env.pack_runtime.datastore import DatastoreService, KeyValueStore


@pytest.fixture
def store(tmp_path):
    return KeyValueStore(str(tmp_path / "datastore.sqlite"))


def test_values_are_strings_and_scopes_are_separate(store):
    store.set("aegis.mode", "monitor")
    store.set("aegis.mode", "auto", scope="user")
    store.set("count", 3)
    assert store.get("aegis.mode") == "monitor"
    assert store.get("aegis.mode", scope="user") == "auto"
    assert store.get("count") == "3"
    assert store.get("missing") is None
    with pytest.raises(ValueError, match="invalid datastore scope"):
        store.get("x", scope="global")


def test_local_keys_are_prefixed_with_pack_and_class(store):
    sensor = DatastoreService(store, "aegis", "LogPatternSensor")
    action = DatastoreService(store, "aegis", "RecordIncident")
    sensor.set_value("offset", "10")
    action.set_value("offset", "99")
    assert sensor.get_value("offset") == "10" and action.get_value("offset") == "99"
    assert store.get("aegis.LogPatternSensor:offset") == "10"
    sensor.set_value("shared", "yes", local=False)
    assert action.get_value("shared", local=False) == "yes"
    assert [p.name for p in sensor.list_values()] == ["aegis.LogPatternSensor:offset"]
    assert sensor.delete_value("offset") and sensor.get_value("offset") is None
    assert not sensor.delete_value("offset")


class Clock:
    """A controlled clock: TTLs expire when the test says so, not after a sleep."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_keys_disappear(tmp_path):
    clock = Clock()
    store = KeyValueStore(str(tmp_path / "kv.sqlite"), clock=clock)
    store.set("short", "v", ttl=1)
    store.set("long", "v", ttl=60)
    clock.now += 0.999
    assert store.get("short") == "v"
    clock.now += 0.002
    assert store.get("short") is None
    assert [p.name for p in store.list()] == ["long"]
    with pytest.raises(ValueError, match="ttl"):
        store.set("bad", "v", ttl=0)


def test_list_by_prefix_with_limit_and_offset(store):
    for i in range(5):
        store.set(f"aegis.incident.{i}", str(i))
    store.set("other", "x")
    assert [p.name for p in store.list(prefix="aegis.incident.", limit=2, offset=1)] == ["aegis.incident.1", "aegis.incident.2"]
    assert len(store.list(prefix="aegis.")) == 5


def test_set_if_absent_is_atomic_and_respects_ttl(tmp_path):
    clock = Clock()
    store = KeyValueStore(str(tmp_path / "kv.sqlite"), clock=clock)
    assert store.set_if_absent("lock", "a", ttl=1)
    assert not store.set_if_absent("lock", "b")
    clock.now += 1
    assert store.set_if_absent("lock", "c")
    assert store.get("lock") == "c"


def test_secret_values_are_masked_when_listed(store):
    store.set("aegis.token", "s3cr3t", secret=True)
    pair = store.get_pair("aegis.token")
    assert pair.to_dict()["value"] == "********"
    assert pair.to_dict(mask_secret=False)["value"] != "s3cr3t", "stored encrypted"
    assert store.get_pair("aegis.token", decrypt=True).to_dict(mask_secret=False)["value"] == "s3cr3t"


def test_values_written_by_another_process_are_seen(store):
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r});"
        "from st2lite.pack_env.pack_runtime.datastore import KeyValueStore;"
        f"KeyValueStore({store.path!r}).set('from.child', 'hello')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert store.get("from.child") == "hello"
    assert KeyValueStore(store.path).get("from.child") == "hello", "persisted, not per-process"


def _committed(store: KeyValueStore, name: str) -> str | None:
    """What another connection (another process) reads: only committed state."""
    return KeyValueStore(store.path).get(name)


def test_a_transaction_block_reads_its_own_writes_and_commits_them_together(store):
    store.set("kept", "old")
    store.set("gone", "x")
    with store.transaction():
        store.prefetch(["kept", "gone", "absent"])
        assert store.get("kept") == "old" and store.get("absent") is None
        store.set("kept", "new")
        store.set("added", "1")
        assert store.delete("gone") and not store.delete("absent")
        store.set("added", "2")  # the last write of a key wins
        assert (store.get("kept"), store.get("added"), store.get("gone")) == ("new", "2", None)
        assert _committed(store, "kept") == "old", "nothing is visible before the commit"
        assert [p.name for p in store.list()] == ["added", "kept"], "a listing sees the block's writes"
        with store.transaction():  # nested: joins the outer block
            store.set("inner", "y")
        assert _committed(store, "inner") is None
    assert [(p.name, p.value) for p in KeyValueStore(store.path).list()] == [("added", "2"), ("inner", "y"), ("kept", "new")]


def test_a_failed_transaction_block_writes_nothing(store):
    store.set("kept", "old")
    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        store.set("kept", "new")
        store.delete("kept")
        store.set("added", "1")
        raise RuntimeError("boom")
    assert (store.get("kept"), store.get("added")) == ("old", None)
    with store.transaction():  # the thread's next block starts clean
        assert store.get("kept") == "old"


def test_a_transaction_block_keeps_ttl_and_secrets(tmp_path):
    clock = Clock()
    store = KeyValueStore(str(tmp_path / "kv.sqlite"), clock=clock)
    with store.transaction():
        store.set("short", "v", ttl=1)
        store.set("token", "s3cr3t", secret=True)
        assert store.get("token") != "s3cr3t" and store.get("token", decrypt=True) == "s3cr3t"
        clock.now += 1
        assert store.get("short") is None, "expired inside the block as outside"
    assert store.get_pair("token").secret and store.get("token", decrypt=True) == "s3cr3t"
    assert store.get("short") is None and KeyValueStore(store.path, clock=lambda: clock.now - 1).get("short") == "v"
    with pytest.raises(RuntimeError, match="outside transaction"), store.transaction():
        store.set_if_absent("lock", "a")
