"""Fused (torch.compile) neuron steps give the eager step's spikes and states.

Each case runs an eager neuron and a fused deep copy on the same random input
in float64 and compares every step.  Compiling with Inductor takes seconds per
neuron configuration, so the cases are few and short.
"""

import copy
import warnings

import pytest
import torch

from pysnn import fusion
from pysnn.connection import Linear, Sparse
from pysnn.network import SNNNetwork
from pysnn.neuron import (
    AdaptiveLIFNeuron,
    FedeNeuron,
    IFNeuron,
    Input,
    IzhikevichNeuron,
    LIFNeuron,
)
from pysnn.synapse import ExponentialSynapse

pytestmark = pytest.mark.skipif(
    not fusion.fusion_available(), reason="torch.compile is not supported here"
)

COMMON = dict(alpha_v=1.0, alpha_t=1.0, dt=1.0)

CASES = {
    "lif_linear_refractory_saturating": lambda: LIFNeuron(
        (6,),
        thresh=1.0,
        v_rest=0.0,
        duration_refrac=2.0,
        tau_v=0.8,
        tau_t=0.9,
        trace_mode="saturating",
        **COMMON,
    ),
    "lif_exact_subtract": lambda: LIFNeuron(
        (6,),
        thresh=1.0,
        v_rest=0.0,
        duration_refrac=0.0,
        tau_v=5.0,
        tau_t=10.0,
        update_type="exact",
        reset="subtract",
        **COMMON,
    ),
    "adaptive_lif_sum": lambda: AdaptiveLIFNeuron(
        (6,),
        thresh=1.0,
        v_rest=0.0,
        duration_refrac=1.0,
        tau_v=0.8,
        tau_t=0.9,
        alpha_thresh=0.2,
        tau_thresh=0.95,
        thresh_reduction="sum",
        **COMMON,
    ),
    "if": lambda: IFNeuron((6,), thresh=1.0, v_rest=0.0, duration_refrac=1.0, tau_t=0.9, **COMMON),
    "izhikevich": lambda: IzhikevichNeuron((6,), dt=0.5, alpha_v=10.0),
}


def _inputs(steps, batch, n, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, n, generator=g, dtype=torch.float64) * scale


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_step_gives_the_eager_spikes_and_state(name):
    from torch._dynamo.utils import counters

    eager = CASES[name]().double()
    fused = copy.deepcopy(eager).fuse()
    assert fused.fused and not eager.fused
    compiled_before = counters["stats"]["unique_graphs"]
    scale = 2.0 if name == "izhikevich" else 1.6
    total_spikes = 0.0
    for t, x in enumerate(_inputs(40, 3, 6, scale)):
        s_eager, tr_eager = eager(x)
        s_fused, tr_fused = fused(x)
        assert torch.equal(s_fused, s_eager), f"{name}: spikes differ at step {t}"
        torch.testing.assert_close(tr_fused, tr_eager, rtol=1e-12, atol=1e-12)
        total_spikes += float(s_eager.sum())
    for key, value in eager.state_dict().items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(fused.state_dict()[key], value, rtol=1e-12, atol=1e-12)
    assert total_spikes > 10, "the input must make the neurons spike"
    # a new configuration really went through the compiler (no silent eager fallback)
    assert counters["stats"]["unique_graphs"] > compiled_before


