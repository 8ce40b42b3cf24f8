"""A fork server for the jobs that import TensorFlow: imported once per machine, forked per job.

A training job's fixed price is mostly importing TensorFlow, Keras and Keras Tuner (5-7 s on
a 2-core machine) and tearing them down again, often more than its fit. Like Bazel's
persistent workers and multiprocessing's "forkserver" start method, the first such job on a
machine starts a server that imports them once and then forks a child per job: the child
starts with everything imported and nothing of TensorFlow's runtime yet running (no op runs
in the server), so it trains exactly as a fresh process would.

The job's own process (the Snakemake script) stays the job: it hands the child its stdout
and stderr (the job's log), its working directory and environment, waits for the result and
returns it, or fails with the child's error. If the job process dies (Snakemake killed, the
job cancelled), the child kills itself at once; if the child dies, the job fails.

Inside a batch scheduler's job the server belongs to that allocation: the scheduler's job id
is part of its identity, so it is started from inside the allocation and its children stay in
the allocation's accounting and limits (Slurm's cgroup); the trials bundled into one Slurm
job share one import, and no server is shared across allocations. SNAKETUNE_FORKSERVER=0
turns it off; then the function runs in the job's own process as before.

The server is only ever a shortcut, never the reason a job fails: whatever stops a job from
reaching one (a runtime folder missing on this node or not private to the user, a full disk,
a socket path too long, a server that does not start in time, a forked process that cannot
take the job's settings) runs the function in the job's own process instead, said once in
the job's log. Only what the function itself raises, once running in the forked process,
fails the job, as it would have in the job's own process; it is never run twice.

The forked process takes the job's place: its working directory, environment, output, and
its umask, resource limits, nice value and CPU affinity, which the job sends with its
request (the server's were those of whichever job started it). It stays in the server's
cgroup: a process cannot move itself into another job's cgroup without write access there,
which Slurm's and systemd's cgroups do not give users.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import fcntl
import gc
import hashlib
import importlib
import os
import pickle
import resource
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from importlib import metadata
from pathlib import Path

from snaketune.core import tf_logging

# What the server imports before it forks: everything a training, final or round job needs
# that takes seconds to import, none of which runs a TensorFlow op on import.
PRELOAD = (
    "keras",
    "keras_tuner",
    "pandas",
    "optuna",
    "snaketune.trial.train",
    "snaketune.trial.final",
    "snaketune.study.rounds",
    "snaketune.search.optuna_space",
    "snaketune.models",
    "snaketune.search.kt_space",
)
# Environment variables read while those modules are imported: a server imported under
# other values would train differently, so they are part of the server's identity.
IMPORT_TIME_ENV = ("TF_", "CUDA_", "KERAS_", "XLA_", "OMP_", "MKL_", "OPENBLAS_", "LD_", "PYTHONPATH", "PYTHONHASHSEED")
# The installed packages behind those modules: upgrading one in place must not leave jobs on
# a server that imported the old one.
PRELOADED_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "keras",
    "keras-tuner",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "h5py",
    "ml-dtypes",
    "optuna",
)
SCHEDULER_ENV = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "FLUX_JOB_ID")
IDLE_SECONDS = float(os.environ.get("SNAKETUNE_FORKSERVER_IDLE", 120))
# How long a job waits for a server to start (importing TensorFlow on a loaded machine),
# whether it started it or another job is starting it, before it trains in its own process;
# a server whose imports take longer ends itself (with its stack in its log).
START_TIMEOUT_SECONDS = 300
POLL_SECONDS = 0.2
# sun_path holds 108 bytes, its terminating NUL included: a longer path cannot be bound.
MAX_SOCKET_PATH_BYTES = 107
# The limits a job may have lowered (or a scheduler set) that its training must keep.
RLIMITS = tuple(sorted(name for name in dir(resource) if name.startswith("RLIMIT_")))


def start_timeout() -> float:
    """START_TIMEOUT_SECONDS, or SNAKETUNE_FORKSERVER_START_TIMEOUT where set."""
    return float(os.environ.get("SNAKETUNE_FORKSERVER_START_TIMEOUT", START_TIMEOUT_SECONDS))


# What a request answers when the server closed before forking a child: a target may return None.
NOT_RUN = object()


class Unavailable(Exception):
    """Whatever kept the function from starting in a forked process (no server could be
    reached or started, or its child could not take the job's place); the job runs it itself."""


class JobProcessDied(RuntimeError):
    """The forked process ended without a result (killed, or out of memory)."""


class UnpicklableResult(RuntimeError):
    """The function ran, but what it returned could not be pickled to reach the job."""


class ChildError(RuntimeError):
    """Base of the stand-in for an error raised in the forked process whose class the job
    cannot rebuild (not importable here): it carries the class's name and module."""


def under_scheduler() -> bool:
    """Inside a batch scheduler's job: its allocation, its devices."""
    return any(name in os.environ for name in SCHEDULER_ENV)


def enabled() -> bool:
    return os.environ.get("SNAKETUNE_FORKSERVER", "1").strip().lower() not in ("0", "false", "no", "off")


def call(target: str, **kwargs):
    """`module:function`(**kwargs) in a process forked from the server, else in this one."""
    return _call(target, kwargs, start=True)


def call_if_running(target: str, **kwargs):
    """`module:function`(**kwargs) in a process forked from a server that is already running,
    else in this one: for a job that needs no TensorFlow (the tables, summary and plots after
    the trials), whose own imports cost less than starting a server, but which a server left
    running by the trials spares them."""
    return _call(target, kwargs, start=False)


def _call(target: str, kwargs: dict, start: bool):
    if not enabled():
        return run_here(target, **kwargs)
    why = "the server closed before forking a process for this job, three times"
    for _ in range(3):  # a server may close between our connect and its accept
        try:
            outcome = _through_server(target, kwargs, start)
        except Unavailable as error:
            why = str(error)
            break
        if outcome is not NOT_RUN:
            return outcome
    print(f"forkserver: unavailable ({why}); running in this process", file=sys.stderr, flush=True)
    return run_here(target, **kwargs)


def _through_server(target: str, kwargs: dict, start: bool):
    """The call's outcome from a forked process, NOT_RUN if the server closed before forking
    one; Unavailable for anything that kept the function from starting there."""
    try:
        conn = _connect(start)
    except Unavailable:
        raise
    except Exception as error:  # noqa: BLE001 - the server is a shortcut: the job trains itself
        raise Unavailable(_reason(error)) from error
    with conn:
        return _request(conn, target, kwargs)


def _reason(error: BaseException) -> str:
    return str(error) if isinstance(error, Unavailable) else f"{type(error).__name__}: {error}"


def run_here(target: str, **kwargs):
    """`module:function`(**kwargs) in this process."""
    return _resolve(target)(**kwargs)


# -- identity and place ---------------------------------------------------------------------
def _identity() -> str:
    """Which server may run this job: same Python, same snaketune code, same versions of the
    preloaded packages, same import-time env."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    h.update(sys.executable.encode())
    h.update(str(package).encode())
    h.update(",".join(PRELOAD).encode())  # a server that imported other modules is another server
    for name in PRELOADED_DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{name}=={metadata.version(name)}".encode())
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode())
        h.update(path.read_bytes())
    for name in sorted(os.environ):
        if name.startswith(IMPORT_TIME_ENV) or name in SCHEDULER_ENV:
            h.update(f"{name}={os.environ[name]}".encode())
    return h.hexdigest()[:16]


def _runtime_dir() -> Path:
    """This user's folder for servers' sockets, locks and logs, created if missing; Unavailable
    unless it is a real folder (not a link), owned by this user, mode 0700. Anyone who could
    write there could run code as this user through a socket; in /tmp (no XDG_RUNTIME_DIR)
    another user can create the folder, or a link to one of theirs, first."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"snaketune-forkserver-{os.getuid()}"
    fix = (
        "the fork server needs a folder of this user's own there (owned by uid "
        f"{os.getuid()}, mode 0700): remove it, or set XDG_RUNTIME_DIR to a private folder"
    )
    try:
        os.mkdir(folder, 0o700)
        created = True
    except FileExistsError:
        created = False
    try:  # the folder itself, never what a link there points to
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        kind = "a symbolic link" if stat.S_ISLNK(os.lstat(folder).st_mode) else "not a folder"
        raise Unavailable(f"{folder} is {kind}; {fix}") from None
    try:
        if created:
            os.fchmod(fd, 0o700)  # a umask may have taken the owner's bits too
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if info.st_uid != os.getuid():
        raise Unavailable(f"{folder} belongs to uid {info.st_uid}; {fix}")
    if stat.S_IMODE(info.st_mode) != 0o700:
        raise Unavailable(f"{folder} has mode {stat.S_IMODE(info.st_mode):04o}; {fix}")
    return folder


def _socket_path(folder: Path) -> Path:
    path = folder / f"{_identity()}.sock"
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise Unavailable(
            f"the server's socket {path} would be {size} bytes long, over the "
            f"{MAX_SOCKET_PATH_BYTES} a Unix socket's path may have; set XDG_RUNTIME_DIR to a "
            "shorter folder"
        )
    return path


# -- messages: a length-prefixed pickle (the socket is private to this user) -----------------
def _send(conn: socket.socket, message, fds: list[int] = ()) -> None:
    data = pickle.dumps(message)
    payload = struct.pack("!Q", len(data)) + data
    if fds:
        socket.send_fds(conn, [payload[:8]], list(fds))
        conn.sendall(payload[8:])
    else:
        conn.sendall(payload)


def _recv_exact(conn: socket.socket, n: int, fds: list | None = None) -> bytes | None:
    data = b""
    while len(data) < n:
        if fds is not None and not data:
            chunk, received, _, _ = socket.recv_fds(conn, n - len(data), 4)
            fds.extend(received)
        else:
            chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _recv(conn: socket.socket, fds: list | None = None):
    try:
        header = _recv_exact(conn, 8, fds)
        if header is None:
            return None
        body = _recv_exact(conn, struct.unpack("!Q", header)[0])
    except (ConnectionResetError, BrokenPipeError):
        return None
    return None if body is None else pickle.loads(body)


# -- client ---------------------------------------------------------------------------------
def _try_connect(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        raise
    return conn


def _lock(path: Path, wait: bool = True, deadline: float | None = None):
    """The open file `path`, exclusively locked, or None if another process holds it and
    `wait` is false or the `deadline` (time.monotonic()) passes. Whoever holds the lock may
    remove the file (a server leaving): a lock taken on a file that has since been removed
    is taken again on the new one."""
    while True:
        handle = open(path, "a")
        try:
            if deadline is None:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            else:
                _flock_by(handle, deadline)
        except BlockingIOError:
            handle.close()
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return handle
        handle.close()


def _flock_by(handle, deadline: float) -> None:
    """Lock `handle` exclusively, or BlockingIOError once `deadline` has passed."""
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
        time.sleep(POLL_SECONDS)


def _files(socket_path: Path) -> tuple[Path, Path]:
    """A server's lock and log, beside its socket."""
    return socket_path.with_suffix(".lock"), socket_path.with_suffix(".log")


def _connect(start: bool = True) -> socket.socket:
    folder = _runtime_dir()
    path = _socket_path(folder)
    try:
        return _try_connect(path)
    except OSError as error:
        if not start:
            raise Unavailable(f"no server running ({error.strerror or error})") from None
    lock_path, log = _files(path)
    timeout = start_timeout()
    # One job starts the server; the others wait for it, but not for ever: a server whose
    # imports hang holds the lock, even once the job that started it has ended.
    lock = _lock(lock_path, deadline=time.monotonic() + timeout)
    if lock is None:
        raise Unavailable(f"a server has been starting for over {timeout:g} s (it holds {lock_path}); see {log}")
    with lock:
        with contextlib.suppress(OSError):
            return _try_connect(path)
        server = _spawn(folder, path, lock)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError):
                return _try_connect(path)
            if server.poll() is not None:
                raise Unavailable(f"the server exited with status {server.returncode}; see {log}")
            if time.monotonic() > deadline:
                server.kill()
                raise Unavailable(f"the server was not ready after {timeout:g} s; see {log}")
            time.sleep(0.05)


def warm() -> None:
    """Start this job's server, unless one runs or is starting, and return at once: the job
    goes on with work that needs no TensorFlow while the server imports it for the jobs after."""
    if not enabled():
        return
    try:
        folder = _runtime_dir()
        path = _socket_path(folder)
        lock = _lock(_files(path)[0], wait=False)
        if lock is None:  # a job is starting it
            return
        with lock:
            try:
                _try_connect(path).close()  # running: its child for this empty request exits at once
            except OSError:
                _spawn(folder, path, lock)
    except Exception:  # noqa: BLE001 - only a head start: the job's call says why it has no server
        return


def _spawn(folder: Path, path: Path, lock) -> subprocess.Popen:
    """Start the server for `path`. It inherits the held `lock` and keeps it until it listens,
    so that a job arriving meanwhile waits for it, not starts another, even once whoever
    started it has ended."""
    _remove_dead_servers(folder, path)
    log = _files(path)[1]
    # The server imports this very snaketune, wherever the job found it.
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    with open(log, "ab") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "snaketune.core.forkserver", str(path), str(lock.fileno()), ",".join(PRELOAD)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
            pass_fds=(lock.fileno(),),
        )
    print(f"forkserver: started server {server.pid} (its log: {log})", file=sys.stderr, flush=True)
    return server


