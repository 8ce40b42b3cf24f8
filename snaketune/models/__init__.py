"""Models: the built-in hypermodels, a user's own Keras Tuner build_model(hp) or HyperModel,
all as Keras Tuner HyperModels (build(hp), fit(hp, model, *args, **kwargs)), and the check of
a user's model before any job runs."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from snaketune import user_code
from snaketune.errors import ConfigError

# The data a built-in model is built for while its hyperparameters are discovered, before any
# data is at hand: MNIST's.
NOMINAL_DATA = {"inputs": {"": [28, 28, 1]}, "task": "classification", "outputs": 10}
USER_MODELS = ("build_model", "hypermodel")


def user_model(model_spec: dict) -> tuple[str, str] | None:
    """(its key, path/to/file.py:name) of a user's model, or None for a built-in one."""
    for key in USER_MODELS:
        if model_spec.get(key):
            return key, model_spec[key]
    return None


def builtin(model_spec: dict) -> bool:
    """One of snaketune's own models (they take class labels, never one-hot rows)."""
    return user_model(model_spec) is None


def resolve(model_spec: dict, info: dict | None = None, data_dir=None):
    """The configured model as a Keras Tuner HyperModel. A built-in one is built for the
    prepared data `info` describes (its inputs, task and outputs, and the features'
    statistics in `data_dir` for its Normalization layer); a build_model(hp) is wrapped as
    Keras Tuner wraps it; a HyperModel is made with `model.args`."""
    from keras_tuner.src.engine.hypermodel import DefaultHyperModel, HyperModel

    if model_spec.get("hypermodel"):
        cls = load_user_object(model_spec["hypermodel"], "hypermodel")
        if not (isinstance(cls, type) and issubclass(cls, HyperModel)):
            raise ConfigError(f"config: model.hypermodel: '{model_spec['hypermodel']}' is not a subclass of "
                              "keras_tuner.HyperModel")
        try:
            return cls(**(model_spec.get("args") or {}))
        except Exception as error:
            raise ConfigError(f"config: model.args: '{model_spec['hypermodel']}'(**args) raised "
                              f"{type(error).__name__}: {error}") from error
    if model_spec.get("build_model"):
        return DefaultHyperModel(load_user_object(model_spec["build_model"], "build_model"))
    from snaketune.data import feature_stats

    info = info or NOMINAL_DATA
    stats = {name: feature_stats(data_dir, name) for name in info["inputs"]} if data_dir else None
    module = importlib.import_module(f"snaketune.models.{model_spec['type']}")
    return DefaultHyperModel(functools.partial(
        module.build_model, inputs={k: tuple(v) for k, v in info["inputs"].items()}, task=info["task"],
        outputs=info["outputs"], stats=stats))


def load_user_object(spec: str, key: str = "build_model"):
    """The function or class `path/to/file.py:name` names."""
    return user_code.load(spec, ConfigError, f"config: model.{key}", "function" if key == "build_model" else "class")


def _named(spec: str, message: str, key: str = "build_model") -> str:
    """Name the user's model in a message from discovery, which knows only the function."""
    if message.startswith("config: "):
        return message
    if message.startswith("build_model "):  # "build_model raised ...", "build_model must return ..."
        return f"config: model.{key}: '{spec}' {message[len('build_model '):]}"
    if message.startswith("build_model: "):
        message = message[len("build_model: "):]
    return f"config: model.{key}: '{spec}': {message}"


def space_for_job(model_spec: dict, declared: dict, data_dir=None):
    """The search space the `space` job writes. A built-in model's is known without TensorFlow
    (snaketune.builtin_space): the job starts the fork server the trials use, which imports
    TensorFlow meanwhile, and ends at once. A user's model is built, through the fork server."""
    from snaketune import builtin_space, forkserver
    from snaketune.space import Space

    if not user_model(model_spec):
        space = builtin_space.discover(model_spec["type"], Space.from_config(declared))
        if space is not None:
            if not forkserver.under_scheduler():  # the trials run in allocations of their own
                forkserver.warm()
            return space
    return forkserver.call("snaketune.models:discover_space", model_spec=model_spec, declared=declared,
                           data_dir=data_dir)


def discover_space(model_spec: dict, declared: dict, data_dir=None):
    """The model's search space, as the `space` job writes it (imports TensorFlow). A
    HyperModel's fit is tried too, on a few samples of the prepared data in `data_dir`, for the
    hyperparameters it declares there (batch size, a preprocessing switch).

    Errors of a user's model name the file and function or class.
    """
    from snaketune.data import load

    samples = None
    if model_spec.get("hypermodel") and data_dir:
        arrays, _ = load(data_dir)
        samples = {split: tuple(_head(v, 32) for v in arrays[split]) for split in ("train", "val")}
    return _discover(model_spec, declared, samples)


