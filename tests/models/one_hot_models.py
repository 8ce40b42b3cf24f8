"""Models for targets given as one-hot rows: a categorical loss (the form Keras Tuner's guide
uses) and a sparse one, which such targets do not fit."""

import keras
from keras import layers


def _model(hp, loss):
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Flatten(),
            layers.Dense(hp.Int("units", 8, 16, step=8), activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


def categorical(hp):
    return _model(hp, "categorical_crossentropy")


def sparse(hp):
    return _model(hp, keras.losses.SparseCategoricalCrossentropy())
