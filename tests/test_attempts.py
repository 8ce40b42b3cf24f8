"""What a train job keeps for a retry of its bundle (snaketune/workflow/attempts.py), on real files."""

import os

from snaketune.core.identity import file_sha256
from snaketune.workflow import attempts

NAMES = ["metrics.csv", "history.csv", "model.keras"]


def finished_trial(folder):
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"model bytes")
    (folder / "history.csv").write_text("epoch,loss\n1,0.5\n")
    (folder / "metrics.csv").write_text(f"status,model_sha256\ncompleted,{file_sha256(folder / 'model.keras')}\n")
    return folder


def test_a_kept_trial_is_put_back_after_its_outputs_were_deleted(tmp_path):
    trial = finished_trial(tmp_path / "t")
    before = {name: (trial / name).read_bytes() for name in NAMES}
    attempts.keep(trial, NAMES)
    for name in NAMES:
        (trial / name).unlink()  # as Snakemake does before running a job again
    assert attempts.restore(trial, NAMES)
    assert {name: (trial / name).read_bytes() for name in NAMES} == before


def test_a_damaged_kept_model_is_not_put_back(tmp_path):
    trial = finished_trial(tmp_path / "t")
    attempts.keep(trial, NAMES)
    for name in NAMES:
        (trial / name).unlink()
    (trial / attempts.KEPT / "model.keras").write_bytes(b"truncated")  # the kept link is the same file
    assert not attempts.restore(trial, NAMES)
    assert not (trial / "metrics.csv").exists()


def test_forgotten_or_never_kept_means_nothing_to_put_back(tmp_path):
    trial = finished_trial(tmp_path / "t")
    assert not attempts.restore(trial, NAMES)
    attempts.keep(trial, NAMES)
    attempts.forget(trial)
    assert not attempts.restore(trial, NAMES)


def test_without_hard_links_nothing_is_kept_and_the_job_goes_on(tmp_path, monkeypatch, capsys):
    trial = finished_trial(tmp_path / "t")
    attempts.keep(trial, NAMES)

    def no_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    attempts.keep(trial, NAMES)  # an older kept copy is dropped rather than left stale
    assert "kept: nothing" in capsys.readouterr().out
    assert not (trial / attempts.KEPT).exists()
    assert sorted(p.name for p in trial.iterdir()) == sorted(NAMES)


# A job killed (SIGKILL, no cleanup) between `keep`'s removal of the old `.kept` and its rename
# of the new one: the rename is where the kill lands.
KILLED_KEEP = """
import os, signal, sys
from pathlib import Path
from snaketune.workflow import attempts
Path.rename = lambda self, target: os.kill(os.getpid(), signal.SIGKILL)
attempts.keep(sys.argv[1], sys.argv[2:])
"""


def test_a_keep_killed_before_its_rename_leaves_nothing_that_a_later_attempt_keeps(tmp_path, monkeypatch):
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for later_attempt in (
        attempts.forget,
        lambda trial: attempts.keep(trial, NAMES),
        lambda trial: attempts.restore(trial, NAMES),
    ):
        trial = finished_trial(tmp_path / f"t{len(list(tmp_path.iterdir()))}")
        killed = subprocess.run([sys.executable, "-c", KILLED_KEEP, str(trial), *NAMES])
        assert killed.returncode == -signal.SIGKILL
        assert [p.name for p in trial.iterdir() if p.name.startswith(".kept.")]  # what the kill left
        later_attempt(trial)
        assert not [p.name for p in trial.iterdir() if p.name.startswith(".kept.")]
