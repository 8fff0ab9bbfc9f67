"""Execution: suites expanded into trial specs, one trial run in a worker process, executors,
admission, thread counts, the environment recorded, and the results store and its records."""
