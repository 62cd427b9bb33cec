"""Learning rules as modules: state in buffers, checkpoints, eval, aliases, rule-owned traces."""

from __future__ import annotations

import io
import math

import pytest
import torch

from pysnn.connection import Linear
from pysnn.learning import (
    MSTDP,
    MSTDPET,
    STDP,
    FedeSTDP,
    Hebbian,
    LearningRule,
    Oja,
    TripletSTDP,
    WeightNormalization,
)
from pysnn.network import SNNNetwork
from pysnn.neuron import AdaptiveLIFNeuron, Input

DT = 1.0


class Forced(SNNNetwork):
    """pre Input -> Linear -> post Input: both spike trains are imposed."""

    def __init__(self, n_in=3, n_out=2, delay=0, tau_pre=20.0, tau_post=20.0, w=0.5):
        super().__init__()
        self.pre = Input((n_in,), DT, 1.0, tau_pre, "exact")
        self.conn = Linear(n_in, n_out, dt=DT, delay=delay)
        self.post = Input((n_out,), DT, 1.0, tau_post, "exact")
        self.add_layer("conn", self.conn, self.post)
        with torch.no_grad():
            self.conn.weight.fill_(w)

    def forward(self, pre_spikes, post_spikes):
        s, t = self.pre(pre_spikes)
        self.conn(s, t)
        return self.post(post_spikes)


class Driven(SNNNetwork):
    """Input -> Linear (optionally per-synapse delays) -> AdaptiveLIFNeuron."""

    def __init__(self, n_in=6, n_out=4, delay=0):
        super().__init__()
        self.inp = Input((n_in,), DT, 1.0, 20.0, "exact")
        self.fc = Linear(n_in, n_out, dt=DT, delay=delay)
        self.lif = AdaptiveLIFNeuron(
            (n_out,), 1.0, 0.0, 1.0, 1.0, DT, 2.0, 10.0, 20.0, 0.2, 50.0, "exact"
        )
        self.add_layer("fc", self.fc, self.lif, self.inp)

    def forward(self, x):
        s, t = self.inp(x)
        out, _ = self.fc(s, t)
        return self.lif(out)


def random_trains(steps, batch, n, p=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=gen) < p).double()


def step_forced(net, rule, pre, post, reward=None):
    net(pre, post)
    rule.update_state()
    rule.step(reward) if reward is not None else rule.step()


# ---------------------------------------------------------------------------
# Buffers: state_dict, .to(), reset, eval
# ---------------------------------------------------------------------------
def test_state_dict_holds_only_the_rule_state_and_round_trips():
    net = Forced().double()
    rule = MSTDPET(net.layers, lr=0.1, tau_e=10.0)
    pre, post = random_trains(5, 2, 3, seed=1), random_trains(5, 2, 2, seed=2)
    for t in range(5):
        step_forced(net, rule, pre[t], post[t], torch.ones(2))
    state = rule.state_dict()
    assert set(state) == {"layer_state.conn.e", "layer_state.conn.x_pre", "layer_state.conn.x_post"}
    assert state["layer_state.conn.e"].shape == (2, 2, 3)
    fresh = MSTDPET(net.layers, lr=0.1, tau_e=10.0)
    assert fresh.eligibility("conn") is None
    fresh.load_state_dict(state)
    assert torch.equal(fresh.eligibility("conn"), rule.eligibility("conn"))
    assert fresh.eligibility("conn").dtype == torch.float64
    # the network is not a submodule of the rule, the rule not one of the network
    assert not any(isinstance(m, SNNNetwork) for m in rule.modules())
    assert all(not k.startswith("layer_state") for k in net.state_dict())
    assert rule in net.rules and fresh in net.rules


def test_double_through_the_network_moves_the_rule_state():
    net = Forced()
    rule = MSTDPET(net.layers, tau_e=10.0, tau_plus=15.0, tau_minus=25.0)
    for _ in range(3):
        step_forced(net, rule, torch.ones(1, 3), torch.ones(1, 2), 1.0)
    assert rule.eligibility("conn").dtype == torch.float32
    net.double()
    assert rule.eligibility("conn").dtype == torch.float64
    assert rule.state["conn"]["x_pre"].dtype == torch.float64
    step_forced(net, rule, torch.ones(1, 3).double(), torch.ones(1, 2).double(), 1.0)
    assert net.conn.weight.dtype == torch.float64


