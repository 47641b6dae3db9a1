"""The one error hierarchy of scene2world.

Every error a user can cause (a bad file, a bad value, a missing GPU) is one of these.
Messages name the file, the field or table, the value, and the fix. The CLI prints the
message of a :class:`Scene2WorldError` on one line and exits with status 2.
"""

from __future__ import annotations


class Scene2WorldError(Exception):
    """Base class of every expected, user-caused failure."""


class ConfigError(Scene2WorldError):
    """Raised when a pipeline config (YAML or ``--set``) is unreadable or has invalid values."""


class DatasetError(Scene2WorldError):
    """Raised when a dataset source cannot be fetched, verified, extracted or holds no clip."""


class SceneError(Scene2WorldError):
    """Raised when a scene file (ClipGT parquet, rig JSON, RDS-HQ tar) is missing or malformed."""


class RenderError(Scene2WorldError):
    """Raised when a scene cannot be rendered: bad camera, bad frame range, no GL device."""


class RenderCancelledError(RenderError):
    """Raised when a render is stopped by the user (Ctrl-C, SIGTERM) before it finished."""


class InferenceError(Scene2WorldError):
    """Raised when a Cosmos spec is invalid or a torchrun launch fails.

    ``returncode``, ``argv`` and ``log_tail`` are set when a launched process failed.
    """

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        argv: list[str] | None = None,
        log_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.argv = argv
        self.log_tail = log_tail


class PackageError(Scene2WorldError):
    """Raised when a run folder cannot be packaged or fails verification."""


class CacheError(Scene2WorldError):
    """Raised when a cache entry or manifest is unreadable or does not match its files."""
