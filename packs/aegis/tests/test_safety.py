"""The guards of lib/safety.py on the st2 datastore, with a controlled clock."""

from __future__ import annotations

from restart import Restart
from safety import Guards
from st2tests.base import BaseActionTestCase


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class GuardsTest(BaseActionTestCase):
    action_cls = Restart

    def guards(self, clock, **safety):
        return Guards(self.get_action_instance().action_service, {"mode": "auto", "safety": safety}, clock=clock)

    def test_cooldown_per_target_and_action(self):
        clock = Clock()
        g = self.guards(clock)
        g.record("inc-1", "restart", "checkout")
        clock.now += 599
        self.assertIn("cooldown: restart of checkout ran 599s ago", g.refusal("inc-2", "restart", "checkout"))
        self.assertIsNone(g.refusal("inc-2", "restart", "payments"))     # another target
        self.assertIsNone(g.refusal("inc-2", "scale_up", "checkout"))    # another action
        clock.now += 2
        self.assertIsNone(g.refusal("inc-2", "restart", "checkout"))

    def test_rate_limit_per_target_per_hour(self):
        clock = Clock()
        g = self.guards(clock, max_actions_per_target_per_hour=3, cooldown_seconds=0)
        for i in range(3):
            g.record(f"inc-{i}", "restart", "checkout")
            clock.now += 60
        self.assertIn("rate limit: 3 actions on checkout in the last hour", g.refusal("inc-9", "restart", "checkout"))
        clock.now += 3600 - 170   # the first one is now more than an hour old
        self.assertIsNone(g.refusal("inc-9", "restart", "checkout"))

    def test_loop_guard_per_incident(self):
        clock = Clock()
        g = self.guards(clock, cooldown_seconds=0)
        g.record("inc-1", "restart", "a")
        g.record("inc-1", "rollback", "b")
        self.assertIn("loop guard: incident inc-1 already had 2 automated actions (restart, rollback)", g.refusal("inc-1", "scale_up", "c"))
        self.assertIsNone(g.refusal("inc-2", "scale_up", "c"))

    def test_mode_is_read_from_the_datastore_each_time(self):
        g = self.guards(Clock())
        self.assertIsNone(g.refusal("inc-1", "restart", "a"))
        self.get_action_instance().action_service.set_value("aegis.mode", "monitor", local=False)
        self.assertEqual(g.refusal("inc-1", "restart", "a"), "mode is monitor (datastore): Aegis does not act")

    def test_targets_with_any_characters_get_distinct_keys(self):
        clock = Clock()
        g = self.guards(clock)
        g.record("inc-1", "restart", "a/b")
        self.assertIsNone(g.refusal("inc-2", "restart", "a_b"))
        self.assertIsNotNone(g.refusal("inc-2", "restart", "a/b"))
