r"""Checkpoints of a running simulation, written atomically, and resuming after a failure.

A long run (hours of simulated time, many processes) should survive a killed
process: :func:`capture` takes everything the next step depends on -- every
module's state and parameters (``net.state_dict()``: voltages, traces,
synaptic currents, delay lines and spike queues with their heads, weights),
the learning rules' state, the random-number streams (torch's global
generators and any ``torch.Generator`` given), the step counter -- and
:func:`restore` puts it back, so that the run goes on with the spikes it
would have had.

:func:`atomic_save` writes a file under a temporary name in the same
directory, flushes it to disk and renames it over the target
(:func:`os.replace`, atomic on POSIX and Windows): a process killed while
writing leaves the previous checkpoint whole (and a stale temporary file,
removed by the next save).  :class:`Checkpointer` keeps the last few
checkpoints of every rank of a run and finds the newest step that **every**
rank has (after a failure the ranks may be one checkpoint apart), which is
how a run launched with ``torchrun --max-restarts`` resumes:

.. code-block:: python

    ckpt = Checkpointer("run/checkpoints")            # one file per rank and step
    step = ckpt.latest()                              # agreed by all ranks (None: fresh start)
    if step is None:
        net.start(); step = 0
    else:
        restore(ckpt.load(step), net, rules)
    while step < total:
        net.run(inputs[step:step + every], reset=False)
        step += every
        ckpt.save(step, capture(net, rules))
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.distributed as dist

__all__ = ["Checkpointer", "atomic_save", "capture", "restore"]

#: version of the layout written by :func:`capture`
FORMAT = 1


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically: a temporary file, fsync, then :func:`os.replace`.

    The temporary file lives in ``path``'s directory (a rename across file
    systems would not be atomic) and is named ``.<name>.tmp-*``.  If the
    process dies before the rename, ``path`` still holds the previous
    version.  Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # not every platform can open a directory
        pass
    return path


def capture(
    network: Any,
    rules: Iterable[Any] = (),
    generators: Sequence[torch.Generator] = (),
    extra: Any = None,
) -> dict[str, Any]:
    """Everything the next step of ``network`` depends on, as one picklable dict.

    Parameters
    ----------
    network : SNNNetwork
        The network (its ``state_dict()`` holds the state and the weights).
    rules : iterable of LearningRule
        Learning rules whose state (eligibility, private traces) to keep.
    generators : sequence of torch.Generator
        Extra random-number generators the run draws from.
    extra : any
        Anything else to keep (e.g. a spike recording so far).

    Returns
    -------
    dict
        Tensors are cloned to the CPU-independent form ``torch.save`` writes.
    """
    simulator = network.simulator
    state: dict[str, Any] = {
        "format": FORMAT,
        "network": network.state_dict(),
        "step_index": simulator.step_index,
        "pending": simulator.pending,
        "rules": [rule.state_dict() for rule in rules],
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": [gen.get_state() for gen in generators],
        "extra": extra,
    }
    if simulator.model_parallel is not None:
        state["model_parallel"] = simulator.model_parallel.state_dict()
    return state


def restore(
    state: dict[str, Any],
    network: Any,
    rules: Iterable[Any] = (),
    generators: Sequence[torch.Generator] = (),
) -> Any:
    """Put back what :func:`capture` took (into a network built the same way); returns ``extra``.

    Raises
    ------
    ValueError
        If the number of rules or generators differs from the checkpoint's.
    """
    if state.get("format") != FORMAT:
        raise ValueError(f"not a pysnn checkpoint of format {FORMAT}: {state.get('format')!r}")
    rules, generators = list(rules), list(generators)
    for name, given in (("rules", rules), ("generators", generators)):
        if len(given) != len(state[name]):
            raise ValueError(
                f"the checkpoint holds {len(state[name])} {name}, {len(given)} were given"
            )
    network.load_state_dict(state["network"])
    simulator = network.simulator
    simulator.step_index = int(state["step_index"])
    simulator.pending = bool(state["pending"])
    for rule, rule_state in zip(rules, state["rules"]):
        rule.load_state_dict(rule_state)
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for gen, gen_state in zip(generators, state["generators"]):
        gen.set_state(gen_state)
    if "model_parallel" in state:
        if simulator.model_parallel is None:
            raise ValueError(
                "the checkpoint is of a model-parallel run: call model_parallel() first"
            )
        simulator.model_parallel.load_state_dict(state["model_parallel"])
    return state["extra"]


class Checkpointer:
    """The checkpoints of one run in a directory: one file per rank and step, the last ``keep`` kept.

    Parameters
    ----------
    directory : str or Path
        Where the files go (created).
    keep : int
        How many checkpoints of each rank to keep (at least 2: after a
        failure the ranks can be one checkpoint apart).
    rank : int, optional
        This process's rank (default: the rank in :mod:`torch.distributed`
        when initialised, else 0).
    prefix : str
        File names are ``{prefix}-step{step:012d}-rank{rank}.pt``.
    group : ProcessGroup, optional
        The group whose ranks must agree in :meth:`latest`.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        keep: int = 2,
        rank: int | None = None,
        prefix: str = "checkpoint",
        group: Any = None,
    ) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 2:
            raise ValueError(f"keep must be an int >= 2, got {keep!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
            raise ValueError(f"prefix must be a plain file-name part, got {prefix!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep, self.prefix, self.group = keep, prefix, group
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank(group) if distributed else 0)
        self._pattern = re.compile(rf"{re.escape(prefix)}-step(\d+)-rank{self.rank}\.pt")

    def path(self, step: int) -> Path:
        """The file of this rank's checkpoint at ``step``."""
        return self.directory / f"{self.prefix}-step{int(step):012d}-rank{self.rank}.pt"

    def steps(self) -> list[int]:
        """This rank's complete checkpoints (steps, ascending)."""
        found = []
        for entry in self.directory.iterdir():
            match = self._pattern.fullmatch(entry.name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def save(self, step: int, state: Any) -> Path:
        """Write ``state`` as this rank's checkpoint at ``step`` (atomically); prune old ones."""
        path = atomic_save(state, self.path(step))
        for old in self.steps()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)
        for stale in self.directory.glob(f".{self.prefix}-step*-rank{self.rank}.pt.tmp-*"):
            stale.unlink(missing_ok=True)  # left by a process killed while writing
        return path

    def latest(self) -> int | None:
        """The newest step of which every rank has a checkpoint (collective when distributed).

        ``None`` when there is none (a fresh start).
        """
        mine = self.steps()
        if not (dist.is_available() and dist.is_initialized()):
            return mine[-1] if mine else None
        world = dist.get_world_size(self.group)
        local = torch.full((self.keep + 1,), -1, dtype=torch.int64)
        recent = mine[-(self.keep + 1) :]
        local[: len(recent)] = torch.tensor(recent, dtype=torch.int64)
        if dist.get_backend(self.group) == "nccl":
            local = local.cuda()
        everyone = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(everyone, local, group=self.group)
        common = set.intersection(*({int(s) for s in t.tolist() if s >= 0} for t in everyone))
        return max(common) if common else None

    def load(self, step: int, map_location: Any = "cpu") -> Any:
        """This rank's checkpoint at ``step``."""
        return torch.load(self.path(step), map_location=map_location, weights_only=False)
