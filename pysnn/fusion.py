r"""Fused neuron updates: the whole state update of a step as one compiled kernel.

A neuron step is a dozen elementwise operations (integrate, compare with the
threshold, update the trace, count down the refractory period, reset), each of
which reads and writes every neuron's state in eager PyTorch.  Fusing them with
:func:`torch.compile` (Inductor: generated C++/OpenMP on CPU, Triton on CUDA)
makes one pass over the state and removes most of the per-operation dispatch
cost.  The compiled function is exactly the eager step
(``BaseNeuron._step``), so the equations stay in
:mod:`pysnn.functional`; nothing is written twice.

Switch it on per neuron with :meth:`BaseNeuron.fuse
<pysnn.neuron.BaseNeuron.fuse>` or for a whole network with
:meth:`SNNNetwork.fuse <pysnn.network.SNNNetwork.fuse>`.  The first step of
each neuron configuration compiles (seconds to tens of seconds; Inductor caches
the result on disk for later runs).  When compilation is unavailable (no C++
compiler, an unsupported Python or platform) the first fused call warns once
with a :class:`RuntimeWarning` and the eager step runs instead; the state is
untouched by the failed attempt, because the compiled graph applies its state
changes only after it has run.

Every neuron class and configuration (update type, trace mode, refractory
period...) is a separate graph of the same step function; PySNN raises
dynamo's ``recompile_limit`` to :data:`RECOMPILE_LIMIT` so that networks with
many populations stay compiled.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Tuple, Union

import torch

__all__ = [
    "DEFAULT_BACKEND",
    "RECOMPILE_LIMIT",
    "call_fused",
    "clear_cache",
    "compile_step",
    "compiled",
    "fusion_available",
    "is_compiling",
]

#: ``torch.compile`` backend used by default
DEFAULT_BACKEND = "inductor"
#: graphs dynamo may keep for the shared step function (one per neuron class,
#: configuration and, before shapes turn dynamic, input shape)
RECOMPILE_LIMIT = 64

_Key = Tuple[Callable[..., Any], Union[str, Callable[..., Any]], Optional[str]]
_compiled: dict[_Key, Callable[..., Any]] = {}
_failed: dict[_Key, str] = {}


def fusion_available() -> bool:
    """Whether :func:`torch.compile` can run on this Python and platform at all."""
    try:
        import torch._dynamo as dynamo
    except ImportError:  # pragma: no cover - torch builds without dynamo
        return False
    return bool(dynamo.is_dynamo_supported())


def _resolve_is_compiling() -> Callable[[], bool]:
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:  # torch < 2.3
        import torch._dynamo as dynamo

        check = dynamo.is_compiling
    return check


#: ``is_compiling()`` is True while :func:`torch.compile` traces the code that calls it
is_compiling: Callable[[], bool] = _resolve_is_compiling()


def compiled(
    fn: Callable[..., Any],
    backend: str | Callable[..., Any] = DEFAULT_BACKEND,
    mode: str | None = None,
) -> Callable[..., Any]:
    """The compiled version of ``fn`` (created once per ``(fn, backend, mode)``)."""
    key = (fn, backend, mode)
    if key not in _compiled:
        _raise_recompile_limit()
        _compiled[key] = torch.compile(fn, backend=backend, mode=mode)
    return _compiled[key]


def compile_step(
    step: Callable[..., Any],
    backend: str | Callable[..., Any] = DEFAULT_BACKEND,
    mode: str | None = None,
) -> Callable[..., Any]:
    """Compile a whole network step (e.g. ``net.forward``) into one graph.

    Unlike :meth:`BaseNeuron.fuse <pysnn.neuron.BaseNeuron.fuse>`, which
    compiles each neuron's state update, this captures everything ``step``
    does: connections (including the event-driven :class:`~pysnn.connection.Sparse`
    propagation, whose number of events changes from step to step), synapses
    and neurons.  So that the graph does not break at every event-driven
    connection (``nonzero`` has a data-dependent output size), this function
    switches on dynamo's ``capture_dynamic_output_shape_ops`` and
    ``capture_scalar_outputs`` for the process (patching them around every
    call would cost 10-25 us per step).

    ``step`` may also call learning rules (``rule.update_state()``,
    ``rule.step(reward)``): the network step and the weight update become one
    graph (tested to give the eager spikes and weights).  Inside it a rule
    does not re-check its hyper-parameters every step (they are checked when
    set and on every eager step), and a non-finite tensor reward raises a
    :class:`RuntimeError` from a runtime assert, before the weights change;
    give rewards as tensors (a Python float is a constant of the graph, so
    every new value would recompile).

    The first calls compile (seconds; one graph per distinct call signature and
    for the first step after ``reset_state``).  Results equal the eager step up
    to the rounding of fused arithmetic.  Use it for long simulations of a
    fixed network at small batch sizes, where per-operation dispatch dominates;
    see ``examples/brette2007.py --compile``.

    Returns
    -------
    callable
        The compiled ``step``; call it as ``step`` would be called.
    """
    import torch._dynamo.config as config

    _raise_recompile_limit()
    config.capture_dynamic_output_shape_ops = True
    config.capture_scalar_outputs = True
    return torch.compile(step, backend=backend, mode=mode)


def _raise_recompile_limit() -> None:
    """Let one step function hold a graph per neuron class and configuration.

    Dynamo keeps at most ``recompile_limit`` (8 by default) graphs per function
    and silently runs eagerly beyond that; all neuron classes share one step
    function, so PySNN raises the limit to :data:`RECOMPILE_LIMIT` (never lowers it).
    """
    import torch._dynamo.config as config

    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    if getattr(config, name) < RECOMPILE_LIMIT:
        setattr(config, name, RECOMPILE_LIMIT)


def call_fused(
    fn: Callable[..., Any],
    *args: Any,
    backend: str | Callable[..., Any] = DEFAULT_BACKEND,
    mode: str | None = None,
) -> Any:
    """Call the compiled ``fn(*args)``, or ``fn(*args)`` eagerly when compilation fails.

    The first failure for a ``(fn, backend, mode)`` emits one
    :class:`RuntimeWarning` naming the reason; later calls go straight to the
    eager function.
    """
    key = (fn, backend, mode)
    step = _compiled.get(key)
    if step is None:  # first call: check once whether compiling can work at all
        if key in _failed:
            return fn(*args)
        if not fusion_available():
            _fail(key, "torch.compile is not supported on this Python/platform")
            return fn(*args)
        step = compiled(fn, backend, mode)
    try:
        return step(*args)
    except (ValueError, TypeError):
        raise
    except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
        _fail(key, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return fn(*args)


def _fail(key: _Key, reason: str) -> None:
    _failed[key] = reason
    _compiled.pop(key, None)
    warnings.warn(
        f"pysnn: fused neuron step unavailable with backend {key[1]!r} ({reason}); "
        "running the eager step instead",
        RuntimeWarning,
        stacklevel=3,
    )


def clear_cache() -> None:
    """Forget compiled functions and recorded failures (e.g. after installing a compiler)."""
    _compiled.clear()
    _failed.clear()
