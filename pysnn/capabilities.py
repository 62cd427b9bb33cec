r"""What a module of a network supports, declared once per class and checked by the graph.

Every connection, projection stage, population and synapse model has a
:class:`Capabilities` (``type(module).capabilities``), derived from what its
class implements where possible and declared where not.  The network checks
them when a projection is registered (:meth:`SNNNetwork.add_layer
<pysnn.network.SNNNetwork.add_layer>`), the window strategy reads which
modules can run over a window of steps, and a connection refuses a
per-synapse delay it cannot apply when it is built.

A plain :class:`torch.nn.Module` used as a connection (with a
``forward(spikes, trace) -> (x, trace)``) has :data:`STEP_ONLY`: it runs in
the step loop only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["Capabilities", "STEP_ONLY", "capabilities_of"]


class Capabilities(NamedTuple):
    """What one kind of module supports.

    Attributes
    ----------
    multi_step : bool
        ``forward_steps`` advances a window of steps and equals as many
        ``forward`` calls (the window strategy of ``run`` may use it).
    per_synapse_delay : bool
        A connection that accepts one delay per synapse.
    trace_per_synapse : bool
        A connection that can return the presynaptic trace per synapse.
    graded_input : bool
        Any finite input value is valid (a weighted sum), not only 0 and 1.
    has_voltage : bool
        A population with a membrane voltage ``v_cell`` (which conductance
        synapses read).
    needs_voltage : bool
        A synapse model whose current depends on the postsynaptic voltage.
    takes_post : bool
        A synapse model that takes the postsynaptic population
        (``forward(x, post=...)``, for the exact coupling of its current to
        the membrane).
    """

    multi_step: bool = False
    per_synapse_delay: bool = False
    trace_per_synapse: bool = False
    graded_input: bool = True
    has_voltage: bool = False
    needs_voltage: bool = False
    takes_post: bool = False

    def describe(self) -> str:
        """The supported features, comma-separated (for messages and summaries)."""
        return ", ".join(name for name, value in self._asdict().items() if value is True) or "-"


#: a module that declares nothing: it runs step by step only
STEP_ONLY = Capabilities()


def capabilities_of(module: Any) -> Capabilities:
    """The :class:`Capabilities` of ``module`` (``module.capabilities``; :data:`STEP_ONLY` when none).

    Most classes declare a class attribute; a module whose capabilities depend
    on its parts (:class:`~pysnn.connection.Chain`) has a property.
    """
    value = getattr(module, "capabilities", None)
    return value if isinstance(value, Capabilities) else STEP_ONLY