def test_fused_forward_steps_compiles_chunks_and_matches_eager(monkeypatch):
    """A fused window runs whole chunks as one compiled graph, the rest step by step."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(AdaptiveLIFNeuron, "FUSED_CHUNK", 4)
    eager = CASES["adaptive_lif_sum"]().double()
    fused = copy.deepcopy(eager).fuse()
    x = _inputs(10, 3, 6, 1.6, seed=4)  # two chunks of 4, then 2 single steps
    compiled_before = counters["stats"]["unique_graphs"]
    loop = [eager(xt) for xt in x]
    spikes, traces = fused.forward_steps(x)
    assert counters["stats"]["unique_graphs"] > compiled_before
    assert torch.equal(spikes, torch.stack([s for s, _ in loop]))
    torch.testing.assert_close(traces, torch.stack([t for _, t in loop]), rtol=1e-12, atol=1e-12)
    assert spikes.sum() > 5
    for key, value in eager.state_dict().items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(fused.state_dict()[key], value, rtol=1e-12, atol=1e-12)


def test_fede_neuron_fused_with_its_presynaptic_trace():
    kwargs = dict(thresh=1.0, v_rest=0.0, duration_refrac=1.0, tau_v=0.8, tau_t=0.9, **COMMON)
    eager = FedeNeuron((5,), **kwargs).double()
    fused = copy.deepcopy(eager).fuse()
    g = torch.Generator().manual_seed(1)
    for t in range(30):
        x = torch.rand(2, 5, generator=g, dtype=torch.float64)
        pre = torch.rand(2, 5, generator=g, dtype=torch.float64) * 0.3
        s_eager, _ = eager(x, pre)
        s_fused, _ = fused(x, pre)
        assert torch.equal(s_fused, s_eager), f"spikes differ at step {t}"
    torch.testing.assert_close(fused.v_cell, eager.v_cell, rtol=1e-12, atol=1e-12)


class _Net(SNNNetwork):
    def __init__(self):
        super().__init__()
        self.input = Input((20,), trace_mode="saturating")
        self.fc = Linear(20, 8)
        self.lif = LIFNeuron((8,), thresh=0.5, duration_refrac=1.0, tau_v=0.9)
        self.add_layer("fc", self.fc, self.lif)

    def forward(self, x):
        s, t = self.input(x)
        return self.lif(self.fc(s, t)[0])[0]


def test_network_fuse_switches_every_spiking_population_and_back():
    torch.manual_seed(0)
    eager = _Net()
    fused = copy.deepcopy(eager).fuse()
    assert fused.lif.fused and fused.input.fused  # an input fuses its trace over windows
    spikes = torch.rand(25, 4, 20) < 0.3
    out_eager = eager.run(spikes)
    out_fused = fused.run(spikes)
    assert torch.equal(out_fused, out_eager) and out_eager.sum() > 0
    # state_dict and deepcopy carry no compiled objects: a copy of a fused network works
    clone = copy.deepcopy(fused)
    assert clone.lif.fused
    torch.testing.assert_close(clone.run(spikes), out_eager)
    fused.fuse(False)
    assert not fused.lif.fused
    assert torch.equal(fused.run(spikes), out_eager)


def test_failed_compilation_warns_once_and_runs_eagerly():
    def broken_backend(graph_module, example_inputs):
        raise RuntimeError("no compiler here")

    eager = CASES["lif_linear_refractory_saturating"]()
    fused = copy.deepcopy(eager).fuse(backend=broken_backend)
    x = _inputs(5, 2, 6, 0.8, seed=3).float()
    try:
        with pytest.warns(RuntimeWarning, match="fused neuron step unavailable"):
            first = fused(x[0])
        # the failed attempt left the state untouched: the eager rerun made exactly one step
        assert torch.equal(first[0], eager(x[0])[0])
        torch.testing.assert_close(fused.v_cell, eager.v_cell)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no second warning
            for t in range(1, 5):
                assert torch.equal(fused(x[t])[0], eager(x[t])[0])
    finally:
        fusion.clear_cache()


def test_fuse_argument_checks():
    lif = CASES["if"]()
    with pytest.raises(TypeError, match="enabled"):
        lif.fuse("yes")
    with pytest.raises(TypeError, match="backend"):
        lif.fuse(True, backend="")
    assert not lif.fused
    # validation still runs before the compiled step and before any state change
    lif.fuse()
    with pytest.raises(ValueError, match="shape"):
        lif(torch.zeros(2, 7))
    assert lif.is_fresh


class _RecurrentSparse(SNNNetwork):
    """A small recurrent network: event-driven Sparse input and recurrence, exponential synapses."""

    def __init__(self, dense_input: bool = False) -> None:
        super().__init__()
        self.inp = Sparse.fixed_probability(20, 60, 0.3, seed=1, weight=0.6, dt=0.5)
        if dense_input:  # auto event-driven Linear: the gather path must not break the graph
            dense = Linear(20, 60, dt=0.5)
            dense.EVENT_MIN_SYNAPSES = 0
            with torch.no_grad():
                dense.weight.copy_(self.inp.to_dense())
            self.inp = dense
        self.rec = Sparse.fixed_probability(60, 60, 0.1, seed=2, weight=-0.4, dt=0.5)
        self.syn = ExponentialSynapse((60,), 4.0, 0.5)
        self.neurons = LIFNeuron(
            (60,),
            thresh=1.0,
            v_rest=0.0,
            dt=0.5,
            duration_refrac=1.0,
            tau_v=10.0,
            integrator="exact",
        )

    def forward(self, x):
        drive = self.inp(x)[0] + self.rec(self.neurons.spikes)[0]
        return self.neurons(self.syn(drive))[0]


@pytest.mark.parametrize("dense_input", [False, True], ids=["sparse", "auto-linear"])
def test_compile_step_gives_the_eager_spikes_of_a_sparse_recurrent_network(dense_input):
    from torch._dynamo.utils import counters

    eager = _RecurrentSparse(dense_input).double()
    compiled_net = copy.deepcopy(eager)
    step = fusion.compile_step(compiled_net.forward)
    graphs_before = counters["stats"]["unique_graphs"]
    breaks_before = sum(counters["graph_break"].values())
    x = (torch.rand(80, 2, 20, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    for net in (eager, compiled_net):
        net.reset_state(2)
    total = 0.0
    for t in range(80):
        s_eager, s_compiled = eager(x[t]), step(x[t])
        assert torch.equal(s_compiled, s_eager), f"spikes differ at step {t}"
        total += float(s_eager.sum())
    torch.testing.assert_close(
        compiled_net.neurons.v_cell, eager.neurons.v_cell, rtol=1e-12, atol=1e-12
    )
    assert total > 20, "the input must make the neurons spike"
    # compiled as whole-step graphs (first step and later steps), not eagerly
    assert 0 < counters["stats"]["unique_graphs"] - graphs_before <= 3
    assert sum(counters["graph_break"].values()) == breaks_before


class _GraphNet(SNNNetwork):
    """Input -> Linear -> LIF through the graph's default step."""

    def __init__(self):
        super().__init__()
        self.input = Input((20,), dt=1.0, alpha_t=1.0, tau_t=10.0, integrator="exact")
        self.fc = Linear(20, 8)
        self.lif = LIFNeuron((8,), thresh=0.5, duration_refrac=2.0, integrator="exact")
        self.add_layer("fc", self.fc, self.lif, self.input)


