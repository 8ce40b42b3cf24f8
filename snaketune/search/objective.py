"""The objective a study optimises: a metric Keras reports, and whether to minimise or maximise it.

The direction of a metric given by name is inferred as Keras Tuner infers it
(`keras_tuner.engine.metrics_tracking.infer_metric_direction`), from a table here rather than
by deserialising Keras metrics: the workflow validates its config while Snakemake parses it,
where importing TensorFlow would cost seconds on every run. Where Keras Tuner infers the
wrong direction for a metric Keras ships (it takes every name Keras knows that is not on its
short list of "max" metrics for a loss: F1, R², cosine similarity, Pearson's and the
concordance correlation would be minimised) or none (F-beta, IoU), the direction here is the
metric's own; tests/test_objective.py compares both. Beyond Keras Tuner, a second metric of a
name (`val_auc_1`) is read as its first, and a custom metric named `..._loss`, `..._error` or
`..._crossentropy` is minimised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "min" or "max"


# Keras Tuner's "max" metrics (its _MAX_METRICS classes and _MAX_METRIC_FNS), as Keras names
# them in a history.
_MAX = {
    "acc",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "true_positives",
    "true_negatives",
    "precision",
    "recall",
    "auc",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
    "precision_at_recall",
    "recall_at_precision",
}
# Higher is better, where Keras Tuner would minimise them.
_MAX_CORRECTED = {
    "f1_score",
    "fbeta_score",
    "r2_score",
    "iou",
    "mean_iou",
    "binary_iou",
    "one_hot_iou",
    "one_hot_mean_iou",
    "cosine_similarity",
    "pearson_correlation",
    "concordance_correlation",
}
# Keras' other metrics and losses: lower is better.
_MIN = {
    "loss",
    "crossentropy",
    "ce",
    "mae",
    "mse",
    "mape",
    "msle",
    "mean_absolute_error",
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "poisson",
    "log_cosh",
    "logcosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "huber",
    "false_positives",
    "false_negatives",
    "ctc",
    "dice",
    "tversky",
    "circle",
}


def base_name(name: str) -> str:
    """A reported metric's own name: without `val_`, `weighted_`, and the `_1` Keras appends
    to a second metric of the same name."""
    name = name.removeprefix("val_").removeprefix("weighted_")
    return re.sub(r"_\d+$", "", name)


def infer_direction(name: str) -> str | None:
    """ "min", "max", or None where the name says nothing."""
    base = base_name(name)
    if base in _MAX or base in _MAX_CORRECTED:
        return "max"
    if base in _MIN or base.endswith(("_loss", "_error", "_crossentropy")):
        return "min"
    return None


def objective_from(value) -> Objective:
    """`training.objective` as the config gives it: a name, or {name, direction}."""
    if isinstance(value, str):
        direction = infer_direction(value)
        if direction is None:
            raise ValueError(f"cannot tell whether '{value}' is to be minimised or maximised")
        return Objective(value, direction)
    return Objective(value["name"], value["direction"])


def not_reported(name: str, reported: list[str]) -> str:
    """What to do about an objective the model does not report."""
    return (
        f"config: training.objective: the model does not report '{name}'; it reports "
        f"{', '.join(reported)} (choose one of those, or compile the model with the metric)"
    )
