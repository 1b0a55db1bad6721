"""Sphinx configuration for linop's documentation.

Build (from the repository root; ``make -C docs html`` does the same)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest -D plot_gallery=0 docs docs/_build/doctest

Generated files land in git-ignored folders: ``docs/api/generated/``
(autosummary), ``docs/auto_examples/`` and ``docs/gen_modules/``
(sphinx-gallery) and ``docs/_build/``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

# The examples are small: BLAS threads would only fight over the cores (on a
# busy two-core machine a dot product of 16k numbers then takes milliseconds
# instead of microseconds, and lsqr is made of them). Set before NumPy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MPLBACKEND", "agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))  # for _intersphinx_fallback

import linop  # noqa: E402  (installed with ``pip install -e ".[docs]"``)
from _intersphinx_fallback import FALLBACK, write_fallback_inventories  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "linop"
author = "the linop developers"
copyright = "2025, the linop developers"
version = release = linop.__version__

# -- General -------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
# `name` in reST (and in docstrings) is a cross-reference to a Python object.
default_role = "py:obj"
nitpicky = False
pygments_style = "sphinx"

# -- autodoc / autosummary / numpydoc ------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types
autoclass_content = "class"

numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "array_like": ":term:`array_like <numpy:array_like>`",
    "ndarray": "numpy.ndarray",
    "dtype": "numpy.dtype",
    "Generator": "numpy.random.Generator",
    "LinearOperator": "scipy.sparse.linalg.LinearOperator",
    "csr_array": "scipy.sparse.csr_array",
}
numpydoc_xref_ignore = {
    "of",
    "or",
    "default",
    "optional",
    "shape",
    "pairs",
    "sizes",
    "in",
    "the",
    "a",
    "an",
    "and",
    "with",
    "same",
    "as",
    "each",
    "per",
    "axis",
    "like",
}

# -- doctest -------------------------------------------------------------------
# The reST pages and every docstring that autodoc pulls in (their Examples
# sections) are tested by ``sphinx-build -b doctest``.
doctest_global_setup = """
import numpy as np
import linop
"""
doctest_test_doctest_blocks = "default"
trim_doctest_flags = True

# -- intersphinx ---------------------------------------------------------------
# Each project: the real inventory first, then an offline fallback (see
# _intersphinx_fallback.py), so that a build without network neither fails
# under -W nor loses its links to NumPy and SciPy.
_fallback = write_fallback_inventories(DOCS / "_build" / "intersphinx")
intersphinx_mapping = {
    name: (root, (None, str(_fallback[name]))) for name, (root, _v, _e) in FALLBACK.items()
}
intersphinx_timeout = 10

# -- sphinx-gallery ---------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("linop",),
    "reference_url": {"linop": None},
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "remove_config_comments": True,
    "show_memory": False,
    "write_computation_times": False,
    "min_reported_time": 1,
    "download_all_examples": True,
    "plot_gallery": "True",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "capture_repr": ("_repr_html_", "__repr__"),
}
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

# -- plot directive (figures in the user guide) -------------------------------------
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 96)]
plot_pre_code = """
import numpy as np
import matplotlib.pyplot as plt
import linop
"""
plot_rcparams = {"figure.autolayout": True, "font.size": 9}
plot_apply_rcparams = True

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"linop {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "navbar_align": "left",
}
html_sidebars = {"install": [], "index": []}
html_show_sourcelink = True
html_copy_source = True


# -- signatures ------------------------------------------------------------------
import inspect  # noqa: E402


class _Default:
    """A default value shown by name (``numpy.float64``, not ``<class ...>``)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text

    @classmethod
    def of(cls, value):
        if isinstance(value, type) and value is not inspect.Parameter.empty:
            module = "numpy" if value.__module__ == "numpy" else value.__module__
            return cls(f"{module}.{value.__qualname__}")
        return value


def _init_signature(app, what, name, obj, options, signature, return_annotation):
    """Show ``__init__``'s parameters for operator classes.

    SciPy's LinearOperator defines ``__new__(cls, *args, **kwargs)``, which
    autodoc would otherwise show as the signature of every operator class.
    """
    if what not in ("class", "exception") or signature != "(*args, **kwargs)":
        return None
    try:
        sig = inspect.signature(obj.__init__)
    except (TypeError, ValueError):
        return None
    params = [
        p.replace(annotation=inspect.Parameter.empty, default=_Default.of(p.default))
        for p in list(sig.parameters.values())[1:]
    ]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty)), None


def setup(app):
    app.connect("autodoc-process-signature", _init_signature)
