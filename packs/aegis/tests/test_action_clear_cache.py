"""aegis.clear_cache against a real Redis: only the configured cache prefix goes, in batches."""

from __future__ import annotations

import tempfile
import unittest

import redis
from clear_cache import ClearCache
from servers import redis as redis_server
from st2tests.base import BaseActionTestCase

SKIP = redis_server.available()


@unittest.skipIf(SKIP, SKIP or "")
class ClearCacheTest(BaseActionTestCase):
    action_cls = ClearCache

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.server = redis_server.RedisServer(cls.tmp.name)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.tmp.cleanup()

    def setUp(self):
        super().setUp()
        self.r = redis.Redis.from_url(self.server.url)
        self.r.flushall()
        pipe = self.r.pipeline()
        for i in range(1234):
            pipe.set(f"product:v1:{i}", "x")
        for i in range(50):
            pipe.set(f"session:{i}", "user")
            pipe.set(f"product:v2:{i}", "keep")
        pipe.set("product:v1*weird", "glob chars are literal")
        pipe.execute()

    def config(self, cache=True, prefixes=("product:v1:",)):
        return {"mode": "auto", "redis": {"instances": {"cache-1": {"url": self.server.url, "cache": cache,
                                                                     "prefixes": list(prefixes), "batch": 100}}}}

    def test_dry_run_counts_and_deletes_nothing(self):
        report = self.get_action_instance(self.config()).run(incident_id="inc-1", target="cache-1")
        self.assertEqual(report["plan"]["keys"], {"product:v1:": 1234})
        self.assertEqual(self.r.dbsize(), 1234 + 100 + 1)

    def test_only_the_cache_prefix_goes(self):
        report = self.get_action_instance(self.config()).run(incident_id="inc-2", target="cache-1", dry_run=False)
        self.assertEqual(report["result"]["removed"], {"product:v1:": 1234})
        self.assertEqual(self.r.dbsize(), 101)
        # SCAN may return a key twice (while Redis rehashes after many deletions): count distinct keys
        self.assertEqual(len(set(self.r.scan_iter("session:*"))), 50)
        self.assertEqual(len(set(self.r.scan_iter("product:v2:*"))), 50)
        self.assertEqual(self.r.get("product:v1*weird"), b"glob chars are literal")

    def test_an_instance_not_declared_a_cache_is_never_touched(self):
        with self.assertRaisesRegex(Exception, "not declared a cache"):
            self.get_action_instance(self.config(cache=False)).run(incident_id="inc-3", target="cache-1", dry_run=False)
        self.assertEqual(self.r.dbsize(), 1234 + 100 + 1)

    def test_no_prefix_means_nothing_is_cleared(self):
        with self.assertRaisesRegex(Exception, "no cache prefixes"):
            self.get_action_instance(self.config(prefixes=[""])).run(incident_id="inc-4", target="cache-1", dry_run=False)
        self.assertEqual(self.r.dbsize(), 1234 + 100 + 1)
