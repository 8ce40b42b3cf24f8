"""A regression target's units, taken out of the built-in models' training.

The built-in models end a regression in a linear Dense layer trained from a small random start,
so they fit a target of mean ~0 and spread ~1 well and one written in other units (grams
instead of kilograms) badly: what they find depended on the unit. Here such a model learns the
standardised target z = (y - mean) / std of the training split, and a last layer without
weights, Rescaling(scale=std, offset=mean), turns z back into y. Its loss, its metrics, its
predictions and the final model's test metrics are therefore in the target's own units, and
the saved model is standard Keras (keras.models.load_model needs nothing registered).

This lives apart from mlp.py, cnn.py and heads.py because their contents are part of every
trial id of a built-in model (snaketune.study.config.Study.training_settings): a classification's
trials must keep their ids. A regression's ids take this file's content as well.
"""

from __future__ import annotations

import numpy as np


def build_model(hp, *, build, mean, std):
    """`build(hp)`'s model, its one linear output de-standardised with the target's training
    `mean` and `std` (one per target column), compiled as `build` compiled it."""
    import keras

    model = build(hp)
    mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    # A column that never varies in the training split is only centred (0 would make its
    # output constant, its gradient 0).
    std = np.where(std > 0, std, 1.0)

    def value(a):  # one column: plain floats, as Rescaling is mostly configured
        return float(a.reshape(-1)[0]) if a.size == 1 else a.tolist()

    # model.input is the inputs as the model was made with them (one tensor, or a dict of
    # named ones): the rescaled model takes its data in the same form.
    outputs = keras.layers.Rescaling(scale=value(std), offset=value(mean), name="target_units")(model.outputs[0])
    rescaled = keras.Model(model.input, outputs, name=model.name)
    # Fresh optimizer and metric objects, as `build` configured them: the discarded model's
    # are not shared with this one.
    compiled = keras.saving.deserialize_keras_object(model.get_compile_config())
    compiled["optimizer"] = _unit_free(compiled["optimizer"], float(np.mean(std**2)))
    rescaled.compile(**compiled)
    return rescaled


def _unit_free(optimizer, gradient_scale: float):
    """The optimizer with its epsilon scaled to the gradients.

    The loss (mean squared error in the target's units) is std² times that of z, and so are
    its gradients. Adam divides its step by sqrt(v) + epsilon, where sqrt(v) scales with the
    gradients and epsilon (1e-7) does not: left as it is, epsilon would dominate, and slow, the
    steps of a target whose std is ~1e-3 or less. Scaled by std² too, every step is the one a
    standardised target takes, whatever the units. (Adam, RMSprop, Adagrad, ... alike; one
    factor for several columns, their mean std², keeps a change of all their units exact.)
    """
    config = optimizer.get_config()
    if "epsilon" not in config:
        return optimizer
    return type(optimizer).from_config({**config, "epsilon": config["epsilon"] * gradient_scale})
