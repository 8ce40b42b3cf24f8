"""Retrain the best configuration on training + validation data and test it once."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from snaketune.core.atomic import atomic_path, write_json, write_text
from snaketune.data import prepared
from snaketune.data.task import samples
from snaketune.models import builtin, resolve
from snaketune.search.objective import objective_from
from snaketune.trial.integrity import model_record, verify_model
from snaketune.trial.train import build, configure_tensorflow, fit, hyperparameters, owns_fit_arguments, scalars, score


def search_epochs(
    settings: dict, values: dict, *, arrays: dict, info: dict, data_dir, max_epochs: int
) -> tuple[int, float]:
    """The best number of epochs for a configuration, found as Keras Tuner's tutorial does:
    train up to `max_epochs` on the training split, early stopping on the validation
    objective, and take the epoch where it peaked (a HyperModel's fit that returns the objective
    once, as a dict or a number, is read as a trial's is: at its last epoch)."""
    values = {**values, "epochs": max_epochs}
    hypermodel, hp = resolve(settings["model"], info, data_dir), hyperparameters(values)
    history, seconds, returned = fit(
        hypermodel,
        hp,
        build(hypermodel, hp),
        settings,
        values=values,
        data={"train": arrays["train"], "val": arrays["val"]},
    )
    return score(returned, history, objective_from(settings["objective"]))[1], seconds


def cosine_decay(model, epochs: int):
    """A callback that anneals the learning rate from the model's own to zero over `epochs`
    (cosine). The final fit has no validation data to stop on; annealing makes its last
    epoch its best instead of a sample of the late epochs' noise. None where the model's
    optimizer follows a schedule of its own."""
    import keras

    if isinstance(model.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        print("learning_rate_decay: the model's optimizer has its own schedule; left as it is")
        return None
    start = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: start * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    )


def _takes(function, name: str) -> bool:
    """Whether `function` accepts the keyword `name` (by name or through **kwargs): a fit that
    lists its arguments is given no other (it is then validated every epoch, the last one
    giving the test metrics)."""
    import inspect

    parameters = inspect.signature(function).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def retrain_and_test(
    *,
    best: dict,
    settings: dict,
    data_dir,
    model_path,
    metrics_path,
    max_epochs=None,
    learning_rate_decay: str = "none",
    threads: int = 1,
) -> dict:
    """`best` holds the winning trial's id, values and best epoch.

    The final model trains on training + validation data, so no validation data is left to
    stop on: it trains for the epoch at which the tuning trial peaked or, with `max_epochs`,
    for the best epoch found by `search_epochs` (tuning trials are often cut short to save
    time; the winner deserves its full length). `learning_rate_decay: cosine` anneals the
    learning rate over that retraining.
    """
    keras = configure_tensorflow(threads, settings["seed"])
    arrays, info = prepared.load(data_dir, splits=("train", "val", "test"), labels=builtin(settings["model"]))
    values = dict(best["hyperparameters"])
    search_seconds = 0.0
    if max_epochs:
        epochs, search_seconds = search_epochs(
            settings, values, arrays=arrays, info=info, data_dir=data_dir, max_epochs=max_epochs
        )
        keras.utils.set_random_seed(settings["seed"])
    else:
        epochs = int(best["objective_epoch"]) or int(values.get("epochs", settings["epochs"]))
    train = tuple(prepared.concatenate(arrays["train"][i], arrays["val"][i]) for i in (0, 1))
    hypermodel, hp = resolve(settings["model"], info, data_dir), hyperparameters(values)
    model = build(hypermodel, hp)
    decay = cosine_decay(model, epochs) if learning_rate_decay == "cosine" else None
    x_test, y_test = arrays["test"]
    # A HyperModel's own fit may preprocess what it is given (crop the images to a tuned size,
    # say), validation data included: the test data goes through it as validation data,
    # evaluated once, after the last epoch. Another model is evaluated on the data as it is.
    own_fit = owns_fit_arguments(hypermodel)
    history, fit_seconds, returned = fit(
        hypermodel,
        hp,
        model,
        settings,
        values={**values, "epochs": epochs},
        data={"train": train, "val": (x_test, y_test)},
        validation=own_fit,
        early_stopping=False,
        callbacks=[decay] if decay else [],
        validation_freq=epochs if own_fit and _takes(hypermodel.fit, "validation_freq") else None,
    )
    results = {}
    if own_fit and hasattr(returned, "history"):
        results = {k[len("val_") :]: values[-1] for k, values in returned.history.items() if k.startswith("val_")}
    if not results:  # a fit that returns no History, or one that left validation_data out
        results = model.evaluate(x_test, y_test, batch_size=1024, return_dict=True, verbose=0)
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    record = {
        "trial_id": best["trial_id"],
        "hyperparameters": best["hyperparameters"],
        "epochs": epochs,
        "epochs_from": f"validation, searched up to {max_epochs}" if max_epochs else "the tuning trial's best epoch",
        "learning_rate_decay": learning_rate_decay if decay else "none",
        "train_samples": samples(train[1]),
        "test_samples": samples(y_test),
        "search_seconds": round(search_seconds, 3),
        "fit_seconds": round(fit_seconds, 3),
        "train_loss": float(history["loss"].iloc[-1]),
        # every metric evaluate() returns, under the model's own names
        **{f"test_{name}": value for name, value in scalars(results).items()},
        **model_record(model_path),
    }
    write_json(metrics_path, record)
    return record


def publish(*, metrics_path, model_path, metrics_out, model_out) -> dict:
    """Copy a final model and its test metrics to the study's fixed names, checking first
    that the model is the one the metrics were measured on."""
    record = json.loads(Path(metrics_path).read_text())
    verify_model(model_path, record, f"to train it again: snakemake --cores all --forcerun {model_path}")
    with atomic_path(model_out) as tmp:
        shutil.copyfile(model_path, tmp)
    write_text(metrics_out, Path(metrics_path).read_text())
    return record
