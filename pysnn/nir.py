r"""Export to and import from NIR, the Neuromorphic Intermediate Representation.

:func:`export` writes a network's registered graph (``add_layer``/``connect``)
as a :class:`nir.NIRGraph`; :func:`load` builds a graph-driven
:class:`~pysnn.network.SNNNetwork` from a NIR graph or file, including the
files snnTorch and Norse write.  ``nir`` is an optional dependency
(``pip install pysnn[nir]``), imported only inside these functions.

Conventions (see ``docs/nir.rst``)
----------------------------------
* NIR node parameters are continuous-time; times are written in **seconds**
  (PySNN's ``dt``, ``tau_v``, ``tau_syn`` and delays are in ms).
* The input of a node is held constant during a step.  ``integrator="exact"``
  solves NIR's equations exactly under that assumption, ``integrator="euler"``
  with forward Euler, updating a ``CubaLIF``'s current before its voltage (what
  snnTorch and Norse do).
* NIR spikes where :math:`v > v_{thr}`, PySNN where :math:`v \ge \theta`: the
  threshold is moved by one floating-point step (``nextafter``) each way, so
  both tests agree bit for bit.
* A neuron's initial voltage is ``v_leak`` (LIF, LI, CubaLIF, CubaLI) or 0 (IF, I).
"""

from __future__ import annotations

import keyword
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pysnn.connection import AvgPool2d, Conv2d, Linear, Recurrent
from pysnn.connection.separable import Conv2dSep, Merge
from pysnn.connection.stages import Chain, Flatten, SumPool2d, _pair
from pysnn.network import SNNNetwork
from pysnn.neuron import IFNeuron, Input, LIFNeuron
from pysnn.synapse import ExponentialSynapse

Tensor = torch.Tensor

__all__ = ["Chain", "Flatten", "NIRNetwork", "SumPool2d", "export", "load", "WRITERS"]

#: NIR times are in seconds, PySNN's in ms
_MS = 1e-3
#: integrators of :func:`load` (NIR's reference semantics: exact, or forward Euler)
_INTEGRATORS = ("exact", "euler")
#: the writers whose known departures from NIR :func:`load` can correct (``writer=``)
WRITERS = ("snntorch", "snntorch-subtract", "norse")
#: the export step of Norse's ``to_nir`` (s): it writes every time constant multiplied by it
NORSE_EXPORT_DT = 1e-3


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
    returns, for each NIR ``Output`` node (in graph order), the spikes of the
    spiking population feeding it, or the voltage of a readout (``LI``,
    ``CubaLI``, ``I``): one tensor, or a tuple.

    Attributes
    ----------
    input_names, output_names : tuple of str
        Names of the NIR input and output nodes.
    node_names : dict of str to str
        NIR node name -> attribute name of its population.  A node name is
        used as it is when it is a Python identifier that the network does
        not use already; otherwise every character that cannot appear in an
        identifier becomes ``"_"`` (``"r.lif"`` -> ``r_lif``) and a name that
        then starts with a digit, is a keyword or is taken gets the prefix
        ``node_`` (``"1"`` -> ``node_1``), and a suffix ``_2``, ``_3``... if
        still taken.
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_names: tuple[str, ...] = ()
        self.output_names: tuple[str, ...] = ()
        self.node_names: dict[str, str] = {}
        self._outputs: list[tuple[str, str]] = []
        #: argument index of each input population in registration order
        self._arguments: list[int] = []

    def forward(self, *inputs: Any) -> Any:
        """One timestep of the graph; the spikes (or readout voltages) of the NIR outputs.

        ``inputs`` are in the order of :attr:`input_names`.
        """
        if len(inputs) == len(self._arguments):  # the graph takes them in registration order
            inputs = tuple(inputs[k] for k in self._arguments)
        super().forward(*inputs)
        out = tuple(getattr(getattr(self, attr), field) for attr, field in self._outputs)
        return out[0] if len(out) == 1 else out


