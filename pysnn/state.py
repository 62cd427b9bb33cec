"""Base class for modules that carry state from one timestep to the next.

State tensors have a leading batch dimension and live in registered buffers, so
``.to()``, ``.double()``, ``state_dict()`` and ``copy.deepcopy`` need no extra
code.  The batch size is never baked in: right after construction or
:meth:`StatefulModule.reset_state` a module is *fresh* and adopts the batch size
of its first input; in the middle of a run a different batch size is an error.

Most state updates **rebind** a buffer to a new tensor.  A module whose step
writes into a buffer **in place** (a ring buffer) names it in
``_inplace_state``: such a buffer is cloned into an ordinary tensor when a step
runs outside :func:`torch.inference_mode` after it was created inside (an
inference tensor cannot be updated in place outside), and
:meth:`StatefulModule._step_snapshot` keeps what the step overwrites, so that
:class:`~pysnn.network.SNNNetwork` can undo a step that raised.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import nn

from pysnn.fusion import is_compiling

Tensor = torch.Tensor


class StatefulModule(nn.Module):
    """A module with per-batch state buffers.

    Subclasses list the names of their state buffers in ``_state_names`` and
    implement :meth:`_init_state`, which (re)creates them for a batch size.
    """

    _state_names: tuple[str, ...] = ()
    #: plain attributes (ints) saved with the state, e.g. a ring-buffer head
    _extra_state_attrs: tuple[str, ...] = ()
    #: state buffers that a step updates in place (every other state buffer is rebound)
    _inplace_state: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self._fresh = True

    # -- to be implemented -------------------------------------------------
    def _init_state(self, batch_size: int) -> None:
        """Create every state buffer, at its initial value, for ``batch_size``."""
        raise NotImplementedError

    # -- public API --------------------------------------------------------
    @property
    def is_fresh(self) -> bool:
        """True between :meth:`reset_state` (or construction) and the first step."""
        return self._fresh

    @property
    def batch_size(self) -> int | None:
        """Batch size of the current state, ``None`` when no state is allocated."""
        buffers = self._buffers  # dict reads: nn.Module.__getattr__ costs ~1 us a call
        for name in self._state_names:
            buf = buffers.get(name)
            if buf is not None and buf.dim() > 0:
                return buf.shape[0]
        return None

    def reset_state(self, batch_size: int | None = None) -> None:
        """Reset the state to its initial value, optionally for a new batch size.

        Parameters
        ----------
        batch_size : int, optional
            Batch size of the next input.  By default the current one is kept;
            either way the module adopts the batch size of its next input.
        """
        if batch_size is None:
            batch_size = self.batch_size or 1
        elif (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, numbers.Integral)
            or batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self._init_state(int(batch_size))
        self._fresh = True

    def detach_state(self) -> None:
        """Detach every state buffer from the autograd graph (values kept), see :mod:`pysnn.autodiff`."""
        buffers = self._buffers
        for name in self._state_names:
            buf = buffers.get(name)
            if buf is not None and buf.requires_grad:
                buffers[name] = buf.detach()

    #: name used in the messages of :meth:`ensure_state` (``None``: the class name)
    _owner_name: str | None = None

    def _state_features(self) -> tuple[int, ...] | None:
        """The per-sample shape the state is allocated for (``None``: not shaped by the input)."""
        return None

    def _adopt_features(self, features: tuple[int, ...]) -> None:
        """Hook: take ``features`` as the per-sample shape (fresh state; may raise)."""

    def ensure_state(self, batch_size: int, features: tuple[int, ...] | None = None) -> None:
        """Make the state fit a step's input; the one place where a module adopts a batch size.

        A *fresh* module (after construction or :meth:`reset_state`) adopts the
        batch size ``batch_size`` and, where its state is shaped by the input,
        the per-sample shape ``features`` (re-allocating its state).  A module
        in the middle of a run only checks them: a different batch size or
        shape is a :class:`ValueError` asking for :meth:`reset_state`.  Then the
        run is marked as started.  Also makes the ``_inplace_state`` buffers
        ordinary tensors again when they were created under
        :func:`torch.inference_mode` and this step runs outside it.
        """
        owner = self._owner_name or type(self).__name__
        if features is not None and features != self._state_features():
            if not self._fresh and self._state_features() is not None:
                raise ValueError(
                    f"{owner}: the input has per-sample shape {features} but the running "
                    f"simulation uses {self._state_features()}; call reset_state() first"
                )
            self._adopt_features(features)
            self._init_state(batch_size)
        if batch_size != self.batch_size:
            if not self._fresh:
                raise ValueError(
                    f"{owner}: input batch size {batch_size} differs from the batch size "
                    f"{self.batch_size} of the running simulation; call reset_state() before "
                    f"changing the batch size"
                )
            self._init_state(batch_size)
        if self._fresh:
            self._fresh = False
        if self._inplace_state and not is_compiling() and not torch.is_inference_mode_enabled():
            buffers = self._buffers
            for name in self._inplace_state:
                if buffers[name].is_inference():
                    # created under torch.inference_mode(): an ordinary copy can be updated
                    buffers[name] = buffers[name].clone()

    def _step_snapshot(self, steps: int = 1) -> Any:
        """What the next ``steps`` steps may change in place (``None``: nothing), for :meth:`_step_restore`.

        Rebound buffers and plain attributes are restored by the caller (see
        :meth:`SNNNetwork.__call__ <pysnn.network.SNNNetwork.__call__>`); this
        default clones the buffers named in ``_inplace_state``.  A module that
        knows which part a step overwrites (one ring-buffer slot) keeps only that.
        """
        names = self._inplace_state
        if not names:
            return None
        buffers = self._buffers
        return {name: buffers[name].clone() for name in names}

    def _step_restore(self, saved: Any) -> None:
        """Undo the in-place changes of a step from :meth:`_step_snapshot`'s ``saved``.

        Called after the buffer dict and the plain attributes are restored.
        """
        self._buffers.update(saved)

    def _step_commit(self, saved: Any) -> None:
        """Hook: the step of :meth:`_step_snapshot`'s ``saved`` succeeded (e.g. stop a journal)."""

    def _set_state(self, name: str, tensor: Tensor) -> None:
        """Rebind an existing state buffer (fast path of ``setattr`` for the step loop)."""
        self._buffers[name] = tensor

    def _register_state(self, name: str, tensor: Tensor) -> None:
        """Create or replace a state buffer."""
        if name in self._buffers:
            self._buffers[name] = tensor
        else:
            self.register_buffer(name, tensor)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # State saved with another batch size (or before allocation) is adopted
        # as is: resize our buffers to the saved shapes before loading.
        for name in self._state_names:
            key = prefix + name
            if key in state_dict and name in self._buffers:
                saved = state_dict[key]
                own = self._buffers[name]
                if own is None or own.shape != saved.shape:
                    like = own if own is not None else saved
                    self._buffers[name] = torch.empty(
                        saved.shape, dtype=like.dtype, device=like.device
                    )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def get_extra_state(self) -> dict[str, Any]:
        """Save whether the state is fresh (and ring-buffer positions) for exact resumption."""
        extra: dict[str, Any] = {"fresh": self._fresh}
        for name in self._extra_state_attrs:
            extra[name] = getattr(self, name)
        return extra

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` saved."""
        self._fresh = bool(state.get("fresh", False))
        for name in self._extra_state_attrs:
            if name in state:
                setattr(self, name, state[name])
