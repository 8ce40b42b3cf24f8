"""The package's layers (pyproject.toml, [tool.importlinter]): workflow on top, then report and
study side by side, trial, models, search, data, core. A module imports only from its own layer
and those below it, imports inside functions included; import-linter checks it."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(root: Path) -> subprocess.CompletedProcess:
    # import-linter's own command (lint-imports), run by this Python wherever its script lies
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run(
        [sys.executable, "-c", command, "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_points_down_the_layers():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path):
    """The contract is not vacuous: one import of the top layer from the bottom one, made late
    inside a function, is reported with both modules named."""
    shutil.copytree(ROOT / "snaketune", tmp_path / "snaketune", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "snaketune" / "core" / "errors.py", "a") as fh:
        fh.write("\n\ndef _upward():\n    from snaketune.workflow import joblog\n\n    return joblog\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "snaketune.core.errors -> snaketune.workflow.joblog" in result.stdout
