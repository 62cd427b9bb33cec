r"""Correlation-based plasticity rules, written once for every connection type.

Every rule is expressed with two operations that the connections provide
(:meth:`pysnn.connection.Connection.correlate` and
:meth:`~pysnn.connection.Connection.post_sum`): the correlation of a
postsynaptic quantity :math:`y` (spikes or trace, shaped like the connection's
output) with a presynaptic quantity :math:`x` *as it arrives at each synapse*

.. math:: C_{ij} = \sum_{b,\,p} y_{b,p,i}\, x_{b,p,j}(t - d_{ij}),

an outer product (one matmul) for :class:`~pysnn.connection.Linear` and
:class:`~pysnn.connection.Recurrent`, an unfold-based correlation summed over the
output positions (shared kernel) for :class:`~pysnn.connection.Conv2d`.  Delayed
connections (one delay or one per synapse) pair every postsynaptic value with
the delayed presynaptic activity.

Usage
-----
.. code-block:: python

    rule = STDP(net.layers, lr=1e-3, a_plus=1.0, a_minus=1.05, w_min=0.0, w_max=1.0)
    for t in range(T):
        net(x[t])          # one timestep
        rule.step()        # apply this step's plasticity
    net.reset_state(); rule.reset_state()

Reward-modulated rules keep per-step state: call :meth:`LearningRule.update_state`
after every timestep and :meth:`LearningRule.step` with the reward when it is
known.

Which layers, which hyper-parameters
------------------------------------
``layers`` may be

* an :class:`~pysnn.network.SNNNetwork` (every layer with weights),
* ``net.layers`` (name -> :class:`~pysnn.network.Layer`) or
  ``net.layer_state_dict()`` (the PySNN 0.1 form),
* a :class:`~pysnn.network.Layer` or a list of them, or a list of layer names
  together with ``network=net``,
* a list of *parameter groups*, ``{"layers": <any of the above>, **overrides}``,
  as for ``torch.optim`` optimisers: the overrides replace the rule's defaults for
  those layers.  ``rule.param_groups`` can be edited while learning.

Options of every rule (per group)
---------------------------------
``lr``
    Learning rate (dimensionless multiplier of the rule's weight change).
``w_min, w_max``
    Hard bounds: weights are clamped to ``[w_min, w_max]`` after each update
    (``None``: unbounded on that side).
``soft_bounds``
    Weight-dependent (multiplicative) updates: potentiation is scaled by
    :math:`(w_{max} - w)`, depression by :math:`(w - w_{min})`; needs both bounds.
``mask``
    Bool tensor shaped like the weight, or a dict layer name -> such a tensor
    (layers not in the dict are unmasked); ``False`` entries never change.  It is
    combined with a connection's own ``plastic_mask`` (e.g. the diagonal of a
    :class:`~pysnn.connection.Recurrent`).
``reduction``
    ``"mean"`` (default) divides the summed weight change by the batch size,
    ``"sum"`` does not.

Collections (a network, ``net.layers``, ``layer_state_dict()``) skip layers
without weights (pooling); naming such a layer explicitly is an error.  With
:meth:`pysnn.network.SNNNetwork.run`, apply a rule from the callback:
``net.run(x, callback=lambda t, out: rule.step())``.

No rule uses autograd; weights are changed in place under ``torch.no_grad``.
Rules read spikes and traces from the live modules at every step, so they stay
correct after ``net.to()``, ``.double()`` or ``.cuda()``.  A connection in
``eval()`` mode is never changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Iterable, Union

import torch
from torch import nn

from pysnn.connection import Connection
from pysnn.network import Layer, SNNNetwork

Tensor = torch.Tensor
Reward = Union[float, int, Tensor]

__all__ = [
    "LearningRule",
    "STDP",
    "TripletSTDP",
    "MSTDP",
    "MSTDPET",
    "FedeSTDP",
    "Hebbian",
    "Oja",
    "WeightNormalization",
    "normalize_weights",
]

#: options that every rule accepts, with their defaults
COMMON_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "w_min": None,
    "w_max": None,
    "soft_bounds": False,
    "mask": None,
    "reduction": "mean",
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def _as_layer(item: Any, network: SNNNetwork | None) -> Layer:
    if isinstance(item, Layer):
        return item
    if isinstance(item, str):
        if network is None:
            raise ValueError(f"layer name {item!r} given without network=...")
        if item not in network.layers:
            raise KeyError(f"network has no layer {item!r}; layers: {list(network.layers)}")
        return network.layers[item]
    if isinstance(item, Mapping) and isinstance(item.get("layer"), Layer):
        return item["layer"]
    if isinstance(item, Mapping) and "connection" in item and "neuron" in item:
        conn, neuron = item["connection"], item["neuron"]
        if isinstance(conn, nn.Module) and isinstance(neuron, nn.Module):
            return Layer(str(item.get("name", "layer")), conn, neuron)
        raise TypeError(
            "a layer description needs live modules: use net.layers or a "
            "layer_state_dict() with a 'layer' entry (plain state dicts are copies)"
        )
    raise TypeError(f"cannot interpret {type(item).__name__} as a layer")


def _resolve_layers(layers: Any, network: SNNNetwork | None) -> list[Layer]:
    """Turn any accepted layer description into a list of :class:`Layer`."""
    if isinstance(layers, SNNNetwork):
        return [
            lay
            for lay in layers.layers.values()
            if getattr(lay.connection, "weight", None) is not None
        ]
    if isinstance(layers, (Layer, str)):
        return [_as_layer(layers, network)]
    if isinstance(layers, Mapping):
        if isinstance(layers.get("layer"), Layer):  # one layer_state_dict() entry
            return [layers["layer"]]
        out = []
        for name, value in layers.items():
            layer = _as_layer(value, network)
            if not isinstance(value, Layer) and not isinstance(value.get("layer"), Layer):
                layer = Layer(str(name), layer.connection, layer.neuron)
            if getattr(layer.connection, "weight", None) is not None:  # skip pooling layers
                out.append(layer)
        return out
    if isinstance(layers, Iterable):
        return [_as_layer(item, network) for item in layers]
    raise TypeError(f"cannot interpret {type(layers).__name__} as layers")


def _is_group_list(layers: Any) -> bool:
    return (
        isinstance(layers, (list, tuple))
        and len(layers) > 0
        and all(isinstance(g, Mapping) and "layers" in g for g in layers)
    )


def _active_units(x: Tensor, n_units: int) -> Tensor:
    """Indices of the units (last dimension) with a nonzero value in any batch element."""
    flat = x.reshape(-1, n_units)
    if flat.shape[0] == 1:
        return flat[0].nonzero().squeeze(1)
    return flat.any(0).nonzero().squeeze(1)


def _batch_view(value: Tensor, batch: int, ndim: int) -> Tensor:
    """A per-batch tensor ``(B,)`` viewed to broadcast over ``ndim`` dims."""
    return value.reshape(batch, *([1] * (ndim - 1)))


def normalize_weights(weight: Tensor, target: float | Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Scale each postsynaptic neuron's incoming weights so that they sum to ``target``.

    .. math:: w_{ij} \leftarrow w_{ij}\,\frac{T - F_i}{P_i},\quad
        P_i = \sum_{j\,\in\,\text{plastic}} w_{ij},\quad F_i = \sum_{j\,\notin\,\text{plastic}} w_{ij}

    The postsynaptic neuron (output channel for ``Conv2d``) is the first weight
    dimension.  Only weights where ``mask`` is True are scaled; rows whose
    plastic sum is 0 are left unchanged.  Works in place and returns ``weight``.
    """
    with torch.no_grad():
        dims = tuple(range(1, weight.dim()))
        if mask is None:
            plastic = weight.sum(dims, keepdim=True)
            fixed = torch.zeros_like(plastic)
        else:
            plastic = (weight * mask).sum(dims, keepdim=True)
            fixed = (weight * ~mask).sum(dims, keepdim=True)
        ok = plastic != 0
        scale = torch.where(ok, (target - fixed) / torch.where(ok, plastic, 1.0), 1.0)
        if mask is None:
            weight.mul_(scale)
        else:
            weight.copy_(torch.where(mask, weight * scale, weight))
    return weight


