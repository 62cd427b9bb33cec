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
    net.reset_state()      # also resets the rule (attached to the network)

    # checkpoint: both state dicts (the rule's holds eligibility, private traces...)
    torch.save({"net": net.state_dict(), "rule": rule.state_dict()}, path)

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

Vocabulary
----------
One name per quantity in every rule (per parameter group; times in ms).
PySNN 0.1 names are accepted as aliases (same positional order; giving an
alias and its new name is a :class:`TypeError`) and can be read and assigned
in ``rule.param_groups``.

=================  ==========================================  ======  =====================  ================================
name               meaning                                     unit    default                rules
=================  ==========================================  ======  =====================  ================================
``lr``             learning rate :math:`\eta`                  --      1e-3 (Triplet,         all but WeightNormalization
                                                                       Kheradpisheh: 1.0)
``a_plus``         potentiation (pre-before-post) amplitude    --      1.0 (Triplet: 5e-3,    STDP, Triplet, MSTDP, MSTDPET,
                                                                       Kheradpisheh: 4e-3)    Shrestha, Kheradpisheh
``a_minus``        depression (post-before-pre) amplitude      --      1.0 (Triplet: 7e-3,    STDP, Triplet, MSTDP, MSTDPET,
                                                                       Kheradpisheh: 3e-3)    Shrestha, Kheradpisheh
``tau_plus``       rule-owned presynaptic trace time constant  ms      None (neurons' trace)  STDP, MSTDP, MSTDPET
``tau_minus``      rule-owned postsynaptic trace time const.   ms      None (neurons' trace)  STDP, MSTDP, MSTDPET
``pairing``        ``"all-to-all"`` or ``"nearest"`` (own      --      ``"all-to-all"``       STDP, MSTDP, MSTDPET
                   traces)
``w_min``          lower hard bound (None: unbounded)          weight  None                   all
``w_max``          upper hard bound (None: unbounded)          weight  None                   all
``soft_bounds``    weight-dependent updates (needs bounds)     --      False                  all but WeightNormalization
``mask``           bool tensor (or name -> tensor): plastic    --      None                   all
``reduction``      ``"mean"`` (divide by batch) or ``"sum"``   --      ``"mean"``             all but WeightNormalization
``tau_e``          eligibility time constant (0: none)         ms      20.0                   MSTDPET
``a3_plus``        triplet potentiation amplitude              --      6e-3                   TripletSTDP
``a3_minus``       triplet depression amplitude                --      0.0                    TripletSTDP
``tau_x``          slow presynaptic trace time constant        ms      100.0                  TripletSTDP
``tau_y``          slow postsynaptic trace time constant       ms      125.0                  TripletSTDP
``tau_ltp``        LTP window (presynaptic spike at most       ms      10.0 (Kheradpisheh:    ShresthaSTDP, KheradpishehSTDP
                   ``tau_ltp`` before the postsynaptic one)            inf)
``k``              winners per sample and presentation         --      1                      KheradpishehSTDP
``radius``         lateral inhibition radius (positions)       --      0                      KheradpishehSTDP
``potential``      neuron attribute ranking simultaneous       --      ``"v_cell"``           KheradpishehSTDP
                   spikes
``w_init``         weight the rule is centred on               weight  0.5                    FedeSTDP
``a``              LTP/LTD balance shift                       --      0.0                    FedeSTDP
``pre``, ``post``  correlated ``"trace"`` or ``"spikes"``       --      ``"trace"``            Hebbian, Oja
``target``         summed incoming weight per neuron           weight  1.0                    WeightNormalization
``interval``       normalise every ``interval``-th ``step()``  calls   1                      WeightNormalization
=================  ==========================================  ======  =====================  ================================

Aliases (PySNN 0.1): ``a_pre`` -> ``a_plus`` and ``a_post`` -> ``a_minus``
(MSTDP, MSTDPET), ``a2_plus`` -> ``a_plus`` and ``a2_minus`` -> ``a_minus``
(TripletSTDP), ``e_trace_decay`` (MSTDPET, a factor :math:`\lambda` per step)
-> ``tau_e`` :math:`= -\Delta t/\ln\lambda` with the layers' ``dt``
(:math:`\lambda = 0 \to 0`, :math:`\lambda = 1 \to \infty`).

With soft bounds, potentiation is scaled by :math:`(w_{max} - w)` and
depression by :math:`(w - w_{min})`.  A ``mask`` is combined with a
connection's own ``plastic_mask`` (e.g. the diagonal of a
:class:`~pysnn.connection.Recurrent`); ``False`` entries never change.

State
-----
A rule is an :class:`torch.nn.Module`.  Its per-layer state (eligibility
traces, slow and rule-owned traces, the normalisation counter) lives in
buffers: ``rule.state_dict()`` saves it, ``load_state_dict`` restores it (a
checkpoint of ``net.state_dict()`` and ``rule.state_dict()`` resumes a run
exactly), ``rule.to()`` and the network's ``.to()``/``.double()`` move it,
``rule.reset_state()`` and ``net.reset_state()`` clear it, and in ``eval()``
(``net.eval()`` reaches the rule) no weight changes and no state builds up.

Collections (a network, ``net.layers``, ``layer_state_dict()``) skip layers
without weights (pooling); naming such a layer explicitly is an error.  With
:meth:`pysnn.network.SNNNetwork.run`, apply a rule from the callback:
``net.run(x, callback=lambda t, out: rule.step())``.

No rule uses autograd; weights are changed in place under ``torch.no_grad``.
Rules read spikes and traces from the live modules at every step, so they stay
correct after ``net.to()``, ``.double()`` or ``.cuda()``.  A connection in
``eval()`` mode is never changed.  Rules use only the connections' public
protocol (``weight``, ``dt``, ``correlate``, ``post_sum``,
``accumulate_correlations``, ``correlate_rows``/``correlate_cols``,
``arriving``, ``has_pre_activity``, ``per_synapse_delay``, ``plastic_mask``...).

Modules: :mod:`~pysnn.learning.base` (:class:`LearningRule`),
:mod:`~pysnn.learning.traces` (rule-owned traces), :mod:`~pysnn.learning.stdp`,
:mod:`~pysnn.learning.triplet`, :mod:`~pysnn.learning.reward`,
:mod:`~pysnn.learning.fede`, :mod:`~pysnn.learning.shrestha` (LTP-window rules),
:mod:`~pysnn.learning.kheradpisheh`, :mod:`~pysnn.learning.hebbian`,
:mod:`~pysnn.learning.normalization`.
"""

from pysnn.learning.base import COMMON_DEFAULTS, LayerState, LearningRule, ParamGroup, Reward
from pysnn.learning.fede import FedeSTDP
from pysnn.learning.hebbian import Hebbian, Oja
from pysnn.learning.kheradpisheh import KheradpishehSTDP
from pysnn.learning.normalization import WeightNormalization, normalize_weights
from pysnn.learning.reward import MSTDP, MSTDPET
from pysnn.learning.shrestha import LTPWindowRule, ShresthaSTDP
from pysnn.learning.stdp import STDP
from pysnn.learning.triplet import TripletSTDP

__all__ = [
    "COMMON_DEFAULTS",
    "LearningRule",
    "LayerState",
    "ParamGroup",
    "Reward",
    "STDP",
    "TripletSTDP",
    "MSTDP",
    "MSTDPET",
    "FedeSTDP",
    "LTPWindowRule",
    "ShresthaSTDP",
    "KheradpishehSTDP",
    "Hebbian",
    "Oja",
    "WeightNormalization",
    "normalize_weights",
]
