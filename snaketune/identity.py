"""Content-addressed trial identity: the folder a trial trains in is a hash of what it trains."""

from __future__ import annotations

import hashlib
import json
import os


def digest(obj, length: int = 12) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def trial_id(values: dict, settings: dict) -> str:
    """The same hyperparameter values under the same training settings are the same trial,
    whichever strategy proposed them, so they train once."""
    return digest({"values": values, "settings": settings})


_SHA256_CACHE: dict = {}


def file_sha256(path) -> str:
    """sha256 of a file's bytes, hashed once per process for as long as its size and mtime hold."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA256_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _SHA256_CACHE[key] = digest.hexdigest()
    return _SHA256_CACHE[key]
