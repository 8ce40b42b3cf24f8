"""A finished trial's outcome as the strategies that learn from it read it: status and objective."""

from __future__ import annotations

import math

import pandas as pd


def read_outcome(metrics_path) -> tuple[str, float]:
    """("completed" or "failed", objective value or NaN) from a trial's metrics.csv."""
    row = pd.read_csv(metrics_path).iloc[0]
    value = float(row["objective_value"]) if pd.notna(row["objective_value"]) else math.nan
    return str(row["status"]), value
