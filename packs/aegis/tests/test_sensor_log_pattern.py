"""aegis.LogPatternSensor: pattern windows, config errors, and tail -F over real files."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time

from log_pattern_sensor import ConfigError, LogPatternSensor, Pattern, PatternMatcher, _message_lines
from st2tests.base import BaseSensorTestCase

SEQ = {"name": "seq", "regex": r"FATAL seq=(?P<seq>\d+)", "threshold": 1, "window": 60, "cooldown": 0, "severity": "critical"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class PatternMatcherTest(BaseSensorTestCase):
    sensor_cls = LogPatternSensor

    def matcher(self, **overrides):
        item = {"name": "oom", "regex": r"OOM killed (?P<service>\w+)", "threshold": 3, "window": 10, "cooldown": 30,
                "severity": "critical", **overrides}  # fmt: skip
        clock = FakeClock()
        return PatternMatcher([Pattern.from_config(item, 0)], max_lines=2, max_line_chars=20, clock=clock), clock

    def test_threshold_within_window_then_cooldown(self):
        m, clock = self.matcher()
        self.assertEqual(m.feed("OOM killed api", "f"), [])
        clock.now += 5
        self.assertEqual(m.feed("OOM killed api", "f"), [])
        clock.now += 1
        (payload,) = m.feed("OOM killed api and a very long tail of text", "f")
        self.assertEqual((payload["pattern"], payload["count"], payload["threshold"], payload["window"]), ("oom", 3, 3, 10.0))
        self.assertEqual(payload["fields"], {"service": "api"})
        self.assertEqual(payload["lines"], ["OOM killed api", "OOM killed api and …"])  # last 2, clipped to 20
        self.assertEqual((payload["severity"], payload["source"]), ("critical", "f"))
        for _ in range(5):  # cooling down: no trigger however many matches
            clock.now += 1
            self.assertEqual(m.feed("OOM killed api", "f"), [])
        clock.now += 30  # cooled down; the matches seen meanwhile have left the window
        self.assertEqual(m.feed("OOM killed api", "f") + m.feed("OOM killed api", "f"), [])
        self.assertEqual(len(m.feed("OOM killed api", "f")), 1)

    def test_matches_outside_the_window_do_not_count(self):
        m, clock = self.matcher(cooldown=0)
        m.feed("OOM killed api", "f")
        clock.now += 11
        m.feed("OOM killed api", "f")
        clock.now += 11
        self.assertEqual(m.feed("OOM killed api", "f"), [])
        self.assertEqual(len(m.feed("OOM killed api", "f") + m.feed("OOM killed api", "f")), 1)

    def test_group_by_counts_each_value_apart(self):
        m, _clock = self.matcher(threshold=2, group_by=["service"])
        self.assertEqual(m.feed("OOM killed api", "f") + m.feed("OOM killed db", "f"), [])
        (payload,) = m.feed("OOM killed db", "f")
        self.assertEqual(payload["fields"], {"service": "db"})

    def test_non_matching_lines_are_ignored(self):
        m, _ = self.matcher(threshold=1)
        self.assertEqual(m.feed("all good", "f"), [])

    def test_config_errors_name_the_pattern(self):
        cases = {
            "log pattern 'broken': invalid regex": [{"name": "broken", "regex": "(unclosed"}],
            "threshold must be an integer >= 1": [{"name": "t", "regex": "x", "threshold": 0}],
            "window must be a positive number": [{"name": "w", "regex": "x", "window": -1}],
            "severity must be one of": [{"name": "s", "regex": "x", "severity": "apocalyptic"}],
            "group_by names ['svc'] are not named groups": [{"name": "g", "regex": "(?P<service>x)", "group_by": ["svc"]}],
            "log pattern names must be unique": [{"name": "d", "regex": "x"}, {"name": "d", "regex": "y"}],
            "log_patterns[0] needs a non-empty name": [{"regex": "x"}],
        }
        for message, patterns in cases.items():
            with self.assertRaises(ConfigError) as caught:
                self.get_sensor_instance(config={"log_patterns": patterns}).setup()
            self.assertIn(message, str(caught.exception))

    def test_json_records_and_multi_line_messages(self):
        self.assertEqual(_message_lines("a\nb\n"), (["a", "b"], {}))
        lines, extra = _message_lines('{"message": "FATAL seq=1", "host": "web-1", "nested": {"x": 1}}')
        self.assertEqual((lines, extra), (["FATAL seq=1"], {"host": "web-1"}))
        self.assertEqual(_message_lines("{not json"), (["{not json"], {}))


class FileTailTest(BaseSensorTestCase):
    sensor_cls = LogPatternSensor

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="aegis-tail-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.log = os.path.join(self.dir, "app.log")

    def sensor(self, **sources):
        sensor = self.get_sensor_instance(config={
            "log_patterns": [SEQ],
            "log_sources": {"files": [os.path.join(self.dir, "*.log")], "poll_interval": 0.05, **sources},
        })  # fmt: skip
        sensor.setup()
        return sensor

    def write(self, *seqs, path=None, mode="a"):
        with open(path or self.log, mode) as fh:
            for seq in seqs:
                fh.write(f"2024-05-01 INFO something\n2024-05-01 FATAL seq={seq} boom\n")

    def seqs(self):
        return [int(t["payload"]["fields"]["seq"]) for t in self.get_dispatched_triggers()]

    def test_starts_at_the_end_of_existing_files(self):
        self.write(1, 2)
        sensor = self.sensor()
        sensor.poll_files()
        self.write(3)
        sensor.poll_files()
        self.assertEqual(self.seqs(), [3])
        payload = self.get_last_dispatched_trigger()["payload"]
        self.assertEqual((payload["source"], payload["lines"]), (self.log, ["2024-05-01 FATAL seq=3 boom"]))

    def test_a_file_appearing_later_is_read_from_its_start(self):
        sensor = self.sensor()
        sensor.poll_files()
        self.write(1, 2, path=os.path.join(self.dir, "new.log"))
        sensor.poll_files()
        self.assertEqual(self.seqs(), [1, 2])

    def test_rotation_by_rename_loses_nothing(self):
        self.write(0)
        sensor = self.sensor()
        sensor.poll_files()
        self.write(1)
        with open(self.log, "a") as fh:
            fh.write("FATAL seq=2 unterminated")  # the last line before rotation has no newline
        os.rename(self.log, self.log + ".1")
        self.write(3)
        sensor.poll_files()
        self.write(4)
        sensor.poll_files()
        self.assertEqual(self.seqs(), [1, 2, 3, 4])

    def test_truncation_restarts_from_the_beginning(self):
        self.write(0)
        sensor = self.sensor()
        sensor.poll_files()
        self.write(1)
        sensor.poll_files()
        self.write(2, mode="w")  # truncate and write less than before
        sensor.poll_files()
        self.assertEqual(self.seqs(), [1, 2])

    def test_restart_resumes_from_the_persisted_offset(self):
        self.write(0)
        first = self.sensor()
        first.poll_files()
        self.write(1, 2)
        first.poll_files()
        first.cleanup()
        self.write(3, 4)  # written while the sensor was down
        second = self.sensor()
        second.poll_files()
        self.write(5)
        second.poll_files()
        self.assertEqual(self.seqs(), [1, 2, 3, 4, 5])  # no re-read of 1-2, no skip of 3-4

    def test_rotation_while_down_reads_the_rest_of_the_old_file_first(self):
        self.write(0)
        first = self.sensor()
        first.poll_files()
        self.write(1)
        first.poll_files()
        first.cleanup()
        self.write(2)  # lands in the old file ...
        os.rename(self.log, os.path.join(self.dir, "app.log.1"))
        self.write(3)  # ... then the new one
        second = self.sensor()
        second.poll_files()
        self.assertEqual(self.seqs(), [1, 2, 3])

    def test_partial_lines_wait_for_their_newline(self):
        sensor = self.sensor()
        sensor.poll_files()
        with open(self.log, "a") as fh:
            fh.write("FATAL seq=7 half")
        sensor.poll_files()
        self.assertEqual(self.seqs(), [])
        with open(self.log, "a") as fh:
            fh.write(" done\n")
        sensor.poll_files()
        self.assertEqual(self.get_last_dispatched_trigger()["payload"]["lines"], ["FATAL seq=7 half done"])

    def test_overlong_lines_are_clipped_not_fatal(self):
        sensor = self.sensor(max_line_bytes=64)
        sensor.poll_files()
        with open(self.log, "a") as fh:
            fh.write("FATAL seq=9 " + "x" * 10_000 + "\nFATAL seq=10\n")
        sensor.poll_files()
        self.assertEqual(self.seqs(), [9, 10])
        self.assertEqual(len(self.get_dispatched_triggers()[0]["payload"]["lines"][0]), 64)

    def test_deleted_files_are_released(self):
        self.write(0)
        sensor = self.sensor()
        sensor.poll_files()
        os.unlink(self.log)
        sensor.poll_files()
        self.assertEqual(sensor._followers, {})
        self.assertIsNone(self.sensor_service.get_value("offset:" + self.log, local=True))

    def test_a_failed_dispatch_is_retried_not_skipped(self):
        sensor = self.sensor()
        sensor.poll_files()
        self.write(1)
        self.sensor_service.fail_dispatch = OSError("database is locked")
        with self.assertRaises(OSError):
            sensor.poll_files()
        self.sensor_service.fail_dispatch = None
        sensor.poll_files()
        self.assertEqual(self.seqs(), [1])

    def test_run_and_cleanup_in_threads(self):
        sensor = self.sensor()
        thread = threading.Thread(target=sensor.run, daemon=True)
        thread.start()
        time.sleep(0.2)
        self.write(1)
        deadline = time.monotonic() + 5
        while not self.get_dispatched_triggers() and time.monotonic() < deadline:
            time.sleep(0.05)
        sensor.cleanup()
        thread.join(5)
        self.assertFalse(thread.is_alive())
        self.assertEqual(self.seqs(), [1])
        self.assertTrue(re.match(r"\d{4}-\d\d-\d\dT", self.get_last_dispatched_trigger()["payload"]["first_seen"]))
