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


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ '1.2.3' | version_compare('1.2.4') }}", -1),
        ("{{ '1.10.0' | version_compare('1.9.9') }}", 1),
        ("{{ '1.0.0-rc.1' | version_compare('1.0.0') }}", -1),
        ("{{ '1.0.0-alpha.2' | version_compare('1.0.0-alpha.10') }}", -1),
        ("{{ '1.0.0-alpha' | version_compare('1.0.0-alpha.1') }}", -1),
        ("{{ '1.0.0-beta' | version_compare('1.0.0-alpha.beta') }}", 1),
        ("{{ '1.0.0+build.1' | version_equal('1.0.0') }}", True),
        ("{{ '2.0.0' | version_more_than('1.9.9') }}", True),
        ("{{ '2.0.0' | version_less_than('1.9.9') }}", False),
        ("{{ '1.2.3' | version_match('>=1.2.0') }}", True),
        ("{{ '1.2.3' | version_match('<1.2.3') }}", False),
        ("{{ '1.2.3' | version_match('!=1.2.3') }}", False),
        ("{{ '1.2.3' | version_bump_major }}", "2.0.0"),
        ("{{ '1.2.3' | version_bump_minor }}", "1.3.0"),
        ("{{ '1.2.3-rc.1' | version_bump_patch }}", "1.2.4"),
        ("{{ '1.2.3' | version_strip_patch }}", "1.2"),
    ],
)
def test_st2_version_filters(context, template, expected):
    assert render_template(template, context) == expected


def test_version_filters_refuse_what_is_not_semver(context):
    with pytest.raises(ValueError, match="not valid SemVer"):
        render_template("{{ '1.2' | version_compare('1.2.0') }}", context)