def _remove_dead_servers(folder: Path, starting: Path) -> None:
    """Remove the files of servers that were killed rather than exiting idle (a scheduler
    ends an allocation's processes with SIGKILL), so that a node running many jobs does not
    collect them. A server is dead when nobody holds its lock (no job is starting it) and
    its socket refuses connections."""
    for sock in folder.glob("*.sock"):
        if sock == starting:
            continue
        lock_path, log = _files(sock)
        lock = _lock(lock_path, wait=False)
        if lock is None:
            continue
        with lock:
            try:
                _try_connect(sock).close()  # alive: its child for this empty request exits at once
                continue
            except ConnectionRefusedError:
                pass
            except OSError:
                continue
            for leftover in (sock, log, lock_path):
                leftover.unlink(missing_ok=True)


def _request(conn: socket.socket, target: str, kwargs: dict):
    """Run one call in a forked child; NOT_RUN if the server closed before forking one;
    Unavailable if the child could not start the function. Once it has, the function's own
    outcome: its result, or its error raised here."""
    try:
        started = _start(conn, target, kwargs)
    except Unavailable:
        raise
    except Exception as error:  # noqa: BLE001 - nothing has run yet: the job runs it itself
        raise Unavailable(_reason(error)) from error
    if started is NOT_RUN:
        return NOT_RUN
    pid = started["pid"]
    print(
        f"forkserver: running {target} in process {pid}, forked from server "
        f"{started['server']} (TensorFlow already imported)",
        file=sys.stderr,
        flush=True,
    )
    reply = _recv(conn)
    if reply is None or "exit" in reply:
        status = reply["exit"] if reply else "unknown"
        killed = isinstance(status, int) and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        raise JobProcessDied(
            f"the process running {target} ({pid}) ended without a result ({_describe(status)})"
            + ("; it may have been killed for its memory" if killed else "")
        )
    if "unpicklable" in reply:
        raise UnpicklableResult(
            f"{target} ran in process {pid} and returned a {reply['unpicklable']}, which "
            f"could not be pickled to reach the job ({reply['error']})"
        )
    if reply["ok"]:
        return pickle.loads(reply["result"])
    error = _rebuilt(reply["chain"])
    error.add_note(f"(raised in process {pid}, forked to run {target}; its traceback is in this log above)")
    raise error


