"""aegis.cleanup_disk: only configured safe paths, old enough files of the right kind; bytes reported."""

from __future__ import annotations

import os
import tempfile
import time

from cleanup_disk import CleanupDisk
from st2tests.base import BaseActionTestCase

OLD = time.time() - 48 * 3600


class CleanupDiskTest(BaseActionTestCase):
    action_cls = CleanupDisk

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = self.tmp.name

    def make(self, rel: str, size: int, old: bool = True) -> str:
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(b"x" * size)
        if old:
            os.utime(path, (OLD, OLD))
        return path

    def config(self, paths):
        return {"mode": "auto", "cleanup": {"paths": paths}}

    def test_rotated_logs_and_container_logs(self):
        rotated = self.make("log/app.log.1", 1000)
        gz = self.make("log/app.log.2.gz", 500)
        live = self.make("log/app.log", 700)
        fresh = self.make("log/app.log.3", 300, old=False)
        container = self.make("containers/abc/abc-json.log", 2000)
        link = os.path.join(self.root, "log", "data.1")
        os.symlink(live, link)
        config = self.config([{"path": os.path.join(self.root, "log"), "kind": "rotated_logs", "older_than_hours": 24},
                              {"path": os.path.join(self.root, "containers"), "kind": "container_logs", "older_than_hours": 1}])
        dry = self.get_action_instance(config).run(incident_id="inc-1", target="node-1")
        self.assertEqual(dry["plan"]["bytes"], 3500)
        self.assertEqual(sorted(f["path"] for f in dry["plan"]["files"]), sorted([rotated, gz, container]))
        self.assertTrue(all(os.path.exists(p) for p in (rotated, gz, container)))
        report = self.get_action_instance(config).run(incident_id="inc-1", target="node-1", dry_run=False)
        self.assertEqual(report["result"]["bytes_freed"], 3500)
        self.assertFalse(os.path.exists(rotated) or os.path.exists(gz))
        self.assertEqual(os.path.getsize(container), 0)   # truncated, not unlinked: docker still writes it
        self.assertTrue(os.path.exists(live) and os.path.exists(fresh) and os.path.islink(link))

    def test_protected_and_unconfigured_paths_are_refused(self):
        with self.assertRaisesRegex(Exception, "protected /var/lib/postgresql"):
            self.get_action_instance(self.config([{"path": "/var/lib/postgresql/15/main", "kind": "tmp"}])).run(
                incident_id="inc-2", target="db", dry_run=False)
        with self.assertRaisesRegex(Exception, "no safe paths configured"):
            self.get_action_instance(self.config([])).run(incident_id="inc-2", target="db", dry_run=False)
