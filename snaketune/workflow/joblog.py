"""A job's start: its output, TensorFlow's C++ logging included, to its Snakemake `log:` file,
and what an earlier, killed attempt at it left behind removed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from snaketune.core.atomic import remove_temporaries


def start(snakemake) -> None:
    """Every Snakemake script of the workflow begins here."""
    redirect(snakemake.log[0])
    # Only this job writes its outputs (Snakemake's lock keeps a second run out), so any
    # temporary of theirs is a leftover of an attempt killed mid-write.
    for output in snakemake.output:
        for leftover in remove_temporaries(output):
            print(f"removed {leftover}, left by an earlier attempt killed while writing {output}")


def redirect(path) -> None:
    # TensorFlow's native code writes to file descriptors 1 and 2 directly, so replacing
    # sys.stdout alone would leave half of the output on the terminal.
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
