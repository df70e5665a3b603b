"""WAL checkpoints off the committing threads (``checkpoint_in_background``), as sensor processes use them.

A commit never copies the WAL back into the database file itself any more (that copy and
its fsync made one webhook request in a few hundred wait milliseconds); a thread of the
process does it after commits. Observed through the database file: only a checkpoint
writes pages into it while a connection is open.
"""

from __future__ import annotations

import os

from conftest import wait_for

from st2lite.pack_env.pack_runtime.records import Records


def _fill(records: Records, count: int) -> None:
    for start in range(0, count, 100):
        records.record_trigger_instances([(f"{n:024x}", "t.t", {"n": n, "pad": "x" * 500}, None, None)
                                          for n in range(start, start + 100)])  # fmt: skip


def test_commits_leave_the_wal_to_the_background_checkpointer(tmp_path):
    plain = Records(str(tmp_path / "plain.sqlite"))
    assert plain._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000, "SQLite's default elsewhere"

    records = Records(str(tmp_path / "history.sqlite"))
    records.checkpoint_in_background()
    assert records._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0, "commits no longer checkpoint"
    empty = os.path.getsize(records.path)
    _fill(records, 3000)  # ~1.7 MB, under SQLite's own threshold (1000 pages): only our thread copies it
    wait_for(lambda: os.path.getsize(records.path) > empty + 1_000_000, timeout=60, what="the background checkpoint to copy the WAL")
    assert len(records.pending_trigger_instances(limit=10_000)) == 3000
