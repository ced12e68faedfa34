"""Errors that speak to users: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class AsrctlError(Exception):
    """A problem the user can fix (bad input, unknown name, missing file); shown as one line."""


class AudioError(AsrctlError):
    """An audio file that cannot be read or decoded."""
