"""Input populations: they pass spikes through and keep their trace."""

from __future__ import annotations

from typing import Sequence

import torch

from pysnn.neuron.population import Population
from pysnn.neuron.validation import InputLike
from pysnn.validation import mark_valid

Tensor = torch.Tensor

__all__ = ["BaseInput", "Input"]


class BaseInput(Population):
    """Base of input populations: spikes in, ``(spikes, trace)`` out."""

    def forward(self, x: InputLike) -> tuple[Tensor, Tensor]:
        """Take the spikes of this step (bool or 0/1 floats) and return ``(spikes, trace)``.

        ``x`` may be a list of spike tensors, summed into spike counts.  Raises a
        :class:`ValueError` for values other than 0 and 1 (graded inputs go to a
        neuron as current instead).
        """
        spikes, features = self._sum_input(x, allow_bool=True)
        parts = x if isinstance(x, (list, tuple)) else (x,)
        for i, part in enumerate(parts):
            self._check_spike_values(part, f"x[{i}]" if parts is x else "x")
        self._adopt_input(spikes, features)
        trace = self.update_trace(spikes)
        state = self._buffers
        state["spikes"] = spikes
        state["trace"] = trace
        mark_valid(spikes, trace)  # checked above: connections need not check them again
        return spikes, trace

    def advance_window(
        self, x: Tensor, record: Sequence[str] = ()
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """:meth:`forward_steps`, with the stacked ``"spikes"``/``"trace"`` in ``record`` too."""
        self._check_spike_values(x, "x")
        window = self._prepare_window(x, allow_bool=True)
        _, traces, _ = self.run_window(BaseInput._trace_steps, window, ())
        self._buffers["spikes"] = window[-1].clone()  # not a view of the whole window
        mark_valid(window, traces)
        stacked = {"spikes": window, "trace": traces}
        return window, traces, {name: stacked[name] for name in record}

    def _trace_steps(
        self, window: Tensor, names: tuple[str, ...] = ()
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """The trace over every step of ``window`` (unrolled into one kernel when fused)."""
        traces = []
        for spikes in window:
            trace = self.update_trace(spikes)
            self._buffers["trace"] = trace
            traces.append(trace)
        return window, torch.stack(traces), {}

    def _check_spike_values(self, part: object, name: str) -> None:
        # x * x == x only for 0 and 1 (NaN fails too): two kernels, no copy;
        # bool spikes (the usual case) need no check
        if (
            isinstance(part, Tensor)
            and part.dtype != torch.bool
            and part.is_floating_point()
            and bool(torch.ne(part * part, part).any())
        ):
            raise ValueError(
                f"{type(self).__name__}: {name} must hold spikes, bool or exactly 0.0/1.0; "
                f"got other values (a list of spike tensors is summed into counts)"
            )


class Input(BaseInput):
    r"""Input population: passes spikes through and keeps their trace.

    .. math:: x \leftarrow x\, e^{-\Delta t/\tau_t} + \alpha_t s

    (forward Euler with ``integrator="euler"``, see :mod:`pysnn.functional.trace`).

    Parameters
    ----------
    cells_shape : tuple of int
        Per-sample shape of the population, e.g. ``(784,)`` or ``(2, 34, 34)``.
    dt : float
        Timestep in ms.
    alpha_t : float or Tensor
        Trace increment per spike.
    tau_t : float, Tensor or DecayFactor
        Trace time constant in ms (default 20).
    trace_mode : {"additive", "saturating"}
        Add ``alpha_t`` per spike (all-to-all) or set the trace to ``alpha_t``
        (nearest spike).
    integrator : {"euler", "exact", "impulse"}, optional
        Integration scheme of the trace, time constants in ms.

    Examples
    --------
    >>> inp = Input((784,), dt=1.0, alpha_t=1.0, tau_t=20.0, integrator="exact")
    >>> spikes, trace = inp(torch.rand(32, 784) < 0.02)
    """
