"""Nothing lost: kill -9 at any point, hard-killed trials, reproducibility and concurrent runs.

The tiny study is killed three times on its way (during a trial's fit, during a Bayesian
round, during aggregation) and resumed each time the way docs/rerunning.md says; it must end with
exactly the results of an uninterrupted run, without retraining a trial that had finished.
It is done twice: keeping Snakemake's .snakemake/ metadata between runs, and deleting it
(as a fresh clone holding a copied results/ would be).
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, TINY, snakemake, snakemake_cmd, write_config

pytestmark = pytest.mark.workflow

# Measurements, not results: they vary from run to run. A model file records when it was
# saved, so its size and checksum identify the file, not the training.
MEASURED_COLUMNS = ["fit_seconds", "load_seconds", "strategy_seconds", "peak_rss_mb", "model_bytes", "model_sha256"]
FINAL_TIMING = ("search_seconds", "fit_seconds", "model_bytes", "model_sha256")


def fingerprint(folder: Path) -> dict:
    """path -> (mtime_ns, sha256) of every file under `folder`."""
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finished_trials(out: Path, output: str) -> dict:
    """Fingerprints of the trials whose jobs Snakemake reported finished in `output`.

    Snakemake reports a job finished once it has recorded it so (and touched its outputs);
    a job killed after writing its files but before that is incomplete to Snakemake, which
    rightly runs it again under rerun-incomplete."""
    # a trial job's console line is its `message:`: "Job <id>: trial <trial id> (...)"
    trials = dict(re.findall(r"^Job (\d+): trial ([0-9a-f]{12})\b", output, re.M))
    done = re.findall(r"Finished jobid: (\d+) \(Rule: train\)", output)
    return {trials[j]: fingerprint(out / "trials" / trials[j]) for j in done if j in trials}


def living_in_group(pgid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    alive = []
    for pid in found:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(int(pid))
    return alive


class Run:
    """`snakemake --cores 2` in its own process group, so that it and its jobs die together."""

    def __init__(self, workdir: Path, env: dict | None = None):
        self.workdir = workdir
        self.output = workdir / f"snakemake-{time.monotonic_ns()}.out"
        with self.output.open("w") as sink:
            self.process = subprocess.Popen(
                snakemake_cmd("--configfile", "config.yaml", "--cores", "2"),
                cwd=workdir,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )

    def kill_when(self, condition, timeout=600) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"the run ended before the moment to kill it:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("the moment to kill the run never came")
            time.sleep(0.02)
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        # every job of the run died with it (zombies waiting to be reaped are dead)
        survivors = living_in_group(self.process.pid)
        for _ in range(50):
            if not survivors:
                break
            time.sleep(0.1)
            survivors = living_in_group(self.process.pid)
        assert not survivors, survivors

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def resume(workdir: Path, metadata: str) -> None:
    """What docs/rerunning.md tells users after a kill: unlock, then the same command; or, with the
    metadata deleted, only the same command."""
    if metadata == "kept":
        snakemake(workdir, "--unlock")
    else:
        shutil.rmtree(workdir / ".snakemake")


def trial_in_fit(out: Path, run: "Run"):
    def condition():
        for log in (out / "logs" / "trials").glob("*.log"):
            if (
                "fit: epochs" in log.read_text(errors="replace")
                and not (out / "trials" / log.stem / "metrics.csv").exists()
            ):
                return bool(finished_trials(out, run.text()))  # and at least one trial finished before
        return False

    return condition


def comparable_trials(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "trials.csv").drop(columns=MEASURED_COLUMNS)


def comparable_final(out: Path) -> dict:
    final = json.loads((out / "final" / "test_metrics.json").read_text())
    return {k: v for k, v in final.items() if k not in FINAL_TIMING}


def fresh_study(tiny_study, tmp_path_factory, name: str) -> tuple[Path, Path]:
    """An empty folder holding the tiny study's config: (workdir, its results folder)."""
    workdir = tmp_path_factory.mktemp(name)
    write_config(workdir, tiny_study[1])
    return workdir, workdir / "results" / "tiny"


