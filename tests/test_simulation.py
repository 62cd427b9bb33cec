"""The simulation engine: clock, declared capabilities, strategies, hooks and transactions.

Every strategy of ``net.run`` is compared with the step loop on the same
network and input, bit for bit in float64 (the compiled strategy traces the
eager code with the ``aot_eager`` backend here, which checks the capture
without generating code; one test uses Inductor).
"""

import copy
import math
import warnings

import pytest
import torch

import pysnn.connection as pysnn_connection
from pysnn import compiled as pcompiled
from pysnn.capabilities import STEP_ONLY, capabilities_of
from pysnn.connection import (
    AdaptiveMaxPool2d,
    AvgPool2d,
    Chain,
    Connection,
    Conv2d,
    Conv2dSep,
    Flatten,
    Linear,
    MaxPool2d,
    Merge,
    Pool2d,
    Recurrent,
    Sparse,
    SumPool2d,
)
from pysnn.connection import __all__ as CONNECTION_NAMES
from pysnn.learning import MSTDPET, STDP, TripletSTDP
from pysnn.monitor import SpikeMonitor, StateMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron
from pysnn.synapse import ExponentialSynapse

T, B = 23, 3


def _input(shape, dt=1.0):
    return Input(shape, dt=dt, alpha_t=1.0, tau_t=10.0, integrator="exact")


def _lif(shape, dt=1.0, **kw):
    kw.setdefault("thresh", 0.5)
    return LIFNeuron(shape, dt=dt, duration_refrac=1.0, tau_v=8.0, integrator="exact", **kw)


def _seeded(conn, low, high, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in conn.parameters():
            p.copy_(low + (high - low) * torch.rand(p.shape, generator=g, dtype=p.dtype))
    return conn


def _state(net):
    """Every tensor of the network's state, plus plain ring heads and arriving values."""
    out = {k: v.clone() for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)}
    for name, module in net.named_modules():
        for attr in ("pre_spikes", "pre_trace", "head"):
            value = getattr(module, attr, None)
            if isinstance(value, torch.Tensor):
                out[f"{name}.{attr}"] = value.clone()
            elif isinstance(value, int):
                out[f"{name}.{attr}"] = torch.tensor(value)
    return out


