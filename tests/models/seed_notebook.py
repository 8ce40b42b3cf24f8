"""The model-building function of the notebook snaketune grew from: a Sequential whose first
layer declares the input shape the old Keras way, `Flatten(input_shape=(28, 28))`, for MNIST
as keras.datasets.mnist gives it (no channel axis) and integer labels."""

import keras
from keras import layers


def build_model(hp):
    model = keras.Sequential()
    model.add(layers.Flatten(input_shape=(28, 28)))
    model.add(layers.Dense(hp.Int("units", 32, 128, step=32), activation="relu"))
    model.add(layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1)))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
