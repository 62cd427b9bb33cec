r"""PySNN 0.1, translated: the original spellings, recognised and rewritten once on the way in.

PySNN has one vocabulary: keyword arguments, time constants in ms, the exact
integrator by default (``integrator="exact"``), per-sample shapes (the batch
comes from the input).  Scripts written for PySNN 0.1 keep working -- and keep
their 0.1 results -- because their spellings are recognised here and
translated before the rest of the library sees them:

.. list-table::
   :header-rows: 1
   :widths: 50 50

   * - PySNN 0.1
     - today
   * - dynamics by position:
       ``LIFNeuron(shape, thresh, v_rest, alpha_v, alpha_t, dt, duration_refrac, tau_v, tau_t)``
     - keywords: ``LIFNeuron(shape, thresh=..., tau_v=20.0, integrator="exact")``
   * - ``update_type="linear"`` (the default of a 0.1-style call): ``tau_*`` are
       decay factors
     - ``integrator="impulse"`` with every ``tau_*`` a
       :class:`~pysnn.neuron.parameters.DecayFactor`
   * - ``update_type="exponential"``
     - ``integrator="euler"``
   * - ``update_type="exact"``
     - ``integrator="exact"``
   * - ``cells_shape=(B, 1, N)`` with the batch size
     - the per-sample shape ``(1, N)``
   * - ``Linear(in, out, batch_size, dt, delay)``
     - ``Linear(in, out, dt=..., delay=...)``
   * - ``Conv2d(in, out, k, im_dims, batch_size, dt, delay, stride, padding, dilation)``
     - ``Conv2d(in, out, k, im_dims=..., dt=..., delay=..., stride=..., ...)``
   * - ``MSTDPET(layers, a_pre, a_post, lr, e_trace_decay)``; ``STDP``/``MSTDP``
       ``a_pre``, ``a_post``
     - ``a_plus``, ``a_minus``, ``tau_e`` (ms)
   * - ``functional.trace_update(update_type, ...)``, ``lif_voltage_update``,
       ``thresh_update``
     - one function per integrator

**How a 0.1-style call is recognised.**  A population built with its dynamics
by position (anything after ``cells_shape``) or with ``update_type=`` is read
as PySNN 0.1 reads it: ``update_type`` defaults to ``"linear"``, so every
time constant is a decay factor per step (the 0.1 defaults 0.9 for ``tau_v``,
0.95 for ``tau_t``, 0.999 for ``tau_thresh``), and a shape with two or more
entries starts with the batch size -- unless the first input shows it is the
per-sample shape (``(C, H, W)``).  A call with keywords only is read in
today's vocabulary: ``LIFNeuron((10,), tau_v=20.0)`` is 20 ms, exact.
Populations added after 0.1 (synapse models, Izhikevich) take their
positional arguments as plain aliases of their keywords (:data:`LATER_ORDERS`).

The decay factors are kept as given (:class:`~pysnn.neuron.parameters.DecayFactor`),
so a 0.1 network computes with exactly the factors it was given.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from pysnn import functional as sf
from pysnn.neuron.parameters import DecayFactor
from pysnn.validation import check_shape_tuple

Tensor = torch.Tensor

__all__ = [
    "FACTOR_DEFAULTS",
    "LATER_ORDERS",
    "ORIGINAL_ORDERS",
    "RULE_ALIASES",
    "UPDATE_TYPES",
    "UPDATE_TYPE_ALIASES",
    "check_batch_size",
    "connection_arguments",
    "is_original_call",
    "lif_voltage_update",
    "population_arguments",
    "take_aliases",
    "thresh_update",
    "trace_update",
    "update_type_name",
]

#: PySNN 0.1 ``update_type`` names
UPDATE_TYPES = ("linear", "exponential", "exact")
#: PySNN 0.1 ``update_type`` names and the integrator each stands for
UPDATE_TYPE_ALIASES = {"linear": "impulse", "exponential": "euler", "exact": "exact"}
#: PySNN 0.1 default decay factors of the time constants under ``update_type="linear"``
FACTOR_DEFAULTS = {"tau_v": 0.9, "tau_t": 0.95, "tau_thresh": 0.999}

_HEAD = ("thresh", "v_rest", "alpha_v", "alpha_t", "dt", "duration_refrac")
_TAIL = ("update_type", "store_trace")
#: PySNN 0.1 positional orders of the populations (after ``cells_shape``), by class name
ORIGINAL_ORDERS: dict[str, tuple[str, ...]] = {
    "BaseInput": ("dt", "alpha_t", "tau_t", "update_type"),
    "BaseNeuron": _HEAD + ("tau_t",) + _TAIL,
    "LIFNeuron": _HEAD + ("tau_v", "tau_t") + _TAIL,
    "AdaptiveLIFNeuron": _HEAD + ("tau_v", "tau_t", "alpha_thresh", "tau_thresh") + _TAIL,
    "FedeNeuron": _HEAD + ("tau_v", "tau_t", "store_trace"),
}
#: positional orders of populations added after PySNN 0.1 (plain aliases of the keywords)
LATER_ORDERS: dict[str, tuple[str, ...]] = {
    "IzhikevichNeuron": ("a", "b", "c", "d", "thresh", "alpha_v", "alpha_t", "dt")
    + ("duration_refrac", "tau_t")
    + _TAIL,
    "ExponentialSynapse": ("tau_syn", "dt"),
    "ConductanceSynapse": ("tau_syn", "e_rev", "dt"),
}
#: earlier names of the learning rules' options (old -> new), by rule family
RULE_ALIASES: dict[str, dict[str, str]] = {
    "pair": {"a_pre": "a_plus", "a_post": "a_minus"},  # PySNN 0.1 (MSTDP, MSTDPET)
    "triplet": {"a2_plus": "a_plus", "a2_minus": "a_minus"},  # Pfister & Gerstner's names
}


def _order(cls: type) -> tuple[tuple[str, ...], bool]:
    """The positional order of ``cls`` and whether it is PySNN 0.1's (see the module docstring).

    A class that declares ``positional`` itself (a model written for an
    earlier release) keeps it, read as a 0.1 order.
    """
    for klass in cls.__mro__:
        if "positional" in klass.__dict__:
            return tuple(klass.__dict__["positional"]), True
        if klass.__module__.startswith("pysnn."):
            if klass.__name__ in ORIGINAL_ORDERS:
                return ORIGINAL_ORDERS[klass.__name__], True
            if klass.__name__ in LATER_ORDERS:
                return LATER_ORDERS[klass.__name__], False
    return (), False


def is_original_call(args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether a population's constructor call is spelled as in PySNN 0.1 (or by position)."""
    return bool(args) or "update_type" in kwargs


