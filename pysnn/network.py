"""``SNNNetwork``: the base class of spiking networks.

A network subclasses :class:`SNNNetwork` like a ``torch.nn.Module``, creates
neurons and connections in ``__init__``, registers each (connection,
postsynaptic neuron) pair with :meth:`SNNNetwork.add_layer`, and implements
``forward`` as **one timestep**.  :meth:`SNNNetwork.run` steps it through a
sequence; :meth:`SNNNetwork.reset_state` clears the state between samples.

How a network runs (its clock, state allocation, the atomic step, the hooks
of a run and the strategies of :meth:`SNNNetwork.run`) is owned by its
:class:`~pysnn.simulation.Simulator`, ``net.simulator``.  A step is atomic:
when ``net(x)`` raises, every module's state is restored to what it was
before the call.  :meth:`SNNNetwork.check_finite` makes every step check the
state and parameters for NaN and infinity.  See ``docs/reliability.rst``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

import torch
from torch import nn

from pysnn import fusion, graph
from pysnn.fusion import is_compiling
from pysnn.monitor import monitors_of
from pysnn.neuron import BaseInput, BaseNeuron
from pysnn.safety import check_owner, claim
from pysnn.simulation import Simulator
from pysnn.state import StatefulModule

if TYPE_CHECKING:
    from typing_extensions import Self

Tensor = torch.Tensor

__all__ = ["CHECK_FINITE_DEFAULT", "Layer", "RuleHost", "SNNNetwork"]

#: whether new networks start with :meth:`SNNNetwork.check_finite` switched on
#: (the test suite sets it; off by default, where the check costs nothing)
CHECK_FINITE_DEFAULT = False


class Layer(NamedTuple):
    """A projection of the network graph: ``pre --connection--> [synapse] --> neuron``.

    Holds the live modules, so it stays valid after ``.to()``, ``.double()``
    or ``.cuda()``.  ``pre`` is the presynaptic population (``None`` when the
    layer was registered without it), ``synapse`` the optional synapse model
    between the connection and the postsynaptic ``neuron``, ``network`` the
    network the layer belongs to.
    """

    name: str
    connection: nn.Module
    neuron: nn.Module
    pre: nn.Module | None = None
    synapse: nn.Module | None = None
    network: Any = None

    @property
    def type(self) -> str:
        """The connection's ``kind`` (``"linear"``, ``"recurrent"``, ``"conv2d"``, ``"pool"``...).

        ``"custom"`` for a module that declares no ``kind``.
        """
        return str(getattr(self.connection, "kind", "custom"))


class RuleHost(nn.Module):
    """The learning rules attached to a network follow its reset, mode and device.

    A base of :class:`SNNNetwork`: rules are kept out of the module tree (and
    out of ``state_dict()``; save ``rule.state_dict()``), but ``train()``/``eval()``
    and ``.to()``/``.double()`` reach them, and :meth:`SNNNetwork.reset_state`
    resets them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rules: list[nn.Module] = []

    def attach_rule(self, rule: nn.Module) -> None:
        """Let ``rule`` follow this network: reset, ``train()``/``eval()`` and ``.to()``.

        Called by :class:`~pysnn.learning.LearningRule` for every network whose
        layers it trains; attaching twice is a no-op.  Rules are not submodules:
        ``net.state_dict()`` does not hold their state (save ``rule.state_dict()``).
        """
        if not isinstance(rule, nn.Module):
            raise TypeError(f"rule must be an nn.Module, got {type(rule).__name__}")
        if all(r is not rule for r in self._rules):
            self._rules.append(rule)
            rule.train(self.training)

    def detach_rule(self, rule: nn.Module) -> None:
        """Stop ``rule`` from following this network."""
        self._rules = [r for r in self._rules if r is not rule]

    @property
    def rules(self) -> tuple[nn.Module, ...]:
        """The learning rules attached to this network."""
        return tuple(self._rules)

    def train(self, mode: bool = True) -> Self:
        """Set training mode of the modules and of the attached rules (``eval()`` freezes them)."""
        super().train(mode)
        for rule in self._rules:
            rule.train(mode)
        return self

    def _apply(self, fn, recurse=True):
        # .to(), .double(), .cuda() reach the attached rules' state as well
        out = super()._apply(fn, recurse)
        for rule in self._rules:
            rule._apply(fn, recurse)
        return out


