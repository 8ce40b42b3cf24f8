import copy
import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from snaketune.core.errors import ConfigError
from snaketune.study.config import load_study

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"
DEFAULT = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def study_with(**changes):
    config = copy.deepcopy(DEFAULT)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        if value is DELETE:
            node.pop(last)
        else:
            node[last] = value
    return load_study(config, SCHEMA)


DELETE = object()


def test_default_config_is_valid_and_fills_defaults():
    study = study_with()
    assert study.enabled_strategies == ["grid", "random", "bayesian", "hyperband"]
    assert study.objective.name == "val_accuracy" and study.objective.direction == "max"
    assert study.config["strategies"]["random"]["seed"] == 1
    assert study.config["data"]["validation_split"] == 0.2


def test_objective_direction_is_inferred_like_keras_tuner():
    assert study_with(training__objective="val_loss").objective.direction == "min"


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"strategies__random__trails": 3}, "'strategies.random.trails'"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"strategies__annealing": {"trials": 3}}, "'strategies.annealing'"),
        ({"training__epochs": "five"}, "training.epochs: expected integer"),
        ({"training__epochs": 0}, "training.epochs"),
        ({"strategies__random__trials": 0}, "strategies.random.trials"),
        ({"model__type": "transformer"}, "model.type: expected one of mlp, cnn"),
        (
            {"model__build_model": "missing/file.py:build_model", "model__type": DELETE},
            "file 'missing/file.py' not found",
        ),
        ({"model__build_model": "examples/build_model.py:build_model"}, "exclude each other"),
        ({"model__build_model": "no-function-here", "model__type": DELETE}, "model.build_model"),
        ({"strategies__grid__values": {}}, "strategies.grid.values"),
        ({"strategies__grid__values": {"learning_rate": []}}, "strategies.grid.values.learning_rate"),
        ({"strategies__grid__values": {"learning_rate": [0.5]}}, "0.5 is not a value of space.learning_rate"),
        ({"strategies__grid__values": {"batch_size": [48]}}, "48 is not a value of space.batch_size"),
        ({"space__units": {"type": "int", "min": 512, "max": 64}}, "space.units: min (512) is greater than max (64)"),
        (
            {"space__learning_rate": {"type": "float", "min": 0, "max": 0.1, "sampling": "log"}},
            "space.learning_rate: log sampling",
        ),
        ({"space__activation": {"type": "choice", "values": []}}, "space.activation.values"),
        ({"training__objective": "f1"}, "training.objective"),
        ({"data__validation_split": 1.5}, "data.validation_split"),
        ({"data__path": "nowhere/mnist.npz"}, "data.path: file 'nowhere/mnist.npz' not found"),
        ({"study": "my study"}, "config: study: 'my study' does not match"),
        ({"study": ".."}, "config: study: '..' does not match"),
        ({"strategies__random__trials": 10.0}, "strategies.random.trials: expected integer"),
        ({"strategies__random__seed": -1}, "strategies.random.seed"),
        (
            {
                "space__units": {
                    "type": "int",
                    "min": 64,
                    "max": 512,
                    "step": 64,
                    "conditions": [{"name": "nope", "values": [1]}],
                }
            },
            "parent 'nope' must be a hyperparameter declared",
        ),
        ({"space__activation": {"type": "choice", "values": "relu"}}, "space.activation.values: expected a list"),
    ],
)
def test_bad_config_names_the_key(changes, needle, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError) as error:
        study_with(**changes)
    assert needle in str(error.value)


def test_at_least_one_strategy_must_be_enabled():
    with pytest.raises(ConfigError, match="enable at least one"):
        study_with(
            strategies__grid__enabled=False,
            strategies__random__enabled=False,
            strategies__bayesian__enabled=False,
            strategies__hyperband__enabled=False,
        )


