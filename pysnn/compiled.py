r"""The compiled strategy: chunks of steps, learning rules included, each one compiled graph.

A step of a small network is a few dozen small tensor operations, and in the
step loop each of them costs a Python call, a dispatch and a kernel launch;
with a learning rule that updates the weights every step there is no window
to batch over.  After :meth:`SNNNetwork.compile
<pysnn.network.SNNNetwork.compile>`, :meth:`~pysnn.network.SNNNetwork.run`
traces **a chunk of** :data:`CHUNK` **steps** -- the network's ``forward``
(its own or the graph's), then every learning rule's ``update_state()`` and
``step(reward)`` -- with :func:`torch.compile` into one graph.  Inductor fuses
each step's elementwise updates into a few C++ (CPU) or Triton (CUDA)
kernels, and the per-step Python work (module calls, validation, dictionary
lookups, dynamo's guards) is paid once per chunk instead of once per step.
On CUDA the chunk is captured as a CUDA graph (``mode="reduce-overhead"``).

The chunk is the eager code itself, traced: nothing is written twice, and the
spikes and weights equal the eager run's up to the rounding of fused
arithmetic (tested).  The first step of a run is eager (it allocates the
state, see :meth:`Simulator.allocate <pysnn.simulation.Simulator.allocate>`),
then full chunks and one chunk of the remaining steps run compiled; each
distinct chunk length, batch size, dtype and network configuration is traced
once (seconds to a minute; Inductor caches the generated code on disk).

A chunk is atomic like a step: if it raises, the state is put back and the
chunk is run again eagerly step by step, so the error is the eager one at the
exact step (the weights change only when the whole graph has run).  A chunk
that leaves a non-finite value under :meth:`~pysnn.network.SNNNetwork.check_finite`
is replayed the same way.  When compilation itself fails, one
:class:`RuntimeWarning` says why and the run continues eagerly.

What cannot be inside a graph is an obstacle (:func:`obstacle`): a Python
callback between steps, streamed (non-tensor) inputs, forward hooks other than
monitors (monitors record the stacked steps of each chunk), and rules with
change hooks (data-parallel reductions run eagerly).

Compiling pays where the per-step Python work is a large part of a step.
Where the arithmetic dominates -- more than :data:`AUTO_MAX_SYNAPSE_SAMPLES`
synapse-samples per step (batch size times the number of weights) -- the
eager step loop is as fast or faster, because it skips the work of silent
neurons (event-driven propagation and learning), which a graph of fixed
shapes cannot; there an automatic choice (``run()`` without ``strategy``)
keeps the step loop (:func:`worth_compiling`), and ``strategy="compiled"``
still compiles.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import torch
from torch import nn

from pysnn import fusion
from pysnn.hooks import RunHook

Tensor = torch.Tensor

__all__ = [
    "AUTO_MAX_SYNAPSE_SAMPLES",
    "CHUNK",
    "CompiledRuns",
    "obstacle",
    "run",
    "worth_compiling",
]

#: steps per compiled chunk (rounded up to a multiple of the ring buffers' lengths, see
#: :meth:`CompiledRuns.chunk_length`)
CHUNK = 32
#: the longest chunk :meth:`CompiledRuns.chunk_length` makes to fit the ring buffers
MAX_CHUNK = 64
#: above this many synapse-samples per step (batch x weights) an automatic choice keeps the
#: eager step loop. Measured on a 2-core CPU: compiled chunks were faster at 2.5e6 and 1.0e7
#: (benchmarks/bench_stdp.py, pair STDP 784 -> 100 / 400, batch 32) and 2.0e7 (Diehl & Cook
#: N = 400, batch 32: 10.6 vs 14.9 ms per image), and 1.3-1.45x slower at 4.0e7 (784 -> 1600)
AUTO_MAX_SYNAPSE_SAMPLES = 2**25


class CompiledRuns:
    """The compiled chunks of one network (``net.simulator.compiled`` after ``net.compile()``).

    Parameters
    ----------
    simulator : Simulator
        The network's engine.
    backend : str or callable
        ``torch.compile`` backend.
    mode : str, optional
        ``torch.compile`` mode (default: ``"reduce-overhead"`` on CUDA, none on CPU).
    chunk : int, optional
        Steps per chunk (default :data:`CHUNK`).
    """

    def __init__(
        self,
        simulator: Any,
        backend: str | Callable[..., Any] = fusion.DEFAULT_BACKEND,
        mode: str | None = None,
        chunk: int | None = None,
    ) -> None:
        if chunk is not None and (
            isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1
        ):
            raise ValueError(f"chunk must be a positive int, got {chunk!r}")
        if not (callable(backend) or (isinstance(backend, str) and backend)):
            raise TypeError(
                f"backend must be a torch.compile backend name or callable, got {backend!r}"
            )
        self.simulator = simulator
        self.backend = backend
        self.mode = mode
        self.chunk = chunk
        self.failed: str | None = None
        self._functions: dict[tuple, Callable[..., Any]] = {}

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments (what a copy of the network compiles again)."""
        return {"backend": self.backend, "mode": self.mode, "chunk": self.chunk}

    def clear(self) -> None:
        """Forget the compiled chunks (the graph or the clock changed)."""
        self._functions.clear()

    def chunk_length(self) -> int:
        """Steps per chunk: :data:`CHUNK` (or ``chunk``), a multiple of every ring buffer's length.

        A delay line's head moves by one slot per step; when the chunk length
        is a multiple of the buffer's length, every chunk starts at the same
        slot and one graph serves them all.  Kept to :data:`MAX_CHUNK` steps
        at most (longer rings are traced with a symbolic head).
        """
        base = self.chunk or CHUNK
        if self.chunk is not None:
            return base
        lengths = 1
        for module in self.simulator.network.modules():
            ring = getattr(module, "history_length", None)
            if isinstance(ring, int) and ring > 1:
                lengths = math.lcm(lengths, ring)
        if lengths > MAX_CHUNK:
            return base
        return lengths * math.ceil(base / lengths)

    def function(
        self,
        learning: Any,
        monitored: Sequence[tuple[nn.Module, tuple[str, ...]]],
        counted: Sequence[nn.Module],
        device: torch.device,
    ) -> Callable[..., Any]:
        """The compiled chunk for these rules, monitors and counted populations (cached)."""
        key = (
            tuple(id(r) for r in learning.rules),
            tuple((id(m), names) for m, names in monitored),
            tuple(id(m) for m in counted),
            device.type,
        )
        function = self._functions.get(key)
        if function is None:
            import torch._dynamo.config as config

            fusion._raise_recompile_limit()
            config.capture_dynamic_output_shape_ops = True
            config.capture_scalar_outputs = True
            mode = self.mode
            if mode is None and device.type == "cuda":
                mode = "reduce-overhead"
            body = _chunk_body(self.simulator.network, learning, monitored, counted)
            # fullgraph: a graph break inside the unrolled chunk would make dynamo skip the
            # whole chunk and run it eagerly, silently; as an error it warns and runs eagerly
            function = self._functions[key] = torch.compile(
                body, backend=self.backend, mode=mode, fullgraph=True
            )
        return function


