import pytest

from snaketune.workflow.resources import STARTUP_MINUTES, training_resources

RESOURCES = {
    "trial_threads": 1,
    "trial_mem_mb": 1600,
    "trial_runtime": None,
    "minutes_per_epoch": 2,
    "gpu": 0,
    "trials_per_gpu": 1,
}


def test_a_retry_gets_twice_the_memory_and_time():
    requested = training_resources(RESOURCES, epochs=5)
    assert requested["mem_mb"](None, 1) == 1600 and requested["mem_mb"](None, 2) == 3200
    assert requested["runtime"](None, 1) == STARTUP_MINUTES + 10
    assert requested["runtime"](None, 2) == 2 * (STARTUP_MINUTES + 10)


def test_the_job_knows_its_attempt():
    assert training_resources(RESOURCES, epochs=5)["attempt"](None, 2) == 2


def test_a_fixed_runtime_overrides_the_per_epoch_estimate():
    requested = training_resources({**RESOURCES, "trial_runtime": 90}, epochs=5)
    assert requested["runtime"](None, 1) == 90


def test_gpus_are_requested_only_when_configured():
    assert "gpu" not in training_resources(RESOURCES, epochs=5)
    assert "trials_per_gpu" not in training_resources(RESOURCES, epochs=5)
    assert training_resources({**RESOURCES, "gpu": 2}, epochs=5)["gpu"] == 2
    assert training_resources({**RESOURCES, "gpu": 1, "trials_per_gpu": 3}, epochs=5)["trials_per_gpu"] == 3


def test_the_longest_trials_come_first():
    # Snakemake starts the trial jobs of highest priority first: with trials of unequal length
    # the longest go first and no core idles while the last ones finish.
    from snaketune.workflow.resources import expected_cost

    small, large = expected_cost({"batch_size": 256}, {}, 5), expected_cost({"batch_size": 32}, {}, 5)
    assert large > small > 0
    assert expected_cost({}, {}, 5) == large  # Keras' default batch size, 32
    assert expected_cost({"batch_size": 32, "epochs": 10}, {}, 5) > large  # a tuned epochs
    # a promoted Hyperband trial trains only the epochs beyond its parent's
    assert expected_cost({"batch_size": 32}, {"epochs": 5, "initial_epoch": 2, "parent": "p"}, 5) < large
    assert expected_cost({"batch_size": 4096}, {}, 1) >= 1


@pytest.mark.workflow
def test_trial_jobs_start_longest_first(tmp_path, mnist_path):
    import re

    from conftest import TINY, snakemake, write_config

    config = {
        **TINY,
        "data": {**TINY["data"], "path": str(mnist_path), "subset": 200},
        "space": {**TINY["space"], "batch_size": {"type": "choice", "values": [16, 32, 64, 128]}},
        "strategies": {
            "grid": {"values": {"batch_size": [64, 128, 16, 32]}},
            **{name: {**TINY["strategies"][name], "enabled": False} for name in TINY["strategies"] if name != "grid"},
        },
        "final": {"enabled": False},
    }
    write_config(tmp_path, config)
    output = snakemake(tmp_path, "--cores", "1").stderr
    started = [int(b) for b in re.findall(r"^Job \d+: trial [0-9a-f]{12}: \{.*'batch_size': (\d+)", output, re.M)]
    assert started == [16, 32, 64, 128], output[-3000:]
