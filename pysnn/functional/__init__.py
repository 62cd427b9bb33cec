r"""Functional core of PySNN: every state update, written once, as a pure function.

Each function takes the current state and returns the new state; none of them
modifies its arguments.  Neuron, synapse and connection modules are thin
wrappers that keep the state in buffers and call these functions once per
timestep.  The core is split by concept:

* :mod:`pysnn.functional.integration`: integrators and exact decay factors,
* :mod:`pysnn.functional.trace`: spike traces,
* :mod:`pysnn.functional.neuron`: voltages, thresholds, spikes, reset, refractoriness,
* :mod:`pysnn.functional.surrogate`: surrogate derivatives of the spike (gradient training),
* :mod:`pysnn.functional.bptt`: backpropagation through a window of linear spiking neurons,
* :mod:`pysnn.functional.synapse`: synaptic currents between a connection and a neuron,
* :mod:`pysnn.functional.delay`: delay ring buffers,
* :mod:`pysnn.functional.topology`: propagation and correlation per connection topology,
* :mod:`pysnn.functional.accumulate`: the in-place accumulation of correlations
  into weights and eligibility traces (the one function that modifies its argument)
  and the contraction of per-sample traces over the batch.

Every name is also importable from :mod:`pysnn.functional` itself.

Notation used in the docstrings (all per neuron, per batch element):

* :math:`I` summed synaptic input (arbitrary units, scaled by :math:`\alpha_v`),
* :math:`s \in \{0, 1\}` spike of the current step,
* :math:`v` membrane voltage, :math:`v_{rest}` resting voltage,
* :math:`x` spike trace, :math:`\theta` firing threshold,
* :math:`r` refractory counter in whole timesteps, :math:`[r=0]` is 1 when the
  neuron is not refractory,
* :math:`\lambda = e^{-\Delta t/\tau} \in [0, 1]` decay factor per step,
* :math:`\tau` time constant and :math:`\Delta t` timestep, both in ms.

Integrators (see :mod:`pysnn.functional.integration` and the table in
``docs/models.rst``): ``"euler"``, ``"exact"`` and ``"impulse"``.  The
functions named ``*_linear_*`` take the decay factor :math:`\lambda` directly
(the ``"impulse"`` scheme with a precomputed factor), those named
``*_euler_*`` are the forward-Euler updates and ``*_exact_*`` the exact ones.
*Exponential* always names an exponential kernel
(:func:`exponential_current_update`).  The names of PySNN 0.1 (the dispatch by
``update_type``, ``*_exponential_*`` for forward Euler) still import from here;
they live in :mod:`pysnn.compat`.
"""

from pysnn.functional.accumulate import accumulate_products_, contract_batch, per_batch_zeros
from pysnn.functional.bptt import WindowAdjoint, spiking_window_adjoint
from pysnn.functional.delay import (
    DELAY_INTERPOLATIONS,
    delay_kernel,
    delay_read,
    delay_read_per_synapse,
    delay_write,
)
from pysnn.functional.integration import (
    INTEGRATORS,
    decay_factor,
    exact_gain,
)
from pysnn.functional.neuron import (
    RESET_MODES,
    adex_update,
    duration_to_steps,
    euler_thresh_update,
    exact_thresh_update,
    fede_voltage_update,
    fire,
    if_voltage_update,
    izhikevich_update,
    lif_euler_voltage_update,
    lif_exact_voltage_update,
    lif_linear_voltage_update,
    linear_thresh_update,
    refractory_update,
    reset_voltage,
    spike_fn,
    spike_mask,
)
from pysnn.functional.surrogate import SURROGATES, SpikeFunction, Surrogate, as_surrogate, spike
from pysnn.functional.synapse import (
    alpha_coupled_current,
    alpha_current_update,
    alpha_drive,
    alpha_euler_drive,
    alpha_membrane_coupling,
    conductance_current,
    coupled_current,
    euler_decay_factor,
    exponential_current_update,
    held_coupled_current,
    held_current_update,
    membrane_coupling,
)
from pysnn.functional.topology import (
    EVENT_THRESHOLD,
    adaptive_max_pool2d_winner,
    avg_pool2d,
    avg_pool2d_window_sum,
    conv2d_correlate,
    conv2d_correlate_delayed,
    conv2d_output_shape,
    conv2d_propagate,
    conv2d_propagate_delayed,
    conv2d_receptive_field_sum,
    conv2d_stack_weight,
    conv2d_synapse_trace,
    conv2d_unfold,
    delay_taps_stack,
    dense_correlate,
    dense_correlate_delayed,
    dense_propagate,
    dense_propagate_delayed,
    dense_receptive_field_sum,
    dense_stack_weight,
    dense_synapse_trace,
    event_matmul,
    fanin_table,
    fanout_table,
    max_pool2d_winner,
    separable_contract,
    separable_weight,
    sparse_correlate,
    sparse_correlate_delayed,
    sparse_correlate_mapped,
    sparse_expand,
    sparse_propagate,
    sparse_propagate_all,
    sparse_propagate_delayed,
    sparse_propagate_table,
)
from pysnn.functional.trace import (
    euler_trace_update,
    exact_trace_update,
    linear_trace_update,
)

