"""Fused state updates of a population: one compiled kernel per step or per chunk of steps.

Mixed into :class:`~pysnn.neuron.population.Population`.  After :meth:`FusedSteps.fuse`,
a population's single step (spiking neurons) and its window of steps (inputs
and spiking neurons, :meth:`FusedSteps.run_window`) run as code compiled by
:func:`torch.compile` (:mod:`pysnn.fusion`): the eager step function itself,
traced, so nothing is written twice.  Fusion is for simulation without
gradients: a step that autograd records (see :meth:`FusedSteps._records_gradient`)
runs the eager step, with its surrogate gradients.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch

from pysnn import fusion

Tensor = torch.Tensor

__all__ = ["FusedSteps"]

#: what a population's step loop over a window returns: spikes, traces, recorded state
WindowResult = tuple[Tensor, Tensor, dict[str, Tensor]]


class FusedSteps:
    """Switch for compiled state updates, and the chunking of a window into compiled kernels."""

    #: steps per compiled chunk of a window after :meth:`fuse` (each chunk is one
    #: kernel; the compile time grows with it: about 10 s for 16 on CPU)
    FUSED_CHUNK: ClassVar[int] = 16

    _fusion: tuple[str | Callable, str | None] | None = None

    def fuse(
        self,
        enabled: bool = True,
        backend: str | Callable = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
    ) -> Any:
        """Run each step's state update as one compiled kernel (:mod:`pysnn.fusion`).

        Parameters
        ----------
        enabled : bool
            Switch fusion on (``True``) or back to the eager step (``False``).
        backend : str or callable
            ``torch.compile`` backend (default ``"inductor"``, which generates
            C++ on CPU and Triton on CUDA).
        mode : str, optional
            ``torch.compile`` mode, e.g. ``"max-autotune-no-cudagraphs"``.

        Returns
        -------
        Population
            ``self``, for chaining.

        Notes
        -----
        The compiled function is the eager step itself, so results are the
        same up to floating-point rounding of fused arithmetic (tested to give
        the same spikes).  The first step compiles; without a working compiler
        a :class:`RuntimeWarning` is emitted once and the eager step runs.
        Input validation stays outside the compiled region.
        """
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        if not (callable(backend) or (isinstance(backend, str) and backend)):
            raise TypeError(
                f"backend must be a torch.compile backend name or callable, got {backend!r}"
            )
        self.__dict__["_fusion"] = (backend, mode) if enabled else None
        return self

    def _records_gradient(self, x: Tensor) -> bool:
        """Whether autograd records this step: fused steps are for simulation without gradients.

        True when gradients are enabled and the input, a trainable parameter
        or a state variable requires them; the eager step runs then (its
        surrogate gradients are not compiled).
        """
        if not torch.is_grad_enabled():
            return False
        if x.requires_grad:
            return True
        buffers = self._buffers
        return any(buf is not None and buf.requires_grad for buf in buffers.values())

    @property
    def fused(self) -> bool:
        """Whether :meth:`fuse` is switched on."""
        return self._fusion is not None

    def run_window(
        self, steps_fn: Callable[..., WindowResult], window: Tensor, names: tuple[str, ...]
    ) -> WindowResult:
        """``steps_fn(self, window, names)`` over the window: compiled chunks after :meth:`fuse`.

        Every :attr:`FUSED_CHUNK` steps are one compiled kernel that carries the
        state through the chunk; the fewer steps left over run eagerly.
        ``steps_fn`` returns ``(spikes, traces, {name: stacked})`` for its steps.
        """
        steps, done, parts = int(window.shape[0]), 0, []
        if self._fusion is not None and not self._records_gradient(window):
            backend, mode = self._fusion
            chunk = self.FUSED_CHUNK
            while steps - done >= chunk:
                part = window[done : done + chunk]
                parts.append(
                    fusion.call_fused(steps_fn, self, part, names, backend=backend, mode=mode)
                )
                done += chunk
        if done < steps:
            parts.append(steps_fn(self, window[done:], names))
        if len(parts) == 1:
            return parts[0]
        spikes, traces = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return spikes, traces, {name: torch.cat([p[2][name] for p in parts]) for name in names}
