"""Sphinx configuration of the PySNN documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import pysnn  # noqa: E402

project = "PySNN"
author = "The PySNN developers"
copyright = "2026, The PySNN developers"
release = pysnn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
