r"""The base of every learning rule: layer resolution, groups, per-layer state, bounds, masks."""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar, Iterable, Iterator, Union, cast

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from pysnn import functional as sf
from pysnn.fusion import is_compiling
from pysnn.learning.options import Hyper, check_hyper, hyper_table
from pysnn.network import Layer, SNNNetwork
from pysnn.validation import user_stacklevel

Tensor = torch.Tensor
Reward = Union[float, int, Tensor]

__all__ = [
    "COMMON_DEFAULTS",
    "COMMON_HYPERS",
    "LearningRule",
    "LayerState",
    "ParamGroup",
    "Reward",
    "check_finite_option",
    "check_options",
    "check_reward",
]

#: the hyper-parameters every rule has (see :mod:`pysnn.learning.options`)
COMMON_HYPERS: tuple[Hyper, ...] = (
    Hyper("lr", 1e-3, doc="learning rate"),
    Hyper("w_min", None, optional=True, doc="lower weight bound (None: none)"),
    Hyper("w_max", None, optional=True, doc="upper weight bound (None: none)"),
    Hyper("soft_bounds", False, "bool", doc="weight-dependent (multiplicative) updates"),
    Hyper("mask", None, "any", doc="bool tensor (or name -> tensor): learnable weights"),
    Hyper("reduction", "mean", "choice", ("mean", "sum"), doc="over the batch"),
)
#: options that every rule accepts, with their defaults
COMMON_DEFAULTS: dict[str, Any] = {h.name: h.default for h in COMMON_HYPERS}


def check_finite_option(name: str, value: Any) -> None:
    """Reject a NaN or infinite hyper-parameter ``name`` (a number or a tensor; ``None`` passes).

    Raises
    ------
    TypeError
        If ``value`` is not a real number or a tensor.
    ValueError
        If it is NaN or infinite (any entry of a tensor).
    """
    if value is None:
        return
    if isinstance(value, Tensor):
        finite = bool(torch.isfinite(value).all())
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        finite = math.isfinite(value)
    else:
        raise TypeError(f"{name} must be a real number or a tensor, got {type(value).__name__}")
    if not finite:
        raise ValueError(f"{name} must be finite, got {value}")


def check_options(group: Mapping[str, Any], hypers: Mapping[str, Hyper]) -> None:
    """:func:`~pysnn.learning.options.check_hyper` for every declared option of ``group``."""
    for name, hyper in hypers.items():
        if name in group:
            check_hyper(hyper, dict.get(group, name))


class _Unset:
    """Type of :data:`UNSET`."""

    def __repr__(self) -> str:
        return "<default>"


#: marks an argument that was not given (to tell a default from an explicit value)
UNSET: Any = _Unset()


def take_aliases(
    rule: str, values: dict[str, Any], options: dict[str, Any], aliases: Mapping[str, str]
) -> dict[str, Any]:
    """Move earlier option names (``aliases``) from ``options`` into ``values``, see :mod:`pysnn.compat`."""
    from pysnn import compat

    return compat.take_aliases(rule, values, options, aliases, UNSET)


class ParamGroup(dict):
    """A parameter group (a ``dict``) that also reads and writes the PySNN 0.1 names.

    ``group["a_pre"]`` reads ``group["a_plus"]``; assigning an alias assigns
    the new name.  ``converters`` maps an alias to ``(new name, to_new, to_old)``
    for aliases in other units (``e_trace_decay`` <-> ``tau_e``).
    """

    aliases: Mapping[str, str] = {}
    converters: Mapping[str, tuple[str, Any, Any]] = {}
    #: the rule's declared hyper-parameters (set by the rule for its groups)
    hypers: Mapping[str, Hyper] = {}

    def __missing__(self, key: str) -> Any:
        if key in self.aliases:
            return self[self.aliases[key]]
        if key in self.converters:
            new, _, to_old = self.converters[key]
            return to_old(self, self[new])
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self.aliases:
            key = self.aliases[key]
        elif key in self.converters:
            new, to_new, _ = self.converters[key]
            key, value = new, to_new(self, value)
        hyper = self.hypers.get(key)
        if hyper is not None:
            check_hyper(hyper, value)  # before the group changes
        super().__setitem__(key, value)


