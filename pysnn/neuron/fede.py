"""The neuron of Paredes-Vallés, Scheper & de Croon (TPAMI 2019)."""

from __future__ import annotations

from typing import ClassVar

import torch

from pysnn import functional as sf
from pysnn.neuron.parameters import Param
from pysnn.neuron.spiking import NEURON_PARAMS, BaseNeuron
from pysnn.neuron.validation import InputLike

Tensor = torch.Tensor

__all__ = ["FedeNeuron"]


class FedeNeuron(BaseNeuron):
    r"""Neuron of Paredes-Vallés et al. (TPAMI 2019), always forward-Euler.

    .. math::
        v \leftarrow v + \frac{\Delta t}{\tau_v}\left(-(v - v_{rest})
        + \alpha_v (I - X)\right)[r=0]

    with :math:`X` the summed presynaptic trace in the receptive field, passed
    as ``pre_trace`` to :meth:`forward`.

    Parameters
    ----------
    tau_v : float or Tensor
        Membrane time constant in ms (default 20).
    tau_t : float or Tensor
        Trace time constant in ms (default 20).

    Notes
    -----
    See :class:`~pysnn.neuron.BaseNeuron` for the other parameters.
    """

    params: ClassVar[tuple[Param, ...]] = NEURON_PARAMS + (
        Param("tau_v", 20.0, "time", doc="membrane time constant (ms)"),
    )
    fixed_integrator: ClassVar[str | None] = "euler"

    def integrate(self, state: dict[str, Tensor], x: Tensor, pre_trace: Tensor) -> dict[str, Tensor]:  # type: ignore[override]
        v = sf.fede_voltage_update(
            state["v_cell"],
            state["v_rest"],
            x,
            pre_trace,
            state["alpha_v"],
            state["tau_v"],
            self.dt,
            None,  # the population holds v while refractory
        )
        return {"v_cell": v}

    def forward(self, x: InputLike, pre_trace: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """Advance one step with input ``x`` and presynaptic trace ``pre_trace``.

        ``pre_trace`` is shaped like the input (already summed over the
        receptive field) or has one extra trailing synapse dimension, which is
        summed.
        """
        total, features = self._sum_input(x)
        if (
            isinstance(pre_trace, Tensor)
            and pre_trace.dim() == total.dim() + 1
            and pre_trace.shape[:-1] == total.shape
        ):
            pre_trace = pre_trace.sum(-1)
        pre_trace = self._check_like_input("pre_trace", pre_trace, total)
        # only now, with every argument checked, touch the state
        self._adopt_input(total, features)
        return self._advance(total, pre_trace)
