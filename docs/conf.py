"""Sphinx configuration of the geoseg documentation (MyST Markdown pages).

Build it from the repository root::

    python -m sphinx -W -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

import geoseg  # noqa: E402  (after the path above: the checkout's geoseg)

project = "geoseg"
author = "geoseg contributors"
copyright = "geoseg contributors"
release = version = geoseg.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "sphinx_click",
    "geoseg_docs",  # docs/_ext: the config reference, the API coverage check
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# numpydoc sections; the docstrings' signatures carry the types
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}

# The docstrings' examples run under pytest (--doctest-modules, with their module's
# names); `sphinx-build -b doctest` runs the pages' own {doctest} and {testcode} blocks.
doctest_test_doctest_blocks = ""

html_theme = "alabaster"
html_title = f"geoseg {release}"
html_theme_options = {"description": "Unsupervised segmentation of satellite scenes"}