# ---------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------
class LearningRule:
    r"""Base class of learning rules.

    Parameters
    ----------
    layers : SNNNetwork, dict, Layer, list of Layer or names, or list of groups
        The layers to train, see :mod:`pysnn.learning`.  Parameter groups
        ``{"layers": ..., **overrides}`` override ``defaults`` per layer.
    defaults : dict, optional
        Hyper-parameters of the rule (rule-specific ones plus ``lr``,
        ``w_min``, ``w_max``, ``soft_bounds``, ``mask``, ``reduction``, whose
        defaults are filled in).  Parameter groups may override these keys only.
    network : SNNNetwork, optional
        Needed when layers are given by name.
    **options
        The options of every rule, overriding :data:`COMMON_DEFAULTS`:
        ``w_min``, ``w_max``, ``soft_bounds``, ``mask``, ``reduction`` (and
        ``lr``); any other name is a :class:`TypeError`.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group: ``"layers"`` (list of :class:`Layer`) and every
        hyper-parameter.  Editable while learning.
    state : dict
        Per-layer state of the rule (name -> dict), e.g. eligibility traces.

    Notes
    -----
    Subclasses implement :meth:`_step_layer` (and :meth:`_update_layer_state`
    for rules with per-step state); the base class handles layers, groups,
    bounds, masks, the batch reduction and ``eval()``.  A custom rule in a
    few lines (a presynaptically gated Hebbian rule):

    .. code-block:: python

        class PreGated(LearningRule):
            def __init__(self, layers, lr=1e-3, **options):
                super().__init__(layers, dict(lr=lr, **options))

            def _step_layer(self, layer, group, state, reward):
                if self._frozen(layer):
                    return
                post = self._post(layer, "trace")
                dw = layer.connection.correlate(post, "spikes")
                self._apply(layer, group, dw=dw * self._scale(group, post.shape[0]))
    """

    def __init__(
        self,
        layers: Any,
        defaults: Mapping[str, Any] | None = None,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(COMMON_DEFAULTS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown options {sorted(unknown)}; "
                f"the options of every rule are {sorted(COMMON_DEFAULTS)}"
            )
        # ``defaults`` may add keys (custom rules); groups may only override known keys
        self.defaults: dict[str, Any] = {**COMMON_DEFAULTS, **(defaults or {}), **options}
        self.network = (
            network if network is not None else (layers if isinstance(layers, SNNNetwork) else None)
        )
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[str, dict[str, Any]] = {}
        groups = layers if _is_group_list(layers) else [{"layers": layers}]
        for group in groups:
            self.add_param_group(group)
        if not self.param_groups or not any(g["layers"] for g in self.param_groups):
            raise ValueError(f"{type(self).__name__}: no layers with weights to train")

    # -- groups --------------------------------------------------------------------
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add ``{"layers": ..., **overrides}``; missing hyper-parameters take the defaults."""
        group = dict(group)
        layers = _resolve_layers(group.pop("layers"), self.network)
        unknown = set(group) - set(self.defaults)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyper-parameters {sorted(unknown)}")
        full = {**self.defaults, **group, "layers": layers}
        self._check_group(full)
        seen = {id(lay.connection) for g in self.param_groups for lay in g["layers"]}
        for layer in layers:
            if id(layer.connection) in seen:
                raise ValueError(f"layer {layer.name!r} appears in more than one group")
            seen.add(id(layer.connection))
            self._check_layer(layer, full)
            self.state[layer.name] = {}
        self.param_groups.append(full)

    def _check_group(self, group: dict[str, Any]) -> None:
        if group["reduction"] not in ("mean", "sum"):
            raise ValueError(f'reduction must be "mean" or "sum", got {group["reduction"]!r}')
        w_min, w_max = group["w_min"], group["w_max"]
        if w_min is not None and w_max is not None and w_min > w_max:
            raise ValueError(f"w_min ({w_min}) must not exceed w_max ({w_max})")
        if group["soft_bounds"] and (w_min is None or w_max is None):
            raise ValueError("soft_bounds=True needs both w_min and w_max")

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        conn = layer.connection
        if not isinstance(conn, Connection) or conn.weight is None:
            raise TypeError(
                f"{type(self).__name__}: layer {layer.name!r} has no weights "
                f"({type(conn).__name__})"
            )
        for attr in ("spikes", "trace"):
            if not hasattr(layer.neuron, attr):
                raise TypeError(f"layer {layer.name!r}: the neuron has no .{attr}")
        mask = group["mask"]
        if isinstance(mask, Mapping):
            mask = mask.get(layer.name)
        if mask is not None:
            if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
                raise TypeError("mask must be a bool tensor shaped like the weight")
            if tuple(mask.shape) != tuple(conn.weight.shape):
                raise ValueError(
                    f"mask of layer {layer.name!r} must have the weight's shape "
                    f"{tuple(conn.weight.shape)}, got {tuple(mask.shape)}"
                )

    def _layers(self) -> Iterable[tuple[Layer, dict[str, Any]]]:
        for group in self.param_groups:
            for layer in group["layers"]:
                yield layer, group

    @property
    def layers(self) -> list[Layer]:
        """Every trained layer."""
        return [layer for layer, _ in self._layers()]

    # -- public API ------------------------------------------------------------------
    def update_state(self) -> None:
        """Advance the rule's own per-step state (call once per timestep after the network)."""
        with torch.no_grad():
            for layer, group in self._layers():
                if layer.connection.has_pre_activity:
                    self._update_layer_state(layer, group, self.state[layer.name])

    def step(self, reward: Reward | None = None) -> None:
        """Apply the weight change (no change for connections in ``eval()`` mode)."""
        with torch.no_grad():
            for layer, group in self._layers():
                if not layer.connection.has_pre_activity:
                    continue
                self._step_layer(layer, group, self.state[layer.name], reward)

    def reset_state(self) -> None:
        """Forget the rule's per-step state (eligibility, private traces)."""
        for name in self.state:
            self.state[name] = {}

    # -- to be implemented -----------------------------------------------------------
    def _update_layer_state(self, layer: Layer, group: dict, state: dict) -> None:
        """Per-step state update of one layer (default: none)."""

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------
    @staticmethod
    def _frozen(layer: Layer) -> bool:
        return not layer.connection.training

    @staticmethod
    def _post(layer: Layer, name: str) -> Tensor:
        value = getattr(layer.neuron, name)
        dtype = layer.connection.weight.dtype
        return value if value.dtype == dtype else value.to(dtype)

    @staticmethod
    def _scale(group: dict, batch: int) -> float:
        return group["lr"] / batch if group["reduction"] == "mean" else group["lr"]

    @staticmethod
    def _mask(layer: Layer, group: dict) -> Tensor | None:
        """Combined learnable mask (user mask & connection's plastic_mask), or None."""
        weight = layer.connection.weight
        mask = group["mask"]
        if isinstance(mask, Mapping):
            mask = mask.get(layer.name)
        plastic = getattr(layer.connection, "plastic_mask", None)
        if mask is not None:
            mask = mask.to(weight.device)
        if isinstance(plastic, Tensor):
            plastic = plastic.to(weight.device)
            mask = plastic if mask is None else mask & plastic
        return mask

    @staticmethod
    def _reward(reward: Reward | None, batch: int, like: Tensor) -> Tensor:
        if reward is None:
            raise TypeError("this rule needs a reward: step(reward)")
        r = torch.as_tensor(reward, dtype=like.dtype, device=like.device)
        if r.dim() == 0:
            return r.expand(batch)
        r = r.reshape(-1)
        if r.numel() != batch:
            raise ValueError(f"reward must be a scalar or have {batch} values, got {r.numel()}")
        return r

    def _apply(
        self,
        layer: Layer,
        group: dict,
        ltp: Tensor | None = None,
        ltd: Tensor | None = None,
        dw: Tensor | None = None,
    ) -> None:
        r"""Apply ``ltp - ltd`` (both >= 0 in the usual case) or a signed ``dw``.

        With soft bounds, :math:`\Delta w = ltp\,(w_{max} - w) - ltd\,(w - w_{min})`
        (a signed ``dw`` is scaled by the bound it moves towards); then the mask
        and the hard bounds are applied.
        """
        weight = layer.connection.weight
        w_min, w_max = group["w_min"], group["w_max"]
        if dw is None:
            if group["soft_bounds"]:
                dw = 0.0
                if ltp is not None:
                    dw = dw + ltp * (w_max - weight)
                if ltd is not None:
                    dw = dw - ltd * (weight - w_min)
            else:
                dw = ltp if ltd is None else (-ltd if ltp is None else ltp - ltd)
        elif group["soft_bounds"]:
            dw = torch.where(dw > 0, dw * (w_max - weight), dw * (weight - w_min))
        if not isinstance(dw, Tensor):
            return
        mask = self._mask(layer, group)
        if mask is not None:
            dw = torch.where(mask, dw, torch.zeros((), dtype=dw.dtype, device=dw.device))
        weight.add_(dw)
        if w_min is not None or w_max is not None:
            if mask is None:
                weight.clamp_(w_min, w_max)
            else:
                weight.copy_(torch.where(mask, weight.clamp(w_min, w_max), weight))


# ---------------------------------------------------------------------------
# Pair-based STDP
# ---------------------------------------------------------------------------
class STDP(LearningRule):
    r"""Pair-based, trace-based spike-timing-dependent plasticity.

    At every timestep, with :math:`s` spikes (0/1), :math:`x` traces (after this
    step's spikes), pre- and postsynaptic indices :math:`j, i`:

    .. math::
        \Delta w_{ij} = \eta \left( A_+\, s^{post}_i\, x^{pre}_j(t - d_{ij})
                        - A_-\, x^{post}_i\, s^{pre}_j(t - d_{ij}) \right)

    summed over the batch (divided by the batch size for ``reduction="mean"``)
    and, for ``Conv2d``, over output positions.  With traces that jump by
    :math:`\alpha_t = 1` and decay exactly (``update_type="exact"``), a
    presynaptic spike :math:`\Delta` ms before a postsynaptic one gives
    :math:`\Delta w = \eta A_+ e^{-\Delta/\tau_+}` and the reverse order
    :math:`-\eta A_- e^{-\Delta/\tau_-}`; simultaneous spikes give
    :math:`\eta (A_+ - A_-)`.

    The time constants :math:`\tau_+` and :math:`\tau_-` are the trace time
    constants of the **neurons** (``tau_t`` of the presynaptic population for
    :math:`\tau_+`, of the postsynaptic one for :math:`\tau_-`), in ms, and
    :math:`A_\pm` scale the trace amplitudes ``alpha_t``.  Pairing scheme:

    * all-to-all: neurons with ``trace_mode="additive"`` (each spike adds to the trace),
    * nearest-spike: ``trace_mode="saturating"`` (each spike resets the trace to ``alpha_t``).

    Forms: additive (default) or multiplicative / weight-dependent with
    ``soft_bounds=True``:
    :math:`\Delta w = \eta (A_+ s x (w_{max} - w) - A_- x s (w - w_{min}))`.

    Parameters
    ----------
    layers
        Layers to train, see :class:`LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    a_plus, a_minus : float
        Potentiation and depression amplitudes :math:`A_+`, :math:`A_-`.
    event_driven : bool or None
        ``True``: always use the event-driven path (touch only the rows of
        spiking postsynaptic and the columns of spiking presynaptic neurons);
        ``False``: always dense; ``None`` (default): event-driven when the
        fraction of active rows and columns,
        :math:`\tfrac12(n^{post}_{active}/N_{out} + n^{pre}_{active}/N_{in})`,
        is at most ``event_threshold`` and the layer has at least
        ``event_min_synapses`` weights (below that, on CPU, the fixed cost of
        the sparse indexing exceeds one dense in-place ``addmm_``, so auto
        mode does not look for active neurons).  Only for ``Linear``/``Recurrent``
        without per-synapse delays; other connections are always dense.  Both
        paths give the same weights (up to rounding), except that the event path
        clamps only the weights it touches.
    event_threshold : float
        Activity threshold of the automatic choice (default 0.1).
    event_min_synapses : int
        Size threshold of the automatic choice (default :math:`2^{19}`; tune
        per machine with ``benchmarks/bench_stdp.py``).
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        a_plus: float = 1.0,
        a_minus: float = 1.0,
        *,
        event_driven: bool | None = None,
        event_threshold: float = 0.1,
        event_min_synapses: int = 2**19,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                lr=lr,
                a_plus=a_plus,
                a_minus=a_minus,
                event_driven=event_driven,
                event_threshold=event_threshold,
                event_min_synapses=event_min_synapses,
            ),
            network=network,
            **options,
        )
        #: path taken by the last update of each layer ("dense", "event" or "none")
        self.last_path: dict[str, str] = {}

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        s_post = self._post(layer, "spikes")
        x_post = self._post(layer, "trace")
        scale = self._scale(group, s_post.shape[0])
        c_plus, c_minus = scale * group["a_plus"], scale * group["a_minus"]
        mode = group["event_driven"]
        any_post = any_pre = True
        weight_numel = conn.weight.numel()
        # auto mode skips the search for active neurons when the layer is too small
        # for the event-driven path to pay off
        if conn.supports_event_driven and (
            mode is True or (mode is None and weight_numel >= group["event_min_synapses"])
        ):
            rows = _active_units(s_post, conn.weight.shape[0])
            cols = _active_units(conn.arriving("spikes"), conn.weight.shape[1])
            any_post, any_pre = rows.numel() > 0, cols.numel() > 0
            if not (any_post or any_pre):
                self.last_path[layer.name] = "none"
                return
            frac = 0.5 * (rows.numel() / conn.weight.shape[0] + cols.numel() / conn.weight.shape[1])
            sparse_enough = frac <= group["event_threshold"]
            if mode is True or sparse_enough:
                self.last_path[layer.name] = "event"
                self._event_update(layer, group, s_post, x_post, rows, cols, c_plus, c_minus)
                return
        self.last_path[layer.name] = "dense"
        if group["soft_bounds"] or self._mask(layer, group) is not None:
            ltp = conn.correlate(s_post, "trace") * c_plus
            ltd = conn.correlate(x_post, "spikes") * c_minus
            self._apply(layer, group, ltp=ltp, ltd=ltd)
            return
        # additive, unmasked: accumulate straight into the weight (addmm_ for Linear)
        weight = conn.weight
        terms = []
        if any_post:
            terms.append((s_post, "trace", c_plus))
        if any_pre:
            terms.append((x_post, "spikes", -c_minus))
        conn.accumulate_correlations(weight, terms)
        if group["w_min"] is not None or group["w_max"] is not None:
            weight.clamp_(group["w_min"], group["w_max"])

    def _event_update(
        self,
        layer: Layer,
        group: dict,
        s_post: Tensor,
        x_post: Tensor,
        rows: Tensor,
        cols: Tensor,
        c_plus: float,
        c_minus: float,
    ) -> None:
        """Sparse update: LTP on rows of spiking post neurons, LTD on columns of spiking pre."""
        conn = layer.connection
        weight = conn.weight
        w_min, w_max = group["w_min"], group["w_max"]
        bounded = w_min is not None or w_max is not None
        mask = self._mask(layer, group)
        # both terms are computed from the weights before this step's update (rows = spiking
        # postsynaptic neurons, cols = spiking presynaptic neurons)
        ltp = ltd = None
        if rows.numel():
            ltp = conn.correlate_rows(s_post, "trace", rows).mul_(c_plus)  # (k, in)
            if group["soft_bounds"]:
                ltp.mul_(w_max - _index_select(weight, 0, rows))
            if mask is not None:
                ltp.mul_(_index_select(mask, 0, rows))
        if cols.numel():
            ltd = conn.correlate_cols(x_post, "spikes", cols).mul_(-c_minus)  # (out, m)
            if group["soft_bounds"]:
                ltd.mul_(_index_select(weight, 1, cols) - w_min)
            if mask is not None:
                ltd.mul_(_index_select(mask, 1, cols))
        # add LTP to the rows in place; LTD: one gather of the columns, add, clamp and one
        # scatter; then clamp the rows (idempotent where rows and columns cross), which
        # equals clamping w + ltp - ltd as the dense path does.
        if ltp is not None:
            _index_add_(weight, 0, rows, ltp)
        if ltd is not None:
            part = _index_select(weight, 1, cols).add_(ltd)
            if bounded:
                part = self._clamp_part(part, w_min, w_max, mask, 1, cols)
            _index_copy_(weight, 1, cols, part)
        if bounded and ltp is not None:
            part = _index_select(weight, 0, rows)
            _index_copy_(weight, 0, rows, self._clamp_part(part, w_min, w_max, mask, 0, rows))

    @staticmethod
    def _clamp_part(
        part: Tensor, w_min, w_max, mask: Tensor | None, dim: int, index: Tensor
    ) -> Tensor:
        if mask is None:
            return part.clamp_(w_min, w_max)
        return torch.where(_index_select(mask, dim, index), part.clamp(w_min, w_max), part)


def _storage_order(x: Tensor) -> tuple[Tensor, bool]:
    """``x`` or its transpose, whichever is contiguous (index ops on it avoid slow paths).

    :class:`~pysnn.connection.Linear` stores its weight input-major, so
    ``weight.t()`` is the contiguous tensor.
    """
    if x.dim() == 2 and not x.is_contiguous() and x.t().is_contiguous():
        return x.t(), True
    return x, False


def _index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    base, flipped = _storage_order(x)
    if flipped:
        return base.index_select(1 - dim, index).t()
    return base.index_select(dim, index)


def _index_add_(x: Tensor, dim: int, index: Tensor, source: Tensor) -> None:
    base, flipped = _storage_order(x)
    if flipped:
        base.index_add_(1 - dim, index, source.t())
    else:
        base.index_add_(dim, index, source)


def _index_copy_(x: Tensor, dim: int, index: Tensor, source: Tensor) -> None:
    base, flipped = _storage_order(x)
    if flipped:
        base.index_copy_(1 - dim, index, source.t())
    else:
        base.index_copy_(dim, index, source)


# ---------------------------------------------------------------------------
# Triplet STDP
# ---------------------------------------------------------------------------
class TripletSTDP(LearningRule):
    r"""Triplet STDP of Pfister & Gerstner (2006), all-to-all interactions.

    Four traces: :math:`r_1` (presynaptic, :math:`\tau_+`) and :math:`o_1`
    (postsynaptic, :math:`\tau_-`) are the neurons' own traces; the rule keeps
    the slow traces :math:`r_2` (presynaptic, :math:`\tau_x`) and :math:`o_2`
    (postsynaptic, :math:`\tau_y`), each jumping by 1 per spike and decaying
    exactly.  At each timestep, with :math:`\epsilon` meaning "before this
    step's spike is added":

    .. math::
        \Delta w_{ij} = \eta\Big( s^{post}_i\, r_{1,j}\,
            \big(A_2^+ + A_3^+\, o_{2,i}(t-\epsilon)\big)
            - s^{pre}_j\, o_{1,i}\, \big(A_2^- + A_3^-\, r_{2,j}(t-\epsilon)\big)\Big)

    The *minimal* model has :math:`A_3^- = 0` (the default).  Times are in ms;
    :math:`\tau_+` and :math:`\tau_-` are the ``tau_t`` of the pre- and
    postsynaptic neurons (use ``update_type="exact"`` and ``alpha_t=1`` for the
    model as published).  With a pair pre :math:`\to` post separated by
    :math:`\Delta > 0` the change is :math:`\eta A_2^+ e^{-\Delta/\tau_+}`; a
    post-pre-post triplet at :math:`0, t_1, t_2` gives
    :math:`\eta(-A_2^- e^{-t_1/\tau_-} + e^{-(t_2 - t_1)/\tau_+}(A_2^+ + A_3^+ e^{-t_2/\tau_y}))`.

    Call :meth:`step` once per timestep (it also advances :math:`r_2, o_2`,
    also in ``eval()`` mode, where weights do not change).  Delays: one delay
    per connection is supported (:math:`r_2` follows the arriving spikes); not
    per-synapse delays.

    Parameters
    ----------
    layers
        Layers to train, see :class:`LearningRule`.
    lr : float
        Learning rate :math:`\eta` (multiplies all amplitudes).
    a2_plus, a3_plus, a2_minus, a3_minus : float
        Pair and triplet amplitudes.
    tau_x, tau_y : float
        Time constants of :math:`r_2` and :math:`o_2` in ms.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        lr: float = 1.0,
        a2_plus: float = 5e-3,
        a3_plus: float = 6e-3,
        a2_minus: float = 7e-3,
        a3_minus: float = 0.0,
        tau_x: float = 100.0,
        tau_y: float = 125.0,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                lr=lr,
                a2_plus=a2_plus,
                a3_plus=a3_plus,
                a2_minus=a2_minus,
                a3_minus=a3_minus,
                tau_x=tau_x,
                tau_y=tau_y,
            ),
            network=network,
            **options,
        )

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        if layer.connection.per_synapse_delay:
            raise NotImplementedError("TripletSTDP does not support per-synapse delays")

    @staticmethod
    def _slow_trace(state: dict, key: str, like: Tensor) -> Tensor:
        value = state.get(key)
        if value is None or value.shape != like.shape or value.dtype != like.dtype:
            value = torch.zeros_like(like)
        return value.to(like.device)

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        conn = layer.connection
        dt = float(conn.dt)
        s_pre = conn.arriving("spikes")
        s_post = self._post(layer, "spikes")
        r2 = self._slow_trace(state, "r2", s_pre) * math.exp(-dt / group["tau_x"])
        o2 = self._slow_trace(state, "o2", s_post) * math.exp(-dt / group["tau_y"])
        if not self._frozen(layer):
            scale = self._scale(group, s_post.shape[0])
            ltp = conn.correlate(s_post * (group["a2_plus"] + group["a3_plus"] * o2), "trace")
            ltd = conn.correlate(
                self._post(layer, "trace"), s_pre * (group["a2_minus"] + group["a3_minus"] * r2)
            )
            self._apply(layer, group, ltp=ltp * scale, ltd=ltd * scale)
        state["r2"] = r2 + s_pre
        state["o2"] = o2 + s_post


