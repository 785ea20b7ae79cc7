"""The one error the embedded server raises."""


class EmbeddedPostgresError(RuntimeError):
    """The embedded server cannot be started or stopped."""