@pytest.mark.parametrize("rule_name", ["stdp", "mstdpet"])
def test_compile_step_captures_a_learning_step_with_the_eager_weights(rule_name):
    """Network step and rule update compiled as one graph: the eager spikes and weights."""
    from torch._dynamo.utils import counters

    from pysnn.learning import MSTDPET, STDP

    g = torch.Generator().manual_seed(3)
    x = torch.rand(60, 2, 20, generator=g) < 0.3
    rewards = torch.randint(0, 2, (60, 2), generator=g).double() * 2 - 1
    nets, rules = [], []
    for _ in range(2):
        net = _GraphNet().double()
        with torch.no_grad():
            net.fc.weight.copy_(torch.rand(8, 20, generator=torch.Generator().manual_seed(1)))
        if rule_name == "stdp":
            rule = STDP(net.layers, lr=0.01, a_plus=1.0, a_minus=1.1, w_min=0.0, w_max=1.0)
        else:
            rule = MSTDPET(net.layers, lr=0.01, tau_e=10.0, w_min=0.0, w_max=1.0)
        nets.append(net)
        rules.append(rule)

    def learning_step(net, rule, x, reward):
        out = net(x)
        if rule_name == "stdp":
            rule.step()
        else:
            rule.update_state()
            rule.step(reward)
        return out

    step = fusion.compile_step(learning_step)
    breaks_before = sum(counters["graph_break"].values())
    total = 0.0
    with torch.no_grad():
        for t in range(60):
            s_eager = learning_step(nets[0], rules[0], x[t], rewards[t])
            s_compiled = step(nets[1], rules[1], x[t], rewards[t])
            assert torch.equal(s_compiled, s_eager), f"spikes differ at step {t}"
            total += float(s_eager.sum())
    torch.testing.assert_close(nets[1].fc.weight, nets[0].fc.weight, rtol=0, atol=1e-12)
    assert not torch.equal(
        nets[0].fc.weight, torch.rand(8, 20, generator=torch.Generator().manual_seed(1)).double()
    )
    assert total > 10
    assert sum(counters["graph_break"].values()) == breaks_before
    if rule_name == "mstdpet":  # a NaN reward is still refused inside the compiled graph
        before = nets[1].fc.weight.clone()
        nan_reward = torch.tensor([1.0, float("nan")], dtype=torch.float64)
        with torch.no_grad(), pytest.raises(RuntimeError, match="reward must be finite"):
            step(nets[1], rules[1], x[0], nan_reward)
        assert torch.equal(nets[1].fc.weight, before)
