"""The config's JSON schema (config/schema.yaml): read it, fill in its defaults, and turn the
first violation into one message naming the key and what was expected."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import yaml

from snaketune.core.errors import ConfigError


def load_schema(path) -> dict:
    return yaml.safe_load(Path(path).read_text())


# YAML 1.1 (PyYAML, and so Snakemake) reads 1e-3 as a string; YAML 1.2 and every user read it
# as a number.
_EXPONENT_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _numbers_as_numbers(node):
    if isinstance(node, dict):
        # the study's name is a name, whatever it looks like
        return {k: v if k == "study" else _numbers_as_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_numbers_as_numbers(v) for v in node]
    if isinstance(node, str) and _EXPONENT_NUMBER.match(node):
        return float(node)
    return node


def validate(config: dict, schema: dict) -> dict:
    """Check `config` against the JSON schema; return a copy with the schema's defaults filled in."""
    config = _numbers_as_numbers(copy.deepcopy(config))
    _fill_defaults(config, schema)
    error = jsonschema.exceptions.best_match(_Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    return config


# JSON Schema counts 10.0 as an integer; a budget or a seed of 10.0 would break range().
_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def _fill_defaults(instance, schema) -> None:
    if not isinstance(instance, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub)


def _describe(error) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        where = f"{key}." if error.absolute_path else ""
        names = ", ".join(f"'{where}{u}'" for u in unknown)
        return f"config: unknown key {names}; expected one of: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config: {key}: {error.message}"
    if error.validator == "oneOf" and error.absolute_path and error.absolute_path[-1] == "objective":
        return (
            f"config: {key}: expected the name of a metric the model reports (val_accuracy, val_loss, "
            f"val_auc, val_mae, ...) or {{name: ..., direction: min|max}}, got {error.instance!r}"
        )
    if error.validator == "enum":
        return f"config: {key}: expected one of {', '.join(map(str, error.validator_value))}, got {error.instance!r}"
    if error.validator == "type":
        return f"config: {key}: expected {error.validator_value}, got {error.instance!r}"
    return f"config: {key}: {error.message}"
