"""Step safety of :class:`~pysnn.network.SNNNetwork`: graph ownership, atomic steps, finite values.

* **Ownership**: a module belongs to the graph of one network (``add_layer``
  or ``connect``); another network's ``add_layer`` refuses it.
* **Atomic steps**: before each ``net(x)`` every submodule's attribute and
  buffer dicts are copied (state updates rebind buffers) together with what
  the step overwrites in place (:meth:`StatefulModule._step_snapshot
  <pysnn.state.StatefulModule._step_snapshot>`); a step that raises is undone.
* **Finite values**: :meth:`SNNNetwork.check_finite
  <pysnn.network.SNNNetwork.check_finite>` checks the changed floating-point
  tensors after each step.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import torch
from torch import nn

from pysnn import graph
from pysnn.state import StatefulModule

Tensor = torch.Tensor

__all__ = [
    "check_finite_values",
    "check_owner",
    "claim",
    "commit",
    "owner_of",
    "restore",
    "snapshot",
]

#: module -> weak reference to the network whose graph holds it (add_layer/connect)
_GRAPH_OWNERS: weakref.WeakKeyDictionary[nn.Module, weakref.ref[Any]] = weakref.WeakKeyDictionary()


# -- graph ownership ------------------------------------------------------------------
def owner_of(module: nn.Module) -> Any:
    ref = _GRAPH_OWNERS.get(module)
    return None if ref is None else ref()


def claim(network: Any, layer: Any, steal: bool) -> None:
    """Record ``network`` as the graph owner of the layer's modules (``steal``: even if owned)."""
    for module in (layer.connection, layer.neuron, layer.pre, layer.synapse):
        if module is not None and (steal or owner_of(module) is None):
            _GRAPH_OWNERS[module] = weakref.ref(network)


def check_owner(network: Any, name: str, label: str, module: nn.Module) -> None:
    """Reject a module that belongs to the graph of another (live) network."""
    owner = owner_of(module)
    if owner is None or owner is network:
        return
    gc.collect()  # a network nobody refers to any more may wait for the cycle collector
    owner = owner_of(module)
    if owner is None or owner is network:
        return
    path = graph.module_names(owner).get(id(module), "?")
    layers = [
        layer.name for layer in owner._layers.values() if any(part is module for part in layer[1:5])
    ]
    raise ValueError(
        f"add_layer({name!r}): the {label} {type(module).__name__} ({path!r}, layer "
        f"{layers[0] if layers else '?'!r}) already belongs to another network "
        f"({type(owner).__name__}); a module can be in the graph of one network only: "
        f"build a new module, or copy.deepcopy the network"
    )


# -- atomic steps -------------------------------------------------------------------
# Every registration of a submodule anywhere (attribute assignment, add_module)
# bumps this counter; a network's cached list of its modules is valid while it
# is unchanged (and until reset_state() or add_layer()).
_TREE_GENERATION = [0]
_HAS_REGISTRATION_HOOK = hasattr(nn.modules.module, "register_module_module_registration_hook")


