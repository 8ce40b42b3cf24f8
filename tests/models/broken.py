"""build_model functions that fail in the ways a user's can."""

import os
import signal
from pathlib import Path

import keras


def raises(hp):
    hp.Int("units", 8, 16)
    raise RuntimeError("this layer stack cannot be built")


def not_a_model(hp):
    hp.Int("units", 8, 16)
    return "a string"


def diverges(hp):
    # A learning rate this large sends the loss to NaN within the first epoch.
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(hp.Int("units", 8, 16), activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1e12), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _small_mlp(units):
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Dense(units, activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def dies_at_48_units(hp):
    # A process killed hard (as a scheduler kills a job over its memory) writes nothing and
    # leaves no Python traceback: only a retry or the scheduler's record says what happened.
    units = hp.Int("units", 16, 64, step=16)
    if units == 48:
        os.kill(os.getpid(), signal.SIGKILL)
    return _small_mlp(units)


def dies_once_at_32_units(hp):
    # Killed hard the first time only: the file named by SNAKETUNE_TEST_MARKER remembers it.
    units = hp.Int("units", 16, 64, step=16)
    marker = Path(os.environ["SNAKETUNE_TEST_MARKER"])
    if units == 32 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return _small_mlp(units)


def out_of_memory(hp):
    # 784 x 2**31 float32 weights (6.7 TB): TensorFlow raises ResourceExhaustedError (OOM).
    return _small_mlp(hp.Fixed("width", 2**31))


def uncompiled(hp):
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Dense(hp.Int("units", 8, 16), activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def _dense_on_8x8(hp, units, activation, loss, metrics):
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Dense(hp.Int("units", 8, 16), activation="relu")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(units, activation=activation)(x))
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    return model


def ten_classes(hp):
    # For targets of more classes than it has outputs: TensorFlow fails deep in the loss.
    return _dense_on_8x8(hp, 10, "softmax", "sparse_categorical_crossentropy", ["accuracy"])


def softmax_regressor(hp):
    return _dense_on_8x8(hp, 1, "softmax", "mse", ["mae"])
