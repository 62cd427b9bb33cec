r"""Hooks of a run: what the engine does after each step or window besides simulating.

:meth:`Simulator.run <pysnn.simulation.Simulator.run>` calls every hook after
each step (:meth:`RunHook.after_step`) or after each window or compiled chunk
of steps (:meth:`RunHook.after_window`), whichever strategy runs, and once at
the end (:meth:`RunHook.finish`).  The hooks of PySNN:

* :class:`SilenceWatch`: warn about spiking populations that fired no spike;
* :class:`ProgressBar`: a ``tqdm`` progress bar over the steps.

:class:`SampleBoundaryWatch` watches the steps a user calls one by one
(``net(x[t])``) for a new sample that starts without
:meth:`~pysnn.network.SNNNetwork.reset_state`.

The monitors (:mod:`pysnn.monitor`) record through their module's forward hook
in the step loop and from the stacked values of a window or chunk otherwise
(:meth:`StateMonitor.record_steps <pysnn.monitor.StateMonitor.record_steps>`);
:meth:`~pysnn.network.SNNNetwork.check_finite` is part of the engine's
transaction.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from pysnn.validation import user_stacklevel

Tensor = torch.Tensor

__all__ = ["ProgressBar", "RunHook", "SampleBoundaryWatch", "SilenceWatch"]


class RunHook:
    """Base of the hooks of a run; every method does nothing by default."""

    def after_step(self, step: int, output: Tensor) -> None:
        """After step ``step`` (counted from 0 in this run) with the network's ``output``."""

    def after_window(self, start: int, steps: int, spike_counts: dict[int, Tensor]) -> None:
        """After ``steps`` steps from ``start`` run as one window or compiled chunk.

        ``spike_counts`` maps ``id(population)`` to the number of spikes the
        population fired in those steps (a 0-dim tensor), for the populations
        of :attr:`counted`.
        """

    def finish(self, steps: int) -> None:
        """At the end of a successful run of ``steps`` steps."""

    def close(self) -> None:
        """At the end of every run, also one that raised (release what the hook holds)."""

    #: populations whose spike counts :meth:`after_window` needs
    counted: tuple[nn.Module, ...] = ()


class SilenceWatch(RunHook):
    """Counts the spikes of a network's spiking populations until each has fired once.

    One ``sum`` per still-silent population per step, checked (one sync) every
    :attr:`CHECK_EVERY` steps; populations that fired drop out, so an active
    network costs nothing after the first check.  :meth:`finish` warns
    (:class:`RuntimeWarning`, once per population and network) about every
    population that stayed silent.
    """

    CHECK_EVERY = 64

    def __init__(self, network: nn.Module, populations: dict[str, nn.Module], caller: str) -> None:
        self.network = network
        self.caller = caller
        warned = network.__dict__.setdefault("_warned_silent", set())
        self.counts = {
            name: (module, torch.zeros((), device=module._buffers["spikes"].device))
            for name, module in populations.items()
            if id(module) not in warned
        }
        self.steps = 0

    @property
    def counted(self) -> tuple[nn.Module, ...]:  # type: ignore[override]
        return tuple(module for module, _ in self.counts.values())

    def after_step(self, step: int, output: Tensor) -> None:
        if not self.counts:
            return
        for module, total in self.counts.values():
            total += module._buffers["spikes"].sum()
        self.steps += 1
        if self.steps % self.CHECK_EVERY == 0:
            self._drop_active()

    def after_window(self, start: int, steps: int, spike_counts: dict[int, Tensor]) -> None:
        for module, total in self.counts.values():
            count = spike_counts.get(id(module))
            if count is not None:
                total += count
        self.steps += steps
        self._drop_active()

    def _drop_active(self) -> None:
        self.counts = {k: v for k, v in self.counts.items() if not bool(v[1] > 0)}

    def finish(self, steps: int) -> None:
        warned = self.network.__dict__["_warned_silent"]
        for name, (module, total) in self.counts.items():
            if bool(total > 0):
                continue
            warned.add(id(module))
            warnings.warn(
                f"pysnn: {name!r} ({type(module).__name__}) fired no spike in {steps} steps of "
                f"{self.caller}; a freshly built network is often silent: initial weights are "
                f"signed and scaled by 1/sqrt(fan_in) (reset_weights), so check the weights' "
                f"sign and scale, alpha_v and the threshold against the input",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )


class ProgressBar(RunHook):
    """A ``tqdm`` bar over the steps of a run (nothing without ``tqdm``)."""

    def __init__(self, total: int | None) -> None:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar: Any = None
        else:
            self.bar = tqdm(total=total, desc="steps", unit="step")

    def after_step(self, step: int, output: Tensor) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def after_window(self, start: int, steps: int, spike_counts: dict[int, Tensor]) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class SampleBoundaryWatch:
    """Warn when a new sample starts without a reset, where that is detectable.

    A step loop written by hand, ``for t in range(T): net(x[t])``, feeds the
    network views of one tensor ``x``.  When consecutive steps' inputs are
    views of *different* tensors (``x[t]`` of one sample, then ``y[0]`` of
    the next) and :meth:`~pysnn.network.SNNNetwork.reset_state` was not called
    in between, the second sample would start from the voltages and traces
    the first left: this warns once per run (until the next reset).  Inputs
    that are not views (a tensor made fresh each step, as in closed-loop
    control) are never compared, and :meth:`~pysnn.network.SNNNetwork.run`
    resets by default (``reset=False`` continues on purpose, without this
    check).  Costs one attribute read per step.
    """

    def __init__(self) -> None:
        self.base_id: int | None = None
        self.warned = False

    def reset(self) -> None:
        """A new run: forget the last input."""
        self.base_id = None
        self.warned = False

    def check(self, args: tuple[Any, ...], step_index: int) -> None:
        """Before the step with index ``step_index`` called with ``args``."""
        first = args[0] if args else None
        if isinstance(first, (list, tuple)) and first:
            first = first[0]
        base = getattr(first, "_base", None)
        if base is None:
            self.base_id = None
            return
        previous, self.base_id = self.base_id, id(base)
        if previous is None or previous == self.base_id or self.warned or step_index == 0:
            return
        self.warned = True
        warnings.warn(
            f"step {step_index}: this step's input is a view of another tensor than the "
            "previous step's (a new sample?), but the network was not reset since: the new "
            "sample starts from the state the last one left. Call net.reset_state() "
            "between samples (net.run(x) resets by itself), or pass one recording as one "
            "tensor to continue it on purpose.",
            stacklevel=user_stacklevel(),
        )
