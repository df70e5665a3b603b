"""Command line for the pack's knowledge, diagnosis and evaluation (runs in the pack venv).

    python packs/aegis/actions/lib/aegis_cli.py [--config aegis.yaml] knowledge index [--force]
    python packs/aegis/actions/lib/aegis_cli.py knowledge search "pods OOMKilled after deploy" -k 5
    python packs/aegis/actions/lib/aegis_cli.py knowledge status
    python packs/aegis/actions/lib/aegis_cli.py knowledge serve [--port 9182]
    python packs/aegis/actions/lib/aegis_cli.py diagnose --context incident.json   (or - for stdin)
    python packs/aegis/actions/lib/aegis_cli.py eval tests/data/diagnosis_dev.jsonl [--offline] [--json]
    python packs/aegis/actions/lib/aegis_cli.py incident list [--status open|closed] [--json]
    python packs/aegis/actions/lib/aegis_cli.py incident show inc-0123456789abcdef [--json]

The ``aegis`` CLI of the runtime execs this file for ``aegis knowledge|diagnose|eval|incident``.
``incident`` reads st2lite's datastore (``$AEGIS_HOME/datastore.sqlite``); on StackStorm the
same records are datastore keys (``st2 key list --prefix aegis.incident``).
``--config`` is the pack config YAML (as st2 reads /opt/stackstorm/configs/aegis.yaml);
defaults come from the pack's ``config.schema.yaml``. Exit status: 0 ok, 1 failure
(e.g. eval with unsafe decisions), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

PACK_DIR = Path(__file__).resolve().parents[2]


def schema_defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """The defaults a config schema declares, nested objects included (as st2 applies them)."""
    out: dict[str, Any] = {}
    for key, spec in (schema or {}).items():
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "object" and isinstance(spec.get("properties"), dict):
            nested = schema_defaults(spec["properties"])
            base = spec.get("default") if isinstance(spec.get("default"), dict) else {}
            out[key] = {**nested, **base}
        elif "default" in spec:
            out[key] = spec["default"]
    return out


def _merge(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_pack_config(path: str | Path | None, schema_path: str | Path | None = None) -> dict[str, Any]:
    """Read the pack config YAML (absent → {}) and fill in the schema's defaults."""
    schema_file = Path(schema_path) if schema_path else PACK_DIR / "config.schema.yaml"
    schema = yaml.safe_load(schema_file.read_text()) if schema_file.exists() else {}
    values: dict[str, Any] = {}
    if path and Path(path).exists():
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as exc:
            raise SystemExit(f"error: {path} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise SystemExit(f"error: {path} must hold a mapping")
        values = loaded or {}
    return _merge(schema_defaults(schema or {}), values)


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
    from evaluation import evaluate, format_table, load_cases

    report = evaluate(load_cases(args.file), config, offline=args.offline)
    print(format_table(report))
    if args.json:
        print(json.dumps(report["totals"]))
    return 0 if report["totals"]["unsafe"] == 0 and report["totals"]["errors"] == 0 else 1


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

    from knowledge import KnowledgeError

    try:
        if args.command == "knowledge":
            return cmd_knowledge(args, config)
        if args.command == "diagnose":
            return cmd_diagnose(args, config)
        if args.command == "incident":
            return cmd_incident(args, config)
        return cmd_eval(args, config)
    except (KnowledgeError, DiagnosisInputError, EvalInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