def update_type_name(integrator: str) -> str:
    """The PySNN 0.1 ``update_type`` of ``integrator`` (``"linear"``, ``"exponential"``, ``"exact"``)."""
    return {"impulse": "linear", "euler": "exponential"}.get(integrator, integrator)


def population_arguments(
    cls: type, cells_shape: Any, args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[tuple[int, ...], tuple[tuple[int, ...], int] | None, dict[str, Any]]:
    """Translate a 0.1-style population call into today's keywords.

    Returns ``(features, alternative, kwargs)``: the per-sample shape, the
    other reading of the shape with its batch size (``None`` when there is
    only one; the first input decides between them) and the keyword
    arguments (``integrator``, time constants as ``DecayFactor`` where they
    were decay factors).

    Raises
    ------
    TypeError
        For too many positional arguments, an argument given twice, or both
        ``update_type`` and ``integrator``.
    ValueError
        For an unknown ``update_type``.
    """
    order, original = _order(cls)
    name = cls.__name__
    if len(args) > len(order):
        raise TypeError(
            f"{name}: takes at most {len(order) + 1} positional arguments "
            f"(cells_shape, {', '.join(order)}), got {len(args) + 1}; today's spelling is "
            f"{name}(cells_shape, name=value, ...)"
        )
    values = dict(kwargs)
    for key, value in zip(order, args):
        if key in values:
            raise TypeError(f"{name}: got multiple values for argument {key!r}")
        values[key] = value
    shape = check_shape_tuple("cells_shape", cells_shape)
    update_type = values.pop("update_type", None)
    if update_type is not None and "integrator" in values:
        raise TypeError(
            f"{name}: give integrator (time constants in ms) or the PySNN 0.1 update_type, "
            "not both"
        )
    if getattr(cls, "fixed_integrator", None) is not None:
        if update_type is not None:
            raise TypeError(f"{name}: has no update_type (its integrator is fixed)")
    elif "integrator" not in values and (original or update_type is not None):
        # a 0.1 call defaults to "linear"; a later class keeps its own default
        update_type = update_type if update_type is not None or not original else "linear"
        if update_type not in UPDATE_TYPES:
            raise ValueError(f"update_type must be one of {UPDATE_TYPES}, got {update_type!r}")
        values["integrator"] = UPDATE_TYPE_ALIASES[update_type]
        if update_type == "linear" and original:
            for param in cls.params:
                if param.constraint != "time":
                    continue
                given = values.get(param.name)
                if given is None and param.name in FACTOR_DEFAULTS:
                    values[param.name] = DecayFactor(FACTOR_DEFAULTS[param.name])
                elif given is not None and not isinstance(given, DecayFactor):
                    values[param.name] = DecayFactor(given)
    if not original:
        return shape, None, values
    # PySNN 0.1 shapes start with the batch size; the first input may show otherwise
    alternative = None
    if len(shape) >= 2:
        shape, alternative = shape[1:], (shape, shape[0])
    return shape, alternative, values


def check_batch_size(value: Any, owner: str) -> None:
    """Check the ignored positional ``batch_size`` of PySNN 0.1 (``None`` or a positive int).

    A float here is almost always a ``dt`` or ``delay`` shifted by one
    position, which would otherwise be dropped silently.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{owner}: batch_size (the ignored positional argument kept from PySNN 0.1) "
            f"must be None or an int, got {value!r} ({type(value).__name__}); pass dt and "
            "delay by keyword, e.g. dt=1.0, delay=2.0"
        )
    if value < 1:
        raise ValueError(f"{owner}: batch_size must be a positive int or None, got {value}")


def connection_arguments(owner: str, order: Sequence[str], args: Sequence[Any]) -> dict[str, Any]:
    """The keywords of a connection's 0.1 positional arguments ``args`` (after its sizes).

    ``order`` names them; ``batch_size`` (ignored since the batch comes from
    the input) is checked and dropped.
    """
    if len(args) > len(order):
        raise TypeError(
            f"{owner}: takes at most {len(order)} positional arguments after its sizes "
            f"({', '.join(order)}), got {len(args)}"
        )
    out = {}
    for key, value in zip(order, args):
        if key == "batch_size":
            check_batch_size(value, owner)
            continue
        out[key] = value
    return out


def take_aliases(
    rule: str,
    values: dict[str, Any],
    options: dict[str, Any],
    aliases: Mapping[str, str],
    unset: Any = None,
) -> dict[str, Any]:
    """Move PySNN 0.1 names (``aliases``: old -> new) from ``options`` into ``values``.

    ``values`` maps new names to the given value or ``unset``; giving an
    alias together with its new name is a :class:`TypeError`.  Returns
    ``values`` with the aliases filled in (entries still ``unset`` are left).
    """
    out = dict(values)
    for old, new in aliases.items():
        if old in options:
            if out.get(new, unset) is not unset:
                raise TypeError(f"{rule}: give either {new!r} or its alias {old!r}, not both")
            out[new] = options.pop(old)
    return out


# ---------------------------------------------------------------------------
# functional: PySNN 0.1's dispatch by update_type (pysnn.functional re-exports them)
# ---------------------------------------------------------------------------
def trace_update(
    update_type: str,
    trace: Tensor,
    spikes: Tensor,
    alpha_t: Any,
    tau_t: Any,
    dt: Any,
    saturate: bool = False,
    decay: Tensor | None = None,
) -> Tensor:
    r"""The trace update of PySNN 0.1's ``update_type``.

    For ``"linear"``, ``tau_t`` is the decay factor :math:`\lambda_t`;
    ``decay`` is the optional precomputed factor of ``"exact"``.
    """
    if update_type == "linear":
        return sf.linear_trace_update(trace, spikes, alpha_t, tau_t, saturate)
    if update_type == "exponential":
        return sf.euler_trace_update(trace, spikes, alpha_t, tau_t, dt, saturate)
    return sf.exact_trace_update(trace, spikes, alpha_t, tau_t, dt, saturate, decay)


def lif_voltage_update(
    update_type: str,
    v: Tensor,
    v_rest: Any,
    x: Tensor,
    alpha_v: Any,
    tau_v: Any,
    dt: Any,
    refrac_counts: Tensor | None,
    gain: Tensor | None = None,
) -> Tensor:
    r"""The LIF update of PySNN 0.1's ``update_type`` (``tau_v`` is :math:`\lambda_v` for "linear").

    ``gain`` is the optional precomputed factor of ``"exact"``.
    """
    if update_type == "linear":
        return sf.lif_linear_voltage_update(v, v_rest, x, alpha_v, tau_v, refrac_counts)
    if update_type == "exponential":
        return sf.lif_euler_voltage_update(v, v_rest, x, alpha_v, tau_v, dt, refrac_counts)
    return sf.lif_exact_voltage_update(v, v_rest, x, alpha_v, tau_v, dt, refrac_counts, gain)


def thresh_update(
    update_type: str,
    thresh: Tensor,
    thresh_base: Any,
    spikes: Tensor,
    alpha_thresh: Any,
    tau_thresh: Any,
    dt: Any,
    decay: Tensor | None = None,
) -> Tensor:
    r"""The adaptive-threshold update of PySNN 0.1's ``update_type`` (a factor for "linear").

    ``decay`` is the optional precomputed factor of ``"exact"``.
    """
    if update_type == "linear":
        return sf.linear_thresh_update(thresh, thresh_base, spikes, alpha_thresh, tau_thresh)
    if update_type == "exponential":
        return sf.euler_thresh_update(thresh, thresh_base, spikes, alpha_thresh, tau_thresh, dt)
    return sf.exact_thresh_update(thresh, thresh_base, spikes, alpha_thresh, tau_thresh, dt, decay)
