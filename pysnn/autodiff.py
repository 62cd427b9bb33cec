r"""Gradient training: when a run is differentiable, and how its memory stays bounded.

PySNN's state is explicit tensors, so backpropagation through time needs no
separate machinery: with gradients enabled, :meth:`SNNNetwork.run
<pysnn.network.SNNNetwork.run>` records every step for autograd **when
something requires a gradient** (a connection's ``weight``, a neuron parameter
made trainable with :meth:`~pysnn.neuron.Population.make_trainable`, a
learnable delay, or the input itself; :func:`records_gradient`).  Spikes then
carry the surrogate derivative of their population
(:mod:`pysnn.functional.surrogate`), resets may be detached
(``detach_reset=True``), and ``loss.backward()`` reaches every parameter that
requires a gradient.  Otherwise the run is the gradient-free simulation, under
:func:`torch.no_grad`, exactly as before.

Strategies (:mod:`pysnn.simulation`): the step loop and windows
(:mod:`pysnn.window`, one GEMM per connection and window) record gradients;
fused population updates run their eager step while autograd records; compiled
chunks (:mod:`pysnn.compiled`) are gradient-free and refuse a differentiable
run with a :class:`ValueError` saying so (an automatic choice skips them).

Memory of long sequences:

* **truncated BPTT**: run a sequence in parts with ``run(part, reset=False)``,
  call ``loss.backward()`` and ``optimizer.step()`` after each, and
  :meth:`SNNNetwork.detach_state <pysnn.network.SNNNetwork.detach_state>`
  (:func:`detach_state`) before the next: the state carries over, the graph
  does not;
* **gradient checkpointing**: ``run(x, checkpoint=k)`` keeps only the state
  at the start of every part of ``k`` steps and recomputes a part's steps
  during ``backward()`` (:func:`run_checkpointed`): memory of :math:`T/k`
  states plus one part, for one more forward pass.

**Hybrid learning.** Learning rules run in the same ``run`` (``rules=``)
without gradient: they change their weights in place, under
:func:`torch.no_grad`.  A rule-owned weight gets no gradient unless it
requires one (``weight.requires_grad_(True)``: asked for).  Where a step's
graph keeps a rule-owned weight for the backward pass (a gradient flows
through that connection to something before it), the graph keeps a copy of
the weight as it was at that step (:func:`rule_weights_saved_as_copies`), so
that the rule's later in-place updates neither break nor change the gradient.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

Tensor = torch.Tensor

__all__ = [
    "detach_state",
    "records_gradient",
    "rule_weights_saved_as_copies",
    "run_checkpointed",
]


def records_gradient(network: nn.Module, inputs: Any = None) -> bool:
    """Whether a run of ``network`` on ``inputs`` is recorded for autograd.

    True when gradients are enabled (:func:`torch.is_grad_enabled`) and a
    parameter of the network or the input tensor requires a gradient.
    """
    if not torch.is_grad_enabled():
        return False
    if isinstance(inputs, Tensor) and inputs.requires_grad:
        return True
    return any(p.requires_grad for p in network.parameters())


def detach_state(network: nn.Module) -> None:
    """Cut the graph behind the state of every module: truncated backpropagation through time.

    The values stay; the next steps' gradients stop here.  See
    :meth:`StatefulModule.detach_state <pysnn.state.StatefulModule.detach_state>`.
    """
    from pysnn.state import StatefulModule

    for module in network.modules():
        if isinstance(module, StatefulModule):
            module.detach_state()


# -- hybrid learning ------------------------------------------------------------------
@contextlib.contextmanager
def rule_weights_saved_as_copies(rules: Sequence[nn.Module]) -> Iterator[None]:
    """Inside, autograd saves the weights trained by ``rules`` as copies.

    A rule changes its weights in place after every step; a graph that kept
    the weight itself for the backward pass would fail (its version changed)
    or, worse, use the later weights.  This saved-tensor hook copies a tensor
    that shares memory with a rule-owned weight when autograd saves it (the
    weight as it was at that step).  Nothing is copied where no gradient
    flows through the connection.
    """
    storages = set()
    for rule in rules:
        for layer in getattr(rule, "layers", ()):
            weight = getattr(layer.connection, "weight", None)
            if isinstance(weight, Tensor):
                storages.add(weight.untyped_storage().data_ptr())

    def pack(tensor: Tensor) -> Tensor:
        if tensor.untyped_storage().data_ptr() in storages:
            return tensor.detach().clone().requires_grad_(tensor.requires_grad)
        return tensor

    if not storages:
        yield
        return
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield


# -- gradient checkpointing ---------------------------------------------------------------
def run_checkpointed(
    simulator: Any,
    inputs: Tensor,
    segment: int,
    run_part: Callable[[Tensor, int, bool], list[Tensor]],
) -> list[Tensor]:
    r"""Run ``inputs`` in parts of ``segment`` steps, each recomputed during ``backward()``.

    Each part runs as ``run_part(part, start, first)`` (``start``: the index of
    its first step in the run; ``first``: ``False`` when it is recomputed, so
    that hooks and callbacks see every step once) inside
    :func:`torch.utils.checkpoint.checkpoint` (non-reentrant): the forward pass
    keeps no intermediate values of the part, only the state at its start
    (which the part's graph refers to anyway).  When ``backward()`` needs a
    part's values, the part is run again from that state: the modules' state
    is set to it (:func:`pysnn.safety.snapshot` / :func:`~pysnn.safety.restore`,
    ring buffers copied), the steps run, and the state as it was before the
    recomputation is put back; monitors record nothing twice.  Memory:
    :math:`\lceil T/k \rceil` states plus the graph of one part.

    Returns the outputs of the parts, as the strategies return them.
    """
    from torch.utils.checkpoint import checkpoint

    from pysnn.monitor import recording_monitors

    network = simulator.network
    monitors = recording_monitors(network)
    outputs: list[Tensor] = []
    for start in range(0, int(inputs.shape[0]), segment):
        part = inputs[start : start + segment]
        begin = _capture(simulator, monitors)
        calls = [0]

        def run(
            part: Tensor, start: int = start, begin: Any = begin, calls: list[int] = calls
        ) -> Tensor:
            calls[0] += 1
            if calls[0] == 1:  # the forward pass
                out = run_part(part, start, True)
                return out[0] if len(out) == 1 else torch.cat(out)
            now = _capture(simulator, monitors)  # recomputation inside backward()
            _restore(simulator, monitors, begin)
            try:
                out = run_part(part, start, False)
            finally:
                _restore(simulator, monitors, now)
            return out[0] if len(out) == 1 else torch.cat(out)

        outputs.append(checkpoint(run, part, use_reentrant=False))
    return outputs


_Captured = tuple[Any, int, bool, list[int]]


def _capture(simulator: Any, monitors: Sequence[Any]) -> _Captured:
    """The state of every module (ring buffers copied), the clock and the monitors' counts."""
    from pysnn.safety import snapshot

    saved = snapshot(simulator.network, steps=2)  # 2: in-place buffers copied whole
    return saved, simulator.step_index, simulator.pending, [m._count for m in monitors]


def _restore(simulator: Any, monitors: Sequence[Any], captured: _Captured) -> None:
    from pysnn.safety import restore

    saved, step_index, pending, counts = captured
    simulator.pending = pending
    # the in-place buffers are restored into copies: the captured ones stay pristine
    restore(
        [(module, attrs, buffers, _copied(inplace)) for module, attrs, buffers, inplace in saved]
    )
    simulator.step_index = step_index
    for monitor, count in zip(monitors, counts):
        monitor._count = count


def _copied(inplace: Any) -> Any:
    if isinstance(inplace, dict):
        return {name: value.clone() for name, value in inplace.items()}
    if isinstance(inplace, tuple):
        return tuple(_copied(part) for part in inplace)
    if isinstance(inplace, Tensor):
        return inplace.clone()
    return inplace
