r"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

:func:`export` writes a network's registered graph (``add_layer``/``connect``)
as a :class:`nir.NIRGraph`; :func:`load` builds a graph-driven
:class:`~pysnn.network.SNNNetwork` from a NIR graph or file.  ``nir`` is an
optional dependency (``pip install pysnn[nir]``), imported only inside these
functions.

Conventions (see ``docs/nir.rst``)
----------------------------------
* NIR node parameters are continuous-time; times are written in **seconds**
  (PySNN's ``dt``, ``tau_v``, ``tau_syn`` and delays are in ms).
* The input of a neuron node is held constant during a step, which is what
  PySNN's ``integrator="exact"`` solves exactly: ``LIF(tau, r, v_leak,
  v_threshold, v_reset)`` is ``LIFNeuron(tau_v=tau, alpha_v=r, v_rest=v_leak,
  v_reset=v_reset)``, ``IF(r)`` is ``IFNeuron(alpha_v=r * dt)``.
* NIR spikes where :math:`v > v_{thr}`, PySNN where :math:`v \ge \theta`: the
  threshold is moved by one floating-point step (``nextafter``) each way, so
  both tests agree bit for bit.
* A neuron's initial voltage is ``v_leak`` (LIF) or 0 (IF).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pysnn.connection import AvgPool2d, Conv2d, Linear
from pysnn.connection.stages import Chain, Flatten, SumPool2d, _pair
from pysnn.network import SNNNetwork
from pysnn.neuron import IFNeuron, Input, LIFNeuron
from pysnn.synapse import ExponentialSynapse

Tensor = torch.Tensor

__all__ = ["NIRNetwork", "export", "load"]

#: NIR times are in seconds, PySNN's in ms
_MS = 1e-3


def _nir() -> Any:
    try:
        import nir
    except ImportError as err:  # pragma: no cover - exercised without nir installed
        raise ImportError(
            "pysnn.nir needs the optional dependency 'nir': pip install pysnn[nir]"
        ) from err
    return nir


