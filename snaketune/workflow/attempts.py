"""What a trial finished in a failed bundle of trials is not trained again on its retry.

Trials bundled into one scheduler job (Snakemake's `group:`, see the Slurm profile) succeed
or fail together as far as Snakemake knows: when one of them dies, Snakemake deletes the
outputs of every trial in the bundle and retries the whole bundle, whose inner Snakemake
forces each of them to run again. So a train job keeps hard links to its finished files
beside them (`.kept/`, no extra disk), and a retry of the same job (attempt 2 and later)
that finds them whole puts them back instead of training. A first attempt forgets what an
earlier run kept, so `--forcerun` retrains as it says.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from snaketune.core.errors import DamagedInput
from snaketune.trial.integrity import verify_model
from snaketune.trial.outcome import read_record

KEPT = ".kept"
STAGING = re.compile(re.escape(KEPT) + r"\.[0-9]+")  # `keep`'s folder while it fills it


def forget(out_dir) -> None:
    shutil.rmtree(Path(out_dir) / KEPT, ignore_errors=True)
    _remove_staging(Path(out_dir))


def _remove_staging(out_dir: Path) -> None:
    """Remove what a `keep` killed before its rename left (`.kept.<pid>`). Only one job writes
    a trial's folder at a time (Snakemake locks its outputs), so any such folder is a leftover:
    it holds links to the files of an older attempt, which would keep their disk in use."""
    if out_dir.is_dir():
        for leftover in out_dir.iterdir():
            if STAGING.fullmatch(leftover.name):
                shutil.rmtree(leftover, ignore_errors=True)


def keep(out_dir, names) -> None:
    """Hard-link the job's finished files into `.kept/`, replacing what was kept before. On a
    file system without hard links nothing is kept (copies would double the disk a study
    takes): a retried bundle then trains this trial again, which is slower, not wrong."""
    out_dir = Path(out_dir)
    staging = out_dir / f"{KEPT}.{os.getpid()}"
    _remove_staging(out_dir)
    staging.mkdir()
    try:
        for name in names:
            os.link(out_dir / name, staging / name)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        forget(out_dir)
        print(f"kept: nothing ({error}); a retry of this job would train it again")
        return
    # A kill from here to the rename leaves `staging` behind: the next attempt's forget, keep
    # or restore removes it.
    shutil.rmtree(out_dir / KEPT, ignore_errors=True)
    staging.rename(out_dir / KEPT)


def restore(out_dir, names) -> bool:
    """Put back what an earlier attempt of this job kept, if it is all there and its model is
    the one its metrics record; False (nothing changed) otherwise."""
    out_dir = Path(out_dir)
    kept = out_dir / KEPT
    _remove_staging(out_dir)  # a retry that puts files back calls neither forget nor keep
    if not all((kept / name).is_file() for name in names):
        return False
    try:
        verify_model(kept / "model.keras", read_record(kept / "metrics.csv"), "")
    except (DamagedInput, OSError, ValueError):
        return False
    for name in names:
        target = out_dir / name
        target.unlink(missing_ok=True)
        os.link(kept / name, target)
        os.utime(target)  # written by this job, as far as the mtimes that Snakemake compares go
    return True
