"""Train one trial: build the model for one configuration, fit it, and record the outcome.

A trial that cannot be built, diverges to NaN or fails inside TensorFlow (out of memory for
this model included) is recorded with status `failed` and its error; the job itself succeeds
so that the study goes on. What the configuration does not cause (data that cannot be read,
a parent model missing or damaged, a full disk, a module that cannot be imported) fails the
job instead, so that Snakemake's retries and the next run try it again; so does a Keras
Tuner FatalError that build or fit raises, which stops a Keras Tuner search too.
"""

from __future__ import annotations

import functools
import math
import resource
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from snaketune.core import tf_logging
from snaketune.core.atomic import atomic_path, write_csv
from snaketune.core.errors import DamagedInput
from snaketune.data.task import samples
from snaketune.models import builtin, resolve, user_model
from snaketune.search import schedule as schedules
from snaketune.search.objective import infer_direction, objective_from
from snaketune.search.space import DEFAULT_BATCH_SIZE, FIT_ARGUMENTS
from snaketune.trial.fits import Fit
from snaketune.trial.integrity import model_record, verify_model
from snaketune.trial.outcome import read_record

STEPS_PER_EXECUTION = 32


def configure_tensorflow(threads: int, seed: int):
    """Pin TensorFlow to the job's threads and seed it; must run before TensorFlow does any work."""
    tf_logging.quiet()
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # TensorFlow already ran in this process (a test session running several trials):
        # its thread pools are fixed; a trial job always starts fresh and gets here first.
        pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return keras


def hyperparameters(values: dict):
    """Keras Tuner's HyperParameters with this trial's values preset: each hp.Int / Float /
    Choice call in build(hp) and fit(hp, ...) returns them, exactly as in a Keras Tuner trial.
    The names build and fit ask for (hp.get included) are kept in `hp.asked`."""
    hp = _asked_for()()
    hp.values = dict(values)
    return hp


@functools.cache
def _asked_for():
    import keras_tuner as kt

    class AskedFor(kt.HyperParameters):
        def __init__(self):
            super().__init__()
            self.asked: set = set()

        def _retrieve(self, hp):
            self.asked.add(hp.name)
            return super()._retrieve(hp)

        def get(self, name):
            self.asked.add(name)
            return super().get(name)

    return AskedFor


def unused(hypermodel, hp, values: dict) -> str:
    """The hyperparameters of `values` that the model's build and fit never asked for (a
    layer's units where the trial has fewer layers, say), `;`-separated: blank in trials.csv
    and inactive in the analysis. snaketune's own fit arguments are used by it."""
    own = set(FIT_ARGUMENTS) if not owns_fit_arguments(hypermodel) else {"epochs"}
    return ";".join(name for name in values if name not in hp.asked and name not in own)


def build(hypermodel, hp):
    """The model of one configuration: the HyperModel's build(hp), as Keras Tuner calls it."""
    import keras

    model = hypermodel.build(hp)
    if not isinstance(model, keras.Model):
        raise TypeError(f"build_model must return a keras.Model, got {type(model).__name__}")
    return model


class _EpochRecorder:
    """Each epoch's seconds and the metrics Keras reports for it, whatever fit returns."""

    def __init__(self):
        import keras

        recorder = self

        class Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                recorder.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                recorder.rows.append(
                    {"epoch": epoch + 1, **scalars(logs or {}), "seconds": time.perf_counter() - recorder.started}
                )

        self.rows: list[dict] = []
        self.started = 0.0
        self.callback = Callback()


def scalars(metrics: dict) -> dict:
    """The metrics that are one number (F1Score(average=None), say, gives one per class)."""
    return {k: float(v) for k, v in metrics.items() if np.ndim(v) == 0}


def owns_fit_arguments(hypermodel) -> bool:
    """A HyperModel of the user's own sets its fit arguments itself (batch size among them), as
    with Keras Tuner; a build_model function or a built-in model is fit with the trial's."""
    from keras_tuner.src.engine.hypermodel import DefaultHyperModel

    return not isinstance(hypermodel, DefaultHyperModel)


