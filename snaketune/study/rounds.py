"""One round of a history-driven strategy as a job: read the finished trials of the rounds
before it from their metric files, propose, write the round file."""

from __future__ import annotations

import json
from pathlib import Path

from snaketune.core.atomic import write_json
from snaketune.search.objective import objective_from
from snaketune.search.space import Space
from snaketune.search.strategies import Finished, Proposal, make
from snaketune.trial.outcome import read_outcome


def read_history(history: list, metrics_files: list[str]) -> list[Finished]:
    """`history`: [trial id, values, schedule, round] of each earlier trial, in order, beside
    its metrics file."""
    if len(history) != len(metrics_files):
        raise ValueError(f"{len(history)} earlier trials but {len(metrics_files)} metric files")
    return [
        Finished(tid, dict(values), dict(schedule), int(round_), *read_outcome(path))
        for (tid, values, schedule, round_), path in zip(history, metrics_files)
    ]


def propose_round(
    *,
    strategy: str,
    config: dict,
    objective: dict,
    series: str,
    round_: int,
    space_file,
    history: list,
    metrics_files: list[str],
    out,
) -> list[Proposal]:
    """The `strategy_round` job: the next round's configurations of a strategy's series, from
    its finished trials, written to `out`."""
    space = Space.from_json(Path(space_file).read_text())
    proposer = make(strategy, config, objective_from(objective)).for_series(series)
    finished = read_history(history, metrics_files)
    proposals = proposer.propose(space, finished, proposer.size(round_))
    write_json(
        out,
        {
            "strategy": strategy,
            "series": series,
            "round": round_,
            "history": len(finished),
            "proposals": [p.to_dict() for p in proposals],
        },
    )
    print(json.dumps([p.to_dict() for p in proposals], indent=2))
    return proposals