def test_net_reset_state_resets_the_rule_state():
    net = Forced().double()
    rule = MSTDPET(net.layers)
    trip = TripletSTDP(net.layers)
    norm = WeightNormalization(net.layers, interval=3)
    for _ in range(2):
        net(torch.ones(1, 3).double(), torch.ones(1, 2).double())
        rule.update_state()
        trip.step()
        norm.step()
    assert rule.eligibility("conn") is not None and int(norm.n_calls) == 2
    assert trip.state["conn"]["r2"].numel() == 3
    net.reset_state()
    assert rule.eligibility("conn") is None
    assert trip.state["conn"]["r2"].numel() == 0
    assert int(norm.n_calls) == 2  # training progress, kept across samples
    norm.restart()
    assert int(norm.n_calls) == 0


def test_net_eval_freezes_weights_and_eligibility():
    net = Forced().double()
    rule = MSTDPET(net.layers, lr=0.1)
    trip = TripletSTDP(net.layers)
    pre, post = random_trains(10, 1, 3, seed=3), random_trains(10, 1, 2, seed=4)
    for t in range(5):
        step_forced(net, rule, pre[t], post[t], 1.0)
        trip.step()
    net.eval()
    assert not rule.training and not trip.training
    e, w = rule.eligibility("conn").clone(), net.conn.weight.clone()
    r2 = trip.state["conn"]["r2"].clone()
    for t in range(5, 10):
        step_forced(net, rule, pre[t], post[t], 1.0)
        trip.step()
    assert torch.equal(rule.eligibility("conn"), e)
    assert torch.equal(trip.state["conn"]["r2"], r2)
    assert torch.equal(net.conn.weight, w)
    net.train()
    assert rule.training
    step_forced(net, rule, torch.ones(1, 3).double(), torch.ones(1, 2).double(), 1.0)
    assert not torch.equal(rule.eligibility("conn"), e)


@pytest.mark.parametrize("cls", [STDP, MSTDP, MSTDPET, TripletSTDP, FedeSTDP, Hebbian, Oja])
def test_every_rule_attaches_to_its_network(cls):
    net = Forced()
    rule = cls(net.layers)
    assert isinstance(rule, torch.nn.Module) and rule in net.rules
    assert isinstance(rule.param_groups, list) and isinstance(rule.param_groups[0], dict)


# ---------------------------------------------------------------------------
# Checkpoint and resume, bit for bit
# ---------------------------------------------------------------------------
def _checkpoint(*modules):
    buf = io.BytesIO()
    torch.save([m.state_dict() for m in modules], buf)
    buf.seek(0)
    return torch.load(buf)


def _resume_equal(build, run_step, steps=40, split=17):
    """Run ``steps`` steps; checkpoint at ``split``; a fresh copy resumes bit-identically."""
    torch.manual_seed(0)
    net, rules = build()
    record = []
    saved = None
    for t in range(steps):
        if t == split:
            saved = _checkpoint(net, *rules)
        out = run_step(net, rules, t)
        if t >= split:
            record.append(out)
    torch.manual_seed(123)  # a fresh build draws other initial weights
    net2, rules2 = build()
    for module, state in zip([net2, *rules2], saved):
        module.load_state_dict(state)
    for t in range(split, steps):
        out = run_step(net2, rules2, t)
        for a, b in zip(out, record[t - split]):
            assert torch.equal(a, b), f"step {t}"
    return record


def test_resume_mstdpet_per_synapse_delays_adaptive_lif():
    delays = torch.randint(0, 4, (4, 6), generator=torch.Generator().manual_seed(5)).float()
    x = random_trains(40, 3, 6, p=0.4, seed=6)
    rewards = torch.randn(40, 3, generator=torch.Generator().manual_seed(7)).double()

    def build():
        net = Driven(delay=delays).double()
        with torch.no_grad():
            net.fc.weight.uniform_(0.3, 0.9)
        return net, [MSTDPET(net, 1.0, 0.5, 0.05, tau_e=15.0, w_min=0.0, w_max=1.5)]

    def run_step(net, rules, t):
        spikes = net(x[t])[0]
        rules[0].update_state()
        rules[0].step(rewards[t])
        e = rules[0].eligibility("fc")
        return spikes.clone(), net.fc.weight.clone(), e.clone(), net.lif.thresh_adaptive.clone()

    record = _resume_equal(build, run_step)
    assert record[-1][0].sum() > 0  # the network spiked


