"""Load: a graph-driven network that runs a NIR graph, including what snnTorch and Norse write."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from pysnn.connection import AvgPool2d, Conv2d, Linear
from pysnn.connection.stages import Chain, Flatten, SumPool2d, _pair
from pysnn.neuron import IFNeuron, Input, LIFNeuron
from pysnn.nir.network import (
    INTEGRATORS,
    MS,
    NIRNetwork,
    attribute_name,
    flatten_shape,
    import_nir,
    pool_shape,
)
from pysnn.synapse import ExponentialSynapse

Tensor = torch.Tensor

__all__ = ["load", "WRITERS", "NORSE_EXPORT_DT"]

#: the writers whose known departures from NIR :func:`load` can correct (``writer=``)
WRITERS = ("snntorch", "snntorch-subtract", "norse")
#: the export step of Norse's ``to_nir`` (s): it writes every time constant multiplied by it
NORSE_EXPORT_DT = 1e-3

_STAGES = ("Linear", "Affine", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Delay")
#: spiking neuron nodes, readouts (their output is a voltage) and the memoryless Threshold
_SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")
_READOUTS = ("LI", "CubaLI", "I")
_NEURONS = _SPIKING + _READOUTS
#: the parameter whose shape gives a neuron node's shape
_SHAPE_PARAM = {
    "LIF": "v_threshold",
    "CubaLIF": "v_threshold",
    "IF": "v_threshold",
    "Threshold": "threshold",
    "LI": "v_leak",
    "CubaLI": "v_leak",
    "I": "r",
}


def _f64(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _param(value: Any, shape: tuple[int, ...]) -> Tensor:
    """A parameter in float64: the population keeps it as its full-precision master."""
    return torch.tensor(np.broadcast_to(_f64(value), shape).copy())


def _threshold_in(value: Any, shape: tuple[int, ...]) -> Tensor:
    # v > thr  <=>  v >= next(thr), in float32 (the dtype the network runs in)
    t = _param(value, shape).float()
    return torch.nextafter(t, torch.full_like(t, math.inf))


def _flatten_graph(nir: Any, graph: Any, prefix: str = "") -> tuple[dict, list, set]:
    """Nodes and edges with nested graphs inlined as ``"outer.inner"`` names.

    Returns the nodes, the edges and the names of the inner ``Input``/``Output``
    nodes, which pass their input through (removed by :func:`_bypass`).
    """
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    passing: set[str] = set()
    io: dict[str, tuple[list[str], list[str]]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner, inner_edges, inner_passing = _flatten_graph(nir, node, full + ".")
            ins = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [full + "." + k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            nodes.update(inner)
            edges += inner_edges
            passing |= inner_passing | set(ins) | set(outs)
            io[full] = (ins, outs)
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        src, dst = prefix + src, prefix + dst
        sources = io[src][1] if src in io else [src]
        targets = io[dst][0] if dst in io else [dst]
        edges += [(s, t) for s in sources for t in targets]
    return nodes, edges, passing


def _bypass(nodes: dict, edges: list, passing: set) -> list:
    """Remove the pass-through nodes, joining their inputs to their outputs."""
    for name in passing:
        into = [s for s, d in edges if d == name]
        out_of = [d for s, d in edges if s == name]
        edges = [(s, d) for s, d in edges if name not in (s, d)]
        edges += [(s, d) for s in into for d in out_of]
        nodes.pop(name, None)
    return edges


def _node_shape(kind: str, node: Any) -> tuple[int, ...] | None:
    value = getattr(node, _SHAPE_PARAM[kind], None)
    shape = _f64(value).shape if value is not None else ()
    return tuple(int(s) for s in shape) if shape else None


def _build_stage(kind: str, node: Any, name: str, shape: tuple[int, ...], dt: float):
    """A PySNN stage for one NIR node and its output shape."""
    if kind in ("Linear", "Affine"):
        weight = torch.as_tensor(_f64(node.weight)).float()
        if weight.dim() != 2:
            raise ValueError(f"node {name!r}: {kind} weight must be 2-d, got {tuple(weight.shape)}")
        if shape[-1:] != (weight.shape[1],) or len(shape) != 1:
            raise ValueError(f"node {name!r}: {kind} of {tuple(weight.shape)} on input {shape}")
        bias = None if kind == "Linear" or node.bias is None else _f64(node.bias)
        has_bias = bias is not None and bool(np.any(bias != 0))
        conn = Linear(int(weight.shape[1]), int(weight.shape[0]), dt=dt, bias=has_bias)
        with torch.no_grad():
            conn.weight.copy_(weight)
            if has_bias:
                conn.bias.copy_(torch.tensor(np.broadcast_to(bias, (weight.shape[0],)).copy()))
        return conn, (int(weight.shape[0]),)
    if kind == "Conv2d":
        weight = torch.as_tensor(_f64(node.weight)).float()
        if weight.dim() != 4:
            raise ValueError(f"node {name!r}: Conv2d weight must be 4-d, got {tuple(weight.shape)}")
        if len(shape) != 3:
            raise ValueError(f"node {name!r}: Conv2d on an input of shape {shape}")
        dilation = _pair(node.dilation, "dilation")
        padding = node.padding
        if isinstance(padding, str):
            if padding == "valid":
                padding = 0
            elif padding == "same" and all(
                d * (k - 1) % 2 == 0 for d, k in zip(dilation, weight.shape[2:])
            ):
                padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, weight.shape[2:]))
                if _pair(node.stride, "stride") != (1, 1):
                    raise ValueError(f"node {name!r}: Conv2d padding 'same' with a stride")
            else:
                raise ValueError(f"node {name!r}: Conv2d padding {padding!r} (give numbers)")
        groups = int(node.groups)
        bias = None if node.bias is None else _f64(node.bias)
        has_bias = bias is not None and bool(np.any(bias != 0))
        conv = Conv2d(
            int(weight.shape[1]) * groups,
            int(weight.shape[0]),
            tuple(int(k) for k in weight.shape[2:]),
            dt=dt,
            stride=_pair(node.stride, "stride"),
            padding=_pair(padding, "padding", minimum=0),
            dilation=dilation,
            groups=groups,
            bias=has_bias,
        )
        if shape[0] != conv.in_channels:
            raise ValueError(
                f"node {name!r}: Conv2d of {conv.in_channels} input channels on input {shape}"
            )
        with torch.no_grad():
            conv.weight.copy_(weight)
            if has_bias:
                conv.bias.copy_(torch.tensor(np.broadcast_to(bias, (conv.out_channels,)).copy()))
        return conv, (conv.out_channels, *conv.output_shape(tuple(shape[1:])))
    if kind in ("AvgPool2d", "SumPool2d"):
        if len(shape) != 3:
            raise ValueError(f"node {name!r}: {kind} on an input of shape {shape}")
        k = _pair(node.kernel_size, "kernel_size")
        s = _pair(node.stride, "stride")
        p = _pair(node.padding, "padding", minimum=0)
        pool = AvgPool2d(k, s, p) if kind == "AvgPool2d" else SumPool2d(k, s, p)
        return pool, pool_shape(shape, k, s, p)
    if kind == "Flatten":
        ndim = len(shape)
        declared = (node.input_type or {}).get("input")
        offset = 1 if declared is not None and len(declared) == ndim + 1 else 0
        stage = Flatten(
            int(node.start_dim) - offset, int(node.end_dim) - (offset if node.end_dim >= 0 else 0)
        )
        return stage, flatten_shape(stage, shape)
    raise AssertionError(kind)  # pragma: no cover


def _walk(
    kinds: dict[str, str], succ: dict[str, list[str]], populations: list[str]
) -> tuple[list[tuple[str, list[str], str]], list[tuple[str, str]]]:
    """Paths ``(population, [stage nodes], population)`` and ``(Output node, population)``."""
    paths: list[tuple[str, list[str], str]] = []
    outputs: list[tuple[str, str]] = []

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in succ[node]:
            kind = kinds[nxt]
            if kind == "Output":
                if trail:
                    raise ValueError(
                        f"node {nxt!r}: an Output fed by {kinds[trail[-1]]} node {trail[-1]!r} "
                        "(PySNN outputs are populations)"
                    )
                outputs.append((nxt, start))
            elif kind in _STAGES:
                if nxt in trail:
                    raise ValueError(f"node {nxt!r}: a cycle without a neuron node")
                walk(start, nxt, trail + [nxt])
            elif kind == "Input":
                raise ValueError(f"node {nxt!r}: an Input node with incoming edges")
            else:
                if kinds[start] in _READOUTS:
                    raise ValueError(
                        f"node {start!r}: the output of a {kinds[start]} node is a voltage, "
                        f"not spikes; PySNN projections carry spikes (a {kinds[start]} may "
                        "only feed Output nodes, or be read by one Threshold node)"
                    )
                paths.append((start, trail, nxt))

    for pop in populations:
        walk(pop, pop, [])
    return paths, outputs


def load(
    graph_or_path: Any,
    dt: float,
    *,
    integrator: str | None = None,
    time_scale: float | None = None,
    writer: str | None = None,
) -> NIRNetwork:
    """Build a graph-driven network that runs a NIR graph at timestep ``dt``.

    Parameters
    ----------
    graph_or_path : nir.NIRGraph or str or pathlib.Path
        The graph, or a file written by :func:`nir.write`.
    dt : float
        Timestep in ms (NIR times are read in seconds).
    integrator : {"exact", "euler"}, optional
        NIR's reference semantics to run (inputs held over each step):
        ``"exact"`` solves each node's linear ODE exactly, ``"euler"`` with
        forward Euler (``CubaLIF``: current first, then the voltage with the
        new current), as snnTorch and Norse do.  Default: the integrator
        :func:`export` recorded in the node, else ``"euler"`` for a
        ``writer``, else ``"exact"``.
    time_scale : float, optional
        Factor applied to every time constant read from the file (``tau``,
        ``tau_mem``, ``tau_syn``).  Default 1, and ``1 / 1e-3`` for
        ``writer="norse"`` (Norse writes :math:`\\tau \\Delta t`, with its
        export step :math:`\\Delta t` = 1e-3 s unless ``to_nir(..., dt=)``
        says otherwise: pass ``time_scale=1 / dt`` then).
    writer : {"snntorch", "snntorch-subtract", "norse"}, optional
        Correct the known departures of a writer from what the file says
        (``docs/nir.rst``):

        * ``"snntorch"``: snnTorch with ``reset_mechanism="zero"``: its
          ``Synaptic`` (``CubaLIF``) and ``RLeaky`` (``LIF`` on a recurrent
          loop) neurons integrate nothing in the step after a spike: those
          populations get ``duration_refrac = dt`` (``Leaky`` resets as NIR
          says);
        * ``"snntorch-subtract"``: snnTorch's default reset by subtraction,
          applied after the decay of the next step: every spiking population
          gets ``reset="subtract"`` of :math:`\\theta / \\beta`,
          :math:`\\beta = 1 - \\Delta t/\\tau_m`;
        * ``"norse"``: the current of Norse's ``LIFCell`` (``CubaLIF``) jumps
          by the input (NIR's ``w_in`` would be :math:`\\tau_{syn}/\\Delta t`),
          and ``time_scale`` defaults to ``1 / 1e-3``.

    Returns
    -------
    NIRNetwork
        Populations named after the NIR neuron and input nodes
        (:attr:`NIRNetwork.node_names`); one projection (a :class:`Chain`
        where a path has several nodes) per path of
        ``Linear``/``Affine``/``Conv2d``/pooling/``Flatten``/``Delay`` nodes
        between two of them.  ``LIF`` and ``LI`` become
        :class:`~pysnn.neuron.LIFNeuron`, ``CubaLIF`` and ``CubaLI`` a
        :class:`~pysnn.neuron.LIFNeuron` with an
        :class:`~pysnn.synapse.ExponentialSynapse` (``input="held"``) on each
        incoming projection, ``IF`` and ``I`` an :class:`~pysnn.neuron.IFNeuron`,
        ``Threshold`` a memoryless :class:`~pysnn.neuron.LIFNeuron`, and an
        ``LI``/``CubaLI``/``I`` read by one ``Threshold`` a spiking neuron
        without reset.  Readouts (``LI``, ``CubaLI``, ``I``) never spike
        (infinite threshold); the network returns their voltage.  Biases
        become ``bias=True`` connections.  Nested graphs are inlined (their
        nodes named ``"outer.inner"``).

    Raises
    ------
    TypeError
        If ``graph_or_path`` is neither a graph nor a path.
    ValueError
        For a bad ``dt``, ``integrator``, ``time_scale`` or ``writer``, or naming
        the node whose type or parameters PySNN cannot run (e.g. ``Scale``,
        ``Conv1d``, a readout feeding a projection, non-uniform or
        non-whole-step delays, an output that is not a population).
    ImportError
        If ``nir`` is not installed.
    """
    nir = import_nir()
    graph = _read(nir, graph_or_path)
    dt, time_scale = _check_options(dt, integrator, time_scale, writer)
    g = _structure(nir, graph)
    populations = [n for n in g.nodes if g.kinds[n] == "Input" or g.kinds[n] in _NEURONS]
    populations.sort(key=lambda n: g.kinds[n] != "Input")
    # a readout read by a Threshold spikes: it is walked through like a LIF
    walk_kinds = {n: ("LIF" if n in g.threshold_of else k) for n, k in g.kinds.items()}
    paths, outputs = _walk(walk_kinds, g.succ, populations)
    paths.sort(key=lambda path: _layer_mark(g.nodes, path[1]))
    shapes = _declared_shapes(g, populations)
    built = _build_paths(g, paths, shapes, dt)
    net = NIRNetwork()
    modules: dict[str, nn.Module] = {}
    attr: dict[str, str] = {}
    recurrent = {start for start, _, end in built if start == end}
    for name in populations:
        if name not in shapes:
            raise ValueError(f"node {name!r}: unconnected neuron with scalar parameters")
        options = dict(integrator=integrator, time_scale=time_scale, writer=writer)
        module = _population(
            g.nodes[name],
            g.kinds[name],
            shapes[name],
            dt,
            threshold=g.threshold_of.get(name),
            recurrent=name in recurrent,
            **options,
        )
        key = attribute_name(name, net, set(attr.values()))
        net.add_module(key, module)
        modules[name], attr[name] = module, key
    for k, (start, stages, end) in enumerate(built):
        conn = stages[0] if len(stages) == 1 else Chain(*stages)
        synapse = None
        if g.kinds[end] in ("CubaLIF", "CubaLI"):
            node, integ = g.nodes[end], modules[end].integrator
            synapse = _synapse(node, shapes[end], dt, integ, time_scale, writer)
        layer_name = f"{attr[start]}_to_{attr[end]}_{k}"
        net.add_layer(layer_name, conn, modules[end], modules[start], synapse=synapse)
    _name_inputs_and_outputs(net, graph, g, populations, built, outputs, attr)
    return net


class _Structure(NamedTuple):
    """A flattened NIR graph: nodes, their kinds, successors and predecessors."""

    nodes: dict[str, Any]
    kinds: dict[str, str]
    succ: dict[str, list[str]]
    pred: dict[str, list[str]]
    #: readout node -> the Threshold node that read it (merged into it)
    threshold_of: dict[str, Any]


def _read(nir: Any, graph_or_path: Any) -> Any:
    if isinstance(graph_or_path, (str, Path)):
        return nir.read(str(graph_or_path))
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    raise TypeError(
        f"graph_or_path must be a nir.NIRGraph or a path, got {type(graph_or_path).__name__}"
    )


def _positive(name: str, value: Any, unit: str = "") -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"{name} must be a positive number{unit}, got {value!r}")
    return float(value)


def _check_options(dt: Any, integrator: Any, time_scale: Any, writer: Any) -> tuple[float, float]:
    """``(dt, time_scale)`` checked; ValueError naming a bad argument."""
    dt = _positive("dt", dt, " of ms")
    if integrator is not None and integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be None or one of {INTEGRATORS}, got {integrator!r}")
    if writer is not None and writer not in WRITERS:
        raise ValueError(f"writer must be None or one of {WRITERS}, got {writer!r}")
    if time_scale is None:
        time_scale = 1.0 / NORSE_EXPORT_DT if writer == "norse" else 1.0
    return dt, _positive("time_scale", time_scale)


def _structure(nir: Any, graph: Any) -> _Structure:
    """Inline nested graphs, check node types and edges, merge readout + Threshold pairs."""
    nodes, edges, passing = _flatten_graph(nir, graph)
    edges = _bypass(nodes, edges, passing)
    kinds: dict[str, str] = {}
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind not in _STAGES + _NEURONS + ("Input", "Output"):
            raise ValueError(
                f"node {name!r}: NIR node type {kind} is not supported (supported: Input, "
                f"Output, {', '.join(_NEURONS + _STAGES)})"
            )
        kinds[name] = kind
    succ: dict[str, list[str]] = {name: [] for name in nodes}
    pred: dict[str, list[str]] = {name: [] for name in nodes}
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise ValueError(f"edge ({src!r}, {dst!r}): no node named {end!r}")
        if dst not in succ[src]:
            succ[src].append(dst)
            pred[dst].append(src)
    # a readout read by one Threshold node alone is a spiking neuron without reset
    threshold_of: dict[str, Any] = {}
    for name in list(nodes):
        if name in kinds and kinds[name] in _READOUTS and len(succ[name]) == 1:
            target = succ[name][0]
            if kinds[target] == "Threshold" and pred[target] == [name]:
                threshold_of[name] = nodes[target]
                succ[name] = succ[target]
                for nxt in succ[target]:
                    pred[nxt] = [name if p == target else p for p in pred[nxt]]
                del kinds[target], succ[target], pred[target], nodes[target]
    for name, kind in kinds.items():
        if kind == "Threshold" and any(kinds[p] not in _STAGES for p in pred[name]):
            raise ValueError(
                f"node {name!r}: a Threshold must be fed by weighted nodes, or read one LI, "
                "CubaLI or I node alone"
            )
    return _Structure(nodes, kinds, succ, pred, threshold_of)


def _layer_mark(nodes: dict[str, Any], trail: list[str]) -> float:
    """The layer index :func:`export` recorded on a path (the order of summed inputs)."""
    recorded = [(nodes[n].metadata or {}).get("pysnn_layer") for n in trail]
    marks = [float(m) for m in recorded if m is not None]
    return min(marks) if marks else math.inf


def _declared_shapes(g: _Structure, populations: list[str]) -> dict[str, tuple[int, ...]]:
    """The shapes the graph declares: inputs, and neurons with per-neuron parameters."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name in populations:
        node = g.nodes[name]
        if g.kinds[name] == "Input":
            declared = node.input_type["input"] if isinstance(node.input_type, dict) else None
            shapes[name] = tuple(int(s) for s in np.asarray(declared).reshape(-1))
            continue
        shape = _node_shape(g.kinds[name], node)
        if name in g.threshold_of and shape is None:
            shape = _node_shape("Threshold", g.threshold_of[name])
        if shape is not None:
            shapes[name] = shape
    return shapes


def _path_stages(
    g: _Structure, path: tuple[str, list[str], str], shape: tuple[int, ...], dt: float
) -> tuple[list[nn.Module], tuple[int, ...]]:
    """The stages of one path and their output shape; its delays go to a weighted stage."""
    start, trail, end = path
    stages: list[nn.Module] = []
    delay_ms = 0.0
    for stage_name in trail:
        kind, node = g.kinds[stage_name], g.nodes[stage_name]
        if kind == "Delay":
            values = np.unique(_f64(node.delay))
            if values.size != 1:
                raise ValueError(
                    f"node {stage_name!r}: Delay with different delays per neuron "
                    "(PySNN delays a projection by one value)"
                )
            delay_ms += float(values[0]) / MS
            continue
        stage, shape = _build_stage(kind, node, stage_name, shape, dt)
        stages.append(stage)
    if not stages:
        raise ValueError(
            f"edge {start!r} -> {end!r}: two populations joined without a "
            "weight (put a Linear node between them)"
        )
    if delay_ms:
        weighted = [s for s in stages if isinstance(s, (Linear, Conv2d))]
        if not weighted:
            raise ValueError(
                f"Delay on the path {start!r} -> {end!r}: needs a Linear, Affine or "
                "Conv2d node on the path to carry it"
            )
        steps = round(delay_ms / dt)
        if abs(delay_ms / dt - steps) > 1e-6 * max(steps, 1):
            raise ValueError(
                f"Delay on the path {start!r} -> {end!r}: {delay_ms} ms is not a whole "
                f"number of timesteps dt={dt} ms"
            )
        weighted[0].set_delay(steps * dt)  # delays commute with the linear stages
    return stages, shape


def _build_paths(
    g: _Structure,
    paths: list[tuple[str, list[str], str]],
    shapes: dict[str, tuple[int, ...]],
    dt: float,
) -> list[tuple[str, list[nn.Module], str]]:
    """The stages of every path, inferring the shapes of scalar-parameter neurons on the way."""
    built: list[tuple[str, list[nn.Module], str]] = []
    pending = list(paths)
    while pending:
        ready = [path for path in pending if path[0] in shapes]
        if not ready:
            raise ValueError(
                f"cannot infer the shape of nodes {sorted({p[0] for p in pending})} "
                "(give their parameters full shapes)"
            )
        for path in ready:
            start, _, end = path
            stages, shape = _path_stages(g, path, shapes[start], dt)
            if end in shapes and shapes[end] != shape:
                raise ValueError(
                    f"node {end!r}: its parameters have shape {shapes[end]}, its input {shape}"
                )
            shapes[end] = shape
            built.append((start, stages, end))
            pending.remove(path)
    return built


def _name_inputs_and_outputs(
    net: NIRNetwork,
    graph: Any,
    g: _Structure,
    populations: list[str],
    built: list[tuple[str, list[nn.Module], str]],
    outputs: list[tuple[str, str]],
    attr: dict[str, str],
) -> None:
    """Input and output order (as :func:`export` recorded it, else the graph's), node names."""
    outputs.sort(key=lambda item: _rank(graph, "pysnn_outputs", item[0]))
    inputs = sorted(
        (n for n in populations if g.kinds[n] == "Input"),
        key=lambda n: _rank(graph, "pysnn_inputs", n),
    )
    net.input_names = tuple(inputs)
    net.output_names = tuple(name for name, _ in outputs)
    registered: list[str] = []  # the inputs in the order the network's step takes them
    for start, _, end in built:
        for name in (start, end):
            if g.kinds[name] == "Input" and name not in registered:
                registered.append(name)
    net._arguments = [inputs.index(name) for name in registered]
    net.node_names = dict(attr)
    readouts = {n for n in populations if g.kinds[n] in _READOUTS and n not in g.threshold_of}
    net._outputs = [(attr[pop], "v_cell" if pop in readouts else "spikes") for _, pop in outputs]
    if not net._outputs:
        raise ValueError("the NIR graph has no Output node fed by a neuron node")


def _rank(graph: Any, key: str, name: str) -> int:
    """Position of ``name`` in the order :func:`export` recorded under ``key`` (else last)."""
    recorded = [str(n.decode() if isinstance(n, bytes) else n) for n in graph.metadata.get(key, [])]
    return recorded.index(name) if name in recorded else len(recorded)


def _node_integrator(node: Any, integrator: str | None, writer: str | None) -> str:
    if integrator is not None:
        return integrator
    if writer is not None:
        return "euler"
    recorded = (node.metadata or {}).get("pysnn_integrator", "exact")
    if isinstance(recorded, bytes):
        recorded = recorded.decode()
    if isinstance(recorded, np.ndarray):
        recorded = str(recorded.item() if recorded.size == 1 else recorded)
    return recorded if recorded in INTEGRATORS else "exact"


def _population(
    node: Any,
    kind: str,
    shape: tuple[int, ...],
    dt: float,
    *,
    integrator: str | None,
    time_scale: float,
    writer: str | None,
    threshold: Any = None,
    recurrent: bool = False,
) -> nn.Module:
    """The PySNN population of one NIR node (``threshold``: the Threshold node reading it)."""
    cells = tuple(shape)  # the per-sample shape
    if kind == "Input":
        return Input(cells, dt=dt, integrator="exact")
    if kind == "Threshold":  # z = [x > theta], no memory: v = x every step
        return LIFNeuron(
            cells,
            dt=dt,
            tau_v=dt * 1e-3,  # exp(-1000) == 0: nothing of the previous step is left
            v_rest=0.0,
            v_reset=0.0,
            alpha_v=1.0,
            thresh=_threshold_in(node.threshold, shape),
            integrator="impulse",
        )
    spiking = kind in _SPIKING or threshold is not None
    if threshold is not None:
        thresh = _threshold_in(threshold.threshold, shape)
    elif spiking:
        thresh = _threshold_in(node.v_threshold, shape)
    else:  # a readout: a threshold no voltage reaches (thresholds must be finite)
        thresh = torch.full(shape, torch.finfo(torch.float32).max)
    reset: dict[str, Any] = {}
    if threshold is not None:  # LI + Threshold: no reset (subtract 0)
        reset = dict(reset="subtract", v_reset=thresh)
    elif spiking:
        reset = dict(v_reset=_param(node.v_reset, shape))
    if kind in ("IF", "I"):
        return IFNeuron(
            cells,
            dt=dt,
            thresh=thresh,
            v_rest=0.0,
            alpha_v=_param(_f64(node.r) * dt * MS, shape),
            integrator="exact",
            **reset,
        )
    integ = _node_integrator(node, integrator, writer)
    tau = _f64(node.tau if kind in ("LIF", "LI") else node.tau_mem) * time_scale
    r = _f64(node.r)
    if kind in ("CubaLIF", "CubaLI"):  # the synapse is driven by x; w_in scales the current
        r = r * _f64(node.w_in)
    tau_v = _param(tau / MS, shape)
    if writer == "snntorch-subtract" and spiking:
        beta = 1.0 - dt / tau_v.double()  # snnTorch subtracts theta after the next decay
        reset = dict(reset="subtract", v_reset=(thresh.double() - thresh.double() / beta).float())
    refractory = {}
    if writer == "snntorch" and (kind == "CubaLIF" or (kind == "LIF" and recurrent)):
        refractory = dict(duration_refrac=dt)  # Synaptic/RLeaky: the step after a spike is lost
    return LIFNeuron(
        cells,
        dt=dt,
        tau_v=tau_v,
        alpha_v=_param(r, shape),
        v_rest=_param(node.v_leak, shape),
        thresh=thresh,
        integrator=integ,
        **reset,
        **refractory,
    )


def _synapse(
    node: Any,
    shape: tuple[int, ...],
    dt: float,
    integrator: str,
    time_scale: float,
    writer: str | None,
) -> ExponentialSynapse:
    """The current of a CubaLIF/CubaLI node on one incoming projection."""
    tau_syn = _param(_f64(node.tau_syn) * time_scale / MS, shape)
    # NIR: tau_s I' = -I + w_in x, x held over the step; Norse's LIFCell: I jumps by x
    mode = "impulse" if writer == "norse" else "held"
    return ExponentialSynapse(
        tuple(shape), tau_syn=tau_syn, dt=dt, integrator=integrator, input=mode
    )
