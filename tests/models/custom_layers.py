"""Layers of a user's own in a model file: two that Keras can save and load again (one
registered with Keras, one not), and two that it cannot."""

from dataclasses import dataclass

import keras
from keras import layers


class Scale(layers.Layer):
    # Neither registered nor with a get_config: Keras records the plain factor by itself.
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


@keras.saving.register_keras_serializable(package="snaketune_tests")
class Shift(layers.Layer):
    def __init__(self, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def call(self, x):
        return x - self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


@dataclass
class Widths:
    hidden: int


class Block(layers.Layer):
    # Takes an object that Keras cannot record, and has no get_config to say what it holds.
    def __init__(self, widths, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(widths.hidden, activation="relu")

    def call(self, x):
        return self.dense(x)


def _model(hp, layer):
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Flatten(),
            layer,
            layers.Dense(hp.Int("units", 8, 16, step=8), activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def unregistered(hp):
    return _model(hp, Scale(0.5))


def registered(hp):
    return _model(hp, Shift(0.1))


def unsaveable(hp):
    return _model(hp, Block(Widths(16)))


def local_layer(hp):
    # A class made anew by each call: no name in the file to find it by when loading.
    class Double(layers.Layer):
        def call(self, x):
            return x * 2.0

    return _model(hp, Double())
