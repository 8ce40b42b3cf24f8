"""Content-addressed trial identity: the folder a trial trains in is a hash of what it trains."""

from __future__ import annotations

import hashlib
import json


def digest(obj, length: int = 12) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def trial_id(values: dict, settings: dict) -> str:
    """The same hyperparameter values under the same training settings are the same trial,
    whichever strategy proposed them, so they train once."""
    return digest({"values": values, "settings": settings})