class NIRNetwork(SNNNetwork):
    """A network loaded by :func:`load`: runs its registered graph and returns the NIR outputs.

    ``net(*inputs)`` takes one input per NIR ``Input`` node (in graph order) and
    returns the spikes of the populations connected to the NIR ``Output``
    nodes (one tensor, or a tuple in graph order).

    Attributes
    ----------
    input_names, output_names : tuple of str
        Names of the NIR input and output nodes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()
        self._output_pops: list[str] = []

    def forward(self, *inputs: Any) -> Any:
        """One timestep of the graph; the spikes of the NIR outputs."""
        super().forward(*inputs)
        spikes = tuple(getattr(self, name).spikes for name in self._output_pops)
        return spikes[0] if len(spikes) == 1 else spikes


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------
def _array(value: Tensor | float, shape: tuple[int, ...]) -> np.ndarray:
    t = torch.as_tensor(value).detach().cpu()
    return np.ascontiguousarray(np.broadcast_to(t.numpy(), shape)).copy()


def _threshold_out(thresh: Tensor, shape: tuple[int, ...]) -> np.ndarray:
    t = torch.as_tensor(thresh).detach().cpu()
    # v >= theta  <=>  v > nextafter(theta, -inf)
    return _array(torch.nextafter(t, torch.full_like(t, -math.inf)), shape)


def _check_neuron(name: str, pop: nn.Module) -> None:
    if bool((pop.refrac_steps > 0).any()):
        raise ValueError(
            f"population {name!r}: a refractory period (duration_refrac) has no NIR equivalent"
        )
    if pop.reset != "rest":
        raise ValueError(
            f"population {name!r}: reset={pop.reset!r} has no NIR equivalent (use reset='rest')"
        )
    if type(pop) is LIFNeuron and pop.integrator not in ("exact", "euler"):
        raise ValueError(
            f"population {name!r}: integrator={pop.integrator!r} has no NIR meaning "
            "(its input is a per-step impulse); use integrator='exact' or 'euler'"
        )


def _neuron_node(nir: Any, name: str, pop: nn.Module, syn_tau: Tensor | None, dt: float) -> Any:
    shape = tuple(pop.features_shape)
    if type(pop) is IFNeuron:
        _check_neuron(name, pop)
        if syn_tau is not None:
            raise ValueError(f"population {name!r}: a synapse in front of IFNeuron has no NIR node")
        if bool((pop.v_rest != 0).any()):
            raise ValueError(
                f"population {name!r}: IFNeuron with v_rest != 0 (NIR's IF starts at v = 0)"
            )
        return nir.IF(
            r=_array(pop.alpha_v.double() / (dt * _MS), shape),
            v_threshold=_threshold_out(pop.thresh, shape),
            v_reset=_array(pop.v_reset, shape),
        )
    if type(pop) is LIFNeuron:
        _check_neuron(name, pop)
        common = dict(
            r=_array(pop.alpha_v, shape),
            v_leak=_array(pop.v_rest, shape),
            v_threshold=_threshold_out(pop.thresh, shape),
            v_reset=_array(pop.v_reset, shape),
            metadata={"pysnn_integrator": pop.integrator},
        )
        tau = _array(pop.tau_v.double() * _MS, shape)
        if syn_tau is None:
            return nir.LIF(tau=tau, **common)
        # PySNN's synapse jumps by x per step; NIR's current integrates w_in * x held over dt
        tau_syn = syn_tau.double()
        w_in = 1.0 / (1.0 - torch.exp(-dt / tau_syn))
        return nir.CubaLIF(
            tau_syn=_array(tau_syn * _MS, shape),
            tau_mem=tau,
            w_in=_array(w_in, shape),
            **common,
        )
    raise ValueError(
        f"population {name!r}: {type(pop).__name__} has no NIR node "
        "(supported: Input, IFNeuron, LIFNeuron)"
    )


def _stage_nodes(nir: Any, label: str, conn: nn.Module, pre_shape: tuple[int, ...], dt: float):
    """NIR nodes ``[(suffix, node), ...]`` of one connection and the output shape."""
    if isinstance(conn, Chain):
        out, shape = [], pre_shape
        for k, stage in enumerate(conn.stages):
            nodes, shape = _stage_nodes(nir, f"{label}[{k}]", stage, shape, dt)
            out += [(f"_{k}{suffix}", node) for suffix, node in nodes]
        return out, shape
    if getattr(conn, "per_synapse_delay", False):
        raise ValueError(
            f"{label}: per-synapse delays have no NIR equivalent (NIR's Delay is per neuron)"
        )
    nodes: list[tuple[str, Any]] = []
    if isinstance(conn, Linear):  # and Recurrent
        weight = conn.weight.detach().cpu().numpy().copy()
        if getattr(conn, "zero_diagonal", False):  # Recurrent ignores its diagonal
            np.fill_diagonal(weight, 0.0)
        if pre_shape and pre_shape[-1] != conn.in_features:
            raise ValueError(f"{label}: input shape {pre_shape} does not end in in_features")
        if len(pre_shape) != 1:
            raise ValueError(
                f"{label}: Linear over a {len(pre_shape)}-d population {pre_shape} (NIR's Linear "
                "takes vectors; put a pysnn.nir.Flatten before it in a Chain)"
            )
        nodes.append(("", nir.Linear(weight=weight)))
        shape: tuple[int, ...] = (conn.out_features,)
    elif isinstance(conn, Conv2d):
        weight = conn.weight.detach().cpu().numpy().copy()
        nodes.append(
            (
                "",
                nir.Conv2d(
                    input_shape=tuple(int(s) for s in pre_shape[1:]),
                    weight=weight,
                    stride=conn.stride,
                    padding=conn.padding,
                    dilation=conn.dilation,
                    groups=conn.groups,
                    bias=np.zeros(conn.out_channels, dtype=weight.dtype),
                ),
            )
        )
        shape = (conn.out_channels, *conn.output_shape(tuple(pre_shape[1:])))
    elif isinstance(conn, (AvgPool2d, SumPool2d)):
        if isinstance(conn, AvgPool2d) and (
            conn.ceil_mode or (any(conn.padding) and not conn.count_include_pad)
        ):
            raise ValueError(f"{label}: AvgPool2d with ceil_mode or count_include_pad=False")
        node_class = nir.AvgPool2d if isinstance(conn, AvgPool2d) else nir.SumPool2d
        node = node_class(
            kernel_size=np.array(conn.kernel_size),
            stride=np.array(conn.stride),
            padding=np.array(conn.padding),
        )
        nodes.append(("", node))
        shape = _pool_shape(pre_shape, conn.kernel_size, conn.stride, conn.padding)
    elif isinstance(conn, Flatten):
        start, end = conn._dims(len(pre_shape))
        shape = tuple(torch.empty((1, *pre_shape)).flatten(start, end).shape[1:])
        nodes.append(
            (
                "",
                nir.Flatten(
                    input_type={"input": np.array(pre_shape)}, start_dim=start - 1, end_dim=end - 1
                ),
            )
        )
    else:
        raise ValueError(
            f"{label}: {type(conn).__name__} has no NIR node (supported: Linear, Recurrent, "
            "Conv2d, AvgPool2d, pysnn.nir.SumPool2d, pysnn.nir.Flatten, pysnn.nir.Chain)"
        )
    delay = int(getattr(conn, "max_delay", 0))
    if delay:
        nodes.append(("_delay", nir.Delay(delay=np.full(shape, delay * dt * _MS))))
    return nodes, shape


def _pool_shape(shape: tuple[int, ...], k: Any, s: Any, p: Any) -> tuple[int, ...]:
    out = F.avg_pool2d(torch.zeros(1, *shape), k, s, p)
    return tuple(out.shape[1:])


def export(net: SNNNetwork, dt: float | None = None) -> Any:
    """Write ``net``'s registered graph as a NIR graph.

    Parameters
    ----------
    net : SNNNetwork
        A network whose projections are registered with their presynaptic
        population (``add_layer(name, connection, neuron, pre)`` or ``connect``).
    dt : float, optional
        Timestep in ms (default: the populations' ``dt``, which must agree);
        needed for :class:`~pysnn.neuron.IFNeuron`, synapses and delays.

    Returns
    -------
    nir.NIRGraph
        Nodes named after the network's modules (``"."`` replaced by ``"_"``),
        one ``Output`` node per output population of the default step.

    Raises
    ------
    TypeError
        If ``net`` is not an :class:`~pysnn.network.SNNNetwork`.
    ValueError
        Naming the feature that NIR cannot express: an unsupported population,
        connection or synapse type, per-synapse delays, a refractory period,
        ``reset="subtract"``, ``integrator="impulse"``, attached learning rules,
        mixed timesteps or a projection without its presynaptic population.
    ImportError
        If ``nir`` is not installed.
    """
    nir = _nir()
    from pysnn import graph as pgraph

    if not isinstance(net, SNNNetwork):
        raise TypeError(f"net must be an SNNNetwork, got {type(net).__name__}")
    if net.rules:
        names = ", ".join(type(r).__name__ for r in net.rules)
        raise ValueError(
            f"net has learning rules attached ({names}): NIR holds no learning-rule state; "
            "detach them (net.detach_rule(rule)) to export the weights"
        )
    layers = list(net.layers.values())
    plan = pgraph.plan(layers)  # raises for a layer without pre
    names = {k: v.replace(".", "_") for k, v in pgraph.module_names(net).items()}
    pops: list[nn.Module] = list(plan.inputs) + [post for post, _ in plan.stages]
    dts = {float(p.dt) for p in pops if hasattr(p, "dt")}
    if dt is None:
        if len(dts) != 1:
            raise ValueError(f"the populations have different timesteps {sorted(dts)}; pass dt")
        dt = dts.pop()
    else:
        dt = float(dt)
        if not dt > 0 or not math.isfinite(dt):
            raise ValueError(f"dt must be a positive number of ms, got {dt}")
        if dts and dts != {dt}:
            raise ValueError(f"dt={dt} differs from the populations' timestep {sorted(dts)}")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for pop in plan.inputs:
        if not isinstance(pop, Input):
            raise ValueError(
                f"input population {names[id(pop)]!r}: {type(pop).__name__} has no NIR node "
                "(inputs must be pysnn.neuron.Input)"
            )
        nodes[names[id(pop)]] = nir.Input(input_type={"input": np.array(pop.features_shape)})
    for post, projections in plan.stages:
        name = names[id(post)]
        syns = [layer.synapse for layer in projections]
        syn_tau = None
        if any(s is not None for s in syns):
            if not all(
                isinstance(s, ExponentialSynapse) and type(s) is ExponentialSynapse for s in syns
            ):
                kinds = sorted({type(s).__name__ if s is not None else "delta" for s in syns})
                raise ValueError(
                    f"population {name!r}: synapses {kinds} have no NIR node (every projection "
                    "onto a population needs the same ExponentialSynapse: NIR's CubaLIF)"
                )
            taus = [s.tau_syn.detach().cpu().double() for s in syns]
            if any(not torch.equal(t, taus[0]) for t in taus[1:]):
                raise ValueError(f"population {name!r}: synapses with different tau_syn")
            syn_tau = torch.broadcast_to(taus[0], tuple(post.features_shape))
        nodes[name] = _neuron_node(nir, name, post, syn_tau, dt)
    for index, layer in enumerate(layers):
        pre_name, post_name = names[id(layer.pre)], names[id(layer.neuron)]
        stage_nodes, shape = _stage_nodes(
            nir, f"layer {layer.name!r}", layer.connection, tuple(layer.pre.features_shape), dt
        )
        if tuple(shape) != tuple(layer.neuron.features_shape):
            raise ValueError(
                f"layer {layer.name!r}: connection output {shape} does not match population "
                f"{post_name!r} {tuple(layer.neuron.features_shape)}"
            )
        previous = pre_name
        for suffix, node in stage_nodes:
            node_name = f"{layer.name}{suffix}"
            if node_name in nodes:
                raise ValueError(f"layer {layer.name!r}: node name {node_name!r} is taken")
            node.metadata["pysnn_layer"] = index  # keeps the order of summed inputs
            nodes[node_name] = node
            edges.append((previous, node_name))
            previous = node_name
        edges.append((previous, post_name))
    outputs = plan.outputs
    for k, pop in enumerate(outputs):
        out_name = "output" if len(outputs) == 1 else f"output_{k}"
        nodes[out_name] = nir.Output(output_type={"output": np.array(pop.features_shape)})
        edges.append((names[id(pop)], out_name))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"pysnn_dt_ms": dt})


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------
_STAGES = ("Linear", "Affine", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Delay")
_NEURONS = ("LIF", "IF", "CubaLIF")


def _f32(value: Any, shape: tuple[int, ...]) -> Tensor:
    return torch.tensor(np.broadcast_to(np.asarray(value, dtype=np.float64), shape)).float()


def _threshold_in(value: Any, shape: tuple[int, ...]) -> Tensor:
    t = _f32(value, shape)
    return torch.nextafter(t, torch.full_like(t, math.inf))  # v > thr  <=>  v >= next(thr)


def _neuron_shape(node: Any) -> tuple[int, ...] | None:
    shape = np.asarray(node.v_threshold).shape
    return tuple(int(s) for s in shape) if shape else None


def _build_stage(kind: str, node: Any, name: str, shape: tuple[int, ...], dt: float):
    """A PySNN stage for one NIR node and its output shape (``None`` stage for Delay)."""
    if kind in ("Linear", "Affine"):
        weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float64)).float()
        if weight.dim() != 2:
            raise ValueError(f"node {name!r}: {kind} weight must be 2-d, got {tuple(weight.shape)}")
        if kind == "Affine" and np.any(np.asarray(node.bias) != 0):
            raise ValueError(
                f"node {name!r}: Affine with a nonzero bias (PySNN's Linear has no bias)"
            )
        if shape[-1:] != (weight.shape[1],) or len(shape) != 1:
            raise ValueError(f"node {name!r}: {kind} of {tuple(weight.shape)} on input {shape}")
        conn = Linear(int(weight.shape[1]), int(weight.shape[0]), dt=dt)
        with torch.no_grad():
            conn.weight.copy_(weight)
        return conn, (int(weight.shape[0]),)
    if kind == "Conv2d":
        weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float64)).float()
        if node.bias is not None and np.any(np.asarray(node.bias) != 0):
            raise ValueError(f"node {name!r}: Conv2d with a nonzero bias (PySNN's has none)")
        if isinstance(node.padding, str):
            raise ValueError(f"node {name!r}: Conv2d padding {node.padding!r} (give numbers)")
        groups = int(node.groups)
        conn = Conv2d(
            int(weight.shape[1]) * groups,
            int(weight.shape[0]),
            tuple(int(k) for k in weight.shape[2:]),
            dt=dt,
            stride=_pair(node.stride, "stride"),
            padding=_pair(node.padding, "padding", minimum=0),
            dilation=_pair(node.dilation, "dilation"),
            groups=groups,
        )
        with torch.no_grad():
            conn.weight.copy_(weight)
        return conn, (conn.out_channels, *conn.output_shape(tuple(shape[1:])))
    if kind in ("AvgPool2d", "SumPool2d"):
        k = _pair(node.kernel_size, "kernel_size")
        s = _pair(node.stride, "stride")
        p = _pair(node.padding, "padding", minimum=0)
        stage = AvgPool2d(k, s, p) if kind == "AvgPool2d" else SumPool2d(k, s, p)
        return stage, _pool_shape(shape, k, s, p)
    if kind == "Flatten":
        ndim = len(shape)
        declared = node.input_type.get("input")
        offset = 1 if declared is not None and len(declared) == ndim + 1 else 0
        stage = Flatten(
            int(node.start_dim) - offset, int(node.end_dim) - (offset if node.end_dim >= 0 else 0)
        )
        start, end = stage._dims(ndim)
        return stage, tuple(torch.empty((1, *shape)).flatten(start, end).shape[1:])
    raise AssertionError(kind)  # pragma: no cover


def load(graph_or_path: Any, dt: float) -> NIRNetwork:
    """Build a graph-driven network that runs a NIR graph at timestep ``dt``.

    Parameters
    ----------
    graph_or_path : nir.NIRGraph or str or pathlib.Path
        The graph, or a file written by :func:`nir.write`.
    dt : float
        Timestep in ms (NIR times are read in seconds).

    Returns
    -------
    NIRNetwork
        Populations named after the NIR neuron and input nodes; one
        projection (a :class:`Chain` where a path has several nodes) per path
        of ``Linear``/``Affine``/``Conv2d``/pooling/``Flatten``/``Delay`` nodes
        between two of them.  ``LIF`` and ``CubaLIF`` become
        :class:`~pysnn.neuron.LIFNeuron` with ``integrator="exact"`` (or the
        integrator recorded by :func:`export`), ``CubaLIF`` with an
        :class:`~pysnn.synapse.ExponentialSynapse` on each incoming projection.

    Raises
    ------
    TypeError
        If ``graph_or_path`` is neither a graph nor a path.
    ValueError
        For a bad ``dt``, or naming the node whose type or parameters PySNN
        cannot run (e.g. ``LI``, ``Threshold``, a nonzero bias, non-uniform or
        non-whole-step delays, an output that is not a population).
    ImportError
        If ``nir`` is not installed.
    """
    nir = _nir()
    if isinstance(graph_or_path, (str, Path)):
        graph = nir.read(str(graph_or_path))
    elif isinstance(graph_or_path, nir.NIRGraph):
        graph = graph_or_path
    else:
        raise TypeError(
            f"graph_or_path must be a nir.NIRGraph or a path, got {type(graph_or_path).__name__}"
        )
    if (
        isinstance(dt, bool)
        or not isinstance(dt, (int, float))
        or not (math.isfinite(dt) and dt > 0)
    ):
        raise ValueError(f"dt must be a positive number of ms, got {dt!r}")
    dt = float(dt)
    kinds: dict[str, str] = {}
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "NIRGraph":
            raise ValueError(f"node {name!r}: nested NIR graphs are not supported")
        if kind not in _STAGES + _NEURONS + ("Input", "Output"):
            raise ValueError(
                f"node {name!r}: NIR node type {kind} is not supported (supported: Input, "
                f"Output, {', '.join(_NEURONS + _STAGES)})"
            )
        kinds[name] = kind
    succ: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise ValueError(f"edge ({src!r}, {dst!r}): no node named {end!r}")
        succ[src].append(dst)
    populations = [n for n in graph.nodes if kinds[n] == "Input" or kinds[n] in _NEURONS]
    # paths from each population through stage nodes to a population or an output
    paths: list[tuple[str, list[str], str]] = []
    outputs: list[tuple[str, str]] = []

    def walk(start: str, node: str, trail: list[str]) -> None:
        for nxt in succ[node]:
            kind = kinds[nxt]
            if kind == "Output":
                if trail:
                    raise ValueError(
                        f"node {nxt!r}: an Output fed by {kinds[trail[-1]]} node {trail[-1]!r} "
                        "(PySNN outputs are spiking populations)"
                    )
                outputs.append((nxt, start))
            elif kind in _STAGES:
                if nxt in trail:
                    raise ValueError(f"node {nxt!r}: a cycle without a neuron node")
                walk(start, nxt, trail + [nxt])
            elif kind == "Input":
                raise ValueError(f"node {nxt!r}: an Input node with incoming edges")
            else:
                paths.append((start, trail, nxt))

    populations.sort(key=lambda n: kinds[n] != "Input")
    for pop in populations:
        walk(pop, pop, [])

    def order(path: tuple[str, list[str], str]) -> float:
        marks = [graph.nodes[n].metadata.get("pysnn_layer") for n in path[1]]
        marks = [int(m) for m in marks if m is not None]
        return min(marks) if marks else math.inf

    paths.sort(key=order)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in populations:
        node = graph.nodes[name]
        if kinds[name] == "Input":
            shapes[name] = tuple(int(s) for s in np.asarray(node.input_type["input"]).reshape(-1))
        else:
            shape = _neuron_shape(node)
            if shape is not None:
                shapes[name] = shape
    # build the stages, inferring the shapes of scalar-parameter neurons on the way
    built: list[tuple[str, list[nn.Module], str]] = []
    pending = list(paths)
    while pending:
        progress = False
        for path in list(pending):
            start, trail, end = path
            if start not in shapes:
                continue
            stages, shape = [], shapes[start]
            delay_ms = 0.0
            for stage_name in trail:
                kind, node = kinds[stage_name], graph.nodes[stage_name]
                if kind == "Delay":
                    values = np.unique(np.asarray(node.delay, dtype=np.float64))
                    if values.size != 1:
                        raise ValueError(
                            f"node {stage_name!r}: Delay with different delays per neuron "
                            "(PySNN delays a projection by one value)"
                        )
                    delay_ms += float(values[0]) / _MS
                    continue
                stage, shape = _build_stage(kind, node, stage_name, shape, dt)
                stages.append(stage)
            if delay_ms:
                weighted = [s for s in stages if isinstance(s, (Linear, Conv2d))]
                if len(weighted) != 1:
                    raise ValueError(
                        f"Delay on the path {start!r} -> {end!r}: needs exactly one Linear or "
                        "Conv2d on the path to carry it"
                    )
                steps = round(delay_ms / dt)
                if abs(delay_ms / dt - steps) > 1e-6 * max(steps, 1):
                    raise ValueError(
                        f"Delay on the path {start!r} -> {end!r}: {delay_ms} ms is not a whole "
                        f"number of timesteps dt={dt} ms"
                    )
                weighted[0].set_delay(steps * dt)
            if not stages:
                raise ValueError(
                    f"edge {start!r} -> {end!r}: two populations joined without a "
                    "weight (put a Linear node between them)"
                )
            if end in shapes and shapes[end] != shape:
                raise ValueError(
                    f"node {end!r}: its parameters have shape {shapes[end]}, its input {shape}"
                )
            shapes[end] = shape
            built.append((start, stages, end))
            pending.remove(path)
            progress = True
        if not progress:
            raise ValueError(
                f"cannot infer the shape of nodes {sorted({p[0] for p in pending})} "
                "(give their parameters full shapes)"
            )
    net = NIRNetwork()
    modules: dict[str, nn.Module] = {}
    attr: dict[str, str] = {}
    for name in populations:
        if name not in shapes:
            raise ValueError(f"node {name!r}: unconnected neuron with scalar parameters")
        shape, node, kind = shapes[name], graph.nodes[name], kinds[name]
        if kind == "Input":
            module: nn.Module = Input((1, *shape), dt=dt, integrator="exact")
        elif kind == "IF":
            module = IFNeuron(
                (1, *shape),
                dt=dt,
                thresh=_threshold_in(node.v_threshold, shape),
                v_rest=0.0,
                v_reset=_f32(node.v_reset, shape),
                alpha_v=_f32(np.asarray(node.r, dtype=np.float64) * dt * _MS, shape),
                integrator="exact",
            )
        else:
            tau = node.tau if kind == "LIF" else node.tau_mem
            r = np.asarray(node.r, dtype=np.float64)
            if kind == "CubaLIF":
                tau_syn = np.asarray(node.tau_syn, dtype=np.float64) / _MS
                r = r * np.asarray(node.w_in, dtype=np.float64) * -np.expm1(-dt / tau_syn)
            integrator = (
                node.metadata.get("pysnn_integrator", "exact") if node.metadata else "exact"
            )
            if isinstance(integrator, bytes):
                integrator = integrator.decode()
            if integrator not in ("exact", "euler"):
                integrator = "exact"
            module = LIFNeuron(
                (1, *shape),
                dt=dt,
                tau_v=_f32(np.asarray(tau, dtype=np.float64) / _MS, shape),
                alpha_v=_f32(r, shape),
                v_rest=_f32(node.v_leak, shape),
                v_reset=_f32(node.v_reset, shape),
                thresh=_threshold_in(node.v_threshold, shape),
                integrator=str(integrator),
            )
        key = name.replace(".", "_")
        if not key.isidentifier() or hasattr(net, key):
            key = f"node_{len(attr)}"
        net.add_module(key, module)
        modules[name], attr[name] = module, key
    for k, (start, stages, end) in enumerate(built):
        conn = stages[0] if len(stages) == 1 else Chain(*stages)
        synapse = None
        if kinds[end] == "CubaLIF":
            tau_syn = np.asarray(graph.nodes[end].tau_syn, dtype=np.float64) / _MS
            synapse = ExponentialSynapse(
                (1, *shapes[end]), tau_syn=_f32(tau_syn, shapes[end]), dt=dt
            )
        layer_name = f"{attr[start]}_to_{attr[end]}_{k}"
        net.add_layer(layer_name, conn, modules[end], modules[start], synapse=synapse)
    inputs = [n for n in populations if kinds[n] == "Input"]
    net.input_names = tuple(inputs)
    net.output_names = tuple(name for name, _ in outputs)
    net._output_pops = [attr[pop] for _, pop in outputs]
    if not net._output_pops:
        raise ValueError("the NIR graph has no Output node fed by a neuron node")
    return net
