r"""The simulation engine: the one object that owns how a network runs.

Every :class:`~pysnn.network.SNNNetwork` has one :class:`Simulator`
(``net.simulator``), which owns

* the **clock**: the timestep ``dt`` (ms) shared by the network's modules
  (:attr:`Simulator.dt`: setting it re-derives every cached decay factor,
  refractory step count and delay in steps) and the step counter;
* the **state**: at the first step after construction or a reset it allocates
  the declared state of every module for the input's batch size
  (:meth:`Simulator.allocate`, the one place that adopts a batch size);
* the **transaction**: a step, a window of steps or a compiled chunk is
  atomic: if it raises, every module's state is put back as it was
  (:meth:`Simulator.transact`); with
  :meth:`~pysnn.network.SNNNetwork.check_finite` a window or chunk that leaves
  a non-finite value is replayed step by step, so the error names the step;
* the **hooks** of a run (:mod:`pysnn.hooks`): the silent-population
  warning, the progress bar and the monitors;
* the **strategies** of :meth:`Simulator.run`, over the one plan of the
  network's graph (:func:`pysnn.graph.plan`, walked by :func:`pysnn.graph.advance`):

  ``"step"``
      one ``net(x)`` per step (any network, any callback);
  ``"window"``
      population by population over windows of steps (:mod:`pysnn.window`),
      where that equals the step loop;
  ``"compiled"``
      chunks of steps, learning rules included, each compiled into one graph
      (:mod:`pysnn.compiled`), after :meth:`~pysnn.network.SNNNetwork.compile`.

  By default (``strategy=None``) a run takes the window strategy where it is
  exact, else the compiled one where it is switched on and pays
  (:func:`pysnn.compiled.worth_compiling`), else the step loop.
  A model-parallel network (:mod:`pysnn.parallel`) runs step by step: its
  spike exchange hooks into each step.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import torch
from torch import nn

from pysnn import autodiff, graph
from pysnn.clock import Clocked
from pysnn.hooks import ProgressBar, RunHook, SampleBoundaryWatch, SilenceWatch
from pysnn.safety import check_finite_values, commit, restore, snapshot
from pysnn.state import StatefulModule
from pysnn.validation import check_dt

Tensor = torch.Tensor

__all__ = ["Learning", "STRATEGIES", "Simulator"]

#: the strategies of :meth:`Simulator.run` (``None`` chooses)
STRATEGIES = ("step", "window", "compiled")


class Learning(NamedTuple):
    """The learning rules a run applies after every step, and their rewards.

    After each step, every rule with per-step state advances it
    (``rule.update_state()``) and applies its change (``rule.step(reward)``,
    with ``rewards[t]`` for the reward-modulated rules).
    """

    rules: tuple[nn.Module, ...]
    stateful: tuple[bool, ...]
    rewards: Tensor | None

    @classmethod
    def of(cls, network: nn.Module, rules: Any, rewards: Any, steps: int | None) -> Learning:
        """Check the ``rules`` and ``rewards`` arguments of :meth:`Simulator.run`."""
        from pysnn.learning.base import LearningRule, check_reward

        if rules is None or rules is False:
            chosen: tuple[nn.Module, ...] = ()
        elif rules is True:
            chosen = tuple(network.rules)
        elif isinstance(rules, LearningRule):
            chosen = (rules,)
        elif isinstance(rules, (list, tuple)) and all(isinstance(r, LearningRule) for r in rules):
            chosen = tuple(rules)
        else:
            raise TypeError(
                "rules must be None, True (the network's attached rules), a LearningRule or a "
                f"list of them, got {type(rules).__name__}"
            )
        needs = [type(r).__name__ for r in chosen if r.needs_reward]
        if rewards is not None:
            if not chosen:
                raise ValueError("rewards given without rules to apply them")
            if not isinstance(rewards, Tensor) or rewards.dim() not in (1, 2):
                raise TypeError(
                    "rewards must be a tensor [T] (one reward per step) or [T, batch], got "
                    + (
                        f"shape {tuple(rewards.shape)}"
                        if isinstance(rewards, Tensor)
                        else type(rewards).__name__
                    )
                )
            if steps is not None and int(rewards.shape[0]) != steps:
                raise ValueError(
                    f"rewards must hold one entry per step: got {int(rewards.shape[0])} for "
                    f"{steps} steps"
                )
            check_reward(rewards)
        elif needs:
            raise TypeError(f"{', '.join(needs)} needs rewards: run(..., rewards=[T] tensor)")
        stateful = tuple(
            type(r)._update_layer_state is not LearningRule._update_layer_state for r in chosen
        )
        return cls(chosen, stateful, rewards)

    def apply(self, step: int) -> None:
        """Advance and apply every rule after step ``step``."""
        rewards = self.rewards
        for rule, stateful in zip(self.rules, self.stateful):
            if stateful:
                rule.update_state()
            rule.step(rewards[step] if rewards is not None and rule.needs_reward else None)


class Simulator:
    """The engine of one network: clock, state, transaction, hooks and strategies.

    Created by :class:`~pysnn.network.SNNNetwork` (``net.simulator``); see the
    module docstring.

    Attributes
    ----------
    network : SNNNetwork
        The network it runs.
    step_index : int
        Steps since construction or the last reset (the next step's index).
    pending : bool
        The state is allocated at the next step (after construction or a reset).
    """

    def __init__(self, network: nn.Module) -> None:
        self.network = network
        self.step_index = 0
        self.pending = True
        self.finite_check = False
        # tensors found finite after the last step, id -> (tensor, version)
        self.finite_seen: dict[int, tuple[Tensor, int]] = {}
        self._plan: graph.StepPlan | None = None
        #: the compiled strategy (:mod:`pysnn.compiled`) after ``net.compile()``
        self.compiled: Any = None
        #: the spike exchange (:mod:`pysnn.parallel`) of a model-parallel network
        self.model_parallel: Any = None
        #: steps called by hand: a new sample without a reset warns
        self.boundary = SampleBoundaryWatch()
        self.in_run = False
        #: the strategy the last :meth:`run` took (``None`` before the first run)
        self.last_strategy: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["finite_seen"] = {}
        state["model_parallel"] = None  # a copy is not part of the process group's run
        if state["compiled"] is not None:  # compiled functions are recompiled, not copied
            state["compiled"] = state["compiled"].settings()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("model_parallel", None)
        self.__dict__.update(state)
        if isinstance(self.compiled, dict):
            from pysnn.compiled import CompiledRuns

            self.compiled = CompiledRuns(self, **self.compiled)

    # -- the plan ------------------------------------------------------------------
    @property
    def plan(self) -> graph.StepPlan:
        """The execution order of the network's graph (:func:`pysnn.graph.plan`), cached."""
        if self._plan is None:
            self._plan = graph.plan(self.network._layers.values())
        return self._plan

    def graph_changed(self) -> None:
        """Forget what was derived from the graph (the plan, compiled chunks)."""
        self._plan = None
        if self.compiled is not None:
            self.compiled.clear()

    # -- the clock -----------------------------------------------------------------
    def clocked(self) -> list[tuple[str, nn.Module]]:
        """``(name, module)`` of every module with a timestep ``dt``, outermost first."""
        return [
            (name, module)
            for name, module in self.network.named_modules()
            if isinstance(module, Clocked) and module is not self.network
        ]

    def check_clock(self, modules: Sequence[tuple[str, Any]] = ()) -> None:
        """Require one timestep for the network's modules and ``modules`` (``(label, module)``).

        Raises
        ------
        ValueError
            Naming the modules and their timesteps when they differ.
        """
        named = self.clocked() + [(label, m) for label, m in modules if isinstance(m, Clocked)]
        values = {label or "network": float(module.dt) for label, module in named}
        if len(set(values.values())) > 1:
            listing = ", ".join(f"{label}: {dt:g}" for label, dt in values.items())
            raise ValueError(
                f"the network's modules must share one timestep dt (ms), got {listing}; give "
                f"every module the same dt, or set net.dt after building the network"
            )

    @property
    def dt(self) -> float | None:
        """The timestep in ms of the network's modules (``None`` when none has one).

        Setting it sets the timestep of every module at once
        (:meth:`Clocked.set_dt <pysnn.clock.Clocked.set_dt>`: cached decay factors,
        refractory steps and delays in steps are re-derived; time constants,
        refractory periods and delays keep their values in ms).  Every module
        is checked before any changes.

        Raises
        ------
        ValueError
            On reading, if the modules disagree; on setting, for a ``dt`` that
            is not a positive finite number or that some module cannot take
            (a refractory period or delay that is not a whole number of the
            new steps); nothing changes then.
        """
        self.check_clock()
        modules = self.clocked()
        return float(modules[0][1].dt) if modules else None

    @dt.setter
    def dt(self, value: float) -> None:
        value = check_dt(value)
        modules = self.clocked()
        for name, module in modules:
            try:
                module.check_dt(value)
            except ValueError as err:
                raise ValueError(f"dt = {value} ms: {name}: {err}") from None
        for _, module in modules:
            module.set_dt(value)
        if self.compiled is not None:
            self.compiled.clear()

    # -- the state -----------------------------------------------------------------
    def reset(self) -> None:
        """Start a new run: step 0, state allocated at the next step."""
        self.pending = True
        self.step_index = 0
        self.boundary.reset()

    def allocate(self, args: Sequence[Any]) -> None:
        """At the first step after a reset: allocate the state for the input's batch size.

        Every fresh stateful module (population, synapse, connection) whose
        state has another batch size is reset to the batch size of the first
        tensor in ``args`` (a step without a tensor input waits for the next).
        Feedback connections read a population's spikes before that population
        has run in the step, so its state must already have the right size.
        The modules check the batch size and adopt the per-sample shape of
        their first input in :meth:`StatefulModule.ensure_state
        <pysnn.state.StatefulModule.ensure_state>`, the one place where that
        happens.
        """
        batch = _batch_of(args)
        if batch is None:
            return
        self.pending = False
        for module in self.network.modules():
            if isinstance(module, StatefulModule) and module.is_fresh:
                if module.batch_size != batch:
                    module.reset_state(batch)

    # -- the transaction -----------------------------------------------------------
    def transact(
        self,
        steps: int,
        fn: Callable[..., Any],
        *args: Any,
        inputs: Sequence[Any] = (),
        replay: Callable[[], Any] | None = None,
    ) -> Any:
        """Run ``fn(*args)`` (``steps`` steps of the network) as one transaction.

        Before, every module's attribute and buffer dicts and what the steps
        overwrite in place are saved (:func:`pysnn.safety.snapshot`); if
        ``fn`` or the finite check raises, all of it is put back and the
        exception propagates.  At the first step after a reset, the state is
        allocated for the batch size of ``inputs`` (the step's input, see
        :meth:`allocate`) inside the transaction.  With :meth:`check_finite` on, the state is
        checked after ``fn``; when a window (``steps > 1``) fails the check
        and ``replay`` is given, the state is put back and ``replay()`` runs
        the same steps one by one, so that the error names the failing step
        and leaves the state as it was before that step.
        """
        network = self.network
        saved = snapshot(network, steps)
        pending = self.pending
        try:
            if self.pending:
                self.allocate(inputs)
            out = fn(*args)
            if self.finite_check:
                check_finite_values(network, self.finite_seen)
        except FloatingPointError:
            restore(saved)
            self.pending = pending
            if replay is None or steps == 1:
                raise
            replay()
            raise RuntimeError(
                "replaying a window step by step did not reproduce its error"
            ) from None
        except BaseException:
            restore(saved)
            self.pending = pending
            raise
        commit(saved)
        self.step_index += steps
        return out

    def step(self, call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One timestep ``call(*args, **kwargs)`` (``net(x)``) as a transaction."""
        if not self.in_run:
            self.boundary.check(args, self.step_index)
        if kwargs:
            return self.transact(1, lambda: call(*args, **kwargs), inputs=args)
        return self.transact(1, call, *args, inputs=args)

    # -- checks --------------------------------------------------------------------
    def set_finite_check(self, enabled: bool) -> None:
        """Switch the finite check of :meth:`transact` on or off."""
        self.finite_check = enabled
        self.finite_seen = {}

    # -- running -------------------------------------------------------------------
    def choose(
        self,
        requested: str | None,
        inputs: Any,
        learning: Learning,
        callback: Any,
        gradient: bool = False,
    ) -> str:
        """The strategy of a run (see the module docstring).

        ``gradient``: the run is recorded for autograd
        (:func:`pysnn.autodiff.records_gradient`), which compiled chunks do not do.

        Raises
        ------
        ValueError
            If ``requested`` cannot run this network exactly, naming why.
        """
        from pysnn import compiled, window

        if requested == "step":
            return "step"
        if self.model_parallel is not None:
            if requested is not None:
                raise ValueError(
                    f"run(strategy={requested!r}) is not possible: the network is "
                    "model-parallel (pysnn.parallel), its spikes are exchanged between steps; "
                    "it runs with the step strategy"
                )
            return "step"
        if requested == "compiled" and gradient:
            raise ValueError(
                "run(strategy='compiled') is not possible: compiled chunks simulate without "
                "gradients, and this run is differentiable (gradients are enabled and a "
                "parameter or the input requires them); use strategy='window' or 'step', or "
                "run under torch.no_grad()"
            )
        if requested in (None, "window"):
            reason = window.obstacle(self, inputs, learning, callback)
            if reason is None:
                return "window"
            if requested == "window":
                raise ValueError(f"run(strategy='window') would not equal the step loop: {reason}")
        if requested == "compiled" or (
            requested is None and self.compiled is not None and not gradient
        ):
            reason = compiled.obstacle(self, inputs, learning, callback)
            if reason is None and requested is None:
                reason = compiled.worth_compiling(self, inputs)
            if reason is None:
                return "compiled"
            if requested == "compiled":
                raise ValueError(f"run(strategy='compiled') is not possible: {reason}")
        return "step"

    def run(
        self,
        inputs: Tensor | Iterable[Any],
        callback: Callable[[int, Any], None] | None = None,
        reset: bool = True,
        progress: bool = False,
        warn_silent: bool = True,
        strategy: str | None = None,
        rules: Any = None,
        rewards: Tensor | None = None,
        checkpoint: int | None = None,
    ) -> Tensor:
        """Step the network through ``inputs``; see :meth:`SNNNetwork.run <pysnn.network.SNNNetwork.run>`.

        The run is recorded for autograd where :func:`pysnn.autodiff.records_gradient`
        says so, and otherwise runs under :func:`torch.no_grad`.
        """
        steps = _check_run_inputs(inputs)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        for name, flag in (("progress", progress), ("warn_silent", warn_silent), ("reset", reset)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if strategy is not None and strategy not in STRATEGIES:
            raise ValueError(f"strategy must be None or one of {STRATEGIES}, got {strategy!r}")
        learning = Learning.of(self.network, rules, rewards, steps)
        if checkpoint is not None:
            _check_checkpoint(checkpoint, inputs, learning)
        gradient = autodiff.records_gradient(self.network, inputs)
        chosen = self.last_strategy = self.choose(strategy, inputs, learning, callback, gradient)
        if not gradient:  # the gradient-free simulation
            with torch.no_grad():
                return self._run(
                    inputs, steps, chosen, callback, reset, progress, warn_silent, learning
                )
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.enable_grad())
            if learning.rules:  # hybrid: rules change their weights in place between steps
                stack.enter_context(autodiff.rule_weights_saved_as_copies(learning.rules))
            return self._run(
                inputs, steps, chosen, callback, reset, progress, warn_silent, learning, checkpoint
            )

    def _run(
        self,
        inputs: Any,
        steps: int | None,
        chosen: str,
        callback: Callable[[int, Any], None] | None,
        reset: bool,
        progress: bool,
        warn_silent: bool,
        learning: Learning,
        checkpoint: int | None = None,
    ) -> Tensor:
        """:meth:`run` after the checks, by strategy ``chosen``."""
        from pysnn import compiled, window

        if reset:
            self.network.reset_state()
        hooks: list[RunHook] = []
        if warn_silent:
            hooks.append(SilenceWatch(self.network, _spiking_populations(self.network), "run()"))
        if progress:
            hooks.append(ProgressBar(steps))
        self.in_run = True
        try:
            if checkpoint is not None:

                def run_part(part: Tensor, start: int, first: bool) -> list[Tensor]:
                    seen = hooks if first else ()
                    if chosen == "window":
                        return window.run(self, part, seen)
                    return self.run_steps(part, learning, callback if first else None, seen, start)

                outputs = autodiff.run_checkpointed(self, inputs, checkpoint, run_part)
            elif chosen == "step":
                outputs = self.run_steps(inputs, learning, callback, hooks)
            elif chosen == "window":
                outputs = window.run(self, inputs, hooks)
            else:
                outputs = compiled.run(self, inputs, learning, hooks)
            if not outputs:
                raise ValueError("inputs is empty: nothing to run")
            result = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
            for hook in hooks:
                hook.finish(int(result.shape[0]))
        finally:
            self.in_run = False
            self.boundary.reset()
            for hook in hooks:
                hook.close()
        return result

    def run_steps(
        self,
        inputs: Iterable[Any],
        learning: Learning,
        callback: Callable[[int, Any], None] | None,
        hooks: Sequence[RunHook],
        start: int = 0,
    ) -> list[Tensor]:
        """The step strategy: one ``net(x)`` per step, then the rules, the callback and the hooks.

        ``start`` is the index (in the run) of the first step of ``inputs``;
        the rules' rewards and the callback see the run's step indices.
        Returns the outputs as one ``[T, ...]`` tensor in a list.
        """
        network, outputs = self.network, []
        for t, x in enumerate(inputs, start):
            out = network(x)
            if learning.rules:
                learning.apply(t)
            if callback is not None:
                callback(t, out)
            first = out[0] if isinstance(out, (tuple, list)) else out
            outputs.append(first)
            for hook in hooks:
                hook.after_step(t, first)
        return [torch.stack(outputs)] if outputs else []


def _batch_of(args: Sequence[Any]) -> int | None:
    """The batch size of the first tensor (or list of tensors) in ``args``."""
    for arg in args:
        if isinstance(arg, (list, tuple)) and arg and isinstance(arg[0], Tensor):
            arg = arg[0]
        if isinstance(arg, Tensor):
            return int(arg.shape[0]) if arg.dim() > 0 else None
    return None


def _check_run_inputs(inputs: Any) -> int | None:
    """Check ``run``'s inputs; returns the number of steps when known."""
    if isinstance(inputs, Tensor):
        if inputs.dim() < 2 or inputs.shape[0] == 0:
            raise ValueError(
                f"inputs must have shape [T, batch, ...] with T >= 1, got {tuple(inputs.shape)}"
            )
        return int(inputs.shape[0])
    if not isinstance(inputs, Iterable):
        raise TypeError(
            "inputs must be a tensor [T, batch, ...] or an iterable of per-step inputs, "
            f"got {type(inputs).__name__}"
        )
    return len(inputs) if hasattr(inputs, "__len__") else None


def _check_checkpoint(checkpoint: Any, inputs: Any, learning: Learning) -> None:
    """Check ``run``'s ``checkpoint`` (steps per recomputed part)."""
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, int) or checkpoint < 1:
        raise ValueError(f"checkpoint must be None or a positive int (steps), got {checkpoint!r}")
    if not isinstance(inputs, Tensor):
        raise TypeError("checkpoint needs a tensor input [T, batch, ...] (recomputed in parts)")
    if learning.rules:
        raise ValueError(
            "checkpoint cannot recompute steps with learning rules: the rules change the weights "
            "after every step, so a recomputed part would not be the part that ran"
        )


def _spiking_populations(network: nn.Module) -> dict[str, nn.Module]:
    from pysnn.neuron import BaseNeuron

    return {
        name: module for name, module in network.named_modules() if isinstance(module, BaseNeuron)
    }
