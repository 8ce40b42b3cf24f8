"""A user's code: the function or class a `path/to/file.py:name` setting names, and the
environment of the child processes that try it before any job runs."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

from snaketune.core import tf_logging


def module_name(file) -> str:
    """The name a user's file is imported under (and that Keras records for its classes)."""
    return f"snaketune_user_{Path(file).stem}"


def load(spec: str, error, where: str, what: str = "function"):
    """What `spec` names, or `error` (an exception class) with a message that starts with `where`."""
    file, name = spec.rsplit(":", 1)
    module = _import(file, error, where)
    found = getattr(module, name, None)
    if not callable(found):
        raise error(f"{where}: '{file}' has no {what} '{name}'")
    return found


def _import(file, error, where: str):
    """Execute a user's file as a module, as `import` does: it is in sys.modules while it runs
    (a @dataclass looks its module up there, and fails on None with `from __future__ import
    annotations`; so do typing.get_type_hints and pickle) and stays there, as an imported
    module does. A file that fails to execute leaves no half-made module behind."""
    name = module_name(file)
    module_spec = importlib.util.spec_from_file_location(name, Path(file))
    module = importlib.util.module_from_spec(module_spec)
    before = sys.modules.get(name)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as raised:
        if before is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = before
        raise error(f"{where}: importing '{file}' raised {type(raised).__name__}: {raised}") from raised
    return module


def custom_objects(file, error, where: str) -> dict:
    """The classes and functions a user's file defines, by name, for keras.models.load_model.

    Keras finds a class of a saved model by its registered name, or else by importing its
    module, but only a module of Keras' own packages: a layer, loss or metric defined in the
    user's file and not registered with @keras.saving.register_keras_serializable() is found
    only through custom_objects. The module already imported (by the model's resolution) is
    used, so that its registrations and these objects are the same ones.

    Keras looks a name saved as a plain string ("relu", "mse", "accuracy") up in custom_objects
    before its own: a function of the user's that shares such a name is left out, lest it
    replace Keras' own in a model that used the string. (A model that uses that function
    then fails to load in the check before any job, which says to register it.)"""
    import keras

    module = sys.modules.get(module_name(file))
    if module is None or Path(getattr(module, "__file__", "") or "").resolve() != Path(file).resolve():
        module = _import(file, error, where)
    found = {}
    for key, value in vars(module).items():
        if (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == module.__name__:
            if not _keras_name(key):
                found[key] = value
            registered = keras.saving.get_registered_name(value)
            if registered != value.__name__:  # saved under "package>name", and looked up by it
                found[registered] = value
    return found


def _keras_name(name: str) -> bool:
    """Whether Keras resolves `name` itself, as it resolves a saved string."""
    import keras

    for get in (
        keras.activations.get,
        keras.losses.get,
        keras.metrics.get,
        keras.optimizers.get,
        keras.initializers.get,
        keras.regularizers.get,
        keras.constraints.get,
    ):
        try:
            get(name)
        except (ValueError, TypeError):
            continue
        return True
    return False


def child_env() -> dict:
    """This environment, with this snaketune first on the child's import path."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    tf_logging.quiet(env)
    return env