def test_gp_without_pytorch_is_refused_before_any_job(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ConfigError, match=r"strategies\.gp: Optuna's GPSampler needs PyTorch; install it"):
        study_with(strategies__gp={"trials": 4})
    assert study_with(strategies__tpe={"trials": 4}).enabled_strategies[-1] == "tpe"


def test_training_settings_cover_what_changes_a_trial():
    base = study_with().training_settings()
    assert study_with(training__epochs=7).training_settings() != base
    assert study_with(data__subset=500).training_settings() != base
    # the strategies' budgets are not training settings
    assert study_with(strategies__random__trials=12).training_settings() == base


def test_exponent_numbers_are_numbers_although_yaml_1_1_reads_them_as_strings():
    text = "{type: float, min: 1e-4, max: 1e-1, sampling: log, default: 1e-3}"
    study = study_with(space__learning_rate=yaml.safe_load(text), strategies__bayesian__alpha=yaml.safe_load("1e-5"))
    assert study.declared_space["learning_rate"].min == 1e-4
    assert study.declared_space["learning_rate"].default == 1e-3
    assert study.config["strategies"]["bayesian"]["alpha"] == 1e-5


def test_space_errors_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError) as error:
        study_with(space__units={"type": "int", "min": "few", "max": 64})
    assert str(error.value) == "config: space.units.min: expected a number, got 'few'"


def _npz(path, y_test=None):
    rng = np.random.default_rng(0)
    np.savez_compressed(
        path,
        x_train=rng.integers(0, 255, (40, 8, 8), dtype=np.uint8),
        y_train=np.arange(40) % 4,
        x_test=np.zeros((10, 8, 8), dtype=np.uint8),
        y_test=np.arange(10) % 4 if y_test is None else y_test,
    )
    return path


def test_a_bad_data_file_stops_the_study_naming_the_file(tmp_path):
    path = _npz(tmp_path / "d.npz", y_test=np.array([0] * 9 + [4]))
    with pytest.raises(ConfigError) as error:
        study_with(data__path=str(path))
    assert str(error.value).startswith(
        f"config: data.path: '{path}': y_test has label 4, but y_train's labels only go up to 3"
    )


def test_a_split_that_leaves_no_validation_data_stops_the_study(tmp_path):
    path = _npz(tmp_path / "d.npz")
    with pytest.raises(ConfigError, match="config: data.validation_split: 0.01 of 20 images"):
        study_with(data__path=str(path), data__subset=20, data__validation_split=0.01)


def test_data_sha256_is_checked_and_changes_no_trial(tmp_path):
    path = _npz(tmp_path / "d.npz")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    without = study_with(data__path=str(path)).training_settings()
    assert study_with(data__path=str(path), data__sha256=actual.upper()).training_settings() == without
    with pytest.raises(ConfigError) as error:
        study_with(data__path=str(path), data__sha256="1" * 64)
    assert str(error.value).startswith(f"config: data.sha256: '{path}' has sha256 {actual}, expected {'1' * 64}")


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"data__sha256": "1" * 64}, "config: data.sha256: given without data.path"),
        ({"data__sha256": "not-a-sum"}, "config: data.sha256: 'not-a-sum' does not match"),
        ({"data__sha256": 12}, "config: data.sha256: expected ['string', 'null'], got 12"),
    ],
)
def test_bad_data_sha256(changes, needle):
    with pytest.raises(ConfigError) as error:
        study_with(**changes)
    assert needle in str(error.value)


# -- the config as given on the command line and in files ------------------------------------
from snaketune.study.config_files import check_file, typed  # noqa: E402
from snaketune.study.schema import load_schema  # noqa: E402


def overridden(**overrides):
    """The default config with `--config` values as Snakemake hands them over: every value
    nested in a mapping is text (YAML's base loader)."""
    as_snakemake_gives = {key: json_as_text(value) for key, value in overrides.items()}
    config = copy.deepcopy(DEFAULT)
    for key, value in as_snakemake_gives.items():  # Snakemake's own merge, untyped
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value
    return load_study(config, SCHEMA, overrides=as_snakemake_gives)


