"""The config as YAML would read it, before the schema validates it.

Snakemake's `--config` hands nested values over as strings (`experiments={x: {enabled: true}}` gives the
string "true"), and PyYAML reads `3e-5` (no dot) as a string too. So before validation every string that
stands where the schema (workflow/schemas/config.schema.yaml) takes no string is read the way YAML 1.2
reads a plain scalar: "true" -> True, "1e-3" -> 0.001, "null" -> None. The schema then checks types and
ranges on real numbers; a string that reads as nothing else is left for the schema to report.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"  # relative to the Snakefile's folder

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_SPECIAL = {
    **{s: True for s in ("true", "True", "TRUE")},
    **{s: False for s in ("false", "False", "FALSE")},
    **{s: math.inf for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: -math.inf for s in ("-.inf", "-.Inf", "-.INF")},
    **{s: math.nan for s in (".nan", ".NaN", ".NAN")},
}
_NULL = ("null", "Null", "NULL", "~", "")


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def section_defaults(schema: dict, section: str) -> dict:
    """The `default:` of each key of a top-level section of the schema: what Snakemake's validate fills in."""
    properties = schema["properties"][section].get("properties", {})
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


def checked(config: dict, schema_path: str | Path) -> dict:
    """The config as the pipeline uses it: YAML scalars read, then validated by Snakemake's `validate`, which
    fills in the schema's defaults. Raises snakemake's WorkflowError naming the key and value."""
    from snakemake.utils import validate

    config = coerced(config, load_schema(schema_path))
    validate(config, str(schema_path))
    return config


def coerced(config: dict, schema: dict) -> dict:
    """A copy of `config` with YAML scalars read where the schema takes no string."""
    return _coerce(config, schema, schema)


def _coerce(value, schema: dict, root: dict):
    schema = _resolved(schema, root)
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {k: _coerce(v, props.get(k, extra if isinstance(extra, dict) else {}), root) for k, v in value.items()}
    if isinstance(value, list):
        return [_coerce(v, schema.get("items", {}), root) for v in value]
    if isinstance(value, str):
        types = _types(schema, root)
        if value in _NULL and "null" in types:
            return None
        if types and "string" not in types:
            return _scalar(value)
    return value


def _resolved(schema: dict, root: dict) -> dict:
    """The schema with its local `$ref` merged in (properties of both kept; a property both give, such as a
    `default:` beside the referenced type, merged too)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    target = _resolved(_lookup(root, ref), root)
    merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    theirs, own = target.get("properties", {}), schema.get("properties", {})
    merged["properties"] = {**theirs, **{k: {**theirs.get(k, {}), **v} for k, v in own.items()}}
    return merged


def _lookup(root: dict, ref: str) -> dict:
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _types(schema: dict, root: dict) -> set[str]:
    """The JSON types a (sub)schema accepts; empty when it does not say (then a value is left as it is)."""
    schema = _resolved(schema, root)
    if "enum" in schema:
        return {_json_type(v) for v in schema["enum"]}
    found = schema.get("type", [])
    types = {found} if isinstance(found, str) else set(found)
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        types |= _types(option, root)
    return types


def _json_type(v) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(v), "object")


def _scalar(text: str):
    if text in _SPECIAL:
        return _SPECIAL[text]
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text
