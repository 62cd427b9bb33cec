r"""Declared neuron parameters and state: one declaration per model, full precision.

A neuron model declares its parameters (:class:`Param`), its state variables
(:class:`StateVar`) and its options (:class:`Option`) once, as class
attributes; :class:`~pysnn.neuron.population.Population` turns the
declaration into the constructor signature, the parameter buffers and the
state buffers.

**Time constants** are in ms everywhere.  PySNN 0.1's ``update_type="linear"``
took decay factors :math:`\lambda` per step instead; such a factor is
converted once, at construction, to :math:`\tau = -\Delta t / \ln \lambda`
(:math:`\lambda = 1` gives :math:`\tau = \infty`, :math:`\lambda = 0` gives
:math:`\tau = 0`), and the given factor itself is used for the step while the
parameter is unchanged, so 0.1 networks give the same numbers as before.

**Precision.** Every parameter keeps a float64 master copy: building a module
in float32 and calling ``.double()`` gives the same numbers as building it in
float64 (a parameter edited in place since is taken as it is).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Union

import torch

from pysnn import functional as sf
from pysnn.validation import as_parameter_tensor

Tensor = torch.Tensor
ParamLike = Union[float, int, Tensor]

__all__ = ["Param", "StateVar", "Option", "resolve_integrator", "parameter_tensor"]


class Param(NamedTuple):
    """A model parameter: a number or one value per neuron, stored as a buffer.

    Attributes
    ----------
    name : str
        Argument and buffer name.
    default : float or str
        Default value (for time constants: in ms), or the name of an earlier
        parameter whose value is the default (``v_reset`` defaults to ``v_rest``).
    constraint : {"any", "positive", "non_negative", "time"}
        Check applied at construction; ``"time"`` marks a time constant in ms
        (> 0, ``inf`` allowed), given as a decay factor in [0, 1] under the
        PySNN 0.1 ``update_type="linear"``.
    legacy_default : float, optional
        Default decay factor of a time constant under ``update_type="linear"``.
    doc : str
        One line with the unit, for :meth:`Population.extra_repr` and the docs.
    """

    name: str
    default: float | str
    constraint: str = "any"
    legacy_default: float | None = None
    doc: str = ""


class StateVar(NamedTuple):
    """A state variable, allocated per batch element (or shared by the batch).

    Attributes
    ----------
    name : str
        Buffer name.
    init : str, float or callable
        Initial and reset value: a parameter name, a constant, or a function
        of the module returning a tensor that broadcasts to the population.
    integer : bool
        Stored as ``int64`` (e.g. refractory counters).
    shared : bool
        One value per neuron shared by the batch (homeostatic state, e.g. an
        adaptive threshold): not reset by ``reset_state()``.
    """

    name: str
    init: Union[str, float, Callable[[Any], Tensor]] = 0.0
    integer: bool = False
    shared: bool = False


class Option(NamedTuple):
    """A non-numeric constructor option (a mode name or a flag)."""

    name: str
    default: Any
    choices: tuple[Any, ...] | None = None


def resolve_integrator(
    update_type: str | None, integrator: str | None, default_update_type: str
) -> tuple[str, bool]:
    """The integrator name and whether time constants are given as PySNN 0.1 decay factors.

    Raises
    ------
    TypeError
        If both ``update_type`` (PySNN 0.1 name) and ``integrator`` are given.
    ValueError
        For an unknown name.
    """
    if integrator is not None:
        if update_type is not None:
            raise TypeError(
                "give integrator (time constants in ms) or the PySNN 0.1 update_type, not both"
            )
        if integrator not in sf.INTEGRATORS:
            raise ValueError(f"integrator must be one of {sf.INTEGRATORS}, got {integrator!r}")
        return integrator, False
    update_type = default_update_type if update_type is None else update_type
    if update_type not in sf.UPDATE_TYPES:
        raise ValueError(f"update_type must be one of {sf.UPDATE_TYPES}, got {update_type!r}")
    return sf.UPDATE_TYPE_ALIASES[update_type], update_type == "linear"


def factor_to_time_constant(name: str, factor: Tensor, dt: float) -> Tensor:
    r""":math:`\tau = -\Delta t / \ln \lambda` (ms) for a decay factor :math:`\lambda \in [0, 1]`."""
    if not bool(((factor >= 0) & (factor <= 1)).all()):
        raise ValueError(
            f"{name} is a decay factor (update_type='linear') and must lie in [0, 1], "
            f"got {factor.tolist()}"
        )
    with torch.no_grad():
        log = torch.log(factor.to(torch.float64))
        return torch.where(log == 0, math.inf, -dt / log)


def parameter_tensor(
    param: Param, value: ParamLike | None, dt: float, legacy_factor: bool
) -> tuple[Tensor, Tensor | None]:
    """Validate a parameter value; returns its float64 master copy (ms) and the given factor.

    The factor is returned (float64) only for a time constant given as a
    PySNN 0.1 decay factor, else ``None``.
    """
    name = param.name
    if param.constraint == "time":
        if value is None:
            value = param.legacy_default if legacy_factor else param.default
        if legacy_factor:
            factor = as_parameter_tensor(name, value, torch.float64)
            return factor_to_time_constant(name, factor, dt), factor
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == math.inf:
            return torch.tensor(math.inf, dtype=torch.float64), None
        tau = as_parameter_tensor(name, value, torch.float64)
        if not bool((tau > 0).all()):
            raise ValueError(f"{name} is a time constant in ms and must be > 0, got {tau.tolist()}")
        return tau, None
    if value is None:
        value = param.default
    master = as_parameter_tensor(name, value, torch.float64)
    if param.constraint == "positive" and not bool((master > 0).all()):
        raise ValueError(f"{name} must be > 0, got {master.tolist()}")
    if param.constraint == "non_negative" and not bool((master >= 0).all()):
        raise ValueError(f"{name} must be >= 0, got {master.tolist()}")
    return master, None
