r"""Reward-modulated STDP (Florian 2007): MSTDP and MSTDPET."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from pysnn import functional as sf
from pysnn.compat import RULE_ALIASES
from pysnn.learning.base import (
    UNSET,
    LearningRule,
    ParamGroup,
    Reward,
    all_layers,
    batch_view,
    run_state,
    take_aliases,
)
from pysnn.learning.options import Hyper
from pysnn.learning.traces import TRACE_STATE, PairTraces, pair_traces
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor

__all__ = ["MSTDP", "MSTDPET", "decay_to_tau", "tau_to_decay"]

_ALIASES = RULE_ALIASES["pair"]


def tau_to_decay(tau: float, dt: float) -> float:
    r"""Decay factor per step :math:`\lambda = e^{-\Delta t/\tau}` (0 for :math:`\tau = 0`)."""
    return 0.0 if tau == 0 else math.exp(-dt / tau)


def decay_to_tau(decay: float, dt: float) -> float:
    r"""Time constant :math:`\tau = -\Delta t / \ln \lambda` in ms (0 for 0, inf for 1)."""
    decay = float(decay)
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"e_trace_decay must be in [0, 1], got {decay}")
    if decay == 0.0:
        return 0.0
    return math.inf if decay == 1.0 else -dt / math.log(decay)


def _dt(layers: list[Layer]) -> float:
    dts = {float(layer.connection.dt) for layer in layers}
    if len(dts) != 1:
        raise ValueError(
            f"e_trace_decay is a factor per step and the layers have several dt {sorted(dts)}; "
            "give tau_e in ms instead"
        )
    return dts.pop()


class _RewardGroup(ParamGroup):
    aliases = _ALIASES
    converters = {
        "e_trace_decay": (
            "tau_e",
            lambda group, decay: decay_to_tau(decay, _dt(group["layers"])),
            lambda group, tau: tau_to_decay(tau, _dt(group["layers"])),
        )
    }


class _RewardSTDP(PairTraces, LearningRule):
    """Shared parts of MSTDP and MSTDPET: options, aliases, own traces, the STDP term."""

    group_class = _RewardGroup
    needs_reward = True

    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("a_plus", 1.0, doc="potentiation amplitude A+"),
        Hyper("a_minus", 1.0, doc="depression amplitude A-"),
    )

    def __init__(
        self,
        layers: Any,
        a_plus: Any,
        a_minus: Any,
        lr: float,
        extra: dict[str, Any],
        network: SNNNetwork | None,
        options: dict[str, Any],
    ) -> None:
        amp = take_aliases(
            type(self).__name__, dict(a_plus=a_plus, a_minus=a_minus), options, _ALIASES
        )
        defaults = {k: 1.0 if v is UNSET else v for k, v in amp.items()}
        super().__init__(layers, dict(**defaults, lr=lr, **extra), network=network, **options)

    def _stdp_terms(
        self,
        layer: Layer,
        group: dict,
        state: dict,
        post_factor: Tensor | None,
        per_batch: bool,
        out: Tensor | None = None,
        decay: float = 1.0,
    ) -> Tensor:
        r""":math:`A_+ C(s^{post} r, x^{pre}) - A_- C(x^{post} r, s^{pre})` (``r``: ``post_factor``).

        Added in place to ``out`` when given (``(batch, *weight.shape)`` for
        ``per_batch``, else the weight's shape), after multiplying it by
        ``decay``, otherwise to zeros.
        """
        conn = layer.connection
        s_post = self._post(layer, "spikes")
        pre, x_post = pair_traces(layer, group, state, s_post)
        if post_factor is not None:
            s_post, x_post = s_post * post_factor, x_post * post_factor
        if out is None:  # laid out like the weight, so that adding the change is one pass
            weight = conn.weight.detach()
            batch = int(s_post.shape[0])
            out = sf.per_batch_zeros(weight, batch) if per_batch else torch.zeros_like(weight)
        terms = [(s_post, pre, group["a_plus"]), (x_post, "spikes", -group["a_minus"])]
        return conn.accumulate_correlations(out, terms, per_batch, decay)


class MSTDP(_RewardSTDP):
    r"""Reward-modulated STDP without eligibility trace (Florian 2007), batched.

    .. math::
        \zeta_{b,ij}(t) = A_+\, s^{post}_{b,i}\, x^{pre}_{b,j}
                        - A_-\, x^{post}_{b,i}\, s^{pre}_{b,j},\qquad
        \Delta w_{ij} = \eta\, \frac{1}{B}\sum_b r_b\, \zeta_{b,ij}(t)

    (no :math:`1/B` for ``reduction="sum"``).  The reward :math:`r` is a scalar
    or one value per batch element; each element's STDP term is weighted by its
    own reward.  Computed with two matmuls (the rewards scale the postsynaptic
    factors), no per-synapse state.  Call :meth:`step` with the reward at every
    timestep, after the network step.  Traces as in :class:`~pysnn.learning.STDP`
    (the neurons', or the rule's own with ``tau_plus``/``tau_minus``).

    Parameters
    ----------
    layers
        Layers to train, see :class:`~pysnn.learning.LearningRule`.
    a_plus, a_minus : float
        Amplitudes :math:`A_\pm` of the pre-before-post and post-before-pre
        terms, default 1.0 (PySNN 0.1: ``a_pre``, ``a_post``).
    lr : float
        Learning rate :math:`\eta`.
    tau_plus, tau_minus, pairing
        Rule-owned traces, see :class:`~pysnn.learning.STDP`.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        a_plus: float = UNSET,
        a_minus: float = UNSET,
        lr: float = 1e-3,
        *,
        tau_plus: float | None = None,
        tau_minus: float | None = None,
        pairing: str = "all-to-all",
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        traces = dict(tau_plus=tau_plus, tau_minus=tau_minus, pairing=pairing)
        super().__init__(layers, a_plus, a_minus, lr, traces, network, options)

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        s_post = self._post(layer, "spikes")
        batch = s_post.shape[0]
        r = batch_view(self._reward(reward, batch, s_post), batch, s_post.dim())
        if self._frozen(layer):
            return
        dw = self._stdp_terms(layer, group, state, r, per_batch=False)
        self.apply_change(layer, group, dw=dw * self._scale(group, batch))


class MSTDPET(_RewardSTDP):
    r"""Reward-modulated STDP with eligibility trace (Florian 2007), batched.

    Every batch element :math:`b` keeps its own eligibility trace (a buffer of
    shape ``(batch, *weight.shape)``), updated by :meth:`update_state` once per
    timestep:

    .. math::
        e_{b,ij} \leftarrow e^{-\Delta t/\tau_e}\, e_{b,ij}
            + A_+\, s^{post}_{b,i}\, x^{pre}_{b,j}
            - A_-\, x^{post}_{b,i}\, s^{pre}_{b,j}

    and :meth:`step` applies the reward (a scalar or one value per element):

    .. math:: \Delta w_{ij} = \eta\, \frac{1}{B} \sum_b r_b\, e_{b,ij}

    (no :math:`1/B` for ``reduction="sum"``).  :math:`\tau_e` is the eligibility
    time constant in ms (0: no memory, inf: no decay).  In ``eval()`` mode the
    eligibility does not change.  Traces as in :class:`~pysnn.learning.STDP`.

    Parameters
    ----------
    layers
        Layers to train (PySNN 0.1: ``net.layer_state_dict()``), see
        :class:`~pysnn.learning.LearningRule`.
    a_plus, a_minus : float
        Amplitudes :math:`A_\pm`, default 1.0 (PySNN 0.1: ``a_pre``, ``a_post``).
    lr : float
        Learning rate :math:`\eta`.
    e_trace_decay : float, optional
        PySNN 0.1: the decay factor :math:`\lambda_e \in [0, 1]` per step,
        converted once to :math:`\tau_e = -\Delta t/\ln\lambda_e` with the
        layers' ``dt``; give either this or ``tau_e``.
    tau_e : float
        Eligibility time constant in ms (default 20).
    tau_plus, tau_minus, pairing
        Rule-owned traces, see :class:`~pysnn.learning.STDP`.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`~pysnn.learning.LearningRule`.
    """

    state_names = ("e",) + TRACE_STATE

    hyperparameters: ClassVar[tuple[Hyper, ...]] = (
        Hyper("tau_e", 20.0, "time", doc="eligibility time constant (ms)"),
    )

    def __init__(
        self,
        layers: Any,
        a_plus: float = UNSET,
        a_minus: float = UNSET,
        lr: float = 1e-3,
        e_trace_decay: float | None = None,
        *,
        tau_e: float | None = None,
        tau_plus: float | None = None,
        tau_minus: float | None = None,
        pairing: str = "all-to-all",
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        if e_trace_decay is not None:
            if tau_e is not None:
                raise TypeError("MSTDPET: give either 'tau_e' or its alias 'e_trace_decay'")
            tau_e = decay_to_tau(e_trace_decay, _dt(all_layers(layers, network)))
        tau_e = 20.0 if tau_e is None else float(tau_e)
        if not tau_e >= 0:
            raise ValueError(f"tau_e must be >= 0 (ms), got {tau_e}")
        extra = dict(tau_e=tau_e, tau_plus=tau_plus, tau_minus=tau_minus, pairing=pairing)
        super().__init__(layers, a_plus, a_minus, lr, extra, network, options)

    def eligibility(self, name: str) -> Tensor | None:
        """Eligibility trace ``(batch, *weight.shape)`` of layer ``name`` (None before a step)."""
        e = self.state[name]["e"]
        return None if e.numel() == 0 else e

    def _update_layer_state(self, layer: Layer, group: dict, state: dict) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        weight = conn.weight
        batch = int(self._post(layer, "spikes").shape[0])
        e = run_state(state, "e", (batch, *weight.shape), weight, per_sample_layout=True)
        decay = tau_to_decay(group["tau_e"], float(conn.dt))  # e <- decay * e + zeta, in place
        state["e"] = self._stdp_terms(layer, group, state, None, True, out=e, decay=decay)

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        e = state["e"]
        if e.numel() == 0 or self._frozen(layer):
            return
        batch = e.shape[0]
        r = self._reward(reward, batch, e)
        dw = sf.contract_batch(r * self._scale(group, batch), e)  # the weight's layout
        self.apply_change(layer, group, dw=dw)
