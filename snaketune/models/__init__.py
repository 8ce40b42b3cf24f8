"""Model builders: the built-in hypermodels and a user's own Keras Tuner build_model(hp)."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from snaketune.errors import ConfigError

# The data a built-in model is built for while its hyperparameters are discovered, before any
# data is at hand: MNIST's.
NOMINAL_DATA = {"inputs": {"": [28, 28, 1]}, "task": "classification", "outputs": 10}


def resolve(model_spec: dict, info: dict | None = None, data_dir=None):
    """Return a build_model(hp) for the configured model; a built-in one built for the prepared
    data `info` describes (its inputs, task and outputs, and the features' statistics in
    `data_dir` for its Normalization layer)."""
    if "build_model" in model_spec:
        return load_user_function(model_spec["build_model"])
    from snaketune.data import feature_stats

    info = info or NOMINAL_DATA
    stats = {name: feature_stats(data_dir, name) for name in info["inputs"]} if data_dir else None
    module = importlib.import_module(f"snaketune.models.{model_spec['type']}")
    return functools.partial(module.build_model, inputs={k: tuple(v) for k, v in info["inputs"].items()},
                             task=info["task"], outputs=info["outputs"], stats=stats)


def load_user_function(spec: str):
    file, name = spec.rsplit(":", 1)
    path = Path(file)
    module_spec = importlib.util.spec_from_file_location(f"snaketune_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:
        raise ConfigError(f"config: model.build_model: importing '{file}' raised "
                          f"{type(error).__name__}: {error}") from error
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"config: model.build_model: '{file}' has no function '{name}'")
    return function


def _named(spec: str, message: str) -> str:
    """Name the user's build_model in a message from discovery, which knows only the function."""
    if message.startswith("config: "):
        return message
    if message.startswith("build_model "):  # "build_model raised ...", "build_model must return ..."
        return f"config: model.build_model: '{spec}' {message[len('build_model '):]}"
    if message.startswith("build_model: "):
        message = message[len("build_model: "):]
    return f"config: model.build_model: '{spec}': {message}"


def discover_space(model_spec: dict, declared: dict):
    """The model's search space, as the `space` job writes it (imports TensorFlow).

    Errors of a user's build_model name the file and function.
    """
    from snaketune.kt_space import discover
    from snaketune.space import Space

    try:
        return discover(resolve(model_spec), Space.from_config(declared))
    except ConfigError as error:
        if "build_model" not in model_spec:
            raise
        raise ConfigError(_named(model_spec["build_model"], str(error))) from None


# A build_model may try many builds, each importing nothing new; longer than this is left to the job.
CHECK_TIMEOUT_S = 600


def check_build_model(spec: str, declared: dict, cache_dir) -> list | None:
    """Discover a user's build_model(hp) in a child process before any job runs.

    The `space` job would discover it too, but Snakemake removes a job's existing outputs
    before it runs, so a build_model that raises there would take the study's space.json with
    it. Discovery imports TensorFlow (seconds), so it runs once per content of the file, the
    declared space and snaketune's discovery code: a success is remembered in `cache_dir`.
    Returns the discovered space (its JSON list), or None where it could not be checked here
    (no TensorFlow in this environment, or a build_model slower than CHECK_TIMEOUT_S); the
    `space` job then finds any error as before.
    """
    file = spec.rsplit(":", 1)[0]
    key = hashlib.sha256(json.dumps({
        "spec": spec,
        "file": _file_sha256(file),
        "declared": declared,
        "code": [_file_sha256(Path(__file__).parents[1] / name) for name in ("kt_space.py", "space.py")]
                + [_file_sha256(__file__)],
    }, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    print(f"snaketune: checking model.build_model '{spec}' (once per version of the file)", file=sys.stderr)
    fd, result_path = tempfile.mkstemp(prefix=f".{key}.", suffix=".json", dir=cache.parent)
    os.close(fd)
    try:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", "from snaketune.models import _check_main; _check_main()", spec, result_path],
                input=json.dumps(declared), capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
                env=_child_env(),
            )
        except subprocess.TimeoutExpired:
            print(f"snaketune: model.build_model '{spec}' took over {CHECK_TIMEOUT_S} s to discover; "
                  "the space job will check it", file=sys.stderr)
            return None
        text = Path(result_path).read_text()
        result = json.loads(text) if text else {}
    finally:
        os.unlink(result_path)
    if "error" in result:
        raise ConfigError(result["error"])
    if "unavailable" in result:
        return None
    if proc.returncode != 0 or "space" not in result:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ConfigError(f"config: model.build_model: '{spec}': discovering its search space failed "
                          f"(exit status {proc.returncode}):\n{tail}")
    from snaketune.atomic import write_text

    write_text(cache, json.dumps(result["space"]) + "\n")
    return result["space"]


def _child_env() -> dict:
    """This environment, with this snaketune first on the child's import path."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def _file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_main() -> None:
    """The child process of `check_build_model`: argv is (spec, result file), stdin the declared space."""
    spec, result_path = sys.argv[1:3]
    declared = json.loads(sys.stdin.read())

    from snaketune.atomic import write_text

    def result(**outcome):
        write_text(result_path, json.dumps(outcome))

    try:
        import snaketune.kt_space  # noqa: F401  (TensorFlow and Keras Tuner)
    except ImportError as error:
        result(unavailable=f"{type(error).__name__}: {error}")
        return
    try:
        space = discover_space({"build_model": spec}, declared)
    except ConfigError as error:
        result(error=str(error))
        sys.exit(2)
    result(space=json.loads(space.to_json()))