def _head(value, rows):
    return {k: v[:rows] for k, v in value.items()} if isinstance(value, dict) else value[:rows]


def _discover(model_spec: dict, declared: dict, samples: dict | None):
    from snaketune.kt_space import discover
    from snaketune.space import Space

    hypermodel = resolve(model_spec)
    probe = _fit_probe(hypermodel, samples) if samples else None
    try:
        return discover(hypermodel.build, Space.from_config(declared), fit_probe=probe)
    except ConfigError as error:
        named = user_model(model_spec)
        if not named:
            raise
        raise ConfigError(_named(named[1], str(error), named[0])) from None


def _fit_probe(hypermodel, samples: dict):
    """Call the HyperModel's fit(hp, model, ...) as a trial would, for one epoch on `samples`."""
    def probe(hp, model):
        from snaketune.train import fit

        settings = {"objective": {"name": "loss", "direction": "min"}, "epochs": 1, "patience": None}
        fit(hypermodel, hp, model, settings, {}, samples, early_stopping=False)
    return probe


# Building, discovering and trying a model takes seconds; longer than this is left to the jobs.
CHECK_TIMEOUT_S = 600


def check_user_model(model_spec: dict, declared: dict, data: dict, summary: dict | None, objective: dict,
                     cache_dir) -> dict | None:
    """A user's build_model(hp) or HyperModel, discovered and tried in a child process before
    any job runs: its search space, that it returns a compiled model whose output fits the
    targets, and that it reports the objective, from one epoch on a few samples of the data.

    The `space` job would discover it too, but Snakemake removes a job's existing outputs
    before it runs, so a model that fails there would take the study's space with it. This
    imports TensorFlow (seconds), so it runs once per content of the model's file, the declared
    space, the data, the objective and snaketune's code: a success is remembered in
    `cache_dir`. Returns {"space": [...], "reported": [...]}, or None where it could not be
    checked here (no TensorFlow in this environment, or slower than CHECK_TIMEOUT_S).
    """
    key_name, spec = user_model(model_spec)
    request = {"model": model_spec, "declared": declared, "data": data, "summary": summary, "objective": objective}
    code = [_file_sha256(Path(__file__).parents[1] / name)
            for name in ("kt_space.py", "space.py", "train.py", "data.py", "task.py")] + [_file_sha256(__file__)]
    key = hashlib.sha256(json.dumps({"request": request, "file": _file_sha256(spec.rsplit(":", 1)[0]),
                                     "code": code}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    print(f"snaketune: checking model.{key_name} '{spec}' (once per version of the file and the study)",
          file=sys.stderr)
    fd, result_path = tempfile.mkstemp(prefix=f".{key}.", suffix=".json", dir=cache.parent)
    os.close(fd)
    try:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", "from snaketune.models import _check_main; _check_main()", result_path],
                input=json.dumps(request), capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
                env=user_code.child_env(),
            )
        except subprocess.TimeoutExpired:
            print(f"snaketune: model.{key_name} '{spec}' took over {CHECK_TIMEOUT_S} s to check; "
                  "the space job and the trials will find any error", file=sys.stderr)
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
        raise ConfigError(f"config: model.{key_name}: '{spec}': checking it failed "
                          f"(exit status {proc.returncode}):\n{tail}")
    from snaketune.atomic import write_json

    outcome = {"space": result["space"], "reported": result["reported"]}
    write_json(cache, outcome)
    return outcome


def _file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_main() -> None:
    """The child process of `check_user_model`: argv is the result file, stdin the request."""
    result_path = sys.argv[1]
    request = json.loads(sys.stdin.read())

    from snaketune.atomic import write_text

    def result(**outcome):
        write_text(result_path, json.dumps(outcome))

    try:
        import snaketune.kt_space  # noqa: F401  (TensorFlow and Keras Tuner)
    except ImportError as error:
        result(unavailable=f"{type(error).__name__}: {error}")
        return
    from snaketune.data import sample
    from snaketune.errors import DataError

    model_spec = request["model"]
    key, spec = user_model(model_spec)
    try:
        try:
            samples = sample(request["data"], request["summary"])
        except DataError as error:
            raise ConfigError(f"config: {error}") from None
        space = _discover(model_spec, request["declared"], samples if key == "hypermodel" else None)
        reported = _try(model_spec, space, samples, request["summary"], request["objective"])
    except ConfigError as error:
        result(error=_named(spec, str(error), key))
        sys.exit(2)
    result(space=json.loads(space.to_json()), reported=reported)


def _try(model_spec: dict, space, samples: dict, summary: dict | None, objective: dict) -> list[str]:
    """Build the model at the space's defaults and fit it for one epoch on `samples`; return the
    metrics it reports. Fails with what a user must change: an uncompiled model, an output that
    does not fit the targets, an objective it does not report, an error while fitting."""
    import keras

    from snaketune.config import not_reported
    from snaketune.kt_space import to_keras_tuner
    from snaketune.objective import objective_from
    from snaketune.train import build, fit, reported, score

    key, spec = user_model(model_spec)
    hypermodel = resolve(model_spec)
    hp = to_keras_tuner(space)
    try:
        model = build(hypermodel, hp)
    except Exception as error:
        raise ConfigError(f"build_model raised {type(error).__name__}: {error}") from error
    if getattr(model, "optimizer", None) is None:
        raise ConfigError("build_model returns a model that is not compiled: call model.compile(optimizer=..., "
                          "loss=..., metrics=[...]) before returning it")
    _check_output(model, summary or {"task": "classification", "num_classes": 10, "outputs": 10})
    check_loss(model, summary)
    settings = {"objective": objective, "epochs": 1, "patience": None}
    try:
        history, _, returned = fit(hypermodel, hp, model, settings, {}, samples, early_stopping=False)
        score(returned, history, objective_from(objective))
    except ValueError as error:
        if "is not among the metrics the model reports" in str(error):
            raise ConfigError(not_reported(objective["name"], reported(history))) from None
        raise ConfigError(f"fitting the model on {len(keras.tree.flatten(samples['train'][1])[0])} samples of the "
                          f"data failed: {type(error).__name__}: {str(error)[:400]}") from None
    except Exception as error:
        raise ConfigError(f"fitting the model on a few samples of the data failed: {type(error).__name__}: "
                          f"{str(error).splitlines()[0][:400] if str(error) else ''}") from None
    names = reported(history)
    if not names and isinstance(returned, dict):  # a fit that dropped the callbacks
        names = sorted(returned)
    return names


def _check_output(model, summary: dict) -> None:
    """The model's one output against the targets' task, before TensorFlow says it less clearly."""
    import numpy as np

    task = summary.get("task")
    if task is None or len(model.outputs) != 1:
        return
    units = model.outputs[0].shape[-1]
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if task == "classification" and units < summary["num_classes"]:
        raise ConfigError(f"build_model's model outputs {units} values per sample, but the targets have "
                          f"{summary['num_classes']} classes (labels 0..{summary['num_classes'] - 1}): end it with "
                          f"Dense({summary['num_classes']}, activation='softmax')")
    if task == "binary" and units not in (1, 2):
        raise ConfigError(f"build_model's model outputs {units} values per sample, but the targets are binary (0/1): "
                          "end it with Dense(1, activation='sigmoid')")
    values = int(np.prod(model.outputs[0].shape[1:]))
    if task in ("multilabel", "regression") and values != summary["outputs"]:
        raise ConfigError(f"build_model's model outputs {values} values per sample, but the targets have "
                          f"{summary['outputs']} per sample ({task})")
    if task == "regression" and activation == "softmax":
        raise ConfigError("build_model's model ends in a softmax, but the targets are real numbers (regression): "
                          "end it with a linear Dense layer")


def _loss_name(loss) -> str:
    """A compiled loss's name as Keras spells it: 'categorical_crossentropy' for the string, the
    class CategoricalCrossentropy() or the function keras.losses.categorical_crossentropy."""
    import re

    if isinstance(loss, str):
        return loss
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if name[:1].isupper() else name


def check_loss(model, summary: dict | None) -> None:
    """A classification's loss against the form of its targets: a sparse loss wants labels
    0..k-1, a categorical one one-hot rows; mixed up, Keras stops inside the first fit with a
    message about ranks, or (a sparse loss on labels it reads as rows) trains on nonsense."""
    if not summary or summary.get("task") != "classification":
        return
    name = _loss_name(getattr(model, "loss", None) or "")
    classes = summary["num_classes"]
    if summary.get("one_hot") and name.startswith("sparse_categorical"):
        raise ConfigError(f"build_model's model is compiled with loss {name}, which takes class labels 0..{classes - 1}, "
                          f"but the targets are one-hot rows of shape (n, {classes}): compile with "
                          f"loss='{name.removeprefix('sparse_')}', or give the labels (np.argmax(y, axis=1))")
    if not summary.get("one_hot") and name in ("categorical_crossentropy", "categorical_focal_crossentropy"):
        raise ConfigError(f"build_model's model is compiled with loss {name}, which takes one-hot rows of "
                          f"{classes} columns, but the targets are class labels 0..{classes - 1} of shape (n,): "
                          f"compile with loss='sparse_{name}', or give one-hot rows "
                          f"(keras.utils.to_categorical(y, {classes}))")
