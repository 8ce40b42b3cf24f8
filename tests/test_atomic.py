"""Every result file is written under a temporary name and renamed, so no crash leaves a
half-written file that looks complete."""

import ast
import os
from pathlib import Path

import pytest

from snaketune.core.atomic import atomic_path, remove_temporaries, write_csv, write_json, write_text

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {"to_csv", "write_text", "write_bytes", "save", "savefig", "dump", "tofile"}
# atomic.py is the one place that renames; a job's log must grow while the job runs.
# Logs, and the fork server's lock and log files: none of them a result.
EXEMPT = {"snaketune/core/atomic.py", "snaketune/workflow/joblog.py", "snaketune/core/forkserver.py"}


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.csv"
    target.write_text("old,complete\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new,half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_a_finished_write_replaces_the_file_in_one_step(tmp_path):
    import pandas as pd

    write_csv(tmp_path / "t.csv", pd.DataFrame({"a": [1]}))
    write_json(tmp_path / "t.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]


def test_the_data_and_the_rename_reach_the_disk_before_a_write_returns(tmp_path, monkeypatch):
    # A rename without fsync can survive a power cut while the file's data does not: the
    # file's data is flushed before the rename, the folder's entry after it.
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(
        os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), fsync(fd))
    )
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), replace(a, b)))
    write_text(tmp_path / "summary.md", "# done\n")
    target = str(tmp_path / "summary.md")
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(str(tmp_path / ".summary.md.")) and events[1][1] == target
    assert events[2][1] == str(tmp_path)


def test_the_temporaries_of_a_killed_write_are_removed_and_no_other_file(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"the model")
    leftovers = [tmp_path / ".model.keras.0badc0de.keras", tmp_path / ".model.keras.12345678.keras"]
    kept = [tmp_path / ".metrics.csv.0badc0de.csv", tmp_path / ".model.keras.notahex.keras", tmp_path / "x.keras"]
    for path in leftovers + kept:
        path.write_bytes(b"")
    assert sorted(remove_temporaries(target)) == sorted(leftovers)
    assert sorted(tmp_path.iterdir()) == sorted([target, *kept])
    assert remove_temporaries(tmp_path / "nowhere" / "model.keras") == []


def _unsafe_writes(path: Path) -> list[str]:
    """Writing calls whose target is not a temporary path from `atomic_path`."""
    tree = ast.parse(path.read_text())
    temporaries = {
        item.optional_vars.id
        for node in ast.walk(tree)
        if isinstance(node, ast.With)
        for item in node.items
        if isinstance(item.context_expr, ast.Call)
        and getattr(item.context_expr.func, "id", "") == "atomic_path"
        and isinstance(item.optional_vars, ast.Name)
    }
    atomic_api = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "snaketune.core.atomic"
        for alias in node.names
    }
    unsafe = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        if name == "open":
            mode = (
                node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            )
            if not (isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax")):
                continue
        elif name not in WRITERS or (isinstance(node.func, ast.Name) and name in atomic_api):
            continue
        if name in ("write_text", "write_bytes", "to_csv", "savefig", "tofile") and isinstance(
            node.func, ast.Attribute
        ):
            target = node.func.value if name in ("write_text", "write_bytes") else (node.args[0] if node.args else None)
        else:
            target = node.args[0] if node.args else None
        if name == "save" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "np":
            target = node.args[0] if node.args else None
        if name == "dump" and len(node.args) > 1:
            target = node.args[1]
        if not (isinstance(target, ast.Name) and target.id in temporaries):
            unsafe.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)[:80]}")
    return unsafe


def test_the_package_and_scripts_write_files_only_through_atomic_paths():
    sources = [
        p
        for folder in ("snaketune", "scripts")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if str(p.relative_to(ROOT)) not in EXEMPT
    ]
    assert sources
    unsafe = [line for path in sources for line in _unsafe_writes(path)]
    assert not unsafe, "files written in place:\n" + "\n".join(unsafe)


def test_the_check_catches_a_file_written_in_place(tmp_path, monkeypatch):
    source = tmp_path / "writer.py"
    source.write_text(
        "from snaketune.core.atomic import atomic_path, write_text\n"
        "def ok(frame, path):\n"
        "    with atomic_path(path) as tmp:\n"
        "        frame.to_csv(tmp)\n"
        "    write_text(path, 'x')\n"
        "def in_place(frame, path, obj):\n"
        "    frame.to_csv(path)\n"
        "    path.write_text('x')\n"
        "    json.dump(obj, open(path, 'w'))\n"
    )
    monkeypatch.setattr("test_atomic.ROOT", tmp_path)
    unsafe = _unsafe_writes(source)
    assert [line.split()[0] for line in unsafe] == ["writer.py:7", "writer.py:8", "writer.py:9", "writer.py:9"]


def test_a_written_file_is_as_readable_as_any_new_file(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text(tmp_path / "summary.md", "# a study\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "summary.md").stat().st_mode & 0o777 == 0o644


def test_the_folders_a_write_creates_reach_the_disk_with_it(tmp_path, monkeypatch):
    # The fsync of the file's own folder makes its entry durable, not that folder's entry in
    # its parent: each folder made on the way is flushed in its parent, top down, before the
    # file is renamed into place.
    events = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(os.readlink(f"/proc/self/fd/{fd}")), fsync(fd)))
    write_text(tmp_path / "trials" / "t1" / "metrics.csv", "status\ncompleted\n")
    assert events[:2] == [str(tmp_path), str(tmp_path / "trials")]
    assert events[2].startswith(str(tmp_path / "trials" / "t1" / ".metrics.csv."))  # the file's data
    assert events[3:] == [str(tmp_path / "trials" / "t1")]
    events.clear()
    write_text(tmp_path / "trials" / "t1" / "history.csv", "epoch\n")  # no new folder: nothing more
    assert len(events) == 2 and events[1] == str(tmp_path / "trials" / "t1")
