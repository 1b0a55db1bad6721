"""Phases of long work on one status line of a terminal."""

from __future__ import annotations

import sys
import time

__all__ = [
    "Progress",
]

# -- progress -------------------------------------------------------------------------
def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Phases of long work on one status line of ``stream``, only on a terminal.

    ``phase(text)`` replaces the status line; ``done(text)`` ends with a
    summary line; leaving the ``with`` block early (an error) erases the
    status line so that the error message starts on a clean line. When the
    stream is not a terminal, nothing is written at all.
    """

    def __init__(self, stream=None, prefix: str = "linop"):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _isatty(self.stream)
        self.prefix = prefix
        self._start = time.perf_counter()
        self._active = False

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def phase(self, text: str) -> None:
        if self.enabled:
            self._write(f"\r\x1b[K{self.prefix}: {text}...")
            self._active = True

    def clear(self) -> None:
        if self.enabled and self._active:
            self._write("\r\x1b[K")
            self._active = False

    def done(self, text: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self._start
            self._write(f"\r\x1b[K{self.prefix}: {text} in {elapsed:.1f} s\n")
            self._active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.clear()
        return False