def _start(conn: socket.socket, target: str, kwargs: dict):
    """Send the request; the child's {"pid", "server"} once it has taken the job's place, or
    NOT_RUN if the server closed before forking it."""
    sys.stdout.flush()
    sys.stderr.flush()
    request = {
        "target": target,
        "kwargs": kwargs,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "sys_path": list(sys.path),
        "settings": job_settings(),
    }
    try:
        _send(conn, request, fds=[1, 2])
    except OSError:
        return NOT_RUN
    started = _recv(conn)
    if started is None:
        return NOT_RUN
    if "refused" in started:
        raise Unavailable(f"the process forked to run {target} could not take the job's place: {started['refused']}")
    if "exit" in started:
        raise Unavailable(
            f"the process forked to run {target} ended before it started "
            f"({_describe(started['exit'])}); its error, if it could write one, is above in this log"
        )
    return started


def job_settings() -> dict:
    """What of this process a forked process must take on to run as the job would: its
    umask, resource limits, nice value and CPU affinity."""
    return {
        "umask": _umask(),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "rlimits": {name: resource.getrlimit(getattr(resource, name)) for name in RLIMITS},
    }


def _umask() -> int:
    with contextlib.suppress(OSError, StopIteration, ValueError):
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o077)  # no other way to read it; 077 meanwhile is the safe side
    os.umask(mask)
    return mask