@pytest.fixture(scope="module", params=["kept", "deleted"], ids=lambda m: f"metadata {m}")
def killed_and_resumed(request, tiny_study, tmp_path_factory):
    """The tiny study killed three times and resumed, keeping or deleting .snakemake/ between
    runs; what each kill left, to check after."""
    metadata = request.param
    workdir, out = fresh_study(tiny_study, tmp_path_factory, f"killed_{metadata}")
    kills = {}

    run = Run(workdir)
    run.kill_when(trial_in_fit(out, run))
    kills["fit"] = finished_trials(out, run.text())

    resume(workdir, metadata)
    run = Run(workdir)
    # A round takes about a second: the kill comes once it has started, during it or just
    # after, never depending on catching it mid-way.
    run.kill_when(lambda: any((out / "logs" / "rounds" / "bayesian").glob("*/all/round_1.log")))
    kills["bayesian_round"] = {**kills["fit"], **finished_trials(out, run.text())}

    resume(workdir, metadata)
    run = Run(workdir)
    run.kill_when(lambda: (out / "logs" / "aggregate.log").exists())
    kills["aggregate"] = {**kills["bayesian_round"], **finished_trials(out, run.text())}

    resume(workdir, metadata)
    result = snakemake(workdir, "--cores", "2")
    return workdir, kills, result.stdout + result.stderr


@pytest.mark.parametrize("moment", ["fit", "bayesian_round", "aggregate"])
def test_trials_finished_before_a_kill_are_never_retrained(killed_and_resumed, moment):
    workdir, kills, _ = killed_and_resumed
    before = kills[moment]
    assert before, f"no trial had finished when the run was killed during {moment}"
    out = workdir / "results" / "tiny"
    for trial, files in before.items():
        assert fingerprint(out / "trials" / trial) == files, (
            f"trial {trial}, finished before the kill during {moment}, changed"
        )


def test_a_killed_and_resumed_study_equals_an_uninterrupted_one(killed_and_resumed, tiny_study):
    workdir, _, _ = killed_and_resumed
    resumed, uninterrupted = workdir / "results" / "tiny", tiny_study[0] / "results" / "tiny"
    pd.testing.assert_frame_equal(comparable_trials(resumed), comparable_trials(uninterrupted))
    assert (resumed / "best_params.json").read_text() == (uninterrupted / "best_params.json").read_text()
    assert comparable_final(resumed) == comparable_final(uninterrupted)
    # no temporaries left (a model's is .model.keras.<hex>.keras)
    assert (
        not list(resumed.rglob(".*.tmp")) and not list(resumed.rglob(".*.csv")) and not list(resumed.rglob(".*.keras"))
    )
    assert "Nothing to be done" in (snakemake(workdir, "-n").stdout)
    shutil.rmtree(workdir / ".snakemake")
    assert "Nothing to be done" in (snakemake(workdir, "-n").stdout)


def processes() -> dict:
    """{pid: (parent pid, command line)} of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except (OSError, IndexError, ValueError):
                continue
    return found


def stop_everything(run: Run, runtime: Path) -> list[int]:
    """SIGSTOP the run's process group, then its fork server (which then forks no one) and the
    processes it forked (trials and rounds, outside the group): nothing of the run writes."""
    os.killpg(run.process.pid, signal.SIGSTOP)
    stopped = []
    servers = [
        pid for pid, (_, cmd) in processes().items() if "snaketune.core.forkserver" in cmd and str(runtime) in cmd
    ]
    for pid in servers:
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
    for pid, (ppid, _) in processes().items():
        if ppid in servers:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
    return stopped


@pytest.fixture(scope="module")
def second_run_with_an_intruder(tiny_study, tmp_path_factory):
    """The tiny study from scratch again; while it runs, a second snakemake tries the same folder.

    The running study is stopped (SIGSTOP to Snakemake, its jobs and the processes its fork
    server forked for them) while the second one tries: Snakemake touches the outputs of a job
    that has just finished (a round file's mtime moves some 30 ms after the job wrote it, same
    inode, same content), and a round or trial forked by the fork server writes outside
    Snakemake's process group; a snapshot taken while either happens would count a change."""
    workdir, out = fresh_study(tiny_study, tmp_path_factory, "again")
    runtime = tmp_path_factory.mktemp("rt")  # a fork server of its own, to stop with the run
    runtime.chmod(0o700)
    run = Run(workdir, env={"XDG_RUNTIME_DIR": str(runtime)})
    deadline = time.monotonic() + 300
    while not list((out / "logs" / "trials").glob("*.log")):
        assert run.process.poll() is None and time.monotonic() < deadline, run.text()[-3000:]
        time.sleep(0.1)
    stopped = stop_everything(run, runtime)
    try:
        before = fingerprint(out)
        intruder = snakemake(workdir, "--cores", "1", check=False)
        after = fingerprint(out)
    finally:
        for pid in reversed(stopped):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        os.killpg(run.process.pid, signal.SIGCONT)
    assert run.process.wait(timeout=1200) == 0, run.text()[-3000:]
    return workdir, intruder, before, after


