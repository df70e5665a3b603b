"""The demo: break a service, watch Aegis fix it (or escalate), see the MTTR and what it saved.

    .venv/bin/python -m demo.run [SCENARIO ...] [--cost-per-minute 200] [--manual-mttr-minutes 20]

Run through ``scripts/demo.sh``. Starts the whole stack (``demo.stack.Stack``), runs the named
scenarios (default: all of ``demo.scenarios.SCENARIOS``, in order), prints one line per stage
of each incident and a table at the end. Ctrl-C (or SIGTERM) stops everything it started;
the last line says whether anything was left listening. Exit status 0 when every scenario
ended as expected.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from demo.scenarios import SCENARIOS, ScenarioResult, run_scenario, settle
from demo.stack import Stack, StackError


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3] if ts else "-"


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def table(results: list[ScenarioResult], cost_per_minute: float, manual_mttr_minutes: float) -> str:
    """The summary: one row per scenario, and the total downtime cost avoided."""
    header = ["scenario", "detected at", "action", "verified at", "MTTR", "outcome", "cost avoided", "as expected"]
    rows, total = [], 0.0
    for r in results:
        run = r.run
        mttr = run.mttr_seconds if run else None
        avoided = 0.0
        if run and run.outcome == "resolved" and mttr is not None:
            avoided = max(0.0, manual_mttr_minutes - mttr / 60) * cost_per_minute
        total += avoided
        rows.append([r.scenario.name, _clock(run.notified if run else None), run.action if run else "-",
                     _clock(run.verified if run else None), _seconds(mttr), run.outcome if run else "no workflow",
                     f"${avoided:,.0f}", "yes" if r.ok else "NO: " + "; ".join(r.problems)])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip()
             for row in [header, ["-" * w for w in widths], *rows]]
    lines.append(f"MTTR: Alertmanager's notification reaching Aegis -> verified healthy. Cost avoided: "
                 f"(manual MTTR {manual_mttr_minutes:g} min - Aegis's) x ${cost_per_minute:,.0f}/min, for incidents "
                 f"Aegis resolved; total ${total:,.0f}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.sh", description=__doc__.split("\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--cost-per-minute", type=float, default=200.0, help="downtime cost per minute (default $200)")
    parser.add_argument("--manual-mttr-minutes", type=float, default=20.0,
                        help="a human's time to resolve, the baseline (default 20 minutes)")
    parser.add_argument("--dir", help="keep the stack's files here (default: a temporary directory, removed)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    # Always in the table's order (a recent deploy is a suspect for every later alert: bad_release goes last).
    chosen = [s for s in SCENARIOS.values() if not args.scenarios or s.name in args.scenarios]

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="aegis-demo-"))
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"{datetime.now():%H:%M:%S}  {line}", flush=True)

    stack = Stack(base, log=say)
    results: list[ScenarioResult] = []
    code = 0
    try:
        stack.start()
        say(f"ready in {time.monotonic() - started:.0f} s: victim {stack.victim_url}, Prometheus {stack.prometheus_url}, "
            f"Alertmanager {stack.alertmanager_url}, Aegis (mode auto) {stack.webhook_url}")
        for scenario in chosen:
            settle(stack)
            results.append(run_scenario(stack, scenario, progress=say))
        print()
        print(table(results, args.cost_per_minute, args.manual_mttr_minutes))
        code = 0 if all(r.ok for r in results) else 1
    except KeyboardInterrupt:
        say("interrupted")
        code = 130
    except StackError as exc:
        say(f"error: {exc} (files in {base})")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping everything the demo started")
        stack.stop()
        left = stack.listening_ports()
        say("nothing left listening" if not left else f"still listening on {left}")
        if not args.dir and code == 0:
            shutil.rmtree(base, ignore_errors=True)
        elif code:
            say(f"logs kept in {base}/logs")
    return code


if __name__ == "__main__":
    sys.exit(main())