# ---------------------------------------------------------------------------
# Reward-modulated STDP
# ---------------------------------------------------------------------------
class MSTDP(LearningRule):
    r"""Reward-modulated STDP without eligibility trace (Florian 2007), batched.

    .. math::
        \zeta_{b,ij}(t) = a_{pre}\, s^{post}_{b,i}\, x^{pre}_{b,j}
                        - a_{post}\, x^{post}_{b,i}\, s^{pre}_{b,j},\qquad
        \Delta w_{ij} = \eta\, \frac{1}{B}\sum_b r_b\, \zeta_{b,ij}(t)

    (no :math:`1/B` for ``reduction="sum"``).  The reward :math:`r` is a scalar
    or one value per batch element; each element's STDP term is weighted by its
    own reward.  Computed with two matmuls (the rewards scale the postsynaptic
    factors), no per-synapse state.  Call :meth:`step` with the reward at every
    timestep, after the network step.  Traces as in :class:`STDP`.

    Parameters
    ----------
    layers
        Layers to train, see :class:`LearningRule`.
    a_pre, a_post : float
        Amplitudes of the pre-before-post and post-before-pre terms.
    lr : float
        Learning rate :math:`\eta`.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        a_pre: float = 1.0,
        a_post: float = 1.0,
        lr: float = 1e-3,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                a_pre=a_pre,
                a_post=a_post,
                lr=lr,
            ),
            network=network,
            **options,
        )

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        s_post = self._post(layer, "spikes")
        batch = s_post.shape[0]
        r = _batch_view(self._reward(reward, batch, s_post), batch, s_post.dim())
        if self._frozen(layer):
            return
        conn = layer.connection
        scale = self._scale(group, batch)
        dw = conn.correlate(s_post * r, "trace") * (scale * group["a_pre"])
        dw -= conn.correlate(self._post(layer, "trace") * r, "spikes") * (scale * group["a_post"])
        self._apply(layer, group, dw=dw)


class MSTDPET(LearningRule):
    r"""Reward-modulated STDP with eligibility trace (Florian 2007), batched.

    Every batch element :math:`b` keeps its own eligibility trace, updated by
    :meth:`update_state` once per timestep:

    .. math::
        e_{b,ij} \leftarrow \lambda_e\, e_{b,ij}
            + a_{pre}\, s^{post}_{b,i}\, x^{pre}_{b,j}
            - a_{post}\, x^{post}_{b,i}\, s^{pre}_{b,j}

    and :meth:`step` applies the reward (a scalar or one value per element):

    .. math:: \Delta w_{ij} = \eta\, \frac{1}{B} \sum_b r_b\, e_{b,ij}

    (no :math:`1/B` for ``reduction="sum"``).  :math:`\lambda_e` is a decay
    factor per step, :math:`e^{-\Delta t/\tau_e}` for an eligibility time
    constant :math:`\tau_e` in ms.  The eligibility has shape
    ``(batch, *weight.shape)``.  Traces as in :class:`STDP`.

    Parameters
    ----------
    layers
        Layers to train (PySNN 0.1: ``net.layer_state_dict()``), see :class:`LearningRule`.
    a_pre, a_post : float
        Amplitudes of the pre-before-post and post-before-pre terms.
    lr : float
        Learning rate :math:`\eta`.
    e_trace_decay : float
        Eligibility decay factor :math:`\lambda_e \in [0, 1]` per step.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        a_pre: float = 1.0,
        a_post: float = 1.0,
        lr: float = 1e-3,
        e_trace_decay: float = 0.95,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        if not 0.0 <= float(e_trace_decay) <= 1.0:
            raise ValueError(f"e_trace_decay must be in [0, 1], got {e_trace_decay}")
        super().__init__(
            layers,
            dict(
                a_pre=a_pre,
                a_post=a_post,
                lr=lr,
                e_trace_decay=e_trace_decay,
            ),
            network=network,
            **options,
        )

    def eligibility(self, name: str) -> Tensor | None:
        """Eligibility trace ``(batch, *weight.shape)`` of layer ``name`` (None before a step)."""
        return self.state[name].get("e")

    def _update_layer_state(self, layer: Layer, group: dict, state: dict) -> None:
        conn = layer.connection
        s_post = self._post(layer, "spikes")
        zeta = conn.correlate(s_post, "trace", per_batch=True) * group["a_pre"]
        zeta -= (
            conn.correlate(self._post(layer, "trace"), "spikes", per_batch=True) * group["a_post"]
        )
        e = state.get("e")
        if e is None or e.shape != zeta.shape or e.dtype != zeta.dtype or e.device != zeta.device:
            state["e"] = zeta
        else:
            e.mul_(group["e_trace_decay"]).add_(zeta)

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        e = state.get("e")
        if e is None or self._frozen(layer):
            return
        batch = e.shape[0]
        r = self._reward(reward, batch, e)
        dw = torch.tensordot(r, e, dims=1) * self._scale(group, batch)
        self._apply(layer, group, dw=dw)


