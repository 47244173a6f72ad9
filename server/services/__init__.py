"""Plain functions under the views: they take a session and plain values, and raise ServiceError."""


class ServiceError(Exception):
    """A refusal a view turns into the error envelope with ``status``."""

    def __init__(
        self, status: int, message: str, code: str | None = None, details: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.details = status, message, code, details or {}
