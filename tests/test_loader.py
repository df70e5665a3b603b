"""st2lite.loader: refs, entry points, trigger types and pack config, as st2's registrars compute them.

Packs are written into a temporary directory per test, so each test shows the YAML it relies on.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from st2lite.loader import (
    ConfigError,
    PackLoadError,
    Problem,
    dynamic_config_keys,
    load_pack,
    load_pack_config,
    render_config,
)

#: A small, valid pack touching every resource kind; test_validation.py reuses it.
VALID_PACK: dict[str, str] = {
    "pack.yaml": """
        ref: demo
        name: Demo Pack
        description: A pack for the loader tests.
        version: 0.1.0
        author: st2lite
    """,
    "config.schema.yaml": """
        mode:
          type: string
          enum: [monitor, auto]
          default: monitor
        api_key:
          type: string
          secret: true
          default: "{{ st2kv.system.demo.api_key }}"
        server:
          type: object
          properties:
            host:
              type: string
              default: 127.0.0.1
            port:
              type: integer
              default: 9000
            tls:
              type: object
              properties:
                verify:
                  type: boolean
                  default: true
        targets:
          type: array
          default: []
          items:
            type: object
            properties:
              name:
                type: string
                required: true
              weight:
                type: integer
                default: 1
    """,
    "actions/restart.yaml": """
        name: restart
        runner_type: python-script
        entry_point: restart.py
        description: Restart a service.
        parameters:
          service:
            type: string
            required: true
          timeout:
            type: integer
            default: 120
        output_schema:
          type: object
          properties:
            restarted:
              type: boolean
    """,
    "actions/restart.py": """
        from st2common.runners.base_action import Action


        class Restart(Action):
            def run(self, service):
                return True, {"restarted": True}
    """,
    "actions/remediate.yaml": """
        name: remediate
        runner_type: orquesta
        entry_point: workflows/remediate.yaml
        enabled: false
        parameters:
          service:
            type: string
            required: true
    """,
    "actions/workflows/remediate.yaml": """
        version: 1.0
        input:
          - service
        tasks:
          restart:
            action: demo.restart service=<% ctx().service %>
            next:
              - when: <% failed() %>
                do: notify
          notify:
            action: core.noop
    """,
    "sensors/watcher.yaml": """
        class_name: Watcher
        entry_point: watcher.py
        poll_interval: 15
        trigger_types:
          - name: service_down
            description: A service stopped answering.
            payload_schema:
              type: object
              properties:
                service:
                  type: string
                  pattern: "^[a-z0-9-]+$"
    """,
    "sensors/watcher.py": """
        from st2reactor.sensor.base import PollingSensor


        class Watcher(PollingSensor):
            def setup(self):
                pass

            def poll(self):
                pass

            def cleanup(self):
                pass

            def add_trigger(self, trigger):
                pass

            def update_trigger(self, trigger):
                pass

            def remove_trigger(self, trigger):
                pass
    """,
    "triggers/deployed.yaml": """
        name: deployed
        description: Declared on its own, as st2's TriggersRegistrar reads triggers/.
        payload_schema:
          type: object
    """,
    "rules/on_down.yaml": """
        name: on_down
        enabled: true
        trigger:
          type: demo.service_down
        criteria:
          trigger.service:
            type: iequals
            pattern: nginx
        action:
          ref: demo.remediate
          parameters:
            service: "{{ trigger.service }}"
    """,
    "rules/webhook.yaml": """
        name: webhook
        pack: demo
        type:
          ref: backstop
        trigger:
          type: core.st2.webhook
          parameters:
            url: demo
        action:
          ref: core.local
          parameters:
            cmd: echo hello
    """,
    "aliases/restart.yaml": """
        name: restart_alias
        action_ref: demo.restart
        formats:
          - "restart {{ service }}"
    """,
    "policies/one_at_a_time.yaml": """
        name: one_at_a_time
        resource_ref: demo.restart
        policy_type: action.concurrency.attr
        parameters:
          threshold: 1
          attributes: [service]
    """,
}


def write_pack(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path -> dedented text) under ``root`` and return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return write_pack(tmp_path / "demo", VALID_PACK)


def test_refs_and_entry_points_follow_st2(demo: Path) -> None:
    pack = load_pack(demo)
    assert pack.problems == []
    assert pack.ref == "demo"  # `ref` wins over a display name that is not a valid ref
    assert sorted(pack.actions) == ["demo.remediate", "demo.restart"]
    restart = pack.actions["demo.restart"]
    assert restart.pack == "demo" and restart.runner_type == "python-script"
    assert restart.entry_point_path == demo / "actions" / "restart.py"  # relative to actions/
    assert restart.timeout == 120  # the timeout parameter's default
    assert restart.enabled is True  # st2's default for actions
    assert restart.output_schema == {"type": "object", "properties": {"restarted": {"type": "boolean"}}}
    assert (
        pack.actions["demo.remediate"].entry_point_path == demo / "actions" / "workflows" / "remediate.yaml"
    )
    assert pack.actions["demo.remediate"].enabled is False

    [sensor] = pack.sensors
    assert sensor.ref == "demo.Watcher"  # <pack>.<class_name>
    assert sensor.entry_point_path == demo / "sensors" / "watcher.py"  # relative to sensors/
    assert sensor.poll_interval == 15.0 and sensor.enabled


def test_trigger_types_come_from_sensors_and_triggers_dir(demo: Path) -> None:
    pack = load_pack(demo)
    assert set(pack.trigger_types) == {"demo.service_down", "demo.deployed"}
    down = pack.trigger_types["demo.service_down"]
    assert down["pack"] == "demo" and down["name"] == "service_down"
    assert down["payload_schema"]["properties"]["service"] == {"type": "string", "pattern": "^[a-z0-9-]+$"}
    assert down["parameters_schema"] == {}


def test_rules_aliases_policies(demo: Path) -> None:
    pack = load_pack(demo)
    rules = {rule.ref: rule for rule in pack.rules}
    on_down = rules["demo.on_down"]
    assert on_down.trigger_type == "demo.service_down" and on_down.action_ref == "demo.remediate"
    assert on_down.enabled and on_down.rule_type == "standard"
    assert on_down.criteria == {"trigger.service": {"type": "iequals", "pattern": "nginx"}}
    assert on_down.action_parameters == {"service": "{{ trigger.service }}"}
    webhook = rules["demo.webhook"]
    # Another pack's trigger type (here st2's own) is not a loader problem.
    assert webhook.trigger_type == "core.st2.webhook" and webhook.trigger_parameters == {"url": "demo"}
    assert webhook.rule_type == "backstop"
    assert webhook.enabled is False  # st2 rules are disabled unless they say otherwise
    [alias] = pack.aliases
    assert (alias.ref, alias.action_ref, alias.formats) == (
        "demo.restart_alias",
        "demo.restart",
        ["restart {{ service }}"],
    )
    [policy] = pack.policies
    assert policy.ref == "demo.one_at_a_time" and policy.parameters == {
        "threshold": 1,
        "attributes": ["service"],
    }


def test_pack_ref_falls_back_to_a_valid_name(tmp_path: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "p", {"pack.yaml": "name: ops_tools\ndescription: d\nversion: 1.0.0\nauthor: a\n"}
    )
    assert load_pack(pack_dir).ref == "ops_tools"


def test_invalid_pack_name_without_ref_is_a_problem(tmp_path: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "ops", {"pack.yaml": "name: Ops Tools\ndescription: d\nversion: 1.0.0\nauthor: a\n"}
    )
    pack = load_pack(pack_dir)
    assert pack.ref == "ops"  # loading goes on under the directory name
    assert [(p.file, p.field) for p in pack.problems] == [("pack.yaml", "ref")]


@pytest.mark.parametrize("content", [None, "- just\n- a list\n", "name: [unclosed\n"])
def test_missing_or_unreadable_pack_yaml_raises(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        write_pack(tmp_path, {"pack.yaml": content})
    with pytest.raises(PackLoadError, match="pack"):
        load_pack(tmp_path)


def test_content_problems_are_collected_not_raised(demo: Path) -> None:
    write_pack(
        demo,
        {
            "actions/other_pack.yaml": "name: other\npack: elsewhere\nrunner_type: noop\n",
            "actions/restart_again.yaml": "name: restart\nrunner_type: noop\n",
            "actions/list.yaml": "- not\n- a mapping\n",
            "actions/bad.yaml": "name: [unclosed\n",
            "rules/no_action.yaml": "name: r\ntrigger:\n  type: demo.deployed\n",
            "sensors/no_entry.yaml": "class_name: Lonely\n",
        },
    )
    pack = load_pack(demo)
    found = {(p.file, p.field) for p in pack.problems}
    assert ("actions/other_pack.yaml", "pack") in found
    assert ("actions/restart_again.yaml", "name") in found
    assert ("actions/list.yaml", "") in found
    assert ("actions/bad.yaml", "") in found
    assert ("rules/no_action.yaml", "action") in found
    assert ("sensors/no_entry.yaml", "entry_point") in found
    # The faulty resources are left out; the good ones are still there.
    assert sorted(pack.actions) == ["demo.remediate", "demo.restart"]
    assert pack.actions["demo.restart"].file.name == "restart.yaml"
    bad = next(p for p in pack.problems if p.file == "actions/bad.yaml")
    assert bad.message.startswith("invalid YAML") and "at line 2, column 1" in bad.message
    assert str(Problem("a.yaml", "x.y", "boom")) == "a.yaml: x.y: boom"


def test_config_defaults_nested_and_file_values(demo: Path, tmp_path: Path) -> None:
    pack = load_pack(demo)
    config = load_pack_config(pack, None)
    assert config == {
        "mode": "monitor",
        "api_key": "{{ st2kv.system.demo.api_key }}",
        "server": {"host": "127.0.0.1", "port": 9000, "tls": {"verify": True}},
        "targets": [],
    }
    config_file = tmp_path / "demo.yaml"
    config_file.write_text("mode: auto\nserver:\n  port: 9443\n  tls: null\ntargets:\n  - name: web-1\n")
    config = load_pack_config(pack, config_file)
    assert config["mode"] == "auto"
    assert config["server"] == {"host": "127.0.0.1", "port": 9443, "tls": {"verify": True}}
    assert config["targets"] == [{"name": "web-1", "weight": 1}]  # array items get their defaults too
    assert load_pack_config(pack, tmp_path / "absent.yaml")["mode"] == "monitor"


def test_dynamic_values_are_left_for_the_runtime(demo: Path) -> None:
    config = load_pack_config(load_pack(demo), None)
    assert dynamic_config_keys(config) == ["api_key"]
    rendered = render_config(config, lambda text: text.replace("{{ st2kv.system.demo.api_key }}", "sk-123"))
    assert rendered["api_key"] == "sk-123"
    assert config["api_key"] == "{{ st2kv.system.demo.api_key }}"  # the input is not changed
    assert rendered["server"] == config["server"]


@pytest.mark.parametrize(
    ("config_text", "field", "message"),
    [
        ("server:\n  port: '9000'\n", "server.port", "is not of type 'integer'"),
        ("mode: manual\n", "mode", "is not one of"),
        ("targets:\n  - weight: 2\n", "targets.0.name", "'name' is a required property"),
    ],
)
def test_config_is_validated_against_the_schema(
    demo: Path, tmp_path: Path, config_text: str, field: str, message: str
) -> None:
    config_file = tmp_path / "demo.yaml"
    config_file.write_text(config_text)
    with pytest.raises(ConfigError) as caught:
        load_pack_config(load_pack(demo), config_file)
    [problem] = caught.value.problems
    assert problem.file == str(config_file) and problem.field == field and message in problem.message


def test_dynamic_value_in_a_typed_key_is_not_validated_statically(demo: Path, tmp_path: Path) -> None:
    # st2 validates static values only; "{{ st2kv... }}" is rendered when an action starts.
    config_file = tmp_path / "demo.yaml"
    config_file.write_text("server:\n  port: '{{ st2kv.system.demo.port }}'\n")
    config = load_pack_config(load_pack(demo), config_file)
    assert sorted(dynamic_config_keys(config)) == ["api_key", "server.port"]


def test_required_config_key_without_default(tmp_path: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "p",
        {
            "pack.yaml": "name: p\ndescription: d\nversion: 1.0.0\nauthor: a\n",
            "config.schema.yaml": "token:\n  type: string\n  required: true\n",
        },
    )
    with pytest.raises(ConfigError, match="'token' is a required property"):
        load_pack_config(load_pack(pack_dir), None)


def test_unusable_config_schema_is_reported_not_raised_as_a_traceback(tmp_path: Path) -> None:
    pack_dir = write_pack(
        tmp_path / "p",
        {
            "pack.yaml": "name: p\ndescription: d\nversion: 1.0.0\nauthor: a\n",
            "config.schema.yaml": "retries:\n  type: integr\n  default: 3\n",
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_pack_config(load_pack(pack_dir), None)
    [problem] = caught.value.problems
    assert problem.file == "config.schema.yaml" and "unknown type 'integr'" in problem.message
