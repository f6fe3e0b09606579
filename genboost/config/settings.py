"""The config as YAML would read it, before the schema validates it.

Snakemake's `--config` hands nested values over as strings (`experiments={x: {enabled: true}}` gives the
string "true"), and PyYAML reads `3e-5` (no dot) as a string too. So before validation every string that
stands where the schema (genboost/config/schema.yaml) takes no string is read the way YAML 1.2
reads a plain scalar: "true" -> True, "1e-3" -> 0.001, "null" -> None. The schema then checks types and
ranges on real numbers; a string that reads as nothing else is left for the schema to report.

The schema is also the one source of the config's defaults: `checked` fills them in, and `defaults`
gives them to the code that reads a config not validated (and to the tests that keep Cell's and config.yaml's
values equal to them).
"""

from __future__ import annotations

import copy
import math
import re
from functools import cache
from pathlib import Path

import yaml

from genboost.errors import ConfigError

# Inside the package (package data), so that an installed genboost finds it without a checkout.
SCHEMA = Path(__file__).with_name("schema.yaml")

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


def load_schema() -> dict:
    """The schema, read afresh."""
    return yaml.safe_load(SCHEMA.read_text())


@cache
def _schema() -> dict:
    return load_schema()


def defaults(*where: str) -> dict:
    """The `default:` of each property of the schema's node at `where` (the keys from its root, as in
    `defaults("properties", "train")`): what `checked` fills in where a config leaves the key out.
    A fresh copy, so that a caller may change it."""
    node = _schema()
    for key in where:
        node = node[key]
    return copy.deepcopy({key: spec["default"] for key, spec in node["properties"].items() if "default" in spec})


def filled(values: dict, *where: str) -> dict:
    """`values` and, after them (where `checked` puts them), the schema's defaults at `where` of the
    keys they leave out."""
    return {**values, **{key: value for key, value in defaults(*where).items() if key not in values}}


def experiment_defaults() -> dict:
    """The defaults of an experiment's own keys (config key experiments.<name>: enabled, dataset)."""
    return defaults("properties", "experiments", "additionalProperties")


def checked(config: dict) -> dict:
    """The config as the pipeline uses it: YAML scalars read, checked against the schema (a ConfigError with one
    line per problem), and given the schema's defaults where it leaves a key out."""
    config = coerced(config, _schema())
    problems = schema_problems(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def schema_problems(config: dict) -> list[str]:
    """Each place where `config` breaks the schema, one line each: the config key, the value and what is expected
    (not a dump of the whole schema). The same pass fills in the defaults of the keys `config` leaves out."""
    return sorted({_problem(e) for e in _validator().iter_errors(config)})


@cache
def _validator():
    """A validator of the schema that fills in each property's `default:` before checking that object's
    properties: the recipe Snakemake's `validate` follows (the jsonschema FAQ's), built once per process, since
    `validate` re-reads the schema on every call and a second pass would check the config twice."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def fill_then_check(validator, properties, instance, schema):
        for key, spec in properties.items():
            if "default" in spec and isinstance(instance, dict):
                instance.setdefault(key, copy.deepcopy(spec["default"]))  # a copy: the schema is shared
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(Draft202012Validator, {"properties": fill_then_check})(_schema())


def _problem(error) -> str:
    key = "config key " + (".".join(str(p) for p in error.absolute_path) or "(the top level)")
    given = repr(error.instance)
    if error.validator == "additionalProperties" and "properties" in error.schema:
        return f"{key}: {error.message}; allowed: {sorted(error.schema['properties'])}"
    if error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        return f"{key}: {error.schema['description']}"  # the schema's words: the value may be a whole entry
    if not error.message.startswith(given):
        return f"{key}: {_short(error.message)}"  # says what is missing or unexpected, without the value
    said = f"{key}: {_short(given)}{error.message[len(given) :]}"
    required = error.schema.get("required", [])
    if error.validator == "type" and isinstance(error.instance, str) and len(required) == 1:
        # `label: mdvis` where an object of one required key is meant
        said += f"; write {error.absolute_path[-1]}: {{{required[0]}: {error.instance}}}"
    return said


def _short(text: str, most: int = 80) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


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


def schedule_warnings(experiment) -> list[str]:
    """Where a run is shorter than the cosine schedule's period `t_max`, so its learning rate never anneals to the
    minimum (a shortened `epochs` or `sam_epochs` left with the default t_max): one warning per run-length key.
    `experiment`: a genboost.config.study.Experiment (its name, grid, train settings and sweep)."""
    name, levels = experiment.name, lambda key: experiment.sweep.get(key, (experiment.train[key],))
    rhos = experiment.grid["rho"]
    t_max = max(levels("t_max"))
    said = []
    for key, runs in (("epochs", any(r == 0 for r in rhos)), ("sam_epochs", any(r > 0 for r in rhos))):
        shortest = min(levels(key))
        if runs and t_max > shortest:
            said.append(
                f"experiments.{name}: train.t_max {t_max} exceeds train.{key} {shortest}: the cosine schedule "
                f"stops before the learning rate anneals; set t_max: {shortest} to anneal within the run"
            )
    return said


def check_finite(value, key: str) -> None:
    """No inf or nan anywhere: JSON Schema has no word for a finite float."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key}: {value!r} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{key}.{k}" if key != "config" else k)
    elif isinstance(value, list):
        for v in value:
            check_finite(v, key)
