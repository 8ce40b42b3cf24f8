"""The search space the `space` job writes: a built-in model's, known without TensorFlow, or a
user's model's, discovered by building it (snaketune.trial.model_check) through the fork server."""

from __future__ import annotations

from snaketune.core import forkserver
from snaketune.models import builtin_space, user_model
from snaketune.search.space import Space


def space_for_job(model_spec: dict, declared: dict, data_dir=None):
    """The search space the `space` job writes. A built-in model's is known without TensorFlow
    (snaketune.models.builtin_space): the job starts the fork server the trials use, which imports
    TensorFlow meanwhile, and ends at once. A user's model is built, through the fork server."""
    if not user_model(model_spec):
        space = builtin_space.discover(model_spec["type"], Space.from_config(declared))
        if space is not None:
            if not forkserver.under_scheduler():  # the trials run in allocations of their own
                forkserver.warm()
            return space
    return forkserver.call(
        "snaketune.trial.model_check:discover_space", model_spec=model_spec, declared=declared, data_dir=data_dir
    )