def test_resume_triplet_stdp():
    pre, post = random_trains(40, 2, 3, seed=8), random_trains(40, 2, 2, seed=9)

    def build():
        net = Forced(delay=2).double()
        return net, [TripletSTDP(net.layers, 1.0, 5e-3, 6e-3, 7e-3, 2e-3, w_min=0.0)]

    def run_step(net, rules, t):
        spikes = net(pre[t], post[t])[0]
        rules[0].step()
        s = rules[0].state["conn"]
        return spikes.clone(), net.conn.weight.clone(), s["r2"].clone(), s["o2"].clone()

    _resume_equal(build, run_step)


def test_resume_stdp_with_weight_normalization():
    x = random_trains(40, 2, 6, p=0.5, seed=10)

    def build():
        net = Driven().double()
        with torch.no_grad():
            net.fc.weight.uniform_(0.3, 0.9)
        stdp = STDP(net, lr=0.01, a_plus=1.0, a_minus=1.05, tau_plus=12.0, w_min=0.0, w_max=1.0)
        return net, [stdp, WeightNormalization(net, target=2.0, interval=7)]

    def run_step(net, rules, t):
        spikes = net(x[t])[0]
        for rule in rules:
            rule.step()
        return spikes.clone(), net.fc.weight.clone(), rules[1].n_calls.clone()

    record = _resume_equal(build, run_step, split=10)
    assert int(record[-1][2]) == 40


# ---------------------------------------------------------------------------
# Vocabulary and aliases
# ---------------------------------------------------------------------------
def test_mstdpet_positional_aliases_equal_the_new_names():
    pre, post = random_trains(30, 2, 3, seed=11), random_trains(30, 2, 2, seed=12)
    rewards = torch.randn(30, 2, generator=torch.Generator().manual_seed(13)).double()
    nets, rules = [], []
    for make in (
        lambda n: MSTDPET(n.layers, 1.0, 0.5, 1e-3, 0.9),
        lambda n: MSTDPET(n.layers, a_plus=1.0, a_minus=0.5, lr=1e-3, tau_e=-DT / math.log(0.9)),
        lambda n: MSTDPET(n.layers, a_pre=1.0, a_post=0.5, lr=1e-3, e_trace_decay=0.9),
    ):
        net = Forced().double()
        nets.append(net)
        rules.append(make(net))
    for t in range(30):
        for net, rule in zip(nets, rules):
            step_forced(net, rule, pre[t], post[t], rewards[t])
    for net, rule in zip(nets[1:], rules[1:]):
        torch.testing.assert_close(net.conn.weight, nets[0].conn.weight, atol=1e-12, rtol=0)
        torch.testing.assert_close(
            rule.eligibility("conn"), rules[0].eligibility("conn"), atol=1e-12, rtol=0
        )
    group = rules[0].param_groups[0]
    assert group["tau_e"] == pytest.approx(-DT / math.log(0.9))
    assert group["a_pre"] == group["a_plus"] == 1.0 and group["a_post"] == 0.5
    group["a_pre"] = 2.0  # PySNN 0.1 name assigns the new one
    assert group["a_plus"] == 2.0 and "a_pre" not in group


def test_alias_conversions_and_conflicts():
    net = Forced().double()
    assert MSTDPET(net.layers, e_trace_decay=0.0).param_groups[0]["tau_e"] == 0.0
    assert MSTDPET(net.layers, e_trace_decay=1.0).param_groups[0]["tau_e"] == math.inf
    with pytest.raises(TypeError):
        MSTDPET(net.layers, 1.0, a_pre=1.0)
    with pytest.raises(TypeError):
        MSTDPET(net.layers, e_trace_decay=0.9, tau_e=10.0)
    with pytest.raises(TypeError):
        MSTDP(net.layers, a_minus=1.0, a_post=1.0)
    with pytest.raises(TypeError):
        TripletSTDP(net.layers, 1.0, 5e-3, a2_plus=5e-3)
    with pytest.raises(ValueError):
        MSTDPET(net.layers, e_trace_decay=1.5)
    trip = TripletSTDP(net.layers, a2_plus=0.1, a2_minus=0.2)
    assert trip.param_groups[0]["a_plus"] == 0.1 and trip.param_groups[0]["a2_minus"] == 0.2
    rule = MSTDP([{"layers": net.layers, "a_pre": 3.0}])
    assert rule.param_groups[0]["a_plus"] == 3.0