class SNNNetwork(RuleHost):
    """Base class of spiking networks; ``forward`` computes one timestep.

    Examples
    --------
    >>> import torch
    >>> from pysnn.connection import Linear
    >>> from pysnn.neuron import Input, LIFNeuron
    >>> class Net(SNNNetwork):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.input = Input((784,), dt=1.0, alpha_t=1.0, tau_t=0.9)
    ...         self.fc = Linear(784, 100)
    ...         self.lif = LIFNeuron((100,))
    ...         self.add_layer("fc", self.fc, self.lif)
    ...     def forward(self, x):
    ...         s, t = self.input(x)
    ...         s, t = self.fc(s, t)
    ...         return self.lif(s)[0]
    >>> Net().run(torch.rand(50, 8, 784) < 0.05).shape   # [T, B, 100]
    torch.Size([50, 8, 100])
    """

    def __init__(self) -> None:
        super().__init__()
        self._layers: OrderedDict[str, Layer] = OrderedDict()
        simulator = self.__dict__["_simulator"] = Simulator(self)
        simulator.set_finite_check(bool(CHECK_FINITE_DEFAULT))

    @property
    def simulator(self) -> Simulator:
        """The engine that runs this network (clock, state, transaction, hooks, strategies)."""
        return self.__dict__["_simulator"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """One timestep, atomic: if anything raises, every module's state is restored.

        See :meth:`Simulator.transact <pysnn.simulation.Simulator.transact>`:
        before the step each submodule's buffer dict and plain attributes are
        copied (state updates rebind buffers), and stateful modules keep what
        the step overwrites in place (one ring-buffer slot per delayed
        connection).  When the step raises (bad input reaching a later module,
        or :meth:`check_finite`'s :class:`FloatingPointError`), all of it is
        put back and the exception propagates.  Learning rules and monitors
        are outside the step and not restored.
        """
        if is_compiling():  # inside a compiled chunk: the chunk is the transaction
            # (and no self.__dict__ access: dynamo would walk the step's snapshot cache)
            return super().__call__(*args, **kwargs)
        return self.__dict__["_simulator"].step(super().__call__, args, kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_tree", None)  # the step's cache refers to this network's own dicts
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # copy.deepcopy and unpickling: the copy's graph holds the copied modules
        state.pop("_tree", None)
        super().__setstate__(state)
        for layer in self.__dict__.get("_layers", {}).values():
            claim(self, layer, steal=False)

    @property
    def step_index(self) -> int:
        """Steps taken since construction or the last :meth:`reset_state` (the next step's index)."""
        return self.__dict__["_simulator"].step_index

    # -- checks ------------------------------------------------------------------
    def check_finite(self, enabled: bool = True) -> SNNNetwork:
        """Check every state buffer and parameter for NaN and infinity after each step.

        When on, every ``net(x)`` ends with a check of the floating-point
        buffers and parameters of all submodules (tensors unchanged since the
        last check, such as weights between rule updates, are skipped by their
        version counter).  A time constant may be ``inf`` (no decay); NaN is
        rejected everywhere.  At the first step that leaves something
        non-finite, the state is restored to before that step and a
        :class:`FloatingPointError` names the module path, the tensor and the
        step index (steps since :meth:`reset_state`, counting from 0).  Off by
        default, where it costs nothing; :data:`CHECK_FINITE_DEFAULT` sets the
        default of new networks.

        Parameters
        ----------
        enabled : bool
            Switch the check on (``True``) or off.

        Returns
        -------
        SNNNetwork
            ``self``, for chaining.

        Raises
        ------
        TypeError
            If ``enabled`` is not a bool.
        """
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        self.simulator.set_finite_check(enabled)
        return self

    @property
    def checks_finite(self) -> bool:
        """Whether :meth:`check_finite` is switched on."""
        return self.simulator.finite_check

    # -- graph -------------------------------------------------------------------
    def add_layer(
        self,
        name: str,
        connection: nn.Module,
        neuron: nn.Module,
        pre: nn.Module | None = None,
        *,
        synapse: nn.Module | None = None,
    ) -> None:
        """Register the projection ``pre --connection--> [synapse] --> neuron`` as layer ``name``.

        Learning rules, :meth:`summary` and the default :meth:`forward` find
        the network's projections here.  Modules not yet assigned as
        attributes are registered as submodules ``{name}_connection``,
        ``{name}_neuron`` (and ``{name}_pre``, ``{name}_synapse``).

        Parameters
        ----------
        name : str
            Layer name (no ``"."``).
        connection : nn.Module
            The connection (weights, delays, pooling...).
        neuron : nn.Module
            The postsynaptic population.
        pre : nn.Module, optional
            The presynaptic population.  Needed by the default :meth:`forward`
            and by exporters; PySNN 0.1 networks, which write ``forward``,
            may leave it out.
        synapse : nn.Module, optional
            Synapse model between the connection and the neuron (e.g.
            :class:`~pysnn.synapse.ExponentialSynapse`); ``None`` is a delta synapse.

        Raises
        ------
        TypeError
            If ``name`` is not a string, a module is not an ``nn.Module``, or
            ``connection`` and ``neuron`` are given in swapped order.
        KeyError
            If ``name`` is empty, contains ``"."`` or is already used.
        ValueError
            If a module already belongs to the graph of another network (one
            module may serve several layers of the same network; a module that
            is only assigned as an attribute elsewhere does not count).
        """
        if not isinstance(name, str):
            raise TypeError(f"layer name must be a str, got {type(name).__name__}")
        if not name:
            raise KeyError("layer name cannot be an empty string")
        if "." in name:
            raise KeyError(f'layer name cannot contain ".", got {name!r}')
        if name in self._layers:
            raise KeyError(f"layer {name!r} already exists")
        parts = {"connection": connection, "neuron": neuron, "pre": pre, "synapse": synapse}
        for label, module in parts.items():
            if module is not None and not isinstance(module, nn.Module):
                raise TypeError(f"{label} must be an nn.Module, got {type(module).__name__}")
        graph.check_roles(connection, neuron, pre)
        graph.check_capabilities(name, connection, neuron, pre, synapse)
        self.simulator.check_clock(
            [(f"{name}.{label}", m) for label, m in parts.items() if m is not None]
        )
        for label, module in parts.items():
            if module is not None:
                check_owner(self, name, label, module)
        known = {id(m) for m in self.modules()}
        for label, module in parts.items():
            if module is not None and id(module) not in known:
                self.add_module(f"{name}_{label}", module)
                known.add(id(module))
        layer = self._layers[name] = Layer(name, connection, neuron, pre, synapse, self)
        claim(self, layer, steal=True)
        self.simulator.graph_changed()
        self.__dict__.pop("_tree", None)

    def connect(
        self,
        pre: nn.Module,
        connection: nn.Module,
        post: nn.Module,
        name: str | None = None,
        *,
        synapse: nn.Module | None = None,
    ) -> Layer:
        """Register the projection ``pre --connection--> post``; returns its :class:`Layer`.

        The graph-first spelling of :meth:`add_layer`.  ``name`` defaults to
        the connection's attribute name in the network, else ``"layer{k}"``.
        """
        if name is None:
            name = next(
                (key for key, module in self.named_children() if module is connection),
                f"layer{len(self._layers)}",
            )
        self.add_layer(name, connection, post, pre, synapse=synapse)
        return self._layers[name]

    @property
    def layers(self) -> OrderedDict[str, Layer]:
        """Live registry of layers, name → :class:`Layer`, in registration order."""
        return OrderedDict(self._layers)

    @property
    def graph(self) -> list[graph.ProjectionInfo]:
        """The projections with their shapes, delays and synapse counts, in registration order."""
        names = graph.module_names(self)
        return [graph.describe(layer, names) for layer in self._layers.values()]

    def summary(self) -> str:
        """A table of the projections and populations with parameter and state sizes.

        Returns the text (print it); see :func:`pysnn.graph.summary`.
        """
        return graph.summary(self)

    def layer_state_dict(self) -> OrderedDict[str, dict[str, Any]]:
        """Per-layer state, in the PySNN 0.1 format.

        Returns
        -------
        OrderedDict
            ``name -> {"connection": state_dict, "neuron": state_dict, "type": str,
            "layer": Layer}``; ``"layer"`` holds the live modules, which is what
            :mod:`pysnn.learning` uses.
        """
        out: OrderedDict[str, dict[str, Any]] = OrderedDict()
        for name, layer in self._layers.items():
            out[name] = {
                "connection": layer.connection.state_dict(),
                "neuron": layer.neuron.state_dict(),
                "type": layer.type,
                "layer": layer,
            }
        return out

    # -- state -------------------------------------------------------------------
    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset the state of every stateful submodule and attached learning rule.

        Voltages, traces, delay lines, synaptic currents and the rules' per-step
        state (eligibility, private traces) are reset; submodules without state
        (plain ``nn.Module``) are skipped; other modules with their own
        ``reset_state()`` are reset too.  Monitors of the network's modules
        forget their recording (unless built with ``reset_with_network=False``).
        """
        self.simulator.reset()
        self.__dict__.pop("_tree", None)
        for module in self.modules():
            for monitor in monitors_of(module):
                monitor.reset()
            if module is self:
                continue
            if isinstance(module, StatefulModule):
                module.reset_state(batch_size)
            elif not isinstance(module, SNNNetwork) and callable(
                getattr(module, "reset_state", None)
            ):
                module.reset_state()
        for rule in self._rules:
            rule.reset_state()

    def detach_state(self) -> None:
        """Cut the autograd graph behind the current state (truncated backpropagation through time).

        Every state tensor keeps its value but no longer carries the history
        of the steps before: run the next part of a sequence with
        ``run(part, reset=False)`` and its gradients stop here.  See
        :mod:`pysnn.autodiff`.
        """
        from pysnn.autodiff import detach_state

        detach_state(self)

    # -- default step ------------------------------------------------------------
    def forward(self, *inputs: Any) -> Any:
        """One timestep of the registered graph (used when a subclass writes no ``forward``).

        Populations that are never postsynaptic are the inputs: they take the
        arguments in registration order.  The other populations are updated in
        topological order of the feedforward projections; each receives the sum
        of its incoming projections.  A projection whose presynaptic population
        is updated later in the step (a feedback or recurrent connection) reads
        that population's spikes and trace of the **previous** step.  Returns
        the spikes of the populations that are never presynaptic (one tensor, or
        a tuple in registration order; in a closed loop, the last population updated).  See :func:`pysnn.graph.plan`.
        """
        return graph.step(self.simulator.plan, inputs)

    # -- fused execution -----------------------------------------------------------
    def fuse(
        self,
        enabled: bool = True,
        backend: str | Callable[..., Any] = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
    ) -> SNNNetwork:
        """Switch fused (compiled) state updates on or off for every neuron population.

        Calls :meth:`fuse <pysnn.neuron.fused.FusedSteps.fuse>` on each spiking
        neuron and input population (whose trace over a window of steps is
        then one kernel per chunk); see :mod:`pysnn.fusion`.  Returns ``self``.
        """
        for module in self.modules():
            if isinstance(module, (BaseNeuron, BaseInput)):
                module.fuse(enabled, backend, mode)
        return self

    # -- compiled execution ----------------------------------------------------------
    def compile(  # type: ignore[override]
        self,
        enabled: bool = True,
        backend: str | Callable[..., Any] = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
        chunk: int | None = None,
    ) -> SNNNetwork:
        """Switch compiled runs on (or off): the fast path of :meth:`run`.

        After ``net.compile()``, :meth:`run` simulates in compiled chunks of
        steps, learning rules included, each chunk one graph
        (:mod:`pysnn.compiled`; CUDA graphs on CUDA), wherever the window
        strategy does not apply and compiling pays (not above
        :data:`pysnn.compiled.AUTO_MAX_SYNAPSE_SAMPLES` batch x weights per
        step, where the eager loop's event-driven paths are as fast; pass
        ``run(..., strategy="compiled")`` to compile anyway); the populations' updates are fused
        (:meth:`fuse`) for windows and single steps.  Spikes and weights equal
        the eager run's (up to the rounding of fused arithmetic).  The first
        chunks compile (seconds to a minute per network configuration).
        Unlike :meth:`torch.nn.Module.compile`, ``net(x)`` itself stays eager.

        Parameters
        ----------
        enabled : bool
            Switch on (``True``) or back to eager runs (``False``).
        backend : str or callable
            ``torch.compile`` backend (``"inductor"``; ``"aot_eager"`` checks
            the capture without generating code).
        mode : str, optional
            ``torch.compile`` mode (default: ``"reduce-overhead"``, CUDA
            graphs, on CUDA; none on CPU).
        chunk : int, optional
            Steps per compiled chunk (default :data:`pysnn.compiled.CHUNK`).

        Returns
        -------
        SNNNetwork
            ``self``, for chaining.
        """
        from pysnn.compiled import CompiledRuns

        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        simulator = self.simulator
        simulator.compiled = CompiledRuns(simulator, backend, mode, chunk) if enabled else None
        return self.fuse(enabled, backend)

    @property
    def compiled(self) -> bool:
        """Whether :meth:`compile` is switched on."""
        return self.simulator.compiled is not None

    # -- the clock -----------------------------------------------------------------
    @property
    def dt(self) -> float | None:
        """The timestep in ms of every module (see :attr:`Simulator.dt <pysnn.simulation.Simulator.dt>`).

        Setting it re-derives every cached factor and step count of every
        module (after checking them all).
        """
        return self.simulator.dt

    @dt.setter
    def dt(self, value: float) -> None:
        self.simulator.dt = value

    # -- running -----------------------------------------------------------------
    def run(
        self,
        inputs: Tensor | Iterable[Any],
        callback: Callable[[int, Any], None] | None = None,
        reset: bool = True,
        progress: bool = False,
        warn_silent: bool = True,
        multi_step: bool | None = None,
        *,
        strategy: str | None = None,
        rules: Any = None,
        rewards: Tensor | None = None,
        batch_first: bool = False,
        checkpoint: int | None = None,
    ) -> Tensor:
        """Step the network through a sequence and stack its outputs.

        With gradients enabled and a parameter (a ``weight``, a neuron
        parameter made trainable, a learnable delay) or the input requiring a
        gradient, the run is differentiable: spikes carry their population's
        surrogate derivative and ``loss.backward()`` reaches every parameter
        (see :mod:`pysnn.autodiff`).  Otherwise it simulates under
        :func:`torch.no_grad`.

        Parameters
        ----------
        inputs : Tensor or iterable
            ``[T, B, ...]`` tensor (one slice per step) or any iterable of
            per-step inputs (e.g. a streaming encoder).
        callback : callable, optional
            Called as ``callback(t, output)`` after every step (and after the
            rules), e.g. to record something or give a reward.
        reset : bool
            Call :meth:`reset_state` first (monitors of the network reset too).
        progress : bool
            Show a progress bar (needs ``tqdm``; silently off without it).
        warn_silent : bool
            Warn (:class:`RuntimeWarning`, once per population and network) when
            a spiking population fired no spike during the whole run: a freshly
            built network is often silent because the initial weights are signed
            and small, or ``alpha_v``/the threshold do not suit the input.
        multi_step : bool, optional
            The earlier switch of the window strategy: ``False`` is
            ``strategy="step"``, ``True`` is ``strategy="window"``.
        strategy : {None, "step", "window", "compiled"}
            How to run (see :mod:`pysnn.simulation`): ``None`` (default) picks
            windows where they equal the step loop, else compiled chunks after
            :meth:`compile`, else the step loop; a named strategy that cannot
            run this network exactly is a :class:`ValueError` saying why
            (before any state changes).
        rules : LearningRule, list of them, or True, optional
            Learning rules applied after every step (``True``: the rules
            attached to the network): ``rule.update_state()`` for rules with
            per-step state (eligibility traces), then ``rule.step(reward)``.
        rewards : Tensor, optional
            ``[T]`` or ``[T, batch]``: the reward of each step for the
            reward-modulated rules (required when one is among ``rules``).
        batch_first : bool
            ``inputs`` is ``[batch, T, ...]`` (as ``torch.nn.RNN``'s
            ``batch_first``); the output is ``[batch, T, ...]`` then too.  By
            default time comes first: a ``[batch, T, ...]`` tensor given
            without it would run ``batch`` steps of ``T`` samples.
        checkpoint : int, optional
            Gradient checkpointing for long differentiable runs: keep only the
            state every ``checkpoint`` steps and recompute each part's steps
            during ``backward()`` (:func:`pysnn.autodiff.run_checkpointed`).
            Needs a tensor input and no learning rules; no effect on a run
            without gradients.

        Returns
        -------
        Tensor
            ``[T, ...]`` stack of the per-step outputs (the first element when
            ``forward`` returns a tuple); ``[batch, T, ...]`` with ``batch_first``.
        """
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first must be a bool, got {type(batch_first).__name__}")
        if batch_first:
            if not isinstance(inputs, Tensor) or inputs.dim() < 2:
                raise ValueError("batch_first=True needs a tensor input [batch, T, ...]")
            inputs = inputs.transpose(0, 1)
        if multi_step is not None:
            if not isinstance(multi_step, bool):
                raise TypeError(
                    f"multi_step must be None or a bool, got {type(multi_step).__name__}"
                )
            if strategy is not None:
                raise TypeError("give strategy or multi_step (PySNN 0.2), not both")
            strategy = "window" if multi_step else "step"
        out = self.simulator.run(
            inputs, callback, reset, progress, warn_silent, strategy, rules, rewards, checkpoint
        )
        return out.transpose(0, 1) if batch_first else out

    def multi_step_obstacle(
        self, inputs: Any = None, callback: Callable[..., Any] | None = None
    ) -> str | None:
        """Why :meth:`run` would not use windows (``None``: it would); see :mod:`pysnn.window`.

        ``inputs`` and ``callback`` as they would be given to :meth:`run`.
        """
        from pysnn import window

        return window.obstacle(self.simulator, inputs, None, callback)
