"""Models written the way Keras Tuner's "Getting started" guide writes them, for its one-hot
MNIST targets: no keras.Input (Keras builds the model on the data at its first fit), a
subclassed Model, and HyperModels whose fit takes the data as *args, normalises it, or crops
the images to a size that build tunes and fit reads back with hp.get."""

import keras
import keras_tuner
from keras import layers


def _sequential(hp, classes=10):
    model = keras.Sequential()
    model.add(layers.Flatten())
    model.add(layers.Dense(hp.Int("units", 8, 32, step=8), activation="relu"))
    model.add(layers.Dense(classes, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def sequential(hp):
    return _sequential(hp)


def sequential_of_5(hp):
    # five outputs for ten classes
    return _sequential(hp, classes=5)


class Unconfigured(keras.Model):
    # Without get_config, Keras cannot save a subclassed Model that takes arguments.
    def __init__(self, units, classes=10, **kwargs):
        super().__init__(**kwargs)
        self.units, self.classes = units, classes
        self.flatten = layers.Flatten()
        self.hidden = layers.Dense(units, activation="relu")
        self.scores = layers.Dense(classes, activation="softmax")

    def call(self, x):
        return self.scores(self.hidden(self.flatten(x)))


class Classifier(Unconfigured):
    def get_config(self):
        # what Keras needs to make it again when a saved model is loaded
        return {**super().get_config(), "units": self.units, "classes": self.classes}


def _subclassed(hp, classes, cls=Classifier):
    model = cls(hp.Int("units", 8, 32, step=8), classes)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def subclassed(hp):
    return _subclassed(hp, 10)


def subclassed_of_5(hp):
    return _subclassed(hp, 5)


def subclassed_without_get_config(hp):
    return _subclassed(hp, 10, Unconfigured)


class Shuffled(keras_tuner.HyperModel):
    """fit(hp, model, *args, **kwargs): the data passed on to model.fit as it came."""

    def build(self, hp):
        return _sequential(hp)

    def fit(self, hp, model, *args, **kwargs):
        return model.fit(*args, shuffle=hp.Boolean("shuffle"), **kwargs)


class Normalized(keras_tuner.HyperModel):
    """Preprocessing in fit: a Normalization layer called on the training arrays."""

    def build(self, hp):
        return _sequential(hp)

    def fit(self, hp, model, x, y, **kwargs):
        if hp.Boolean("normalize", default=True):
            x = layers.Normalization()(x)
        return model.fit(x, y, **kwargs)


class Cropped(keras_tuner.HyperModel):
    """build tunes the image size, fit crops the images to it (hp.get): the model, built at
    its first fit, takes size x size images; built on the images as they come (28 x 28), it
    would take none that fit gives it."""

    def __init__(self, classes=10, subclassed=False, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.subclassed = classes, subclassed

    def build(self, hp):
        hp.Int("image_size", 10, 28)
        return _subclassed(hp, self.classes) if self.subclassed else _sequential(hp, self.classes)

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        size = hp.get("image_size")
        if validation_data:
            x_val, y_val = validation_data
            validation_data = (x_val[:, :size, :size, :], y_val)
        return model.fit(x[:, :size, :size, :], y, validation_data=validation_data, **kwargs)
