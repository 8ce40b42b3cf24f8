"""The built-in multilayer perceptron: Flatten -> n x [Dense -> Dropout] -> softmax, Adam."""

import keras


def build_model(hp, input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    activation = hp.Choice("activation", ["relu", "tanh", "elu"], default="relu")
    for _ in range(hp.Int("num_layers", 1, 3, default=2)):
        x = keras.layers.Dense(hp.Int("units", 32, 512, step=32, default=128), activation=activation)(x)
        x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2))(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model
