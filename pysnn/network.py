"""``SNNNetwork``: the base class of spiking networks.

A network subclasses :class:`SNNNetwork` like a ``torch.nn.Module``, creates
neurons and connections in ``__init__``, registers each (connection,
postsynaptic neuron) pair with :meth:`SNNNetwork.add_layer`, and implements
``forward`` as **one timestep**.  :meth:`SNNNetwork.run` steps it through a
sequence; :meth:`SNNNetwork.reset_state` clears the state between samples.

A step is atomic: when ``net(x)`` raises, every module's state is restored to
what it was before the call (see :meth:`SNNNetwork.__call__`).
:meth:`SNNNetwork.check_finite` makes every step check the state and
parameters for NaN and infinity.  See ``docs/reliability.rst``.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Callable, Iterable, NamedTuple

import torch
from torch import nn

from pysnn import fusion, graph, window
from pysnn.fusion import is_compiling
from pysnn.monitor import monitors_of
from pysnn.neuron import BaseNeuron, Population
from pysnn.safety import check_finite_values, check_owner, claim, restore, snapshot
from pysnn.state import StatefulModule

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


def _first_tensor(args: tuple[Any, ...]) -> Tensor | None:
    for arg in args:
        if isinstance(arg, Tensor):
            return arg
        if isinstance(arg, (list, tuple)) and arg and isinstance(arg[0], Tensor):
            return arg[0]
    return None


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

    def train(self, mode: bool = True) -> SNNNetwork:
        """Set training mode of the modules and of the attached rules (``eval()`` freezes them)."""
        super().train(mode)
        for rule in self._rules:
            rule.train(mode)
        return self

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
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
        self._plan: graph.StepPlan | None = None
        # the first step after construction or reset_state() gives fresh
        # populations the input's batch size (see __call__)
        self._batch_pending = True
        self._finite_check = bool(CHECK_FINITE_DEFAULT)
        # tensors found finite after the last step, id -> (tensor, version)
        self._finite_seen: dict[int, tuple[Tensor, int]] = {}
        self.__dict__["_step_index"] = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """One timestep, atomic: if anything raises, every module's state is restored.

        Before the step, each submodule's buffer dict and plain attributes are
        copied (state updates rebind buffers), and stateful modules keep what
        the step overwrites in place (:meth:`StatefulModule._step_snapshot
        <pysnn.state.StatefulModule._step_snapshot>`: one ring-buffer slot per
        delayed connection).  When the step raises (bad input reaching a later
        module, or :meth:`check_finite`'s :class:`FloatingPointError`), all of
        it is put back and the exception propagates.  Learning rules and
        monitors are outside the step and not restored.
        """
        if is_compiling():  # inside torch.compile: no snapshot in the graph
            if self._batch_pending:
                _adopt_batch_size(self, args)
            return super().__call__(*args, **kwargs)
        saved = snapshot(self)
        try:
            if self._batch_pending:
                _adopt_batch_size(self, args)
            out = super().__call__(*args, **kwargs)
            if self._finite_check:
                check_finite_values(self)
        except BaseException:
            restore(saved)
            raise
        self.__dict__["_step_index"] += 1
        return out

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
        return self.__dict__["_step_index"]

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
        self._finite_check = enabled
        self._finite_seen = {}
        return self

    @property
    def checks_finite(self) -> bool:
        """Whether :meth:`check_finite` is switched on."""
        return self._finite_check

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
        self._plan = None
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
        self._batch_pending = True
        self.__dict__["_step_index"] = 0
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
        if self._plan is None:
            self._plan = graph.plan(self._layers.values())
        return graph.step(self._plan, inputs)

    # -- fused execution -----------------------------------------------------------
    def fuse(
        self,
        enabled: bool = True,
        backend: str | Callable[..., Any] = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
    ) -> SNNNetwork:
        """Switch fused (compiled) state updates on or off for every neuron population.

        Calls :meth:`BaseNeuron.fuse <pysnn.neuron.BaseNeuron.fuse>` on each
        spiking neuron submodule (input populations only pass spikes through and
        stay eager); see :mod:`pysnn.fusion`.  Returns ``self``.
        """
        for module in self.modules():
            if isinstance(module, BaseNeuron):
                module.fuse(enabled, backend, mode)
        return self

    # -- running -----------------------------------------------------------------
    @torch.no_grad()
    def run(
        self,
        inputs: Tensor | Iterable[Any],
        callback: Callable[[int, Any], None] | None = None,
        reset: bool = True,
        progress: bool = False,
        warn_silent: bool = True,
        multi_step: bool | None = None,
    ) -> Tensor:
        """Step the network through a sequence and stack its outputs.

        Parameters
        ----------
        inputs : Tensor or iterable
            ``[T, B, ...]`` tensor (one slice per step) or any iterable of
            per-step inputs (e.g. a streaming encoder).
        callback : callable, optional
            Called as ``callback(t, output)`` after every step, e.g. to apply a
            learning rule or record a monitor.
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
            Whole-network multi-step execution (:mod:`pysnn.window`): each
            population runs over a window of steps before the next one, the
            connections' input of the window in one GEMM/convolution.  ``None``
            (default): used whenever it gives exactly the step loop's result
            (see :meth:`multi_step_obstacle`); ``True``: required (a
            :class:`ValueError` says why when it would not be exact);
            ``False``: always the step loop.  A window of steps is atomic: if
            it raises, the state is restored to before the window.

        Returns
        -------
        Tensor
            ``[T, ...]`` stack of the per-step outputs (the first element when
            ``forward`` returns a tuple).
        """
        if isinstance(inputs, Tensor):
            if inputs.dim() < 2 or inputs.shape[0] == 0:
                raise ValueError(
                    f"inputs must have shape [T, batch, ...] with T >= 1, got {tuple(inputs.shape)}"
                )
        elif not isinstance(inputs, Iterable):
            raise TypeError(
                f"inputs must be a tensor [T, batch, ...] or an iterable of per-step inputs, "
                f"got {type(inputs).__name__}"
            )
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        for name, flag in (("progress", progress), ("warn_silent", warn_silent)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if multi_step is not None and not isinstance(multi_step, bool):
            raise TypeError(f"multi_step must be None or a bool, got {type(multi_step).__name__}")
        reason = None if multi_step is False else self.multi_step_obstacle(inputs, callback)
        if multi_step and reason is not None:
            raise ValueError(f"run(multi_step=True) would not equal the step loop: {reason}")
        if reset:
            self.reset_state()
        watch = SilenceWatch(self) if warn_silent else None
        bar = _progress_bar(inputs) if progress else None
        outputs = []
        if multi_step is not False and reason is None:
            outputs = self._run_windows(inputs, watch, bar)
        else:
            for t, x in enumerate(inputs):
                out = self(x)
                if callback is not None:
                    callback(t, out)
                outputs.append((out[0] if isinstance(out, (tuple, list)) else out).unsqueeze(0))
                if watch is not None:
                    watch.step()
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
        if not outputs:
            raise ValueError("inputs is empty: nothing to run")
        result = torch.cat(outputs)
        if watch is not None:
            watch.finish(int(result.shape[0]))
        return result

    def multi_step_obstacle(
        self, inputs: Any = None, callback: Callable[..., Any] | None = None
    ) -> str | None:
        """Why :meth:`run` would step one by one rather than in windows (``None``: it would not).

        ``inputs`` and ``callback`` as they would be given to :meth:`run`; see
        :mod:`pysnn.window` for the conditions.
        """
        if inputs is not None and not isinstance(inputs, Tensor):
            return "inputs is not a tensor [T, batch, ...] (an iterable streams step by step)"
        if callback is not None:
            return "a callback runs between steps"
        if type(self).forward is not SNNNetwork.forward:
            return f"{type(self).__name__} writes its own forward()"
        if self._plan is None:
            self._plan = graph.plan(self._layers.values())
        return window.obstacle(self, self._plan)

    def _run_windows(self, inputs: Tensor, watch: SilenceWatch | None, bar: Any) -> list[Tensor]:
        """:meth:`run`'s steps in windows of :func:`pysnn.window.window_length` steps.

        Returns the output population's spikes of each window, ``[T_w, batch, ...]``.
        """
        plan, outputs = self._plan, []
        assert plan is not None
        length = window.window_length(plan, int(inputs.shape[1]))
        for start in range(0, int(inputs.shape[0]), length):
            chunk = inputs[start : start + length]
            saved = snapshot(self, steps=int(chunk.shape[0]))
            try:
                if self._batch_pending:
                    _adopt_batch_size(self, (chunk[0],))
                spikes = window.run_window(plan, chunk)
            except BaseException:
                restore(saved)
                raise
            self.__dict__["_step_index"] += int(chunk.shape[0])
            outputs.append(spikes[id(plan.outputs[0])][0])
            if watch is not None:
                watch.add_window(spikes)
            if bar is not None:
                bar.update(int(chunk.shape[0]))
        return outputs


def _progress_bar(inputs: Any) -> Any:
    """A tqdm bar over the steps of ``inputs``, or ``None`` without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    total = len(inputs) if hasattr(inputs, "__len__") else None
    return tqdm(total=total, desc="steps", unit="step")


class SilenceWatch:
    """Counts the spikes of a network's spiking populations until each has fired once.

    One ``sum`` per still-silent population per step, checked (one sync) every
    :attr:`CHECK_EVERY` steps; populations that fired drop out, so an active
    network costs nothing after the first check.
    """

    CHECK_EVERY = 64

    def __init__(self, network: SNNNetwork) -> None:
        self.network = network
        warned = network.__dict__.setdefault("_warned_silent", set())
        self.counts = {
            name: (module, torch.zeros((), device=module._buffers["spikes"].device))
            for name, module in network.named_modules()
            if isinstance(module, BaseNeuron) and id(module) not in warned
        }
        self.steps = 0

    def step(self) -> None:
        if not self.counts:
            return
        for module, total in self.counts.values():
            total += module._buffers["spikes"].sum()
        self.steps += 1
        if self.steps % self.CHECK_EVERY == 0:
            self.counts = {k: v for k, v in self.counts.items() if not bool(v[1] > 0)}

    def add_window(self, spikes: dict[int, tuple[Tensor, Tensor]]) -> None:
        """Count a window's spikes (``{id(population): (spikes, trace)}``, see :mod:`pysnn.window`)."""
        for module, total in self.counts.values():
            if id(module) in spikes:
                total += spikes[id(module)][0].sum()

    def finish(self, steps: int) -> None:
        warned = self.network.__dict__["_warned_silent"]
        for name, (module, total) in self.counts.items():
            if bool(total > 0):
                continue
            warned.add(id(module))
            warnings.warn(
                f"pysnn: {name!r} ({type(module).__name__}) fired no spike in {steps} steps of "
                f"run(); a freshly built network is often silent: initial weights are signed "
                f"and scaled by 1/sqrt(fan_in) (reset_weights), so check the weights' sign and "
                f"scale, alpha_v and the threshold against the input",
                RuntimeWarning,
                stacklevel=3,
            )


def _adopt_batch_size(network: SNNNetwork, args: tuple[Any, ...]) -> None:
    """Before the first step, give fresh populations the batch size of the input.

    Feedback connections read a population's spikes before that population has
    run in the step, so a fresh population must already have the right batch
    size.  Runs on the first step after construction or
    :meth:`SNNNetwork.reset_state` (a step without tensor input waits for the next).
    """
    x = _first_tensor(args)
    if x is None or x.dim() == 0:
        return
    network._batch_pending = False
    batch = int(x.shape[0])
    for module in network.modules():
        if isinstance(module, Population) and module.is_fresh:
            if module.batch_size != batch:
                module.reset_state(batch)
