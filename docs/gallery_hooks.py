"""Hooks of the tutorial gallery (sphinx-gallery's ``reset_modules``), by qualified name."""

import warnings

#: PySNN's warnings about silent networks and samples started without a reset
STRICT_MESSAGES = (r"pysnn: .* fired no spike", r"step \d+: this step's input is a view")


def strict_tutorial_warnings(gallery_conf: dict, fname: str) -> None:
    """Before each tutorial: PySNN's warnings about silent networks and traps are errors.

    A tutorial whose network fires no spike, or that starts a sample without a
    reset, fails the docs build instead of printing a warning nobody reads.
    """
    for message in STRICT_MESSAGES:
        warnings.filterwarnings("error", message=message)
