"""The HyperModel of Keras Tuner's "Getting started" guide that tunes the image size: build
takes size x size images (a 2-D Input, as the guide writes it), fit crops the (n, 28, 28, 1)
images to the size it reads back with hp.get, normalises them on a switch and tunes
shuffling. Written as a user would bring it."""

import keras
import keras_tuner
from keras import layers


class ImageSize(keras_tuner.HyperModel):
    def build(self, hp):
        image_size = hp.Int("image_size", 10, 28)
        inputs = keras.Input(shape=(image_size, image_size))
        outputs = layers.Flatten()(inputs)
        outputs = layers.Dense(units=hp.Int("units", min_value=8, max_value=32, step=8), activation="relu")(outputs)
        outputs = layers.Dense(10, activation="softmax")(outputs)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, hp, model, x, y, validation_data=None, **kwargs):
        if hp.Boolean("normalize"):
            x = layers.Normalization()(x)
        image_size = hp.get("image_size")
        cropped_x = x[:, :image_size, :image_size, :]
        if validation_data:
            x_val, y_val = validation_data
            validation_data = (x_val[:, :image_size, :image_size, :], y_val)
        return model.fit(cropped_x, y, shuffle=hp.Boolean("shuffle"), validation_data=validation_data, **kwargs)