def fit(
    hypermodel,
    hp,
    model,
    settings: dict,
    *,
    values: dict,
    data: dict,
    initial_epoch: int = 0,
    validation: bool = True,
    callbacks: list = (),
    early_stopping: bool = True,
    epochs: int | None = None,
    validation_freq: int | None = None,
):
    """Fit through the HyperModel's fit(hp, model, x, y, **kwargs), as Keras Tuner calls it;
    return (history frame, fit seconds, what fit returned). `validation_freq`: Keras'
    (validation every that many epochs; metrics of the epochs in between are not in the frame)."""
    import keras

    objective = objective_from(settings["objective"])
    recorder = _EpochRecorder()
    callbacks = [keras.callbacks.TerminateOnNaN(), recorder.callback, *callbacks]
    if validation and early_stopping and settings.get("patience"):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=objective.name,
                mode=objective.direction,
                patience=settings["patience"],
                restore_best_weights=True,
            )
        )
    if model.steps_per_execution == 1:
        # Running 32 batches per call into TensorFlow instead of one removes most of Keras'
        # per-step Python overhead: small models train 1.7x faster, with identical results.
        model.steps_per_execution = STEPS_PER_EXECUTION
    x, y = data["train"]
    # a schedule's epochs, else a tuned `epochs`, else the study's
    epochs = int(epochs or values.get("epochs", settings["epochs"]))
    kwargs = dict(
        epochs=epochs,
        initial_epoch=initial_epoch,
        validation_data=data["val"] if validation else None,
        callbacks=callbacks,
        verbose=2,
    )
    if validation_freq:
        kwargs["validation_freq"] = validation_freq
    batch = "its own batch size"
    if not owns_fit_arguments(hypermodel):
        kwargs["batch_size"] = int(values.get("batch_size", DEFAULT_BATCH_SIZE))
        batch = f"batch size {kwargs['batch_size']}"
    # Keras prints no epoch header for a single epoch; this line says the fit has begun.
    print(f"fit: epochs {initial_epoch + 1} to {epochs} on {samples(y)} samples, {batch}", flush=True)
    started = time.perf_counter()
    returned = hypermodel.fit(hp, model, x, y, **kwargs)
    fit_seconds = time.perf_counter() - started
    frame = pd.DataFrame(recorder.rows, columns=None if recorder.rows else ["epoch", "seconds"])
    if isinstance(returned, keras.callbacks.History):
        # What fit returned, as Keras Tuner reads it (a metric that a callback of the
        # HyperModel's own adds is there), with the seconds this run measured.
        history = pd.DataFrame(
            {
                k: [float(v) for v in values]
                for k, values in returned.history.items()
                if all(np.ndim(v) == 0 for v in values) and len(values) == len(returned.epoch)
            }
        )
        history.insert(0, "epoch", [e + 1 for e in returned.epoch])
        seconds = dict(zip(frame["epoch"], frame["seconds"])) if len(frame) else {}
        history["seconds"] = history["epoch"].map(seconds)
        frame = history
    return frame, fit_seconds, returned


def score(returned, history: pd.DataFrame, objective) -> tuple[float, int]:
    """The trial's objective value and its epoch, read from what fit returned as Keras Tuner
    reads it: a History by its best epoch, a dict of metrics or one number as they are (at the
    last epoch)."""
    import keras
    import keras_tuner as kt
    from keras_tuner.src.engine import tuner_utils

    if isinstance(returned, keras.callbacks.History):
        return best_epoch(history, objective)
    kt_objective = kt.Objective(objective.name, objective.direction)
    tuner_utils.validate_trial_results(returned, kt_objective, "HyperModel.fit()")
    value = tuner_utils.convert_to_metrics_dict(returned, kt_objective)[objective.name]
    return float(value), int(history["epoch"].iloc[-1]) if len(history) else 0


def reported(history: pd.DataFrame) -> list[str]:
    """The metrics Keras reported per epoch, under the model's own names."""
    return [c for c in history.columns if c not in ("epoch", "seconds")]


def best_epoch(history: pd.DataFrame, objective) -> tuple[float, int]:
    """Keras Tuner's score: the best value of the objective over the epochs, and its epoch."""
    if objective.name not in history:
        raise ValueError(
            f"the objective {objective.name} is not among the metrics the model reports "
            f"({', '.join(reported(history))})"
        )
    series = history[objective.name].dropna()
    if series.empty:
        return math.nan, 0
    index = series.idxmax() if objective.direction == "max" else series.idxmin()
    return float(series[index]), int(history.loc[index, "epoch"])


