"""The objective's direction, inferred from a metric's name as Keras Tuner infers it."""

import pytest

from snaketune.search.objective import Objective, infer_direction, objective_from

# Metrics and losses Keras ships, under the names a history reports them.
KERAS_NAMES = [
    "loss",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "auc",
    "precision",
    "recall",
    "true_positives",
    "true_negatives",
    "false_positives",
    "false_negatives",
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
    "kl_divergence",
    "poisson",
    "log_cosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "acc",
]
# Where Keras Tuner minimises what is better higher.
CORRECTED = ["f1_score", "r2_score", "cosine_similarity", "pearson_correlation", "concordance_correlation"]


@pytest.mark.parametrize("prefix", ["", "val_"])
@pytest.mark.parametrize("name", KERAS_NAMES)
def test_the_direction_is_keras_tuners(name, prefix):
    from keras_tuner.src.engine.metrics_tracking import infer_metric_direction

    assert infer_direction(prefix + name) == infer_metric_direction(prefix + name)


@pytest.mark.parametrize("name", CORRECTED)
def test_metrics_keras_tuner_would_minimise_are_maximised(name):
    from keras_tuner.src.engine.metrics_tracking import infer_metric_direction

    assert infer_metric_direction(name) == "min"
    assert infer_direction(name) == infer_direction(f"val_{name}") == "max"


@pytest.mark.parametrize("name", ["fbeta_score", "iou", "mean_iou", "one_hot_iou"])
def test_metrics_keras_ships_whose_direction_keras_tuner_cannot_tell_are_maximised(name):
    from keras_tuner.src.engine.metrics_tracking import infer_metric_direction

    assert infer_metric_direction(name) is None
    assert infer_direction(name) == "max"


def test_a_second_metric_of_the_same_name_and_unknown_names():
    assert infer_direction("val_auc_1") == "max"
    assert infer_direction("my_custom_loss") == "min"
    assert infer_direction("val_f1") is None and infer_direction("score") is None
    with pytest.raises(ValueError, match="cannot tell whether 'score'"):
        objective_from("score")
    assert objective_from({"name": "score", "direction": "max"}) == Objective("score", "max")
