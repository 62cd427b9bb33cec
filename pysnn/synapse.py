r"""Synapse models: the dynamics between a connection and a neuron.

A connection outputs the weighted spikes of each step; a synapse turns them
into the neuron's input current.  Without a synapse module the synapse is a
**delta** synapse: the weighted spikes are the current of that step.  A
synapse works between any connection and any neuron:

.. code-block:: python

    current, _ = fc(spikes, trace)         # weighted spikes, (B, N)
    lif(syn(current, post=lif))            # filtered current into the neuron

or in a network graph, ``net.add_layer("fc", fc, lif, pre, synapse=syn)``.

* delta (no module): :math:`I = x`;
* :class:`ExponentialSynapse`: :math:`I \leftarrow a I + x` (state ``current``);
* :class:`AlphaSynapse`: the alpha kernel :math:`\tfrac{e}{\tau} t e^{-t/\tau}`
  (state ``current``, ``rise``);
* :class:`ConductanceSynapse`: :math:`g \leftarrow a g + x`,
  :math:`I = g (E_{rev} - v)` (state ``g``).

**Integrators.**  A spike makes the synaptic variable jump by the weighted
spike :math:`x` (Brian2's ``on_pre: g += w``).  Between spikes it decays by
:math:`a = e^{-\Delta t/\tau}` under ``integrator="exact"`` (the default) and
by :math:`a = 1 - \Delta t/\tau` under ``integrator="euler"``.

**Exact coupling to the membrane.**  Under ``integrator="exact"`` the current
synapses (exponential, alpha) fed into a :class:`~pysnn.neuron.LIFNeuron` (or
:class:`~pysnn.neuron.AdaptiveLIFNeuron`, :class:`~pysnn.neuron.IFNeuron`)
that integrates ``"exact"`` too advance the coupled linear system
:math:`(v, I)` exactly over the step: the synapse returns the constant current
that moves the membrane exactly as the decaying current does
(:func:`pysnn.functional.membrane_coupling`), the result of Brian2's
``method="exact"``.  The synapse finds its postsynaptic population in the
network graph it belongs to (``add_layer``/``connect``), or from the ``post``
argument when called by hand.  Otherwise (no postsynaptic population known,
another neuron model, another integrator) it returns its current at the
start of the step, which the neuron holds constant over the step.

A conductance synapse needs the postsynaptic voltage: it is called as
``syn(x, neuron.v_cell)`` (the network's default step passes it, reading the
voltage at the start of the step).  Use one module per synapse type
(excitatory, inhibitory), each with its own time constant and reversal
potential, and give the neuron the list of their currents.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, ClassVar

import torch
from torch import nn

from pysnn import functional as sf
from pysnn.neuron.parameters import Option, Param, StateVar
from pysnn.neuron.population import Population

Tensor = torch.Tensor

__all__ = ["ExponentialSynapse", "AlphaSynapse", "ConductanceSynapse"]

#: integrators of the synapse models
SYNAPSE_INTEGRATORS = ("exact", "euler")


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())


def _membrane_buffer(post: nn.Module) -> tuple[bool, Tensor | None]:
    r"""Whether ``post`` is a linear membrane integrated exactly, and its ``tau_v`` buffer.

    LIF (or a subclass with its membrane) and IF (``None``: :math:`\tau_m = \infty`).
    """
    from pysnn.neuron.lif import IFNeuron, LIFNeuron

    if getattr(post, "integrator", None) != "exact":
        return False, None
    if isinstance(post, LIFNeuron) and type(post).integrate is LIFNeuron.integrate:
        return True, post._buffers["tau_v"]
    if isinstance(post, IFNeuron) and type(post).integrate is IFNeuron.integrate:
        return True, None
    return False, None


def _float64_parameter(module: nn.Module, name: str) -> Tensor:
    """Parameter ``name`` of ``module`` in full precision (its float64 master while unedited)."""
    buf = module._buffers[name]
    master = getattr(module, "_masters", {}).get(name)
    if master is not None and master.shape == buf.shape:
        if torch.equal(master.to(device=buf.device, dtype=buf.dtype), buf):
            return master.to(buf.device)
    return buf.detach().double()


class ExponentialSynapse(Population):
    r"""Exponential current-based synapse: the current decays with ``tau_syn`` and jumps by the input.

    .. math::
        \tau_{syn} \dot I = -I + \tau_{syn} \sum_k x_k\,\delta(t - t_k),\qquad
        I \leftarrow a\, I + x

    with :math:`a = e^{-\Delta t/\tau_{syn}}` (``integrator="exact"``) or
    :math:`1 - \Delta t/\tau_{syn}` (``"euler"``)
    (:func:`pysnn.functional.exponential_current_update`).  One synapse type
    per module: ``tau_syn`` is a number or one value per postsynaptic neuron;
    use one module per synapse type (e.g. excitatory and inhibitory) and sum
    the currents in the neuron.

    With ``input="held"`` the input is instead a drive held constant over the
    step, :math:`\tau_{syn} \dot I = -I + x` (NIR's ``CubaLIF`` current,
    :func:`pysnn.functional.held_current_update`); :mod:`pysnn.nir` uses it.

    Parameters
    ----------
    cells_shape : tuple of int
        Shape of the postsynaptic population (the connection's output).
    tau_syn : float or Tensor
        Synaptic time constant in ms (default 5).
    dt : float
        Timestep in ms.
    integrator : {"exact", "euler"}
        How the current decays between spikes (default ``"exact"``).
    input : {"impulse", "held"}
        A spike's weighted input makes the current jump (``"impulse"``,
        default) or drives it over the step (``"held"``).

    Attributes
    ----------
    current : Tensor
        The current :math:`I`, ``(batch, *cells_shape)``: with
        ``input="impulse"`` at the start of the last step (after its jump),
        with ``input="held"`` at its end.

    Notes
    -----
    ``forward`` returns the input current of the neuron for this step: the
    current above or, under exact coupling to an exact LIF/IF membrane (see
    the module docstring), the constant current with the same effect on the
    membrane as the current decaying during the step.

    Examples
    --------
    >>> syn = ExponentialSynapse((100,), tau_syn=5.0, dt=1.0)
    >>> current = syn(torch.rand(8, 100))
    """

    params: ClassVar[tuple[Param, ...]] = (
        Param("tau_syn", 5.0, "time", doc="synaptic time constant (ms)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("current"),)
    options: ClassVar[tuple[Option, ...]] = (Option("input", "impulse", ("impulse", "held")),)
    #: the coupling factors of :meth:`coupling`: ``(c_I,)`` (alpha: ``(c_I, c_h)``)
    coupling_functions: ClassVar[tuple[Any, ...]] = (sf.membrane_coupling,)

    def setup(self) -> None:
        if self.integrator not in SYNAPSE_INTEGRATORS:
            raise ValueError(
                f"{type(self).__name__}: integrator must be one of {SYNAPSE_INTEGRATORS}, got "
                f"{self.integrator!r} (a spike is an impulse under both: the synaptic variable "
                "jumps by the weighted spike and decays exactly or by forward Euler)"
            )

    # -- factors ---------------------------------------------------------------------
    def _decay(self) -> Tensor:
        """:math:`a`: :math:`e^{-\\Delta t/\\tau_{syn}}` (exact) or :math:`1 - \\Delta t/\\tau_{syn}`."""
        if self.integrator == "euler":
            return self.factor("tau_syn", sf.euler_decay_factor)
        return self.decay("tau_syn")

    def coupling(self, post: nn.Module | None = None) -> tuple[Tensor, ...] | None:
        r"""The factors that couple this synapse exactly to ``post``'s membrane, or ``None``.

        ``(c_I,)`` (alpha synapse: ``(c_I, c_h)``) of
        :func:`pysnn.functional.membrane_coupling` when this synapse and
        ``post`` (default: the postsynaptic population of the network graph
        this synapse belongs to) integrate ``"exact"`` and ``post`` is a
        :class:`~pysnn.neuron.LIFNeuron` (or subclass with its membrane),
        :class:`~pysnn.neuron.IFNeuron` (:math:`\tau_m = \infty`); ``None``
        otherwise (the neuron then holds the returned current over the step).
        Cached until a time constant changes.
        """
        if self.integrator != "exact":
            return None
        if post is None:
            post = self._graph_post()
            if post is None:
                return None
        linear, tau_m_buf = _membrane_buffer(post)
        if not linear:
            return None
        tau_s = self._buffers["tau_syn"]
        anchor = self._anchor
        compiling = _is_compiling()
        if compiling:  # inside a compiled chunk: computed every step (a few scalar ops)
            tau_m = math.inf if tau_m_buf is None else tau_m_buf.double()
            return tuple(
                fn(tau_s.double(), tau_m, self.dt).to(anchor) for fn in self.coupling_functions
            )
        # ids of the buffers (kept alive by the cache entry) and their in-place versions
        key = (
            id(post),
            id(tau_m_buf),
            None if tau_m_buf is None else tau_m_buf._version,
            float(post.dt),
            id(tau_s),
            tau_s._version,
            anchor.dtype,
            anchor.device,
        )
        cache = self.__dict__.get("_coupling_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        if float(post.dt) != float(self.dt):
            raise ValueError(
                f"{type(self).__name__}: dt = {self.dt} ms differs from the postsynaptic "
                f"{type(post).__name__}'s dt = {post.dt} ms"
            )
        tau_s64 = _float64_parameter(self, "tau_syn")
        tau_m = math.inf if tau_m_buf is None else _float64_parameter(post, "tau_v")
        value = tuple(fn(tau_s64, tau_m, self.dt).to(anchor) for fn in self.coupling_functions)
        self.__dict__["_coupling_cache"] = (key, value, (tau_m_buf, tau_s))
        return value

    def _graph_post(self) -> nn.Module | None:
        """The postsynaptic population of the network graph that holds this synapse, or ``None``."""
        cached = self.__dict__.get("_graph_post_ref")
        if _is_compiling():
            return None if cached is None else cached[1]()
        from pysnn.safety import owner_of

        net = owner_of(self)
        if cached is not None and net is not None and cached[0]() is net:
            return cached[1]()
        if net is None:
            return None
        posts = {
            id(layer.neuron): layer.neuron for layer in net.layers.values() if layer.synapse is self
        }
        if len(posts) > 1:
            raise ValueError(
                f"{type(self).__name__}: one synapse module feeds several populations "
                f"({', '.join(type(p).__name__ for p in posts.values())}); a synapse holds the "
                "current of one population: use one module per projection target"
            )
        post = next(iter(posts.values()), None)
        if post is not None:
            self.__dict__["_graph_post_ref"] = (weakref.ref(net), weakref.ref(post))
        return post

    def _check_post(self, post: Any, features: tuple[int, ...]) -> None:
        if post is None:
            return
        if not isinstance(post, nn.Module):
            raise TypeError(
                f"{type(self).__name__}: post must be the postsynaptic population (an "
                f"nn.Module), got {type(post).__name__}"
            )
        post_features = getattr(post, "features_shape", None)
        if post_features is not None and tuple(post_features) != tuple(features):
            raise ValueError(
                f"{type(self).__name__}: post has the per-sample shape {tuple(post_features)}, "
                f"the synapse's input {tuple(features)}"
            )

    def _begin(self, x: Tensor | list[Tensor], post: nn.Module | None):
        """Check the step's input and ``post``, then adopt the input: ``(x, coupling)``.

        Every check (and the coupling factors, which check ``dt``) comes before
        any state changes.
        """
        total, features = self._sum_input(x)
        self._check_post(post, features)
        coupling = self.coupling(post)
        self._adopt_input(total, features)
        return total, coupling

    # -- the step --------------------------------------------------------------------
    def forward(self, x: Tensor | list[Tensor], post: nn.Module | None = None) -> Tensor:
        """Add this step's weighted spikes ``x`` (a tensor or a list, summed); return the current.

        Parameters
        ----------
        x : Tensor or list of Tensor
            Weighted spikes ``(batch, *cells_shape)`` of this step.
        post : nn.Module, optional
            The postsynaptic population, for the exact coupling (default: the
            one of the network graph holding this synapse).

        Returns
        -------
        Tensor
            The neuron's input current for this step (see the class notes).
        """
        x, coupling = self._begin(x, post)
        state = self._buffers
        start = state["current"]
        if self.input == "held":
            current = sf.held_current_update(start, x, self._decay())
            state["current"] = current
            if coupling is None:
                return current
            return sf.held_coupled_current(start, x, coupling[0])
        current = sf.exponential_current_update(start, x, self._decay())
        state["current"] = current
        return current if coupling is None else sf.coupled_current(current, coupling[0])


class AlphaSynapse(ExponentialSynapse):
    r"""Alpha-shaped synaptic current: rises after each spike and peaks ``tau_syn`` later.

    A unit input gives :math:`I(t) = \tfrac{e}{\tau} t\, e^{-t/\tau}` (peak 1 at
    :math:`t = \tau`), the impulse response of

    .. math:: \tau \dot h = -h + \tau \sum_k x_k\,\delta(t - t_k),\qquad
              \tau \dot I = -I + e\, h,

    integrated exactly (``integrator="exact"``, default) or by forward Euler
    (``"euler"``), :func:`pysnn.functional.alpha_current_update`.  Under exact
    coupling to an exact LIF/IF membrane the returned current is
    :math:`c_I I + c_h h` (:func:`pysnn.functional.alpha_membrane_coupling`).

    Parameters
    ----------
    cells_shape : tuple of int
        Shape of the postsynaptic population.
    tau_syn : float or Tensor
        Time to peak in ms (default 5).
    dt : float
        Timestep in ms.
    integrator : {"exact", "euler"}
        Exact or forward-Euler integration of :math:`(I, h)`.
    """

    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("current"), StateVar("rise"))
    options: ClassVar[tuple[Option, ...]] = ()
    coupling_functions: ClassVar[tuple[Any, ...]] = (
        sf.membrane_coupling,
        sf.alpha_membrane_coupling,
    )

    def forward(self, x: Tensor | list[Tensor], post: nn.Module | None = None) -> Tensor:
        """Add this step's weighted spikes ``x``; return the current (see :class:`ExponentialSynapse`)."""
        x, coupling = self._begin(x, post)
        state = self._buffers
        if self.integrator == "euler":
            drive = self.factor("tau_syn", sf.alpha_euler_drive)
        else:
            drive = self.factor("tau_syn", sf.alpha_drive)
        current, rise = sf.alpha_current_update(
            state["current"], state["rise"], x, self._decay(), drive
        )
        state["current"], state["rise"] = current, rise
        if coupling is None:
            return current
        return sf.alpha_coupled_current(current, rise, coupling[0], coupling[1])


