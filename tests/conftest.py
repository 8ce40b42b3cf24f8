import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = (ROOT / ".." / "shared" / "data" / "mnist.npz").resolve()


def pytest_configure(config):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def mnist_path():
    if not MNIST.is_file():
        pytest.fail(f"MNIST is expected at {MNIST} (see ../shared/data/README.md)")
    return MNIST


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, mnist_path):
    """A few hundred MNIST images, prepared the way the `data` rule prepares them."""
    from snaketune.data import load_npz, prepare

    out = tmp_path_factory.mktemp("data")
    prepare(load_npz(mnist_path), out, validation_split=0.25, subset=200, seed=0, source="test")
    return out


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
