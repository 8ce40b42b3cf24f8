"""Retrain the best configuration on training + validation data and test it once."""

from __future__ import annotations

import numpy as np

from snaketune import data as data_module
from snaketune.atomic import atomic_path, write_json
from snaketune.train import build, configure_tensorflow, fit


def retrain_and_test(*, best: dict, settings: dict, data_dir, model_path, metrics_path, threads: int = 1) -> dict:
    """`best` holds the winning trial's id, values and best epoch. Training runs for the epochs at which the
    tuning trial reached its best validation score (no validation data is left to stop on)."""
    configure_tensorflow(threads, settings["seed"])
    arrays, info = data_module.load(data_dir, splits=("train", "val", "test"))
    train = tuple(np.concatenate([arrays["train"][i], arrays["val"][i]]) for i in (0, 1))
    values = dict(best["hyperparameters"])
    epochs = int(best["objective_epoch"]) or int(values.get("epochs", settings["epochs"]))
    values["epochs"] = epochs
    model = build(settings, values, info["input_shape"], info["num_classes"])
    history, fit_seconds = fit(model, settings, values, {"train": train}, validation=False)
    x_test, y_test = arrays["test"]
    results = model.evaluate(x_test, y_test, batch_size=1024, return_dict=True, verbose=0)
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    record = {
        "trial_id": best["trial_id"],
        "hyperparameters": best["hyperparameters"],
        "epochs": epochs,
        "train_images": int(len(train[1])),
        "test_images": int(len(y_test)),
        "fit_seconds": round(fit_seconds, 3),
        "train_loss": float(history["loss"].iloc[-1]),
        "test_loss": float(results["loss"]),
        "test_accuracy": float(results["accuracy"]),
    }
    write_json(metrics_path, record)
    return record
