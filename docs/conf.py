"""Sphinx configuration of the saliency-widget docs site (built offline by ``bash scripts/docs.sh``).

Sphinx + MyST-NB + Furo: the guide pages are the Markdown files next to this one, the API
reference comes from the numpy docstrings (autodoc + napoleon), and the example notebooks are
rendered from the copies ``scripts/docs_notebooks.py`` executed into ``_generated/notebooks``
(no execution here). Nothing on the built site loads from the network: Furo uses the system
fonts and ships its scripts, MathJax is off (no page has math) and MyST-NB's ipywidgets scripts,
which come from a CDN by default, are replaced by the bundled manager (``_static/widgets``), which
draws the saved state of ipywidgets' own widgets (the classroom explorers); the explorer's saved
view (a picture, ``saliency_widget.widget.saved``) is what a notebook page shows of the explorer.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import saliency_widget  # noqa: E402

project = "saliency-widget"
author = "the saliency-widget authors"
copyright = "the saliency-widget authors, BSD-3-Clause"
release = version = saliency_widget.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# The guide pages are plain Markdown; the README links to them as files, the site as pages.
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "_generated/extra/**", "_generated/executed/**"]
myst_heading_anchors = 4
suppress_warnings = ["myst.header", "misc.highlighting_failure"]

# Notebooks: executed beforehand by scripts/docs_notebooks.py (in parallel, with a time budget), read as they are.
nb_execution_mode = "off"
# The ipywidgets manager that draws saved widget state: the bundled copy (default: require.js and the manager from a
# CDN). Only views of ipywidgets' own models reach the pages (scripts/docs_notebooks.py), so it loads no other module.
nb_ipywidgets_js: dict[str, dict[str, str]] = {"widgets/embed.js": {}}
nb_merge_streams = True

# API reference from the numpy docstrings.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

html_theme = "furo"
html_title = f"saliency-widget {release}"
html_static_path = ["_static"]
html_extra_path = ["_generated/extra"]  # the interactive report built by scripts/docs.sh
html_css_files = ["site.css"]
html_show_sourcelink = False
html_copy_source = False
# MathJax loads only on a page with math (none has); a local name, so such a page would fail the offline test, never call a CDN
mathjax_path = "_static/mathjax-not-bundled.js"
html_theme_options = {"navigation_with_keys": True}


def _repo_links(app: object, docname: str, source: list[str]) -> None:
    """Links from a guide page to the repository's Markdown files (``../benchmarks/results/*.md``) become downloads.

    On GitHub they open the file; here MyST would look for a page of the site, so ``path:`` makes it copy the file
    next to the site (``_downloads``) and link that.
    """
    source[0] = source[0].replace("](../", "](path:../")


def setup(app: object) -> None:
    """Connect the link rewrite above."""
    app.connect("source-read", _repo_links)  # type: ignore[attr-defined]
