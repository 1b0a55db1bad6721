"""A per-object memo of values built on first use, which copies and pickles empty.

Operators cache what their first application builds (an explicit matrix,
spectra, gather tables). The cache belongs to the object, never to a global
table, and is not part of its value: a copy or a pickle starts with an empty
memo and rebuilds what it needs where it is used.

No lock is taken: when two threads build the same entry at once, both build
it and the first one stored is kept (building is deterministic), so a fork
can never inherit a held lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Memo"]


class Memo:
    """A dict of built values that copies and pickles as an empty memo.

    Examples
    --------
    >>> import pickle
    >>> from linop._memo import Memo
    >>> memo = Memo()
    >>> memo.get("square", lambda: 7 * 7)
    49
    >>> memo.peek("square"), pickle.loads(pickle.dumps(memo)).peek("square")
    (49, None)
    """

    __slots__ = ("_values",)

    def __init__(self):
        self._values: dict = {}

    def get(self, key, build: Callable[[], Any]):
        """The value of ``key``, built by ``build()`` the first time."""
        value = self._values.get(key)
        if value is None:
            value = self._values.setdefault(key, build())
        return value

    def peek(self, key):
        """The value of ``key`` if it is built, else None (nothing is built)."""
        return self._values.get(key)

    def __reduce__(self):
        return Memo, ()

    def __deepcopy__(self, memo):
        return Memo()

    def __copy__(self):
        return Memo()