def load_model(path, model_spec: dict):
    """A model a trial saved, with the classes and functions of the user's file (a layer of
    their own) at hand for Keras to find by name. The check before any job saves and loads
    the user's model this way too, so a trial's model that could not be loaded again is
    refused there, with what to add, instead of failing Hyperband's next round."""
    import keras

    from snaketune.core import user_code
    from snaketune.core.errors import ConfigError

    named = user_model(model_spec)
    custom = {}
    if named:
        custom = user_code.custom_objects(named[1].rsplit(":", 1)[0], ConfigError, f"config: model.{named[0]}")
    return keras.models.load_model(path, custom_objects=custom)


def resume(parent_dir: Path, initial_epoch: int, model_spec: dict | None = None, name: str | None = None):
    """The parent trial's model as it was after its last epoch (optimizer state included),
    and its history up to `initial_epoch`. A parent whose files are missing or are not what
    its job wrote fails the job (DamagedInput), naming the file and the parent (`name`, else
    its folder's). `model_spec`: the study's model, whose file's own layers the saved model
    may use."""
    name = name or parent_dir.name
    hint = f"to train it again: snakemake --cores all --forcerun {parent_dir / 'metrics.csv'}"
    try:
        record = read_record(parent_dir / "metrics.csv")
        history = pd.read_csv(parent_dir / "history.csv")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DamagedInput(f"trial {name}: {type(error).__name__}: {error}; {hint}") from error
    if record.get("status") != "completed":
        raise DamagedInput(
            f"trial {name} is recorded {record.get('status') or 'nothing'}: there is no model to resume; {hint}"
        )
    verify_model(parent_dir / "model.keras", record, hint)
    if history.empty or int(history["epoch"].iloc[-1]) != initial_epoch:
        raise DamagedInput(
            f"trial {name} ended at epoch "
            f"{int(history['epoch'].iloc[-1]) if len(history) else 0}, not {initial_epoch}: "
            f"nothing to resume; {hint}"
        )
    model = load_model(parent_dir / "model.keras", model_spec or {})
    return model, history


def best_values(history: pd.DataFrame) -> dict:
    """best_<metric>: the best value of every reported metric whose direction its name tells."""
    best = {}
    for name in reported(history):
        direction = infer_direction(name)
        if direction:
            values = history[name].astype(float)
            best[f"best_{name}"] = float(values.max() if direction == "max" else values.min())
    return best


# TensorFlow's errors of the machine rather than the model: a device or service that failed
# or went away, a cancelled or timed-out operation, corrupted data.
TRANSIENT_TF_ERRORS = (
    "UnavailableError",
    "InternalError",
    "AbortedError",
    "CancelledError",
    "DeadlineExceededError",
    "DataLossError",
)


def fails_the_job(error: BaseException) -> bool:
    """Not the configuration's doing: the file system, the network, the environment, a device,
    a damaged input, whatever wraps them (Keras reports a failed download of weights as a
    plain Exception raised from the URLError). What the configuration causes (a model that
    cannot be built, a NaN loss, running out of memory) is a failed trial.

    Keras Tuner's own errors mean what they mean there: a FailedTrialError that build or fit
    raises is the user's word that the trial failed, whatever it was raised from; a FatalError
    (FatalValueError, ...) stops the study for the user's attention, so it fails the job
    rather than being cached as one failed trial that the next run would not show again."""
    from keras_tuner.errors import FailedTrialError, FatalError

    if isinstance(error, FailedTrialError) and not isinstance(error, FatalError):
        return False
    from snaketune.trial.devices import shared_device_oom

    if shared_device_oom(error):
        return True  # out of memory on a GPU that other jobs share: maybe theirs (devices.py)
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (OSError, ImportError, DamagedInput, FatalError)):
            return True
        if type(error).__name__ in TRANSIENT_TF_ERRORS and type(error).__module__.startswith("tensorflow"):
            return True
        error = error.__cause__ or error.__context__
    return False


