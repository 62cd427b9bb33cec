r"""The network graph: projections, their description, and the default step.

An :class:`~pysnn.network.SNNNetwork` records every projection
``pre --connection--> [synapse] --> post`` as a :class:`~pysnn.network.Layer`.
This module reads that record:

* :func:`describe` and :func:`summary` say what a network holds (shapes,
  delays, synapse counts, parameter and state sizes);
* :func:`plan` orders the graph, :func:`advance` is the one walk over that
  order (one step, or a window of steps: :mod:`pysnn.window`), and
  :func:`step` runs it for one step when a network does not write its own
  ``forward``.

Order of the default step
-------------------------
Populations that are never postsynaptic are **inputs**; they take the
arguments of ``net(x, ...)`` in registration order.  The other populations are
updated in a topological order of the projections (ties and cycles broken by
registration order).  A projection is **feedforward** when its presynaptic
population comes earlier in that order: it reads the spikes of the current
step.  Otherwise (a recurrent connection onto the population itself, or a
feedback connection from a later population) it reads the presynaptic spikes
and trace of the **previous** step, which is the only causal choice: every
cycle of the graph therefore carries at least one step of delay.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence, cast

import torch
from torch import nn

from pysnn.capabilities import capabilities_of

Tensor = torch.Tensor

__all__ = [
    "ProjectionInfo",
    "STEP",
    "StepMode",
    "StepPlan",
    "advance",
    "apply_synapse",
    "check_capabilities",
    "check_input_count",
    "check_roles",
    "describe",
    "module_names",
    "plan",
    "step",
    "summary",
]


class ProjectionInfo(NamedTuple):
    """What :attr:`SNNNetwork.graph <pysnn.network.SNNNetwork.graph>` lists per projection."""

    name: str
    pre: str | None
    post: str
    connection: str
    kind: str
    pre_shape: tuple[int, ...] | None
    post_shape: tuple[int, ...]
    delay: str
    n_weights: int
    synapse: str


class StepPlan(NamedTuple):
    """Execution order of the default step (see the module docstring)."""

    inputs: tuple[nn.Module, ...]
    stages: tuple[tuple[nn.Module, tuple[Any, ...]], ...]
    outputs: tuple[nn.Module, ...]
    feedback: frozenset[str]


def _is_population(module: nn.Module | None) -> bool:
    return module is not None and hasattr(module, "features_shape")


def _is_connection(module: nn.Module | None) -> bool:
    return module is not None and isinstance(getattr(type(module), "kind", None), str)


def check_roles(connection: nn.Module, neuron: nn.Module, pre: nn.Module | None) -> None:
    """Reject a neuron passed as the connection (or the reverse) with a clear :class:`TypeError`."""
    if _is_population(connection) and _is_connection(neuron):
        raise TypeError(
            f"add_layer(name, connection, neuron): got the neuron {type(connection).__name__} "
            f"as connection and the connection {type(neuron).__name__} as neuron; swap them"
        )
    if _is_connection(pre):
        raise TypeError(
            f"pre must be the presynaptic population, got the connection {type(pre).__name__}"
        )


def check_capabilities(
    name: str,
    connection: nn.Module,
    neuron: nn.Module,
    pre: nn.Module | None,
    synapse: nn.Module | None,
) -> None:
    """Check that the modules of a projection fit together (their declared capabilities).

    Raises
    ------
    TypeError
        If the connection or the neuron is missing, or ``pre`` or ``neuron``
        is not a population.
    ValueError
        If a synapse model reads the postsynaptic voltage of a population
        that has none.
    """
    for label, required in (("connection", connection), ("neuron", neuron)):
        if required is None:
            raise TypeError(f"add_layer({name!r}): {label} is required, got None")
    for label, module in (("pre", pre), ("neuron", neuron)):
        if module is not None and _is_connection(module):
            continue  # check_roles names the swap
        if module is not None and not _is_population(module):
            raise TypeError(
                f"add_layer({name!r}): {label} must be a population (a neuron or input "
                f"module with features_shape), got {type(module).__name__}"
            )
    if synapse is not None and capabilities_of(synapse).needs_voltage:
        if not capabilities_of(neuron).has_voltage:
            raise ValueError(
                f"add_layer({name!r}): the synapse {type(synapse).__name__} reads the "
                f"postsynaptic voltage, but {type(neuron).__name__} has no v_cell"
            )


def _delay_text(connection: nn.Module) -> str:
    if getattr(connection, "per_synapse_delay", False):
        return f"per-synapse (max {connection.max_delay} steps)"
    return f"{int(getattr(connection, 'max_delay', 0))} steps"


def _features(module: nn.Module | None) -> tuple[int, ...] | None:
    return None if module is None else tuple(getattr(module, "features_shape", ()) or ()) or None


def describe(layer: Any, names: dict[int, str] | None = None) -> ProjectionInfo:
    """Describe one :class:`~pysnn.network.Layer` as a :class:`ProjectionInfo`.

    ``names`` maps module ids to their names in the network (computed when not given).
    """
    if names is None:
        names = module_names(layer.network) if layer.network is not None else {}
    conn = layer.connection
    weight = getattr(conn, "weight", None)
    return ProjectionInfo(
        name=layer.name,
        pre=None if layer.pre is None else names.get(id(layer.pre), type(layer.pre).__name__),
        post=names.get(id(layer.neuron), type(layer.neuron).__name__),
        connection=type(conn).__name__,
        kind=layer.type,
        pre_shape=_features(layer.pre),
        post_shape=_features(layer.neuron) or (),
        delay=_delay_text(conn),
        n_weights=0 if weight is None else int(weight.numel()),
        synapse="delta" if layer.synapse is None else type(layer.synapse).__name__,
    )


def module_names(network: nn.Module) -> dict[int, str]:
    """Module id -> its (first) qualified name in ``network``."""
    names: dict[int, str] = {}
    for name, module in network.named_modules():
        names.setdefault(id(module), name)
    return names


def _sizes(module: nn.Module) -> tuple[int, int]:
    """(parameter values, state values) of one module, not counting submodules."""
    params = sum(p.numel() for p in module.parameters(recurse=False))
    state_names = set(getattr(module, "_state_names", ()))
    state = 0
    for name, buf in module.named_buffers(recurse=False):
        if name in state_names:
            state += buf.numel()
        else:
            params += buf.numel()
    return params, state


def summary(network: nn.Module) -> str:
    """Text table of a network's projections and populations.

    Projections: name, presynaptic → postsynaptic population, connection type,
    shapes, delay, number of weights and synapse model.  Populations: type,
    per-sample shape, key parameters (``repr``), parameter values and state
    values (current batch).
    """
    rows = [("projection", "pre -> post", "connection", "shape", "delay", "weights", "synapse")]
    for info in network.graph:
        shape = f"{info.pre_shape or '?'} -> {info.post_shape}"
        rows.append(
            (
                info.name,
                f"{info.pre or '?'} -> {info.post}",
                info.connection,
                shape,
                info.delay,
                f"{info.n_weights:,}",
                info.synapse,
            )
        )
    lines = [_table(rows)]
    pop_rows = [("population", "type", "shape", "parameters", "state")]
    total_params = total_state = 0
    for name, module in network.named_modules():
        params, state = _sizes(module)
        total_params += params
        total_state += state
        if _is_population(module):
            pop_rows.append(
                (
                    name,
                    type(module).__name__,
                    str(module.features_shape),
                    f"{params:,}",
                    f"{state:,}",
                )
            )
    lines += ["", _table(pop_rows), ""]
    lines.append(f"total: {total_params:,} parameter values, {total_state:,} state values")
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def plan(layers: Iterable[Any]) -> StepPlan:
    """Order the populations of ``layers`` for the default step (see the module docstring).

    Raises
    ------
    ValueError
        If a layer has no presynaptic population or the graph has no input.
    """
    layers = list(layers)
    if not layers:
        raise ValueError(
            "the network has no layers: register them with add_layer(name, connection, "
            "neuron, pre) or connect(pre, connection, post), or write forward()"
        )
    for layer in layers:
        if layer.pre is None:
            raise ValueError(
                f"layer {layer.name!r} was registered without its presynaptic population: "
                "the default forward needs add_layer(name, connection, neuron, pre) or "
                "connect(pre, connection, post); or write forward() yourself"
            )
    populations: list[nn.Module] = []
    for layer in layers:
        for module in (layer.pre, layer.neuron):
            if all(module is not p for p in populations):
                populations.append(module)
    posts = {id(layer.neuron) for layer in layers}
    pres = {id(layer.pre) for layer in layers}
    inputs = [p for p in populations if id(p) not in posts]
    if not inputs:
        raise ValueError("the network graph has no input population (every population has inputs)")
    order: list[nn.Module] = list(inputs)
    placed = {id(p) for p in order}
    remaining = [p for p in populations if id(p) not in placed]
    while remaining:
        ready = next(
            (
                p
                for p in remaining
                if all(
                    id(layer.pre) in placed or layer.pre is p
                    for layer in layers
                    if layer.neuron is p
                )
            ),
            remaining[0],  # a cycle: break it at the earliest registered population
        )
        order.append(ready)
        placed.add(id(ready))
        remaining = [p for p in remaining if p is not ready]
    rank = {id(p): k for k, p in enumerate(order)}
    stages = tuple(
        (post, tuple(layer for layer in layers if layer.neuron is post))
        for post in order[len(inputs) :]
    )
    feedback = frozenset(
        layer.name for layer in layers if rank[id(layer.pre)] >= rank[id(layer.neuron)]
    )
    # the populations that project nowhere; in a closed loop, the last one updated
    outputs = tuple(p for p in order if id(p) not in pres) or (order[-1],)
    return StepPlan(tuple(inputs), stages, outputs, feedback)


def apply_synapse(synapse: nn.Module | None, current: Tensor, post: nn.Module) -> Tensor:
    """A projection's weighted spikes through its synapse model (``None``: delta synapse).

    A synapse that ``needs_voltage`` (conductance) reads ``post``'s voltage at
    the start of the step; one that ``takes_post`` (exact coupling of a current
    to the membrane) is given ``post`` (see :class:`~pysnn.capabilities.Capabilities`).
    """
    if synapse is None:
        return current
    caps = capabilities_of(synapse)
    if caps.needs_voltage:
        return synapse(current, post.v_cell)
    if caps.takes_post:
        return synapse(current, post=post)
    return synapse(current)


class StepMode:
    """What :func:`advance` does per population and projection for one timestep.

    A projection reads the presynaptic population's current state: this
    step's spikes and trace for a feedforward projection, the previous step's
    for a feedback one (its population has not been updated yet).
    """

    @staticmethod
    def source(population: nn.Module, x: Any) -> Any:
        return population(x)

    @staticmethod
    def transmit(layer: Any, values: dict[int, Any], feedback: bool) -> Tensor:
        pre = layer.pre
        out, _ = layer.connection(pre.spikes, pre.trace)
        return apply_synapse(layer.synapse, out, layer.neuron)

    @staticmethod
    def integrate(post: nn.Module, parts: list[Tensor], layers: tuple[Any, ...]) -> Any:
        return post(parts[0] if len(parts) == 1 else parts)


#: the mode of one timestep (:meth:`SNNNetwork.forward <pysnn.network.SNNNetwork.forward>`)
STEP = StepMode()


def advance(plan_: StepPlan, inputs: Sequence[Any], mode: Any) -> dict[int, Any]:
    """The one walk over a plan: the inputs, then every stage's projections and population.

    ``mode`` says what advancing a population and a projection means: one
    timestep (:data:`STEP`) or a window of steps
    (:class:`pysnn.window.WindowMode`).  It provides ``source(population, x)``
    for the input populations, ``transmit(layer, values, feedback)`` for each
    projection (``values`` holds what the populations advanced so far
    returned, by ``id``; ``feedback`` marks a projection that reads the
    previous step) and ``integrate(post, parts, layers)`` for the population
    receiving the projections' outputs ``parts``.

    Returns
    -------
    dict
        ``{id(population): what the mode returned for it}``.
    """
    values: dict[int, Any] = {}
    for population, x in zip(plan_.inputs, inputs):
        values[id(population)] = mode.source(population, x)
    feedback = plan_.feedback
    for post, projections in plan_.stages:
        parts = [mode.transmit(layer, values, layer.name in feedback) for layer in projections]
        values[id(post)] = mode.integrate(post, parts, projections)
    return values


def check_input_count(plan_: StepPlan, inputs: Sequence[Any]) -> None:
    """Require one input per input population of the plan (:class:`TypeError` otherwise)."""
    if len(inputs) != len(plan_.inputs):
        names = ", ".join(type(p).__name__ for p in plan_.inputs)
        raise TypeError(
            f"the network has {len(plan_.inputs)} input population(s) ({names}); "
            f"forward() got {len(inputs)} input(s)"
        )


def step(plan_: StepPlan, inputs: Sequence[Any]) -> Tensor | tuple[Tensor, ...]:
    """One timestep of a :class:`StepPlan` with one input per input population.

    Returns the spikes of the plan's output populations (one tensor, or a tuple).
    """
    check_input_count(plan_, inputs)
    advance(plan_, inputs, STEP)
    spikes = tuple(cast(Tensor, p.spikes) for p in plan_.outputs)
    return spikes[0] if len(spikes) == 1 else spikes
