"""The data is checked once per version of its files (snaketune.study.data_check.checked_data): every job
parses the workflow again, in a process of its own, and must not read the data set (to check
it, or to hash it for the trial ids) before it starts.

Each load of the study here runs in a new process, as a job's parse does; Python's audit hook
sees every opening of the data file in it (open(), np.load's and pandas's included)."""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import ROOT

SCHEMA = ROOT / "config" / "schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())

PARSE = """
import json, os, sys

watched = os.path.abspath(sys.argv[1])
opened = []

def audit(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.abspath(os.fsdecode(args[0])) == watched:
            opened.append(args[0])

sys.addaudithook(audit)
from snaketune.study.config import load_study
from snaketune.core.errors import ConfigError

try:
    study = load_study(json.loads(sys.argv[2]), sys.argv[3], cache_dir=sys.argv[4])
except ConfigError as error:
    print(json.dumps({"error": str(error)}))
else:
    print(json.dumps({"opened": len(opened), "data": study.training_settings()["data"],
                      "summary": study.data_summary}))
"""


def parse(tmp_path, data: dict, watched) -> dict:
    """Load the study as a process parsing the workflow does; what it saw, and how often it
    opened `watched`."""
    config = copy.deepcopy(DEFAULT)
    config["data"].update(data)
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(watched), json.dumps(config), str(SCHEMA), str(tmp_path / "cache")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_npz(path, seed, bad=False):
    """An .npz of the same size for every seed (uncompressed, same shapes); `bad`: a test label
    that training never saw."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        x_train=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8),
        y_train=np.arange(40) % 4,
        x_test=rng.integers(0, 255, (10, 8, 8), dtype=np.uint8),
        y_test=np.arange(10) % (5 if bad else 4),
    )


def write_csv(path, seed, bad=False):
    rng = np.random.default_rng(seed)
    rows = [
        f"{a},{b},{label}" for a, b, label in zip(rng.integers(10, 99, 60), rng.integers(10, 99, 60), np.arange(60) % 3)
    ]
    if bad:
        rows[5] = "10,10,"  # a sample without its target
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")


FORMATS = {
    "npz": (write_npz, lambda path: {"path": str(path)}),
    "csv": (write_csv, lambda path: {"csv": str(path), "target": "label"}),
}


@pytest.mark.parametrize("kind", FORMATS)
def test_data_is_checked_once_per_version_of_its_file(tmp_path, kind):
    write, settings = FORMATS[kind]
    path = tmp_path / f"data.{kind}"
    write(path, seed=0)

    first = parse(tmp_path, settings(path), path)  # the main process: checks and hashes the file
    assert first["opened"] > 0
    job = parse(tmp_path, settings(path), path)
    assert job["opened"] == 0, "a later parse (a job's) read the data file"
    assert job["data"] == first["data"] and job["summary"] == first["summary"]  # the same trial ids

    # new content of the same size with the old mtime put back (as cp -p or rsync -t do)
    stat = path.stat()
    write(path, seed=1)
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = parse(tmp_path, settings(path), path)
    assert changed["opened"] > 0
    assert changed["data"]["sha256"] != first["data"]["sha256"]

    write(path, seed=2, bad=True)  # and a file that does not pass is refused, not taken from the cache
    assert "error" in parse(tmp_path, settings(path), path)