def _chunk_body(
    network: nn.Module,
    learning: Any,
    monitored: Sequence[tuple[nn.Module, tuple[str, ...]]],
    counted: Sequence[nn.Module],
) -> Callable[..., Any]:
    """The function a chunk compiles: ``K`` steps of the network and the rules.

    Returns ``(outputs[K, ...], [[stacked monitored values]], [spike counts])``.
    """
    rules = tuple(zip(learning.rules, learning.stateful, (r.needs_reward for r in learning.rules)))

    def chunk(inputs: Tensor, rewards: Tensor | None) -> Any:
        outputs = []
        records: list[list[list[Tensor]]] = [[[] for _ in names] for _, names in monitored]
        counts: list[Tensor | None] = [None] * len(counted)
        for k in range(inputs.shape[0]):
            out = network(inputs[k])
            for rule, stateful, needs_reward in rules:
                if stateful:
                    rule.update_state()
                rule.step(rewards[k] if needs_reward else None)
            outputs.append(out[0] if isinstance(out, (tuple, list)) else out)
            for record, (module, names) in zip(records, monitored):
                for values, name in zip(record, names):
                    values.append(getattr(module, name))
            for i, module in enumerate(counted):
                total = module._buffers["spikes"].sum()
                counts[i] = total if counts[i] is None else counts[i] + total
        stacked = [[torch.stack(values) for values in record] for record in records]
        return torch.stack(outputs), stacked, counts

    # a code object of its own: dynamo keeps its compiled graphs per code object, so
    # every network's chunks are cached (and limited by ``recompile_limit``) apart
    chunk.__code__ = chunk.__code__.replace(co_name=f"chunk_of_{type(network).__name__}")
    return chunk


