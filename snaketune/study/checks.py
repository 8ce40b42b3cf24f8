"""The checks of a study's model, objective and grid before any job: a built-in model against the
data, a user's model tried in a child process (snaketune.trial.model_check), the grid's values
against the space the model declares."""

from __future__ import annotations

import json

from snaketune.core.errors import ConfigError
from snaketune.data.folds import OWN_VALIDATION
from snaketune.data.task import BUILTIN_METRICS
from snaketune.search.objective import Objective, not_reported
from snaketune.search.space import Space


def check_builtin_model(kind: str, summary: dict | None) -> None:
    """A built-in model takes what the data set gives: one target array; the cnn one array of
    images."""
    if summary is None:
        return  # MNIST
    if summary["task"] is None:
        raise ConfigError(
            f"config: model.type: the built-in {kind} predicts one target array; this data's y is a "
            f"dict of {len(summary['outputs'])} ({', '.join(summary['outputs'])}): use a "
            "model.build_model or model.hypermodel of your own"
        )
    inputs = summary["inputs"]
    if kind == "cnn" and (list(inputs) != [""] or len(inputs[""]) != 3):
        raise ConfigError(
            f"config: model.type: the built-in cnn takes one array of images (n, height, width, "
            f"channels); this data's samples are {inputs if list(inputs) != [''] else inputs['']} "
            "(an .npz's images (n, height, width) get their channel axis; a loader's must have "
            "it): use type: mlp, or a model of your own"
        )
    low, high = summary.get("x_range", {}).get("", (0.0, 1.0))
    if kind == "cnn" and (low < -1 - 1e-6 or high > 1 + 1e-6):
        # the cnn has no normalisation layer: pixels in 0..255 would train it badly, silently
        raise ConfigError(
            f"config: model.type: the built-in cnn takes images scaled to [0, 1] (as an .npz's "
            f"integer pixels are); this data's x_train runs from {low:g} to {high:g}: scale it "
            "(x / 255 for 8-bit pixels) in your data, or use type: mlp, which normalises its inputs"
        )


def builtin_reported(task: str | None) -> list[str]:
    """What a built-in model reports per epoch for a task, as Keras names it."""
    metrics = ["loss", *BUILTIN_METRICS.get(task, [])]
    return metrics + [f"val_{m}" for m in metrics]


def check_objective(objective: Objective, reported: list[str]) -> None:
    if objective.name not in reported:
        raise ConfigError(not_reported(objective.name, reported))


def check_folds(folds: int | None, summary: dict | None) -> None:
    """k-fold cross-validation folds the training and validation rows together: not data that
    gives validation arrays of its own, and at most one fold per row."""
    if not folds or summary is None:  # MNIST, fetched: split by validation_split
        return
    if summary.get("has_val"):
        raise ConfigError(OWN_VALIDATION)
    rows = summary.get("samples", {}).get("y_train")
    if rows is not None and folds > rows:
        raise ConfigError(f"config: training.folds: {folds} folds of {rows} rows; at most {rows}")


def check_grid(grid: dict, space: Space, complete: bool) -> None:
    """Every grid value must be a value of its hyperparameter.

    With `complete=False` only hyperparameters the YAML declares are checked: those a
    build_model(hp) defines are known once the space has been discovered (`complete=True`).
    """
    for name, values in grid.items():
        key = f"strategies.grid.values.{name}"
        if name not in space:
            if complete:
                raise ConfigError(
                    f"config: {key}: no hyperparameter '{name}' in the search space ({', '.join(space.names)})"
                )
            continue
        hp = space[name]
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"config: {key}: values must be distinct, got {values}")
        for value in values:
            if not hp.contains(value):
                raise ConfigError(f"config: {key}: {value!r} is not a value of space.{name} ({_range_text(hp)})")


def _range_text(hp) -> str:
    if hp.type == "choice":
        return f"one of {list(hp.values)}"
    if hp.type in ("int", "float"):
        step = f" step {hp.step}" if hp.step is not None else ""
        return f"{hp.type} from {hp.min} to {hp.max}{step}, {hp.sampling}"
    return hp.type


def check_model(study, cache_dir) -> None:
    """A user's build_model(hp) or HyperModel, discovered and tried before any job runs (see
    model_check.check_user_model), or a built-in model's space, and the grid checked against the
    hyperparameters the model declares. Imports no TensorFlow here; a user's model's success is
    remembered in `cache_dir` (outside results/). `study`: a snaketune.study.config.Study."""
    from snaketune import models
    from snaketune.models import builtin_space
    from snaketune.trial import model_check

    if not models.user_model(study.model_spec):
        # a built-in model's space is known here, without TensorFlow
        space = builtin_space.discover(study.model_spec["type"], Space.from_config(study.config["space"]))
        if space is not None and "grid" in study.enabled_strategies:
            check_grid(study.config["strategies"]["grid"]["values"], space, complete=True)
        return
    objective = study.objective
    checked = model_check.check_user_model(
        study.model_spec,
        study.config["space"],
        data=study.config["data"],
        summary=study.data_summary,
        objective={"name": objective.name, "direction": objective.direction},
        cache_dir=cache_dir,
        threads=study.config["resources"]["trial_threads"],
    )
    if checked is not None and "grid" in study.enabled_strategies:
        space = Space.from_json(json.dumps(checked["space"]))
        check_grid(study.config["strategies"]["grid"]["values"], space, complete=True)
