"""Export: a network's registered graph as a NIR graph, exactly or not at all."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from pysnn.connection import AvgPool2d, Conv2d, Linear, Recurrent
from pysnn.connection.separable import Conv2dSep, Merge
from pysnn.connection.stages import Chain, Flatten, SumPool2d
from pysnn.network import SNNNetwork
from pysnn.neuron import IFNeuron, Input, LIFNeuron
from pysnn.nir.network import INTEGRATORS, MS, flatten_shape, import_nir, pool_shape
from pysnn.synapse import ExponentialSynapse

Tensor = torch.Tensor

__all__ = ["export"]


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
    if type(pop) is LIFNeuron and pop.integrator not in INTEGRATORS:
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
            r=_array(pop.alpha_v.double() / (dt * MS), shape),
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
        tau = _array(pop.tau_v.double() * MS, shape)
        if not with_synapse:
            return nir.LIF(tau=tau, **common)
        tau_syn, w_in = _synapse_w_in(name, pop, syns, dt)
        return nir.CubaLIF(
            tau_syn=_array(tau_syn * MS, shape), tau_mem=tau, w_in=_array(w_in, shape), **common
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
        return pool_shape(shape, conn.kernel_size, conn.stride, conn.padding)
    if isinstance(conn, Flatten):
        return flatten_shape(conn, shape)
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
            path.append((f"{suffix}_delay", nir.Delay(delay=np.full(shape, steps * dt * MS))))
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
    nir = import_nir()
    from pysnn import graph as pgraph

    if not isinstance(net, SNNNetwork):
        raise TypeError(f"net must be an SNNNetwork, got {type(net).__name__}")
    if net.rules:
        attached = ", ".join(type(r).__name__ for r in net.rules)
        raise ValueError(
            f"net has learning rules attached ({attached}): NIR holds no learning-rule state; "
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