def _take_settings(settings: dict) -> None:
    """Give this (forked) process the job's settings; an error names the one it could not
    take (an unprivileged process cannot raise a hard limit or lower its nice value)."""
    os.umask(settings["umask"])
    if os.getpriority(os.PRIO_PROCESS, 0) != settings["nice"]:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, settings["nice"])
        except OSError as error:
            raise OSError(error.errno, f"nice value {settings['nice']}: {error.strerror}") from None
    for name, limits in settings["rlimits"].items():
        which = getattr(resource, name, None)
        if which is not None and resource.getrlimit(which) != tuple(limits):
            try:
                resource.setrlimit(which, tuple(limits))
            except (OSError, ValueError) as error:
                raise OSError(
                    errno.EPERM, f"{name} {tuple(limits)} (the server's: {resource.getrlimit(which)}): {error}"
                ) from None
    if set(os.sched_getaffinity(0)) != set(settings["affinity"]):
        try:
            os.sched_setaffinity(0, settings["affinity"])
        except OSError as error:
            raise OSError(error.errno, f"CPU affinity {settings['affinity']}: {error.strerror}") from None


def _describe(status) -> str:
    if isinstance(status, int):
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit status {os.WEXITSTATUS(status)}"
    return "exit status unknown"


# -- an error, from the forked process to the job -------------------------------------------
def _portable(error: BaseException) -> list[dict]:
    """`error` and what it was raised from or during, as the job can rebuild them: each
    pickled where it also unpickles, else its class's module and name and its message."""
    chain, seen = [], set()
    while error is not None and id(error) not in seen and len(chain) < 16:
        seen.add(id(error))
        entry = {
            "module": type(error).__module__,
            "qualname": type(error).__qualname__,
            "message": _message(error),
            "pickled": None,
            "cause": error.__cause__ is not None,
        }
        with contextlib.suppress(Exception):
            data = pickle.dumps(error)
            pickle.loads(data)  # a class whose __init__ wants other arguments pickles but does not load
            entry["pickled"] = data
        chain.append(entry)
        error = error.__cause__ or error.__context__
    return chain


