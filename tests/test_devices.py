"""GPU slots on one machine, without a GPU: a fake device count (SNAKETUNE_GPU_DEVICES) and
real processes holding slots side by side, as concurrent training jobs do."""

import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest
from conftest import ROOT

from snaketune.trial.devices import DeviceSlot, slots, visible_devices

# A stand-in training job: takes a slot, says which devices it got, holds the slot until
# its stdin closes (or it is killed).
HOLDER = """
import sys
from snaketune.trial.devices import DeviceSlot
with DeviceSlot(int(sys.argv[1]), int(sys.argv[2]), on_wait=lambda n: print("waiting", flush=True)):
    import os
    print("got", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine with 2 fake GPUs and its own lock folder."""
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "2")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    holders = []

    def start(gpu=1, share=1):
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(gpu), str(share)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(proc)
        return proc

    yield start
    for proc in holders:
        proc.kill()
        proc.wait()


def first_line(proc):
    return proc.stdout.readline().split()


def test_concurrent_jobs_get_a_device_each_and_a_third_waits_for_a_free_one(machine):
    a, b = machine(), machine()
    freed, other = first_line(a)[1], first_line(b)[1]
    assert sorted([freed, other]) == ["0", "1"]
    c = machine()
    assert first_line(c) == ["waiting"]
    a.stdin.close()  # a's job ends: c gets a's device
    assert a.wait(timeout=60) == 0
    assert first_line(c) == ["got", freed]


def test_a_killed_job_frees_its_device(machine):
    a, b = machine(), machine()
    devices = {first_line(a)[1]: a, first_line(b)[1]: b}
    c = machine()
    assert first_line(c) == ["waiting"]
    killed = devices["1"]
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert first_line(c) == ["got", "1"]


def test_trials_per_gpu_puts_that_many_jobs_on_each_device_first_one_per_device(machine):
    jobs = [machine(share=2) for _ in range(4)]
    got = [first_line(job)[1] for job in jobs]
    assert sorted(got) == ["0", "0", "1", "1"]
    assert machine(share=2).stdout.readline().split() == ["waiting"]


def test_a_job_asking_for_two_gpus_gets_a_pair_that_no_one_gpu_job_shares(machine, monkeypatch):
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "4")
    single = machine(gpu=1)
    assert first_line(single) == ["got", "0"]
    pair = machine(gpu=2)
    assert first_line(pair) == ["got", "2,3"]  # 0 and 1 are not both free
    assert first_line(machine(gpu=1)) == ["got", "1"]
    assert first_line(machine(gpu=2)) == ["waiting"]


def test_the_slot_sets_cuda_visible_devices_only_inside_the_block(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with DeviceSlot(1, devices=["0", "1"]) as slot:
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0" and slot.devices == ("0",)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_devices_come_from_the_count_or_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "3")
    assert visible_devices() == ["0", "1", "2"]
    monkeypatch.delenv("SNAKETUNE_GPU_DEVICES")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_devices() == ["2", "5"]


def test_impossible_requests_are_refused_naming_the_setting():
    with pytest.raises(ValueError, match="asks for 2 GPU"):
        slots(["0"], 2, 1)
    with pytest.raises(ValueError, match="trials_per_gpu: 2 with gpu: 2"):
        slots(["0", "1"], 2, 2)


def test_a_local_training_job_with_a_gpu_runs_on_its_slot_in_its_own_process(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "2")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    from snaketune.trial.launch import run_training

    seen = run_training("os:getenv", {"gpu": 1, "trials_per_gpu": 2}, key="CUDA_VISIBLE_DEVICES")
    assert seen == "0"
    assert "device: GPU 0 (CUDA_VISIBLE_DEVICES), place 1 of 2 on it" in capsys.readouterr().out
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


# A training job run by Snakemake, as scripts/train.py runs one: the devices it trained on.
GPU_JOB_SNAKEFILE = """
rule train:
    output: "devices.txt"
    script: "gpu_job.py"
"""
GPU_JOB_SCRIPT = """
from snaketune.trial.launch import run_training
seen = run_training("os:getenv", {"gpu": 1}, key="CUDA_VISIBLE_DEVICES")
open(snakemake.output[0], "w").write(seen)
"""


def devices_of_a_job_run_by(tmp_path, *mode):
    (tmp_path / "Snakefile").write_text(GPU_JOB_SNAKEFILE)
    (tmp_path / "gpu_job.py").write_text(GPU_JOB_SCRIPT)
    (tmp_path / "devices.txt").unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "snakemake", "devices.txt", "--cores", "1", *mode, "--quiet", "all"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return (tmp_path / "devices.txt").read_text()


@pytest.fixture
def inside_an_allocation(tmp_path, monkeypatch):
    """The environment of a Slurm allocation that gave this node's GPU 3."""
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "2")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")


@pytest.mark.workflow
def test_a_job_that_the_slurm_executor_submitted_runs_on_the_scheduler_s_devices(tmp_path, inside_an_allocation):
    # The Slurm executor's jobstep runs each job under srun as `python -m snakemake ...
    # --mode remote`, as every cluster executor runs its jobs: no slot is taken.
    assert devices_of_a_job_run_by(tmp_path, "--mode", "remote") == "3"


