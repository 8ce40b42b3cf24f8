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


def test_off_by_choice_the_job_runs_it_itself(runtime_dir, monkeypatch):
    monkeypatch.setenv("SNAKETUNE_FORKSERVER", "0")
    assert forkserver.call(f"{TARGETS}:whoami", tag="here")["pid"] == os.getpid()


def test_each_scheduler_allocation_has_a_server_of_its_own(runtime_dir, monkeypatch):
    # the trials bundled into one Slurm job share a server; another allocation never does
    local = forkserver.call(f"{TARGETS}:whoami", tag="local")
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    first = forkserver.call(f"{TARGETS}:whoami", tag="a")
    second = forkserver.call(f"{TARGETS}:whoami", tag="b")
    monkeypatch.setenv("SLURM_JOB_ID", "124")
    other = forkserver.call(f"{TARGETS}:whoami", tag="c")
    assert first["pid"] != os.getpid() and first["ppid"] == second["ppid"]
    assert len({local["ppid"], first["ppid"], other["ppid"]}) == 3


def test_starting_a_server_removes_the_files_of_servers_killed_hard(runtime_dir, monkeypatch):
    # as a scheduler ends an allocation: SIGKILL, no idle exit to remove its socket and log
    import signal
    import time

    monkeypatch.setenv("SLURM_JOB_ID", "200")
    killed = forkserver.call(f"{TARGETS}:whoami", tag="a")["ppid"]
    # the server's own lines name its pid; what TensorFlow prints at import may come first
    sock = next(p for p in runtime_dir.glob("snaketune-forkserver-*/*.sock")
                if any(line.startswith(f"forkserver {killed}:")
                       for line in p.with_suffix(".log").read_text().splitlines()))
    os.kill(killed, signal.SIGKILL)
    while _alive(killed):
        time.sleep(0.1)
    assert sock.exists() and sock.with_suffix(".log").exists()
    monkeypatch.setenv("SLURM_JOB_ID", "201")
    forkserver.call(f"{TARGETS}:whoami", tag="b")
    assert not sock.exists() and not sock.with_suffix(".log").exists() and not sock.with_suffix(".lock").exists()


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


def test_a_forked_process_that_cannot_take_the_jobs_place_fails_the_call_saying_so(runtime_dir, monkeypatch, capfd):
    # The job's working directory is gone by the time the forked process changes into it:
    # the process ends before it reports that it started.
    monkeypatch.setattr(os, "getcwd", lambda: "/nonexistent/working/directory")
    with pytest.raises(forkserver.JobProcessDied, match="ended before it started"):
        forkserver.call(f"{TARGETS}:whoami", tag="x")
    assert "/nonexistent/working/directory" in capfd.readouterr().err


def test_two_identities_run_side_by_side(runtime_dir, monkeypatch):
    # A job whose import-time environment differs (as after an upgrade of the preloaded
    # packages, which are part of the identity too) gets a server of its own.
    first = forkserver.call(f"{TARGETS}:whoami", tag="a")
    sockets = set(runtime_dir.glob("snaketune-forkserver-*/*.sock"))
    monkeypatch.setenv("TF_SNAKETUNE_TEST_IDENTITY", "other")
    other = forkserver.call(f"{TARGETS}:whoami", tag="b")
    monkeypatch.delenv("TF_SNAKETUNE_TEST_IDENTITY")
    again = forkserver.call(f"{TARGETS}:whoami", tag="c")
    assert first["ppid"] != other["ppid"] and again["ppid"] == first["ppid"]
    assert len(set(runtime_dir.glob("snaketune-forkserver-*/*.sock")) - sockets) == 1  # the other's


def test_the_identity_holds_the_preloaded_packages_versions(monkeypatch):
    before = forkserver._identity()
    real = forkserver.metadata.version
    monkeypatch.setattr(forkserver.metadata, "version",
                        lambda name: "99.0" if name == "keras" else real(name))
    assert forkserver._identity() != before


