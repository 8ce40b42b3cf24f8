"""The fork server: jobs that import TensorFlow run in a process forked from one that has."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from snaketune import forkserver

TARGETS = "tests.forkserver_targets"


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory):
    """A server of this module's own (servers are found through XDG_RUNTIME_DIR)."""
    folder = tmp_path_factory.mktemp("runtime")
    folder.chmod(0o700)
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "SNAKETUNE_FORKSERVER", "SLURM_JOB_ID")}
    os.environ["XDG_RUNTIME_DIR"] = str(folder)
    os.environ.pop("SNAKETUNE_FORKSERVER", None)
    os.environ.pop("SLURM_JOB_ID", None)
    yield folder
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_a_call_runs_in_a_process_forked_from_a_server_with_tensorflow_imported(runtime_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("SNAKETUNE_TEST_VALUE", "from the job")
    monkeypatch.chdir(tmp_path)
    first = forkserver.call(f"{TARGETS}:whoami", tag="a")
    second = forkserver.call(f"{TARGETS}:whoami", tag="b")
    assert first["tag"] == "a" and second["tag"] == "b"
    assert first["pid"] != os.getpid() and first["pid"] != second["pid"]
    assert first["ppid"] == second["ppid"], "both jobs were forked from the same server"
    assert first["tensorflow_imported"]
    assert first["cwd"] == str(tmp_path) and first["env"] == "from the job"


def test_a_call_whose_function_returns_nothing_runs_it_once(runtime_dir, tmp_path):
    count = tmp_path / "runs"
    assert forkserver.call(f"{TARGETS}:count_and_return_nothing", count_file=str(count)) is None
    assert count.read_text() == "ran\n"


def test_the_forked_process_writes_to_the_jobs_own_output(runtime_dir, tmp_path):
    log = tmp_path / "job.log"
    code = (f"from snaketune.joblog import redirect; redirect({str(log)!r}); "
            f"from snaketune.forkserver import call; call('{TARGETS}:speak', text='hello')")
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    text = log.read_text()
    assert "out: hello" in text and "err: hello" in text
    assert "forked from server" in text


def test_an_error_in_the_forked_process_fails_the_call_with_its_message(runtime_dir, capfd):
    with pytest.raises(RuntimeError, match="ValueError: no such configuration"):
        forkserver.call(f"{TARGETS}:fail", message="no such configuration")
    assert "Traceback" in capfd.readouterr().err


def test_a_forked_process_killed_hard_fails_the_call(runtime_dir):
    with pytest.raises(forkserver.JobProcessDied, match="SIGKILL"):
        forkserver.call(f"{TARGETS}:die")


def test_killing_the_job_kills_its_forked_process(runtime_dir, tmp_path):
    pid_file = tmp_path / "pid"
    code = f"from snaketune.forkserver import call; call('{TARGETS}:wait_forever', pid_file={str(pid_file)!r})"
    job = subprocess.Popen([sys.executable, "-c", code], env=os.environ | {"PYTHONPATH": os.getcwd()})
    deadline = time.monotonic() + 120
    while not pid_file.exists():
        assert time.monotonic() < deadline and job.poll() is None
        time.sleep(0.05)
    forked = int(pid_file.read_text())
    job.send_signal(signal.SIGKILL)
    job.wait()
    for _ in range(100):
        if not _alive(forked):
            break
        time.sleep(0.05)
    assert not _alive(forked), "the forked process outlived its job"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("env", [{"SNAKETUNE_FORKSERVER": "0"}, {"SLURM_JOB_ID": "123"}])
def test_off_by_choice_or_under_a_scheduler_the_job_runs_it_itself(runtime_dir, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert forkserver.call(f"{TARGETS}:whoami", tag="here")["pid"] == os.getpid()


def test_a_trial_trains_in_a_forked_process_exactly_as_in_a_fresh_one(runtime_dir, tiny_data, tiny_settings, tmp_path):
    values = {"learning_rate": 0.01, "batch_size": 32, "units": 32}
    kwargs = dict(study="tiny", trial_id="t", values=values, settings=tiny_settings, data_dir=str(tiny_data))
    forked = forkserver.call("snaketune.train:run_trial", out_dir=str(tmp_path / "forked"), **kwargs)
    code = f"from snaketune.train import run_trial; run_trial(out_dir={str(tmp_path / 'fresh')!r}, **{kwargs!r})"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                   env=os.environ | {"SNAKETUNE_FORKSERVER": "0", "PYTHONPATH": os.getcwd()})
    assert forked["status"] == "completed" and forked["peak_rss_mb"] > 100
    histories = [pd.read_csv(tmp_path / side / "history.csv").drop(columns="seconds") for side in ("forked", "fresh")]
    assert len(histories[0]) == 1
    pd.testing.assert_frame_equal(*histories)
