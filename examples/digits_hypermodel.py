"""A Keras Tuner HyperModel, exactly as a Keras Tuner user writes one: its build(hp) makes the
model and its fit(hp, model, ...) tunes how it is trained, here the batch size and a
preprocessing of the training images (random pixel noise, an augmentation; the images the
model is tested on are left as they are). snaketune calls both as Keras Tuner does.

The data: the 8 x 8 handwritten digits that scikit-learn ships (1,797 images, 10 classes),
from `load_digits` below (a data loader)."""

import keras
import keras_tuner
import numpy as np
from sklearn.datasets import load_digits


def load_digits_data():
    digits = load_digits()
    x, y = digits.images.astype("float32")[..., None], digits.target  # pixels 0..16
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:360], order[360:]
    return (x[train], y[train]), (x[test], y[test])


class DigitsHyperModel(keras_tuner.HyperModel):
    def __init__(self, classes=10):
        super().__init__()
        self.classes = classes

    def build(self, hp):
        inputs = keras.Input(shape=(8, 8, 1))
        x = keras.layers.Rescaling(1 / 16)(inputs)  # pixels 0..16
        x = keras.layers.Conv2D(hp.Choice("filters", [16, 32]), 3, padding="same", activation="relu")(x)
        x = keras.layers.Flatten()(keras.layers.MaxPooling2D()(x))
        x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.4, step=0.2))(x)
        model = keras.Model(inputs, keras.layers.Dense(self.classes, activation="softmax")(x))
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2, sampling="log")),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, x, y, **kwargs):
        noise = hp.Choice("noise", [0.0, 1.0])
        if noise:
            # the training images with Gaussian noise of `noise` pixel levels, drawn once, seeded
            x = x + np.random.default_rng(0).normal(0.0, noise, x.shape).astype("float32")
        return model.fit(x, y, batch_size=hp.Choice("batch_size", [16, 64]), **kwargs)
