"""A user's build_model(hp) is discovered before any job, once per file content: in a process
forked from the fork server (TensorFlow imported once), else in a child process."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import ROOT

from snaketune.core import forkserver
from snaketune.core.errors import ConfigError
from snaketune.data.sources import check_file
from snaketune.trial import model_check


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    shutil.copy2(ROOT / "tests" / "models" / "broken.py", tmp_path / "m" / "broken.py")
    shutil.copy2(ROOT / "examples" / "build_model.py", tmp_path / "m" / "example.py")
    return tmp_path


@pytest.mark.parametrize(
    "message, named",
    [
        ("build_model raised RuntimeError: no", "config: model.build_model: 'f.py:g' raised RuntimeError: no"),
        (
            "build_model must return a keras.Model, got str",
            "config: model.build_model: 'f.py:g' must return a keras.Model, got str",
        ),
        (
            "build_model: hp.Int('u', ...): space.u: min (3) is greater than max (1)",
            "config: model.build_model: 'f.py:g': hp.Int('u', ...): space.u: min (3) is greater than max (1)",
        ),
        ("config: space.u: build_model never asks for 'u'", "config: space.u: build_model never asks for 'u'"),
    ],
)
def test_discovery_errors_name_the_file_and_function(message, named):
    assert model_check._named("f.py:g", message) == named


# MNIST fetched by the data job: the check tries a model on random images of its shape.
MNIST = {"path": None, "loader": None, "csv": None, "task": None}
VAL_ACCURACY = {"name": "val_accuracy", "direction": "max"}


def check(spec, declared, cache, data=MNIST, summary=None, objective=VAL_ACCURACY, key="build_model"):
    return model_check.check_user_model(
        {key: spec}, declared, data=data, summary=summary, objective=objective, cache_dir=cache
    )


def test_a_failing_build_model_is_reported_and_not_remembered(model_dir):
    cache = model_dir / "cache"
    with pytest.raises(ConfigError) as error:
        check("m/broken.py:raises", {}, cache)
    assert str(error.value) == (
        "config: model.build_model: 'm/broken.py:raises' raised RuntimeError: this layer stack cannot be built"
    )
    assert not list(cache.glob("*"))  # nothing remembered, no result file left behind


def test_a_good_build_model_is_discovered_once_per_content(model_dir, monkeypatch):
    cache = model_dir / "cache"
    checked = check("m/example.py:build_model", {}, cache)
    assert {hp["name"] for hp in checked["space"]} == {"units", "extra_layer", "extra_units", "learning_rate"}
    assert set(checked["reported"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(list(cache.glob("*.json"))) == 1

    def no_child(*args, **kwargs):
        raise AssertionError("discovered again")

    # a check starts in a process forked from the fork server, or in a child process
    monkeypatch.setattr(subprocess, "run", no_child)
    monkeypatch.setattr(model_check.forkserver, "call", no_child)
    assert check("m/example.py:build_model", {}, cache) == checked
    # another declared space, or another content of the file, is another discovery
    with pytest.raises(AssertionError, match="discovered again"):
        check("m/example.py:build_model", {"batch_size": 64}, cache)
    with open(model_dir / "m" / "example.py", "a") as fh:
        fh.write("\n# edited\n")
    with pytest.raises(AssertionError, match="discovered again"):
        check("m/example.py:build_model", {}, cache)


def _npz(path, y_train, y_test):
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 255, (len(y_train), 8, 8), dtype=np.uint8),
        y_train=y_train,
        x_test=rng.integers(0, 255, (len(y_test), 8, 8), dtype=np.uint8),
        y_test=y_test,
    )
    data = {**MNIST, "path": str(path)}
    return data, check_file(path, "t")


@pytest.mark.parametrize(
    "function, labels, objective, needle",
    [
        ("uncompiled", "3 classes", VAL_ACCURACY, "returns a model that is not compiled: call model.compile("),
        (
            "ten_classes",
            "20 classes",
            VAL_ACCURACY,
            "outputs 10 values per sample, but the targets have 20 classes (labels 0..19): end it with Dense(20, ",
        ),
        (
            "softmax_regressor",
            "real numbers",
            {"name": "val_mae", "direction": "min"},
            "ends in a softmax, but the targets are real numbers (regression)",
        ),
        (
            "ten_classes",
            "10 classes",
            {"name": "val_auc", "direction": "max"},
            "training.objective: the model does not report 'val_auc'; "
            "it reports accuracy, loss, val_accuracy, val_loss",
        ),
    ],
)
def test_a_model_that_does_not_fit_the_study_is_refused_before_any_trial(
    model_dir, function, labels, objective, needle
):
    n = 60
    y = {
        "3 classes": np.arange(n) % 3,
        "20 classes": np.arange(n) % 20,
        "10 classes": np.arange(n) % 10,
        "real numbers": np.linspace(0, 1, n),
    }[labels]
    data, summary = _npz(model_dir / "d.npz", y, y[:20])
    with pytest.raises(ConfigError) as error:
        check(f"m/broken.py:{function}", {}, model_dir / "cache", data, summary, objective)
    assert needle in str(error.value)
    assert str(error.value).startswith(("config: model.build_model: 'm/broken.py:", "config: training.objective"))


def test_the_check_runs_forked_from_the_fork_server_and_a_child_process_finds_the_same(model_dir, monkeypatch, capfd):
    checked = check("m/example.py:build_model", {}, model_dir / "forked")
    ran = re.search(
        r"running snaketune.trial.model_check:_check_forked in process \d+, forked from server (\d+)",
        capfd.readouterr().err,
    )
    assert ran, "the check did not run forked from the fork server"
    # ... from the server a trial job (of 1 thread, with the variables Snakemake sets for it) uses
    with monkeypatch.context() as job:
        for name in model_check.JOB_THREAD_ENV:
            job.setenv(name, "1")
        served = forkserver.call_if_running("tests.forkserver_targets:whoami", tag="trial")
    assert served["ppid"] == int(ran.group(1)), "a trial job would find another server, or none"
    capfd.readouterr()
    # with no server to be had (here: turned off), in a fresh child process that imports TensorFlow
    monkeypatch.setenv("SNAKETUNE_FORKSERVER", "0")
    assert check("m/example.py:build_model", {}, model_dir / "child") == checked
    assert "forkserver: running" not in capfd.readouterr().err


SLOW_OR_DYING = """
import os, time

def slow(hp):
    time.sleep(600)

def dies(hp):
    os._exit(3)
"""


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "child process"])
def test_a_check_past_its_deadline_is_left_to_the_space_job_and_not_remembered(model_dir, monkeypatch, capfd, forked):
    (model_dir / "m" / "slow.py").write_text(SLOW_OR_DYING)
    monkeypatch.setattr(model_check, "CHECK_TIMEOUT_S", 3 if forked else 1)
    if not forked:
        monkeypatch.setenv("SNAKETUNE_FORKSERVER", "0")
    assert check("m/slow.py:slow", {}, model_dir / "cache") is None
    assert "took over" in capfd.readouterr().err
    assert not list((model_dir / "cache").iterdir())


def test_a_forked_check_that_dies_fails_naming_how(model_dir):
    (model_dir / "m" / "slow.py").write_text(SLOW_OR_DYING)
    with pytest.raises(ConfigError) as error:
        check("m/slow.py:dies", {}, model_dir / "cache")
    assert str(error.value).startswith("config: model.build_model: 'm/slow.py:dies': checking it failed (")
    assert "exit status 3" in str(error.value)
    assert not list((model_dir / "cache").iterdir())
    assert os.path.isdir(model_dir / "cache")
