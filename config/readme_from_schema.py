"""Write the key reference of config/README.md from config/schema.yaml.

    python config/readme_from_schema.py           # rewrite the generated section in place
    python config/readme_from_schema.py --check   # exit 1 if it is not what the schema gives

The section lies between the two marker comments below; everything else in config/README.md
is written by hand. Each key of the schema gets one row: its dotted path, type, default,
allowed values and the schema's own description, so that the descriptions have one source.
Needs only PyYAML (no Snakemake, no TensorFlow)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.yaml"
README = HERE / "README.md"
BEGIN = "<!-- generated from schema.yaml by config/readme_from_schema.py -->"
END = "<!-- end generated -->"
HEADER = "| key | type | default | allowed | description (from `schema.yaml`) |\n|---|---|---|---|---|"


def _literal(value) -> str:
    """A value as it would be written in the YAML config."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (dict, list)):
        return "`" + json.dumps(value) + "`"
    return f"`{value}`"


def _type(node: dict) -> str:
    if "enum" in node:
        names = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}
        return " or ".join(dict.fromkeys(names.get(type(v), "any") for v in node["enum"]))
    if "oneOf" in node:
        return " or ".join(_type(branch) for branch in node["oneOf"])
    kind = node.get("type")
    if kind is None:
        return "any"
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for k in kinds:
        if (
            k == "object"
            and "properties" in node
            and set(node.get("required", [])) >= set(node["properties"])
            and len(node["properties"]) <= 3
        ):
            words.append("{" + ", ".join(node["properties"]) + "}")
        elif k == "object" and isinstance(node.get("additionalProperties"), dict) and "properties" not in node:
            words.append("mapping of names to " + _type(node["additionalProperties"]))
        elif k == "array" and "items" in node:
            words.append("list of " + _type(node["items"]))
        else:
            words.append(k)
    return " or ".join(words)


def _allowed(node: dict) -> str:
    parts = []
    if "enum" in node:
        parts.append(", ".join(_literal(v) for v in node["enum"]))
    bounds = [("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")]
    for key, sign in bounds:
        if key in node:
            parts.append(f"{sign} {node[key]}")
    if "pattern" in node:
        parts.append(f"matches `{node['pattern']}`")
    if "minItems" in node:
        parts.append(f"at least {node['minItems']} item{'s' if node['minItems'] != 1 else ''}")
    if "minProperties" in node:
        parts.append(f"at least {node['minProperties']} entr{'ies' if node['minProperties'] != 1 else 'y'}")
    for branch in node.get("oneOf", []):
        branch_allowed = _allowed(branch)
        if branch_allowed:
            parts.append(f"{_type(branch)}: {branch_allowed}")
        for name, prop in branch.get("properties", {}).items():
            if _allowed(prop):
                parts.append(f"`{name}`: {_allowed(prop)}")
    if isinstance(node.get("items"), dict) and _allowed(node["items"]):
        parts.append("each " + _allowed(node["items"]))
    if isinstance(node.get("additionalProperties"), dict) and _allowed(node["additionalProperties"]):
        parts.append("each " + _allowed(node["additionalProperties"]))
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Text for a table cell: on one line, its `|` escaped, and `<name>` kept as text (outside
    code spans, Markdown would take it for an HTML tag and show nothing)."""
    text = " ".join(text.split()).replace("|", "\\|")
    pieces = text.split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(pieces))


def rows(schema: dict) -> list[tuple[str, dict, bool]]:
    """Every key of the schema, depth first in the schema's order: (dotted path, node, required)."""
    out = []

    def walk(node: dict, prefix: str) -> None:
        required = set(node.get("required", []))
        for name, child in node.get("properties", {}).items():
            path = f"{prefix}{name}"
            out.append((path, child, name in required))
            if "properties" in child:
                walk(child, path + ".")
            elif (
                isinstance(child.get("additionalProperties"), dict)
                and "type" not in child["additionalProperties"]
                and "oneOf" in child["additionalProperties"]
            ):
                out.append((f"{path}.<name>", child["additionalProperties"], False))

    walk(schema, "")
    return out


def render(schema: dict) -> str:
    """The generated section, markers included."""
    lines = [BEGIN, HEADER]
    for path, node, required in rows(schema):
        default = "(required)" if required else _literal(node["default"]) if "default" in node else "-"
        cells = [f"`{path}`", _type(node), default, _allowed(node), node.get("description", "")]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def rewrite(readme: str, section: str) -> str:
    """README text with the generated section replaced by `section`."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"config/README.md has no section between {BEGIN!r} and {END!r}")
    rest = readme[end + len(END) :]
    return readme[:start] + section + (rest[1:] if rest.startswith("\n") else rest)


def load_schema(path: Path = SCHEMA) -> dict:
    return yaml.safe_load(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the section is up to date")
    args = parser.parse_args(argv)
    current = README.read_text()
    wanted = rewrite(current, render(load_schema()))
    if args.check:
        if wanted != current:
            print(
                "config/README.md is not what config/schema.yaml gives: run python config/readme_from_schema.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if wanted != current:
        README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
