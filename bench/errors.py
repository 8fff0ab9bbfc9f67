"""Exceptions that the CLI turns into one clear line on stderr."""


class UserError(Exception):
    """Bad input or usage (unknown name, malformed file, bad parameter): exit code 2."""


class DatasetUnavailable(Exception):
    """A dataset that cannot be fetched here; its trials are recorded as skipped."""
