"""Each shim in st2lite/shims.py is needed, and together they are enough, for orquesta 1.2.0.

Every case runs in a fresh interpreter of the runtime venv (the one running these tests),
because the shims patch process-wide modules and a module imported once stays imported.

    .venv/bin/python -m pytest tests/test_shims.py -q
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A workflow using the inline-parameter shorthand with a boolean, which is what goes
# through REGEX_INLINE_PARAMS (and its (?i)true alternative).
INLINE_SPEC = """
version: 1.0
tasks:
  t1:
    action: core.echo message="x" flag=true
"""


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh runtime interpreter; it prints one JSON line as its last output."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Tries the three things st2lite needs from orquesta, one after another, and reports the
# first failure by exception type and message.
PROBE = """
import json, sys
from st2lite import shims
shims.apply(only={only!r})
step = "import"
try:
    from orquesta import conducting
    step = "parse"
    from orquesta.specs import native
    spec = native.instantiate({spec!r})
    print(json.dumps({{"ok": True, "input": spec.tasks.get_task("t1").input}}))
except BaseException as e:
    print(json.dumps({{"ok": False, "step": step, "type": type(e).__name__,
                       "module": type(e).__module__, "message": str(e)}}))
"""


def probe(only: tuple[str, ...]) -> dict:
    return run_python(PROBE.format(only=only, spec=INLINE_SPEC))


def test_all_shims_import_orquesta_and_parse_inline_params():
    result = probe(("collections_abc", "fractions_gcd", "inline_params_regex", "yaql_parser_lock"))
    assert result == {"ok": True, "input": {"message": "x", "flag": True}}


def test_without_collections_shim_orquesta_does_not_import():
    result = probe(("fractions_gcd",))
    assert result["ok"] is False and result["step"] == "import"
    assert result["type"] == "AttributeError"
    assert "collections" in result["message"] and "MutableSequence" in result["message"]


def test_without_gcd_shim_networkx_does_not_import():
    result = probe(("collections_abc",))
    assert result["ok"] is False and result["step"] == "import"
    assert result["type"] == "ImportError"
    assert "gcd" in result["message"] and "fractions" in result["message"]


def test_without_regex_shim_inline_params_do_not_parse():
    result = probe(("collections_abc", "fractions_gcd"))
    assert result["ok"] is False and result["step"] == "parse"
    assert (result["module"], result["type"]) == ("re", "error")
    assert "global flags not at the start" in result["message"]


def test_regex_shim_keeps_booleans_case_insensitive_and_is_idempotent():
    result = run_python(
        """
        import json, re
        from st2lite import shims
        shims.apply(); shims.apply(); shims.apply()
        from orquesta.utils import parameters
        print(json.dumps({
            "pattern": parameters.REGEX_INLINE_PARAMS,
            "parsed": parameters.parse_inline_params('a=true b=TRUE c=False d=null e="t" f=1.5 g=<% ctx().x %>'),
        }))
        """
    )
    assert "(?i)" not in result["pattern"]
    assert result["pattern"].count("(?i:true)") == 1 and result["pattern"].count("(?i:false)") == 1
    re.compile(result["pattern"])
    assert result["parsed"] == [
        {"a": True},
        {"b": True},
        {"c": False},
        {"d": None},
        {"e": "t"},
        {"f": 1.5},
        {"g": "<% ctx().x %>"},
    ]


# Eight threads evaluate distinct YAQL expressions through orquesta and count wrong answers
# and grammar errors on valid expressions. Repeated a few rounds, stopping at the first bad
# round, so that a race that happens to stay hidden once cannot make the test pass.
RACE = """
import json, threading
from st2lite import shims
shims.apply(only={only!r})
from orquesta.expressions import base as expr_base

def work(i, bad):
    for j in range(150):
        try:
            value = expr_base.evaluate("<%% ctx().a + %d * ctx().b %%>" % j, {{"a": i, "b": 2}})
            if value != i + 2 * j:
                bad.append("wrong value")
        except Exception as e:
            bad.append(type(e).__name__)

