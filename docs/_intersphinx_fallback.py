"""Offline fallback inventories for intersphinx.

``docs/conf.py`` points intersphinx at the real ``objects.inv`` of Python,
NumPy, SciPy, Matplotlib and PyLops first. Where those sites cannot be
reached (a machine without network, such as CI here), Sphinx would warn
"failed to reach any of the inventories", which ``-W`` turns into an error.
So every mapping has a second location: a small inventory written by
:func:`write_fallback_inventories` from the table below, which lists the
names these docs refer to, each with its address on the real site. Online
builds use the full inventories and never read these.

To link a new external name offline, add it here: ``(name, role, path)``,
where ``path`` is relative to the project's documentation root and ``$``
stands for the name, as in Sphinx's inventory format.
"""

from __future__ import annotations

import zlib
from pathlib import Path

#: project -> (documentation root, version, entries (name, domain:role, path)).
#: Besides the names these pages use, each project lists what numpydoc's
#: default type aliases point to (``bool``, ``iterable``, ``array_like``...).
FALLBACK = {
    "python": (
        "https://docs.python.org/3/",
        "3",
        [
            ("int", "py:class", "library/functions.html#$"),
            ("float", "py:class", "library/functions.html#$"),
            ("complex", "py:class", "library/functions.html#$"),
            ("bool", "py:class", "library/functions.html#$"),
            ("str", "py:class", "library/stdtypes.html#$"),
            ("tuple", "py:class", "library/stdtypes.html#$"),
            ("list", "py:class", "library/stdtypes.html#$"),
            ("dict", "py:class", "library/stdtypes.html#$"),
            ("None", "py:data", "library/constants.html#$"),
            ("True", "py:data", "library/constants.html#$"),
            ("False", "py:data", "library/constants.html#$"),
            ("callable", "py:function", "library/functions.html#$"),
            ("collections.namedtuple", "py:function", "library/collections.html#$"),
            ("bltin-boolean-values", "std:label", "library/stdtypes.html#$"),
            ("iterable", "std:term", "glossary.html#term-$"),
            ("sequence", "std:term", "glossary.html#term-$"),
            ("generator", "std:term", "glossary.html#term-$"),
            ("ValueError", "py:exception", "library/exceptions.html#$"),
            ("TypeError", "py:exception", "library/exceptions.html#$"),
            ("MemoryError", "py:exception", "library/exceptions.html#$"),
            ("AssertionError", "py:exception", "library/exceptions.html#$"),
            ("contextlib.contextmanager", "py:function", "library/contextlib.html#$"),
            ("dataclasses.dataclass", "py:function", "library/dataclasses.html#$"),
        ],
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        "stable",
        [
            ("array_like", "std:term", "glossary.html#term-array_like"),
            ("arrays.scalars", "std:label", "reference/arrays.scalars.html#arrays-scalars"),
            ("numpy", "py:module", "reference/index.html#module-$"),
            ("numpy.inf", "py:data", "reference/constants.html#$"),
            ("numpy.nan", "py:data", "reference/constants.html#$"),
            ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$"),
            ("numpy.random.SeedSequence", "py:class",
             "reference/random/bit_generators/generated/$.html#$"),
            ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#$"),
            ("numpy.dtype", "py:class", "reference/generated/numpy.dtype.html#$"),
            ("numpy.float32", "py:attribute", "reference/arrays.scalars.html#$"),
            ("numpy.float64", "py:attribute", "reference/arrays.scalars.html#$"),
            ("numpy.complex64", "py:attribute", "reference/arrays.scalars.html#$"),
            ("numpy.complex128", "py:attribute", "reference/arrays.scalars.html#$"),
            ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
            ("numpy.random.default_rng", "py:function", "reference/random/generator.html#$"),
            ("numpy.allclose", "py:function", "reference/generated/numpy.allclose.html#$"),
            ("numpy.vdot", "py:function", "reference/generated/numpy.vdot.html#$"),
            ("numpy.kron", "py:function", "reference/generated/numpy.kron.html#$"),
            ("numpy.arange", "py:function", "reference/generated/numpy.arange.html#$"),
            ("numpy.linalg.norm", "py:function", "reference/generated/numpy.linalg.norm.html#$"),
            ("numpy.fft.fft2", "py:function", "reference/generated/numpy.fft.fft2.html#$"),
            ("numpy.fft.ifft2", "py:function", "reference/generated/numpy.fft.ifft2.html#$"),
            ("numpy.testing.assert_allclose", "py:function",
             "reference/generated/numpy.testing.assert_allclose.html#$"),
        ],
    ),
    "scipy": (
        "https://docs.scipy.org/doc/scipy/",
        "stable",
        [
            ("scipy.sparse", "py:module", "reference/sparse.html#module-$"),
            ("scipy.sparse.linalg", "py:module", "reference/sparse.linalg.html#module-$"),
            ("scipy.sparse.csr_array", "py:class", "reference/generated/$.html#$"),
            ("scipy.sparse.csr_array.toarray", "py:method", "reference/generated/$.html#$"),
            ("scipy.sparse.kron", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.identity", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator", "py:class", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.matvec", "py:method",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.rmatvec", "py:method",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.matmat", "py:method",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.rmatmat", "py:method",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.adjoint", "py:method",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.transpose", "py:method",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.H", "py:property",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.LinearOperator.T", "py:property",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.aslinearoperator", "py:function",
             "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.lsqr", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.lsmr", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.cg", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.gmres", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.svds", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.eigsh", "py:function", "reference/generated/$.html#$"),
            ("scipy.sparse.linalg.norm", "py:function", "reference/generated/$.html#$"),
            ("scipy.ndimage.zoom", "py:function", "reference/generated/$.html#$"),
            ("scipy.signal.correlate2d", "py:function", "reference/generated/$.html#$"),
        ],
    ),
    "matplotlib": (
        "https://matplotlib.org/stable/",
        "stable",
        [
            ("matplotlib.cbook.get_sample_data", "py:function", "api/cbook_api.html#$"),
            ("matplotlib.axes.Axes.spy", "py:method", "api/_as_gen/$.html#$"),
            ("matplotlib.axes.Axes.imshow", "py:method", "api/_as_gen/$.html#$"),
            ("matplotlib.pyplot.subplots", "py:function", "api/_as_gen/$.html#$"),
            ("matplotlib.pyplot.imread", "py:function", "api/_as_gen/$.html#$"),
        ],
    ),
    "pylops": (
        "https://pylops.readthedocs.io/en/stable/",
        "stable",
        [
            ("pylops.LinearOperator", "py:class", "api/generated/$.html#$"),
            ("pylops.aslinearoperator", "py:function", "api/generated/$.html#$"),
            ("pylops.Identity", "py:class", "api/generated/$.html#$"),
            ("pylops.Laplacian", "py:class", "api/generated/$.html#$"),
            ("pylops.VStack", "py:class", "api/generated/$.html#$"),
            ("pylops.utils.dottest", "py:function", "api/generated/$.html#$"),
            ("pylops.optimization.leastsquares.regularized_inversion", "py:function",
             "api/generated/$.html#$"),
            ("pylops.optimization.basic.cgls", "py:function", "api/generated/$.html#$"),
        ],
    ),
}


def write_fallback_inventories(directory: Path) -> dict[str, Path]:
    """Write one Sphinx (version 2) inventory per project into ``directory``.

    Returns ``{project: path}``. Files are rewritten only when their content
    changes, so incremental builds stay incremental.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for project, (_root, version, entries) in FALLBACK.items():
        header = (
            "# Sphinx inventory version 2\n"
            f"# Project: {project}\n"
            f"# Version: {version}\n"
            "# The remainder of this file is compressed using zlib.\n"
        ).encode()
        body = "".join(f"{name} {role} 1 {path} -\n" for name, role, path in entries)
        data = header + zlib.compress(body.encode())
        path = directory / f"{project}-objects.inv"
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        paths[project] = path
    return paths