def _attribute_name(name: str, net: nn.Module, taken: set[str]) -> str:
    """A valid, unused attribute name for NIR node ``name`` (rules in :class:`NIRNetwork`)."""
    if name.isidentifier() and not keyword.iskeyword(name):
        if name not in taken and not hasattr(net, name):
            return name
    key = re.sub(r"\W", "_", name) or "node"
    if key[0].isdigit() or keyword.iskeyword(key) or key in taken or hasattr(net, key):
        key = f"node_{key}"
    base, k = key, 2
    while key in taken or hasattr(net, key):
        key, k = f"{base}_{k}", k + 1
    return key


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
    if getattr(pop, "fire_once", False):
        raise ValueError(f"population {name!r}: fire_once has no NIR equivalent")
    if bool((pop.refrac_steps > 0).any()):
        raise ValueError(
            f"population {name!r}: a refractory period (duration_refrac) has no NIR equivalent"
        )
    if pop.reset != "rest":
        raise ValueError(
            f"population {name!r}: reset={pop.reset!r} has no NIR equivalent (use reset='rest')"
        )
    if type(pop) is LIFNeuron and pop.integrator not in _INTEGRATORS:
        raise ValueError(
            f"population {name!r}: integrator={pop.integrator!r} has no NIR meaning "
            "(its input is a per-step impulse); use integrator='exact' or 'euler'"
        )


def _synapse_w_in(name: str, pop: nn.Module, syns: list[Any], dt: float) -> tuple[Tensor, Tensor]:
    """``(tau_syn, w_in)`` of the CubaLIF node that the synapses onto ``pop`` are, or raise."""
    kinds = sorted({type(s).__name__ if s is not None else "delta" for s in syns})
    if not all(s is not None and type(s) is ExponentialSynapse for s in syns):
        raise ValueError(
            f"population {name!r}: synapses {kinds} have no NIR node (NIR's CubaLIF is one "
            "ExponentialSynapse on every projection onto a LIFNeuron)"
        )
    if type(pop) is not LIFNeuron:
        raise ValueError(f"population {name!r}: a synapse in front of {type(pop).__name__}")
    taus = [s.tau_syn.detach().cpu().double() for s in syns]
    if any(not torch.equal(t, taus[0]) for t in taus[1:]):
        raise ValueError(f"population {name!r}: synapses with different tau_syn")
    modes = {(s.integrator, s.input) for s in syns}
    if len(modes) > 1:
        raise ValueError(f"population {name!r}: synapses with different integrators or inputs")
    syn_integrator, input_mode = modes.pop()
    if syn_integrator != pop.integrator:
        raise ValueError(
            f"population {name!r}: ExponentialSynapse integrator={syn_integrator!r} with a "
            f"LIFNeuron integrator={pop.integrator!r}: NIR's CubaLIF has one integration"
        )
    tau_syn = torch.broadcast_to(taus[0], tuple(pop.features_shape))
    if input_mode == "held":  # tau_s I' = -I + x: NIR's CubaLIF current with w_in = 1
        return tau_syn, torch.ones_like(tau_syn)
    if syn_integrator == "euler":
        # I <- (1 - dt/tau_s) I + x is NIR's Euler step I += dt/tau_s (w_in x - I), w_in = tau_s/dt
        return tau_syn, tau_syn / dt
    raise ValueError(
        f"population {name!r}: an ExponentialSynapse whose current jumps by the input "
        "(input='impulse') and decays exactly has no NIR node: NIR's CubaLIF holds its "
        "input over the step; use ExponentialSynapse(input='held') or integrator='euler'"
    )


def _neuron_node(
    nir: Any, name: str, pop: nn.Module, syns: list[Any], shape: tuple[int, ...], dt: float
) -> Any:
    with_synapse = any(s is not None for s in syns)
    if type(pop) is IFNeuron:
        _check_neuron(name, pop)
        if with_synapse:
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
        if not with_synapse:
            return nir.LIF(tau=tau, **common)
        tau_syn, w_in = _synapse_w_in(name, pop, syns, dt)
        return nir.CubaLIF(
            tau_syn=_array(tau_syn * _MS, shape), tau_mem=tau, w_in=_array(w_in, shape), **common
        )
    raise ValueError(
        f"population {name!r}: {type(pop).__name__} has no NIR node "
        "(supported: Input, IFNeuron, LIFNeuron)"
    )


