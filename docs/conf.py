"""Sphinx configuration of the sklearn_dallmi documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` after
``pip install -e ".[docs]"``. The build is offline and takes seconds: the
gallery examples are rendered without being run (they run in the test
suite, ``tests/test_examples.py``).
"""

import os
from datetime import date

from sphinx_gallery.sorting import ExplicitOrder

import sklearn_dallmi

project = "sklearn_dallmi"
author = "the sklearn_dallmi developers"
copyright = f"{date.today().year}, {author}"
version = release = sklearn_dallmi.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "benchmark/tuning/README.md"]
default_role = "literal"

# -- API reference -----------------------------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
# The class template lists the methods through autodoc; numpydoc's own
# member tables would repeat them.
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- Links to other projects -------------------------------------------------

# Intersphinx downloads each project's inventory when the docs are built.
# There is no network on the project's machines and CI, where a failed
# download is a warning that -W turns into an error, so the links are only
# made when DALLMI_DOCS_ONLINE=1 is set. Offline, references to these
# projects render as plain text.
if os.environ.get("DALLMI_DOCS_ONLINE") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable", None),
    }
else:
    intersphinx_mapping = {}

# -- Examples gallery --------------------------------------------------------

# By default examples are rendered, not run: the build takes seconds. They
# run in tests/test_examples.py (short mode) instead. DALLMI_DOCS_RUN_EXAMPLES=1
# runs them in full during the build, so that the gallery shows their figures.
plot_gallery = "True" if os.environ.get("DALLMI_DOCS_RUN_EXAMPLES") == "1" else "False"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # _short.py is the examples' test-suite switch, not an example.
    "ignore_pattern": r"(^|[\\/])_[^\\/]*\.py$",
    "within_subsection_order": ExplicitOrder([
        "plot_quick_start.py",
        "plot_domain_adaptation.py",
        "plot_grid_search.py",
        "plot_pipeline_persistence.py",
        "plot_training_curve.py",
        "*",
    ]),
    "download_all_examples": False,
    "write_computation_times": False,
    "remove_config_comments": True,
}

# -- Markdown (benchmark.md, CHANGES.md) -------------------------------------

myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn_dallmi {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_show_sourcelink = False