bad, rounds = [], 0
while not bad and rounds < {rounds}:
    rounds += 1
    threads = [threading.Thread(target=work, args=(i, bad)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
print(json.dumps({{"bad": len(bad), "kinds": sorted(set(bad)), "rounds": rounds}}))
"""


def test_without_yaql_lock_concurrent_expressions_corrupt_each_other():
    result = run_python(
        RACE.format(only=("collections_abc", "fractions_gcd", "inline_params_regex"), rounds=5)
    )
    assert result["bad"] > 0, result
    assert set(result["kinds"]) <= {"wrong value", "YaqlEvaluationException"}


def test_with_yaql_lock_concurrent_expressions_are_right():
    result = run_python(RACE.format(only=shims_all(), rounds=2))
    assert result == {"bad": 0, "kinds": [], "rounds": 2}


def shims_all() -> tuple[str, ...]:
    from st2lite import shims

    return shims.SHIMS


def test_unknown_shim_name_is_a_clear_error():
    from st2lite import shims

    with pytest.raises(ValueError, match="unknown shim.*nope"):
        shims.apply(only=("nope",))


def test_conductor_runs_a_workflow_with_all_shims():
    # The conductor on its own, driven the way st2's workflow service drives it: no
    # st2lite host involved, so this shows the shims alone make orquesta work.
    result = run_python(
        """
        import json
        from st2lite import shims
        shims.apply()
        from orquesta import conducting, events, statuses
        from orquesta.specs import native

        spec = native.instantiate('''
        version: 1.0
        input:
          - name
        tasks:
          greet:
            action: core.echo message=<% ctx().name %> loud=true
            next:
              - when: <% succeeded() %>
                publish:
                  - said: <% result() %>
                do: done
          done:
            action: core.noop
        output:
          - said: <% ctx().said %>
        ''')
        conductor = conducting.WorkflowConductor(spec, inputs={"name": "st2"})
        conductor.request_workflow_status(statuses.RUNNING)
        ran = []
        while True:
            tasks = conductor.get_next_tasks()
            if not tasks:
                break
            for task in tasks:
                action = task["actions"][0]
                ran.append([task["id"], action["action"], action["input"]])
                conductor.update_task_state(task["id"], task["route"], events.ActionExecutionEvent(statuses.RUNNING))
                result = (action["input"] or {}).get("message", "").upper()
                conductor.update_task_state(
                    task["id"], task["route"], events.ActionExecutionEvent(statuses.SUCCEEDED, result=result)
                )
        conductor.render_workflow_output()
        print(json.dumps({"status": conductor.get_workflow_status(), "output": conductor.get_workflow_output(),
                          "ran": ran}))
        """
    )
    assert result["status"] == "succeeded"
    assert result["output"] == {"said": "ST2"}
    assert result["ran"] == [
        ["greet", "core.echo", {"message": "st2", "loud": True}],
        ["done", "core.noop", None],
    ]


# (e)/(f): expressions confined to data. Workflow inputs from alert text are the attack
# (issue 8): ``WorkflowSpec.render_input`` evaluates them, so the probe goes through it.
ESCAPES = """
import json, os, sys
from st2lite import shims
shims.apply(only={only!r})
from orquesta.specs import native
spec = native.instantiate('''
version: 1.0
input:
  - value
tasks:
  noop:
    action: core.noop
''')
outcome = {{}}
for name, value in {cases!r}.items():
    rendered, errors = spec.render_input({{"value": value}})
    outcome[name] = {{"value": None if errors else repr(rendered["value"]),
                     "error": str(errors[0]) if errors else None}}
print(json.dumps(outcome))
"""


def escape_cases(marker: Path) -> dict[str, str]:
    return {
        "popen": f"{{{{ lipsum.__globals__.os.popen('touch {marker}-popen').read() }}}}",
        "builtins_open": f"{{{{ lipsum.__globals__['__builtins__']['open']('{marker}-open', 'w').write('x') }}}}",
        "mro": "{{ ctx().__class__.__mro__ }}",
        "cycler_globals": "{{ cycler.__init__.__globals__.os.getcwd() }}",
        "jinja_function": "{{ lipsum }}",
        "yaql_context": "<% def(f, $) %>",
        "jinja_data": "{{ {'a': [1, 2]}['a'] | length }}",
        "yaql_data": "<% [1, 2].len() %>",
    }


def test_without_sandbox_shims_alert_text_runs_code_and_leaks_python_objects(tmp_path):
    cases = escape_cases(tmp_path / "pwned")
    result = run_python(ESCAPES.format(only=("collections_abc", "fractions_gcd", "inline_params_regex"), cases=cases))
    assert (tmp_path / "pwned-popen").exists() and (tmp_path / "pwned-open").exists(), result
    assert result["cycler_globals"]["error"] is None and "/" in result["cycler_globals"]["value"]
    assert "function" in result["jinja_function"]["value"]
    assert "Context" in result["yaql_context"]["value"]


def test_sandbox_shims_stop_every_escape_and_keep_data(tmp_path):
    cases = escape_cases(tmp_path / "pwned")
    result = run_python(ESCAPES.format(only=shims_all(), cases=cases))
    assert not (tmp_path / "pwned-popen").exists() and not (tmp_path / "pwned-open").exists()
    for name in ("popen", "builtins_open", "mro", "cycler_globals"):
        assert result[name]["value"] is None and "unsafe" in result[name]["error"], (name, result[name])
    for name in ("jinja_function", "yaql_context"):
        assert result[name]["value"] is None and "not data" in result[name]["error"], (name, result[name])
    assert result["yaql_data"] == {"value": "2", "error": None}
    assert result["jinja_data"] == {"value": "2", "error": None}


def test_jinja_sandbox_alone_does_not_stop_yaql_objects_and_vice_versa(tmp_path):
    cases = escape_cases(tmp_path / "pwned")
    base = ("collections_abc", "fractions_gcd", "inline_params_regex", "yaql_parser_lock")
    jinja_only = run_python(ESCAPES.format(only=(*base, "jinja_sandbox"), cases=cases))
    assert jinja_only["popen"]["value"] is None and "Context" in jinja_only["yaql_context"]["value"]
    yaql_only = run_python(ESCAPES.format(only=(*base, "yaql_data_only"), cases=cases))
    assert yaql_only["yaql_context"]["value"] is None and (tmp_path / "pwned-popen").exists()


def test_a_yaql_expression_is_parsed_once_and_evaluates_against_each_context():
    from st2lite import shims

    shims.apply()
    from orquesta.expressions import base as expr_base
    from orquesta.expressions import yql

    engine = yql.YAQLEvaluator._engine
    assert engine("$.a + 2 * $.b") is engine("$.a + 2 * $.b")
    assert expr_base.evaluate("<% ctx().a + 2 * ctx().b %>", {"a": 1, "b": 2}) == 5
    assert expr_base.evaluate("<% ctx().a + 2 * ctx().b %>", {"a": 10, "b": 0}) == 10
    with pytest.raises(Exception, match="(?i)yaql|parse|grammar|lexical"):
        expr_base.evaluate("<% ctx().a + %>", {"a": 1})