class LayerState(nn.Module):
    """Per-layer state of a rule: one buffer per name, empty until the rule first fills it.

    Buffers are created empty with the weight's dtype and device;
    :meth:`load_state_dict` resizes them to the saved shapes, so a fresh rule
    can load the state of a running one.
    """

    def __init__(self, names: Iterable[str], like: Tensor) -> None:
        super().__init__()
        for name in names:
            self.register_buffer(name, like.new_empty(0))

    def clear(self) -> None:
        """Empty every buffer (keeping dtype and device)."""
        for name, buf in self._buffers.items():
            if buf is not None:
                self._buffers[name] = buf.new_empty(0)

    def make_updatable(self) -> None:
        """Outside :func:`torch.inference_mode`, copy buffers created inside it.

        The rules update their state in place, which an inference tensor does
        not allow outside inference mode.
        """
        if is_compiling() or torch.is_inference_mode_enabled():
            return  # a compiled step (compile_step) never runs under inference mode
        buffers = self._buffers
        for name, buf in buffers.items():
            if buf is not None and buf.is_inference():
                buffers[name] = buf.clone()

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        for name, buf in self._buffers.items():
            saved = state_dict.get(prefix + name)
            if buf is not None and isinstance(saved, Tensor) and saved.shape != buf.shape:
                self._buffers[name] = buf.new_empty(saved.shape)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


# ---------------------------------------------------------------------------
# Layer resolution
# ---------------------------------------------------------------------------
def _has_weight(layer: Layer) -> bool:
    return getattr(layer.connection, "weight", None) is not None


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


def resolve_layers(layers: Any, network: SNNNetwork | None) -> list[Layer]:
    """Turn any accepted layer description into a list of :class:`Layer`.

    Collections (a network, ``net.layers``, ``layer_state_dict()``) skip layers
    without weights (pooling); naming such a layer explicitly is kept (and
    rejected by :meth:`LearningRule._check_layer`).
    """
    if isinstance(layers, SNNNetwork):
        return [lay for lay in layers.layers.values() if _has_weight(lay)]
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
            if _has_weight(layer):
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


def all_layers(layers: Any, network: SNNNetwork | None) -> list[Layer]:
    """Every layer of ``layers`` (also of a list of parameter groups)."""
    if network is None and isinstance(layers, SNNNetwork):
        network = layers
    groups = layers if _is_group_list(layers) else [{"layers": layers}]
    return [lay for group in groups for lay in resolve_layers(group["layers"], network)]


def run_state(
    state: dict[str, Tensor],
    name: str,
    shape: tuple[int, ...] | torch.Size,
    like: Tensor,
    fill: float = 0.0,
    dtype: torch.dtype | None = None,
    per_sample_layout: bool = False,
) -> Tensor:
    """A rule's per-run state ``name``, allocated when the run needs a new one.

    The one place where a rule adopts the batch size of a run: when the stored
    buffer is empty (a fresh rule or after ``reset_state()``) or does not have
    ``shape``, ``like``'s device and ``dtype`` (default ``like``'s), a new one
    filled with ``fill`` is stored and returned; otherwise the stored one.
    ``per_sample_layout``: ``shape`` is ``(batch, *like.shape)`` and every
    ``[b]`` gets ``like``'s memory layout (:func:`pysnn.functional.per_batch_zeros`).
    """
    value = state[name]
    dtype = like.dtype if dtype is None else dtype
    if value.shape != shape or value.dtype != dtype or value.device != like.device:
        if per_sample_layout:
            value = sf.per_batch_zeros(like.detach(), int(shape[0])).to(dtype)
            if fill != 0.0:
                value.fill_(fill)
        else:
            value = torch.full(tuple(shape), fill, dtype=dtype, device=like.device)
        state[name] = value
    return value


