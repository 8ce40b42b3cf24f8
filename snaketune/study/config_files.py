"""The study's configuration as the user wrote it: config files read strictly, and `--config`
values typed as the YAML file would type them.

Snakemake reads a config file leniently (a key given twice silently takes the last value) and
reports a YAML syntax error without the file or the line. It hands the values of a nested
`--config key={...}` over as strings (YAML's base loader), so `data={"subset": 800}` would
arrive as the text '800'. Both are settled here, before the schema sees the config.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from snaketune.core.errors import ConfigError


def check_file(path) -> None:
    """Refuse a config file with a duplicated key or a YAML syntax error, naming the file, the
    line and, for a duplicate, its dotted key and where it first appeared."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        json.loads(text, object_pairs_hook=_json_mapping(path))
        return  # JSON, as Snakemake tries first
    except json.JSONDecodeError:
        pass
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "not valid YAML"
        hint = " (a tab: YAML indents with spaces only)" if "\\t" in problem or "\t" in problem else ""
        raise ConfigError(f"{path}: line {mark.line + 1}, column {mark.column + 1}: {problem}{hint}") from None
    if node is not None:
        _check_keys(node, path, [])


def _check_keys(node, path, where: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        first: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            line = key_node.start_mark.line + 1
            if key in first:
                raise ConfigError(
                    f"{path}: line {line}: duplicate key '{'.'.join([*where, key])}' (first at line {first[key]}); "
                    "give each key once"
                )
            first[key] = line
            _check_keys(value_node, path, [*where, key])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, path, [*where, str(i)])


def _json_mapping(path):
    def mapping(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ConfigError(f"{path}: duplicate key '{key}'; give each key once")
            seen.add(key)
        return dict(pairs)

    return mapping


_RESOLVER = yaml.resolver.Resolver()
_TYPED = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")


def typed(value, schema: dict | None = None):
    """A `--config` value with its text typed as a plain scalar in a YAML file is typed: '800'
    -> 800, '0.25' -> 0.25, 'false' -> False, 'null' -> None; 'relu' stays text. Where the
    schema says a key is text (a study's name, a path, a sha256), it stays text, 'null' aside
    where the key may be null."""
    schema = schema or {}
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        other = schema.get("additionalProperties")
        return {
            key: typed(item, properties.get(key, other if isinstance(other, dict) else {}))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [typed(item, schema.get("items", {})) for item in value]
    if not isinstance(value, str):
        return value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "string" in types:
        return None if value == "null" and "null" in types else value
    tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
    return yaml.SafeLoader("").construct_object(yaml.ScalarNode(tag, value)) if tag in _TYPED else value


def with_overrides(config: dict, overrides, schema: dict) -> dict:
    """`config` (Snakemake's merge of the config files and `--config`) with the `--config`
    values merged again, typed by `schema`. Snakemake's own merge keeps the semantics of
    `--config`. Values Snakemake typed itself (the top-level `key=value`) are left as it did."""
    from snakemake.utils import update_config

    merged = copy.deepcopy(config)
    update_config(merged, typed(_plain(overrides), schema))
    return merged


def _plain(value):
    """Snakemake keeps `--config` in immutable mappings."""
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
