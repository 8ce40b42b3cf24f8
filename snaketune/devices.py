"""GPUs of one machine, shared out among the training jobs that run on it side by side.

Snakemake counts a `gpu` resource but assigns no device: two local jobs asking for one GPU
each would both see every GPU and TensorFlow would put both on the first. A training job
therefore takes a *slot* before TensorFlow starts: a slot is one device (or `gpu` devices for
a job that asks for several), shared by at most `trials_per_gpu` jobs, and the job sees only
its own devices through CUDA_VISIBLE_DEVICES. A slot is an exclusive `flock` on a file, so the
kernel frees it when the job's process ends in any way, a kill included; a job that finds
every slot taken waits for one.

Under a batch scheduler (Slurm) the scheduler gives each job its devices and sets
CUDA_VISIBLE_DEVICES itself; no slot is taken there.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from snaketune import forkserver

# A fake device count, for tests and for machines where nvidia-smi is not on the PATH.
DEVICES_ENV = "SNAKETUNE_GPU_DEVICES"
POLL_SECONDS = 0.5


def visible_devices() -> list[str]:
    """The GPU ids this machine offers the workflow: SNAKETUNE_GPU_DEVICES (a count), else the
    CUDA_VISIBLE_DEVICES the workflow was started with, else what `nvidia-smi -L` lists."""
    count = os.environ.get(DEVICES_ENV, "").strip()
    if count:
        if not count.isdigit():
            raise ValueError(f"{DEVICES_ENV}={count!r}: expected a number of GPUs")
        return [str(i) for i in range(int(count))]
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return [str(i) for i, line in enumerate(listed.stdout.splitlines()) if line.startswith("GPU ")]


@dataclass(frozen=True)
class Slot:
    devices: tuple[str, ...]
    share: int  # which of the `trials_per_gpu` places on these devices

    @property
    def lock_names(self) -> list[str]:
        return [f"gpu-{device}-{self.share}.lock" for device in self.devices]


def slots(devices: list[str], per_job: int, trials_per_gpu: int) -> list[Slot]:
    """Every slot, in the order jobs take them: the first job on each device before a second."""
    if per_job < 1:
        raise ValueError(f"gpu: {per_job}; a job that takes a device slot asks for at least 1")
    if per_job > 1 and trials_per_gpu > 1:
        raise ValueError(f"trials_per_gpu: {trials_per_gpu} with gpu: {per_job}; "
                         f"jobs share a device only when each asks for one")
    if len(devices) < per_job:
        raise ValueError(f"a training job asks for {per_job} GPU(s) and this machine offers "
                         f"{len(devices)} ({DEVICES_ENV} or CUDA_VISIBLE_DEVICES or nvidia-smi -L)")
    groups = [tuple(devices[i:i + per_job]) for i in range(0, len(devices) - per_job + 1, per_job)]
    return [Slot(group, share) for share in range(trials_per_gpu) for group in groups]


def check_local(per_job: int, trials_per_gpu: int) -> None:
    """Before a local run's first job: raise ValueError where its training jobs could not get
    a device."""
    if per_job:
        slots(visible_devices(), per_job, trials_per_gpu)


def lock_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"snaketune-gpu-slots-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


class DeviceSlot:
    """`with DeviceSlot(gpu, trials_per_gpu) as slot:` the job runs on `slot.devices`, which
    CUDA_VISIBLE_DEVICES names inside the block."""

    def __init__(self, per_job: int, trials_per_gpu: int = 1, devices: list[str] | None = None,
                 folder: Path | None = None, on_wait=None):
        self.all = slots(visible_devices() if devices is None else devices, per_job, trials_per_gpu)
        self.folder = folder or lock_dir()
        self.on_wait = on_wait
        self.slot: Slot | None = None
        self._fds: list[int] = []
        self._before: str | None = None

    def _try(self, slot: Slot) -> bool:
        for name in slot.lock_names:
            fd = os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._release()
                return False
            self._fds.append(fd)
        self.slot = slot
        return True

    def _release(self) -> None:
        for fd in self._fds:
            os.close(fd)  # closing the descriptor releases its lock
        self._fds = []

    def __enter__(self) -> Slot:
        waited = False
        while not any(self._try(slot) for slot in self.all):
            if not waited and self.on_wait:
                self.on_wait(len(self.all))
            waited = True
            time.sleep(POLL_SECONDS)
        self._before = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(self.slot.devices)
        return self.slot

    def __exit__(self, *exc) -> None:
        if self._before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = self._before
        self._release()


def run_training(target: str, resources, **kwargs):
    """`target`(**kwargs), a training job's work: through the fork server without GPUs; with
    GPUs in the job's own process, on a slot of its own on a local machine (under a scheduler,
    on the devices the scheduler gave it), because TensorFlow picks its devices when it starts
    and the server's TensorFlow started before this job's devices were chosen."""
    gpu = int(resources.get("gpu", 0) or 0)
    if not gpu:
        return forkserver.call(target, **kwargs)
    if forkserver.under_scheduler():
        return forkserver.run_here(target, **kwargs)  # the scheduler placed the job on its devices
    share = int(resources.get("trials_per_gpu", 1) or 1)

    def waiting(count):
        print(f"device: all {count} GPU slots are taken; waiting for one", flush=True)

    with DeviceSlot(gpu, share, on_wait=waiting) as slot:
        print(f"device: GPU {','.join(slot.devices)} (CUDA_VISIBLE_DEVICES), place {slot.share + 1} of "
              f"{share} on it", flush=True)
        return forkserver.run_here(target, **kwargs)
