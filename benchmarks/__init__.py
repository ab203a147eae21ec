"""Benchmarks of the project, outside the library: `python -m benchmarks.train_step --help`."""
