"""Jinja rendering: st2kv lookups, typed expressions, casts and parameter dependencies."""

from __future__ import annotations

import jinja2
import pytest

from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
from st2lite.templating import (
    NONE_MAGIC_VALUE,
    RenderError,
    build_context,
    get_cast,
    render_action_parameters,
    render_final_parameters,
    render_template,
)


@pytest.fixture()
def store(tmp_path):
    kv = KeyValueStore(str(tmp_path / "kv.sqlite"))
    kv.set("aegis.mode", "enforce")
    kv.set("aegis", "top-level")
    kv.set("limit", "5")
    kv.set("alice:token", "alice-secret", scope="user")
    kv.set("stanley:token", "stanley-secret", scope="user")
    kv.set("token", "system-token")
    return kv


@pytest.fixture()
def ctx(store):
    return build_context(
        store,
        trigger_payload={
            "count": 3,
            "labels": {"sev": "page"},
            "hosts": ["a", "b"],
            "flag": True,
            "none": None,
        },
        action_context={"pack": "aegis", "rule": "aegis.page"},
        config_context={"region": "eu-west-1", "retries": 2},
    )


# --------------------------------------------------------------------------------------
# st2kv
# --------------------------------------------------------------------------------------


def test_dotted_keys_accumulate(ctx):
    assert render_template("{{ st2kv.system.aegis.mode }}", ctx) == "enforce"
    assert render_template("{{ st2kv.system.aegis }}", ctx) == "top-level"
    assert render_template("{{ st2kv.system['aegis.mode'] }}", ctx) == "enforce"
    assert render_template("mode={{ st2kv.system.aegis.mode }}", ctx) == "mode=enforce"


def test_missing_key_renders_empty(ctx):
    assert render_template("[{{ st2kv.system.no.such.key }}]", ctx) == "[]"
    assert render_template("{{ st2kv.system.absent }}", ctx) == ""


def test_user_scope_reads_the_context_user(store, ctx):
    assert render_template("{{ st2kv.user.token }}", ctx) == "stanley-secret"
    alice = build_context(store, action_context={"user": "alice"})
    assert render_template("{{ st2kv.user.token }}", alice) == "alice-secret"
    assert render_template("{{ st2kv.user.token }}", build_context(store, user="alice")) == "alice-secret"
    assert render_template("{{ st2kv.user.token }}", build_context(store, user="bob")) == ""
    assert render_template("{{ st2kv.system.token }}", alice) == "system-token"


def test_key_names_that_look_like_attributes(store, ctx):
    # "key", "value" or private-looking names are key segments, never lookup internals.
    store.set("svc.key", "k")
    store.set("svc.value", "v")
    store.set("svc._x", "p")
    assert render_template("{{ st2kv.system.svc.key }}/{{ st2kv.system.svc.value }}", ctx) == "k/v"
    assert render_template("{{ st2kv.system.svc['_x'] }}", ctx) == "p"


def test_decrypt_kv_decrypts_secrets_as_st2_does(store, ctx):
    store.set("aegis.api_key", "sk-123", secret=True)
    assert render_template("{{ st2kv.system.aegis.api_key }}", ctx) != "sk-123"  # st2 gives the ciphertext
    assert render_template("{{ st2kv.system.aegis.api_key | decrypt_kv }}", ctx) == "sk-123"
    with pytest.raises(ValueError, match="not an encrypted value"):  # st2 fails on a plain value too
        render_template("{{ st2kv.system.aegis.mode | decrypt_kv }}", ctx)
    with pytest.raises(ValueError, match="doesn't exist"):
        render_template("{{ st2kv.system.no.such | decrypt_kv }}", ctx)


def test_kv_values_compare_and_convert(ctx):
    assert render_template("{{ st2kv.system.aegis.mode == 'enforce' }}", ctx) is True
    assert render_template("{{ st2kv.system.limit | int + 1 }}", ctx) == 6
    assert render_template("{% if st2kv.system.absent %}yes{% else %}no{% endif %}", ctx) == "no"


def test_kv_value_changes_are_seen_by_new_contexts(store):
    store.set("aegis.mode", "monitor")
    assert render_template("{{ st2kv.system.aegis.mode }}", build_context(store)) == "monitor"


def test_context_names(ctx):
    assert set(ctx) == {"trigger", "st2kv", "action_context", "config_context"}
    assert render_template("{{ config_context.region }}/{{ action_context.pack }}", ctx) == "eu-west-1/aegis"


