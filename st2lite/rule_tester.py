"""``st2-rule-tester``: does a rule match a trigger instance? (st2reactor/rules/tester.py)

    $ aegis rule-tester --rule packs/aegis/rules/page.yaml --trigger-instance ti.json
    Rule aegis.page matches trigger instance

    >>> check_rule("rule.yaml", "trigger_instance.json", store)      # doctest: +SKIP
    (True, 'Rule aegis.page matches trigger instance')

The trigger instance file (JSON or YAML) has ``trigger`` (a ref string, or an object with
``type`` or ``ref``) and ``payload``. Criteria patterns see the datastore (``st2kv``)
through ``store``. Exit status of ``main``: 0 match, 1 no match, 2 usage or load error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from st2lite.criteria import UnknownOperatorError, rule_matches, rule_ref, rule_trigger_type
from st2lite.templating import KeyStore, build_context

__all__ = ["RuleTesterError", "check_rule", "main"]


class RuleTesterError(ValueError):
    """A rule or trigger instance file cannot be loaded or is malformed."""


def _load(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise RuleTesterError(f"cannot read {what} file {path!r}: {exc.strerror or exc}") from exc
    try:
        # JSON is YAML, but JSON's own parser gives a better message for a .json file.
        if path.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise RuleTesterError(f"cannot parse {what} file {path!r}: {exc}") from exc


def _load_rule(path: str) -> dict[str, Any]:
    rule = _load(path, "rule")
    if not isinstance(rule, dict):
        raise RuleTesterError(f"rule file {path!r} must contain a mapping")
    if not rule_trigger_type(rule):
        raise RuleTesterError(f"rule file {path!r} has no trigger.type")
    criteria = rule.get("criteria")
    if criteria is not None and not isinstance(criteria, dict):
        raise RuleTesterError(f"rule file {path!r}: criteria must be a mapping")
    return rule


def _trigger_ref(instance: Mapping[str, Any], path: str) -> str:
    trigger = instance.get("trigger")
    if isinstance(trigger, Mapping):
        trigger = trigger.get("type") or trigger.get("ref")
    if not isinstance(trigger, str) or not trigger:
        raise RuleTesterError(f"trigger instance file {path!r} has no trigger ref ('trigger')")
    return trigger


def check_rule(rule_path: str, trigger_instance_path: str, store: KeyStore) -> tuple[bool, str]:
    """Whether the rule in ``rule_path`` matches the trigger instance, and why not.

    Raises ``RuleTesterError`` when a file cannot be loaded.
    """
    rule = _load_rule(rule_path)
    instance = _load(trigger_instance_path, "trigger instance")
    if not isinstance(instance, dict):
        raise RuleTesterError(f"trigger instance file {trigger_instance_path!r} must contain a mapping")
    trigger_ref = _trigger_ref(instance, trigger_instance_path)
    payload = instance.get("payload") or {}
    ref = rule_ref(rule)

    rule_trigger = rule_trigger_type(rule)
    if rule_trigger != trigger_ref:
        return False, (
            f"Rule {ref} does not match: its trigger type {rule_trigger!r} differs from the"
            f" trigger instance's {trigger_ref!r}"
        )
    context = build_context(store, trigger_payload=payload)
    try:
        result = rule_matches(rule, payload, context)
    except UnknownOperatorError as exc:
        return False, f"Rule {ref} errors (st2 fails the whole trigger instance): {exc}"
    if result.matched:
        return True, f"Rule {ref} matches trigger instance"
    if not rule.get("enabled", True):
        return False, f"Rule {ref} does not match: the rule is disabled"
    return (
        False,
        f"Rule {ref} does not match trigger instance: criterion {result.failed_criterion!r} failed ({result.reason})",
    )


def main(argv: Sequence[str] | None = None, store: KeyStore | None = None) -> int:
    """Command line: ``--rule FILE --trigger-instance FILE [--datastore SQLITE]``.

    The datastore defaults to the runtime's (``$AEGIS_HOME/datastore.sqlite``, see
    ``st2lite.settings``).
    """
    parser = argparse.ArgumentParser(
        prog="rule-tester", description="Test whether a rule matches a trigger instance (st2-rule-tester)."
    )
    parser.add_argument("--rule", required=True, help="rule definition file (YAML)")
    parser.add_argument("--trigger-instance", required=True, help="trigger instance file (JSON or YAML)")
    parser.add_argument("--datastore", help="datastore SQLite file read by st2kv in patterns")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 2

    if store is None:
        from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
        from st2lite.settings import Settings

        path = args.datastore or str(Settings.from_env().datastore_db)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            store = KeyValueStore(path)
        except Exception as exc:
            print(f"error: cannot open datastore {path!r}: {exc}", file=sys.stderr)
            return 2
    try:
        matched, message = check_rule(args.rule, args.trigger_instance, store)
    except RuleTesterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(message)
    return 0 if matched else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
