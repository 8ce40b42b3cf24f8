"""Imported by the servers of some fork-server tests in place of TensorFlow: it takes seconds,
as TensorFlow's import does, so that jobs arrive while the server starts, but it sleeps through
them rather than keep a CPU busy."""

import time

time.sleep(3)
