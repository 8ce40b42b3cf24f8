from snaketune.resources import STARTUP_MINUTES, training_resources

RESOURCES = {"trial_threads": 1, "trial_mem_mb": 1600, "trial_runtime": None, "minutes_per_epoch": 2, "gpu": 0,
             "trials_per_gpu": 1}


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
