"""Every metadata file of the aegis pack (and of the valid fixture packs) against st2's schemas.

One test per file, found by walking the packs, so a new action, sensor, rule, alias or policy
is covered as soon as it exists. The schemas are StackStorm's own (``contrib/schemas``), kept
outside the repository in ``../shared/st2-schemas`` (or ``$ST2_SCHEMAS_DIR``), and validated
with st2's semantics: draft-4 keywords plus draft-3 ``properties``, so ``required: true``
inside a property is enforced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from st2lite.loader import read_metadata_file, resource_files
from st2lite.validation import KINDS, load_schemas, registered_content

REPO = Path(__file__).resolve().parents[1]
SCHEMAS_DIR = Path(
    os.environ.get("ST2_SCHEMAS_DIR") or Path(__file__).resolve().parents[2] / "shared" / "st2-schemas"
)
# Fixture packs that are wrong on purpose are left out.
INVALID_FIXTURES = {"broken"}

pytestmark = pytest.mark.skipif(
    not (SCHEMAS_DIR / "action.json").is_file(),
    reason=f"st2 schemas not found at {SCHEMAS_DIR} (set ST2_SCHEMAS_DIR)",
)


def _packs() -> list[Path]:
    packs = [REPO / "packs" / "aegis"]
    fixtures = REPO / "tests" / "fixtures" / "packs"
    if fixtures.is_dir():
        packs += sorted(
            p for p in fixtures.iterdir() if (p / "pack.yaml").is_file() and p.name not in INVALID_FIXTURES
        )
    return packs


def _metadata_files() -> list[tuple[Path, str, Path]]:
    """(pack dir, schema kind, file) for every metadata file st2 would register."""
    found = []
    for pack in _packs():
        found.append((pack, "pack", pack / "pack.yaml"))
        for directory, kind in KINDS.items():
            found += [(pack, kind, path) for path in resource_files(pack, directory)]
    return found


FILES = _metadata_files()


def _pack_ref(pack: Path) -> str:
    meta = read_metadata_file(pack / "pack.yaml")
    return meta.get("ref") or meta["name"]


@pytest.fixture(scope="module")
def schemas():
    return load_schemas(SCHEMAS_DIR)


@pytest.mark.parametrize(("pack", "kind", "path"), FILES, ids=[str(p.relative_to(REPO)) for _, _, p in FILES])
def test_metadata_file_matches_st2_schema(schemas, pack: Path, kind: str, path: Path) -> None:
    content = read_metadata_file(path)
    assert isinstance(content, dict), f"{path} is not a mapping"
    # As st2's registrars do: a file may leave `pack` out, it is filled in before validation.
    instance = registered_content(kind, content, _pack_ref(pack))
    errors = sorted(
        schemas.validator(schemas.by_kind[kind]).iter_errors(instance), key=lambda e: list(e.path)
    )
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors)


CONFIG_SCHEMAS = [p / "config.schema.yaml" for p in _packs() if (p / "config.schema.yaml").is_file()]


@pytest.mark.parametrize("path", CONFIG_SCHEMAS, ids=[str(p.relative_to(REPO)) for p in CONFIG_SCHEMAS])
def test_config_schema_has_st2s_form(schemas, path: Path) -> None:
    # st2's ConfigSchemaAPI: a mapping of \w+ keys, each a parameter schema like an action's.
    errors = list(schemas.validator(schemas.config_schema_form).iter_errors(read_metadata_file(path)))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_plain_draft4_misses_a_required_field_that_st2_semantics_catch(schemas) -> None:
    action_schema = json.loads((SCHEMAS_DIR / "action.json").read_text())
    # An action without runner_type: st2 refuses to register it.
    action = {"name": "restart", "entry_point": "restart.py", "parameters": {}}
    assert list(Draft4Validator(action_schema).iter_errors(action)) == []
    errors = list(schemas.validator(action_schema).iter_errors(action))
    assert [(list(e.path), e.message) for e in errors] == [
        (["runner_type"], "'runner_type' is a required property")
    ]


def test_every_pack_is_covered() -> None:
    # Guards the parametrization itself: pack.yaml of aegis is always among the cases.
    assert (REPO / "packs" / "aegis", "pack", REPO / "packs" / "aegis" / "pack.yaml") in FILES
