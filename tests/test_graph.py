"""The network graph: projections, summary, and the default step."""

import pytest
import torch
from torch import nn

from pysnn.connection import Linear, Recurrent
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron


class EIGraph(SNNNetwork):
    """Input -> E (with recurrence), E -> I, I -> E: registered, no forward written."""

    def __init__(self):
        super().__init__()
        self.inp = Input((12,), tau_t=10.0, integrator="exact")
        self.fc = Linear(12, 8, delay=2)
        self.exc = LIFNeuron((8,), thresh=0.4, tau_v=10.0, tau_t=10.0, integrator="exact")
        self.rec = Recurrent(8)
        self.ei = Linear(8, 4)
        self.inh = LIFNeuron((4,), thresh=0.2, tau_v=5.0, tau_t=10.0, integrator="exact")
        self.ie = Linear(4, 8)
        self.connect(self.inp, self.fc, self.exc)
        self.connect(self.exc, self.rec, self.exc)
        self.connect(self.exc, self.ei, self.inh)
        self.connect(self.inh, self.ie, self.exc)


class EIHand(EIGraph):
    """The same network with the step written by hand (feedback from the previous step)."""

    def forward(self, x):
        s, t = self.inp(x)
        a, _ = self.fc(s, t)
        b, _ = self.rec(self.exc.spikes, self.exc.trace)  # previous step
        c, _ = self.ie(self.inh.spikes, self.inh.trace)  # previous step
        s, t = self.exc([a, b, c])
        d, _ = self.ei(s, t)
        return self.inh(d)[0]


def test_default_forward_equals_hand_written_step():
    torch.manual_seed(0)
    graph_net = EIGraph()
    graph_net.fc.reset_weights("uniform", a=0.0, b=0.4)
    graph_net.ei.reset_weights("uniform", a=0.0, b=0.5)
    graph_net.ie.reset_weights("uniform", a=-0.5, b=0.0)  # inhibitory feedback
    hand_net = EIHand()
    hand_net.load_state_dict(graph_net.state_dict())
    x = torch.rand(40, 3, 12) < 0.3
    out_graph = graph_net.run(x)
    out_hand = hand_net.run(x)
    assert (
        out_graph.sum() > 0
        and graph_net.exc.trace.sum() > 0
        and graph_net.exc.spikes.shape == (3, 8)
    )
    assert torch.equal(out_graph, out_hand)
    assert torch.equal(graph_net.exc.v_cell, hand_net.exc.v_cell)
    assert graph_net.simulator.plan.feedback == {"rec", "ie"}


def test_graph_and_summary_describe_the_projections():
    net = EIGraph()
    info = {p.name: p for p in net.graph}
    assert list(info) == ["fc", "rec", "ei", "ie"]
    assert (info["fc"].pre, info["fc"].post) == ("inp", "exc")
    assert info["fc"].pre_shape == (12,) and info["fc"].post_shape == (8,)
    assert info["fc"].delay == "2 steps" and info["fc"].n_weights == 96
    assert info["rec"].kind == "recurrent" and info["ei"].kind == "linear"
    text = net.summary()
    for needle in ("inp -> exc", "(12,) -> (8,)", "LIFNeuron", "2 steps", "96"):
        assert needle in text
    assert "tau_v=10" in repr(net.exc) and "(8,)" in repr(net.exc)


def test_default_forward_errors():
    class NoPre(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.fc = Linear(3, 2)
            self.lif = LIFNeuron((2,))
            self.add_layer("fc", self.fc, self.lif)

    with pytest.raises(ValueError, match="presynaptic population"):
        NoPre()(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="no layers"):
        SNNNetwork()(torch.zeros(1, 3))
    with pytest.raises(TypeError, match="1 input population"):
        EIGraph()(torch.zeros(1, 12), torch.zeros(1, 12))


def test_add_layer_rejects_swapped_roles_and_records_pre():
    net = SNNNetwork()
    fc, lif, inp = Linear(3, 2), LIFNeuron((2,)), Input((3,))
    with pytest.raises(TypeError, match="swap"):
        net.add_layer("fc", lif, fc)
    with pytest.raises(TypeError, match="pre must be the presynaptic population"):
        net.add_layer("fc", fc, lif, Linear(3, 3))
    net.add_layer("fc", fc, lif, inp)
    layer = net.layers["fc"]
    assert layer.pre is inp and layer.network is net and layer.type == "linear"
    net.add_layer("custom", nn.Identity(), LIFNeuron((2,)))
    assert net.layers["custom"].type == "custom"
