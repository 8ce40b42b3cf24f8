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
turns it off; then, or when no server can be started, the function runs in the job's own
process as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from importlib import metadata
from pathlib import Path

from snaketune import tf_logging

# What the server imports before it forks: everything a training, final or round job needs
# that takes seconds to import, none of which runs a TensorFlow op on import.
PRELOAD = ("keras", "keras_tuner", "pandas", "optuna", "snaketune.train", "snaketune.final",
           "snaketune.rounds", "snaketune.optuna_space", "snaketune.models", "snaketune.kt_space")
# Environment variables read while those modules are imported: a server imported under
# other values would train differently, so they are part of the server's identity.
IMPORT_TIME_ENV = ("TF_", "CUDA_", "KERAS_", "XLA_", "OMP_", "MKL_", "OPENBLAS_", "LD_", "PYTHONPATH",
                   "PYTHONHASHSEED")
# The installed packages behind those modules: upgrading one in place must not leave jobs on
# a server that imported the old one.
PRELOADED_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "keras", "keras-tuner", "numpy",
                           "pandas", "scipy", "scikit-learn", "h5py", "ml-dtypes", "optuna")
SCHEDULER_ENV = ("SLURM_JOB_ID", "PBS_JOBID", "LSB_JOBID", "JOB_ID", "FLUX_JOB_ID")
IDLE_SECONDS = float(os.environ.get("SNAKETUNE_FORKSERVER_IDLE", 120))
START_TIMEOUT_SECONDS = 300  # importing TensorFlow on a loaded machine
POLL_SECONDS = 0.2


# What a request answers when the server closed before forking a child: a target may return None.
NOT_RUN = object()


class Unavailable(Exception):
    """No server could be reached or started; the job runs the function itself."""


class JobProcessDied(RuntimeError):
    """The forked process ended without a result (killed, or out of memory)."""


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
    if enabled():
        for _ in range(3):  # a server may close between our connect and its accept
            try:
                with _connect(start) as conn:
                    outcome = _request(conn, target, kwargs)
            except Unavailable as why:
                print(f"forkserver: unavailable ({why}); running in this process", file=sys.stderr, flush=True)
                break
            if outcome is not NOT_RUN:
                return outcome
    return run_here(target, **kwargs)


def run_here(target: str, **kwargs):
    """`module:function`(**kwargs) in this process."""
    return _resolve(target)(**kwargs)


# -- identity and place ---------------------------------------------------------------------
def _identity() -> str:
    """Which server may run this job: same Python, same snaketune code, same versions of the
    preloaded packages, same import-time env."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    h.update(sys.executable.encode())
    h.update(str(package).encode())
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
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"snaketune-forkserver-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    # Anyone who could write here could run code as this user through the socket.
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise Unavailable(f"{folder} is not private to this user")
    return folder


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


def _lock(path: Path, wait: bool = True):
    """The open file `path`, exclusively locked, or None if another process holds it and
    `wait` is false. Whoever holds the lock may remove the file (a server leaving): a lock
    taken on a file that has since been removed is taken again on the new one."""
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
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


def _files(socket_path: Path) -> tuple[Path, Path]:
    """A server's lock and log, beside its socket."""
    return socket_path.with_suffix(".lock"), socket_path.with_suffix(".log")


def _connect(start: bool = True) -> socket.socket:
    folder = _runtime_dir()
    path = folder / f"{_identity()}.sock"
    try:
        return _try_connect(path)
    except OSError as error:
        if not start:
            raise Unavailable(f"no server running ({error.strerror or error})") from None
    lock_path, log = _files(path)
    with _lock(lock_path) as lock:  # one job starts the server; the others wait for it
        with contextlib.suppress(OSError):
            return _try_connect(path)
        server = _spawn(folder, path, lock)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            with contextlib.suppress(OSError):
                return _try_connect(path)
            if server.poll() is not None:
                raise Unavailable(f"the server exited with status {server.returncode}; see {log}")
            if time.monotonic() > deadline:
                server.kill()
                raise Unavailable(f"the server was not ready after {START_TIMEOUT_SECONDS} s; see {log}")
            time.sleep(0.05)


