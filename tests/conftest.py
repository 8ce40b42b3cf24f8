import contextlib
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MNIST = (ROOT / ".." / "shared" / "data" / "mnist.npz").resolve()

# A trial job pins TensorFlow to its `threads` (1 unless the config says otherwise) before
# TensorFlow starts. The tests train many small models in their own process, where TensorFlow
# has long started, and beside the fork server and pytest-xdist's other worker: with a thread
# pool per core in each, the small fits spend much of the CPU contending (measured in
# docs/benchmarks.md#the-test-suite). Set before any test imports TensorFlow; a value already
# in the environment is kept.
for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="session")
def mnist_path():
    if not MNIST.is_file():
        pytest.fail(f"MNIST is expected at {MNIST} (see ../shared/data/README.md)")
    return MNIST


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, mnist_path):
    """A few hundred MNIST images, prepared the way the `data` rule prepares them."""
    from snaketune.data.prepared import prepare
    from snaketune.data.sources import load_npz

    out = tmp_path_factory.mktemp("data")
    prepare(load_npz(mnist_path), out, validation_split=0.25, subset=200, seed=0, source="test")
    return out


@pytest.fixture(scope="session")
def guide_mnist(tmp_path_factory, mnist_path):
    """A slice of MNIST prepared as Keras Tuner's "Getting started" guide prepares it: pixels
    as float32 in [0, 1] with a channel axis, one-hot labels (keras.utils.to_categorical's
    rows), its own x_val/y_val taken from the end of the training images."""
    import numpy as np

    with np.load(mnist_path) as mnist:
        x, y, x_test, y_test = (mnist[k] for k in ("x_train", "y_train", "x_test", "y_test"))

    def images(a):
        return np.expand_dims(a, -1).astype("float32") / 255.0

    def one_hot(labels):
        return np.eye(10, dtype="float32")[labels]

    path = tmp_path_factory.mktemp("guide") / "mnist_guide.npz"
    np.savez(
        path,
        x_train=images(x[:384]),
        y_train=one_hot(y[:384]),
        x_val=images(x[-128:]),
        y_val=one_hot(y[-128:]),
        x_test=images(x_test[:128]),
        y_test=one_hot(y_test[:128]),
    )
    return path


@pytest.fixture
def tiny_settings():
    return {
        "model": {"type": "mlp"},
        "data": {"path": "x", "validation_split": 0.25, "subset": 200, "seed": 0},
        "epochs": 1,
        "patience": None,
        "seed": 0,
        "objective": {"name": "val_accuracy", "direction": "max"},
    }


@pytest.fixture
def example_build_model():
    return ROOT / "examples" / "build_model.py"


def snakemake_cmd(*args):
    return [shutil.which("snakemake"), "-s", str(ROOT / "Snakefile"), *args]


TINY = yaml.safe_load((ROOT / "tests" / "tiny_config.yaml").read_text())


def write_config(workdir: Path, config: dict) -> Path:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir, *args, check=True):
    result = subprocess.run(
        snakemake_cmd("--configfile", "config.yaml", *args), cwd=workdir, capture_output=True, text=True, timeout=1200
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def planned_jobs(output: str) -> dict:
    """The dry run's job table: rule -> count."""
    table = output.split("Job stats:")[1].split("\n\n")[0] if "Job stats:" in output else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, mnist_path):
    """The tiny study, run once locally with `--cores 2`: (workdir, config)."""
    workdir = tmp_path_factory.mktemp("study")
    config = {**TINY, "data": {**TINY["data"], "path": str(mnist_path)}}
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2")
    return workdir, config


# -- the `workflow` mark is every test that runs Snakemake -----------------------------------
# `-m "not workflow"` is the part of the suite without Snakemake: a test (or a fixture it
# sets up) that starts snakemake in a child process, `python -m snakemake`, or a program
# driving Snakemake's API fails unless it is marked `workflow`.
def runs_snakemake(args) -> bool:
    """Whether a child process started with `args` (as subprocess takes them) runs Snakemake."""
    if isinstance(args, (str, bytes, os.PathLike)):
        words = shlex.split(os.fsdecode(args)) if isinstance(args, (str, bytes)) else [os.fspath(args)]
    else:
        words = [os.fsdecode(a) for a in args]
    if words and Path(words[0]).name == "snakemake":
        return True
    pairs = list(zip(words, words[1:]))
    return any(a == "-m" and b == "snakemake" for a, b in pairs) or any(
        a == "-c" and "SnakemakeApi" in b for a, b in pairs
    )


@contextlib.contextmanager
def no_snakemake(item):
    if item.get_closest_marker("workflow"):
        yield
        return
    popen_init = subprocess.Popen.__init__

    def refuse(self, args, *rest, **kwargs):
        if runs_snakemake(args):
            raise AssertionError(f"{item.nodeid} runs snakemake but is not marked workflow: {args!r}")
        popen_init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = refuse
    try:
        yield
    finally:
        subprocess.Popen.__init__ = popen_init


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with no_snakemake(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with no_snakemake(item):
        return (yield)
