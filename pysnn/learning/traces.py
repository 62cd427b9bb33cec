r"""Traces owned by a rule: its own pre- and postsynaptic time windows and pairing scheme.

With ``tau_plus`` (``tau_minus``) given, a pair-based rule keeps a presynaptic
(postsynaptic) trace of its own instead of reading the neurons' ``trace``:

.. math::
    x \leftarrow x\, e^{-\Delta t/\tau} + s \quad\text{(all-to-all)},\qquad
    x \leftarrow \begin{cases} 1 & s > 0 \\ x\, e^{-\Delta t/\tau} & \text{else}\end{cases}
    \quad\text{(nearest)}

updated exactly once per timestep (after the network step), for the
presynaptic spikes as they arrive at the synapses (``conn.arriving("spikes")``,
i.e. delayed by a connection-wide delay) and the postsynaptic ``neuron.spikes``.
Two rules can thus use different windows on the same populations.  Per-synapse
delays are not supported (the arriving spikes differ per synapse).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, cast

import torch

from pysnn.learning.base import run_state
from pysnn.learning.options import Hyper
from pysnn.network import Layer

Tensor = torch.Tensor

#: buffers of the rule-owned traces
TRACE_STATE = ("x_pre", "x_post")
#: hyper-parameters of the rule-owned traces (``None``: read the neurons' traces)
TRACE_DEFAULTS: dict[str, Any] = {"tau_plus": None, "tau_minus": None, "pairing": "all-to-all"}
PAIRINGS = ("all-to-all", "nearest")


def check_trace_options(group: dict, layer: Layer | None = None) -> None:
    """Check ``pairing``, ``tau_plus``, ``tau_minus`` (and the layer's delays)."""
    if group["pairing"] not in PAIRINGS:
        raise ValueError(f"pairing must be one of {PAIRINGS}, got {group['pairing']!r}")
    for name in ("tau_plus", "tau_minus"):
        tau = group[name]
        if tau is not None and not float(tau) > 0:
            raise ValueError(f"{name} must be positive (ms) or None, got {tau!r}")
    if layer is not None and group["tau_plus"] is not None and layer.connection.per_synapse_delay:
        raise NotImplementedError(
            f"layer {layer.name!r}: rule-owned presynaptic traces (tau_plus) are not supported "
            "with per-synapse delays; use tau_plus=None (the neurons' traces)"
        )


class PairTraces:
    """Mixin of rules that may own their pair traces: the buffers and the option checks.

    Put it before :class:`~pysnn.learning.LearningRule` in the bases; call
    :func:`pair_traces` once per timestep in the rule's update.
    """

    state_names: tuple[str, ...] = TRACE_STATE
    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("tau_plus", None, "positive", optional=True, doc="own presynaptic trace (ms)"),
        Hyper("tau_minus", None, "positive", optional=True, doc="own postsynaptic trace (ms)"),
        Hyper("pairing", "all-to-all", "choice", PAIRINGS, doc="pairing of the own traces"),
    )

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_trace_options(group)

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        check_trace_options(group, layer)


def _advance(state: dict, key: str, spikes: Tensor, tau: float, dt: float, nearest: bool) -> Tensor:
    x = run_state(state, key, spikes.shape, spikes)
    x.mul_(math.exp(-dt / tau))
    if nearest:
        x.masked_fill_(spikes > 0, 1.0)
    else:
        x.add_(spikes)
    state[key] = x
    return x


def pair_traces(layer: Layer, group: dict, state: dict, s_post: Tensor) -> tuple[Any, Tensor]:
    """Advance the rule-owned traces one step and return ``(pre, x_post)``.

    ``pre`` is ``"trace"`` (the neurons' trace, read by the connection) or the
    rule's presynaptic trace; ``x_post`` the postsynaptic trace (the neuron's,
    in the weight's dtype, or the rule's).  Call once per timestep.
    """
    tau_plus, tau_minus = group["tau_plus"], group["tau_minus"]
    conn = layer.connection
    nearest = group["pairing"] == "nearest"
    if tau_plus is None:
        pre: Any = "trace"
    else:
        check_trace_options(group, layer)
        dt = float(conn.dt)
        pre = _advance(state, "x_pre", conn.arriving("spikes"), tau_plus, dt, nearest)
    if tau_minus is None:
        x_post = cast(Tensor, layer.neuron.trace)
        dtype = conn.weight.dtype
        x_post = x_post if x_post.dtype == dtype else x_post.to(dtype)
    else:
        x_post = _advance(state, "x_post", s_post, tau_minus, float(conn.dt), nearest)
    return pre, x_post