def obstacle(
    simulator: Any, inputs: Any = None, learning: Any = None, callback: Any = None
) -> str | None:
    """Why a run cannot be compiled into chunks (``None``: it can)."""
    from pysnn.window import _hooked

    if simulator.compiled is None:
        return "compile() is not switched on"
    if not fusion.fusion_available():
        return "torch.compile is not supported on this Python/platform"
    if inputs is not None and not isinstance(inputs, Tensor):
        return "inputs is not a tensor [T, batch, ...] (an iterable streams step by step)"
    if callback is not None:
        return "a callback runs between steps (a Python function cannot be inside a compiled chunk)"
    for rule in getattr(learning, "rules", ()):
        if rule._has_change_hooks:
            return f"{type(rule).__name__} has change hooks (e.g. data-parallel reductions)"
    for name, module in simulator.network.named_modules():
        if _hooked(module):
            return f"{name or 'the network'} ({type(module).__name__}) has forward hooks"
    return None


def worth_compiling(simulator: Any, inputs: Tensor) -> str | None:
    """Why an automatic choice keeps the step loop for ``inputs`` (``None``: compile).

    The step's arithmetic is estimated as the batch size times the number of
    weights of every connection; above :data:`AUTO_MAX_SYNAPSE_SAMPLES` the
    per-step Python work is a small part of a step and the eager loop's
    event-driven paths win (see the module docstring).
    """
    batch = int(inputs.shape[1]) if inputs.dim() > 1 else 1
    weights = sum(
        int(module.weight.numel())
        for module in simulator.network.modules()
        if isinstance(getattr(module, "weight", None), Tensor)
    )
    if batch * weights > AUTO_MAX_SYNAPSE_SAMPLES:
        return (
            f"{batch} x {weights} synapse-samples per step exceed AUTO_MAX_SYNAPSE_SAMPLES "
            f"= {AUTO_MAX_SYNAPSE_SAMPLES}: the eager loop is as fast (strategy='compiled' "
            "compiles anyway)"
        )
    return None


