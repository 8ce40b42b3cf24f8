"""The documentation's promises that a reader relies on: links that resolve, a short README that
keeps its quick-start commands, a key reference in config/README.md generated from the schema,
and dated measurements kept in docs/benchmarks.md. Fast: no Snakemake, no TensorFlow."""

import copy
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIG_README = ROOT / "config" / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED = [README, CONFIG_README, *DOCS]

# The quick start's two commands, as a fresh machine runs them (.ci/run runs the second's pytest).
QUICK_START = [
    "pip install -r requirements.txt && snakemake --cores all",
    "pip install -r requirements.txt -r requirements-extra.txt && python -m pytest",
]
README_MAX_LINES = 200


def load_generator():
    spec = importlib.util.spec_from_file_location("readme_from_schema", ROOT / "config" / "readme_from_schema.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


# --- Markdown helpers ---------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~)")


def prose_lines(text: str):
    """(line, in_fence) for each line; fence lines themselves count as fenced."""
    fenced = False
    for line in text.split("\n"):
        if FENCE.match(line.strip()):
            yield line, True
            fenced = not fenced
            continue
        yield line, fenced


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation other than '-' and '_'
    dropped, spaces turned into '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link: its text
    text = text.lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set:
    found, seen = set(), {}
    text = path.read_text()
    for line, fenced in prose_lines(text):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and not fenced:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    found.update(re.findall(r"""<a\s+(?:id|name)=["']([^"']+)["']""", text))
    return found


def links(path: Path):
    """(line number, target) of every Markdown link and image outside code."""
    for number, (line, fenced) in enumerate(prose_lines(path.read_text()), start=1):
        if fenced:
            continue
        line = re.sub(r"`[^`]*`", "", line)
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", line):
            yield number, target


def broken_links(path: Path, root: Path = ROOT) -> list:
    broken = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        goal = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not goal.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
            broken.append(f"{where} (no heading with anchor #{anchor})")
    return broken


# --- Links --------------------------------------------------------------------------------


def test_the_docs_exist():
    names = {p.name for p in DOCS}
    assert {
        "outputs.md",
        "strategies.md",
        "models-and-data.md",
        "rerunning.md",
        "clusters.md",
        "how-it-works.md",
        "tests.md",
        "benchmarks.md",
    } <= names, names


@pytest.mark.parametrize("path", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_sees_a_broken_link_and_a_wrong_anchor(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A `code` heading, with punctuation!\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-code-heading-with-punctuation) [ok](#page)\n"
        "[gone](missing.md) [bad](other.md#a-code-heading) [bad](#nowhere)\n"
        "`[code](not-checked.md)`\n```\n[fenced](not-checked.md)\n```\n"
    )
    found = broken_links(page, root=tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == [
        "missing.md (no such file)",
        "other.md#a-code-heading (no heading with anchor #a-code-heading)",
        "#nowhere (no heading with anchor #nowhere)",
    ]


def test_slugs_follow_githubs_rules():
    assert slug("Bring your own `build_model(hp)` or `HyperModel`") == "bring-your-own-build_modelhp-or-hypermodel"
    assert (
        slug("Measured: one core against two, and Keras Tuner with the workflow's `steps_per_execution`")
        == "measured-one-core-against-two-and-keras-tuner-with-the-workflows-steps_per_execution"
    )
    assert slug("Dry runs: the DAG's cost with trials") == "dry-runs-the-dags-cost-with-trials"


# --- The README ---------------------------------------------------------------------------


def test_the_readme_is_a_front_door():
    lines = README.read_text().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; at most {README_MAX_LINES}"


def quick_start_blocks(text: str) -> list:
    """The fenced blocks' lines between '## Quick start' and the next heading of that level."""
    section = re.search(r"^## Quick start\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    return [line for line, fenced in prose_lines(section.group(1)) if fenced]


@pytest.mark.parametrize("command", QUICK_START)
def test_the_readme_keeps_its_quick_start_commands(command):
    fenced = quick_start_blocks(README.read_text())
    assert any(line.split("#")[0].strip() == command for line in fenced), (
        f"the Quick start's fenced block no longer runs: {command}"
    )


# --- config/README.md from config/schema.yaml ---------------------------------------------


def generated_section(text: str) -> str:
    start, end = text.index(GEN.BEGIN), text.index(GEN.END)
    return text[start : end + len(GEN.END)] + "\n"


def test_config_readme_is_what_the_schema_gives():
    """After a change to config/schema.yaml: python config/readme_from_schema.py."""
    current = CONFIG_README.read_text()
    assert generated_section(current) == GEN.render(GEN.load_schema()), (
        "config/README.md's key reference differs from config/schema.yaml: run python config/readme_from_schema.py"
    )
    assert GEN.rewrite(current, GEN.render(GEN.load_schema())) == current


def test_a_description_changed_in_the_schema_alone_is_seen():
    schema = GEN.load_schema()
    changed = copy.deepcopy(schema)
    changed["properties"]["training"]["properties"]["patience"]["description"] = "something else"
    current = generated_section(CONFIG_README.read_text())
    assert GEN.render(schema) == current
    assert GEN.render(changed) != current


def test_every_schema_key_and_description_is_in_config_readme():
    section = generated_section(CONFIG_README.read_text())
    rows = {line.split(" | ")[0][2:].strip("`"): line for line in section.split("\n") if line.startswith("| `")}
    for path, node, _ in GEN.rows(GEN.load_schema()):
        assert path in rows, path
        if node.get("description"):
            assert GEN._cell(node["description"]) in rows[path], path


def schema_keys() -> set:
    return {path for path, _, _ in GEN.rows(GEN.load_schema())}


NOT_KEYS = {"model.fit", "model.keras", "space.json"}  # Keras' Model.fit, file names
KEY = re.compile(
    r"`((?:study|replicates|data|model|training|space|strategies|final|resources)"
    r"(?:\.(?:<name>|[a-z_][a-z0-9_]*))+)"
)


def named_keys(text: str) -> set:
    return set(KEY.findall(text)) - NOT_KEYS


def unknown_keys(text: str) -> set:
    keys = schema_keys()
    unknown = set()
    for key in named_keys(text):
        pattern = re.escape(key).replace(re.escape("<name>"), r"[^.]+")
        if not any(re.fullmatch(pattern, k) or k == key for k in keys):
            unknown.add(key)
    return unknown


@pytest.mark.parametrize("path", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_config_key_the_docs_name_exists(path):
    assert unknown_keys(path.read_text()) == set()


def test_the_key_check_sees_a_key_that_is_not_in_the_schema():
    assert unknown_keys("`data.path` `strategies.<name>.trials` `training.epoch`") == {"training.epoch"}


# --- Dated measurements -------------------------------------------------------------------

DATED = [
    re.compile(p)
    for p in (
        r"\bcommit [0-9a-f]{7,40}\b",
        r"\bat [0-9a-f]{7}\b(?![-\w])",
        r"\b\d+ min \d+ s\b",
        r"\bmeasured on\b",
        r"\b20\d\d-\d\d-\d\d\b",
    )
]


def dated(text: str) -> list:
    return [m.group(0) for pattern in DATED for m in pattern.finditer(text)]


@pytest.mark.parametrize(
    "path", [p for p in LINKED if p.name != "benchmarks.md"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_dated_measurements_are_only_in_benchmarks(path):
    assert dated(path.read_text()) == []


def test_the_dated_check_sees_a_timing():
    assert dated("took 9 min 9 s at 6e2332e, measured on the 2-core machine on 2026-12-02") == [
        "at 6e2332e",
        "9 min 9 s",
        "measured on",
        "2026-12-02",
    ]
    assert dated("at commit 6e2332e") == ["commit 6e2332e"]
    assert dated("a key at 4294967295, the sha256 at hand") == []
