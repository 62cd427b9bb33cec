"""The first hour: today's vocabulary by default, builders, rate units and the misuse caught."""

import copy
import math

import pytest
import torch

import pysnn
from pysnn import Sequential
from pysnn.connection import Linear
from pysnn.encoding import PoissonRateEncoder
from pysnn.learning import STDP, Oja
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron, RatePopulation
from pysnn.synapse import ExponentialSynapse


def _stack():
    torch.manual_seed(0)
    fc1, fc2 = Linear(20, 12), Linear(12, 4)
    for fc, high in ((fc1, 0.6), (fc2, 1.0)):
        fc.reset_weights("uniform", a=0.0, b=high)
    return (
        Input((20,)),
        fc1,
        LIFNeuron((12,)),
        fc2,
        ExponentialSynapse((4,), tau_syn=3.0),
        LIFNeuron((4,)),
    )


def test_sequential_builds_the_graph_add_layer_builds():
    seq = Sequential(*_stack())
    inp, fc1, l1, fc2, syn, l2 = _stack()
    net = SNNNetwork()
    net.add_layer("layer1", fc1, l1, inp)
    net.add_layer("layer2", fc2, l2, l1, synapse=syn)
    x = torch.rand(60, 3, 20, generator=torch.Generator().manual_seed(1)) < 0.3
    out = seq.run(x)
    assert out.shape == (60, 3, 4) and out.sum() > 0
    assert torch.equal(out, net.run(x))
    assert list(seq.layers) == ["layer1", "layer2"] and len(seq) == 6
    assert seq[1] is seq.layers["layer1"].connection and seq[5] is seq.layers["layer2"].neuron

    def described(network):  # the graph without the module names
        return [
            (i.name, i.kind, i.pre_shape, i.post_shape, i.delay, i.synapse) for i in network.graph
        ]

    assert described(seq) == described(net)
    assert "layer2" in seq.summary() and "ExponentialSynapse" in seq.summary()
    with pytest.raises(TypeError, match="module 1 must be a connection"):
        Sequential(Input((3,)), LIFNeuron((3,)))
    with pytest.raises(TypeError, match="module 2 must be the postsynaptic population"):
        Sequential(Input((3,)), Linear(3, 2))
    with pytest.raises(TypeError, match="module 0 must be the input population"):
        Sequential(Linear(3, 2), LIFNeuron((2,)))


def test_sequential_exports_to_nir():
    nir = pytest.importorskip("nir")
    from pysnn import nir as pnir

    seq = Sequential(Input((6,)), Linear(6, 3), LIFNeuron((3,)))
    graph = pnir.export(seq)
    assert isinstance(graph, nir.NIRGraph) and any(
        type(node).__name__ == "LIF" for node in graph.nodes.values()
    )


def test_oja_on_a_rate_unit_finds_the_first_principal_component():
    net = SNNNetwork()
    inputs, unit = RatePopulation((4,)), RatePopulation((1,))
    net.connect(inputs, Linear(4, 1), unit)
    oja = Oja(net.layers, lr=0.01)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3000, 1, 4, generator=g) * torch.tensor([3.0, 1.0, 0.5, 0.2])
    for xt in x:
        y = net(xt)
        oja.step()
        assert torch.equal(y, unit.trace)  # a rate unit's trace is its value
    w = net.layer0_connection.weight[0]
    assert abs(float(w.norm()) - 1.0) < 0.02  # Oja normalises the weight vector
    assert abs(float(w[0].abs())) > 0.99  # ... along the direction of largest variance


def test_rate_population_passes_values_and_refuses_nan():
    pop = RatePopulation((3,))
    values = torch.tensor([[0.5, -2.0, 7.0]])
    spikes, trace = pop(values)
    assert torch.equal(spikes, values) and torch.equal(trace, values)
    before = pop.spikes.clone()
    with pytest.raises(ValueError, match="RatePopulation.*finite"):
        pop(torch.tensor([[0.0, math.nan, 1.0]]))
    assert torch.equal(pop.spikes, before)


def test_encoders_follow_the_dtype_and_integer_spikes_are_accepted():
    net = Sequential(Input((5,)), Linear(5, 2), LIFNeuron((2,))).double()
    rates = torch.rand(3, 5, dtype=torch.float64) * 200
    spikes = PoissonRateEncoder(30, dt=1.0)(rates)
    assert spikes.dtype == torch.float64
    out = net.run(spikes, warn_silent=False)  # a float64 network takes its encoder's output
    assert out.dtype == torch.float64
    ints = (torch.rand(30, 3, 5) < 0.3).long()
    assert torch.equal(net.run(ints, warn_silent=False), net.run(ints.double(), warn_silent=False))
    with pytest.raises(ValueError, match="Input: x.*0 and 1"):
        net(torch.full((3, 5), 2))
    with pytest.raises(TypeError, match="Input: x must have dtype torch.float64"):
        net(torch.zeros(3, 5))


def test_run_takes_batch_first_inputs():
    net = Sequential(*_stack())
    x = torch.rand(40, 3, 20, generator=torch.Generator().manual_seed(4)) < 0.3
    out = net.run(x.transpose(0, 1), batch_first=True)  # [batch, T, ...] in and out
    assert out.shape == (3, 40, 4) and out.sum() > 0
    assert torch.equal(out.transpose(0, 1), net.run(x))
    with pytest.raises(TypeError, match="batch_first"):
        net.run(x, batch_first="yes")


def test_stdp_warns_when_bounds_would_clip_the_initial_weights():
    net = Sequential(Input((4,)), Linear(4, 2), LIFNeuron((2,)))  # signed default weights
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[-0.2, 0.1, 0.3, -0.1], [0.1] * 4]))
    with pytest.warns(RuntimeWarning, match="layer1.*outside \\[0.0, 1.0\\]"):
        STDP(net.layers, w_min=0.0, w_max=1.0)
    net[1].reset_weights("uniform", a=0.0, b=1.0)
    with warnings_as_errors():
        STDP(net.layers, w_min=0.0, w_max=1.0)  # weights inside the bounds: no warning


class warnings_as_errors:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def test_the_silent_network_warning_points_at_the_users_call():
    net = Sequential(Input((3,)), Linear(3, 2), LIFNeuron((2,), thresh=100.0))
    with pytest.warns(RuntimeWarning, match="fired no spike") as record:
        net.run(torch.zeros(5, 1, 3, dtype=torch.bool))  # this line
    assert record[0].filename == __file__


def test_every_public_name_of_the_front_door_imports():
    for name in ("Sequential", "RatePopulation", "SNNNetwork", "LIFNeuron"):
        assert hasattr(pysnn, name)
    assert copy.deepcopy(Sequential(Input((2,)), Linear(2, 1), LIFNeuron((1,)))) is not None
