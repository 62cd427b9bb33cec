"""The adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005)."""

from __future__ import annotations

from typing import ClassVar

import torch

from pysnn import functional as sf
from pysnn.neuron.parameters import Option, Param, StateVar
from pysnn.neuron.spiking import FIXED_RESET_OPTIONS, SPIKE_STATE, BaseNeuron

Tensor = torch.Tensor

__all__ = ["AdExNeuron"]


class AdExNeuron(BaseNeuron):
    r"""Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005).

    .. math::
        C \dot v &= -g_L (v - E_L) + g_L \Delta_T\, e^{(v - V_T)/\Delta_T} - w + \alpha_v I\\
        \tau_w \dot w &= a (v - E_L) - w\\
        v \ge v_{peak} &\Rightarrow s = 1,\; v \leftarrow V_r,\; w \leftarrow w + b

    integrated with forward Euler (:func:`pysnn.functional.adex_update`; use
    ``dt <= 0.1`` ms near spike initiation).  Units: mV, ms, pF, nS, pA.  The
    defaults are the published parameters of Brette & Gerstner (2005, fig. 2):
    tonic spiking with adaptation.

    Parameters
    ----------
    cells_shape : tuple of int
        Population shape.
    v_rest : float or Tensor
        Leak reversal :math:`E_L` (mV), the initial voltage.
    thresh : float or Tensor
        Spike cut-off :math:`v_{peak}` (mV).
    v_reset : float or Tensor
        Reset voltage :math:`V_r` (mV).
    c_m, g_l : float or Tensor
        Membrane capacitance (pF) and leak conductance (nS).
    v_t, delta_t : float or Tensor
        Threshold :math:`V_T` and slope factor :math:`\Delta_T` of spike initiation (mV).
    a : float or Tensor
        Subthreshold adaptation coupling (nS).
    b : float or Tensor
        Spike-triggered adaptation increment (pA).
    tau_w : float or Tensor
        Adaptation time constant (ms).
    alpha_v : float or Tensor
        Input scaling: the current is :math:`\alpha_v I` pA.
    alpha_t, tau_t, dt, duration_refrac, store_trace, trace_mode
        As in :class:`~pysnn.neuron.BaseNeuron`; the trace decays exactly with ``tau_t`` (ms).
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("v_rest", -70.6, doc="leak reversal E_L (mV)"),
        Param("thresh", 20.0, doc="spike cut-off (mV)"),
        Param("v_reset", -70.6, doc="reset voltage V_r (mV)"),
        Param("c_m", 281.0, "positive", doc="membrane capacitance (pF)"),
        Param("g_l", 30.0, "non_negative", doc="leak conductance (nS)"),
        Param("v_t", -50.4, doc="spike-initiation threshold V_T (mV)"),
        Param("delta_t", 2.0, "positive", doc="slope factor (mV)"),
        Param("a", 4.0, doc="subthreshold adaptation (nS)"),
        Param("b", 80.5, doc="spike-triggered adaptation (pA)"),
        Param("tau_w", 144.0, "time", doc="adaptation time constant (ms)"),
        Param("alpha_v", 1.0, doc="input scaling (pA per unit)"),
        Param("alpha_t", 1.0, doc="trace increment per spike"),
        Param("tau_t", 20.0, "time", doc="trace time constant (ms)"),
        Param("duration_refrac", 0.0, "non_negative", doc="refractory period (ms)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (
        StateVar("v_cell", "v_rest", refractory="hold"),
        StateVar("w"),
    ) + SPIKE_STATE
    options: ClassVar[tuple[Option, ...]] = FIXED_RESET_OPTIONS
    fixed_integrator: ClassVar[str | None] = "exact"  # of the trace; v and w: forward Euler
    default_dt: ClassVar[float] = 0.1
    reset = "rest"

    def _euler_time_constants(self, masters: dict[str, Tensor]) -> dict[str, Tensor]:
        # v and w are always forward Euler: membrane tau_m = C / g_L and tau_w
        return {"c_m/g_l": masters["c_m"] / masters["g_l"], "tau_w": masters["tau_w"]}

    def integrate(self, state: dict[str, Tensor], x: Tensor) -> dict[str, Tensor]:
        names = ("v_rest", "c_m", "g_l", "v_t", "delta_t", "a", "tau_w", "alpha_v")
        v_rest, c_m, g_l, v_t, delta_t, a, tau_w, alpha_v = (state[name] for name in names)
        v, w = sf.adex_update(
            state["v_cell"],
            state["w"],
            x,
            v_rest,
            c_m,
            g_l,
            v_t,
            delta_t,
            a,
            tau_w,
            alpha_v,
            self.dt,
            None,
        )
        return {"v_cell": v, "w": w}

    def on_spike(self, new: dict[str, Tensor], spikes: Tensor) -> None:
        new["w"] = torch.addcmul(new["w"], spikes, self._buffers["b"])
