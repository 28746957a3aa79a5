"""The one exception tree of Tuneline.

    TunelineError                 anything Tuneline raises on purpose
    ├── ConfigError               a setting, goal or file the user must fix before retrying
    ├── DependencyMissing         Java, Maven or another tool is not installed
    ├── TransientError            worth retrying: broker unavailable, database locked, timeouts
    └── PermanentError            retrying cannot help; a consumer dead-letters the message
        ├── DecodeError           bytes that are not the declared protobuf, missing headers
        ├── UnknownEventType      a ce_type this consumer does not handle
        ├── IntegrityError        an artifact's bytes do not match its digest
        ├── InvalidInput          user or upstream input that breaks a contract (with a reason)
        ├── NotFound              an id, digest or goal nobody knows
        └── IllegalTransition     a lifecycle event that is stale or out of order

Every error carries a message a user can act on; `hint` says what to do next.
"""

from __future__ import annotations


class TunelineError(Exception):
    """Base of every error Tuneline raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class ConfigError(TunelineError):
    """A setting, goal file or argument is wrong; fix it and run again."""


class DependencyMissing(TunelineError):
    """An external program Tuneline needs is not installed."""


class TransientError(TunelineError):
    """A failure that may pass on retry (broker down, database busy, timeout)."""


class PermanentError(TunelineError):
    """A failure that no retry can fix; consumers dead-letter the message."""


class DecodeError(PermanentError):
    """A Kafka record is not a valid Tuneline CloudEvent."""


class UnknownEventType(PermanentError):
    """A record's ce_type is not one this consumer handles."""


class IntegrityError(PermanentError):
    """An artifact's bytes do not match the digest it was published under."""


class InvalidInput(PermanentError):
    """Input breaks a contract: a malformed dataset, a hostile URI, an oversized request."""


class NotFound(PermanentError):
    """The id, digest or goal asked for is not known."""


class IllegalTransition(PermanentError):
    """A lifecycle event arrived that the current state does not allow."""
