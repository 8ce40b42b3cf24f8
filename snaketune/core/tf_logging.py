"""How much of TensorFlow's C++ logging reaches a trial's log.

TensorFlow 2.21 logs an error-level `node_def_util` line ("NodeDef mentions attribute
use_unbounded_threadpool ...") on every fit in a process with op determinism on, which is
harmless and alarming. Level 3 keeps only fatal messages; a real failure of an op still
raises in Python and is recorded with the trial. A user who sets TF_CPP_MIN_LOG_LEVEL keeps
their own level.
"""

import os

LEVEL = "3"


def quiet(env=None) -> None:
    """Set the level in `env` (os.environ by default) unless the user set one; before
    TensorFlow is imported, which reads it once."""
    (os.environ if env is None else env).setdefault("TF_CPP_MIN_LOG_LEVEL", LEVEL)
