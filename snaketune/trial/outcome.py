"""A finished trial's record as others read it: the strategies that learn from its outcome,
the final model that retrains it, the check of what the study built.

Read with the csv module, not pandas: some readers run while Snakemake builds the DAG."""

from __future__ import annotations

import csv
import math


def read_record(metrics_path) -> dict[str, str]:
    """The one row of a trial's metrics.csv, as text."""
    with open(metrics_path, newline="") as fh:
        return next(csv.DictReader(fh), {})


def read_outcome(metrics_path) -> tuple[str, float]:
    """("completed" or "failed", objective value or NaN) from a trial's metrics.csv."""
    record = read_record(metrics_path)
    value = record.get("objective_value", "")
    return record["status"], float(value) if value else math.nan