def test_a_second_snakemake_on_a_running_study_is_refused(second_run_with_an_intruder):
    _, intruder, before, after = second_run_with_an_intruder
    assert intruder.returncode != 0
    assert "cannot be locked" in intruder.stdout + intruder.stderr
    # Nothing the stopped study had written changed, and nothing was added.
    assert after == before


def test_the_same_study_twice_from_scratch_gives_the_same_results(second_run_with_an_intruder, tiny_study):
    workdir, _, _, _ = second_run_with_an_intruder
    again, first = workdir / "results" / "tiny", tiny_study[0] / "results" / "tiny"
    pd.testing.assert_frame_equal(comparable_trials(again), comparable_trials(first))
    assert (again / "best_params.json").read_text() == (first / "best_params.json").read_text()
    rounds = sorted(p.relative_to(first) for p in (first / "rounds").rglob("round_*.json"))
    assert rounds and rounds == sorted(p.relative_to(again) for p in (again / "rounds").rglob("round_*.json"))
    for path in rounds:
        assert (again / path).read_text() == (first / path).read_text(), path
    assert comparable_final(again) == comparable_final(first)


def test_the_summary_records_the_software_versions(tiny_study):
    summary = (tiny_study[0] / "results" / "tiny" / "summary.md").read_text()
    for name in ("python", "tensorflow(-cpu)?", "keras", "keras-tuner", "snakemake"):
        assert re.search(rf"^- {name} \d+\.\d+", summary, re.M), name


def test_a_trial_process_killed_hard_is_retried_with_twice_the_memory(tmp_path, mnist_path):
    """A trial process that dies (as when killed for its memory) reruns with `--retries`."""
    marker = tmp_path / "died-once"
    config = {
        **TINY,
        "data": {**TINY["data"], "path": str(mnist_path)},
        "model": {"build_model": f"{ROOT / 'tests' / 'models' / 'broken.py'}:dies_once_at_32_units"},
        "space": {},
        "strategies": {
            "grid": {"values": {"units": [32]}},
            "random": {"enabled": False, "trials": 1},
            "bayesian": {"enabled": False, "trials": 1},
        },
        "final": {"enabled": False},
    }
    write_config(tmp_path, config)
    result = subprocess.run(
        snakemake_cmd("--configfile", "config.yaml", "--cores", "1", "--retries", "1"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SNAKETUNE_TEST_MARKER": str(marker)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert marker.exists()  # the first attempt died
    # the second attempt's log (the job's log is its last attempt's) says what it was given
    log = next((tmp_path / "results" / "tiny" / "logs" / "trials").glob("*.log")).read_text()
    assert re.search(r"^resources: mem_mb=3200\b", log, re.M), log[-3000:]
    assert len(re.findall(r"^Finished jobid: \d+ \(Rule: train\)$", output, re.M)) == 1, output[-3000:]
    trials = pd.read_csv(tmp_path / "results" / "tiny" / "trials.csv")
    assert trials["status"].tolist() == ["completed"]
