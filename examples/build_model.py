"""A Keras Tuner model-building function, exactly as a Keras Tuner user writes it.

Use it with `model: {build_model: examples/build_model.py:build_model}`; snaketune discovers
its hyperparameters from the hp.* calls, including the conditional ones.
"""

import keras


def build_model(hp):
    inputs = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(hp.Int("units", 32, 256, step=32), activation="relu")(x)
    if hp.Boolean("extra_layer"):
        with hp.conditional_scope("extra_layer", [True]):
            x = keras.layers.Dense(hp.Int("extra_units", 16, 64, step=16), activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
