"""Functions the fork-server tests run in forked processes."""

import os
import sys
import time
from pathlib import Path


def whoami(tag):
    return {
        "tag": tag,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "env": os.environ.get("SNAKETUNE_TEST_VALUE"),
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


def speak(text):
    print(f"out: {text}")
    print(f"err: {text}", file=sys.stderr)
    return text


def fail(message):
    raise ValueError(message)


def die():
    os.kill(os.getpid(), 9)


def wait_forever(pid_file):
    Path(pid_file).write_text(str(os.getpid()))
    while True:
        time.sleep(0.1)


def count_and_return_nothing(count_file):
    with open(count_file, "a") as fh:
        fh.write("ran\n")


def settings():
    """What the forked process runs under: each should be the job's, not the server's."""
    import resource

    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "umask": _umask(),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "affinity": sorted(os.sched_getaffinity(0)),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
    }


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def unpicklable():
    import threading

    return threading.Lock()


class ConfigurationProblem(Exception):
    """An exception class of the user's own."""


class NeedsTwo(Exception):
    """Pickles but does not unpickle: its __init__ wants other arguments than its args."""

    def __init__(self, what, why):
        super().__init__(f"{what} failed: {why}")
        self.what = what


def raise_own(kind):
    if kind == "own":
        raise ConfigurationProblem("the model does not fit")
    if kind == "needs_two":
        raise NeedsTwo("the loader", "no such column")
    if kind == "caused":
        try:
            raise OSError(28, "No space left on device")
        except OSError as error:
            raise RuntimeError("could not save the model") from error
    if kind == "local":  # a class the job cannot import
        raise type("MadeInTheChild", (Exception,), {})("only here")
    raise AssertionError(kind)
