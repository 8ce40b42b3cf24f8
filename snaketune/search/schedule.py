"""A trial's training schedule, kept apart from its hyperparameters: the epochs it trains to,
the epoch it starts from and the trial whose model it resumes (a promoted trial of a
multi-fidelity strategy). A trial with no schedule trains the study's `training.epochs`,
with early stopping where `patience` is set."""

from __future__ import annotations

from snaketune.core.identity import SCHEDULE_NAMES

FIELDS = ("epochs", "initial_epoch", "parent")
# Keras Tuner's names for these among a trial's hyperparameters, under which trial ids digest
# them (a rule of snaketune.core.identity).
KERAS_TUNER_NAMES = SCHEDULE_NAMES


def checked(schedule: dict | None) -> dict:
    schedule = dict(schedule or {})
    unknown = set(schedule) - set(FIELDS)
    if unknown:
        raise ValueError(f"a trial's schedule has only {', '.join(FIELDS)}; got {sorted(unknown)}")
    return schedule


def identity_values(values: dict, schedule: dict | None) -> dict:
    """What a trial id digests besides the training settings; also the form a trial job gets
    its values in (Snakemake's params), so that its params, and so its params trigger, are what
    they were for trials of earlier studies."""
    return {**values, **{KERAS_TUNER_NAMES[k]: v for k, v in checked(schedule).items()}}


def split(flat: dict) -> tuple[dict, dict]:
    """(hyperparameters, schedule) of values in their identity form."""
    names = {v: k for k, v in KERAS_TUNER_NAMES.items()}
    return ({k: v for k, v in flat.items() if k not in names}, {names[k]: v for k, v in flat.items() if k in names})


def initial_epoch(schedule: dict) -> int:
    return int(schedule.get("initial_epoch", 0))


def early_stopping(schedule: dict) -> bool:
    """A trial with a set number of epochs trains to it: its rung, not early stopping, ends
    it, and a promoted trial resumes the model as it is after its last epoch."""
    return "epochs" not in schedule
