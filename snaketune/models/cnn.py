"""The built-in small convolutional network for images: n x [Conv2D -> MaxPool] -> Dense ->
Dropout -> the task's head."""


def hyperparameters(hp) -> dict:
    """What the model asks of `hp`, every one unconditionally and in Keras Tuner's order, so
    that its search space is known without TensorFlow (snaketune.models.builtin_space)."""
    return {
        "activation": hp.Choice("activation", ["relu", "elu"], default="relu"),
        "filters": hp.Int("filters", 16, 64, step=16, default=32),
        "conv_blocks": hp.Int("conv_blocks", 1, 2, default=2),
        "units": hp.Int("units", 32, 256, step=32, default=128),
        "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.3),
        "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3),
    }


def build_model(hp, inputs, task, outputs, stats=None):
    """`inputs`: {"": (height, width, channels)}, one image array."""
    import keras

    from snaketune.models.heads import compile_for, output_layer

    if list(inputs) != [""] or len(inputs[""]) != 3:
        raise ValueError(f"the built-in cnn takes one array of images (height, width, channels); this data's x is "
                         f"{ {k or 'x': v for k, v in inputs.items()} }: use the mlp or a build_model of your own")
    values = hyperparameters(hp)
    image = keras.Input(shape=inputs[""])
    x = image
    for block in range(values["conv_blocks"]):
        x = keras.layers.Conv2D(values["filters"] * 2**block, 3, padding="same", activation=values["activation"])(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(values["units"], activation=values["activation"])(x)
    x = keras.layers.Dropout(values["dropout"])(x)
    model = keras.Model(image, output_layer(x, task, outputs))
    compile_for(model, task, values["learning_rate"])
    return model