#: names kept from PySNN 0.1, served by :mod:`pysnn.compat` (name there)
_ORIGINAL_NAMES = {
    "UPDATE_TYPES": "UPDATE_TYPES",
    "UPDATE_TYPE_ALIASES": "UPDATE_TYPE_ALIASES",
    "trace_update": "trace_update",
    "lif_voltage_update": "lif_voltage_update",
    "thresh_update": "thresh_update",
    "lif_exponential_voltage_update": "lif_euler_voltage_update",
    "exponential_trace_update": "euler_trace_update",
    "exponential_thresh_update": "euler_thresh_update",
}


def __getattr__(name: str) -> object:  # PEP 562: the 0.1 names, importing compat lazily
    if name in _ORIGINAL_NAMES:
        target = _ORIGINAL_NAMES[name]
        if target in globals():
            return globals()[target]
        from pysnn import compat

        return getattr(compat, target)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EVENT_THRESHOLD",
    "accumulate_products_",
    "contract_batch",
    "per_batch_zeros",
    "INTEGRATORS",
    "RESET_MODES",
    "decay_factor",
    "exact_gain",
    "linear_trace_update",
    "euler_trace_update",
    "exact_trace_update",
    "if_voltage_update",
    "lif_linear_voltage_update",
    "lif_euler_voltage_update",
    "lif_exact_voltage_update",
    "fede_voltage_update",
    "izhikevich_update",
    "adex_update",
    "linear_thresh_update",
    "euler_thresh_update",
    "exact_thresh_update",
    "spike_mask",
    "spike_fn",
    "fire",
    "SURROGATES",
    "Surrogate",
    "SpikeFunction",
    "as_surrogate",
    "spike",
    "WindowAdjoint",
    "spiking_window_adjoint",
    "reset_voltage",
    "duration_to_steps",
    "refractory_update",
    "exponential_current_update",
    "held_current_update",
    "alpha_current_update",
    "alpha_drive",
    "alpha_euler_drive",
    "euler_decay_factor",
    "conductance_current",
    "membrane_coupling",
    "alpha_membrane_coupling",
    "coupled_current",
    "alpha_coupled_current",
    "held_coupled_current",
    "delay_write",
    "delay_read",
    "delay_read_per_synapse",
    "DELAY_INTERPOLATIONS",
    "delay_kernel",
    "event_matmul",
    "dense_propagate",
    "dense_stack_weight",
    "dense_propagate_delayed",
    "dense_correlate",
    "dense_correlate_delayed",
    "dense_synapse_trace",
    "dense_receptive_field_sum",
    "conv2d_output_shape",
    "conv2d_propagate",
    "conv2d_stack_weight",
    "conv2d_propagate_delayed",
    "conv2d_unfold",
    "conv2d_correlate",
    "conv2d_correlate_delayed",
    "conv2d_synapse_trace",
    "conv2d_receptive_field_sum",
    "delay_taps_stack",
    "separable_weight",
    "separable_contract",
    "max_pool2d_winner",
    "adaptive_max_pool2d_winner",
    "avg_pool2d",
    "avg_pool2d_window_sum",
    "sparse_expand",
    "sparse_propagate",
    "sparse_propagate_delayed",
    "sparse_propagate_all",
    "sparse_propagate_table",
    "fanout_table",
    "sparse_correlate",
    "sparse_correlate_delayed",
    "sparse_correlate_mapped",
    "fanin_table",
]
