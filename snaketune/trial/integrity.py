"""What the study built and has since lost or damaged, found before any job runs.

A trial's metrics.csv records the size and sha256 of its model.keras, the final model's
test_metrics.json its own. Snakemake does not rebuild a deleted file while what was built
from it is up to date, and sees nothing of a file that was truncated or overwritten. So the
workflow looks for both while it is parsed (a `stat` per trial file; the final model's
sha256): a missing file becomes a target of the run, and is built again; a damaged one is
named with the command that builds it again (the workflow never deletes a result on its
own). Where a model is read (a promoted Hyperband trial resuming its parent, the final model
being published), its sha256 is checked in full: a mismatch fails that job, naming the file.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from snaketune.core.errors import DamagedInput
from snaketune.core.identity import file_sha256 as sha256
from snaketune.core.layout import FINAL_FILES, RECORD_FILES, TRIAL_FILES
from snaketune.trial.outcome import read_record


def model_record(path) -> dict:
    """What a job records of the model it wrote."""
    return {"model_bytes": os.path.getsize(path), "model_sha256": sha256(path)}


def _sha256_differs(path: Path, record: dict) -> str | None:
    """The file's sha256 where it is not the one `record` holds (None if it is, or none is held)."""
    expected = str(record.get("model_sha256") or "")
    actual = sha256(path) if expected else None
    return actual if expected and actual != expected else None


def verify_model(path, record: dict, rebuild_hint: str) -> None:
    """Fail, naming the file, unless `path` is the model `record` describes."""
    path = Path(path)
    if not path.is_file():
        raise DamagedInput(f"{path} is missing; {rebuild_hint}")
    actual = _sha256_differs(path, record)
    if actual:
        raise DamagedInput(
            f"{path} is damaged: its sha256 is {actual}, but the job that wrote it recorded "
            f"{record['model_sha256']} ({record.get('model_bytes')} bytes; the file has "
            f"{path.stat().st_size}); {rebuild_hint}"
        )


def _recorded_size(metrics_path: Path):
    """The model size a trial's own metrics.csv records (None before sizes were recorded)."""
    value = read_record(metrics_path).get("model_bytes")
    return None if value in (None, "") else int(float(value))


def check_trials(plan) -> tuple[dict[str, str], dict[str, str]]:
    """({missing file: why}, {damaged model: why}) of the trials in the study's finished
    tables (`plan`: snaketune.study.plan.Plan, whose layout places every file). A model is
    damaged when its size is not the size its trial recorded: a job writes the model before
    the metrics that record it, and Snakemake removes a job's old outputs before running it
    again, so a finished trial is never caught half-written."""
    missing: dict[str, str] = {}
    damaged: dict[str, str] = {}
    seen: set[str] = set()
    for table in plan.tables():
        path = Path(plan.table_path(table))
        if not path.is_file():
            continue
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["trial_id"] in seen:
                    continue
                seen.add(row["trial_id"])
                tid = row["trial_id"]
                what = f"trial {tid} ({row['strategy']} trial {row['trial_number']})"
                if plan.fit_plan:  # a configuration of several fits: its record, then each fit
                    for name in RECORD_FILES:
                        if not Path(plan.record_file(tid, name)).is_file():
                            missing[plan.record_file(tid, name)] = f"{what}: its {name} over its fits is missing"
                for fit in plan.study.fits:
                    files = {name: Path(plan.fit_file(tid, fit, name)) for name in TRIAL_FILES}
                    label = what if fit.own_folder else f"{what}, fit {fit.name}"
                    recorded = row.get("model_bytes") if fit.own_folder else None
                    _check_fit(files, label, recorded, missing=missing, damaged=damaged)
    return missing, damaged


def _check_fit(files: dict, what: str, recorded_in_table, *, missing: dict, damaged: dict) -> None:
    """A fit's (a trial's) files: each present, its model of the size its metrics.csv records
    (`recorded_in_table`: the size the strategy's table holds, read first)."""
    absent = [file for file in files.values() if not file.is_file()]
    for file in absent:
        missing[str(file)] = f"{what}: {file.name} is missing"
    if absent:
        return
    size = files["model.keras"].stat().st_size
    if recorded_in_table not in (None, "") and size == int(float(recorded_in_table)):
        return
    recorded = _recorded_size(files["metrics.csv"])
    if recorded is not None and size != recorded:
        damaged[str(files["metrics.csv"])] = f"{what}: model.keras has {size} bytes, its metrics.csv records {recorded}"


def check_final(metrics_path, model_path) -> tuple[dict[str, str], dict[str, str]]:
    """The same for a final model whose test metrics exist (its sha256 is checked in full)."""
    metrics_path, model_path = Path(metrics_path), Path(model_path)
    if not metrics_path.is_file():
        return {}, {}
    if not model_path.is_file():
        return {str(model_path): f"{model_path} is missing"}, {}
    if _sha256_differs(model_path, json.loads(metrics_path.read_text())):
        return {}, {str(model_path): f"{model_path} is not the model {metrics_path} records (its sha256 differs)"}
    return {}, {}


def check_built(plan, final: bool) -> tuple[dict[str, str], dict[str, str]]:
    """({missing file: why}, {damaged file, the target that rebuilds it: why}) of what the
    study built: its trials and, with `final`, its final model and the published copy."""
    missing, damaged = check_trials(plan)
    if not final:
        return missing, damaged
    finals = [plan.paths.published_final]
    if plan.aggregated():
        trial = plan.best_trial()
        finals.append([plan.paths.final_file(trial, plan.final_key(trial), name) for name in FINAL_FILES])
    for metrics, model in finals:
        more_missing, more_damaged = check_final(metrics, model)
        missing.update(more_missing)
        damaged.update(more_damaged)
    return missing, damaged