def _assert_same_state(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        if atol:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


def _compiled(net, chunk=4):
    return net.compile(backend="aot_eager", chunk=chunk)


# -- the clock ------------------------------------------------------------------------
def test_setting_dt_rederives_decay_factors_and_refractory_steps():
    lif = LIFNeuron((3,), tau_v=20.0, duration_refrac=2.0, dt=1.0, integrator="exact").double()
    assert int(lif.refrac_steps) == 2
    assert float(lif.decay("tau_v")) == pytest.approx(math.exp(-1 / 20), abs=1e-15)
    lif.dt = 0.5
    assert lif.dt == 0.5 and int(lif.refrac_steps) == 4
    assert float(lif.decay("tau_v")) == pytest.approx(math.exp(-0.5 / 20), abs=1e-15)
    assert float(lif.gain("tau_v")) == pytest.approx(1 - math.exp(-0.5 / 20), abs=1e-15)
    # behaves as one built with dt = 0.5 from the start
    built = LIFNeuron((3,), tau_v=20.0, duration_refrac=2.0, dt=0.5, integrator="exact").double()
    x = torch.rand(30, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for xt in x * 3:
        s1, _ = lif(xt)
        s2, _ = built(xt)
        assert torch.equal(s1, s2)
    assert torch.equal(lif.v_cell, built.v_cell) and torch.equal(
        lif.refrac_counts, built.refrac_counts
    )


def test_a_pysnn01_decay_factor_becomes_the_factor_of_the_new_step():
    lif = LIFNeuron((2,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.9, 0.8).double()  # 0.1 positional
    assert float(lif.decay("tau_v")) == 0.9
    lif.dt = 0.5  # tau_v = -1 / ln 0.9 ms stays; the factor of half a step is 0.9 ** 0.5
    assert float(lif.decay("tau_v")) == pytest.approx(0.9**0.5, abs=1e-15)
    assert float(lif.decay("tau_t")) == pytest.approx(0.8**0.5, abs=1e-15)


def _delayed_net(dt):
    inp, lif = _input((6,), dt), _lif((4,), dt)
    net = SNNNetwork()
    net.connect(inp, _seeded(Linear(6, 4, dt=dt, delay=2.0), 0.0, 0.6, 1), lif)
    return net.double()


def test_network_dt_sets_every_module_and_keeps_delays_in_ms():
    net, built = _delayed_net(1.0), _delayed_net(0.5)
    assert net.dt == 1.0 and int(net.layer0_connection.delay_steps) == 2
    net.dt = 0.5
    assert net.dt == 0.5 and int(net.layer0_connection.delay_steps) == 4
    assert float(net.layer0_connection.delay_ms()) == 2.0
    x = torch.rand(40, B, 6, generator=torch.Generator().manual_seed(1)) < 0.3
    out = net.run(x, strategy="step")
    assert out.sum() > 0 and torch.equal(out, built.run(x, strategy="step"))


def test_a_dt_some_module_cannot_take_changes_nothing():
    net = _delayed_net(1.0)  # refractory 1 ms, delay 2 ms
    before = {name: m.dt for name, m in net.simulator.clocked()}
    with pytest.raises(ValueError, match="dt = 0.3 ms"):
        net.dt = 0.3
    assert {name: m.dt for name, m in net.simulator.clocked()} == before
    with pytest.raises(ValueError, match="delay"):
        net.layer0_connection.dt = 0.3
    assert net.layer0_connection.dt == 1.0 and int(net.layer0_connection.delay_steps) == 2


def test_add_layer_requires_one_dt_and_real_modules():
    net = SNNNetwork()
    with pytest.raises(ValueError, match="one timestep"):
        net.connect(_input((3,), dt=1.0), Linear(3, 2, dt=0.5), _lif((2,)))
    with pytest.raises(TypeError, match="connection is required"):
        net.add_layer("x", None, _lif((2,)), _input((3,)))
    with pytest.raises(TypeError, match="must be a population"):
        net.add_layer("x", Linear(3, 2), torch.nn.Identity(), _input((3,)))
    assert not net.layers


# -- declared capabilities --------------------------------------------------------------
def test_capabilities_are_declared_and_derived():
    assert capabilities_of(Linear(3, 2)).per_synapse_delay
    assert not capabilities_of(Conv2dSep(1, 1, 1, delays=[0.0, 1.0])).per_synapse_delay
    assert (
        capabilities_of(MaxPool2d(2)).multi_step and not capabilities_of(MaxPool2d(2)).graded_input
    )
    assert capabilities_of(_lif((2,))).has_voltage and capabilities_of(_lif((2,))).multi_step
    assert capabilities_of(torch.nn.Identity()) == STEP_ONLY
    chain = Chain(SumPool2d(2), Flatten(), Linear(8, 5))
    assert capabilities_of(chain).multi_step

    class StepOnly(LIFNeuron):  # a model that overrides forward alone runs step by step
        def forward(self, x):
            return super().forward(x)

    assert not capabilities_of(StepOnly((2,))).multi_step


# -- every connection kind in every strategy ----------------------------------------------
def _kind_cases():
    """``name -> (connection, input shape, postsynaptic shape)``, one per connection kind."""
    indices = torch.tensor([[0, 1, 3, 2, 0, 1], [0, 1, 2, 4, 5, 5]])  # (post, pre)
    delays = torch.randint(0, 3, (4, 6), generator=torch.Generator().manual_seed(4)).double()
    return {
        "Linear": (Linear(6, 4, delay=1.0), (6,), (4,)),
        "Linear per-synapse delays": (Linear(6, 4, delay=delays), (6,), (4,)),
        "Recurrent (feedforward use)": (Recurrent(6), (6,), (6,)),
        "Sparse": (Sparse(6, 4, indices, delay=1.0), (6,), (4,)),
        "Conv2d": (Conv2d(2, 3, 3, padding=1), (2, 4, 4), (3, 4, 4)),
        "Conv2dSep": (Conv2dSep(2, 3, 3, delays=[0.0, 2.0], padding=1), (2, 4, 4), (3, 4, 4)),
        "Merge": (Merge(2), (2, 4, 4), (1, 4, 4)),
        "MaxPool2d": (MaxPool2d(2), (2, 4, 4), (2, 2, 2)),
        "AdaptiveMaxPool2d": (AdaptiveMaxPool2d(2), (2, 4, 4), (2, 2, 2)),
        "AvgPool2d": (AvgPool2d(2), (2, 4, 4), (2, 2, 2)),
        "SumPool2d": (SumPool2d(2), (2, 4, 4), (2, 2, 2)),
        "Flatten": (Flatten(), (2, 2, 2), (8,)),
        "Chain": (Chain(SumPool2d(2), Flatten(), Linear(8, 5, delay=2.0)), (2, 4, 4), (5,)),
    }


def test_the_cases_cover_every_connection_kind():
    kinds = {
        getattr(pysnn_connection, name)
        for name in CONNECTION_NAMES
        if isinstance(getattr(pysnn_connection, name), type)
        and getattr(pysnn_connection, name) not in (Connection, Pool2d)
    }
    covered = {type(conn) for conn, _, _ in _kind_cases().values()}
    assert kinds <= covered, kinds - covered


def _kind_net(name):
    conn, shape, post_shape = copy.deepcopy(_kind_cases()[name])
    if conn.weight is not None or list(conn.parameters()):
        _seeded(conn, -0.2, 0.8, 3)
    net = SNNNetwork()
    net.connect(_input(shape), conn, _lif(post_shape, thresh=0.4))
    return net.double(), shape


@pytest.mark.parametrize("strategy", ["window", "compiled"])
@pytest.mark.parametrize("name", list(_kind_cases()))
def test_every_connection_kind_runs_in_every_strategy(name, strategy):
    net, shape = _kind_net(name)
    twin = copy.deepcopy(net)
    x = torch.rand(9, 2, *shape, generator=torch.Generator().manual_seed(5)) < 0.4
    expected = net.run(x, strategy="step", warn_silent=False)
    if strategy == "compiled":
        _compiled(twin, chunk=3)
    out = twin.run(x, strategy=strategy, warn_silent=False)
    assert torch.equal(out, expected)
    _assert_same_state(_state(twin), _state(net))
    assert twin.step_index == net.step_index == 9


def test_a_chain_projection_runs_with_the_default_run():
    net, shape = _kind_net("Chain")
    x = torch.rand(12, B, *shape, generator=torch.Generator().manual_seed(6)) < 0.5
    assert net.multi_step_obstacle(x) is None
    out = net.run(x, warn_silent=False)  # windows by default
    assert out.shape == (12, B, 5) and out.sum() > 0
    assert torch.equal(out, copy.deepcopy(net).run(x, strategy="step", warn_silent=False))


# -- hooks: monitors and finite checks in windows and chunks ---------------------------------
def _feedforward():
    inp, l1, l2 = _input((8,)), _lif((6,)), _lif((3,))
    net = SNNNetwork()
    net.connect(inp, _seeded(Linear(8, 6), 0.0, 0.5, 7), l1)
    net.connect(
        l1, _seeded(Linear(6, 3, delay=2.0), 0.1, 0.9, 8), l2, synapse=ExponentialSynapse((3,), 3.0)
    )
    return net.double()


@pytest.mark.parametrize("strategy", ["window", "compiled"])
def test_monitors_record_windows_and_chunks_like_the_step_loop(strategy):
    ref, net = _feedforward(), _feedforward()
    x = torch.rand(T, B, 8, generator=torch.Generator().manual_seed(9)) < 0.4
    records = []
    for model in (ref, net):
        records.append(
            (
                StateMonitor(model.layer1_neuron, ["v_cell", "trace"], num_steps=T),
                SpikeMonitor(model.layer0_neuron, window=7),
                StateMonitor(model.layer1_connection, "weight", num_steps=T),
            )
        )
    ref.run(x, strategy="step")
    if strategy == "compiled":
        _compiled(net, chunk=5)
    net.run(x, strategy=strategy)
    for a, b in zip(*records):
        assert len(a) == len(b) and a.steps_seen == b.steps_seen == T
        for name in a.attributes:
            assert torch.equal(a.get(name), b.get(name)), name
    assert records[0][0].get("v_cell").abs().sum() > 0


def test_check_finite_in_a_window_names_the_step_and_restores_it():
    def huge(model):  # two finite weights whose sum overflows
        with torch.no_grad():
            model.layer0_connection.weight[2, 5:7] = -1.5e308
        return model.check_finite(True)

    net = huge(_feedforward())
    x = torch.zeros(T, B, 8, dtype=torch.bool)
    x[:, :, 0] = True
    x[13, 1, 5:7] = True  # the only spikes through the huge weights
    net.run(x[:10], strategy="window")
    before = _state(net)
    with pytest.raises(FloatingPointError, match="step 13"):
        net.run(x[10:], reset=False, strategy="window")
    assert net.step_index == 13  # the steps before the bad one were kept
    twin = huge(_feedforward())
    twin.run(x[:13], strategy="step")
    _assert_same_state(_state(net), _state(twin))
    assert not torch.equal(_state(net)["layer0_neuron.v_cell"], before["layer0_neuron.v_cell"])


# -- learning in every strategy that allows it -------------------------------------------------
def _learning_net():
    inp, lif = _input((12,)), _lif((5,), thresh=0.6)
    net = SNNNetwork()
    net.connect(inp, _seeded(Linear(12, 5), 0.0, 0.5, 10), lif)
    return net.double()


RULES = {
    "STDP": lambda net: STDP(net.layers, lr=0.05, a_plus=1.0, a_minus=1.1, w_min=0.0, w_max=1.0),
    "MSTDPET": lambda net: MSTDPET(net.layers, 1.0, 1.0, lr=0.05, tau_e=5.0, w_min=0.0, w_max=1.0),
    "TripletSTDP": lambda net: TripletSTDP(net.layers, lr=0.05, a_plus=0.5, a_minus=0.5),
}


@pytest.mark.parametrize("rule_name", list(RULES))
def test_compiled_runs_learn_the_eager_weights(rule_name):
    eager, comp = _learning_net(), _learning_net()
    rules = [RULES[rule_name](model) for model in (eager, comp)]
    x = torch.rand(17, B, 12, generator=torch.Generator().manual_seed(11)) < 0.35
    rewards = torch.randn(17, B, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    kwargs = {"rewards": rewards} if rules[0].needs_reward else {}
    out = eager.run(x, rules=rules[0], **kwargs)
    _compiled(comp, chunk=5)
    assert comp.simulator.choose(None, x, _learning(comp, rules[1], kwargs), None) == "compiled"
    out_c = comp.run(x, rules=rules[1], **kwargs)
    assert out.sum() > 0 and torch.equal(out, out_c)
    w0 = _learning_net().layer0_connection.weight
    assert not torch.equal(eager.layer0_connection.weight, w0)
    torch.testing.assert_close(
        comp.layer0_connection.weight, eager.layer0_connection.weight, rtol=0, atol=1e-12
    )
    assert comp.simulator.compiled.failed is None


def _learning(net, rule, kwargs):
    from pysnn.simulation import Learning

    return Learning.of(net, rule, kwargs.get("rewards"), 17)


def test_run_applies_rules_like_a_hand_written_loop():
    auto, hand = _learning_net(), _learning_net()
    RULES["MSTDPET"](auto)  # attached to auto, applied by run(rules=True)
    rh = RULES["MSTDPET"](hand)
    x = torch.rand(15, B, 12, generator=torch.Generator().manual_seed(13)) < 0.35
    rewards = torch.randn(15, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    auto.run(x, rules=True, rewards=rewards)  # True: the attached rules
    hand.reset_state()
    for t in range(15):
        hand(x[t])
        rh.update_state()
        rh.step(rewards[t])
    assert torch.equal(auto.layer0_connection.weight, hand.layer0_connection.weight)
    assert not torch.equal(auto.layer0_connection.weight, _learning_net().layer0_connection.weight)


def test_rules_and_rewards_are_checked_before_anything_runs():
    net = _learning_net()
    rule = RULES["MSTDPET"](net)
    x = torch.rand(6, B, 12) < 0.3
    net.run(x, rules=rule, rewards=torch.ones(6))
    before = _state(net), net.layer0_connection.weight.clone()
    with pytest.raises(TypeError, match="needs rewards"):
        net.run(x, rules=rule, reset=False)
    with pytest.raises(ValueError, match="one entry per step"):
        net.run(x, rules=rule, rewards=torch.ones(5), reset=False)
    with pytest.raises(ValueError, match="finite"):
        net.run(x, rules=rule, rewards=torch.tensor([1.0, math.nan, 1, 1, 1, 1]), reset=False)
    with pytest.raises(ValueError, match="without rules"):
        net.run(x, rewards=torch.ones(6), reset=False)
    with pytest.raises(TypeError, match="rules must be"):
        net.run(x, rules="stdp", reset=False)
    _assert_same_state(before[0], _state(net))
    assert torch.equal(before[1], net.layer0_connection.weight)


def test_requested_strategies_say_why_they_cannot_run():
    inp, lif = _input((4,)), _lif((3,))
    net = SNNNetwork()
    net.connect(inp, Linear(4, 3), lif)
    net.connect(lif, Recurrent(3), lif)
    x = torch.zeros(5, 1, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="strategy='window'.*previous step"):
        net.run(x, strategy="window")
    with pytest.raises(ValueError, match="strategy='compiled'.*compile"):
        net.run(x, strategy="compiled")
    with pytest.raises(ValueError, match="strategy must be"):
        net.run(x, strategy="fast")
    _compiled(net)
    with pytest.raises(ValueError, match="callback"):
        net.run(x, strategy="compiled", callback=lambda t, out: None)
    assert net.simulator.choose(None, x, _learning(net, None, {}), None) == "compiled"
    net.compile(False)
    assert net.simulator.choose(None, x, _learning(net, None, {}), None) == "step"


def test_an_automatic_choice_compiles_only_up_to_the_work_where_it_pays(monkeypatch):
    from pysnn import compiled

    inp, lif = _input((4,)), _lif((3,))
    net = SNNNetwork()
    net.connect(inp, Linear(4, 3), lif)
    net.connect(lif, Recurrent(3), lif)  # 12 + 9 weights
    _compiled(net)
    learning = _learning(net, None, {})
    monkeypatch.setattr(compiled, "AUTO_MAX_SYNAPSE_SAMPLES", 2 * 21)
    batch2, batch3 = torch.zeros(5, 2, 4, dtype=torch.bool), torch.zeros(5, 3, 4, dtype=torch.bool)
    assert net.simulator.choose(None, batch2, learning, None) == "compiled"  # 42: at the limit
    assert compiled.worth_compiling(net.simulator, batch3).startswith("3 x 21 synapse-samples")
    assert net.simulator.choose(None, batch3, learning, None) == "step"
    assert net.simulator.choose("compiled", batch3, learning, None) == "compiled"
    net.run(batch3, warn_silent=False)
    assert net.simulator.last_strategy == "step"


def test_a_failing_compiled_chunk_gives_the_eager_error_at_its_step():
    net = _learning_net()
    rule = RULES["MSTDPET"](net)
    _compiled(net, chunk=4)
    x = torch.rand(12, B, 12, generator=torch.Generator().manual_seed(15)) < 0.35
    net.run(x, rules=rule, rewards=torch.ones(12))  # compiles
    rewards = torch.ones(12)
    rewards[6] = math.inf  # found when applied, inside the second chunk (steps 5..8)
    # run() checks rewards first; apply the bad one by hand through the learning object
    from pysnn.simulation import Learning

    learning = Learning(rules=(rule,), stateful=(True,), rewards=rewards)
    net.reset_state()
    rule.reset_state()
    with pytest.raises(ValueError, match="reward must be finite"):
        pcompiled.run(net.simulator, x, learning, ())
    assert net.step_index == 7  # steps 0..6 ran; the network state is that of before step 7
    assert net.simulator.compiled.failed is None


def test_a_backend_that_fails_warns_once_and_runs_eagerly():
    def broken(gm, example_inputs):
        raise RuntimeError("no compiler here")

    eager, net = _learning_net(), _learning_net()
    net.compile(backend=broken, chunk=4)
    x = torch.rand(10, B, 12, generator=torch.Generator().manual_seed(16)) < 0.35
    with pytest.warns(RuntimeWarning, match="compiled run unavailable"):
        out = net.run(x, warn_silent=False, strategy="compiled")
    assert torch.equal(out, eager.run(x, warn_silent=False))
    assert "no compiler here" in net.simulator.compiled.failed


def test_a_compiled_network_deep_copies_with_its_settings():
    net = _compiled(_learning_net(), chunk=6)
    clone = copy.deepcopy(net)
    assert clone.compiled and clone.simulator.compiled.chunk == 6
    assert clone.simulator.compiled.simulator is clone.simulator


@pytest.mark.parametrize("rule_name, batch", [("STDP", B), ("MSTDPET", B), ("MSTDPET", 6)])
def test_inductor_compiled_run_equals_eager(device, rule_name, batch):
    """Real code generation (Inductor: C++ on the CPU; Triton + CUDA graphs on a GPU).

    Spikes equal, weights to rounding; MSTDPET's per-sample eligibility is one
    fused pointwise update for batch x rows <= COMPILED_OUTER_ROWS (batch 3)
    and updated in place by the custom operator above (batch 6).
    """
    if not pcompiled.fusion.fusion_available():
        pytest.skip("torch.compile is not supported here")
    eager, comp = _learning_net().to(device), _learning_net().to(device)
    r1, r2 = RULES[rule_name](eager), RULES[rule_name](comp)
    comp.compile(chunk=8)
    x = torch.rand(20, batch, 12, generator=torch.Generator().manual_seed(17)) < 0.35
    x = x.to(device)
    rewards = torch.randn(
        20, batch, generator=torch.Generator().manual_seed(18), dtype=torch.float64
    )
    kwargs = {"rewards": rewards.to(device)} if r1.needs_reward else {}
    out = eager.run(x, rules=r1, **kwargs)
    out_c = comp.run(x, rules=r2, **kwargs)
    if r1.needs_reward:
        assert r1.eligibility("layer0").abs().sum() > 0
        torch.testing.assert_close(
            r2.eligibility("layer0"), r1.eligibility("layer0"), rtol=0, atol=1e-12
        )
    assert comp.simulator.compiled.failed is None
    assert torch.equal(out, out_c) and out.sum() > 0
    torch.testing.assert_close(
        comp.layer0_connection.weight, eager.layer0_connection.weight, rtol=0, atol=1e-12
    )


def test_a_new_sample_without_reset_warns_once_and_a_reset_silences_it():
    net = _learning_net()
    a = torch.rand(3, B, 12, generator=torch.Generator().manual_seed(1)) < 0.4
    b = torch.rand(3, B, 12, generator=torch.Generator().manual_seed(2)) < 0.4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in range(3):  # one sample, views of one tensor: no warning
            net(a[t])
        net.reset_state()
        for t in range(3):  # the next sample after a reset: no warning
            net(b[t])
        net.run(a, reset=False)  # continuing on purpose
        for t in range(2):  # fresh tensors each step (closed loop): never compared
            net(a[t].clone())
    with pytest.warns(UserWarning, match="step 2: this step's input is a view of another") as rec:
        net.reset_state()
        for x in (a, b):  # a new sample without a reset
            for t in range(2):
                net(x[t])
    assert len(rec) == 1 and rec[0].filename == __file__