def batch_view(value: Tensor, batch: int, ndim: int) -> Tensor:
    """A per-batch tensor ``(B,)`` viewed to broadcast over ``ndim`` dims."""
    return value.reshape(batch, *([1] * (ndim - 1)))


# ---------------------------------------------------------------------------
# Masks, bounds, rewards
# ---------------------------------------------------------------------------
def check_mask(layer: Layer, group: dict[str, Any]) -> None:
    """Check the group's ``mask`` for ``layer`` (bool, the weight's shape)."""
    weight = layer.connection.weight
    mask = group["mask"]
    if isinstance(mask, Mapping):
        mask = mask.get(layer.name)
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor shaped like the weight")
        if tuple(mask.shape) != tuple(weight.shape):
            raise ValueError(
                f"mask of layer {layer.name!r} must have the weight's shape "
                f"{tuple(weight.shape)}, got {tuple(mask.shape)}"
            )


def combined_mask(layer: Layer, group: dict) -> Tensor | None:
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


def check_reward(reward: Any) -> Reward | None:
    """Check a reward's type and values; returns it (a list or tuple as a tensor).

    Raises
    ------
    TypeError
        If ``reward`` is not a real number, a real tensor or a sequence of numbers.
    ValueError
        If any value is NaN or infinite.
    """
    if reward is None:
        return None
    if isinstance(reward, (list, tuple)):
        try:
            reward = torch.as_tensor(reward, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"reward must be a number or a tensor (one value per batch element), got "
                f"{type(reward).__name__} {reward!r}"
            ) from None
    if isinstance(reward, Tensor):
        if reward.dtype == torch.bool or reward.is_complex():
            raise TypeError(f"reward must be a real-valued tensor, got dtype {reward.dtype}")
        if is_compiling():  # no data-dependent branch inside a compiled step: a runtime assert
            torch._assert_async(
                torch.isfinite(reward).all(), "reward must be finite (no NaN or inf)"
            )
            return reward
        finite = bool(torch.isfinite(reward).all())
    elif isinstance(reward, numbers.Real) and not isinstance(reward, bool):
        finite = math.isfinite(reward)
    else:
        raise TypeError(
            f"reward must be a number or a tensor (one value per batch element), got "
            f"{type(reward).__name__} {reward!r}"
        )
    if not finite:
        raise ValueError(f"reward must be finite (no NaN or inf), got {reward}")
    return reward


def check_reward_batch(reward: Reward, batch: int) -> None:
    """Require a tensor reward to be a scalar or to hold ``batch`` values."""
    if isinstance(reward, Tensor) and reward.dim() > 0 and reward.numel() != batch:
        raise ValueError(
            f"reward must be a scalar or have one value per batch element ({batch}), "
            f"got {reward.numel()} values (shape {tuple(reward.shape)})"
        )


def reward_per_batch(reward: Reward | None, batch: int, like: Tensor) -> Tensor:
    """The reward as one value per batch element ``(B,)`` in ``like``'s dtype and device.

    ``reward`` has passed :func:`check_reward`.
    """
    if reward is None:
        raise TypeError("this rule needs a reward: step(reward)")
    check_reward_batch(reward, batch)
    r = torch.as_tensor(reward, dtype=like.dtype, device=like.device)
    if r.dim() == 0:
        return r.expand(batch)
    return r.reshape(-1)


def clamp_bounds(layer: Layer, group: dict, mask: Tensor | None = None) -> None:
    """Clamp the layer's weights to ``[w_min, w_max]`` where ``mask`` (all if None) is True."""
    w_min, w_max = group["w_min"], group["w_max"]
    if w_min is None and w_max is None:
        return
    weight = layer.connection.weight
    if mask is None:
        weight.clamp_(w_min, w_max)
    else:
        weight.copy_(torch.where(mask, weight.clamp(w_min, w_max), weight))


