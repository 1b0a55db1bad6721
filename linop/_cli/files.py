"""What the command line writes: matrix files (atomically), spy plots, dense text."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
import tempfile
import threading
from typing import ClassVar

import numpy as np

from linop._cli.arguments import CLIError

__all__ = [
    "DENSE_LIMIT",
    "FORMATS",
    "Terminated",
    "atomic_write",
    "check_output",
    "check_target",
    "draw_spy",
    "format_dense",
    "output_format",
    "require_matplotlib",
    "spy_summary",
    "write_matrix",
    "written_summary",
]

#: Largest number of matrix entries (rows * columns) printed densely.
DENSE_LIMIT = 10_000

#: Matrix file formats, by extension.
FORMATS = {".mtx": "Matrix Market", ".npz": "SciPy sparse"}


# -- output ---------------------------------------------------------------------------
def check_target(flag: str, path: str, force: bool = False) -> None:
    """Fail before any work when ``path`` cannot be a new file, or exists without ``force``."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(flag, f"cannot write {path!r}: no such directory {directory!r}")
    if os.path.isdir(path):
        raise CLIError(flag, f"cannot write {path!r}: it is a directory")
    if os.path.lexists(path) and not force:
        raise CLIError(flag, _exists(path))


def _exists(path: str) -> str:
    return f"{path!r} already exists: add --force to overwrite it"


def output_format(path: str) -> str:
    """``.mtx`` or ``.npz`` from the file name (any case), or CLIError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        what = f"unknown extension {ext!r}" if ext else "no extension"
        raise CLIError("-o/--output", f"{path!r} has {what}: use .mtx (Matrix Market) or "
                       ".npz (SciPy sparse)")
    return ext


def check_output(path: str, force: bool = False) -> str:
    """The format of ``-o FILE``, checked with its target before any work."""
    ext = output_format(path)
    check_target("-o/--output", path, force)
    return ext


class Terminated(BaseException):
    """SIGTERM arrived during a write (exit status 143); a BaseException like KeyboardInterrupt."""


class _Signals:
    """SIGINT and SIGTERM as exceptions, each at most once, deferrable; handlers restored after.

    Within the ``with`` block (in the main thread; elsewhere Python cannot
    handle signals and nothing changes), SIGINT raises KeyboardInterrupt and
    SIGTERM raises `Terminated`, except inside ``deferred()``, which holds
    them back to its end. After the first, further signals are ignored, so
    that nothing interrupts the cleanup. Signals set to be ignored stay so.
    """

    _EXCEPTIONS: ClassVar[dict[str, type[BaseException]]] = {
        "SIGINT": KeyboardInterrupt, "SIGTERM": Terminated}

    def __init__(self):
        self._previous = {}
        self._deferring = False
        self._pending = None
        self._fired = False

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for name in self._EXCEPTIONS:
                signum = getattr(signal, name, None)
                if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        return False

    def _handle(self, signum, frame):
        if self._fired:
            return
        if self._deferring:
            self._pending = signum
            return
        self._raise(signum)

    def _raise(self, signum):
        self._fired = True
        raise self._EXCEPTIONS[signal.Signals(signum).name](f"signal {signum}")

    @contextlib.contextmanager
    def deferred(self):
        """Hold signals back until the end of the block (where they raise)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            if self._pending is not None and not self._fired:
                self._raise(self._pending)


