"""The one error root of geoseg and its subclasses.

Every error a user can cause derives from :class:`GeosegError` and from the builtin
exception it resembles, so callers may catch either::

    >>> issubclass(ConfigError, ValueError) and issubclass(ConfigError, GeosegError)
    True
"""

from __future__ import annotations

import reprlib

__all__ = [
    "PATH_CHARS",
    "QUOTE_CHARS",
    "ConfigError",
    "GeosegError",
    "InputError",
    "OutputError",
    "RasterReadError",
    "plain",
    "quote",
]

QUOTE_CHARS = 60
"""A user's value echoed in a message: at most this many characters of it."""
PATH_CHARS = 4096
"""A path echoed in a message: whole up to this length (Linux's PATH_MAX)."""

_repr = reprlib.Repr()  # bounded work and length, whatever the value's size
_repr.maxlevel, _repr.maxlist, _repr.maxtuple, _repr.maxset = 2, 4, 4, 4
_repr.maxdict, _repr.maxlong, _repr.maxother = 3, QUOTE_CHARS, QUOTE_CHARS
_repr.maxstring = QUOTE_CHARS


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


def quote(value: object) -> str:
    """``repr(value)`` for a message, cut to about :data:`QUOTE_CHARS` characters: a
    long text keeps its start and says its length, a large list or mapping its first
    items.

    >>> quote("out/{stem}"), quote([1, 2])
    ("'out/{stem}'", '[1, 2]')
    >>> quote("x" * 100_000)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (100000 characters)"
    >>> quote(list(range(1000)))
    '[0, 1, 2, 3, ...] (1000 items)'
    """
    if isinstance(value, str):
        if len(value) <= QUOTE_CHARS:
            return repr(value)
        return f"{value[:QUOTE_CHARS]!r}... ({len(value)} characters)"
    text = _repr.repr(value)
    if len(text) > 2 * QUOTE_CHARS:  # nested values each cut, still too long together
        text = f"{text[:QUOTE_CHARS]}..."
    if isinstance(value, (list, tuple, dict, set, frozenset)) and "..." in text:
        text += f" ({len(value)} item{'' if len(value) == 1 else 's'})"
    return text


def plain(text: object, limit: int = QUOTE_CHARS) -> str:
    """A key or a path for a message: as it is, unless it is longer than ``limit`` or
    holds a character that would break the message's line (a newline, a control
    character), then :func:`quote`-d.

    >>> plain("segment.lr"), plain("a\\nb"), plain("data/x.tif", PATH_CHARS)
    ('segment.lr', "'a\\\\nb'", 'data/x.tif')
    """
    text = str(text)
    return text if len(text) <= limit and text.isprintable() else quote(text)
