"""Search spaces that depend on values of other hyperparameters, beyond the loop over
`range(hp.Int(...))` of Keras Tuner's guide (examples/keras_tuner_guide.py): the same loop
behind a switch, and a gate of two switches together."""

import keras
from keras import layers


def nested(hp):
    model = keras.Sequential([layers.Flatten()])
    if hp.Boolean("deep"):
        for i in range(hp.Int("depth", 1, 3)):
            model.add(layers.Dense(hp.Int(f"width_{i}", 8, 16, step=8), activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def asks_less(hp):
    """Asks for `width` only when exactly one of two switches is on, a gate no single one explains."""
    model = keras.Sequential([layers.Flatten()])
    first, second = hp.Boolean("first"), hp.Boolean("second")
    if first != second:
        model.add(layers.Dense(hp.Int("width", 8, 16, step=8)))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def pooled(hp):
    """Builds at its defaults, not at the Int's maximum: five halvings leave no pixel of 28."""
    model = keras.Sequential([keras.Input((28, 28, 1))])
    for _ in range(hp.Int("blocks", 1, 6)):
        model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
