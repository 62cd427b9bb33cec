"""Sphinx configuration of the PySNN documentation.

The build runs offline (as in CI): intersphinx links to PyTorch and NumPy are
resolved only when ``PYSNN_DOCS_INTERSPHINX=1`` is set, since fetching the
inventories needs the network.  The tutorials in ``../tutorials`` are executed
by sphinx-gallery at every build (only changed scripts are rerun while
``docs/auto_tutorials`` exists); ``PYSNN_DOCS_SKIP_TUTORIALS=1`` renders them
without running them, and ``PYSNN_DOCS_THREADS`` sets PyTorch's thread count
for them (default 1).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)  # gallery_hooks

import torch  # noqa: E402

import pysnn  # noqa: E402

# The tutorials run in this process.  One intra-op thread keeps their run time
# steady on small shared machines, where PyTorch's threads would otherwise
# compete with other processes for the cores; PYSNN_DOCS_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("PYSNN_DOCS_THREADS", "1")))

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
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
nitpicky = False
# field names such as ``pre`` exist on several NamedTuples (Layer, ProjectionInfo)
suppress_warnings = ["ref.python"]
exclude_patterns = ["_build", "auto_tutorials/*.ipynb", "auto_tutorials/*.py"]

# -- intersphinx: only with the network ------------------------------------
# Without the variable the mapping is empty, so nothing is fetched and
# references such as :class:`torch.Tensor` stay plain text (no warning).
_PEERS = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "numpy": ("https://numpy.org/doc/stable", None),
}
intersphinx_mapping = _PEERS if os.environ.get("PYSNN_DOCS_INTERSPHINX") == "1" else {}
intersphinx_timeout = 10

# -- HTML ------------------------------------------------------------------
html_theme = "furo"
html_title = f"PySNN {release}"
html_static_path = ["_static"]
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# -- tutorials (sphinx-gallery) ---------------------------------------------


sphinx_gallery_conf = {
    "examples_dirs": "../tutorials",
    "gallery_dirs": "auto_tutorials",
    # every numbered script is a tutorial and is executed
    "filename_pattern": r"/\d\d_",
    "ignore_pattern": r"__init__\.py|/_",
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": "False" if os.environ.get("PYSNN_DOCS_SKIP_TUTORIALS") == "1" else "True",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "min_reported_time": 1,
    "show_memory": False,
    "matplotlib_animations": False,
    "capture_repr": ("_repr_html_",),
    # gallery_hooks.py (beside this file): PySNN's silent-network warnings are errors
    "reset_modules": ("matplotlib", "seaborn", "gallery_hooks.strict_tutorial_warnings"),
}


def _write_parameter_tables() -> None:
    """docs/_generated/params_<Model>.rst: each model's declared parameters (single source)."""
    from pysnn import neuron, synapse
    from pysnn.neuron import BaseInput, BaseNeuron, Population

    bases = (Population, BaseInput, BaseNeuron)
    out = os.path.join(os.path.dirname(__file__), "_generated")
    os.makedirs(out, exist_ok=True)
    models = [
        getattr(module, name)
        for module in (neuron, synapse)
        for name in module.__all__
        if isinstance(getattr(module, name), type)
        and issubclass(getattr(module, name), Population)
        and getattr(module, name) not in bases
    ]
    for model in models:
        rows = []
        for param in model.params:
            default = param.default
            if isinstance(default, str):
                default = f"``{default}``"
            rows.append((f"``{param.name}``", str(default), param.doc or ""))
        widths = [max(len(r[i]) for r in rows + [("name", "default", "meaning")]) for i in range(3)]
        rule = "  ".join("=" * w for w in widths)
        lines = [
            rule,
            "  ".join(h.ljust(w) for h, w in zip(("name", "default", "meaning"), widths)),
        ]
        lines.append(rule)
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        lines.append(rule)
        with open(os.path.join(out, f"params_{model.__name__}.rst"), "w") as handle:
            handle.write("\n".join(lines) + "\n")


_write_parameter_tables()
exclude_patterns.append("_generated")
