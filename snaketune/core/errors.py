"""Errors a user can act on: each names the config key or file at fault and what was expected."""


class ConfigError(ValueError):
    """The study's configuration, search space or a file it names is not usable."""


class DataError(ValueError):
    """The data set could not be obtained or does not have the expected layout."""


class DamagedInput(RuntimeError):
    """A file an earlier job built is missing or no longer what that job wrote.

    Not a property of the configuration being trained: the job fails, and the next run
    builds the file again (see snaketune.trial.integrity)."""


def in_config(message: str) -> str:
    """A message as the config check gives it: starting with `config: `."""
    return message if message.startswith("config: ") else f"config: {message}"
