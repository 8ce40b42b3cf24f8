"""Keras Tuner's "Getting started" study as a snaketune study: the model-building function
that tunes the number of layers and each layer's units, and MNIST prepared the way the guide
prepares it (float images with a channel axis, one-hot labels, the last 10,000 training
images held out for validation). Both are the user's code, unchanged by snaketune.

    snakemake --cores all --configfile examples/keras_tuner_guide.yaml
    MNIST_NPZ=path/to/mnist.npz snakemake --cores all --configfile examples/keras_tuner_guide.yaml
"""

import os

import keras
import numpy as np
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    # Tune the number of layers, and the units of each separately.
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(
            layers.Dense(
                units=hp.Int(f"units_{i}", min_value=32, max_value=512, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(10, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def load_mnist():
    """The guide's data preparation. Keras downloads MNIST once into ~/.keras/datasets; where
    there is no network, MNIST_NPZ names a copy of mnist.npz (Keras' layout) to read instead."""
    if os.environ.get("MNIST_NPZ"):
        with np.load(os.environ["MNIST_NPZ"]) as mnist:
            (x, y), (x_test, y_test) = (mnist["x_train"], mnist["y_train"]), (mnist["x_test"], mnist["y_test"])
    else:
        (x, y), (x_test, y_test) = keras.datasets.mnist.load_data()

    def images(a):
        return np.expand_dims(a, -1).astype("float32") / 255.0

    def one_hot(labels):
        return keras.utils.to_categorical(labels, 10)

    return {
        "x_train": images(x[:-10000]),
        "y_train": one_hot(y[:-10000]),
        "x_val": images(x[-10000:]),
        "y_val": one_hot(y[-10000:]),
        "x_test": images(x_test),
        "y_test": one_hot(y_test),
    }
