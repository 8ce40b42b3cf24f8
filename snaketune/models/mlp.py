"""The built-in multilayer perceptron: each input flattened and normalised -> n x [Dense ->
Dropout] -> the task's head (softmax, sigmoid or linear), Adam."""

import keras

from snaketune.models.heads import compile_for, normalized, output_layer


def build_model(hp, inputs, task, outputs, stats=None):
    """`inputs`: {name: shape} ("" for a single array); `stats`: {name: (mean, variance)}."""
    tensors = {name: keras.Input(shape=shape, name=name or None) for name, shape in inputs.items()}
    flat = [normalized(keras.layers.Flatten()(t), stats[name] if stats else None) for name, t in tensors.items()]
    x = flat[0] if len(flat) == 1 else keras.layers.Concatenate()(flat)
    activation = hp.Choice("activation", ["relu", "tanh", "elu"], default="relu")
    for _ in range(hp.Int("num_layers", 1, 3, default=2)):
        x = keras.layers.Dense(hp.Int("units", 32, 512, step=32, default=128), activation=activation)(x)
        x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2))(x)
    model = keras.Model(tensors[""] if list(tensors) == [""] else tensors, output_layer(x, task, outputs))
    compile_for(model, task, hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3))
    return model
