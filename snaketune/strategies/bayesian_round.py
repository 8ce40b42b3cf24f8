"""One Bayesian round as a job: read the history from the round and metric files, propose, write."""

from __future__ import annotations

import json
from pathlib import Path

from snaketune.atomic import write_json
from snaketune.objective import objective_from
from snaketune.outcome import read_outcome
from snaketune.space import Space
from snaketune.strategies.bayesian import BayesianOptimization, Finished


def read_history(round_files: list[str], metrics_files: list[str]) -> list[Finished]:
    """Pair each earlier proposal (in round order) with its trial's metrics row."""
    proposals = [values for path in round_files for values in json.loads(Path(path).read_text())["proposals"]]
    if len(proposals) != len(metrics_files):
        raise ValueError(f"{len(proposals)} earlier proposals but {len(metrics_files)} metric files")
    return [Finished(values, *read_outcome(path)) for values, path in zip(proposals, metrics_files)]


def propose_round(*, space_file, round_files, metrics_files, config: dict, objective: dict, round_: int, out) -> list[dict]:
    space = Space.from_json(Path(space_file).read_text())
    history = read_history(round_files, metrics_files)
    strategy = BayesianOptimization(
        objective=objective_from(objective),
        seed=config["seed"],
        num_initial_points=config.get("num_initial_points"),
        alpha=config.get("alpha", 1e-4),
        beta=config.get("beta", 2.6),
    )
    proposals = strategy.propose(space, history, config["batch"])
    write_json(out, {"round": round_, "history": len(history), "proposals": proposals})
    print(json.dumps(proposals, indent=2))
    return proposals
