"""Exceptions that the CLI turns into one clear line on stderr."""


class UserError(Exception):
    """Bad input or usage (unknown name, malformed file, bad parameter): exit code 2."""


class DatasetUnavailable(Exception):
    """A dataset that cannot be fetched here; its trials are recorded as skipped."""


class StoreFault(Exception):
    """The results store cannot be written or read back (full disk, I/O error, read-only
    filesystem, a stored file that fails its checksum and cannot be rebuilt).  Not the
    model's failure: nothing is recorded, the run stops with one line, and a re-run
    resumes once the fault is gone."""


class ExecutorFault(StoreFault):
    """The executor lost its cluster under the run (a killed Dask scheduler): no verdict on
    the trials running there, nothing recorded for them, exit 3; a re-run resumes."""