def run(simulator: Any, inputs: Tensor, learning: Any, hooks: Sequence[RunHook]) -> list[Tensor]:
    """The compiled strategy of :meth:`Simulator.run <pysnn.simulation.Simulator.run>`.

    The first step runs eagerly, then chunks of :meth:`CompiledRuns.chunk_length`
    steps (and one of the remaining steps) run compiled, each a transaction.
    Returns the outputs, one ``[steps, ...]`` tensor per part.
    """
    from pysnn.monitor import recording_monitors

    runs: CompiledRuns = simulator.compiled
    steps = int(inputs.shape[0])
    outputs = simulator.run_steps(inputs[:1], learning, None, hooks)
    monitors = recording_monitors(simulator.network)
    modules: dict[int, nn.Module] = {}
    names: dict[int, tuple[str, ...]] = {}
    for monitor in monitors:
        key = id(monitor.module)
        modules[key] = monitor.module
        names[key] = tuple(dict.fromkeys(names.get(key, ()) + monitor.attributes))
    monitored = [(modules[key], names[key]) for key in modules]
    counted = tuple(dict.fromkeys(m for hook in hooks for m in hook.counted))
    length = runs.chunk_length()
    start = 1
    while start < steps:
        end = steps if runs.failed is not None else min(steps, start + length)
        part = _run_chunk(simulator, inputs, learning, monitored, counted, start, end, hooks)
        if isinstance(part, list):  # ran eagerly: the hooks and monitors have seen every step
            outputs += part
            start = end
            continue
        outputs.append(part[0])
        recorded = {
            id(module): dict(zip(names_, values))
            for (module, names_), values in zip(monitored, part[1])
        }
        for monitor in monitors:
            values = recorded[id(monitor.module)]
            monitor.record_steps({name: values[name] for name in monitor.attributes})
        counts = {id(m): c for m, c in zip(counted, part[2])}
        for hook in hooks:
            hook.after_window(start, end - start, counts)
        start = end
    return outputs


def _run_chunk(
    simulator: Any,
    inputs: Tensor,
    learning: Any,
    monitored: list[tuple[nn.Module, tuple[str, ...]]],
    counted: tuple[nn.Module, ...],
    start: int,
    end: int,
    hooks: Sequence[RunHook],
) -> Any:
    """Steps ``start:end`` as one compiled chunk (a transaction), see :func:`run`.

    Returns the chunk's ``(outputs, monitored values, spike counts)``, or the
    list of outputs of the eager step loop when compiling is unavailable or
    failed (which then warns once and stays eager).
    """
    runs: CompiledRuns = simulator.compiled
    chunk = inputs[start:end]
    if runs.failed is not None:
        return simulator.run_steps(chunk, learning, None, hooks, start)
    rewards = None if learning.rewards is None else learning.rewards[start:end]
    function = runs.function(learning, monitored, counted, chunk.device)
    saved = _rule_state(learning) if simulator.finite_check else None

    def replay() -> None:
        _restore_rule_state(saved)
        simulator.run_steps(chunk, learning, None, (), start)

    try:
        return simulator.transact(
            end - start, function, chunk, rewards, inputs=(chunk[0],), replay=replay
        )
    except FloatingPointError:
        raise
    except Exception as err:  # noqa: BLE001 - the eager steps tell a real error from a compiler's
        # The state is back at ``start`` and the weights unchanged (a graph writes its
        # mutations when it has run to the end).  Run eagerly, a real error (bad input, a
        # non-finite reward) is raised at its step; if none is, compiling failed.
        outputs = simulator.run_steps(chunk, learning, None, hooks, start)
        runs.failed = _reason(err)
        warnings.warn(
            f"pysnn: compiled run unavailable ({runs.failed}); running eagerly",
            RuntimeWarning,
            stacklevel=4,
        )
        return outputs


def _reason(err: BaseException) -> str:
    """``Type: first line`` of the innermost cause of a compiler error."""
    while True:
        inner = getattr(err, "inner_exception", None) or err.__cause__
        if not isinstance(inner, BaseException):
            break
        err = inner
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _rule_state(learning: Any) -> list[tuple[Any, Any]]:
    """Copies of every weight the rules train and of the rules' own state."""
    out: list[tuple[Any, Any]] = []
    for rule in learning.rules:
        for layer in rule.layers:
            weight = layer.connection.weight
            out.append((weight, weight.detach().clone()))
        for module in rule.layer_state.values():
            out.append((module._buffers, {k: v.clone() for k, v in module._buffers.items()}))
    return out


def _restore_rule_state(saved: list[tuple[Any, Any]] | None) -> None:
    if not saved:
        return
    with torch.no_grad():
        for target, copy in saved:
            if isinstance(target, dict):
                target.update(copy)
            else:
                target.copy_(copy)
