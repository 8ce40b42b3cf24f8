"""The baseline: the same configurations tuned in one process with Keras Tuner's `tuner.search()`.

This is the way the seed notebook tunes: one Python process, `keras_tuner.GridSearch` over
the grid, `build_model(hp)` built by Keras Tuner for each trial, `model.fit` with Keras'
defaults (TensorFlow's own thread pools over every core, `steps_per_execution=1`), trials one
after another. The model is snaketune's built-in MLP (`snaketune/models/mlp.py`) with the same
hyperparameter names, trained on the very arrays the workflow's `data` rule prepared, with the
same batch size, epochs, validation data and early stopping (or none).

Run by `benchmarks/run.py` as a child process, so that its wall time includes starting Python
and importing TensorFlow once, as a notebook's first cell does:

    python benchmarks/kt_search.py SPEC.json RESULT.json

SPEC.json: {"data_dir", "configurations" (complete value dicts, as snaketune's grid strategy
proposes them), "epochs", "patience", "seed", "objective": {"name", "direction"},
"directory" (Keras Tuner's project folder), "steps_per_execution" (1: Keras' default)}.

Keras Tuner's Tuner classes import `tensorboard` under the TensorFlow backend (on every
trial, whether or not a TensorBoard callback is used), and tensorflow-cpu does not install it:
`pip install -r benchmarks/requirements.txt`.
"""

from __future__ import annotations

import time

PROCESS_STARTED = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_BATCH_SIZE = 32  # Keras' default for model.fit, as snaketune.search.space.DEFAULT_BATCH_SIZE


def canonical(values: dict) -> str:
    """One text per configuration, to compare the tried configurations with the given ones."""
    return json.dumps({k: values[k] for k in sorted(values)}, sort_keys=True)


def tuner_hyperparameters(configurations: list[dict]):
    """The grid as Keras Tuner's search space: a Choice for each hyperparameter that varies
    (in the order of first appearance), a Fixed for each that does not. Every hyperparameter
    the model asks for is declared, so `tune_new_entries=False` changes nothing."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    names = list(dict.fromkeys(name for values in configurations for name in values))
    for name in names:
        seen = list(dict.fromkeys(values[name] for values in configurations if name in values))
        if len(seen) == 1:
            hp.Fixed(name, seen[0])
        elif all(isinstance(v, bool) for v in seen):
            hp.Boolean(name)
        else:
            hp.Choice(name, seen, ordered=False)
    return hp


def search(spec: dict) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_tuner as kt

    from snaketune.data import prepared
    from snaketune.models import resolve

    imported = time.perf_counter()
    started = time.perf_counter()
    arrays, info = prepared.load(spec["data_dir"])
    builtin = resolve({"type": "mlp"}, info, spec["data_dir"])  # as a trial builds it
    load_seconds = time.perf_counter() - started
    (x_train, y_train), validation = arrays["train"], arrays["val"]
    configurations = spec["configurations"]
    objective = spec["objective"]

    class MLP(kt.HyperModel):
        """snaketune's MLP; batch_size (and epochs, if tuned) are fit arguments, as there."""

        def __init__(self):
            super().__init__()
            self.fits: list[dict] = []

        def build(self, hp):
            model = builtin.build(hp)
            if spec.get("steps_per_execution", 1) != 1:
                model.steps_per_execution = int(spec["steps_per_execution"])
            return model

        def fit(self, hp, model, *args, **kwargs):
            kwargs["batch_size"] = int(hp.values.get("batch_size", DEFAULT_BATCH_SIZE))
            if "epochs" in hp.values:
                kwargs["epochs"] = int(hp.values["epochs"])
            began = time.perf_counter()
            history = model.fit(*args, **kwargs)
            self.fits.append(
                {
                    "values": dict(hp.values),
                    "fit_seconds": time.perf_counter() - began,
                    "epochs_run": len(history.history.get("loss", [])),
                }
            )
            return history

    class TimedGridSearch(kt.GridSearch):
        """Keras Tuner's GridSearch, unchanged, with each trial's wall time noted."""

        def on_trial_begin(self, trial):
            self.trial_seconds[trial.trial_id] = -time.perf_counter()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.trial_seconds[trial.trial_id] += time.perf_counter()

    keras.utils.set_random_seed(int(spec["seed"]))
    hypermodel = MLP()
    tuner = TimedGridSearch(
        hypermodel,
        objective=kt.Objective(objective["name"], objective["direction"]),
        max_trials=len(configurations),
        hyperparameters=tuner_hyperparameters(configurations),
        tune_new_entries=False,
        seed=int(spec["seed"]),
        directory=spec["directory"],
        project_name="keras_tuner",
        overwrite=True,
    )
    tuner.trial_seconds = {}
    callbacks = []
    if spec.get("patience"):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=objective["name"],
                mode=objective["direction"],
                patience=int(spec["patience"]),
                restore_best_weights=True,
            )
        )
    started = time.perf_counter()
    tuner.search(
        x_train, y_train, epochs=int(spec["epochs"]), validation_data=validation, callbacks=callbacks, verbose=2
    )
    search_seconds = time.perf_counter() - started

    fits = {canonical(f["values"]): f for f in hypermodel.fits}
    trials = []
    for trial in tuner.oracle.trials.values():
        values = dict(trial.hyperparameters.values)
        fit = fits.get(canonical(values), {})
        trials.append(
            {
                "trial_id": trial.trial_id,
                "values": values,
                "status": str(trial.status),
                "score": trial.score,
                "trial_seconds": tuner.trial_seconds.get(trial.trial_id),
                "fit_seconds": fit.get("fit_seconds"),
                "epochs_run": fit.get("epochs_run"),
            }
        )
    tried = sorted(canonical(t["values"]) for t in trials)
    return {
        "import_seconds": imported - PROCESS_STARTED,
        "load_seconds": load_seconds,
        "search_seconds": search_seconds,
        "trials": trials,
        "same_configurations": tried == sorted(canonical(v) for v in configurations),
        "best_score": max((t["score"] for t in trials if t["score"] is not None), default=None)
        if objective["direction"] == "max"
        else min((t["score"] for t in trials if t["score"] is not None), default=None),
        "steps_per_execution": int(spec.get("steps_per_execution", 1)),
        "tensorflow_threads": "TensorFlow's defaults (every core)",
    }


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit("usage: python benchmarks/kt_search.py SPEC.json RESULT.json")
    spec = json.loads(Path(argv[0]).read_text())
    result = search(spec)
    result["process_seconds_inside"] = time.perf_counter() - PROCESS_STARTED
    Path(argv[1]).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
