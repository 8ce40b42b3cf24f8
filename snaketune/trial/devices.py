"""GPUs of one machine, shared out among the training jobs that run on it side by side.

Snakemake counts a `gpu` resource but assigns no device: two local jobs asking for one GPU
each would both see every GPU and TensorFlow would put both on the first. A training job
therefore takes a *slot* before TensorFlow starts: a slot is one device (or `gpu` devices for
a job that asks for several), shared by at most `trials_per_gpu` jobs, and the job sees only
its own devices through CUDA_VISIBLE_DEVICES. A slot is an exclusive `flock` on a file, so the
kernel frees it when the job's process ends in any way, a kill included; a job that finds
every slot taken waits for one.

Jobs that share a device (`trials_per_gpu` > 1) get TF_FORCE_GPU_ALLOW_GROWTH=true: by default
TensorFlow maps nearly all of a GPU's memory when it starts, so the second job on the device
would run out of memory at once. An out-of-memory error on a shared device may be a
neighbour's doing, so it fails the job (Snakemake retries it) rather than being recorded as the
configuration's failure (`shared_device_oom`).

Jobs that a cluster executor submitted (Slurm) run on the devices the scheduler gave them; no
slot is taken there. A local run inside an interactive allocation (`salloc`, `srun --pty`)
takes slots as on any machine: see `placed_by_scheduler`.

The slots' lock files live in a folder only this user can reach (see `lock_dir`): a folder that
another user could create or write would let them hold every slot.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from snaketune.core import forkserver

# A fake device count, for tests and for machines where nvidia-smi is not on the PATH.
DEVICES_ENV = "SNAKETUNE_GPU_DEVICES"
# Set inside a slot whose devices other jobs share: how many jobs share them. What
# `shared_device_oom` reads, in the job's own process (a GPU job does not train through the
# fork server).
SHARED_ENV = "SNAKETUNE_GPU_SHARED_BY"
# TensorFlow reads it when it creates its GPU devices: allocate memory as needed, not all of it.
GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"
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
        raise ValueError(
            f"trials_per_gpu: {trials_per_gpu} with gpu: {per_job}; jobs share a device only when each asks for one"
        )
    if len(devices) < per_job:
        raise ValueError(
            f"a training job asks for {per_job} GPU(s) and this machine offers "
            f"{len(devices)} ({DEVICES_ENV} or CUDA_VISIBLE_DEVICES or nvidia-smi -L)"
        )
    groups = [tuple(devices[i : i + per_job]) for i in range(0, len(devices) - per_job + 1, per_job)]
    return [Slot(group, share) for share in range(trials_per_gpu) for group in groups]


def check_local(per_job: int, trials_per_gpu: int) -> None:
    """Before a local run's first job: raise ValueError where its training jobs could not get
    a device."""
    if per_job:
        slots(visible_devices(), per_job, trials_per_gpu)
        try:
            lock_dir()  # says here, once, where the slots are when the usual folder is refused
        except OSError as error:
            raise ValueError(str(error)) from None


class Refused(OSError):
    """A folder for the slots' locks that someone other than this user could control."""


