"""``aegis``: the command line of the embedded runtime (st2's CLI, for one machine).

    aegis run                                  # serve the packs: sensors, rules, workflows
    aegis validate packs/aegis                 # check a pack as st2 would register it
    aegis rule-tester --rule R.yaml --trigger-instance TI.json
    aegis action execute core.echo message=hi  # like `st2 run`
    aegis execution list [--action REF] [--status S] [-n N] [--json]
    aegis execution get ID [--json]
    aegis trigger-instance list [--trigger REF] [-n N] [--json]
    aegis alias execute "aegis mode monitor"   # ChatOps, like `st2 action-alias execute`
    aegis alias match "aegis mode monitor"
    aegis alias list                           # every command the aliases accept
    aegis chat "aegis incident inc-0123456789abcdef"   # what the chat channel would show
    aegis key set|get|list|delete ...          # the datastore, like `st2 key`
    aegis pack setup                           # build/refresh pack virtualenvs

Any other command is handed to the pack that provides ``actions/lib/<pack>_cli.py``
(e.g. ``aegis knowledge search "disk full"``), run in that pack's virtualenv.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from .api import cli as api_cli
from .pack_env.pack_runtime.records import EXECUTION_STATUSES
from .settings import Settings, StartupError

STATUS_COLUMNS = ("id", "action", "user", "status", "start_timestamp", "end_timestamp", "rule")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, os.environ.get("AEGIS_LOG_LEVEL", "INFO").upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _records(settings: Settings):
    from .pack_env.pack_runtime.records import Records

    settings.ensure_dirs()
    return Records(str(settings.history_db))


def _elapsed(record: dict[str, Any]) -> str:
    if not record.get("end_timestamp"):
        return record["status"]
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    seconds = (datetime.strptime(record["end_timestamp"], fmt) - datetime.strptime(record["start_timestamp"], fmt)).total_seconds()
    return f"{record['status']} ({seconds:.1f}s elapsed)"


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain text table, widths from the content, as st2's CLI prints one."""
    cells = [[str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(rule)
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print(rule)
    for r in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")
    print(rule)


def cmd_execution(args: argparse.Namespace, settings: Settings) -> int:
    records = _records(settings)
    if args.execution_cmd == "list":
        rows = records.list_executions(action=args.action, status=args.status, limit=args.n,
                                       top_level_only=not args.all)
        if args.json:
            for row in rows:
                row["children"] = [c["id"] for c in records.list_executions(parent=row["id"], limit=10_000, newest_first=False)]
            print(json.dumps(rows, indent=2, default=str))
            return 0
        view = [{**r, "status": _elapsed(r), "user": (r["context"] or {}).get("user"),
                 "+": "+" if records.list_executions(parent=r["id"], limit=1) else ""} for r in rows]
        print_table(view, ["+", *STATUS_COLUMNS])
        return 0
    record = records.get_execution(args.id)
    if record is None:
        print(f"execution {args.id} not found", file=sys.stderr)
        return 1
    children = records.list_executions(parent=args.id, limit=10_000, newest_first=False)
    if args.json:
        print(json.dumps({**record, "children": children}, indent=2, default=str))
        return 0
    record = {k: v for k, v in record.items() if k not in ("workflow_state", "children")}
    for key in ("id", "action", "runner", "status", "start_timestamp", "end_timestamp", "rule", "trigger_instance_id", "parent", "task_name"):
        if record.get(key):
            print(f"{key}: {_elapsed(record) if key == 'status' else record[key]}")
    print("parameters: " + json.dumps(record["parameters"], indent=2, default=str))
    print("result: " + json.dumps(record["result"], indent=2, default=str))
    if children:
        print("children:")
        print_table([{**c, "status": _elapsed(c)} for c in children], ["id", "task_name", "action", "status", "start_timestamp"])
    return 0


def cmd_trigger_instance(args: argparse.Namespace, settings: Settings) -> int:
    records = _records(settings)
    if args.ti_cmd == "get":
        ti = records.get_trigger_instance(args.id)
        if ti is None:
            print(f"trigger instance {args.id} not found", file=sys.stderr)
            return 1
        ti["enforcements"] = records.list_rule_enforcements(args.id)
        print(json.dumps(ti, indent=2, default=str))
        return 0
    rows = records.list_trigger_instances(trigger=args.trigger, limit=args.n)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows, ["id", "trigger", "occurrence_time", "status"])
    return 0


def _parse_kv(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {pair!r}")
        if value.startswith("@") and Path(value[1:]).exists():
            value = Path(value[1:]).read_text()
        try:
            params[key] = json.loads(value) if value[:1] in "{[" else value
        except json.JSONDecodeError:
            params[key] = value
    return params


def cmd_action(args: argparse.Namespace, settings: Settings) -> int:
    from .engine import Runtime
    from .params import ParameterValidationError
    from .templating import RenderError

    runtime = Runtime(settings)
    try:
        ex_id = runtime.execute(args.ref, runtime.cast_cli_parameters(args.ref, _parse_kv(args.parameters)))
    except (ParameterValidationError, RenderError, ValueError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    try:
        record = runtime.wait(ex_id, timeout=args.timeout)
    finally:
        runtime.stop()
    print(json.dumps({k: record[k] for k in ("id", "action", "status", "result")}, indent=2, default=str))
    return 0 if record["status"] == "succeeded" else 1


def cmd_key(args: argparse.Namespace, settings: Settings) -> int:
    from .pack_env.pack_runtime.datastore import KeyValueStore

    settings.ensure_dirs()
    store = KeyValueStore(str(settings.datastore_db))
    if args.key_cmd == "set":
        store.set(args.name, args.value, ttl=args.ttl, scope=args.scope, secret=args.encrypt)
    elif args.key_cmd == "get":
        pair = store.get_pair(args.name, scope=args.scope, decrypt=args.decrypt)
        if pair is None:
            print(f'key "{args.name}" not found', file=sys.stderr)
            return 1
        print(json.dumps(pair.to_dict(mask_secret=not args.decrypt), indent=2))
    elif args.key_cmd == "delete":
        if not store.delete(args.name, scope=args.scope):
            print(f'key "{args.name}" not found', file=sys.stderr)
            return 1
    else:
        pairs = [p.to_dict() for p in store.list(prefix=args.prefix, scope=args.scope)]  # secrets always masked
        if args.json:
            print(json.dumps(pairs, indent=2))
        else:
            print_table(pairs, ["name", "value", "secret", "expire_timestamp"])
    return 0


def cmd_pack_setup(args: argparse.Namespace, settings: Settings) -> int:
    from .virtualenv import ensure_pack_virtualenv

    pack_dirs = [Path(p) for p in args.packs] or sorted(p for p in settings.packs_dir.iterdir() if (p / "pack.yaml").exists())
    for pack_dir in pack_dirs:
        python = ensure_pack_virtualenv(pack_dir, settings.virtualenvs_dir)
        print(f"{pack_dir.name}: {python}")
    return 0


def delegate_to_pack(argv: list[str], settings: Settings) -> int:
    """Run ``<pack>/actions/lib/<pack>_cli.py ARGV`` in that pack's virtualenv."""
    from .pack_processes import pack_process_env
    from .virtualenv import ensure_pack_virtualenv

    for pack_dir in sorted(p for p in settings.packs_dir.iterdir() if (p / "pack.yaml").exists()):
        script = pack_dir / "actions" / "lib" / f"{pack_dir.name}_cli.py"
        if not script.exists():
            continue
        python = ensure_pack_virtualenv(pack_dir, settings.virtualenvs_dir)
        config = settings.pack_config_file(pack_dir.name)
        cmd = [str(python), str(script), *(["--config", str(config)] if config.exists() else []), *argv]
        env = pack_process_env(pack_dir, python, {"AEGIS_HOME": str(settings.home)})
        os.execve(cmd[0], cmd, env)
    print(f"aegis: unknown command {argv[0]!r} (see aegis --help)", file=sys.stderr)
    return 2


def pack_self_check(pack_dir: Path, settings: Settings, config: str | Path | None = None) -> int:
    """``<pack>/actions/lib/<pack>_cli.py validate``, when the pack ships such a CLI: the
    pack's checks of its own content (data files the runtime knows nothing about), run in
    the pack's virtualenv after the runtime's checks. Skipped (with a note) when the pack
    has no CLI or its virtualenv is not built yet (``aegis pack setup``)."""
    import subprocess

    from .pack_processes import pack_process_env
    from .virtualenv import is_current, venv_python

    pack_dir = Path(pack_dir)
    script = pack_dir / "actions" / "lib" / f"{pack_dir.name}_cli.py"
    if not script.exists():
        return 0
    venv = Path(settings.virtualenvs_dir) / pack_dir.name
    if not is_current(pack_dir, venv):
        print(f"note: {pack_dir.name}: pack self-check skipped (no current virtualenv; run aegis pack setup)")
        return 0
    config = Path(config) if config else settings.pack_config_file(pack_dir.resolve().name)
    cmd = [str(venv_python(venv)), str(script), *(["--config", str(config)] if config.is_file() else []), "validate"]
    env = pack_process_env(pack_dir, venv_python(venv), {"AEGIS_HOME": str(settings.home)})
    # The pack CLI loads its config with the runtime's own loader: make this runtime's
    # st2lite importable there, wherever the pack lives (last, so the pack's packages win).
    env["PYTHONPATH"] += os.pathsep + str(Path(__file__).resolve().parent.parent)
    return subprocess.run(cmd, env=env, check=False).returncode


BUILTIN_COMMANDS = ("run", "validate", "rule-tester", "action", "alias", "chat", "execution", "trigger-instance", "key", "pack",
                    *api_cli.COMMANDS)


_PACK_COMMAND = re.compile(r"""\bsub\.add_parser\(\s*["']([\w-]+)["'](?:[^)]*?help=["']([^"']*)["'])?""")


def pack_commands(settings: Settings) -> list[tuple[str, str, str]]:
    """``(command, help, pack)`` of each pack CLI (``actions/lib/<pack>_cli.py``), read without running it.

    Its top-level subcommands are the ``sub.add_parser("name", help=...)`` calls.
    """
    found: list[tuple[str, str, str]] = []
    packs_dir = settings.packs_dir
    for pack_dir in sorted(packs_dir.iterdir()) if packs_dir.is_dir() else []:
        script = pack_dir / "actions" / "lib" / f"{pack_dir.name}_cli.py"
        if (pack_dir / "pack.yaml").exists() and script.is_file():
            for name, help_text in _PACK_COMMAND.findall(script.read_text(encoding="utf-8")):
                found.append((name, help_text or f"(pack {pack_dir.name})", pack_dir.name))
    return found


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aegis", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="serve the packs: sensors, rules, workflows, /metrics, /healthz, /readyz, /livez")
    sub.add_parser("alias", help="ChatOps aliases: list, match or execute a command (st2 action-alias)")
    sub.add_parser("chat", help='what the chat channel would show for a command: aegis chat "aegis status"')

    validate = sub.add_parser("validate", help="validate a pack's metadata, workflows, rules and config")
    validate.add_argument("pack_dir", nargs="?", help="default: every pack in AEGIS_PACKS_DIR")
    validate.add_argument("--config", help="pack config to check too (default: $AEGIS_HOME/configs/<pack>.yaml if present)")

    tester = sub.add_parser("rule-tester", help="does a rule match a trigger instance? (st2-rule-tester)")
    tester.add_argument("--rule", required=True, help="rule file (YAML)")
    tester.add_argument("--trigger-instance", required=True, help="trigger instance file (JSON or YAML)")

    action = sub.add_parser("action", help="run an action (st2 run / st2 action execute)")
    action_sub = action.add_subparsers(dest="action_cmd", required=True, metavar="SUBCOMMAND")
    execute = action_sub.add_parser("execute", help="run an action and print its result")
    execute.add_argument("ref", help="action ref, e.g. core.echo")
    execute.add_argument("parameters", nargs="*", help="key=value (value @FILE reads a file; JSON objects/lists parsed)")
    execute.add_argument("--timeout", type=float, default=900, help="seconds to wait for the result (default 900)")

    execution = sub.add_parser("execution", help="the execution history (st2 execution)")
    ex_sub = execution.add_subparsers(dest="execution_cmd", required=True, metavar="SUBCOMMAND")
    ex_list = ex_sub.add_parser("list", help="recent executions, newest first")
    ex_list.add_argument("--action", help="only this action ref")
    ex_list.add_argument("--status", choices=EXECUTION_STATUSES, metavar="STATUS",
                         help="only this status: " + ", ".join(EXECUTION_STATUSES))  # fmt: skip
    ex_list.add_argument("-n", type=int, default=50, help="how many (default 50)")
    ex_list.add_argument("--all", action="store_true", help="include workflow task executions")
    ex_list.add_argument("--json", action="store_true", help="print JSON (with children ids)")
    ex_get = ex_sub.add_parser("get", help="one execution: parameters, result, children")
    ex_get.add_argument("id", help="execution id")
    ex_get.add_argument("--json", action="store_true", help="print JSON")

    ti = sub.add_parser("trigger-instance", help="recorded trigger instances (st2 trigger-instance)")
    ti_sub = ti.add_subparsers(dest="ti_cmd", required=True, metavar="SUBCOMMAND")
    ti_list = ti_sub.add_parser("list", help="recent trigger instances, newest first")
    ti_list.add_argument("--trigger", help="only this trigger type ref")
    ti_list.add_argument("-n", type=int, default=50, help="how many (default 50)")
    ti_list.add_argument("--json", action="store_true", help="print JSON")
    ti_get = ti_sub.add_parser("get", help="one trigger instance and its rule enforcements")
    ti_get.add_argument("id", help="trigger instance id")

    key = sub.add_parser("key", help="the datastore (st2 key)")
    key_sub = key.add_subparsers(dest="key_cmd", required=True, metavar="SUBCOMMAND")
    for name, what in (("set", "set a key"), ("get", "show a key"), ("delete", "delete a key"), ("list", "list keys")):
        p = key_sub.add_parser(name, help=what)
        if name != "list":
            p.add_argument("name", help="key name, e.g. aegis.mode")
        if name == "set":
            p.add_argument("value", help="the value (a string)")
            p.add_argument("--ttl", type=int, help="seconds until the key expires")
            p.add_argument("--encrypt", action="store_true", help="store encrypted (st2's key format); masked when shown")
        if name == "get":
            p.add_argument("--decrypt", action="store_true", help="show a secret in clear")
        if name == "list":
            p.add_argument("--prefix", help="only keys starting with this")
            p.add_argument("-j", "--json", action="store_true", help="print JSON (secrets masked)")
        p.add_argument("--scope", default="system", choices=["system", "user"], help="datastore scope (default system)")

    pack = sub.add_parser("pack", help="pack virtualenvs")
    pack_sub = pack.add_subparsers(dest="pack_cmd", required=True, metavar="SUBCOMMAND")
    setup = pack_sub.add_parser("setup", help="create or refresh pack virtualenvs from requirements.txt")
    setup.add_argument("packs", nargs="*", help="pack directories (default: every pack)")
    api_cli.add_parsers(sub)  # user, apikey, inquiry

    # The packs' own commands (run in the pack's virtualenv): listed here, handed over by main().
    for name, help_text, pack_ref in pack_commands(settings) if settings else []:
        if name not in BUILTIN_COMMANDS:
            sub.add_parser(name, help=f"{help_text} [pack {pack_ref}; aegis {name} --help]", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a configuration or start-up problem is printed as one line per
    problem (file or variable, key, fix), never a traceback, and exits 2."""
    try:
        return _main(argv)
    except StartupError as exc:
        for line in exc.lines:
            print(f"aegis: {line}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    settings = Settings.from_env()
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in BUILTIN_COMMANDS:
        _setup_logging()
        return delegate_to_pack(argv, settings)
    if first == "alias":
        from .aliases import main as alias_main
        from .engine import Runtime

        _setup_logging()
        return alias_main(argv[argv.index("alias") + 1 :], lambda: Runtime(settings))
    if first == "chat":
        from .chatops import chat_main
        from .engine import Runtime

        _setup_logging()
        return chat_main(argv[argv.index("chat") + 1 :], lambda: Runtime(settings))
    args = build_parser(settings).parse_args(argv)
    _setup_logging(args.verbose)
    if args.command == "run":
        from .service import serve

        return serve(settings)
    if args.command == "validate":
        from .validation import main as validate_main

        targets = [Path(args.pack_dir)] if args.pack_dir else [
            p for p in sorted(settings.packs_dir.iterdir()) if (p / "pack.yaml").exists()
        ]

        def validate(pack_dir: Path) -> int:
            # The config this machine runs with ($AEGIS_HOME/configs/<pack>.yaml) is checked too.
            config = args.config or settings.pack_config_file(pack_dir.resolve().name)
            return validate_main([str(pack_dir), *(["--config", str(config)] if Path(config).is_file() else [])])

        return max(max(validate(t), pack_self_check(t, settings, args.config)) for t in targets) if targets else 0
    if args.command == "rule-tester":
        from .rule_tester import main as tester_main

        return tester_main(["--rule", args.rule, "--trigger-instance", args.trigger_instance])
    if args.command in api_cli.COMMANDS:
        return api_cli.main(args, settings)
    handlers = {"action": cmd_action, "execution": cmd_execution, "trigger-instance": cmd_trigger_instance,
                "key": cmd_key, "pack": cmd_pack_setup}
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
