"""Benchmarks of snaketune against Keras Tuner: see benchmarks/README.md."""
