"""Functions the fork-server tests run in forked processes."""

import os
import sys
import time
from pathlib import Path


def whoami(tag):
    return {"tag": tag, "pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
            "env": os.environ.get("SNAKETUNE_TEST_VALUE"), "tensorflow_imported": "tensorflow" in sys.modules}


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
