"""The one exception type the CLI turns into a single clear line and a non-zero exit."""


class HarnessError(Exception):
    """A problem the user can fix: bad input, missing files, an unreachable store."""


class StoreError(HarnessError):
    """The MLflow store or tracking server refused or failed a request; `kind` says how
    (unavailable, unauthenticated, forbidden, host, deleted, not_found, other)."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind


class StoreUnavailable(StoreError):
    """The tracking server (or database) stopped answering and did not come back in time."""

    def __init__(self, message: str):
        super().__init__(message, "unavailable")