@pytest.mark.workflow
def test_a_local_run_inside_an_interactive_allocation_takes_slots(tmp_path, inside_an_allocation):
    # `snakemake --cores 8` in a salloc shell: SLURM_JOB_ID is set, but this Snakemake runs
    # every job itself, several at once, and they must not all land on the same GPU.
    assert devices_of_a_job_run_by(tmp_path) == "0"
    assert (tmp_path / f"snaketune-gpu-slots-{os.getuid()}" / "gpu-0-0.lock").exists()


# -- who could hold the slots -------------------------------------------------------------
def refused_by_mode(folder):
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # what another user's folder, open to all, looks like


def refused_as_a_link(folder):
    elsewhere = folder.parent / "theirs"
    elsewhere.mkdir(mode=0o700)
    folder.symlink_to(elsewhere)


def refused_by_owner(folder):
    if os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody's


def missing_runtime_dir(folder):
    pass  # XDG_RUNTIME_DIR names a folder that does not exist where the job runs


@pytest.fixture
def private(tmp_path, monkeypatch):
    """The usual slot folder, and the per-user one that a refused folder sends the slots to."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "run").mkdir()
    usual = tmp_path / "run" / f"snaketune-gpu-slots-{os.getuid()}"
    fallback = tmp_path / "cache" / "snaketune" / f"gpu-slots-{socket.gethostname()}"
    return usual, fallback


@pytest.mark.parametrize("prepare", [refused_by_mode, refused_as_a_link, refused_by_owner, missing_runtime_dir])
def test_a_slot_folder_that_is_not_the_user_s_own_is_refused_saying_where(private, monkeypatch, capsys, prepare):
    usual, fallback = private
    if prepare is missing_runtime_dir:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(usual.parent / "absent"))
        usual = usual.parent / "absent" / usual.name
    prepare(usual)
    with DeviceSlot(1, devices=["0"]) as slot:
        assert slot.devices == ("0",)
        assert (fallback / "gpu-0-0.lock").exists()
    assert str(usual) in capsys.readouterr().err
    assert not (usual / "gpu-0-0.lock").exists()
    assert stat.S_IMODE(fallback.lstat().st_mode) == 0o700


def test_another_user_who_made_the_slot_folder_first_cannot_hold_the_slots(machine, private):
    usual, _ = private
    refused_by_mode(usual)
    held = []  # another user's processes, holding every slot of the folder they made
    for name in ("gpu-0-0.lock", "gpu-1-0.lock"):
        fd = os.open(usual / name, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(fd)
    try:
        a, b = machine(), machine()
        assert sorted([first_line(a)[1], first_line(b)[1]]) == ["0", "1"]
        assert first_line(machine()) == ["waiting"]  # the slots still shut out a third job
    finally:
        for fd in held:
            os.close(fd)


def test_without_a_private_folder_for_the_slots_no_job_trains(private, monkeypatch, capsys):
    usual, fallback = private
    refused_by_mode(usual)
    fallback.parent.mkdir(parents=True)
    refused_by_mode(fallback)
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "1")
    from snaketune.trial.devices import check_local
    from snaketune.trial.launch import run_training

    with pytest.raises(ValueError, match=f"no private folder for the GPU slots: {usual} .* {fallback}"):
        check_local(1, 1)  # before the first job of a local run
    with pytest.raises(OSError, match="mode 0777"):
        run_training("os:abort", {"gpu": 1})  # never reached: the job fails before training


# -- shared devices ---------------------------------------------------------------------------
def test_jobs_sharing_a_device_get_memory_growth_and_jobs_alone_do_not(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "1")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    from snaketune.trial.launch import run_training

    assert run_training("os:getenv", {"gpu": 1, "trials_per_gpu": 2}, key="TF_FORCE_GPU_ALLOW_GROWTH") == "true"
    assert run_training("os:getenv", {"gpu": 1, "trials_per_gpu": 1}, key="TF_FORCE_GPU_ALLOW_GROWTH") is None
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in os.environ


def out_of_memory():
    """What Keras' fit raises when the GPU's memory runs out, wrapped as a caller may wrap it."""
    import tensorflow as tf

    try:
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[4096,4096]")
    except tf.errors.ResourceExhaustedError as error:
        raise RuntimeError("fit failed") from error


def test_out_of_memory_on_a_shared_device_fails_the_job_and_alone_fails_the_trial(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "1")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    from snaketune.trial.devices import shared_device_oom
    from snaketune.trial.launch import run_training
    from snaketune.trial.train import fails_the_job

    for share, fails_job in ((2, True), (1, False)):
        with pytest.raises(RuntimeError) as raised:
            run_training("test_devices:out_of_memory", {"gpu": 1, "trials_per_gpu": share})
        # judged as train.run_trial judges it: inside the slot, in the job's own process
        with DeviceSlot(1, share, devices=["0"]):
            assert shared_device_oom(raised.value) is fails_job
            assert fails_the_job(raised.value) is fails_job
        assert ("the job fails, for Snakemake to retry it" in capsys.readouterr().out) is fails_job
    assert not shared_device_oom(raised.value)  # outside any slot
    with DeviceSlot(1, 2, devices=["0"]):
        assert not shared_device_oom(ValueError("a model that cannot be built"))
