"""The tiny study on a real single-node Slurm cluster, through the executor plugin and the
project's Slurm profile: every trial a Slurm job, the results those of a local run.

The cluster is set up the way users meet one: the study is submitted by an unprivileged user
(not root) from a shell whose runtime folder, /run/user/<uid>, exists only in that shell's
mount namespace (a tmpfs over /run/user), so it is missing where slurmd starts the jobs, as on
compute nodes without the user's login session; and Slurm tracks jobs' processes through
cgroups where this machine lets it (tests/slurm/start.sh; STATE_DIR/tracking says which).

CI (CI=true) starts the cluster with tests/slurm/start.sh, installing Slurm if needed, and
fails if it cannot; elsewhere these tests run where Slurm is installed and skip otherwise.
"""

import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import MNIST, ROOT, TINY, snakemake, write_config

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

SLURM = ROOT / "tests" / "slurm"
DAEMONS = ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd")
# The profile as a user runs it, with what a user sets on the command line (partition and
# account) and a first status check after 2 s instead of 40 s, for speed.
SLURM_RUN = (
    "--profile",
    str(ROOT / "profiles" / "slurm"),
    "--jobs",
    "4",
    "--default-resources",
    "slurm_partition=debug",
    "slurm_account=root",
    "runtime=15",
    "mem_mb=2000",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--latency-wait",
    "5",
)
SUBMITTED = re.compile(
    r"has been submitted with SLURM jobid (\d+) \(log: \S*?/(?:rule|group)_(\w+?)/(\S*?)/?\d+\.log\)"
)
# trials bundled into Slurm jobs: at most 2 CPUs a job (the test node has 2)
BUNDLED = ("--groups", "train=trials", "--cores", "2")
# the unprivileged user who submits the study (created if missing, and kept)
USER = "snaketune-ci"


def _installed() -> bool:
    return all(shutil.which(name) or Path("/usr/sbin", name).exists() for name in DAEMONS)