def _message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a __str__ that fails: its args say what it can
        return repr(error.args)


def _rebuilt(chain: list[dict]) -> BaseException:
    """The error `_portable` described, with its causes and contexts linked as they were."""
    errors = [_rebuilt_one(entry) for entry in chain]
    for entry, error, origin in zip(chain, errors, errors[1:]):
        if entry["cause"]:
            error.__cause__ = origin
        else:
            error.__context__ = origin
    return errors[0]


def _rebuilt_one(entry: dict) -> BaseException:
    if entry["pickled"] is not None:
        with contextlib.suppress(Exception):
            error = pickle.loads(entry["pickled"])
            if isinstance(error, BaseException):
                return error
    message = entry["message"]
    original = _find_class(entry["module"], entry["qualname"])
    if original is not None:
        # A subclass of the real class that only says the message: callers (and
        # train.fails_the_job) see the class, though it could not be built here.
        with contextlib.suppress(Exception):
            stand_in = type(
                original.__name__,
                (original,),
                {
                    "__module__": original.__module__,
                    "__qualname__": original.__qualname__,
                    "__str__": lambda self: message,
                },
            )
            error = stand_in.__new__(stand_in)
            error.args = (message,)
            return error
    stand_in = type(
        entry["qualname"].rpartition(".")[2],
        (ChildError,),
        {"__module__": entry["module"], "__qualname__": entry["qualname"]},
    )
    return stand_in(message)


def _find_class(module: str, qualname: str):
    try:
        found = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001 - not importable here: a stand-in carries its name
        return None
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