#: connection types :func:`export` writes, by exact type
_EXPORTED_STAGES = (Linear, Recurrent, Conv2d, Merge, Conv2dSep, AvgPool2d, SumPool2d, Flatten)


def _check_connection(label: str, conn: nn.Module, in_chain: bool = False) -> None:
    """Refuse, by name, a connection that NIR cannot express."""
    if type(conn) is Chain:
        for k, stage in enumerate(conn.stages):
            _check_connection(f"{label}[{k}]", stage, in_chain=True)
        return
    if type(conn) not in _EXPORTED_STAGES:
        raise ValueError(
            f"{label}: {type(conn).__name__} has no NIR node (supported: Linear, Recurrent, "
            "Conv2d, Conv2dSep, Merge, AvgPool2d, SumPool2d, Flatten, Chain)"
        )
    if getattr(conn, "per_synapse_delay", False):
        raise ValueError(
            f"{label}: per-synapse delays have no NIR equivalent (NIR's Delay is per neuron)"
        )
    if type(conn) is Conv2dSep and in_chain:
        raise ValueError(
            f"{label}: a Conv2dSep inside a Chain (it is exported as one Conv2d + Delay path "
            "per delay; use it as a projection of its own)"
        )
    if type(conn) is AvgPool2d and (
        conn.ceil_mode or (any(conn.padding) and not conn.count_include_pad)
    ):
        raise ValueError(f"{label}: AvgPool2d with ceil_mode or count_include_pad=False")


def _pool_shape(shape: tuple[int, ...], k: Any, s: Any, p: Any) -> tuple[int, ...]:
    out = F.avg_pool2d(torch.zeros(1, *shape), k, s, p)
    return tuple(out.shape[1:])


