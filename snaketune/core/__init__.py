"""Foundations every layer uses: errors, atomic file writes, content hashes and the rules of
trial identity, loading user code, quiet TensorFlow logs, and the fork server that runs jobs
from one warm process."""
