"""A user's code: the function or class a `path/to/file.py:name` setting names, and the
environment of the child processes that try it before any job runs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from snaketune import tf_logging


def load(spec: str, error, where: str, what: str = "function"):
    """What `spec` names, or `error` (an exception class) with a message that starts with `where`."""
    file, name = spec.rsplit(":", 1)
    path = Path(file)
    module_spec = importlib.util.spec_from_file_location(f"snaketune_user_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as raised:
        raise error(f"{where}: importing '{file}' raised {type(raised).__name__}: {raised}") from raised
    found = getattr(module, name, None)
    if not callable(found):
        raise error(f"{where}: '{file}' has no {what} '{name}'")
    return found


def child_env() -> dict:
    """This environment, with this snaketune first on the child's import path."""
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    tf_logging.quiet(env)
    return env
