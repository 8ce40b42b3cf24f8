"""A user's build_model(hp) is discovered before any job, in a child process, once per file content."""

import shutil
import subprocess

import pytest

from conftest import ROOT
from snaketune import models
from snaketune.errors import ConfigError


@pytest.fixture
def model_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    shutil.copy2(ROOT / "tests" / "models" / "broken.py", tmp_path / "m" / "broken.py")
    shutil.copy2(ROOT / "examples" / "build_model.py", tmp_path / "m" / "example.py")
    return tmp_path


@pytest.mark.parametrize("message, named", [
    ("build_model raised RuntimeError: no", "config: model.build_model: 'f.py:g' raised RuntimeError: no"),
    ("build_model must return a keras.Model, got str",
     "config: model.build_model: 'f.py:g' must return a keras.Model, got str"),
    ("build_model: hp.Int('u', ...): space.u: min (3) is greater than max (1)",
     "config: model.build_model: 'f.py:g': hp.Int('u', ...): space.u: min (3) is greater than max (1)"),
    ("config: space.u: build_model never asks for 'u'", "config: space.u: build_model never asks for 'u'"),
])
def test_discovery_errors_name_the_file_and_function(message, named):
    assert models._named("f.py:g", message) == named


def test_a_failing_build_model_is_reported_and_not_remembered(model_dir):
    cache = model_dir / "cache"
    with pytest.raises(ConfigError) as error:
        models.check_build_model("m/broken.py:raises", {}, cache)
    assert str(error.value) == ("config: model.build_model: 'm/broken.py:raises' raised RuntimeError: "
                                "this layer stack cannot be built")
    assert not list(cache.glob("*"))  # nothing remembered, no result file left behind


def test_a_good_build_model_is_discovered_once_per_content(model_dir, monkeypatch):
    cache = model_dir / "cache"
    space = models.check_build_model("m/example.py:build_model", {}, cache)
    assert {hp["name"] for hp in space} == {"units", "extra_layer", "extra_units", "learning_rate"}
    assert len(list(cache.glob("*.json"))) == 1

    def no_child(*args, **kwargs):
        raise AssertionError("discovered again")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert models.check_build_model("m/example.py:build_model", {}, cache) == space
    # another declared space, or another content of the file, is another discovery
    with pytest.raises(AssertionError, match="discovered again"):
        models.check_build_model("m/example.py:build_model", {"batch_size": 64}, cache)
    with open(model_dir / "m" / "example.py", "a") as fh:
        fh.write("\n# edited\n")
    with pytest.raises(AssertionError, match="discovered again"):
        models.check_build_model("m/example.py:build_model", {}, cache)