# ---------------------------------------------------------------------------
# FedeSTDP
# ---------------------------------------------------------------------------
def _normalized_trace(x: Tensor) -> Tensor:
    """Trace divided by its maximum over each receptive field (dim -2); 0 where the max is 0."""
    peak = x.amax(-2, keepdim=True)
    positive = peak > 0
    return torch.where(positive, x / torch.where(positive, peak, torch.ones_like(peak)), 0.0)


class FedeSTDP(LearningRule):
    r"""STDP of Paredes-Vallés, Scheper & de Croon (TPAMI 2019).

    For a postsynaptic neuron :math:`i` that spikes, with
    :math:`\hat x_j = x_j / \max_{k \in RF(i)} x_k` the presynaptic trace
    normalised by the largest trace in its receptive field (0 when all are 0):

    .. math::
        LTP_{ij} &= e^{-(w_{ij} - w_{init})}\,(e^{\hat x_j} - a)\\
        LTD_{ij} &= e^{(w_{ij} - w_{init})}\,(e^{1 - \hat x_j} - a)\\
        \Delta w_{ij} &= \eta\, \frac{1}{n_i} \sum_{b,\,p} s^{post}_{b,p,i}\,
            (LTP_{ij} - LTD_{ij})

    with the sum over batch elements and (``Conv2d``) output positions where
    neuron/channel :math:`i` spiked, and :math:`n_i` the number of those spikes
    (``reduction="mean"``; 1 for ``"sum"``).  The update is gated by postsynaptic
    spikes, always finite (zero traces give :math:`\hat x = 0`), and on ``Conv2d``
    each output position uses its own receptive field (unfolded traces).  The
    weights converge to :math:`w_{init}` plus a function of :math:`\hat x` and
    :math:`a`.

    Parameters
    ----------
    layers
        Layers to train (PySNN 0.1: ``net.layer_state_dict()``), see :class:`LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    w_init : float
        Weight initialisation value :math:`w_{init}` around which the rule is centred.
    a : float
        Shift :math:`a` of the LTP/LTD balance (:math:`a < 1` per the paper's analysis).
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.  Not supported with per-synapse delays.
    """

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        w_init: float = 0.5,
        a: float = 0.0,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            layers,
            dict(
                lr=lr,
                w_init=w_init,
                a=a,
            ),
            network=network,
            **options,
        )

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        super()._check_layer(layer, group)
        if layer.connection.per_synapse_delay:
            raise NotImplementedError("FedeSTDP does not support per-synapse delays")

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        s_post = self._post(layer, "spikes")
        if not bool(s_post.any()):
            return
        weight = conn.weight
        n = conn.post_sum(s_post)  # spikes per postsynaptic unit, (out, 1, ...)
        exp_x = conn.correlate(s_post, "trace", pre_map=lambda x: torch.exp(_normalized_trace(x)))
        exp_1mx = conn.correlate(
            s_post, "trace", pre_map=lambda x: torch.exp(1.0 - _normalized_trace(x))
        )
        a, centred = group["a"], weight - group["w_init"]
        ltp = torch.exp(-centred) * (exp_x - a * n)
        ltd = torch.exp(centred) * (exp_1mx - a * n)
        norm = n.clamp(min=1.0) if group["reduction"] == "mean" else 1.0
        self._apply(layer, group, dw=group["lr"] * (ltp - ltd) / norm)