def _open_private(folder: Path) -> int:
    """A descriptor of `folder`, created if missing, after checking (on the descriptor, so that
    nothing can be swapped in between) that it is a real folder, not a link, owned by this user,
    mode 0700. Raises Refused naming the folder otherwise."""
    try:
        os.mkdir(folder, 0o700)
        created = True
    except FileExistsError:
        created = False
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(error.errno, f"GPU slot folder {folder} is a link or not a folder") from None
        raise
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid():
            raise Refused(
                errno.EPERM,
                f"GPU slot folder {folder} belongs to uid {info.st_uid}, not to this user "
                f"(uid {os.getuid()}): its owner could hold every slot",
            )
        if created:
            os.fchmod(fd, 0o700)  # whatever the umask took away
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode != 0o700:
            raise Refused(
                errno.EPERM,
                f"GPU slot folder {folder} has mode {mode:04o}, not 0700: "
                f"other users could hold its slots (chmod 700 it if it is yours)",
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fallback_dir() -> Path:
    # A per-user folder under the home folder, which other users cannot create first. Named by
    # host, since a home folder is often shared by every machine of a cluster and slots are
    # those of one machine.
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "snaketune" / f"gpu-slots-{socket.gethostname()}"


def lock_dir() -> Path:
    """The folder of this machine's slot locks: in XDG_RUNTIME_DIR (else the temporary folder),
    or, where that one is refused or cannot be made, a per-user folder in the home folder
    (a warning says which and why). Every job of the machine makes the same choice, so they
    share the same slots. Raises OSError where neither folder is usable: then no job may
    train, since without a slot jobs would crowd onto the same GPU."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"snaketune-gpu-slots-{os.getuid()}"
    try:
        os.close(_open_private(folder))
        return folder
    except OSError as error:
        fallback = _fallback_dir()
        print(
            f"device: {error.strerror if isinstance(error, Refused) else error}; "
            f"the GPU slots are in {fallback} instead",
            file=sys.stderr,
            flush=True,
        )
    try:
        fallback.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(_open_private(fallback))
    except OSError as error:
        detail = error.strerror if isinstance(error, Refused) else str(error)
        raise OSError(
            error.errno, f"no private folder for the GPU slots: {folder} is unusable and so is {fallback} ({detail})"
        ) from None
    return fallback


class DeviceSlot:
    """`with DeviceSlot(gpu, trials_per_gpu) as slot:` the job runs on `slot.devices`, which
    CUDA_VISIBLE_DEVICES names inside the block."""

    def __init__(
        self,
        per_job: int,
        trials_per_gpu: int = 1,
        *,
        devices: list[str] | None = None,
        folder: Path | None = None,
        on_wait=None,
    ):
        self.all = slots(visible_devices() if devices is None else devices, per_job, trials_per_gpu)
        self.shared_by = trials_per_gpu
        self.folder = folder or lock_dir()
        self.on_wait = on_wait
        self.slot: Slot | None = None
        self._fds: list[int] = []
        self._dir_fd: int | None = None
        self._before: dict[str, str | None] = {}

    def _try(self, slot: Slot) -> bool:
        for name in slot.lock_names:
            # Relative to the checked folder's descriptor, and no link followed: the lock is
            # the file in the folder that was checked.
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600, dir_fd=self._dir_fd)
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
        self._dir_fd = _open_private(self.folder)
        try:
            waited = False
            while not any(self._try(slot) for slot in self.all):
                if not waited and self.on_wait:
                    self.on_wait(len(self.all))
                waited = True
                time.sleep(POLL_SECONDS)
        except BaseException:
            self._close()
            raise
        settings = {"CUDA_VISIBLE_DEVICES": ",".join(self.slot.devices)}
        if self.shared_by > 1:
            settings.update({GROWTH_ENV: "true", SHARED_ENV: str(self.shared_by)})
        self._before = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        return self.slot

    def __exit__(self, *exc) -> None:
        for name, value in self._before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._close()

    def _close(self) -> None:
        self._release()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def shared_device_oom(error: BaseException) -> bool:
    """Whether `error` is TensorFlow running out of GPU memory in a job that shares its device
    with other jobs (inside a slot of `trials_per_gpu` > 1). There the memory may have gone to
    a neighbour, so the error says nothing certain about the configuration: it fails the job
    (which Snakemake retries) instead of being recorded as a failed trial. On a device of its
    own, running out of memory is the configuration's doing."""
    if int(os.environ.get(SHARED_ENV, "1") or 1) <= 1:
        return False
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        # By name: TensorFlow is not imported here, and need not be installed.
        if type(error).__name__ == "ResourceExhaustedError" and type(error).__module__.startswith("tensorflow"):
            return True
        error = error.__cause__ or error.__context__
    return False


def placed_by_scheduler() -> bool:
    """Whether a cluster executor ran this job, so that the scheduler chose its devices.

    Snakemake's Slurm executor submits each job as a batch job running `snakemake --executor
    slurm-jobstep ... --mode remote`; the jobstep plugin runs the job under `srun`, as
    `python -m snakemake ... --mode remote`, and that process runs the job's script. Every
    cluster executor runs its jobs through a Snakemake in remote mode; a local run never does.
    A scheduler variable (SLURM_JOB_ID) does not tell the two apart: it is also set in the shell
    of an interactive allocation (`salloc`, `srun --pty bash`), where a local run shares out
    the allocation's GPUs like any machine's. Where /proc cannot be read (not Linux), any
    scheduler variable counts, as before."""
    if not os.path.isdir("/proc/self"):
        return forkserver.under_scheduler()
    pid = os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = [arg.decode(errors="replace") for arg in f.read().split(b"\0")]
            with open(f"/proc/{pid}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])  # the name may hold spaces
        except (OSError, ValueError, IndexError):
            return False  # an ancestor out of sight (another user's): no Snakemake of ours above
        if _is_remote_snakemake(argv):
            return True
        pid = parent
    return False


def _is_remote_snakemake(argv: list[str]) -> bool:
    runs_snakemake = any(os.path.basename(arg) == "snakemake" for arg in argv[:2]) or any(
        a == "-m" and b == "snakemake" for a, b in zip(argv, argv[1:])
    )
    remote = any(a == "--mode" and b == "remote" for a, b in zip(argv, argv[1:])) or "--mode=remote" in argv
    return runs_snakemake and remote
