"""Boolean toy data sets: ``Boolean`` (any 2-input gate) and ``XOR``, ``AND``, ``OR``.

Each set holds the four input pairs ``(0, 0), (0, 1), (1, 0), (1, 1)`` repeated ``repetitions``
times, with the gate's output as the label (fixes of PySNN 0.1: correct labels for every gate and
any number of repetitions).  Inputs can be spike-encoded with any encoder of
:mod:`pysnn.encoding`.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch.utils.data import Dataset

__all__ = ["Boolean", "XOR", "AND", "OR", "GATES"]

#: truth tables: label of the inputs (0,0), (0,1), (1,0), (1,1)
GATES = {
    "xor": (0, 1, 1, 0),
    "and": (0, 0, 0, 1),
    "or": (0, 1, 1, 1),
    "nand": (1, 1, 1, 0),
    "nor": (1, 0, 0, 0),
    "xnor": (1, 0, 0, 1),
}

_INPUTS = ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))


class Boolean(Dataset):
    """The truth table of a 2-input Boolean gate as a dataset.

    Parameters
    ----------
    gate : str or sequence of 4 ints
        A gate name from :data:`GATES` or the labels of ``(0,0), (0,1), (1,0), (1,1)``.
    repetitions : int
        How often the four rows are repeated (``len = 4 * repetitions``); item ``i`` is row
        ``i % 4``.
    scale : float
        Value of a logical 1 in the inputs (e.g. a firing rate in Hz for a Poisson encoder).
    encoder : callable, optional
        Applied to the input tensor of shape ``(2,)``, e.g.
        ``PoissonRateEncoder(100, dt=1.0)`` with ``scale=100.0`` gives spikes ``[100, 2]``.
    transform : callable, optional
        Applied after the encoder.
    target_transform : callable, optional
        Applied to the int label.
    """

    def __init__(
        self,
        gate="xor",
        repetitions: int = 1,
        scale: float = 1.0,
        encoder: Optional[Callable] = None,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ) -> None:
        if isinstance(gate, str):
            if gate.lower() not in GATES:
                raise ValueError(f"gate must be one of {tuple(GATES)} or 4 labels, got {gate!r}")
            table: tuple[int, ...] = GATES[gate.lower()]
        else:
            table = tuple(int(v) for v in gate)
            if len(table) != 4 or any(v not in (0, 1) for v in table):
                raise ValueError(f"gate must give 4 labels in {{0, 1}}, got {gate!r}")
        if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
            raise ValueError(f"repetitions must be an int >= 1, got {repetitions!r}")
        self.table = table
        self.repetitions = repetitions
        self.scale = float(scale)
        self.encoder = encoder
        self.transform = transform
        self.target_transform = target_transform
        #: the four input rows, float tensor (4, 2)
        self.inputs = torch.tensor(_INPUTS) * self.scale
        #: the four labels, int64 tensor (4,)
        self.labels = torch.tensor(table, dtype=torch.int64)

    def __len__(self) -> int:
        return 4 * self.repetitions

    def __getitem__(self, index: int):
        """Return ``(input, label)``; the input is ``(2,)`` or whatever the encoder makes of it."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        row = index % 4
        x = self.inputs[row].clone()
        if self.encoder is not None:
            x = self.encoder(x)
        if self.transform is not None:
            x = self.transform(x)
        label = int(self.labels[row])
        if self.target_transform is not None:
            label = self.target_transform(label)
        return x, label


class XOR(Boolean):
    """Exclusive or: labels 0, 1, 1, 0."""

    def __init__(self, repetitions: int = 1, **kwargs) -> None:
        super().__init__("xor", repetitions, **kwargs)


class AND(Boolean):
    """And: labels 0, 0, 0, 1."""

    def __init__(self, repetitions: int = 1, **kwargs) -> None:
        super().__init__("and", repetitions, **kwargs)


class OR(Boolean):
    """Or: labels 0, 1, 1, 1."""

    def __init__(self, repetitions: int = 1, **kwargs) -> None:
        super().__init__("or", repetitions, **kwargs)
