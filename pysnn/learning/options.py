r"""Declared hyper-parameters of the learning rules: one declaration, checked everywhere.

A rule declares each of its hyper-parameters once, as a :class:`Hyper` in its
``hyperparameters`` class attribute (the options every rule shares, ``lr``,
``w_min``, ``w_max``, ``soft_bounds``, ``mask`` and ``reduction``, are
declared by :class:`~pysnn.learning.LearningRule` itself).  From the
declarations the base class

* checks every value when the rule is built, when a parameter group is
  edited (``rule.param_groups[0]["lr"] = ...``) and before every step (a
  tensor option may have been edited in place): :func:`check_hyper`;
* rejects an option it does not declare, naming the declared ones;
* writes ``repr(rule)`` and the table of hyper-parameters at the end of the
  rule's docstring (:func:`hyper_table`), which the API reference shows.

A new rule therefore cannot forget to validate an option: declaring it is
how the rule accepts it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, NamedTuple

import torch

Tensor = torch.Tensor

__all__ = ["CHECKS", "Hyper", "check_hyper", "hyper_table"]

#: the checks a :class:`Hyper` may declare, and what they accept
CHECKS = {
    "finite": "a finite number or tensor",
    "non_negative": "a finite number or tensor >= 0",
    "positive": "a finite number or tensor > 0",
    "unit": "a number in [0, 1]",
    "count": "an int >= 0",
    "time": "a time in ms >= 0 (inf allowed)",
    "bool": "True or False",
    "choice": "one of the choices",
    "any": "any value (checked by the rule)",
}


class Hyper(NamedTuple):
    """A declared hyper-parameter of a learning rule.

    Attributes
    ----------
    name : str
        Option name (a keyword of the rule and a key of its parameter groups).
    default : Any
        Default value.
    check : str
        One of :data:`CHECKS`.
    choices : tuple, optional
        The accepted values of ``check="choice"``.
    optional : bool
        ``None`` is accepted too (e.g. no bound, or "use the neurons' trace").
    doc : str
        One line with the unit, for the docs' table and error messages.
    """

    name: str
    default: Any
    check: str = "finite"
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    doc: str = ""


def _numbers(name: str, value: Any) -> Tensor | float:
    if isinstance(value, Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(
                f"{name} must be a real number or a real tensor, got dtype {value.dtype}"
            )
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{name} must be a real number or a tensor, got {type(value).__name__}")


def _all(condition: Tensor | bool) -> bool:
    return bool(condition.all()) if isinstance(condition, Tensor) else bool(condition)


def check_hyper(hyper: Hyper, value: Any) -> None:
    """Check ``value`` against the declaration ``hyper`` (nothing else changes).

    Raises
    ------
    TypeError
        For a value of the wrong type (naming the option and what it takes).
    ValueError
        For NaN, infinity or a value outside the declared range or choices.
    """
    name, check = hyper.name, hyper.check
    if value is None and hyper.optional:
        return
    if check == "any":
        return
    if check == "choice":
        if value not in (hyper.choices or ()):
            raise ValueError(f"{name} must be one of {hyper.choices}, got {value!r}")
        return
    if check == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
        return
    if check == "count":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        return
    number = _numbers(name, value)
    if check == "time":
        nan = bool(torch.isnan(number).any()) if isinstance(number, Tensor) else math.isnan(number)
        if nan or not _all(number >= 0):
            raise ValueError(f"{name} must be a time >= 0 ms (inf allowed), got {value}")
        return
    finite = torch.isfinite(number) if isinstance(number, Tensor) else math.isfinite(number)
    if not _all(finite):
        raise ValueError(f"{name} must be finite, got {value}")
    if check == "non_negative" and not _all(number >= 0):
        raise ValueError(f"{name} must be >= 0, got {value}")
    if check == "positive" and not _all(number > 0):
        raise ValueError(f"{name} must be > 0, got {value}")
    if check == "unit" and not _all(
        (number >= 0) & (number <= 1) if isinstance(number, Tensor) else 0 <= number <= 1
    ):
        raise ValueError(f"{name} must lie in [0, 1], got {value}")


def hyper_table(hypers: Iterable[Hyper]) -> str:
    """The reStructuredText table of declared hyper-parameters (name, default, accepts, meaning)."""
    rows = [("name", "default", "accepts", "meaning")]
    for h in hypers:
        accepts = CHECKS.get(h.check, h.check)
        if h.check == "choice":
            accepts = "one of " + ", ".join(repr(c) for c in h.choices or ())
        if h.optional:
            accepts += ", or None"
        rows.append((f"``{h.name}``", f"``{h.default!r}``", accepts, h.doc or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip(), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows[1:]]
    lines.append(rule)
    return "\n".join(lines)