JOB = f"import json, sys; from snaketune.forkserver import call; print(json.dumps(call('{TARGETS}:whoami', tag=sys.argv[1])))"


@pytest.fixture(scope="module")
def two_jobs_at_once(tmp_path_factory):
    """Two jobs that find no server start at the same moment, where a dead server left its
    socket; the server they share leaves after 2 idle seconds."""
    runtime = tmp_path_factory.mktemp("fresh_runtime")
    runtime.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if k not in ("SNAKETUNE_FORKSERVER", "SLURM_JOB_ID")}
    env |= {"XDG_RUNTIME_DIR": str(runtime), "SNAKETUNE_FORKSERVER_IDLE": "2", "PYTHONPATH": os.getcwd()}
    folder = runtime / f"snaketune-forkserver-{os.getuid()}"
    folder.mkdir(mode=0o700)
    identity = subprocess.run([sys.executable, "-c", "from snaketune.forkserver import _identity; print(_identity())"],
                              env=env, capture_output=True, text=True, check=True).stdout.strip()
    stale = socket_left_by_a_dead_server(folder / f"{identity}.sock")
    jobs = [subprocess.Popen([sys.executable, "-c", JOB, tag], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for tag in ("a", "b")]
    outputs = [job.communicate(timeout=600) for job in jobs]
    return folder, stale, jobs, outputs


def socket_left_by_a_dead_server(path: Path) -> Path:
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.close()  # the file stays; nobody answers on it
    return path


def test_two_jobs_starting_the_server_at_once_start_one_and_both_run(two_jobs_at_once):
    import json

    _, _, jobs, outputs = two_jobs_at_once
    assert [job.returncode for job in jobs] == [0, 0], outputs
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert [r["tag"] for r in results] == ["a", "b"]
    assert results[0]["ppid"] == results[1]["ppid"]  # one server forked both
    assert sum("started server" in err for _, err in outputs) == 1


def test_a_stale_socket_is_replaced_and_an_idle_server_leaves_no_file(two_jobs_at_once):
    folder, stale, jobs, _ = two_jobs_at_once
    assert [job.returncode for job in jobs] == [0, 0]
    deadline = time.monotonic() + 300  # the server leaves 2 idle seconds after the jobs
    while list(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    # its socket (which replaced the dead server's), lock and log are all gone
    assert list(folder.iterdir()) == []


def test_a_server_warmed_by_a_job_that_has_ended_serves_the_jobs_after_it(tmp_path_factory):
    # The space job of a built-in model starts the server and ends at once; the trial jobs
    # that come while it imports TensorFlow wait for it rather than start another.
    runtime = tmp_path_factory.mktemp("warm")  # short: a socket's path has a length limit
    runtime.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if k not in ("SNAKETUNE_FORKSERVER", "SLURM_JOB_ID")}
    env |= {"XDG_RUNTIME_DIR": str(runtime), "SNAKETUNE_FORKSERVER_IDLE": "2", "PYTHONPATH": os.getcwd()}
    warmed = subprocess.run([sys.executable, "-c", "from snaketune.forkserver import warm; warm()"], env=env,
                            capture_output=True, text=True, check=True)
    server = int(warmed.stderr.split("started server ")[1].split()[0])
    jobs = [subprocess.Popen([sys.executable, "-c", JOB, tag], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outputs = [job.communicate(timeout=600) for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], outputs
    import json

    assert [json.loads(out.strip().splitlines()[-1])["ppid"] for out, _ in outputs] == [server, server]
    assert not any("started server" in err for _, err in outputs)


def test_a_job_that_needs_no_tensorflow_uses_a_running_server_but_starts_none(runtime_dir, monkeypatch, tmp_path):
    served = forkserver.call(f"{TARGETS}:whoami", tag="trial")
    assert forkserver.call_if_running(f"{TARGETS}:whoami", tag="plots")["ppid"] == served["ppid"]
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(empty))
    assert forkserver.call_if_running(f"{TARGETS}:whoami", tag="plots")["pid"] == os.getpid()
    assert not list(empty.glob("*/*.sock"))
