"""One Hyperband round as a job: promote the best trials of the round before, and write them."""

from __future__ import annotations

import json

from snaketune.atomic import write_json
from snaketune.objective import objective_from
from snaketune.outcome import read_outcome
from snaketune.strategies.hyperband import Bracket, Hyperband


def promote_round(*, previous: list, metrics_files: list[str], config: dict, objective: dict, bracket: str,
                  round_: int, out) -> list[dict]:
    """`previous`: [trial id, values] of the round before, in order, beside their metrics files."""
    if len(previous) != len(metrics_files):
        raise ValueError(f"{len(previous)} trials in the round before but {len(metrics_files)} metric files")
    finished = [(tid, values, *read_outcome(path)) for (tid, values), path in zip(previous, metrics_files)]
    proposals = Hyperband(config["max_epochs"], config["factor"]).promote(
        Bracket.parse(bracket).number, round_, finished, objective_from(objective))
    write_json(out, {"bracket": bracket, "round": round_, "promoted_from": len(finished), "proposals": proposals})
    print(json.dumps(proposals, indent=2))
    return proposals
