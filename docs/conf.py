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
# field names such as ``pre`` exist on several NamedTuples (Layer, ProjectionInfo)
suppress_warnings = ["ref.python"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]


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
            if param.constraint == "time" and param.legacy_default is not None:
                default = f"{default} (0.1 ``linear``: factor {param.legacy_default})"
            elif isinstance(default, str):
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