# ---------------------------------------------------------------------------
# Rule-owned traces
# ---------------------------------------------------------------------------
def _pair_change(cls, pre_t, post_t, tau_plus, tau_minus, pairing="all-to-all", **kw):
    # the neurons' traces use other time constants, which the rule must ignore
    net = Forced(1, 1, tau_pre=3.0, tau_post=5.0, w=0.0).double()
    rule = cls(net.layers, lr=0.1, tau_plus=tau_plus, tau_minus=tau_minus, pairing=pairing, **kw)
    one, zero = torch.ones(1, 1).double(), torch.zeros(1, 1).double()
    for t in range(max(pre_t + post_t) + 2):
        net(one if t in pre_t else zero, one if t in post_t else zero)
        rule.update_state()
        rule.step(1.0) if cls is not STDP else rule.step()
    return net.conn.weight.item()


@pytest.mark.parametrize("cls", [STDP, MSTDP, MSTDPET])
def test_rule_owned_traces_give_the_pair_window(cls):
    kw = dict(tau_e=math.inf) if cls is MSTDPET else {}
    delta, a_plus, a_minus, tp, tm = 7, 1.3, 0.6, 17.0, 31.0
    amp = dict(a_plus=a_plus, a_minus=a_minus)
    # MSTDPET with tau_e = inf applies the accumulated eligibility every step: the first
    # pairing is counted once per remaining step, so read its change after one step
    w = _pair_change(cls, [0], [delta], tp, tm, **amp, **kw)
    steps = 2 if cls is MSTDPET else 1
    assert w == pytest.approx(steps * 0.1 * a_plus * math.exp(-delta / tp), abs=1e-6)
    w = _pair_change(cls, [delta], [0], tp, tm, **amp, **kw)
    assert w == pytest.approx(-steps * 0.1 * a_minus * math.exp(-delta / tm), abs=1e-6)


def test_nearest_pairing_and_two_windows_on_the_same_populations():
    tp = 10.0
    w_all = _pair_change(STDP, [0, 2], [5], tp, tp, a_minus=0.0)
    w_near = _pair_change(STDP, [0, 2], [5], tp, tp, pairing="nearest", a_minus=0.0)
    assert w_all == pytest.approx(0.1 * (math.exp(-5 / tp) + math.exp(-3 / tp)), abs=1e-9)
    assert w_near == pytest.approx(0.1 * math.exp(-3 / tp), abs=1e-9)
    net = Forced(1, 1, w=0.0).double()
    short = STDP(net.layers, lr=1.0, a_minus=0.0, tau_plus=5.0, tau_minus=5.0)
    long = STDP(net.layers, lr=1.0, a_minus=0.0, tau_plus=50.0, tau_minus=50.0)
    one, zero = torch.ones(1, 1).double(), torch.zeros(1, 1).double()
    for t in range(6):
        net(one if t == 0 else zero, one if t == 4 else zero)
        w0 = net.conn.weight.item()
        short.step()
        w1 = net.conn.weight.item()
        long.step()
        if t == 4:
            assert w1 - w0 == pytest.approx(math.exp(-4 / 5.0), abs=1e-12)
            assert net.conn.weight.item() - w1 == pytest.approx(math.exp(-4 / 50.0), abs=1e-12)


def test_rule_owned_traces_follow_a_scalar_delay_and_refuse_per_synapse_delays():
    net = Forced(1, 1, delay=3, w=0.0).double()
    rule = STDP(net.layers, lr=1.0, a_minus=0.0, tau_plus=10.0)
    one, zero = torch.ones(1, 1).double(), torch.zeros(1, 1).double()
    for t in range(8):
        net(one if t == 0 else zero, one if t == 5 else zero)
        rule.step()
    assert net.conn.weight.item() == pytest.approx(math.exp(-2 / 10.0), abs=1e-12)
    net = Forced(2, 1, delay=torch.tensor([[0.0, 2.0]])).double()
    with pytest.raises(NotImplementedError, match="per-synapse delays"):
        STDP(net.layers, tau_plus=10.0)
    STDP(net.layers, tau_minus=10.0)  # the postsynaptic trace alone is fine


def test_custom_rule_state_names_are_buffers():
    class Counting(LearningRule):
        state_names = ("count",)

        def __init__(self, layers, **options):
            super().__init__(layers, dict(**options))

        def _step_layer(self, layer, group, state, reward):
            if self._frozen(layer):
                return
            c = state["count"]
            state["count"] = torch.ones(()) if c.numel() == 0 else c + 1

    net = Forced()
    rule = Counting(net.layers)
    for _ in range(3):
        net(torch.ones(1, 3), torch.ones(1, 2))
        rule.step()
    assert rule.state_dict()["layer_state.conn.count"] == 3