# ---------------------------------------------------------------------------
# Rate-based rules
# ---------------------------------------------------------------------------
class Hebbian(LearningRule):
    r"""Plain Hebbian rule on traces (rates) or spikes.

    .. math:: \Delta w_{ij} = \eta\, y_i\, x_j

    with :math:`y` the postsynaptic and :math:`x` the (arriving) presynaptic
    quantity chosen by ``post``/``pre`` (``"trace"``: a low-pass rate estimate;
    ``"spikes"``), summed over batch and positions (divided by the batch size
    for ``reduction="mean"``).  Unbounded growth unless bounds, normalisation
    (:class:`WeightNormalization`) or :class:`Oja` are used.

    Parameters
    ----------
    layers
        Layers to train, see :class:`LearningRule`.
    lr : float
        Learning rate :math:`\eta`.
    pre, post : {"trace", "spikes"}
        Quantities correlated.
    w_min, w_max, soft_bounds, mask, reduction, network
        See :class:`LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        lr: float = 1e-3,
        *,
        pre: str = "trace",
        post: str = "trace",
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        for name, value in (("pre", pre), ("post", post)):
            if value not in ("trace", "spikes"):
                raise ValueError(f'{name} must be "trace" or "spikes", got {value!r}')
        super().__init__(
            layers,
            dict(
                lr=lr,
                pre=pre,
                post=post,
            ),
            network=network,
            **options,
        )

    def _post_quantity(self, layer: Layer, group: dict) -> Tensor:
        return self._post(layer, "spikes" if group["post"] == "spikes" else "trace")

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        y = self._post_quantity(layer, group)
        dw = layer.connection.correlate(y, group["pre"]) * self._scale(group, y.shape[0])
        self._apply(layer, group, dw=dw)


class Oja(Hebbian):
    r"""Oja's rule: Hebbian learning with a decay that normalises each neuron's weights.

    .. math:: \Delta w_{ij} = \eta\, \left(y_i\, x_j - y_i^2\, w_{ij}\right)

    summed over batch and positions (divided by the batch size for
    ``reduction="mean"``); :math:`y` and :math:`x` as in :class:`Hebbian`
    (traces by default).  The squared norm of each neuron's weight vector tends
    to 1.  Parameters as in :class:`Hebbian`.
    """

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        if self._frozen(layer):
            return
        conn = layer.connection
        y = self._post_quantity(layer, group)
        dw = conn.correlate(y, group["pre"]) - conn.post_sum(y * y) * conn.weight
        self._apply(layer, group, dw=dw * self._scale(group, y.shape[0]))


# ---------------------------------------------------------------------------
# Weight normalisation
# ---------------------------------------------------------------------------
class WeightNormalization(LearningRule):
    r"""Keep each postsynaptic neuron's summed incoming weight at ``target``.

    Every ``interval`` calls of :meth:`step` (e.g. once per timestep, or once per
    sample as in Diehl & Cook 2015, who use a target of 78 for 784 inputs):

    .. math:: w_{ij} \leftarrow w_{ij}\, \frac{T - F_i}{P_i}

    with :math:`P_i` the sum of neuron :math:`i`'s plastic (unmasked) incoming
    weights and :math:`F_i` the sum of its fixed ones (see
    :func:`normalize_weights`).  Combine with any rule by calling both
    ``step()`` methods.  Hard bounds, if given, are applied after the scaling
    (which may then move the sum away from the target); ``soft_bounds`` and
    ``lr`` are not used.  Nothing changes in ``eval()`` mode.

    Parameters
    ----------
    layers
        Layers to normalise, see :class:`LearningRule`.
    target : float
        Target sum :math:`T` of each neuron's incoming weights.
    interval : int
        Normalise on every ``interval``-th call of :meth:`step` (the first
        normalisation happens on call ``interval``).
    mask, w_min, w_max, network
        See :class:`LearningRule`.
    """

    def __init__(
        self,
        layers: Any,
        target: float = 1.0,
        interval: int = 1,
        *,
        w_min: float | None = None,
        w_max: float | None = None,
        mask: Tensor | None = None,
        network: SNNNetwork | None = None,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a positive int, got {interval!r}")
        super().__init__(
            layers,
            dict(target=target, interval=interval, w_min=w_min, w_max=w_max, mask=mask),
            network=network,
        )
        self.n_calls = 0

    def step(self, reward: Reward | None = None) -> None:
        """Count the call and normalise every ``interval``-th one."""
        self.n_calls += 1
        with torch.no_grad():
            for layer, group in self._layers():
                if self.n_calls % group["interval"] == 0 and not self._frozen(layer):
                    self.normalize(layer, group)

    def normalize(self, layer: Layer, group: dict | None = None) -> None:
        """Normalise one layer now."""
        if group is None:
            group = next(g for lay, g in self._layers() if lay.connection is layer.connection)
        weight = layer.connection.weight
        mask = self._mask(layer, group)
        w_min, w_max = group["w_min"], group["w_max"]
        with torch.no_grad():
            normalize_weights(weight, group["target"], mask)
            if w_min is not None or w_max is not None:
                clamped = weight.clamp(w_min, w_max)
                weight.copy_(clamped if mask is None else torch.where(mask, clamped, weight))

    def reset_state(self) -> None:
        super().reset_state()
        self.n_calls = 0
