"""The fork server: jobs that import TensorFlow run in a process forked from one that has."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from snaketune.core import forkserver

TARGETS = "tests.forkserver_targets"
# The servers of the tests of the server's own workings (identities, allocations, files left
# behind, jobs arriving together) import these instead of TensorFlow: what they check does not
# depend on what the server imports, and each TensorFlow import costs seconds of CPU. SLOW
# takes seconds all the same (sleeping), so that jobs arrive while the server starts.
LIGHT = (TARGETS,)
SLOW = ("tests.forkserver_slow_import", TARGETS)


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
    code = (
        f"from snaketune.workflow.joblog import redirect; redirect({str(log)!r}); "
        f"import snaketune.core.forkserver as fs; fs.PRELOAD = {LIGHT!r}; fs.call('{TARGETS}:speak', text='hello')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    text = log.read_text()
    assert "out: hello" in text and "err: hello" in text
    assert "forked from server" in text


def test_an_error_in_the_forked_process_fails_the_call_with_its_message(runtime_dir, capfd):
    with pytest.raises(ValueError, match="no such configuration") as raised:
        forkserver.call(f"{TARGETS}:fail", message="no such configuration")
    assert type(raised.value) is ValueError
    assert "Traceback" in capfd.readouterr().err


def test_a_forked_process_killed_hard_fails_the_call(runtime_dir):
    with pytest.raises(forkserver.JobProcessDied, match="SIGKILL"):
        forkserver.call(f"{TARGETS}:die")


def test_killing_the_job_kills_its_forked_process(runtime_dir, tmp_path):
    pid_file = tmp_path / "pid"
    code = (
        f"import snaketune.core.forkserver as fs; fs.PRELOAD = {LIGHT!r}; "
        f"fs.call('{TARGETS}:wait_forever', pid_file={str(pid_file)!r})"
    )
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
    monkeypatch.setattr(forkserver, "PRELOAD", LIGHT)
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
    monkeypatch.setattr(forkserver, "PRELOAD", LIGHT)
    # as a scheduler ends an allocation: SIGKILL, no idle exit to remove its socket and log
    import signal
    import time

    monkeypatch.setenv("SLURM_JOB_ID", "200")
    killed = forkserver.call(f"{TARGETS}:whoami", tag="a")["ppid"]
    # the server's own lines name its pid; what TensorFlow prints at import may come first
    sock = next(
        p
        for p in runtime_dir.glob("snaketune-forkserver-*/*.sock")
        if any(line.startswith(f"forkserver {killed}:") for line in p.with_suffix(".log").read_text().splitlines())
    )
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
    forked = forkserver.call("snaketune.trial.train:run_trial", out_dir=str(tmp_path / "forked"), **kwargs)
    code = f"from snaketune.trial.train import run_trial; run_trial(out_dir={str(tmp_path / 'fresh')!r}, **{kwargs!r})"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        env=os.environ | {"SNAKETUNE_FORKSERVER": "0", "PYTHONPATH": os.getcwd()},
    )
    assert forked["status"] == "completed" and forked["peak_rss_mb"] > 100
    histories = [pd.read_csv(tmp_path / side / "history.csv").drop(columns="seconds") for side in ("forked", "fresh")]
    assert len(histories[0]) == 1
    pd.testing.assert_frame_equal(*histories)


def test_a_forked_process_that_cannot_take_the_jobs_place_leaves_the_call_to_the_job_saying_so(
    runtime_dir, monkeypatch, capfd
):
    # The job's working directory is gone by the time the forked process changes into it:
    # nothing has run, so the job runs the function itself (its own directory may be gone too).
    monkeypatch.setattr(os, "getcwd", lambda: "/nonexistent/working/directory")
    capfd.readouterr()
    line = runs_here_saying_so_once(capfd)
    assert "could not take the job's place" in line and "/nonexistent/working/directory" in line


def test_two_identities_run_side_by_side(runtime_dir, monkeypatch):
    monkeypatch.setattr(forkserver, "PRELOAD", LIGHT)
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
    monkeypatch.setattr(forkserver.metadata, "version", lambda name: "99.0" if name == "keras" else real(name))
    assert forkserver._identity() != before


def test_a_server_that_preloads_other_modules_is_another_server(monkeypatch):
    before = forkserver._identity()
    monkeypatch.setattr(forkserver, "PRELOAD", LIGHT)
    assert forkserver._identity() != before


JOB = (
    "import json, sys; from snaketune.core.forkserver import call; "
    f"print(json.dumps(call('{TARGETS}:whoami', tag=sys.argv[1])))"
)
# what a job of the tests below runs first: its server imports SLOW
WITH_SLOW_SERVER = f"import snaketune.core.forkserver as fs; fs.PRELOAD = {SLOW!r}; "


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
    identity = subprocess.run(
        [sys.executable, "-c", WITH_SLOW_SERVER + "print(fs._identity())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = socket_left_by_a_dead_server(folder / f"{identity}.sock")
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", WITH_SLOW_SERVER + JOB, tag],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
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
    warmed = subprocess.run(
        [sys.executable, "-c", WITH_SLOW_SERVER + "fs.warm()"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    server = int(warmed.stderr.split("started server ")[1].split()[0])
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", WITH_SLOW_SERVER + JOB, tag],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
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


# -- the server is never the reason a job fails ----------------------------------------------
def runs_here_saying_so_once(capfd) -> str:
    """Call a target; check that it ran in this (the job's) process, started no server, and
    said why once. Returns that line."""
    result = forkserver.call(f"{TARGETS}:whoami", tag="here")
    err = capfd.readouterr().err
    assert result["pid"] == os.getpid(), "ran in a forked process"
    said = [line for line in err.splitlines() if line.startswith("forkserver: unavailable")]
    assert len(said) == 1 and "running in this process" in said[0], err
    assert "started server" not in err
    return said[0]


def test_a_runtime_folder_missing_on_this_node_leaves_the_call_to_the_job(runtime_dir, monkeypatch, capfd, tmp_path):
    # Slurm passes the login shell's XDG_RUNTIME_DIR (/run/user/<uid>) to nodes without it.
    absent = tmp_path / "run" / "user" / "4242"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(absent))
    capfd.readouterr()
    assert str(absent) in runs_here_saying_so_once(capfd)
    assert not absent.exists()


@pytest.fixture
def base(runtime_dir, monkeypatch, tmp_path):
    """An XDG_RUNTIME_DIR of this test's own, and the fork server's folder's path in it."""
    folder = tmp_path / "rt"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    return folder / f"snaketune-forkserver-{os.getuid()}"


def test_a_link_in_place_of_the_servers_folder_is_refused(base, tmp_path, capfd):
    # another user's folder, linked where this user's would be made
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    base.symlink_to(theirs)
    capfd.readouterr()
    line = runs_here_saying_so_once(capfd)
    assert str(base) in line and "symbolic link" in line
    assert list(theirs.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_servers_folder_owned_by_another_user_is_refused(base, capfd):
    base.mkdir(mode=0o700)
    os.chown(base, 4242, 4242)  # as if user 4242 had made it first in /tmp
    capfd.readouterr()
    line = runs_here_saying_so_once(capfd)
    assert str(base) in line and "uid 4242" in line
    assert list(base.iterdir()) == []


def test_a_servers_folder_others_can_write_to_is_refused(base, capfd):
    base.mkdir()
    base.chmod(0o777)
    capfd.readouterr()
    line = runs_here_saying_so_once(capfd)
    assert str(base) in line and "mode 0777" in line
    assert list(base.iterdir()) == []


def test_a_socket_path_too_long_for_a_unix_socket_leaves_the_call_to_the_job(runtime_dir, monkeypatch, tmp_path, capfd):
    deep = tmp_path / ("x" * 100)
    deep.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    capfd.readouterr()
    line = runs_here_saying_so_once(capfd)
    assert "bytes" in line and str(deep) in line


def test_a_server_whose_imports_hang_holds_no_job_past_the_deadline(tmp_path_factory):
    # The space job started the server and ended; its imports never finish, so it holds the
    # start lock for good. A job coming then waits until the deadline, then trains itself.
    import json

    runtime = tmp_path_factory.mktemp("hang")
    runtime.chmod(0o700)
    hanging = tmp_path_factory.mktemp("hanging_keras")
    (hanging / "keras").mkdir()
    (hanging / "keras" / "__init__.py").write_text("import threading\nthreading.Event().wait()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SNAKETUNE_FORKSERVER", "SLURM_JOB_ID")}
    env |= {"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": os.pathsep.join([os.getcwd(), str(hanging)])}
    warmed = subprocess.run(
        [sys.executable, "-c", "from snaketune.core.forkserver import warm; warm()"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    server = int(warmed.stderr.split("started server ")[1].split()[0])
    try:
        job = subprocess.run(
            [sys.executable, "-c", JOB_WITH_PID, "late"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env | {"SNAKETUNE_FORKSERVER_START_TIMEOUT": "1"},
        )
        assert _alive(server), "the server ended: the job's deadline was not what let it go"
    finally:
        os.kill(server, signal.SIGKILL)
    assert job.returncode == 0, job.stderr
    result = json.loads(job.stdout.strip().splitlines()[-1])
    assert result["tag"] == "late" and result["pid"] == result["job"]
    said = [line for line in job.stderr.splitlines() if line.startswith("forkserver: unavailable")]
    assert len(said) == 1 and "starting for over 1 s" in said[0], job.stderr


JOB_WITH_PID = (
    "import json, os, sys; from snaketune.core.forkserver import call; "
    f"print(json.dumps(dict(call('{TARGETS}:whoami', tag=sys.argv[1]), job=os.getpid())))"
)


# -- the forked process runs as the job would ------------------------------------------------
SETTINGS_JOB = f"""
import json, os, resource
from snaketune.core.forkserver import call
from tests.forkserver_targets import settings

before = call('{TARGETS}:settings')  # the server runs, with this job's settings as they were
os.umask(0o027)
os.nice(3)
os.sched_setaffinity(0, {{0}})
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 200), min(hard, 300)))
print(json.dumps({{"before": before, "job": settings(), "after": call('{TARGETS}:settings')}}))
"""


def test_a_forked_process_runs_under_the_jobs_umask_limits_nice_value_and_affinity(runtime_dir):
    import json

    from conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_JOB],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    before, job, after = seen["before"], seen["job"], seen["after"]
    assert after["ppid"] == before["ppid"] and after["pid"] != job["pid"], "both calls forked from one server"
    for name in ("umask", "nice", "nofile") + (("affinity",) if len(os.sched_getaffinity(0)) > 1 else ()):
        assert before[name] != job[name], f"{name}: the test did not change it"
        assert after[name] == job[name], name


# -- what the forked process returns or raises, as it is -------------------------------------
def test_a_result_that_cannot_be_pickled_fails_the_call_saying_so(runtime_dir):
    with pytest.raises(forkserver.UnpicklableResult, match=r"_thread\.lock.*could not be pickled") as raised:
        forkserver.call(f"{TARGETS}:unpicklable")
    assert "memory" not in str(raised.value)


def test_an_error_raised_in_the_forked_process_arrives_as_its_own_class(runtime_dir):
    import importlib

    targets = importlib.import_module(TARGETS)
    with pytest.raises(targets.ConfigurationProblem, match="the model does not fit") as raised:
        forkserver.call(f"{TARGETS}:raise_own", kind="own")
    assert type(raised.value) is targets.ConfigurationProblem
    assert any("forked to run" in note for note in raised.value.__notes__)
    # a class that pickles but does not unpickle arrives as (a subclass of) itself
    with pytest.raises(targets.NeedsTwo) as raised:
        forkserver.call(f"{TARGETS}:raise_own", kind="needs_two")
    assert type(raised.value).__name__ == "NeedsTwo" and str(raised.value) == "the loader failed: no such column"
    # what it was raised from comes with it (train.fails_the_job follows the chain)
    with pytest.raises(RuntimeError, match="could not save the model") as raised:
        forkserver.call(f"{TARGETS}:raise_own", kind="caused")
    assert type(raised.value.__cause__) is OSError and raised.value.__cause__.errno == 28
    # a class the job cannot import: a stand-in with its name and module
    with pytest.raises(forkserver.ChildError, match="only here") as raised:
        forkserver.call(f"{TARGETS}:raise_own", kind="local")
    assert (type(raised.value).__module__, type(raised.value).__name__) == (TARGETS, "MadeInTheChild")
