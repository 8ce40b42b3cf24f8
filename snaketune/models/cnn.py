"""The built-in small convolutional network: n x [Conv2D -> MaxPool] -> Dense -> Dropout -> softmax."""

import keras


def build_model(hp, input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    activation = hp.Choice("activation", ["relu", "elu"], default="relu")
    filters = hp.Int("filters", 16, 64, step=16, default=32)
    for block in range(hp.Int("conv_blocks", 1, 2, default=2)):
        x = keras.layers.Conv2D(filters * 2**block, 3, padding="same", activation=activation)(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(hp.Int("units", 32, 256, step=32, default=128), activation=activation)(x)
    x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.3))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