def _new_file_mode(path: str) -> int:
    """The mode of the file that ``path`` is, else of a new file (0o666 less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync(path: str, directory: bool = False) -> None:
    """Flush ``path`` to disk (a directory: best effort, not every system can)."""
    try:
        fd = os.open(path, os.O_RDONLY if directory else os.O_RDWR)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _publish(temporary: str, target: str, force: bool, flag: str, shown_path: str) -> None:
    """Move the complete ``temporary`` onto ``target`` in one step.

    With ``force``, `os.replace`. Without, a hard link, which fails if
    ``target`` appeared meanwhile: a file is never overwritten unasked.
    """
    if force:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise CLIError(flag, _exists(shown_path)) from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(target):
            raise CLIError(flag, _exists(shown_path)) from None
        os.replace(temporary, target)
        return
    os.unlink(temporary)


def atomic_write(path: str, write, *, force: bool = False, flag: str = "-o/--output") -> None:
    """Write a file through ``write(temporary_path)`` so that ``path`` is complete or untouched.

    ``write`` writes a temporary file in the target's directory, named
    ``.NAME.XXXXXXXX.ext`` (the same extension, in lower case, so that SciPy
    and Matplotlib pick the right format); once it is complete and flushed to
    disk it replaces ``path`` in one step (`os.replace`). On any failure, on
    Ctrl-C (KeyboardInterrupt) and on SIGTERM (`Terminated`, from a handler
    installed for the duration of the write) the temporary file is removed
    and the exception propagates: ``path``, if it existed, is the previous
    complete file. A symbolic link is followed: the file it points to is
    replaced. An OSError becomes a CLIError with exit status 1.
    """
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    temporary = None
    with _Signals() as signals:
        try:
            with signals.deferred():  # the temporary file exists only once its name is known
                fd, temporary = tempfile.mkstemp(
                    dir=directory, prefix=f".{name}.", suffix=os.path.splitext(name)[1].lower())
            os.close(fd)
            os.chmod(temporary, _new_file_mode(target))
            write(temporary)
            _fsync(temporary)
            _publish(temporary, target, force, flag, path)
            temporary = None
            _fsync(directory, directory=True)
        except OSError as exc:
            raise CLIError(None, f"cannot write {path!r}: {exc.strerror or exc}",
                           status=1) from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)


def write_matrix(path: str, matrix, comment: str, *, force: bool = False) -> None:
    """Write ``matrix`` to ``path`` (.mtx with scipy.io.mmwrite, .npz with save_npz), atomically."""
    import scipy.io
    import scipy.sparse

    if output_format(path) == ".mtx":
        # mmwrite imports its compiled core lazily; a signal arriving during
        # that import (the handlers of atomic_write are installed by then)
        # would break the import instead of interrupting the write
        try:
            from scipy.io._fast_matrix_market import _fmm_core  # noqa: F401
        except ImportError:  # pragma: no cover - another SciPy layout
            pass

        def write(temporary):
            scipy.io.mmwrite(temporary, matrix, comment=comment, symmetry="general")
    else:
        def write(temporary):
            scipy.sparse.save_npz(temporary, matrix)
    atomic_write(path, write, force=force, flag="-o/--output")


def written_summary(path: str, matrix) -> str:
    """What ``-o`` wrote, one line for stdout."""
    m, n = matrix.shape
    return (f"wrote {path}: {m} x {n} matrix, {matrix.nnz} stored entries "
            f"({FORMATS[output_format(path)]})")


def spy_summary(path: str, matrix) -> str:
    """What ``--spy`` drew, one line for stdout."""
    m, n = matrix.shape
    kind = os.path.splitext(path)[1].lstrip(".").upper()
    return (f"wrote {path}: sparsity pattern of the {m} x {n} matrix, {matrix.nnz} stored "
            f"entries ({kind} image)")


def _cell(value) -> str:
    text = str(value).strip("()")
    return text[:-2] if text.endswith(".0") else text


def format_dense(matrix) -> str:
    """The matrix as aligned rows of numbers (readable back with numpy.loadtxt)."""
    dense = matrix.toarray()
    cells = [[_cell(v) for v in row] for row in dense]
    width = max((len(c) for row in cells for c in row), default=1)
    return "".join(" ".join(c.rjust(width) for c in row) + "\n" for row in cells)


def require_matplotlib(path: str, force: bool = False) -> None:
    """Fail early, naming --spy, when matplotlib is missing or cannot write ``path``."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise CLIError("--spy", "drawing the sparsity pattern needs matplotlib, which is not "
                       "installed: pip install matplotlib") from None
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    supported = FigureCanvasBase.get_supported_filetypes()
    if ext not in supported:
        raise CLIError("--spy", f"cannot draw {path!r}: use an image extension matplotlib "
                       f"writes ({', '.join('.' + e for e in sorted(supported))})")
    check_target("--spy", path, force)


def draw_spy(path: str, matrix, title: str, *, force: bool = False) -> None:
    """Draw the sparsity pattern (every stored entry) of ``matrix`` to an image file, atomically."""
    from matplotlib.figure import Figure

    m, n = matrix.shape
    ratio = m / n
    size = (8.0, min(8.0, max(2.0, 8.0 * ratio))) if ratio <= 1 else (max(2.0, 8.0 / ratio), 8.0)
    fig = Figure(figsize=(size[0], size[1] + 0.6), layout="constrained")
    ax = fig.add_subplot()
    if max(m, n) <= 512:
        ax.spy(matrix, precision="present", marker="s",
               markersize=max(0.5, 0.8 * 72 * max(size) / max(m, n)))
    else:  # one pixel per block of entries: marks would overlap anyway
        coo = matrix.tocoo()
        br, bc = math.ceil(m / 512), math.ceil(n / 512)
        image = np.zeros((math.ceil(m / br), math.ceil(n / bc)), dtype=bool)
        image[coo.row // br, coo.col // bc] = True
        ax.imshow(image, cmap="Greys", interpolation="nearest", vmin=0, vmax=1,
                  extent=(-0.5, n - 0.5, m - 0.5, -0.5), aspect="equal")
    ax.set_title(title, fontsize=9)
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    atomic_write(path, lambda temporary: fig.savefig(temporary, dpi=150, format=ext),
                 force=force, flag="--spy")
