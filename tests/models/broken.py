"""build_model functions that fail in the ways a user's can."""

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
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e12), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
