"""Sphinx configuration: the Markdown pages (MyST) and the API reference from the numpy-style docstrings."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

project = "bayescale"
author = "the bayescale developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" sections as fields: no duplicate entries beside autodoc members
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False}
html_theme = "alabaster"
html_title = "bayescale"
# docs link to files outside the site (benchmarks, examples); MyST checks only what it can resolve
suppress_warnings = ["myst.xref_missing"]