def apply_change(
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
            up = None if ltp is None else ltp * (w_max - weight)
            down = None if ltd is None else ltd * (weight - w_min)
            dw = up if down is None else (-down if up is None else up - down)
        else:
            dw = ltp if ltd is None else (-ltd if ltp is None else ltp - ltd)
    elif group["soft_bounds"]:
        dw = torch.where(dw > 0, dw * (w_max - weight), dw * (weight - w_min))
    if not isinstance(dw, Tensor):
        return
    mask = combined_mask(layer, group)
    if mask is not None:
        dw = torch.where(mask, dw, torch.zeros((), dtype=dw.dtype, device=dw.device))
    weight.add_(dw)
    clamp_bounds(layer, group, mask)


# ---------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------
class LearningRule(nn.Module):
    r"""Base class of learning rules (an :class:`torch.nn.Module` holding the rule's state).

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
    layer_state : nn.ModuleDict
        Layer name -> :class:`LayerState` with the buffers named in
        :attr:`state_names` (eligibility, private traces), empty until used.
        In ``rule.state_dict()``, moved by ``rule.to()`` and by the network's
        ``.to()``, emptied by :meth:`reset_state` and ``net.reset_state()``.
    state : dict
        Layer name -> that layer's buffer dict (the same tensors, fast access).

    Notes
    -----
    The rule attaches itself to every network whose layers it trains
    (:meth:`~pysnn.network.SNNNetwork.attach_rule`): ``net.train()/eval()``,
    ``net.reset_state()`` and ``net.to()`` reach it.  In ``eval()`` (the rule's
    own mode, or a connection's) no weight changes and no state builds up.
    The layers and networks are kept in plain containers, so
    ``rule.state_dict()`` holds the rule's state only.

    Subclasses declare their hyper-parameters (:attr:`hyperparameters`, see
    :mod:`pysnn.learning.options`: checked at construction, when a group is
    edited and before every step; listed in ``repr`` and in the docstring's
    table), implement :meth:`_step_layer` (and :meth:`_update_layer_state` for
    rules with per-step state) and list their per-layer buffers in
    :attr:`state_names`.  A custom rule in a few lines (a presynaptically
    gated Hebbian rule with a gain of its own):

    .. code-block:: python

        class PreGated(LearningRule):
            hyperparameters = (Hyper("gain", 1.0, doc="factor of the change"),)

            def __init__(self, layers, lr=1e-3, gain=1.0, **options):
                super().__init__(layers, dict(lr=lr, gain=gain), **options)

            def _step_layer(self, layer, group, state, reward):
                if self._frozen(layer):
                    return
                post = self._post(layer, "trace")
                dw = layer.connection.correlate(post, "spikes") * group["gain"]
                self.apply_change(layer, group, dw=dw * self._scale(group, post.shape[0]))
    """

    #: the rule's declared hyper-parameters (those of its bases are included)
    hyperparameters: ClassVar[tuple[Hyper, ...]] = COMMON_HYPERS
    #: every declared hyper-parameter of the class, by name (set per class)
    _hypers: ClassVar[dict[str, Hyper]] = {h.name: h for h in COMMON_HYPERS}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hypers: dict[str, Hyper] = {}
        for klass in reversed(cls.__mro__):
            for hyper in klass.__dict__.get("hyperparameters", ()):
                hypers[hyper.name] = hyper
        cls._hypers = hypers
        doc = cls.__dict__.get("__doc__")
        if doc:
            cls.__doc__ = (
                inspect.cleandoc(doc)
                + "\n\n.. rubric:: Hyper-parameters\n\n"
                + hyper_table(hypers.values())
                + "\n"
            )

    #: names of the per-layer buffers of the rule
    state_names: tuple[str, ...] = ()
    #: whether :meth:`step` needs a reward (reward-modulated rules)
    needs_reward: bool = False
    #: class of the parameter groups (a dict subclass reading the rule's aliases)
    group_class: type[dict] = ParamGroup

    def __init__(
        self,
        layers: Any,
        defaults: Mapping[str, Any] | None = None,
        *,
        network: SNNNetwork | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        hypers = type(self)._hypers
        unknown = set(options) - set(hypers)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown options {sorted(unknown)}; its declared "
                f"hyper-parameters are {sorted(hypers)}"
            )
        given = dict(defaults or {})
        undeclared = set(given) - set(hypers)
        if undeclared:
            raise TypeError(
                f"{type(self).__name__}: hyper-parameters {sorted(undeclared)} are not declared; "
                f"add Hyper(name, default, ...) to {type(self).__name__}.hyperparameters "
                "(pysnn.learning.options) so that they are checked"
            )
        self.defaults: dict[str, Any] = {
            **{name: h.default for name, h in hypers.items()},
            **given,
            **options,
        }
        network = network if network is not None else layers
        # plain containers: a network assigned as attribute would become a submodule
        self._networks: list[SNNNetwork] = []
        self._network = [network if isinstance(network, SNNNetwork) else None]
        self.param_groups: list[dict[str, Any]] = []
        self.layer_state = nn.ModuleDict()
        self.state: dict[str, dict[str, Tensor]] = {}
        groups = layers if _is_group_list(layers) else [{"layers": layers}]
        for group in groups:
            self.add_param_group(group)
        if not self.param_groups or not any(g["layers"] for g in self.param_groups):
            raise ValueError(f"{type(self).__name__}: no layers with weights to train")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.defaults.items() if k != "mask")

    @property
    def network(self) -> SNNNetwork | None:
        """The network given to the constructor (layers by name), if any."""
        return self._network[0]

    # -- groups --------------------------------------------------------------------
    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add ``{"layers": ..., **overrides}``; missing hyper-parameters take the defaults."""
        group = dict(group)
        layers = resolve_layers(group.pop("layers"), self.network)
        full = self.group_class(self.defaults)
        full.hypers = type(self)._hypers
        dict.__setitem__(full, "layers", layers)
        aliases = getattr(full, "aliases", {})
        converters = getattr(full, "converters", {})
        unknown = {
            key
            for key in group
            if aliases.get(key, converters.get(key, (key,))[0]) not in self.defaults
        }
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown hyper-parameters {sorted(unknown)}")
        for key, value in group.items():
            full[key] = value  # PySNN 0.1 names are translated by the group
        self._check_group(full)
        seen = {id(lay.connection) for g in self.param_groups for lay in g["layers"]}
        for layer in layers:
            if id(layer.connection) in seen:
                raise ValueError(f"layer {layer.name!r} appears in more than one group")
            if layer.name in self.state:
                raise ValueError(f"two trained layers are named {layer.name!r}")
            seen.add(id(layer.connection))
            self._check_layer(layer, full)
            module = LayerState(self.state_names, layer.connection.weight)
            self.layer_state[layer.name] = module
            # the module's own buffer dict (not a copy): what a rule stores there is a buffer
            self.state[layer.name] = cast("dict[str, Tensor]", module._buffers)
        self.param_groups.append(full)
        for net in [self.network] + [lay.network for lay in layers]:
            if isinstance(net, SNNNetwork) and all(n is not net for n in self._networks):
                self._networks.append(net)
                net.attach_rule(self)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_options(group, type(self)._hypers)
        w_min, w_max = group["w_min"], group["w_max"]
        if w_min is not None and w_max is not None and w_min > w_max:
            raise ValueError(f"w_min ({w_min}) must not exceed w_max ({w_max})")
        if group["soft_bounds"] and (w_min is None or w_max is None):
            raise ValueError("soft_bounds=True needs both w_min and w_max")

    def _check_layer(self, layer: Layer, group: dict[str, Any]) -> None:
        conn = layer.connection
        obstacle = getattr(conn, "learning_obstacle", None)
        if isinstance(obstacle, str):
            raise ValueError(f"{type(self).__name__}: layer {layer.name!r}: {obstacle}")
        if getattr(conn, "weight", None) is None or not callable(getattr(conn, "correlate", None)):
            raise TypeError(
                f"{type(self).__name__}: layer {layer.name!r} has no weights "
                f"({type(conn).__name__})"
            )
        for attr in ("spikes", "trace"):
            if not hasattr(layer.neuron, attr):
                raise TypeError(f"layer {layer.name!r}: the neuron has no .{attr}")
        check_mask(layer, group)
        self._warn_if_bounds_clip(layer, group)

    def _warn_if_bounds_clip(self, layer: Layer, group: dict[str, Any]) -> None:
        """Warn when ``w_min``/``w_max`` would clip weights the rule has not changed yet.

        A connection's default weights are signed (``reset_weights``): with
        ``w_min=0`` the rule's first step would set every negative one to 0.
        """
        w_min, w_max = group["w_min"], group["w_max"]
        if not all(b is None or isinstance(b, (int, float)) for b in (w_min, w_max)):
            return
        if w_min is None and w_max is None:
            return
        weight = layer.connection.weight.detach()
        outside = torch.zeros_like(weight, dtype=torch.bool)
        if w_min is not None:
            outside |= weight < w_min
        if w_max is not None:
            outside |= weight > w_max
        mask = combined_mask(layer, group)
        if mask is not None:
            outside &= mask
        count = int(outside.sum())
        if count:
            warnings.warn(
                f"{type(self).__name__}: layer {layer.name!r} has {count} of {weight.numel()} "
                f"weights outside [{w_min}, {w_max}]; the rule's first step clips them to the "
                f"bounds (a connection's default weights are signed): initialise them inside, "
                f"e.g. connection.reset_weights('uniform', a={w_min}, b={w_max})",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )

    def _layers(self) -> Iterator[tuple[Layer, dict[str, Any]]]:
        for group in self.param_groups:
            for layer in group["layers"]:
                yield layer, group

    @property
    def layers(self) -> list[Layer]:
        """Every trained layer."""
        return [layer for layer, _ in self._layers()]

    # -- public API ------------------------------------------------------------------
    def update_state(self) -> None:
        """Advance the rule's own per-step state (call once per timestep after the network).

        Raises :class:`ValueError` before any change if a hyper-parameter of a
        group is NaN or infinite.
        """
        self._prepare_step()
        with torch.no_grad():
            for layer, group in self._layers():
                if layer.connection.has_pre_activity:
                    self._update_layer_state(layer, group, self.state[layer.name])

    def step(self, reward: Reward | None = None) -> None:
        """Apply the weight change (no change in ``eval()`` mode, the rule's or a connection's).

        Parameters
        ----------
        reward : float or Tensor, optional
            Reward-modulated rules: a scalar or one value per batch element.

        Raises
        ------
        TypeError
            If ``reward`` is not a number or a real tensor (or is missing for a
            reward-modulated rule).
        ValueError
            If ``reward`` or a hyper-parameter (``lr``, ``w_min``, ``w_max``,
            ``target``, amplitudes) is NaN or infinite, or the reward has the
            wrong number of values; raised before any weight changes.
        """
        reward = check_reward(reward)
        if reward is None and self.needs_reward:
            raise TypeError(f"{type(self).__name__} needs a reward: step(reward)")
        self._prepare_step()
        layers = [
            (layer, group) for layer, group in self._layers() if layer.connection.has_pre_activity
        ]
        if reward is not None and self.needs_reward:
            for layer, _ in layers:
                check_reward_batch(reward, int(layer.neuron.spikes.shape[0]))
        with torch.no_grad():
            for layer, group in layers:
                self._step_layer(layer, group, self.state[layer.name], reward)

    def _prepare_step(self) -> None:
        """Check every group's declared hyper-parameters; make inference-mode state updatable.

        A group whose numeric options are numbers equal to those of its last
        check is not checked again (a check of every option costs about as
        much as a small weight update); tensor options are checked every
        step, since they can change in place.
        """
        if is_compiling():
            # inside a compiled chunk: the options were checked when they were set, and the
            # first eager step checks them again; nothing here may branch on data
            return
        hypers = type(self)._hypers
        checked = self.__dict__.setdefault("_checked_options", {})
        for index, group in enumerate(self.param_groups):
            values = tuple([dict.get(group, name) for name in hypers])
            numbers_only = not any(isinstance(value, Tensor) for value in values)
            if numbers_only and checked.get(index) == values:
                continue
            check_options(group, hypers)
            if numbers_only:
                checked[index] = values
        for module in self.layer_state.values():
            module.make_updatable()

    def reset_state(self) -> None:
        """Forget the rule's per-step state (eligibility, private traces)."""
        for module in self.layer_state.values():
            module.clear()

    def forward(self, reward: Reward | None = None) -> None:
        """Same as :meth:`step`."""
        self.step(reward)

    # -- to be implemented -----------------------------------------------------------
    def _update_layer_state(self, layer: Layer, group: dict, state: dict) -> None:
        """Per-step state update of one layer (default: none)."""

    def _step_layer(self, layer: Layer, group: dict, state: dict, reward: Reward | None) -> None:
        raise NotImplementedError

    # -- shared machinery ------------------------------------------------------------
    def _frozen(self, layer: Layer) -> bool:
        """True in ``eval()`` mode of the rule or of the layer's connection."""
        return not (self.training and layer.connection.training)

    @staticmethod
    def _post(layer: Layer, name: str) -> Tensor:
        value = getattr(layer.neuron, name)
        dtype = layer.connection.weight.dtype
        return value if value.dtype == dtype else value.to(dtype)

    @staticmethod
    def _scale(group: dict, batch: int) -> float:
        return group["lr"] / batch if group["reduction"] == "mean" else group["lr"]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``nn.Module._apply(fn)``, or (PySNN 0.1 rules) :meth:`apply_change` for a layer."""
        if isinstance(fn, Layer):
            return self.apply_change(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    _mask = staticmethod(combined_mask)
    _reward = staticmethod(reward_per_batch)

    def apply_change(
        self,
        layer: Layer,
        group: dict,
        ltp: Tensor | None = None,
        ltd: Tensor | None = None,
        dw: Tensor | None = None,
    ) -> None:
        """The weight change of the rules, see :func:`apply_change` (soft bounds, mask, bounds).

        The change hooks (:meth:`register_change_hook`) see ``ltp``, ``ltd``
        and ``dw`` first, before soft bounds and the mask are applied.
        """
        for hook in tuple(self.__dict__.get("_change_hooks", {}).values()):
            ltp, ltd, dw = hook(self, layer, group, ltp, ltd, dw)
        apply_change(layer, group, ltp, ltd, dw)

    def register_change_hook(self, hook: Any) -> Any:
        """Call ``hook(rule, layer, group, ltp, ltd, dw)`` before a weight change is applied.

        The hook returns the ``(ltp, ltd, dw)`` to apply (e.g. summed over the
        ranks of a data-parallel run, see :func:`pysnn.distributed.data_parallel`).
        While a hook is registered, every rule takes the path through
        :meth:`apply_change` on every step, also when its own batch shard has no
        spikes (no event-driven or in-place shortcut), so that all processes
        call the hook equally often.

        Returns
        -------
        torch.utils.hooks.RemovableHandle
            ``handle.remove()`` removes the hook.
        """
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault("_change_hooks", OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    @property
    def _has_change_hooks(self) -> bool:
        """Whether a change hook is registered (rules then always call :meth:`apply_change`)."""
        return bool(self.__dict__.get("_change_hooks"))

    #: clamp to the group's bounds, see :func:`clamp_bounds`
    clamp_bounds = staticmethod(clamp_bounds)