def _flatten_shape(stage: Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    start, end = stage._dims(len(shape))
    return tuple(torch.empty((1, *shape)).flatten(start, end).shape[1:])


def _out_shape(conn: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Per-sample output shape of a (checked) connection for input ``shape``; ValueError if none."""
    if type(conn) is Chain:
        for stage in conn.stages:
            shape = _out_shape(stage, shape)
        return shape
    if isinstance(conn, Linear):
        if len(shape) != 1 or shape[0] != conn.in_features:
            raise ValueError(f"{type(conn).__name__} of {conn.in_features} inputs on {shape}")
        return (conn.out_features,)
    if isinstance(conn, Conv2d):
        if len(shape) != 3 or shape[0] != conn.in_channels:
            raise ValueError(f"{type(conn).__name__} of {conn.in_channels} channels on {shape}")
        conn._check_fits(shape[1:], "the input")
        return (conn.out_channels, *conn.output_shape(shape[1:]))
    if isinstance(conn, (AvgPool2d, SumPool2d)):
        if len(shape) != 3:
            raise ValueError(f"{type(conn).__name__} on {shape}")
        return _pool_shape(shape, conn.kernel_size, conn.stride, conn.padding)
    if isinstance(conn, Flatten):
        return _flatten_shape(conn, shape)
    raise AssertionError(type(conn))  # pragma: no cover - _check_connection ran first


def _shape_candidates(pop: nn.Module) -> list[tuple[int, ...]]:
    """Per-sample shapes a population may have: its current one, its ``cells_shape`` with or
    without a leading batch entry (PySNN 0.1 shapes include the batch)."""
    out = [tuple(int(s) for s in pop.features_shape)]
    cells = tuple(int(s) for s in getattr(pop, "cells_shape", ()))
    for shape in (cells, cells[1:] if len(cells) >= 2 else ()):
        if shape and shape not in out:
            out.append(shape)
    return out


def _export_shapes(layers: list[Any], pops: list[nn.Module], names: dict[int, str]) -> dict:
    """Per-sample shape of every population, inferred along the graph (no step needed).

    Each population starts with its candidate shapes; a projection keeps the
    presynaptic candidates its connection accepts and whose output is a
    candidate of the postsynaptic population, and vice versa, until nothing
    changes.  One candidate left: that shape; none: the population's own
    (the stage export then names the mismatch); several: the current shape of
    a population that has run, else a :class:`ValueError` naming it.
    """
    cand = {id(p): _shape_candidates(p) for p in pops}
    changed = True
    while changed:
        changed = False
        for layer in layers:
            pre, post = id(layer.pre), id(layer.neuron)
            outs: dict[tuple[int, ...], tuple[int, ...]] = {}
            for shape in cand[pre]:
                try:
                    outs[shape] = _out_shape(layer.connection, shape)
                except ValueError:
                    continue
            new_pre = [s for s in cand[pre] if s in outs and outs[s] in cand[post]]
            reached = {outs[s] for s in new_pre}
            new_post = [s for s in cand[post] if s in reached]
            if not new_pre or not new_post:  # inconsistent: left to the stage export to name
                continue
            if new_pre != cand[pre] or new_post != cand[post]:
                cand[pre], cand[post], changed = new_pre, new_post, True
    shapes = {}
    for pop in pops:
        options = cand[id(pop)]
        own = tuple(int(s) for s in pop.features_shape)
        if len(options) == 1:
            shapes[id(pop)] = options[0]
        elif own in options and not getattr(pop, "is_fresh", True):
            shapes[id(pop)] = own
        else:
            raise ValueError(
                f"population {names[id(pop)]!r}: its per-sample shape is ambiguous, one of "
                f"{options} (cells_shape {tuple(pop.cells_shape)} may or may not start with a "
                "batch entry); build it with its per-sample shape, e.g. (C, H, W), or run "
                "one step first"
            )
    return shapes


def _stage_nodes(
    nir: Any, label: str, conn: nn.Module, pre_shape: tuple[int, ...], dt: float
) -> tuple[list[list[tuple[str, Any]]], tuple[int, ...]]:
    """NIR nodes of one connection as parallel paths ``[[(suffix, node), ...], ...]``, and the
    output shape (one path, except for a :class:`~pysnn.connection.Conv2dSep`: one per delay)."""
    if type(conn) is Chain:
        path: list[tuple[str, Any]] = []
        shape = pre_shape
        for k, stage in enumerate(conn.stages):
            (nodes,), shape = _stage_nodes(nir, f"{label}[{k}]", stage, shape, dt)
            path += [(f"_{k}{suffix}", node) for suffix, node in nodes]
        return [path], shape
    try:
        shape = _out_shape(conn, pre_shape)
    except ValueError:
        if isinstance(conn, Linear) and len(pre_shape) != 1:
            raise ValueError(
                f"{label}: Linear over a {len(pre_shape)}-d population {pre_shape} (NIR's Linear "
                "takes vectors; put a pysnn.nir.Flatten before it in a Chain)"
            ) from None
        raise ValueError(
            f"{label}: {type(conn).__name__} does not take an input of shape {pre_shape}"
        ) from None

    def delayed(steps: int, path: list[tuple[str, Any]], suffix: str) -> list[tuple[str, Any]]:
        if steps:
            path.append((f"{suffix}_delay", nir.Delay(delay=np.full(shape, steps * dt * _MS))))
        return path

    if isinstance(conn, Linear):  # and Recurrent
        weight = conn.weight.detach().cpu().numpy().copy()
        if getattr(conn, "zero_diagonal", False):  # Recurrent ignores its diagonal
            np.fill_diagonal(weight, 0.0)
        bias = conn._parameters.get("bias")
        if bias is None:
            node = nir.Linear(weight=weight)
        else:
            node = nir.Affine(weight=weight, bias=bias.detach().cpu().numpy().copy())
        return [delayed(int(conn.max_delay), [("", node)], "")], shape
    if type(conn) is Conv2dSep:
        kernel = conn.kernel().detach().cpu().numpy()  # (O, C_g, D, kh, kw)
        paths = []
        for d, tap in enumerate(conn.taps.tolist()):
            node = _conv_node(nir, conn, pre_shape, np.ascontiguousarray(kernel[:, :, d]))
            paths.append(delayed(int(tap), [(f"_tap{d}", node)], f"_tap{d}"))
        return paths, shape
    if isinstance(conn, Conv2d):  # and Merge
        weight = conn.weight.detach().cpu().numpy().copy()
        node = _conv_node(nir, conn, pre_shape, weight)
        return [delayed(int(conn.max_delay), [("", node)], "")], shape
    if isinstance(conn, (AvgPool2d, SumPool2d)):
        node_class = nir.AvgPool2d if isinstance(conn, AvgPool2d) else nir.SumPool2d
        node = node_class(
            kernel_size=np.array(conn.kernel_size),
            stride=np.array(conn.stride),
            padding=np.array(conn.padding),
        )
        return [[("", node)]], shape
    start, end = conn._dims(len(pre_shape))  # Flatten
    node = nir.Flatten(
        input_type={"input": np.array(pre_shape)}, start_dim=start - 1, end_dim=end - 1
    )
    return [[("", node)]], shape


def _conv_node(nir: Any, conn: Conv2d, pre_shape: tuple[int, ...], weight: np.ndarray) -> Any:
    bias = conn._parameters.get("bias")
    return nir.Conv2d(
        input_shape=tuple(int(s) for s in pre_shape[1:]),
        weight=weight,
        stride=conn.stride,
        padding=conn.padding,
        dilation=conn.dilation,
        groups=conn.groups,
        bias=(
            np.zeros(conn.out_channels, dtype=weight.dtype)
            if bias is None
            else bias.detach().cpu().numpy().copy()
        ),
    )


def export(net: SNNNetwork, dt: float | None = None) -> Any:
    """Write ``net``'s registered graph as a NIR graph, exactly or not at all.

    Parameters
    ----------
    net : SNNNetwork
        A network whose projections are registered with their presynaptic
        population (``add_layer(name, connection, neuron, pre)`` or ``connect``).
        It need not have run: the per-sample shapes are inferred along the
        graph from the input populations and the connections.
    dt : float, optional
        Timestep in ms (default: the populations' ``dt``, which must agree);
        needed for :class:`~pysnn.neuron.IFNeuron`, synapses and delays.

    Returns
    -------
    nir.NIRGraph
        Nodes named after the network's modules (``"."`` replaced by ``"_"``),
        one ``Output`` node per output population of the default step.  A
        :class:`~pysnn.connection.Conv2dSep` becomes one ``Conv2d`` (and
        ``Delay``) path per delay.

    Raises
    ------
    TypeError
        If ``net`` is not an :class:`~pysnn.network.SNNNetwork`.
    ValueError
        Naming the feature that NIR cannot express: an unsupported population,
        connection or synapse type, per-synapse delays, a refractory period,
        ``reset="subtract"``, ``fire_once``, ``integrator="impulse"``, an
        exponential synapse with jumps integrated exactly, attached learning
        rules, mixed timesteps, a projection without its presynaptic
        population, or a population whose per-sample shape is ambiguous.
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
    for pop in plan.inputs:
        if not isinstance(pop, Input):
            raise ValueError(
                f"input population {names[id(pop)]!r}: {type(pop).__name__} has no NIR node "
                "(inputs must be pysnn.neuron.Input)"
            )
    for layer in layers:
        _check_connection(f"layer {layer.name!r}", layer.connection)
    shapes = _export_shapes(layers, pops, names)
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for pop in plan.inputs:
        nodes[names[id(pop)]] = nir.Input(input_type={"input": np.array(shapes[id(pop)])})
    for post, projections in plan.stages:
        name = names[id(post)]
        syns = [layer.synapse for layer in projections]
        nodes[name] = _neuron_node(nir, name, post, syns, shapes[id(post)], dt)
    for index, layer in enumerate(layers):
        pre_name, post_name = names[id(layer.pre)], names[id(layer.neuron)]
        label = f"layer {layer.name!r}"
        paths, shape = _stage_nodes(nir, label, layer.connection, shapes[id(layer.pre)], dt)
        if tuple(shape) != shapes[id(layer.neuron)]:
            raise ValueError(
                f"{label}: connection output {shape} does not match population "
                f"{post_name!r} {shapes[id(layer.neuron)]}"
            )
        for path in paths:
            previous = pre_name
            for suffix, node in path:
                node_name = f"{layer.name}{suffix}"
                if node_name in nodes:
                    raise ValueError(f"{label}: node name {node_name!r} is taken")
                node.metadata["pysnn_layer"] = index  # keeps the order of summed inputs
                nodes[node_name] = node
                edges.append((previous, node_name))
                previous = node_name
            edges.append((previous, post_name))
    outputs = plan.outputs
    for k, pop in enumerate(outputs):
        out_name = "output" if len(outputs) == 1 else f"output_{k}"
        nodes[out_name] = nir.Output(output_type={"output": np.array(shapes[id(pop)])})
        edges.append((names[id(pop)], out_name))
    metadata = {
        "pysnn_dt_ms": dt,
        # HDF5 files list nodes alphabetically: the order of the inputs and outputs
        "pysnn_inputs": [names[id(p)] for p in plan.inputs],
        "pysnn_outputs": (
            ["output"] if len(outputs) == 1 else [f"output_{k}" for k in range(len(outputs))]
        ),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------
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
        conn = Conv2d(
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
        if shape[0] != conn.in_channels:
            raise ValueError(
                f"node {name!r}: Conv2d of {conn.in_channels} input channels on input {shape}"
            )
        with torch.no_grad():
            conn.weight.copy_(weight)
            if has_bias:
                conn.bias.copy_(torch.tensor(np.broadcast_to(bias, (conn.out_channels,)).copy()))
        return conn, (conn.out_channels, *conn.output_shape(tuple(shape[1:])))
    if kind in ("AvgPool2d", "SumPool2d"):
        if len(shape) != 3:
            raise ValueError(f"node {name!r}: {kind} on an input of shape {shape}")
        k = _pair(node.kernel_size, "kernel_size")
        s = _pair(node.stride, "stride")
        p = _pair(node.padding, "padding", minimum=0)
        stage = AvgPool2d(k, s, p) if kind == "AvgPool2d" else SumPool2d(k, s, p)
        return stage, _pool_shape(shape, k, s, p)
    if kind == "Flatten":
        ndim = len(shape)
        declared = (node.input_type or {}).get("input")
        offset = 1 if declared is not None and len(declared) == ndim + 1 else 0
        stage = Flatten(
            int(node.start_dim) - offset, int(node.end_dim) - (offset if node.end_dim >= 0 else 0)
        )
        return stage, _flatten_shape(stage, shape)
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
    if integrator is not None and integrator not in _INTEGRATORS:
        raise ValueError(f"integrator must be None or one of {_INTEGRATORS}, got {integrator!r}")
    if writer is not None and writer not in WRITERS:
        raise ValueError(f"writer must be None or one of {WRITERS}, got {writer!r}")
    if time_scale is None:
        time_scale = 1.0 / NORSE_EXPORT_DT if writer == "norse" else 1.0
    if (
        isinstance(time_scale, bool)
        or not isinstance(time_scale, (int, float))
        or not (math.isfinite(time_scale) and time_scale > 0)
    ):
        raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
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
    # a readout read by one Threshold node is a spiking neuron without reset
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
    populations = [n for n in nodes if kinds[n] == "Input" or kinds[n] in _NEURONS]
    populations.sort(key=lambda n: kinds[n] != "Input")
    readouts = {n for n in populations if kinds[n] in _READOUTS and n not in threshold_of}
    kinds_for_walk = {n: ("LIF" if n in threshold_of else k) for n, k in kinds.items()}
    paths, outputs = _walk(kinds_for_walk, succ, populations)

    def order(path: tuple[str, list[str], str]) -> float:
        marks = [(nodes[n].metadata or {}).get("pysnn_layer") for n in path[1]]
        marks = [int(m) for m in marks if m is not None]
        return min(marks) if marks else math.inf

    paths.sort(key=order)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in populations:
        node = nodes[name]
        if kinds[name] == "Input":
            declared = node.input_type["input"] if isinstance(node.input_type, dict) else None
            shapes[name] = tuple(int(s) for s in np.asarray(declared).reshape(-1))
        else:
            shape = _node_shape(kinds[name], node)
            if name in threshold_of and shape is None:
                shape = _node_shape("Threshold", threshold_of[name])
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
                kind, node = kinds[stage_name], nodes[stage_name]
                if kind == "Delay":
                    values = np.unique(_f64(node.delay))
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
    recurrent = {start for start, _, end in built if start == end}
    for name in populations:
        if name not in shapes:
            raise ValueError(f"node {name!r}: unconnected neuron with scalar parameters")
        module = _population(
            nodes[name],
            kinds[name],
            name,
            shapes[name],
            dt,
            integrator,
            time_scale,
            writer,
            threshold_of.get(name),
            recurrent=name in recurrent,
        )
        key = _attribute_name(name, net, set(attr.values()))
        net.add_module(key, module)
        modules[name], attr[name] = module, key
    for k, (start, stages, end) in enumerate(built):
        conn = stages[0] if len(stages) == 1 else Chain(*stages)
        synapse = None
        if kinds[end] in ("CubaLIF", "CubaLI"):
            synapse = _synapse(
                nodes[end], shapes[end], dt, modules[end].integrator, time_scale, writer
            )
        layer_name = f"{attr[start]}_to_{attr[end]}_{k}"
        net.add_layer(layer_name, conn, modules[end], modules[start], synapse=synapse)
    outputs.sort(key=lambda item: _rank(graph, "pysnn_outputs", item[0]))
    inputs = sorted(
        (n for n in populations if kinds[n] == "Input"),
        key=lambda n: _rank(graph, "pysnn_inputs", n),
    )
    net.input_names = tuple(inputs)
    net.output_names = tuple(name for name, _ in outputs)
    registered: list[str] = []  # the inputs in the order the network's step takes them
    for start, _, end in built:
        for name in (start, end):
            if kinds[name] == "Input" and name not in registered:
                registered.append(name)
    net._arguments = [inputs.index(name) for name in registered]
    net.node_names = dict(attr)
    net._outputs = [(attr[pop], "v_cell" if pop in readouts else "spikes") for _, pop in outputs]
    if not net._outputs:
        raise ValueError("the NIR graph has no Output node fed by a neuron node")
    return net


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
    return recorded if recorded in _INTEGRATORS else "exact"


def _population(
    node: Any,
    kind: str,
    name: str,
    shape: tuple[int, ...],
    dt: float,
    integrator: str | None,
    time_scale: float,
    writer: str | None,
    threshold: Any = None,
    recurrent: bool = False,
) -> nn.Module:
    """The PySNN population of one NIR node (``threshold``: the Threshold node reading it)."""
    cells = (1, *shape)  # a leading batch entry: the per-sample shape is unambiguous
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
            alpha_v=_param(_f64(node.r) * dt * _MS, shape),
            integrator="exact",
            **reset,
        )
    integ = _node_integrator(node, integrator, writer)
    tau = _f64(node.tau if kind in ("LIF", "LI") else node.tau_mem) * time_scale
    r = _f64(node.r)
    if kind in ("CubaLIF", "CubaLI"):  # the synapse is driven by x; w_in scales the current
        r = r * _f64(node.w_in)
    tau_v = _param(tau / _MS, shape)
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
    tau_syn = _param(_f64(node.tau_syn) * time_scale / _MS, shape)
    # NIR: tau_s I' = -I + w_in x, x held over the step; Norse's LIFCell: I jumps by x
    mode = "impulse" if writer == "norse" else "held"
    return ExponentialSynapse(
        (1, *shape), tau_syn=tau_syn, dt=dt, integrator=integrator, input=mode
    )
