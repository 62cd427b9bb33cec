"""The Izhikevich (2003) neuron."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence, cast

import torch

from pysnn import functional as sf
from pysnn.neuron.parameters import Option, Param, StateVar
from pysnn.neuron.spiking import FIXED_RESET_OPTIONS, SPIKE_STATE, BaseNeuron

Tensor = torch.Tensor

__all__ = ["IzhikevichNeuron"]


class IzhikevichNeuron(BaseNeuron):
    r"""Izhikevich (2003) neuron (voltage in mV, time in ms), forward-Euler.

    .. math::
        v &\leftarrow v + \Delta t\,(0.04 v^2 + 5 v + 140 - u + \alpha_v I)[r=0]\\
        u &\leftarrow u + \Delta t\, a (b v - u)\\
        v \ge v_{peak} &\Rightarrow s = 1,\; v \leftarrow c,\; u \leftarrow u + d

    Parameters
    ----------
    cells_shape : tuple of int
        Population shape.
    a, b, c, d : float or Tensor
        Izhikevich parameters (regular spiking: 0.02, 0.2, -65, 8).
    thresh : float or Tensor
        Spike peak :math:`v_{peak}` in mV.
    alpha_v, alpha_t, dt, duration_refrac, tau_t, store_trace, integrator
        As in :class:`~pysnn.neuron.BaseNeuron`; the integrator applies to the
        trace only (default ``"exact"``, ``tau_t`` in ms).

    Notes
    -----
    :math:`c` is the initial and reset voltage (also readable as ``v_rest``);
    :math:`u` starts at :math:`b c`.  Use ``dt <= 0.5`` ms for accuracy.

    The published cell classes of Izhikevich (2003, fig. 2) are in
    :attr:`PRESETS` and built with :meth:`preset`:

    =======  =============================  =====  ====  ===  ===
    name     firing pattern                 a      b     c    d
    =======  =============================  =====  ====  ===  ===
    ``RS``   regular spiking (adapting)     0.02   0.2   -65  8
    ``IB``   intrinsically bursting         0.02   0.2   -55  4
    ``CH``   chattering (repeated bursts)   0.02   0.2   -50  2
    ``FS``   fast spiking (no adaptation)   0.1    0.2   -65  2
    ``LTS``  low-threshold spiking          0.02   0.25  -65  2
    =======  =============================  =====  ====  ===  ===
    """

    #: published parameters (a, b, c, d) of Izhikevich (2003), fig. 2
    PRESETS: ClassVar[dict[str, tuple[float, float, float, float]]] = {
        "RS": (0.02, 0.2, -65.0, 8.0),
        "IB": (0.02, 0.2, -55.0, 4.0),
        "CH": (0.02, 0.2, -50.0, 2.0),
        "FS": (0.1, 0.2, -65.0, 2.0),
        "LTS": (0.02, 0.25, -65.0, 2.0),
    }

    @classmethod
    def preset(cls, name: str, cells_shape: Sequence[int] | int, **kwargs: Any) -> IzhikevichNeuron:
        """A population of the published cell class ``name`` (a key of :attr:`PRESETS`).

        ``kwargs`` are the other constructor arguments (``dt``, ``thresh``...).
        """
        if name not in cls.PRESETS:
            raise ValueError(f"name must be one of {tuple(cls.PRESETS)}, got {name!r}")
        a, b, c, d = cls.PRESETS[name]
        return cls(cells_shape, a=a, b=b, c=c, d=d, **kwargs)

    params: ClassVar[tuple[Param, ...]] = (
        Param("c", -65.0, doc="reset voltage (mV)"),
        Param("thresh", 30.0, doc="spike peak (mV)"),
        Param("alpha_v", 1.0, doc="input scaling"),
        Param("alpha_t", 1.0, doc="trace increment per spike"),
        Param("tau_t", 20.0, "time", doc="trace time constant (ms)"),
        Param("duration_refrac", 0.0, "non_negative", doc="refractory period (ms)"),
        Param("a", 0.02, doc="recovery rate (1/ms)"),
        Param("b", 0.2, doc="recovery sensitivity"),
        Param("d", 8.0, doc="recovery jump per spike"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (
        StateVar("v_cell", "c", refractory="hold"),
        StateVar("u", lambda m: m._buffers["b"] * m._buffers["c"]),
    ) + SPIKE_STATE
    options: ClassVar[tuple[Option, ...]] = FIXED_RESET_OPTIONS
    default_dt: ClassVar[float] = 0.5
    reset = "rest"

    @property
    def v_rest(self) -> Tensor:
        """Reset voltage :math:`c` in mV."""
        return cast(Tensor, self._buffers["c"])

    reset_name = "c"

    def integrate(self, state: dict[str, Tensor], x: Tensor) -> dict[str, Tensor]:
        args = (state["a"], state["b"], state["alpha_v"], self.dt, None)  # v held by the base
        v, u = sf.izhikevich_update(state["v_cell"], state["u"], x, *args)
        return {"v_cell": v, "u": u}

    def on_spike(self, new: dict[str, Tensor], spikes: Tensor) -> None:
        new["u"] = torch.addcmul(new["u"], spikes, self._buffers["d"])