def run_trial(
    *,
    study: str,
    trial_id: str,
    values: dict,
    settings: dict,
    data_dir,
    out_dir,
    threads: int = 1,
    schedule: dict | None = None,
    fit_name: str | None = None,
) -> dict:
    """Train one configuration (`values`, its hyperparameters) on its `schedule` (see
    snaketune.search.schedule) and write model.keras, history.csv and metrics.csv to `out_dir`.
    `fit_name`: which of the configuration's fits this is (snaketune.trial.fits), trained in a
    folder of its own under the trial's; none: its single fit, in the trial's own folder."""
    schedule = schedules.checked(schedule)
    one = Fit.from_name(fit_name) if fit_name else Fit()
    start_epoch = schedules.initial_epoch(schedule)
    out_dir = Path(out_dir)
    objective = objective_from(settings["objective"])
    record = {
        "study": study,
        "trial_id": trial_id,
        **values,
        "objective": objective.name,
        "objective_value": math.nan,
        "objective_epoch": 0,
        "epochs_run": 0,
        "cumulative_epochs": 0,
        "fit_seconds": 0.0,
        "load_seconds": 0.0,
        "params": 0,
        "peak_rss_mb": 0.0,
        "model_bytes": 0,
        "model_sha256": "",
        "status": "completed",
        "error": "",
        "unused": "",
        **({} if one.own_folder else {"fit": one.name}),
    }
    history = pd.DataFrame(columns=["epoch", "seconds"])
    configure_tensorflow(threads, one.seed(settings["seed"]))
    from snaketune.data import prepared

    # Reading the inputs is no property of the configuration: a failure here fails the job.
    started = time.perf_counter()
    data, info = prepared.load(data_dir, labels=builtin(settings["model"]))
    if one.folds:
        from snaketune.data.folds import fold

        data = fold(data, info, k=one.folds, index=one.fold, seed=settings["data"]["seed"])
    record["load_seconds"] = round(time.perf_counter() - started, 4)
    # The user's file is imported first: a layer it registers with Keras is known when the
    # parent's model is loaded.
    # a fold's built-in model normalises with its own training rows' statistics
    hypermodel = resolve(settings["model"], info, data_dir, data["train"] if one.folds else None)
    model, earlier = None, None
    # a promoted fit resumes its parent's same fit
    trials_dir = out_dir.parent if one.own_folder else out_dir.parent.parent
    parent_dir = None
    if schedule.get("parent"):
        parent = schedule["parent"]
        if one.own_folder:
            parent_dir, name = trials_dir / parent, parent
        else:
            parent_dir, name = trials_dir / parent / one.name, f"{parent} (fit {one.name})"
        model, earlier = resume(parent_dir, start_epoch, settings["model"], name)
    hp = hyperparameters(values)
    try:
        if model is None:
            model = build(hypermodel, hp)
        # A model whose input shape comes from the data (a Sequential without Input, a
        # subclassed Model) has no weights until its first fit builds it: counted then. A
        # built one is counted now, so that a trial that fails in fit (out of memory) has it.
        if model.built:
            record["params"] = int(model.count_params())
        history, record["fit_seconds"], returned = fit(
            hypermodel,
            hp,
            model,
            settings,
            values=values,
            data=data,
            initial_epoch=start_epoch,
            epochs=schedule.get("epochs"),
            early_stopping=schedules.early_stopping(schedule),
        )
        if not record["params"]:
            record["params"] = int(model.count_params())
        if earlier is None:
            record["unused"] = unused(hypermodel, hp, values)
        else:  # a resumed model was built by its parent's trial, with the same values
            record["unused"] = read_record(parent_dir / "metrics.csv").get("unused") or ""
        record["epochs_run"] = len(history)
        record["cumulative_epochs"] = start_epoch + len(history)
        losses = history["loss"].astype(float) if "loss" in history else pd.Series(dtype=float)
        if losses.isna().any() or not losses.map(math.isfinite).all():
            bad = int(history.loc[~losses.map(math.isfinite), "epoch"].iloc[0])
            raise FloatingPointError(f"loss became NaN or infinite in epoch {bad}")
        # Keras Tuner scores a trial on its own epochs; its history goes on from its parent's.
        record["objective_value"], record["objective_epoch"] = score(returned, history, objective)
        record.update(best_values(history))
        if earlier is not None:
            history = pd.concat([earlier, history], ignore_index=True)
    except Exception as error:
        if fails_the_job(error):
            raise
        traceback.print_exc()  # the configuration fails, the study goes on
        record["status"] = "failed"
        record["error"] = f"{type(error).__name__}: {error}".replace("\n", " ")[:500]
        model = None
    # Failing to save (a full disk, say) is no property of the configuration: it fails the
    # job, so that Snakemake reports it and a rerun trains the trial again. A failed trial's
    # model.keras is empty: the job has the same outputs whatever the outcome.
    with atomic_path(out_dir / "model.keras") as tmp:
        if model is not None:
            model.save(tmp)
    record.update(model_record(out_dir / "model.keras"))
    # The process's own peak: a job's `benchmark:` file cannot see a process forked by the
    # fork server.
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_csv(out_dir / "history.csv", history)
    write_csv(out_dir / "metrics.csv", pd.DataFrame([record]))
    return record