@pytest.fixture(scope="module")
def slurm_cluster():
    required = os.environ.get("CI") == "true" or os.environ.get("SNAKETUNE_SLURM_TESTS") == "1"
    if not required:
        if os.geteuid() != 0:
            pytest.skip("starting a local Slurm cluster needs root")
        if not _installed():
            pytest.skip("Slurm is not installed: CI=true or SNAKETUNE_SLURM_TESTS=1 installs it and runs these tests")
    # Not under pytest's temporary folder: that is private to root, and munged and mariadbd
    # run as their own users. The cluster's files and the studies' folders (the "shared file
    # system") are in /var/tmp.
    state = Path(tempfile.mkdtemp(prefix="snaketune-slurm-", dir="/var/tmp"))
    state.chmod(0o755)
    started = subprocess.run([str(SLURM / "start.sh"), str(state)], capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        pytest.fail(f"the local Slurm cluster did not start:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    print(f"Slurm: {(state / 'tracking').read_text().strip()}")
    yield state
    subprocess.run([str(SLURM / "stop.sh"), str(state)], capture_output=True, text=True, timeout=300)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def shared_dir(slurm_cluster):
    """A study folder that the unprivileged user and the jobs reach."""
    path = Path(tempfile.mkdtemp(prefix="study-", dir=slurm_cluster))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def unprivileged(slurm_cluster):
    """The user USER, as a cluster's users are: not root, a home of their own, and the Python
    environment, the checkout and MNIST readable the way a site's shared software is. The
    environment here is root's pyenv under /root (mode 0700): each folder above it, the
    checkout and MNIST that others cannot enter is made enterable (o+x, not listable) while
    these tests run, and put back after."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", USER], capture_output=True, text=True
        )
        if made.returncode != 0:
            pytest.fail(f"could not create the unprivileged user {USER}: {made.stderr}")
    user = pwd.getpwnam(USER)
    python = Path(sys.executable)
    changed = {}
    for target in (python.resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), ROOT, MNIST):
        for folder in reversed(target.parents):
            mode = stat.S_IMODE(folder.stat().st_mode)
            if not mode & stat.S_IXOTH and folder not in changed:
                changed[folder] = mode
                folder.chmod(mode | stat.S_IXOTH)
    env = {
        "HOME": user.pw_dir,
        "USER": USER,
        "LOGNAME": USER,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
    }
    works = subprocess.run(
        [
            "runuser",
            "-u",
            USER,
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            str(python),
            "-c",
            "import snakemake, snakemake_executor_plugin_slurm, numpy, snaketune",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    try:
        assert works.returncode == 0, f"{USER} cannot run {python} with the project's packages:\n{works.stderr}"
        yield user, env
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


RUNTIME_STILL_THERE = "the runtime folder was there when snakemake ended"


def snakemake_as(user, env, workdir: Path, runtime: Path | None, *args, check=True):
    """`snakemake` in workdir as `user` would run it from a login shell, with the same Python
    environment as the tests. With `runtime` (/run/user/<uid>), that shell's XDG_RUNTIME_DIR
    exists, mode 0700, in a mount namespace of the shell's own (a tmpfs over /run/user),
    and nowhere else: not where slurmd starts the jobs. Without, XDG_RUNTIME_DIR names a
    folder that does not exist."""
    shell = {**env, "XDG_RUNTIME_DIR": str(runtime or "/nonexistent")}
    cmd = [
        "runuser",
        "-u",
        user.pw_name,
        "--",
        "env",
        "-i",
        *(f"{k}={v}" for k, v in shell.items()),
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        "config.yaml",
        *args,
    ]
    if runtime:
        login = (
            f"mount -t tmpfs -o mode=0755 tmpfs {runtime.parent} && mkdir -m 0700 {runtime} && "
            f'chown {user.pw_uid}:{user.pw_gid} {runtime} && "$@"; status=$?; '
            f"test -d {runtime} && echo '{RUNTIME_STILL_THERE}' >&2; exit $status"
        )
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", login, "login", *cmd]
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1200)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} as {user.pw_name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


def submissions(output: str) -> list[tuple[str, str, str]]:
    """(Slurm job id, rule, wildcards) of every job the plugin submitted."""
    return SUBMITTED.findall(output)


def sacct(job_ids) -> pd.DataFrame:
    """Slurm's accounting record of the jobs; it can trail a job's end by a second or two."""
    for _ in range(30):
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "JobID,State,ReqMem,User", "-j", ",".join(job_ids)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows = [line.split("|") for line in out.splitlines() if line]
        if len(rows) == len(job_ids) and not any(r[1] in ("PENDING", "RUNNING") for r in rows):
            break
        time.sleep(1)
    return pd.DataFrame(rows, columns=["job", "state", "req_mem", "user"]).set_index("job")


def test_every_trial_runs_as_a_slurm_job_with_the_results_of_a_local_run(
    slurm_cluster, unprivileged, tiny_study, shared_dir
):
    """Submitted by an unprivileged user from a shell whose XDG_RUNTIME_DIR exists, as
    /run/user/<uid> does on a login node, and is missing where the jobs run, as on compute
    nodes without the user's login session."""
    user, env = unprivileged
    local_dir, config = tiny_study
    workdir = shared_dir
    write_config(workdir, config)
    runtime = Path("/run/user") / str(user.pw_uid)
    Path("/run/user").mkdir(parents=True, exist_ok=True)  # the mount point; the jobs see it empty
    assert not runtime.exists(), f"{runtime} exists outside the submitting shell"
    for path in (workdir, workdir / "config.yaml"):
        os.chown(path, user.pw_uid, user.pw_gid)
    workdir.chmod(0o755)
    result = snakemake_as(user, env, workdir, runtime, *SLURM_RUN, check=False)
    output = result.stdout + result.stderr
    assert RUNTIME_STILL_THERE in result.stderr, output[-3000:]  # there for the submitting Snakemake all along
    assert not runtime.exists()
    jobs = submissions(output)
    train = {wildcards: job for job, rule, wildcards in jobs if rule == "train"}
    states = sacct([job for job, _, _ in jobs])
    # a run that exits 0 must have finished the study
    assert result.returncode == 0 and (workdir / "results" / "tiny" / "summary.md").exists(), (
        f"{states}\n{output[-8000:]}"
    )
    assert set(states["user"]) == {USER}, states
    assert set(states["state"]) == {"COMPLETED"}, states
    # the jobs did not find the runtime folder, and trained in their own process, saying so
    for trial in train:
        log = (workdir / "results" / "tiny" / "logs" / "trials" / f"{re.sub(r'^trial_', '', trial)}.log").read_text()
        assert str(runtime) in log and "running in this process" in log, log

    trials = pd.read_csv(workdir / "results" / "tiny" / "trials.csv")
    local = pd.read_csv(local_dir / "results" / "tiny" / "trials.csv")
    assert sorted(re.sub(r"^trial_", "", w) for w in train) == sorted(trials["trial_id"].unique())
    # data, strategies' rounds, aggregation and plots are local rules: they never went to Slurm
    assert {rule for _, rule, _ in jobs} == {"space", "train", "final"}

    assert sorted(trials["trial_id"]) == sorted(local["trial_id"])
    merged = trials.merge(local, on=["strategy", "trial_id"], suffixes=("_slurm", "_local"))
    assert len(merged) == len(trials)
    for column in ("objective_value", "objective_epoch", "params", "status"):
        assert merged[f"{column}_slurm"].tolist() == merged[f"{column}_local"].tolist(), column
    final, local_final = (
        json.loads((d / "results" / "tiny" / "final" / "test_metrics.json").read_text()) for d in (workdir, local_dir)
    )
    for key in ("trial_id", "epochs", "test_accuracy", "test_loss"):
        assert final[key] == local_final[key], key
    # resumed from the files alone, as after the login node lost .snakemake/: nothing to do
    shutil.rmtree(workdir / ".snakemake")
    again = snakemake_as(user, env, workdir, None, *SLURM_RUN, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_trial_killed_in_a_bundle_is_retried_and_reported_alone_and_the_others_keep_their_results(
    slurm_cluster, mnist_path, shared_dir
):
    tmp_path = shared_dir
    config = {
        **TINY,
        "study": "dies",
        "data": {**TINY["data"], "path": str(mnist_path)},
        "model": {"build_model": f"{ROOT / 'tests' / 'models' / 'broken.py'}:dies_at_48_units"},
        "space": {"units": {"type": "int", "min": 16, "max": 64, "step": 16}},
        "strategies": {name: {**settings, "enabled": name == "grid"} for name, settings in TINY["strategies"].items()},
        "final": {"enabled": False},
    }
    config["strategies"]["grid"] = {"values": {"units": [16, 32, 48]}}
    write_config(tmp_path, config)
    result = snakemake(tmp_path, *SLURM_RUN, *BUNDLED, "--group-components", "trials=3", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in group trials" in output

    bundles = [job for job, rule, _ in submissions(output) if rule == "trials_train"]
    states = sacct(bundles)
    # one bundle of the 3 trials, and the profile's one retry of it, with twice the memory
    # (2 trials side by side on 2 CPUs: 2 x 1600 MB)
    assert len(bundles) == 2 and states["state"].ne("COMPLETED").all(), states
    assert [int(re.sub(r"\D", "", m)) for m in states["req_mem"]] == [3200, 6400], states

    out = tmp_path / "results" / "dies"
    trials = {
        tid: pd.read_csv(path)["units"].iloc[0]
        for path in out.glob("trials/*/metrics.csv")
        for tid in [path.parent.name]
    }
    assert sorted(trials.values()) == [16, 32]  # --keep-going: the other two trials finished
    dead = ({path.stem for path in (out / "logs" / "trials").glob("*.log")} - set(trials)).pop()
    assert dead in output  # the failed bundle is reported with the log of the trial that died
    # the bundle's first attempt ran all three (a dead trial does not stop the others); its
    # retry put the two finished ones back instead of training them again
    for tid in trials:
        log = (out / "logs" / "trials" / f"{tid}.log").read_text()
        assert "kept: trained by an earlier attempt of this job, not trained again" in log, log