# --------------------------------------------------------------------------------------
# render_template
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ trigger.count }}", 3),
        ("{{trigger.count}}", 3),
        ("{{- trigger.count -}}", 3),
        ("{{ trigger.labels }}", {"sev": "page"}),
        ("{{ trigger.hosts }}", ["a", "b"]),
        ("{{ trigger.flag }}", True),
        ("{{ trigger.none }}", None),
        ("{{ trigger.count * 2 }}", 6),
        ("{{ trigger.count }} alerts", "3 alerts"),
        ("{{ trigger.count }}{{ trigger.count }}", "33"),
        ("{{ trigger.hosts | join(',') }}", "a,b"),
        ("no template", "no template"),
    ],
)
def test_single_expression_keeps_type(ctx, template, expected):
    result = render_template(template, ctx)
    assert result == expected
    assert type(result) is type(expected)


def test_recurses_into_containers(ctx):
    value = {
        "a": ["{{ trigger.count }}", "x{{ trigger.count }}"],
        "b": {"c": "{{ trigger.labels.sev }}"},
        "d": 4,
    }
    assert render_template(value, ctx) == {"a": [3, "x3"], "b": {"c": "page"}, "d": 4}


def test_strict_undefined(ctx):
    with pytest.raises(jinja2.UndefinedError):
        render_template("{{ nope }}", ctx)
    with pytest.raises(jinja2.UndefinedError):
        render_template("x {{ trigger.nope }}", ctx)
    with pytest.raises(jinja2.UndefinedError):
        render_template("{{ trigger.labels.nope }}", ctx)


def test_trim_and_lstrip_blocks(ctx):
    template = "hosts:\n    {% for h in trigger.hosts %}\n- {{ h }}\n    {% endfor %}\ndone"
    assert render_template(template, ctx) == "hosts:\n- a\n- b\ndone"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ trigger.labels | to_json_string }}", '{"sev": "page"}'),
        ("{{ trigger.labels | to_yaml_string }}", "sev: page\n"),
        ('{{ "a\\"b\\nc" | json_escape }}', 'a\\"b\\nc'),
        ("{{ 'web-12' | regex_match('web-[0-9]+') }}", True),
        ("{{ 'xweb-12' | regex_match('web') }}", False),
        ("{{ 'xweb-12' | regex_search('web') }}", True),
        ("{{ 'web-12' | regex_replace('[0-9]+', 'N') }}", "web-N"),
        ("{{ 'v1.2.3' | regex_substring('[0-9]+', 1) }}", "2"),
        ("{{ '{\"a\": 1}' | from_json_string }}", {"a": 1}),
        ("{{ 3725 | to_human_time_from_seconds }}", "1h2m5s"),
        ("{{ '/var/log/syslog' | basename }}", "syslog"),
        ("{{ trigger.none | use_none }}", NONE_MAGIC_VALUE),
    ],
)
def test_st2_filters(ctx, template, expected):
    assert render_template(template, ctx) == expected


