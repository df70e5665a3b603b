"""Command line for the pack's knowledge, diagnosis and evaluation (runs in the pack venv).

    python packs/aegis/actions/lib/aegis_cli.py [--config aegis.yaml] knowledge index [--force]
    python packs/aegis/actions/lib/aegis_cli.py knowledge search "pods OOMKilled after deploy" -k 5
    python packs/aegis/actions/lib/aegis_cli.py knowledge status
    python packs/aegis/actions/lib/aegis_cli.py knowledge serve [--port 9182]
    python packs/aegis/actions/lib/aegis_cli.py diagnose --context incident.json   (or - for stdin)
    python packs/aegis/actions/lib/aegis_cli.py eval tests/data/diagnosis_dev.jsonl [--offline] [--json]
    python packs/aegis/actions/lib/aegis_cli.py eval tests/data/diagnosis_dev.jsonl --offline --calibrate
    python packs/aegis/actions/lib/aegis_cli.py eval SET --offline --snapshot tests/data/snapshots/dev.json [--record]
    python packs/aegis/actions/lib/aegis_cli.py validate            # knowledge/rules/*.yaml against their schema
    python packs/aegis/actions/lib/aegis_cli.py incident list [--status open|closed] [--json]
    python packs/aegis/actions/lib/aegis_cli.py incident show inc-0123456789abcdef [--json]

The ``aegis`` CLI of the runtime execs this file for ``aegis knowledge|diagnose|eval|incident``, and
runs ``validate`` after its own checks in ``aegis validate`` (the pack's knowledge rules).
``--config`` is the pack config YAML (as st2 reads /opt/stackstorm/configs/aegis.yaml),
loaded by the runtime's own loader (``st2lite.loader.load_pack_config``: schema defaults,
validation). Exit status: 0 ok, 1 failure (eval with unsafe decisions or a snapshot
regression, invalid rules), 2 bad input.
``incident`` reads st2lite's datastore (``$AEGIS_HOME/datastore.sqlite``); on StackStorm the
same records are datastore keys (``st2 key list --prefix aegis.incident``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

PACK_DIR = Path(__file__).resolve().parents[2]


def _runtime_loader() -> Any:
    """st2lite's loader module: importable when the runtime runs this CLI, else found beside the pack."""
    try:
        import st2lite.loader as loader
    except ImportError:
        root = next((p for p in PACK_DIR.parents if (p / "st2lite" / "loader.py").is_file()), None)
        if root is None:
            raise SystemExit("error: the st2lite runtime (st2lite.loader) is not importable") from None
        sys.path.insert(0, str(root))
        import st2lite.loader as loader
    return loader


def load_pack_config(path: str | Path | None) -> dict[str, Any]:
    """The pack config as the runtime hands it to actions: the file's values, then the
    defaults of ``config.schema.yaml``, validated (``st2lite.loader.load_pack_config``)."""
    loader = _runtime_loader()
    pack = loader.load_pack(PACK_DIR)
    try:
        return loader.load_pack_config(pack, Path(path) if path else None)
    except loader.ConfigError as exc:
        raise SystemExit(f"error: invalid pack config: {exc}") from exc


def _read_context(source: str) -> dict[str, Any]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"error: context {source} is not JSON: {exc}") from exc
    # accept a dev-set line too: {"id", "accept", "context": {...}}
    if isinstance(data, dict) and "context" in data and "alert" not in data:
        data = data["context"]
    return data


