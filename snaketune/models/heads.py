"""What the built-in models put on top for a task (snaketune.data.task): the output layer, the loss
and the metrics Keras reports."""

import keras
import numpy as np

from snaketune.data.task import BUILTIN_METRICS


def output_layer(x, task: str, outputs: int):
    if task is None:
        raise ValueError("the built-in models predict one target array; this data's y is a dict of several "
                         "(several outputs): use a build_model(hp) or HyperModel of your own")
    activation = {"classification": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}.get(task)
    return keras.layers.Dense(outputs, activation=activation)(x)


def compile_for(model, task: str, learning_rate: float) -> None:
    if task == "classification":
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    elif task in ("binary", "multilabel"):
        loss = "binary_crossentropy"
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy"),
                   keras.metrics.AUC(name="auc", multi_label=task == "multilabel")]
    else:
        loss, metrics = "mse", ["mae"]
    assert [m if isinstance(m, str) else m.name for m in metrics] == BUILTIN_METRICS[task]  # what the config checks
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics)


def normalized(x, stats):
    """A Normalization layer with the training split's mean and variance (as `adapt` would
    find them): per feature, or one pair for an image's values; a feature that never varies
    there is only centred."""
    if stats is None:  # discovering the search space: no data at hand
        return x
    mean, variance = stats
    variance = np.where(variance > 1e-6, variance, 1.0)
    if np.ndim(mean) == 0:
        return keras.layers.Normalization(axis=None, mean=float(mean), variance=float(variance))(x)
    return keras.layers.Normalization(mean=mean, variance=variance)(x)
