r"""In-place accumulation of products: the one state update that must not be copied.

Learning rules add correlations to large tensors every step: the weight
(``(out, in)``) and, for reward-modulated rules with per-sample eligibility,
a ``(B, out, in)`` trace,

.. math:: E \leftarrow \lambda E + \sum_k \alpha_k\, Y_k X_k,

a GEMM (or a batched GEMM) per term.  Eagerly, ``mul_`` and ``addmm_``/
``baddbmm_`` update :math:`E` in place.  Inside a compiled graph
(``torch.compile``) in-place operations are functionalised: every term
writes a fresh tensor of :math:`E`'s size and the result is copied back,
which made MSTDPET at batch 32 several times slower than eager on CPU.
:func:`accumulate_products_` is therefore a custom operator
(``torch.library.custom_op`` with ``mutates_args``) that the compiler calls
as one opaque in-place kernel: the eager arithmetic, no copy.  It is the
only function of :mod:`pysnn.functional` that modifies an argument (hence
the trailing underscore).

:func:`per_batch_zeros` allocates such a per-sample trace with the weight's
memory layout, and :func:`contract_batch` reduces it over the batch into a
weight change with that layout.
"""

from __future__ import annotations

from typing import Sequence

import torch

Tensor = torch.Tensor

__all__ = ["accumulate_products_", "contract_batch", "per_batch_zeros"]


def _accumulate(
    target: Tensor,
    decay: float,
    ys: Sequence[Tensor],
    xs: Sequence[Tensor],
    alphas: Sequence[float],
) -> None:
    if decay != 1.0:
        target.mul_(decay)  # a separate pass: baddbmm_ with beta != 1 was slower (MKL)
    if not target.is_contiguous() and target.transpose(-1, -2).is_contiguous():
        # stored transposed (a Linear weight is input-major): (Y X)^T = X^T Y^T, contiguously
        target = target.transpose(-1, -2)
        ys, xs = [x.transpose(-1, -2) for x in xs], [y.transpose(-1, -2) for y in ys]
    for y, x, alpha in zip(ys, xs, alphas):
        if target.dim() == 3:
            target.baddbmm_(y, x, alpha=alpha)
        else:
            target.addmm_(y, x, alpha=alpha)


if hasattr(torch.library, "custom_op"):  # torch >= 2.4

    @torch.library.custom_op("pysnn::accumulate_products_", mutates_args=("target",))
    def _accumulate_op(
        target: Tensor, decay: float, ys: list[Tensor], xs: list[Tensor], alphas: list[float]
    ) -> None:
        _accumulate(target, decay, ys, xs, alphas)

    @_accumulate_op.register_fake
    def _(target, decay, ys, xs, alphas):  # shapes only: the operator returns nothing
        return None

else:  # pragma: no cover - older torch compiles the plain in-place operations
    _accumulate_op = _accumulate  # type: ignore[assignment]


def _layout_order(tensor: Tensor) -> list[int]:
    """``tensor``'s dimensions from the outermost in memory to the innermost."""
    return sorted(range(tensor.dim()), key=lambda d: -tensor.stride(d))


def per_batch_zeros(like: Tensor, batch: int) -> Tensor:
    """Zeros ``(batch, *like.shape)`` whose every ``[b]`` has ``like``'s memory layout.

    A per-sample trace laid out like the weight (``Linear`` stores its weight
    input-major) is reduced over the batch by :func:`contract_batch` into a
    change with the weight's layout, so that adding it is one contiguous pass.
    """
    order = _layout_order(like)
    storage = like.new_zeros((batch, *(like.shape[d] for d in order)))
    return storage.permute(0, *(order.index(d) + 1 for d in range(like.dim())))


def contract_batch(coefficients: Tensor, per_batch: Tensor) -> Tensor:
    r""":math:`\sum_b c_b\, E_b` for ``(B,)`` coefficients and ``(B, *shape)`` values.

    One matrix-vector product over ``per_batch``'s storage; the result has the
    memory layout of ``per_batch[0]`` (e.g. a ``Linear`` weight's input-major
    layout, so that adding it to the weight is one contiguous pass).

    Parameters
    ----------
    coefficients : Tensor
        :math:`c`, ``(B,)``.
    per_batch : Tensor
        :math:`E`, ``(B, *shape)``; every ``[b]`` with the same memory layout.
    """
    batch = per_batch.shape[0]
    order = [d + 1 for d in _layout_order(per_batch[0])]
    storage = per_batch.permute(0, *order)  # every [b] in its memory order: a contiguous view
    row = coefficients.reshape(1, batch).to(per_batch.dtype)
    flat = torch.mm(row, storage.reshape(batch, -1))
    inverse = [order.index(d + 1) for d in range(per_batch.dim() - 1)]
    return flat.reshape(storage.shape[1:]).permute(*inverse)


def accumulate_products_(
    target: Tensor,
    ys: Sequence[Tensor],
    xs: Sequence[Tensor],
    alphas: Sequence[float],
    decay: float = 1.0,
) -> Tensor:
    r"""In place :math:`E \leftarrow \lambda E + \sum_k \alpha_k Y_k X_k`; returns ``target``.

    Parameters
    ----------
    target : Tensor
        :math:`E`, ``(out, in)`` or ``(B, out, in)`` (contiguous).
    ys, xs : sequence of Tensor
        The factors :math:`Y_k` ``([B,] out, r_k)`` and :math:`X_k`
        ``([B,] r_k, in)`` of each term (a batched product when ``target`` is 3-D).
    alphas : sequence of float
        :math:`\alpha_k`, one per term.
    decay : float
        :math:`\lambda` (1: no decay).

    Eagerly this is ``mul_`` and one ``addmm_``/``baddbmm_`` per term; inside
    ``torch.compile`` the same kernels run as one opaque in-place operator
    (see the module docstring), so the compiled update costs what the eager
    one does.
    """
    _accumulate_op(target, float(decay), list(ys), list(xs), [float(a) for a in alphas])
    return target