def warm() -> None:
    """Start this job's server, unless one runs or is starting, and return at once: the job
    goes on with work that needs no TensorFlow while the server imports it for the jobs after."""
    if not enabled():
        return
    try:
        folder = _runtime_dir()
    except Unavailable:
        return
    path = folder / f"{_identity()}.sock"
    lock = _lock(_files(path)[0], wait=False)
    if lock is None:  # a job is starting it
        return
    with lock:
        try:
            _try_connect(path).close()  # running: its child for this empty request exits at once
        except OSError:
            _spawn(folder, path, lock)


def _spawn(folder: Path, path: Path, lock) -> subprocess.Popen:
    """Start the server for `path`. It inherits the held `lock` and keeps it until it listens,
    so that a job arriving meanwhile waits for it, not starts another, even once whoever
    started it has ended."""
    _remove_dead_servers(folder, path)
    log = _files(path)[1]
    # The server imports this very snaketune, wherever the job found it.
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    with open(log, "ab") as sink:
        server = subprocess.Popen([sys.executable, "-m", "snaketune.forkserver", str(path), str(lock.fileno())],
                                  env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
                                  start_new_session=True, pass_fds=(lock.fileno(),))
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
    """Run one call in a forked child; NOT_RUN if the server closed before forking one."""
    sys.stdout.flush()
    sys.stderr.flush()
    request = {"target": target, "kwargs": kwargs, "cwd": os.getcwd(), "env": dict(os.environ),
               "sys_path": list(sys.path)}
    try:
        _send(conn, request, fds=[1, 2])
    except OSError:
        return NOT_RUN
    started = _recv(conn)
    if started is None:
        return NOT_RUN
    if "exit" in started:
        raise JobProcessDied(f"the process forked to run {target} ended before it started "
                             f"({_describe(started['exit'])}); its error, if it could write one, is above in this log")
    print(f"forkserver: running {target} in process {started['pid']}, forked from server "
          f"{started['server']} (TensorFlow already imported)", file=sys.stderr, flush=True)
    while True:
        reply = _recv(conn)
        if reply is None or "exit" in reply:
            status = reply["exit"] if reply else "unknown"
            raise JobProcessDied(f"the process running {target} ({started['pid']}) ended without a "
                                 f"result ({_describe(status)}); it may have been killed for its memory")
        if reply["ok"]:
            return reply["result"]
        raise RuntimeError(f"{target} failed in process {started['pid']}: {reply['error']} "
                           "(its traceback is in this log above)")


def _describe(status) -> str:
    if isinstance(status, int):
        if os.WIFSIGNALED(status):
            return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit status {os.WEXITSTATUS(status)}"
    return "exit status unknown"


def _resolve(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


# -- server ---------------------------------------------------------------------------------
def serve(path: Path, lock_fd: int | None = None) -> None:
    tf_logging.quiet()
    started = time.perf_counter()
    for module in PRELOAD:
        importlib.import_module(module)
    print(f"forkserver {os.getpid()}: imported {', '.join(PRELOAD)} in {time.perf_counter() - started:.1f} s",
          flush=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead server's socket; the starting job holds the lock
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
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
        except BaseException:  # noqa: BLE001 - the job says the process ended before it started
            print(f"forkserver: the process forked to run {request['target']} could not take the job's "
                  "place:", file=sys.stderr)
            traceback.print_exc()
            raise
        _send(conn, {"pid": os.getpid(), "server": os.getppid()})
        threading.Thread(target=_die_with_job, args=(conn,), daemon=True).start()
        try:
            result = _resolve(request["target"])(**request["kwargs"])
            reply = {"ok": True, "result": result}
            code = 0
        except BaseException as error:  # noqa: BLE001 - the job reports it, whatever it is
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
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
    serve(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