def cmd_knowledge(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from knowledge_service import client_settings, rebuild, search, serve

    from knowledge import KnowledgeIndex

    settings = client_settings(config)  # the service's secret from $AEGIS_KNOWLEDGE_TOKEN, if set
    if args.knowledge_cmd == "index":
        stats, source = rebuild(settings, force=args.force)
        print(json.dumps({**stats, "index_dir": str(settings.index_dir), "via": source}))
    elif args.knowledge_cmd == "search":
        hits, source = search(settings, args.text, args.k)
        if args.json:
            print(json.dumps({"via": source, "hits": [h.to_dict() for h in hits]}))
        else:
            print(f"{'score':>6}  {'kind':<8} {'action':<12} id — title")
            for h in hits:
                print(f"{h.score:>6.3f}  {h.kind:<8} {h.action:<12} {h.id} — {h.title}")
    elif args.knowledge_cmd == "status":
        print(json.dumps(KnowledgeIndex(settings).status(), indent=1))
    elif args.knowledge_cmd == "serve":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        serve(settings, host=args.host, port=args.port)
    return 0


def cmd_diagnose(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from diagnosis import diagnose

    print(json.dumps(diagnose(_read_context(args.context), config, offline=args.offline), indent=1))
    return 0


def cmd_eval(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from evaluation import (
        calibrate,
        compare_snapshot,
        evaluate,
        format_calibration,
        format_table,
        load_cases,
        snapshot,
    )

    cases = load_cases(args.file)
    if args.calibrate:
        # every proposed action visible with its confidence: no threshold while measuring
        raw = {**config, "diagnosis": {**dict(config.get("diagnosis") or {}), "min_confidence": 0.0}}
        cal = calibrate(evaluate(cases, raw, offline=args.offline)["results"], target=args.target)
        print(format_calibration(cal))
        if args.json:
            print(json.dumps(cal))
        return 0
    report = evaluate(cases, config, offline=args.offline)
    print(format_table(report))
    status = 0 if report["totals"]["unsafe"] == 0 and report["totals"]["errors"] == 0 else 1
    if args.snapshot and not args.record:
        recorded = json.loads(Path(args.snapshot).read_text())
        failures = compare_snapshot(report, recorded)
        for line in failures:
            print(f"REGRESSION {line}")
        status = 1 if failures or report["totals"]["errors"] else 0
    elif args.snapshot:
        path = Path(args.snapshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(snapshot(report), indent=1, sort_keys=True) + "\n")
        print(f"snapshot recorded: {path}")
    if args.json:
        print(json.dumps(report["totals"]))
    return status


def cmd_validate(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """The pack's own knowledge: rule files against knowledge/rules/schema.json, their
    matchers and regexes, and the runbooks they cite."""
    from rules import find_rules_dir, validate_rules

    from knowledge import KnowledgeSettings

    section = dict(config.get("knowledge") or {})
    rules_dir = Path(section["rules_dir"]) if section.get("rules_dir") else find_rules_dir(PACK_DIR)
    runbooks_dir = KnowledgeSettings.from_config(config).runbooks_dir
    if rules_dir is None:
        print("error: no knowledge/rules directory (set knowledge.rules_dir)", file=sys.stderr)
        return 1
    problems = validate_rules(rules_dir, runbooks_dir)
    for problem in problems:
        print(problem)
    count = len(problems)
    print(f"knowledge rules {rules_dir}: " + ("valid" if not count else f"{count} problem{'s' if count != 1 else ''}"))
    return 1 if problems else 0


def _datastore() -> Any:
    import os

    from pack_runtime.datastore import DatastoreService, KeyValueStore

    home = Path(os.environ.get("AEGIS_HOME") or Path.home() / ".local" / "share" / "aegis")
    path = home / "datastore.sqlite"
    if not path.exists():
        raise OSError(f"no datastore at {path} (set AEGIS_HOME)")
    return DatastoreService(KeyValueStore(str(path)), "aegis", "cli")


def cmd_incident(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from incident_report import format_list, format_show, incident_rows, incident_view
    from incidents import UnknownIncident

    datastore = _datastore()
    if args.incident_cmd == "list":
        rows = incident_rows(datastore, status=args.status)
        print(json.dumps(rows, indent=1) if args.json else format_list(rows))
        return 0
    try:
        view = incident_view(datastore, args.id)
    except UnknownIncident as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(view, indent=1, default=str) if args.json else format_show(view))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aegis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="pack config YAML (defaults from config.schema.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    kn = sub.add_parser("knowledge", help="runbook/incident index")
    ksub = kn.add_subparsers(dest="knowledge_cmd", required=True)
    idx = ksub.add_parser("index", help="build or incrementally update the index")
    idx.add_argument("--force", action="store_true", help="re-embed everything")
    srch = ksub.add_parser("search", help="search runbooks and incidents")
    srch.add_argument("text")
    srch.add_argument("-k", type=int, default=5)
    srch.add_argument("--json", action="store_true")
    ksub.add_parser("status", help="show the index manifest")
    srv = ksub.add_parser("serve", help="run the knowledge service in the foreground")
    srv.add_argument("--host", default=None)
    srv.add_argument("--port", type=int, default=None)

    dg = sub.add_parser("diagnose", help="diagnose one incident context")
    dg.add_argument("--context", required=True, help="JSON file, or - for stdin")
    dg.add_argument("--offline", action="store_true", help="never call the LLM")

    ev = sub.add_parser("eval", help="evaluate on a labelled JSONL set")
    ev.add_argument("file")
    ev.add_argument("--offline", action="store_true")
    ev.add_argument("--json", action="store_true", help="end with one JSON line of totals")
    ev.add_argument("--calibrate", action="store_true",
                    help="print the reliability of automated decisions per min_confidence and the one to choose")
    ev.add_argument("--target", type=float, default=0.98, help="share of automated decisions that must be right")
    ev.add_argument("--snapshot", help="per-case snapshot JSON to compare with (or write, with --record)")
    ev.add_argument("--record", action="store_true", help="write --snapshot instead of comparing")

    sub.add_parser("validate", help="check knowledge/rules/*.yaml (schema, matchers, runbook references)")

    inc = sub.add_parser("incident", help="incidents: list, or one incident's timeline")
    isub = inc.add_subparsers(dest="incident_cmd", required=True)
    ilist = isub.add_parser("list", help="every incident with its state and MTTR")
    ilist.add_argument("--status", choices=["open", "closed"])
    ilist.add_argument("--json", action="store_true")
    ishow = isub.add_parser("show", help="one incident: alert, state, actions, timeline")
    ishow.add_argument("id")
    ishow.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    config = load_pack_config(args.config)
    from diagnosis import DiagnosisInputError
    from evaluation import EvalInputError
    from rules import RulesError

    from knowledge import KnowledgeError

    commands = {"knowledge": cmd_knowledge, "diagnose": cmd_diagnose, "eval": cmd_eval, "validate": cmd_validate,
                "incident": cmd_incident}
    try:
        return commands[args.command](args, config)
    except (KnowledgeError, DiagnosisInputError, EvalInputError, RulesError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
