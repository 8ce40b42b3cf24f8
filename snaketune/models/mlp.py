"""The built-in multilayer perceptron: each input flattened and normalised -> n x [Dense ->
Dropout] -> the task's head (softmax, sigmoid or linear), Adam."""


def hyperparameters(hp) -> dict:
    """What the model asks of `hp`, every one unconditionally and in Keras Tuner's order, so
    that its search space is known without TensorFlow (snaketune.models.builtin_space)."""
    return {
        "activation": hp.Choice("activation", ["relu", "tanh", "elu"], default="relu"),
        "num_layers": hp.Int("num_layers", 1, 3, default=2),
        "units": hp.Int("units", 32, 512, step=32, default=128),
        "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2),
        "learning_rate": hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3),
    }


def build_model(hp, inputs, task, outputs, stats=None):
    """`inputs`: {name: shape} ("" for a single array); `stats`: {name: (mean, variance)}."""
    import keras

    from snaketune.models.heads import compile_for, normalized, output_layer

    values = hyperparameters(hp)
    tensors = {name: keras.Input(shape=shape, name=name or None) for name, shape in inputs.items()}
    flat = [normalized(keras.layers.Flatten()(t), stats[name] if stats else None) for name, t in tensors.items()]
    x = flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)
    for _ in range(values["num_layers"]):
        x = keras.layers.Dense(values["units"], activation=values["activation"])(x)
        x = keras.layers.Dropout(values["dropout"])(x)
    model = keras.Model(tensors[""] if list(tensors) == [""] else tensors, output_layer(x, task, outputs))
    compile_for(model, task, values["learning_rate"])
    return model
