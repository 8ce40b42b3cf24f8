"""A model file with `from __future__ import annotations` and a @dataclass, which looks its
module up in sys.modules while the file executes."""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass
class Widths:
    hidden: int
    classes: int = 10


def build_model(hp):
    widths = Widths(hp.Int("units", 8, 16, step=8))
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(widths.hidden, activation="relu"),
            keras.layers.Dense(widths.classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