class ConductanceSynapse(ExponentialSynapse):
    r"""Conductance-based synapse: :math:`g` decays with ``tau_syn``, the current is :math:`g (E - v)`.

    .. math:: g \leftarrow a\, g + x,\qquad I = g\,(E_{rev} - v)

    with :math:`a = e^{-\Delta t/\tau_{syn}}` (``integrator="exact"``, default)
    or :math:`1 - \Delta t/\tau_{syn}` (``"euler"``), :math:`x` the weighted
    spikes (conductance increments, in units of the neuron's leak conductance
    when the neuron has :math:`\alpha_v = 1`) and :math:`v` the postsynaptic
    voltage at the start of the step.  The current is nonlinear in :math:`v`:
    the neuron holds it over the step (no exact coupling).  With
    ``integrator="euler"`` and a LIF neuron under ``integrator="euler"``, the
    step is Brian2's ``method="euler"`` of the conductance-based LIF (the COBA
    network of Brette et al. 2007).

    Parameters
    ----------
    cells_shape : tuple of int
        Shape of the postsynaptic population.
    tau_syn : float or Tensor
        Conductance time constant in ms (default 5).
    e_rev : float or Tensor
        Reversal potential in mV (default 0, excitatory; e.g. -80 for inhibition).
    dt : float
        Timestep in ms.
    integrator : {"exact", "euler"}
        Exact or forward-Euler decay of :math:`g`.

    Examples
    --------
    >>> import torch
    >>> from pysnn.neuron import LIFNeuron
    >>> exc = ConductanceSynapse((100,), tau_syn=5.0, e_rev=0.0)
    >>> inh = ConductanceSynapse((100,), tau_syn=10.0, e_rev=-80.0)
    >>> lif = LIFNeuron((100,), thresh=-50.0, v_rest=-60.0, tau_v=20.0, integrator="exact")
    >>> v = lif.v_cell
    >>> spikes, _ = lif([exc(torch.rand(1, 100) * 0.1, v), inh(torch.zeros(1, 100), v)])
    >>> spikes.shape
    torch.Size([1, 100])
    """

    params: ClassVar[tuple[Param, ...]] = ExponentialSynapse.params + (
        Param("e_rev", 0.0, doc="reversal potential (mV)"),
    )
    state_vars: ClassVar[tuple[StateVar, ...]] = (StateVar("g"),)
    options: ClassVar[tuple[Option, ...]] = ()
    needs_voltage: ClassVar[bool] = True

    def coupling(self, post: nn.Module | None = None) -> None:
        """``None``: a conductance current is nonlinear in the voltage (held over the step)."""
        return None

    def forward(self, x: Tensor | list[Tensor], v: Tensor) -> Tensor:  # type: ignore[override]
        """Add this step's conductance increments ``x``; return the current at voltage ``v``."""
        total, features = self._sum_input(x)
        v = self._check_like_input("v", v, total)
        self._adopt_input(total, features)
        state = self._buffers
        g = sf.exponential_current_update(state["g"], total, self._decay())
        state["g"] = g
        return sf.conductance_current(g, state["e_rev"], v)
