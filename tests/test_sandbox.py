"""Every template st2lite renders is sandboxed, as st2's are (st2common/util/jinja.py uses
``jinja2.sandbox.SandboxedEnvironment``): criteria patterns, rule parameters, alias templates
and config values see data, never Python internals."""

from __future__ import annotations

import pytest

from st2lite.aliases import AliasExecutor
from st2lite.criteria import match_criteria
from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
from st2lite.templating import RenderError, build_context, render_action_parameters, render_template

ESCAPES = [
    "{{ trigger.__class__.__mro__ }}",
    "{{ trigger.get.__self__.__class__ }}",
    "{{ ''.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.getcwd() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ st2kv.system.k.__class__ }}",
    "{{ st2kv.system.k._store }}",
]


@pytest.fixture
def context(tmp_path):
    store = KeyValueStore(str(tmp_path / "kv.sqlite"))
    store.set("k", "v")
    return build_context(store, trigger_payload={"name": "dict", "labels": {"pod": "web-1"}})


@pytest.mark.parametrize("template", ESCAPES)
def test_rule_parameter_escapes_fail_to_render(context, template):
    with pytest.raises(RenderError, match="unsafe"):
        render_action_parameters({"p": template}, {"p": {"type": "string"}}, context)


@pytest.mark.parametrize("template", ESCAPES)
def test_config_and_template_values_escapes_fail(context, template):
    with pytest.raises(Exception, match="unsafe"):
        render_template({"section": {"value": template}}, context)


def test_criteria_pattern_escape_does_not_match(context):
    # Unsandboxed, the pattern renders to "dict" and the rule matches.
    criteria = {"trigger.name": {"type": "equals", "pattern": "{{ trigger.__class__.__name__ }}"}}
    result = match_criteria(criteria, {"name": "dict"}, context)
    assert not result.matched and "unsafe" in result.reason


def test_alias_result_template_escape_is_reported_not_rendered():
    rendered = AliasExecutor(runtime=None)._render("{{ execution.__class__.__mro__ }}", {"execution": {}}, "ack")
    assert rendered.startswith('Cannot render "format" in field "ack"') and "unsafe" in rendered


def test_data_still_renders(context):
    assert render_template("{{ trigger.labels.pod }}-{{ st2kv.system.k }}", context) == "web-1-v"
    assert render_action_parameters({"n": "{{ trigger.labels | length }}"}, {"n": {"type": "integer"}}, context) == {"n": 1}
    criteria = {"trigger.labels.pod": {"type": "equals", "pattern": "{{ 'web-' ~ 1 }}"}}
    assert match_criteria(criteria, {"labels": {"pod": "web-1"}}, context).matched