# --------------------------------------------------------------------------------------
# Casts (st2common/util/casts.py)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("integer", "42", 42),
        ("integer", 4.0, 4),
        ("number", "2.5", 2.5),
        ("number", "3", 3.0),
        ("boolean", "true", True),
        ("boolean", "False", False),
        ("boolean", True, True),
        ("object", '{"a": 1}', {"a": 1}),
        ("object", "{'a': 1}", {"a": 1}),
        ("array", "[1, 2]", [1, 2]),
        ("array", "['x', 'y']", ["x", "y"]),
        ("string", "text", "text"),
        ("integer", NONE_MAGIC_VALUE, None),
        ("string", NONE_MAGIC_VALUE, None),
    ],
)
def test_casts(kind, value, expected):
    result = get_cast(kind)(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value"), [("integer", "x"), ("boolean", "yes"), ("object", "{nope"), ("string", 5)]
)
def test_bad_casts_raise(kind, value):
    with pytest.raises((ValueError, SyntaxError)):
        get_cast(kind)(value)


def test_no_cast_for_unknown_types():
    assert get_cast("null") is None
    assert get_cast(None) is None


# --------------------------------------------------------------------------------------
# Action parameters
# --------------------------------------------------------------------------------------

SCHEMA = {
    "count": {"type": "integer"},
    "ratio": {"type": "number"},
    "enabled": {"type": "boolean"},
    "labels": {"type": "object"},
    "hosts": {"type": "array"},
    "summary": {"type": "string"},
    "untyped": {},
}


def test_parameters_are_cast_by_type(ctx):
    params = {
        "count": "{{ trigger.count }}",
        "ratio": "{{ trigger.count / 2 }}",
        "enabled": "{{ trigger.flag }}",
        "labels": "{{ trigger.labels }}",
        "hosts": "{{ trigger.hosts }}",
        "summary": "{{ trigger.count }} on {{ trigger.hosts | join(',') }}",
        "untyped": "{{ trigger.count }}",
    }
    assert render_action_parameters(params, SCHEMA, ctx) == {
        "count": 3,
        "ratio": 1.5,
        "enabled": True,
        "labels": {"sev": "page"},
        "hosts": ["a", "b"],
        "summary": "3 on a,b",
        "untyped": "3",  # st2 renders to text; without a type nothing casts it back
    }


def test_string_parameter_stays_text(ctx):
    assert render_action_parameters({"summary": "{{ trigger.count }}"}, SCHEMA, ctx) == {"summary": "3"}


def test_containers_keep_lone_expression_types(ctx):
    params = {"labels": {"n": "{{ trigger.count }}", "s": "sev={{ trigger.labels.sev }}"}}
    assert render_action_parameters(params, SCHEMA, ctx) == {"labels": {"n": 3, "s": "sev=page"}}


def test_plain_values_are_untouched(ctx):
    params = {"count": 4, "hosts": ["x"], "summary": "no jinja", "enabled": False}
    assert render_action_parameters(params, SCHEMA, ctx) == params


def test_parameters_render_in_dependency_order(ctx):
    params = {
        "summary": "{{ count }} alerts, ratio {{ ratio }}",
        "ratio": "{{ count / 2 }}",
        "count": "{{ trigger.count + 1 }}",
    }
    result = render_action_parameters(params, SCHEMA, ctx)
    assert result == {"summary": "4 alerts, ratio 2.0", "ratio": 2.0, "count": 4}


def test_defaults_can_reference_parameters_and_context(ctx):
    schema = {
        "host": {"type": "string"},
        "url": {"type": "string", "default": "https://{{ host }}/{{ config_context.region }}"},
        "fixed": {"type": "string", "default": "literal"},
        "locked": {"type": "string", "default": "{{ host }}", "immutable": True},
    }
    live = render_action_parameters({"host": "web-1"}, schema, ctx)
    # st2 returns the provided parameters plus rendered (non-immutable) Jinja defaults.
    assert live == {"host": "web-1", "url": "https://web-1/eu-west-1"}
    final = render_final_parameters(schema, live, ctx)
    assert final == {"host": "web-1", "url": "https://web-1/eu-west-1", "fixed": "literal", "locked": "web-1"}


def test_final_parameters_do_not_render_values_twice(ctx):
    schema = {"cmd": {"type": "string"}}
    # A value that came out of the first rendering containing braces is data, not a template.
    assert render_final_parameters(schema, {"cmd": "echo {{ nope }}"}, ctx) == {"cmd": "echo {{ nope }}"}


def test_cycle_is_an_error_naming_it(ctx):
    with pytest.raises(RenderError) as info:
        render_action_parameters({"a": "{{ b }}", "b": "{{ c }}", "c": "{{ a }}"}, {}, ctx)
    message = str(info.value)
    assert "cyclic" in message
    for name in ("a", "b", "c"):
        assert name in message
    with pytest.raises(RenderError, match="cyclic.*self"):
        render_action_parameters({"me": "{{ me }}"}, {}, ctx)


def test_undefined_name_is_an_error_naming_parameter_and_variable(ctx):
    with pytest.raises(RenderError) as info:
        render_action_parameters({"summary": "{{ count }} {{ nowhere }}"}, SCHEMA, ctx)
    assert "'summary'" in str(info.value) and "'nowhere'" in str(info.value)
    with pytest.raises(RenderError) as info:
        render_action_parameters({"summary": "{{ trigger.labels.missing }}"}, SCHEMA, ctx)
    assert "'summary'" in str(info.value) and "missing" in str(info.value)


def test_bad_cast_is_an_error_naming_the_parameter(ctx):
    with pytest.raises(RenderError, match="'count'.*integer"):
        render_action_parameters({"count": "{{ trigger.labels.sev }}"}, SCHEMA, ctx)


def test_use_none_gives_none(ctx):
    assert render_action_parameters({"count": "{{ trigger.none | use_none }}"}, SCHEMA, ctx) == {
        "count": None
    }
