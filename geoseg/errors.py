"""The one error root of geoseg and its subclasses.

Every error a user can cause derives from :class:`GeosegError` and from the builtin
exception it resembles, so callers may catch either::

    >>> issubclass(ConfigError, ValueError) and issubclass(ConfigError, GeosegError)
    True
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GeosegError",
    "InputError",
    "OutputError",
    "RasterReadError",
]


class GeosegError(Exception):
    """Root of every error geoseg raises on purpose."""


class ConfigError(GeosegError, ValueError):
    """A parameter or configuration value is out of range, of the wrong type or unknown."""


class InputError(GeosegError, ValueError):
    """An in-memory input (array, mask, transform) violates a stage's contract."""


class RasterReadError(GeosegError, OSError):
    """A raster or image file is missing, unreadable, truncated or not a raster."""


class OutputError(GeosegError, OSError):
    """An output cannot be written (directory missing or not writable, disk full)."""
