"""The one exception type the CLI turns into a single clear line and a non-zero exit."""


class HarnessError(Exception):
    """A problem the user can fix: bad input, missing files, an unreachable store."""
