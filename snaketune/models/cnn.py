"""The built-in small convolutional network for images: n x [Conv2D -> MaxPool] -> Dense ->
Dropout -> the task's head."""

import keras

from snaketune.models.heads import compile_for, output_layer


def build_model(hp, inputs, task, outputs, stats=None):
    """`inputs`: {"": (height, width, channels)}, one image array."""
    if list(inputs) != [""] or len(inputs[""]) != 3:
        raise ValueError(f"the built-in cnn takes one array of images (height, width, channels); this data's x is "
                         f"{ {k or 'x': v for k, v in inputs.items()} }: use the mlp or a build_model of your own")
    image = keras.Input(shape=inputs[""])
    x = image
    activation = hp.Choice("activation", ["relu", "elu"], default="relu")
    filters = hp.Int("filters", 16, 64, step=16, default=32)
    for block in range(hp.Int("conv_blocks", 1, 2, default=2)):
        x = keras.layers.Conv2D(filters * 2**block, 3, padding="same", activation=activation)(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(hp.Int("units", 32, 256, step=32, default=128), activation=activation)(x)
    x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.3))(x)
    model = keras.Model(image, output_layer(x, task, outputs))
    compile_for(model, task, hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3))
    return model