# -- server ---------------------------------------------------------------------------------
def serve(path: Path, lock_fd: int | None = None, preload: tuple[str, ...] = PRELOAD) -> None:
    """The server's main loop: import what jobs need (`preload`, the starting job's PRELOAD),
    listen on `path`, fork a child per call."""
    tf_logging.quiet()
    # Imports that hang would hold the start lock for ever, even once the job that started
    # this server has ended: past the deadline the server ends, its stack in its log.
    faulthandler.dump_traceback_later(start_timeout(), exit=True)
    started = time.perf_counter()
    for module in preload:
        importlib.import_module(module)
    print(
        f"forkserver {os.getpid()}: imported {', '.join(preload)} in {time.perf_counter() - started:.1f} s", flush=True
    )
    # What the imports made lives as long as the server: frozen, a child's garbage collections
    # (Keras's clear_session() runs one at every model it builds) scan only what the child
    # made, not the ~400k objects of TensorFlow (0.3 s each on a 2-core machine), and leave the
    # pages it shares with the server unwritten (Python's gc.freeze() documentation).
    gc.freeze()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead server's socket; the starting job holds the lock
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    faulthandler.cancel_dump_traceback_later()
    if lock_fd is not None:
        os.close(lock_fd)  # the lock its starter handed over: jobs waiting on it now connect
    inode = path.stat().st_ino
    children: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    while True:
        readable, _, _ = select.select([listener], [], [], POLL_SECONDS)
        if readable:
            conn, _ = listener.accept()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in children.values():
                    other.close()
                _child(conn)  # never returns
            children[pid] = conn
        _reap(children)
        if children or readable:
            last_active = time.monotonic()
        elif time.monotonic() - last_active > IDLE_SECONDS or _replaced(path, inode):
            if _close_if_unwanted(listener, path, inode):
                print(f"forkserver {os.getpid()}: idle, exiting", flush=True)
                return


def _reap(children: dict) -> None:
    """Tell each job whose child ended how it ended (it may have died without a result)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                _send(conn, {"exit": status})
            conn.close()


def _replaced(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return True


def _close_if_unwanted(listener: socket.socket, path: Path, inode: int) -> bool:
    """Stop listening and remove this server's files, unless a job is starting a server right
    now (it holds the lock)."""
    lock_path, log = _files(path)
    lock = _lock(lock_path, wait=False)
    if lock is None:
        return False
    with lock:
        if not _replaced(path, inode):
            # a server started since (after this one was taken for dead) shares the log
            path.unlink()
            log.unlink(missing_ok=True)
        listener.close()  # a job that connected just now sees the close and starts a new server
        lock_path.unlink()
    return True


def _child(conn: socket.socket) -> None:
    code = 1
    try:
        fds: list[int] = []
        request = _recv(conn, fds)
        if request is None or len(fds) != 2:
            os._exit(1)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        try:
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.path[:] = request["sys_path"]
            # before any thread starts: threads take the nice value and affinity they start with
            _take_settings(request["settings"])
        except Exception as error:  # noqa: BLE001 - the job runs the function itself, saying why
            _send(conn, {"refused": f"{type(error).__name__}: {error}"})
            os._exit(1)
        _send(conn, {"pid": os.getpid(), "server": os.getppid()})
        threading.Thread(target=_die_with_job, args=(conn,), daemon=True).start()
        try:
            result = _resolve(request["target"])(**request["kwargs"])
        except BaseException as error:  # noqa: BLE001 - the job raises it, whatever it is
            traceback.print_exc()
            reply = {"ok": False, "chain": _portable(error)}
        else:
            try:
                reply = {"ok": True, "result": pickle.dumps(result)}
                code = 0
            except Exception as error:  # noqa: BLE001 - the job says so, naming the type
                kind = type(result)
                reply = {
                    "ok": False,
                    "unpicklable": f"{kind.__module__}.{kind.__qualname__}",
                    "error": f"{type(error).__name__}: {error}",
                }
        sys.stdout.flush()
        sys.stderr.flush()
        _send(conn, reply)
    finally:
        # No interpreter or TensorFlow teardown: the outputs are written, the result sent.
        os._exit(code)


def _die_with_job(conn: socket.socket) -> None:
    """The job sends nothing after its request: the end of its stream is the job's end."""
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), tuple(m for m in sys.argv[3].split(",") if m))
