"""st2lite.validation: the broken fixture pack yields each expected problem, anchored to file and field.

``tests/fixtures/packs/broken`` is wrong on purpose; each entry of ``EXPECTED`` names one of
its mistakes. The valid pack of ``test_loader.py`` must come out clean.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_loader import VALID_PACK, write_pack

from st2lite.validation import check_pack, find_schemas_dir, main, validate_pack

REPO = Path(__file__).resolve().parents[1]
BROKEN = REPO / "tests" / "fixtures" / "packs" / "broken"
SCHEMAS = Path(os.environ.get("ST2_SCHEMAS_DIR") or REPO.parent / "shared" / "st2-schemas")

needs_schemas = pytest.mark.skipif(
    not (SCHEMAS / "action.json").is_file(),
    reason=f"st2 schemas not found at {SCHEMAS} (set ST2_SCHEMAS_DIR)",
)

# (file, field, a fragment of the message)
EXPECTED = [
    # st2's schemas, with draft-3 required flags
    ("pack.yaml", "author", "'author' is a required property"),
    ("pack.yaml", "version", "is not a semantic version"),
    ("actions/missing_runner.yaml", "runner_type", "'runner_type' is a required property"),
    ("actions/missing_runner.yaml", "timeout", 'unknown field "timeout"'),
    ("actions/bad_types.yaml", "enabled", "'yes' is not of type 'boolean'"),
    ("actions/bad_types.yaml", "parameters.count.type", "'integr' is not one of"),
    ("sensors/watcher.yaml", "interval", 'unknown field "interval"'),
    ("sensors/watcher.yaml", "trigger_types.1.payload_schema.properties.count.type", "'int' is not one of"),
    ("rules/missing_trigger.yaml", "trigger", "'trigger' is a required property"),
    ("config.schema.yaml", "retries.requird", 'unknown field "requird"'),
    # what the loader cannot build
    ("actions/unknown_runner.yaml", "runner_type", 'unknown runner type "mistral-v2"'),
    ("actions/wrong_pack.yaml", "pack", '"pack" field is "otherpack"'),
    ("rules/unparsable.yaml", "", "invalid YAML"),
    # entry points
    ("actions/no_entry.yaml", "entry_point", "actions/missing.py does not exist"),
    ("actions/two_classes.yaml", "entry_point", "defines 2 Action subclasses (First, Second)"),
    ("actions/no_class.yaml", "entry_point", "defines no subclass of st2common.runners.base_action.Action"),
    ("sensors/watcher.yaml", "class_name", 'defines no class "Watchr"'),
    # workflows, at their spec path
    ("actions/workflows/broken.yaml", "tasks.first.next[0].do", 'The task "nowhere" is not defined'),
    ("actions/workflows/broken.yaml", "tasks.second.action", '"broken.absent" is not registered'),
    # rules
    ("rules/unknown_action.yaml", "action.ref", 'action "broken.nope" does not exist in pack "broken"'),
    ("rules/unknown_action.yaml", "criteria.trigger.host.type", 'unknown criteria operator "equalz"'),
    ("rules/unknown_action.yaml", "criteria.payload.host", "must address the trigger payload"),
    (
        "rules/unknown_triggers.yaml",
        "trigger.type",
        '"core.st2.Timer" is not one of st2\'s system trigger types',
    ),
    ("rules/webhook.yaml", "trigger.parameters.url", "'url' is a required property"),
    ("rules/webhook.yaml", "action.parameters.bogus", 'has no parameter "bogus"'),
    ("rules/webhook.yaml", "action.parameters", 'required parameter "target"'),
    # aliases and policies
    ("aliases/alias.yaml", "action_ref", 'action "broken.missing" does not exist'),
    ("aliases/bad_param.yaml", "formats.0", 'parameter "host"'),
    ("policies/ratelimit.yaml", "policy_type", 'unknown policy type "action.ratelimit"'),
    ("policies/retry.yaml", "parameters.retry_on", "'error' is not one of ['failure', 'timeout']"),
    # the example config, against config.schema.yaml
    ("broken.yaml.example", "endpoint.port", "'8080' is not of type 'integer'"),
    ("broken.yaml.example", "endpoint.url", "'url' is a required property"),
    ("broken.yaml.example", "endpont", "unknown section, not in config.schema.yaml (st2 ignores it) (did you mean 'endpoint'?)"),
    ("broken.yaml.example", "filters.0.regex", "invalid regular expression '([a-z'"),
    # templates: a syntax error, and a criteria pattern no StackStorm can serialise
    ("rules/templates.yaml", "action.parameters.target", "Jinja syntax error in '{{ trigger.result.pod }'"),
    ("rules/templates.yaml", "criteria.trigger.status.pattern", "never matches on StackStorm"),
    ("rules/templates.yaml", "criteria.trigger.result.items.type", '"SEARCH" is not a search on StackStorm'),
]


@pytest.fixture(scope="module")
def broken_report():
    return check_pack(BROKEN, SCHEMAS)


@needs_schemas
@pytest.mark.parametrize(("file", "field", "fragment"), EXPECTED, ids=[f"{f}:{k}" for f, k, _ in EXPECTED])
def test_broken_pack_problem(broken_report, file: str, field: str, fragment: str) -> None:
    matches = [p for p in broken_report.problems if p.file == file and p.field == field]
    assert matches, f"no problem for {file}: {field}; got:\n" + "\n".join(map(str, broken_report.problems))
    assert any(fragment in p.message for p in matches), [p.message for p in matches]


@needs_schemas
def test_broken_pack_has_nothing_unexpected(broken_report) -> None:
    # Every problem is one of the listed ones: no noise, no duplicate wording of one mistake.
    expected = {(file, field) for file, field, _ in EXPECTED}
    unexpected = [str(p) for p in broken_report.problems if (p.file, p.field) not in expected]
    assert unexpected == []
    assert len(broken_report.problems) == len(set(broken_report.problems))
    assert broken_report.schemas_dir == SCHEMAS.resolve()


@needs_schemas
def test_correct_parts_of_the_broken_pack_pass(broken_report) -> None:
    files = {p.file for p in broken_report.problems}
    # good.py subclasses Action through actions/lib/base.py: the ast walk follows the import.
    assert "actions/good.yaml" not in files


@needs_schemas
def test_valid_pack_is_clean(tmp_path: Path) -> None:
    pack_dir = write_pack(tmp_path / "demo", VALID_PACK)
    assert validate_pack(pack_dir, SCHEMAS) == []


@needs_schemas
def test_nested_required_flags_in_parameters_are_st2_style(tmp_path: Path) -> None:
    # st2 resolves "$ref: #" in a parameter schema to its own meta-schema, where a nested
    # property may say required: true; a plain draft-4 meta-schema would call that an error.
    files = dict(VALID_PACK)
    files["actions/restart.yaml"] += """
          options:
            type: object
            properties:
              force:
                type: boolean
                required: true
    """
    pack_dir = write_pack(tmp_path / "demo", files)
    assert validate_pack(pack_dir, SCHEMAS) == []


def test_builtin_checks_without_schemas(tmp_path: Path) -> None:
    empty = tmp_path / "no-schemas"
    empty.mkdir()
    report = check_pack(BROKEN, schemas_dir=empty)
    assert report.schemas_dir is None
    assert any("st2 schemas not found" in note for note in report.notes)
    found = {(p.file, p.field) for p in report.problems}
    assert ("pack.yaml", "author") in found
    assert ("pack.yaml", "version") in found
    assert ("actions/missing_runner.yaml", "runner_type") in found
    assert ("actions/missing_runner.yaml", "timeout") in found  # unknown key
    assert ("actions/bad_types.yaml", "enabled") in found  # wrong type
    assert ("sensors/watcher.yaml", "interval") in found
    # The cross-file checks do not depend on the schemas.
    assert ("rules/unknown_action.yaml", "criteria.trigger.host.type") in found


def test_schema_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ST2_SCHEMAS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    pack_dir = write_pack(tmp_path / "repo" / "packs" / "demo", VALID_PACK)
    assert find_schemas_dir(pack_dir) is None
    shared = tmp_path / "shared" / "st2-schemas"
    shared.mkdir(parents=True)
    for name in ("pack", "action", "sensor", "rule", "alias", "policy"):
        (shared / f"{name}.json").write_text("{}")
    # found beside an ancestor of the pack: <repo>/../shared/st2-schemas
    assert find_schemas_dir(pack_dir) == shared
    other = tmp_path / "elsewhere"
    shutil.copytree(shared, other)
    monkeypatch.setenv("ST2_SCHEMAS_DIR", str(other))
    assert find_schemas_dir(pack_dir) == other
    assert find_schemas_dir(pack_dir, explicit=shared) == shared  # the argument wins


@needs_schemas
def test_main_prints_problems_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(BROKEN), "--schemas", str(SCHEMAS)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert (
        f'{BROKEN}/rules/unknown_action.yaml: action.ref: action "broken.nope" does not exist in pack "broken"'
        in out
    )
    assert out[-1] == f"pack broken: {len(EXPECTED)} problems"


@needs_schemas
def test_main_exits_0_for_a_valid_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack_dir = write_pack(tmp_path / "demo", VALID_PACK)
    assert main([str(pack_dir), "--schemas", str(SCHEMAS)]) == 0
    assert capsys.readouterr().out.strip() == f"pack demo: valid (st2 schemas from {SCHEMAS.resolve()})"


@needs_schemas
def test_main_validates_a_given_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pack_dir = write_pack(tmp_path / "demo", VALID_PACK)
    config = tmp_path / "demo.yaml"
    config.write_text("mode: sometimes\n")
    assert main([str(pack_dir), "--schemas", str(SCHEMAS), "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"{config}: mode: 'sometimes' is not one of ['monitor', 'auto']" in out


def test_main_on_a_directory_that_is_not_a_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 1
    assert "pack.yaml" in capsys.readouterr().out


def test_main_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-such-option"]) == 2
    assert "usage" in capsys.readouterr().err


@needs_schemas
@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("from st2common.runners import base_action\n\nclass A(base_action.Action):\n    pass\n", None),
        ("import st2common.runners.base_action as ba\n\nclass A(ba.Action):\n    pass\n", None),
        ("from st2common.runners.base_action import Action as Base\n\nclass A(Base):\n    pass\n", None),
        # An intermediate base in the same file is a second Action subclass for st2.
        (
            "from st2common.runners.base_action import Action\n\nclass B(Action):\n    pass\n\nclass A(B):\n    pass\n",
            "defines 2 Action subclasses (B, A)",
        ),
        ("from somewhere import Action\n\nclass A(Action):\n    pass\n", "defines no subclass"),
        ("class A(:\n", "syntax error"),
    ],
)
def test_python_entry_point_is_read_with_ast(tmp_path: Path, source: str, problem: str | None) -> None:
    pack_dir = write_pack(tmp_path / "demo", VALID_PACK)
    (pack_dir / "actions" / "restart.py").write_text(source)
    problems = [p for p in validate_pack(pack_dir, SCHEMAS) if p.file == "actions/restart.yaml"]
    if problem is None:
        assert problems == []
    else:
        [found] = problems
        assert found.field == "entry_point" and problem in found.message


def test_aegis_validate_runs_the_packs_own_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``aegis validate`` runs ``<pack>/actions/lib/<pack>_cli.py validate`` in the pack's
    virtualenv after its own checks, and fails when it does (the runtime knows nothing of
    what the pack checks). Without a current virtualenv the check is skipped with a note."""
    import sys

    from st2lite.cli import pack_self_check
    from st2lite.settings import Settings
    from st2lite.virtualenv import MARKER, requirements_hash

    pack = write_pack(tmp_path / "mypack", VALID_PACK)
    (pack / "actions" / "lib").mkdir(parents=True, exist_ok=True)
    (pack / "actions" / "lib" / "mypack_cli.py").write_text(
        "import sys\nprint('pack check:', sys.argv[1:])\nsys.exit(1 if sys.argv[-1] == 'validate' else 3)\n")
    settings = Settings.from_env(home=tmp_path / "home", virtualenvs_dir=tmp_path / "venvs")
    assert pack_self_check(pack, settings) == 0
    assert "pack self-check skipped" in capsys.readouterr().out
    venv = tmp_path / "venvs" / "mypack"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / MARKER).write_text(requirements_hash(pack))
    assert pack_self_check(pack, settings) == 1
