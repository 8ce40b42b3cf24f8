"""Keras Tuner's errors, raised as its "Handling failed trials" guide has a user raise them:
FailedTrialError marks one trial failed, a FatalError stops the search."""

import keras
import keras_tuner
from keras_tuner import errors


def _raising(error):
    def build_model(hp):
        hp.Int("units", 8, 16, step=8)
        raise error("the data set needs the user's attention")

    return build_model


fatal = _raising(errors.FatalError)
fatal_value = _raising(errors.FatalValueError)
fatal_type = _raising(errors.FatalTypeError)
fatal_runtime = _raising(errors.FatalRuntimeError)
failed = _raising(errors.FailedTrialError)


def failed_from_os_error(hp):
    # The user's verdict on what they caught: this trial failed, whatever it failed of.
    hp.Int("units", 8, 16, step=8)
    try:
        open("/nonexistent/snaketune/model/weights")
    except OSError as error:
        raise errors.FailedTrialError("no weights for this size") from error


class FatalInFit(keras_tuner.HyperModel):
    def build(self, hp):
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(hp.Int("units", 8, 16, step=8), activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, **kwargs):
        raise errors.FatalValueError("the data set needs the user's attention")
