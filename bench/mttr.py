"""MTTR per scenario, on the demo's real stack: Alertmanager's notification reaching Aegis →
verified healthy, split into Aegis's own time and waiting.

    .venv/bin/python bench/mttr.py [-n ROUNDS] [SCENARIO ...]     # default: every scenario, 1 round

For each scenario (``demo/scenarios.py``) it breaks the victim, lets Aegis handle it in auto
mode and reads the workflow from the runtime's history (``demo/report.py``):

- ``total``: the trigger instance recorded (the notification reached the webhook sensor) →
  the ``verify`` task ended healthy;
- ``waiting``: the acting task (process restart, rollback, cleanup...), a human's approval for
  caution-class runbooks (the bench answers at once), and verify's polling until the signal
  is healthy (1 s scrape and evaluation, rule windows, ``consecutive`` polls);
- ``own``: the rest: recording, context, diagnosis, pre-check, silence, scheduling between
  tasks and verify's own overhead.

Goals: own ≤ 0.5 s p50 over the resolved runs, total ≤ 10 s for each (1 s scrape interval;
a human takes 15-30 minutes). Escalations print the time to the escalation instead. The
last line says whether the goals are met; the exit status is 1 when a scenario did not end
as expected (2 when the goals are missed), so CI can run it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo.report import epoch  # noqa: E402
from demo.scenarios import SCENARIOS, ScenarioResult, run_scenario, settle  # noqa: E402
from demo.stack import Stack  # noqa: E402

OWN_P50_GOAL = 0.5
TOTAL_GOAL = 10.0


def ended_at(result: ScenarioResult) -> float | None:
    run = result.run
    if run is None:
        return None
    return run.verified or epoch(run.execution.get("end_timestamp"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("-n", "--rounds", type=int, default=1, help="runs of each scenario (default 1)")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS.values() if not args.scenarios or s.name in args.scenarios]
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="aegis-mttr-") as base, Stack(base) as stack:
        print(f"stack ready; {len(chosen)} scenarios x {args.rounds} rounds, 1 s scrape and evaluation interval")
        print(f"{'scenario':<20} {'outcome':<10} {'action':<28} {'total':>7} {'own':>7} {'waiting':>8}  as expected")
        for _ in range(args.rounds):
            for scenario in chosen:
                settle(stack)
                result = run_scenario(stack, scenario)
                results.append(result)
                run = result.run
                end = ended_at(result)
                total = (end - run.notified) if run and end and run.notified else None
                own, waiting = (run.own_seconds, run.waiting_seconds) if run else (None, None)

                def fmt(value: float | None) -> str:
                    return f"{value:6.2f}s" if value is not None else "      -"

                print(f"{scenario.name:<20} {(run.outcome if run else 'none'):<10} {(run.action if run else '-')[:28]:<28} "
                      f"{fmt(total):>7} {fmt(own):>7} {fmt(waiting):>8}  "
                      f"{'yes' if result.ok else 'NO: ' + '; '.join(result.problems)}", flush=True)
    resolved = [r.run for r in results if r.run and r.run.outcome == "resolved" and r.run.own_seconds is not None]
    ok = all(r.ok for r in results)
    if not resolved:
        print("no scenario resolved: goals not measurable; goals met: no")
        return 1
    own_p50 = statistics.median(r.own_seconds for r in resolved)
    totals = [r.mttr_seconds for r in resolved]
    print(f"resolved runs: {len(resolved)}; own p50 {own_p50:.3f}s (max {max(r.own_seconds for r in resolved):.3f}s); "
          f"total p50 {statistics.median(totals):.2f}s, max {max(totals):.2f}s; waiting p50 "
          f"{statistics.median(r.waiting_seconds for r in resolved):.2f}s")
    stages: dict[str, list[float]] = {}
    for run in resolved:
        for name, seconds in run.own_breakdown().items():
            stages.setdefault(name, []).append(seconds)
    print("own time by stage, p50: " + ", ".join(f"{name} {statistics.median(v) * 1000:.0f} ms"
                                              for name, v in sorted(stages.items(), key=lambda kv: -statistics.median(kv[1]))))
    goals = own_p50 <= OWN_P50_GOAL and max(totals) <= TOTAL_GOAL
    print(f"goals (own p50 <= {OWN_P50_GOAL}s, every total <= {TOTAL_GOAL:g}s): "
          f"{'met' if goals else 'NOT met'}; scenarios as expected: {'all' if ok else 'NOT all'}")
    return 0 if ok and goals else (1 if not ok else 2)


if __name__ == "__main__":
    sys.exit(main())
