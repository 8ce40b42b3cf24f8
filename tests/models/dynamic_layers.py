"""Search spaces that depend on values of other hyperparameters, in the shapes Keras Tuner's
"Getting started" guide teaches: a loop over `range(hp.Int(...))` with a hyperparameter per
layer, and the same behind a switch."""

import keras
from keras import layers


def layers_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten())
    for i in range(hp.Int("num_layers", 1, 3)):
        model.add(layers.Dense(units=hp.Int(f"units_{i}", min_value=8, max_value=32, step=8),
                               activation=hp.Choice("activation", ["relu", "tanh"])))
    if hp.Boolean("dropout"):
        model.add(layers.Dropout(rate=0.25))
    model.add(layers.Dense(10, activation="softmax"))
    learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


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
