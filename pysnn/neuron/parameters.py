r"""Declared neuron parameters and state: one declaration per model, full precision.

A neuron model declares its parameters (:class:`Param`), its state variables
(:class:`StateVar`) and its options (:class:`Option`) once, as class
attributes; :class:`~pysnn.neuron.population.Population` turns the
declaration into the constructor signature, the parameter buffers and the
state buffers.

**Time constants** are in ms everywhere.  A time constant may also be given
as its decay factor per step, :class:`DecayFactor` :math:`\lambda \in [0, 1]`:
it is converted once, at construction, to :math:`\tau = -\Delta t / \ln \lambda`
(:math:`\lambda = 1` gives :math:`\tau = \infty`, :math:`\lambda = 0` gives
:math:`\tau = 0`), and the given factor itself is used for the step while the
parameter and the timestep are unchanged, so that the factor is exact.

**Precision.** Every parameter keeps a float64 master copy: building a module
in float32 and calling ``.double()`` gives the same numbers as building it in
float64 (a parameter edited in place since is taken as it is).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, NamedTuple, Union

import torch

from pysnn import functional as sf
from pysnn.validation import as_parameter_tensor, user_stacklevel

Tensor = torch.Tensor
ParamLike = Union[float, int, Tensor]

__all__ = [
    "DecayFactor",
    "LinearODE",
    "Param",
    "StateVar",
    "Option",
    "check_integrator",
    "parameter_tensor",
]


class DecayFactor(NamedTuple):
    r"""A time constant given as its decay factor per step, :math:`\lambda = e^{-\Delta t/\tau}`.

    ``LIFNeuron((10,), tau_v=DecayFactor(0.9))`` is a membrane time constant of
    :math:`-\Delta t / \ln 0.9` ms (9.49 ms at ``dt = 1``) whose factor per
    step is exactly 0.9 while ``tau_v`` and ``dt`` are unchanged.

    Attributes
    ----------
    value : float or Tensor
        :math:`\lambda \in [0, 1]` (scalar or one per neuron).
    """

    value: Any


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
        (> 0, ``inf`` allowed; or a :class:`DecayFactor`).
    doc : str
        One line with the unit, for :meth:`Population.extra_repr` and the docs.
    """

    name: str
    default: float | str
    constraint: str = "any"
    doc: str = ""


class LinearODE(NamedTuple):
    r"""Declared first-order linear dynamics of a state variable, integrated by the population.

    .. math:: \tau \dot y = -(y - y_{rest}) + g\,I

    advanced over each step by the population's integrator (``"exact"``,
    ``"euler"`` or ``"impulse"``, see :mod:`pysnn.functional.integration`),
    for the step's input :math:`I`.  With ``tau=None`` the variable is a
    perfect integrator, :math:`y \leftarrow y + g\,I` per step.

    Attributes
    ----------
    tau : str or None
        Name of the time-constant parameter (ms); ``None``: no leak.
    rest : str or None
        Name of the resting-value parameter (``None``: 0).
    gain : str or None
        Name of the input-scaling parameter (``None``: 1).
    """

    tau: str | None = None
    rest: str | None = None
    gain: str | None = None


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
    refractory : {"free", "hold"}
        What the refractory period does to the variable: nothing (``"free"``,
        e.g. a recovery variable), or it keeps its value while the neuron is
        refractory (``"hold"``: the membrane voltage integrates no input).  The
        population applies it after the model's update: a model never gates
        its variables itself.
    ode : LinearODE, optional
        Declared linear dynamics: the population integrates the variable (a
        model then needs no ``integrate`` of its own for it).
    """

    name: str
    init: Union[str, float, Callable[[Any], Tensor]] = 0.0
    integer: bool = False
    shared: bool = False
    refractory: str = "free"
    ode: LinearODE | None = None


class Option(NamedTuple):
    """A non-numeric constructor option (a mode name or a flag)."""

    name: str
    default: Any
    choices: tuple[Any, ...] | None = None


def check_integrator(integrator: Any) -> str:
    """``integrator`` if it names an integrator (:data:`pysnn.functional.INTEGRATORS`).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if integrator not in sf.INTEGRATORS:
        raise ValueError(f"integrator must be one of {sf.INTEGRATORS}, got {integrator!r}")
    return integrator


def factor_to_time_constant(name: str, factor: Tensor, dt: float) -> Tensor:
    r""":math:`\tau = -\Delta t / \ln \lambda` (ms) for a decay factor :math:`\lambda \in [0, 1]`."""
    if not bool(((factor >= 0) & (factor <= 1)).all()):
        raise ValueError(
            f"{name} is given as a decay factor per step and must lie in [0, 1], got "
            f"{factor.tolist()}; give a time constant in ms as a number instead"
        )
    with torch.no_grad():
        log = torch.log(factor.to(torch.float64))
        return torch.where(log == 0, math.inf, -dt / log)


#: a time constant shorter than this fraction of the step is most likely in the wrong unit
IMPLAUSIBLE_TAU_STEPS = 0.1


def parameter_tensor(
    param: Param, value: ParamLike | DecayFactor | str | None, dt: float
) -> tuple[Tensor, Tensor | None]:
    """Validate a parameter value; returns its float64 master copy (ms) and the given factor.

    The factor is returned (float64) only for a time constant given as a
    :class:`DecayFactor`, else ``None``.  A time constant below
    :data:`IMPLAUSIBLE_TAU_STEPS` steps warns (:class:`RuntimeWarning`):
    time constants are in ms, and ``tau_v=0.02`` is most likely 20 ms given
    in seconds.
    """
    name = param.name
    if param.constraint == "time":
        if value is None:
            value = param.default
        if isinstance(value, DecayFactor):
            factor = as_parameter_tensor(name, value.value, torch.float64)
            return factor_to_time_constant(name, factor, dt), factor
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == math.inf:
            return torch.tensor(math.inf, dtype=torch.float64), None
        tau = as_parameter_tensor(name, value, torch.float64)
        if not bool((tau > 0).all()):
            raise ValueError(f"{name} is a time constant in ms and must be > 0, got {tau.tolist()}")
        if bool((tau < IMPLAUSIBLE_TAU_STEPS * dt).any()):
            warnings.warn(
                f"{name} = {float(tau.min()):g} ms is shorter than a tenth of the step dt = {dt} "
                f"ms: time constants are in ms (a value in seconds, e.g. 0.02 for 20 ms, is "
                f"1000 times too small)",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
        return tau, None
    if isinstance(value, DecayFactor):
        raise TypeError(f"{name} is not a time constant: a DecayFactor does not apply")
    if value is None:
        value = param.default
    master = as_parameter_tensor(name, value, torch.float64)
    if param.constraint == "positive" and not bool((master > 0).all()):
        raise ValueError(f"{name} must be > 0, got {master.tolist()}")
    if param.constraint == "non_negative" and not bool((master >= 0).all()):
        raise ValueError(f"{name} must be >= 0, got {master.tolist()}")
    return master, None