def json_as_text(value):
    import json

    return yaml.load(json.dumps(value), Loader=yaml.BaseLoader)


def _merge(into, new):
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.mark.parametrize(
    "overrides, key, expected",
    [
        ({"strategies": {"random": {"trials": 12}}}, ("strategies", "random", "trials"), 12),  # integer
        ({"data": {"validation_split": 0.25}}, ("data", "validation_split"), 0.25),  # float
        ({"final": {"enabled": False}}, ("final", "enabled"), False),  # boolean
        ({"data": {"subset": None}}, ("data", "subset"), None),  # null
        ({"data": {"subset": 800}}, ("data", "subset"), 800),
        ({"space": {"units": {"max": 1024}}}, ("space", "units", "max"), 1024),
        ({"space": {"lr": {"type": "float", "min": "1e-4", "max": 0.1}}}, ("space", "lr", "min"), 1e-4),  # exponent
        (
            {"space": {"act": {"type": "choice", "values": ["relu", "tanh"]}}},
            ("space", "act", "values"),
            ["relu", "tanh"],
        ),
        ({"space": {"bs": {"type": "choice", "values": [32, 64]}}}, ("space", "bs", "values"), [32, 64]),
        ({"training": {"objective": "val_loss"}}, ("training", "objective"), "val_loss"),  # text stays text
    ],
)
def test_every_nested_config_override_is_typed_as_in_the_yaml_file(overrides, key, expected):
    node = overridden(**overrides).config
    for part in key:
        node = node[part]
    assert node == expected and type(node) is type(expected)


def test_a_bad_override_is_still_named_with_its_key():
    with pytest.raises(ConfigError, match="strategies.random.trials: expected integer, got 'twelve'"):
        overridden(strategies={"random": {"trials": "twelve"}})


def test_typing_keeps_text_that_only_looks_like_yaml():
    assert typed({"a": "x: y", "b": "[1, 2]", "c": "0x10", "d": "yes"}) == {
        "a": "x: y",
        "b": "[1, 2]",
        "c": 16,
        "d": True,
    }


def test_keys_the_schema_says_are_text_stay_text():
    # a study's name, a path, a sha256 are text whatever they look like; null is still null
    schema = load_schema(SCHEMA)
    given = {"study": "2024", "data": {"path": "~", "sha256": "1234"}, "model": {"build_model": "1:30"}}
    assert typed(given, schema) == given
    assert typed({"data": {"path": "null"}}, schema) == {"data": {"path": None}}


@pytest.mark.parametrize(
    "text, needle",
    [
        ("study: a\nstudy: b\nstrategies: {}\n", "line 2: duplicate key 'study' (first at line 1)"),
        (
            "study: a\ntraining:\n  epochs: 2\n  seed: 1\n  epochs: 3\n",
            "line 5: duplicate key 'training.epochs' (first at line 3)",
        ),
        ("study: a\ntraining:\n\tepochs: 2\n", "line 3, column 1"),
        ('{"study": "a", "study": "b"}', "duplicate key 'study'"),
    ],
)
def test_a_config_file_with_a_duplicated_key_or_a_tab_is_refused_naming_the_line(tmp_path, text, needle):
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        check_file(path)
    assert str(path) in str(error.value) and needle in str(error.value)
    if "\t" in text:
        assert "tab" in str(error.value)


def test_the_shipped_configs_pass_the_strict_reading():
    for path in (ROOT / "config").glob("*.yaml"):
        check_file(path)


def test_space_may_be_left_out(monkeypatch):
    monkeypatch.chdir(ROOT)
    study = study_with(
        space=DELETE,
        model__type=DELETE,
        model__build_model="examples/build_model.py:build_model",
        strategies={"random": {"trials": 2}},
    )
    assert study.config["space"] == {}
    assert study_with(space=DELETE, strategies={"random": {"trials": 2}}).config["space"] == {}
