"""GPU slots on one machine, without a GPU: a fake device count (SNAKETUNE_GPU_DEVICES) and
real processes holding slots side by side, as concurrent training jobs do."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from snaketune.devices import DeviceSlot, slots, visible_devices

# A stand-in training job: takes a slot, says which devices it got, holds the slot until
# its stdin closes (or it is killed).
HOLDER = """
import sys
from snaketune.devices import DeviceSlot
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
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(gpu), str(share)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
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
    from snaketune.devices import run_training

    seen = run_training("os:getenv", {"gpu": 1, "trials_per_gpu": 2}, key="CUDA_VISIBLE_DEVICES")
    assert seen == "0"
    assert "device: GPU 0 (CUDA_VISIBLE_DEVICES), place 1 of 2 on it" in capsys.readouterr().out
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_under_slurm_the_scheduler_places_the_job_and_no_slot_is_taken(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNAKETUNE_GPU_DEVICES", "2")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # what Slurm gave the job
    from snaketune.devices import run_training

    assert run_training("os:getenv", {"gpu": 1}, key="CUDA_VISIBLE_DEVICES") == "3"
    assert "device:" not in capsys.readouterr().out