def _tree_changed(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
    _TREE_GENERATION[0] += 1


if _HAS_REGISTRATION_HOOK:
    nn.modules.module.register_module_module_registration_hook(_tree_changed)


def _modules_of(network: Any) -> list[tuple[nn.Module, dict[str, Any], Any]]:
    """``(module, its __dict__, its _step_snapshot or None)`` for every module, cached.

    The cache stays valid while no module is registered anywhere (and until
    reset_state() or add_layer()); it is not copied or pickled with the network.
    """
    attrs = network.__dict__
    cache = attrs.get("_tree")
    generation = _TREE_GENERATION[0]
    if cache is None or cache[0] != generation or not _HAS_REGISTRATION_HOOK:
        entries = [
            (
                module,
                module.__dict__,
                module._step_snapshot if isinstance(module, StatefulModule) else None,
            )
            for module in _submodules(network)
        ]
        cache = attrs["_tree"] = (generation, entries)
    return cache[1]


def _submodules(network: nn.Module) -> list[nn.Module]:
    """``network`` and every submodule, each once (no names: cheaper than ``modules()``)."""
    out = [network]
    seen = {id(network)}
    k = 0
    while k < len(out):
        for child in out[k]._modules.values():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                out.append(child)
        k += 1
    return out


_Snapshot = list[tuple[nn.Module, dict[str, Any], dict[str, Any], Any]]


def snapshot(network: Any, steps: int = 1) -> _Snapshot:
    """Per module: its attribute dict, its buffer dict and what ``steps`` steps overwrite in place."""
    return [
        (module, attrs.copy(), attrs["_buffers"].copy(), None if snap is None else snap(steps))
        for module, attrs, snap in _modules_of(network)
    ]


def restore(saved: _Snapshot) -> None:
    """Put back what :func:`snapshot` saved."""
    for module, attrs, buffers, inplace in reversed(saved):
        live = module.__dict__
        live.clear()
        live.update(attrs)
        live_buffers = attrs["_buffers"]
        live_buffers.clear()
        live_buffers.update(buffers)
        if inplace is not None:
            module._step_restore(inplace)


def commit(saved: _Snapshot) -> None:
    """The step of :func:`snapshot`'s ``saved`` succeeded: tell the modules that kept in-place state."""
    for module, _, _, inplace in saved:
        if inplace is not None:
            module._step_commit(inplace)


# -- finite values ------------------------------------------------------------------
def check_finite_values(network: Any, seen: dict[int, tuple[Tensor, int]]) -> None:
    """Raise :class:`FloatingPointError` if a floating buffer or parameter is NaN or infinite.

    Tensors unchanged since the last check (same object, same version, as
    recorded in ``seen``, which the check updates) are skipped.  The others are summed, one reduction each: a finite total means
    every value is finite; otherwise (or on overflow) each tensor is checked.
    Time constants may be ``inf`` (no decay) and are only checked for NaN.
    """
    checked: dict[int, tuple[Tensor, int]] = {}
    pending: list[tuple[nn.Module, str, Tensor]] = []
    bad: list[tuple[nn.Module, str, Tensor]] = []
    for module, _, _ in _modules_of(network):
        may_be_inf = getattr(module, "_infinite_ok", ())
        for group in (module._parameters, module._buffers):
            for name, tensor in group.items():
                if tensor is None or not tensor.is_floating_point():
                    continue
                if not tensor.is_inference():  # inference tensors have no version counter
                    version = tensor._version
                    hit = seen.get(id(tensor))
                    checked[id(tensor)] = (tensor, version)
                    if hit is not None and hit[0] is tensor and hit[1] == version:
                        continue
                if name in may_be_inf:
                    if bool(torch.isnan(tensor).any()):
                        bad.append((module, name, tensor))
                else:
                    pending.append((module, name, tensor))
    if pending:
        sums = [t.sum() for _, _, t in pending]
        device = sums[0].device
        if all(x.device == device for x in sums):
            finite = bool(torch.isfinite(torch.stack(sums).sum()))
        else:
            finite = all(bool(torch.isfinite(x)) for x in sums)
        if not finite:  # find the culprits (a finite tensor may only have overflowed the sum)
            bad += [entry for entry in pending if not bool(torch.isfinite(entry[2]).all())]
    if bad:
        raise FloatingPointError(_non_finite_message(network, bad))
    seen.clear()
    seen.update(checked)


def _non_finite_message(network: Any, bad: list[tuple[nn.Module, str, Tensor]]) -> str:
    names = graph.module_names(network)
    parts = []
    for module, name, tensor in bad:
        path = names.get(id(module)) or "<network>"
        nan = int(torch.isnan(tensor).sum())
        inf = int(torch.isinf(tensor).sum())
        parts.append(
            f"{path}.{name} (module {path!r}, {type(module).__name__}, tensor {name!r}: "
            f"{nan} NaN and {inf} inf of {tensor.numel()} values)"
        )
    return (
        f"step {network.step_index} (counted from 0 since the last reset_state()) left "
        f"non-finite values in {'; '.join(parts)}; the state was restored to before the step "
        f"(check_finite is on)"
    )
