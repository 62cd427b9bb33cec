"""Reliability: finite values, inference mode, shared modules and atomic network steps."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import pysnn.network as pnet
from pysnn.connection import Linear
from pysnn.delay import DelayLine
from pysnn.learning import (
    MSTDP,
    MSTDPET,
    STDP,
    FedeSTDP,
    Hebbian,
    KheradpishehSTDP,
    Oja,
    ShresthaSTDP,
    TripletSTDP,
    WeightNormalization,
)
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron
from pysnn.synapse import ConductanceSynapse, ExponentialSynapse

NAN, INF = math.nan, math.inf


class TwoLayer(SNNNetwork):
    """inp -> fc1 (delay) -> hid -> fc2 -> out, with hooks to inject bad values.

    ``gain`` scales the current into ``hid`` (NaN makes ``hid.v_cell`` NaN);
    ``bad_shape`` feeds ``fc2`` spikes of the wrong width (the second layer's
    input check raises after the first layer has stepped).
    """

    def __init__(self, delay=3, n_in=6, n_hid=4, n_out=3, store_trace=True):
        super().__init__()
        self.inp = Input((n_in,), integrator="exact", tau_t=5.0)
        self.fc1 = Linear(n_in, n_hid, delay=delay)
        self.hid = LIFNeuron(
            (n_hid,), tau_v=10.0, thresh=0.5, integrator="exact", store_trace=store_trace
        )
        self.fc2 = Linear(n_hid, n_out)
        self.out = LIFNeuron((n_out,), tau_v=10.0, thresh=0.5, integrator="exact")
        self.add_layer("fc1", self.fc1, self.hid, self.inp)
        self.add_layer("fc2", self.fc2, self.out, self.hid)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.linspace(0.1, 0.9, n_hid * n_in).view(n_hid, n_in))
            self.fc2.weight.fill_(0.4)
        self.gain = 1.0
        self.bad_shape = False

    def forward(self, x):
        s, t = self.inp(x)
        current, _ = self.fc1(s, t)
        s, t = self.hid(current * self.gain)
        if self.bad_shape:
            s, t = s[:, :-1], t[:, :-1]
        current, _ = self.fc2(s, t)
        return self.out(current)[0]


def _spikes(steps=12, batch=2, n_in=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, n_in, generator=gen) < 0.5


def _state(net):
    """Every buffer and parameter, cloned, plus the plain per-step attributes."""
    tensors = {f"{k}": v.clone() for k, v in net.state_dict().items() if torch.is_tensor(v)}
    for name, module in net.named_modules():
        for key, buf in module.named_buffers(recurse=False):
            tensors[f"{name}.{key}"] = buf.clone()
    attrs = {
        "head": net.fc1.delay_line.head,
        "fresh": [getattr(m, "_fresh", None) for m in net.modules()],
        "history": len(net.hid._history),
        "pre_spikes": net.fc1.pre_spikes,
        "step_index": net.step_index,
        "batch_pending": net.simulator.pending,
    }
    return tensors, attrs


def _assert_same_state(before, after):
    tensors_a, attrs_a = before
    tensors_b, attrs_b = after
    assert tensors_a.keys() == tensors_b.keys()
    for key in tensors_a:
        assert torch.equal(tensors_a[key], tensors_b[key]), f"{key} changed"
    pre_a, pre_b = attrs_a.pop("pre_spikes"), attrs_b.pop("pre_spikes")
    assert (pre_a is None and pre_b is None) or torch.equal(pre_a, pre_b)
    assert attrs_a == attrs_b


# ---------------------------------------------------------------------------
# (1) finite values: learning rules
# ---------------------------------------------------------------------------
RULES = {
    "stdp": lambda net, **kw: STDP(net.layers, **kw),
    "triplet": lambda net, **kw: TripletSTDP(net.layers, **kw),
    "mstdp": lambda net, **kw: MSTDP(net.layers, **kw),
    "mstdpet": lambda net, **kw: MSTDPET(net.layers, **kw),
    "fede": lambda net, **kw: FedeSTDP(net.layers, **kw),
    "hebbian": lambda net, **kw: Hebbian(net.layers, **kw),
    "oja": lambda net, **kw: Oja(net.layers, **kw),
    "shrestha": lambda net, **kw: ShresthaSTDP(net.layers, **kw),
    "kheradpisheh": lambda net, **kw: KheradpishehSTDP(net.layers, **kw),
}


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("option,value", [("lr", NAN), ("w_min", -INF), ("w_max", NAN)])
def test_rules_reject_non_finite_options_at_construction(rule, option, value):
    net = TwoLayer()
    with pytest.raises(ValueError, match=f"{option} must be finite"):
        RULES[rule](net, **{option: value})


def test_weight_normalization_rejects_non_finite_target_and_bounds():
    net = TwoLayer()
    for kw in (dict(target=NAN), dict(target=torch.tensor([1.0, INF, 1.0])), dict(w_max=INF)):
        name = next(iter(kw))
        with pytest.raises(ValueError, match=f"{name} must be finite"):
            WeightNormalization(net.layers, **kw)


def test_a_group_value_set_later_is_rejected_when_set_and_at_step():
    net = TwoLayer()
    rule = STDP(net.layers, lr=0.5, w_min=0.0, w_max=1.0)
    group = rule.param_groups[0]
    with pytest.raises(ValueError, match="lr must be finite"):
        group["lr"] = NAN
    assert group["lr"] == 0.5
    with pytest.raises(TypeError, match="w_max must be a real number"):
        group["w_max"] = "1.0"
    # dict.update() bypasses the group's check: step() still refuses before any change
    x = _spikes()
    for t in range(5):
        net(x[t])
        rule.step()  # checked values are remembered: a later change must still be seen
    weights = [net.fc1.weight.clone(), net.fc2.weight.clone()]
    group.update(lr=NAN)
    with pytest.raises(ValueError, match="lr must be finite"):
        rule.step()
    assert torch.equal(net.fc1.weight, weights[0]) and torch.equal(net.fc2.weight, weights[1])
    group.update(lr=0.5, w_max=INF)
    with pytest.raises(ValueError, match="w_max must be finite"):
        rule.step()
    assert torch.equal(net.fc1.weight, weights[0])


def test_a_tensor_option_edited_in_place_is_rejected_at_step():
    net = TwoLayer()
    lr = torch.tensor(0.5)
    rule = STDP(net.layers, lr=lr, w_min=0.0, w_max=1.0)
    x = _spikes()
    for t in range(3):
        net(x[t])
        rule.step()
    weights = net.fc1.weight.clone()
    lr.fill_(NAN)
    with pytest.raises(ValueError, match="lr must be finite"):
        rule.step()
    assert torch.equal(net.fc1.weight, weights)


def test_weight_normalization_checks_target_set_later_before_scaling():
    net = TwoLayer()
    norm = WeightNormalization(net.layers, target=2.0)
    before = net.fc1.weight.clone()
    dict.__setitem__(norm.param_groups[0], "target", NAN)
    with pytest.raises(ValueError, match="target must be finite"):
        norm.step()
    with pytest.raises(ValueError, match="target must be finite"):
        norm.normalize(net.layers["fc1"])
    assert torch.equal(net.fc1.weight, before)
    assert norm._count == 0  # the failed call was not counted
    dict.__setitem__(norm.param_groups[0], "target", 2.0)
    norm.step()
    # every neuron's incoming weights now sum to the target
    torch.testing.assert_close(net.fc1.weight.sum(1), torch.full((4,), 2.0))


@pytest.mark.parametrize("cls", [MSTDP, MSTDPET])
@pytest.mark.parametrize(
    "reward,error,match",
    [
        (NAN, ValueError, "reward must be finite"),
        (INF, ValueError, "reward must be finite"),
        (torch.tensor([1.0, NAN]), ValueError, "reward must be finite"),
        ("1", TypeError, "reward must be a number or a tensor"),
        (None, TypeError, "needs a reward"),
        (torch.tensor([True, False]), TypeError, "reward must be a real-valued tensor"),
        (torch.ones(3), ValueError, "one value per batch element \\(2\\)"),
    ],
)
def test_reward_rules_reject_bad_rewards_before_any_weight_change(cls, reward, error, match):
    net = TwoLayer()
    rule = cls(net.layers, lr=0.5)
    x = _spikes()
    for t in range(6):
        net(x[t])
        rule.update_state()
    weights = [net.fc1.weight.clone(), net.fc2.weight.clone()]
    with pytest.raises(error, match=match):
        rule.step(reward)
    assert torch.equal(net.fc1.weight, weights[0]) and torch.equal(net.fc2.weight, weights[1])
    rule.step(torch.tensor([1.0, -1.0]))  # a good reward still works afterwards
    assert not torch.equal(net.fc1.weight, weights[0]) or not torch.equal(
        net.fc2.weight, weights[1]
    )


def test_mstdp_reward_as_list_equals_reward_as_tensor():
    a, b = TwoLayer(), TwoLayer()
    rules = [MSTDP(a.layers, lr=0.5), MSTDP(b.layers, lr=0.5)]
    x = _spikes()
    for t in range(6):
        a(x[t]), b(x[t])
        rules[0].step([1.0, -0.5])
        rules[1].step(torch.tensor([1.0, -0.5]))
    assert torch.equal(a.fc1.weight, b.fc1.weight)


# ---------------------------------------------------------------------------
# (1) finite values: neurons and synapses
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: LIFNeuron((3,), thresh=NAN),
        lambda: LIFNeuron((3,), v_rest=torch.tensor([0.0, INF, 0.0])),
        lambda: LIFNeuron((3,), tau_v=NAN, integrator="exact"),
        lambda: ExponentialSynapse((3,), tau_syn=NAN),
        lambda: ConductanceSynapse((3,), e_rev=-INF),
    ],
)
def test_populations_reject_non_finite_parameters_at_construction(build):
    with pytest.raises(ValueError, match="must be finite"):
        build()


def test_parameter_setter_validates_before_changing_anything():
    lif = LIFNeuron((3,), thresh=1.0, tau_v=10.0, integrator="exact")
    for value, error, match in [
        (NAN, ValueError, "thresh must be finite"),
        (torch.tensor([1.0, NAN, 1.0]), ValueError, "thresh must be finite"),
        (INF, ValueError, "thresh must be finite"),
        (torch.ones(4), ValueError, "thresh must broadcast to the per-sample shape \\(3,\\)"),
        ("1", TypeError, "thresh must be a number or a tensor"),
    ]:
        with pytest.raises(error, match=match):
            lif.thresh = value
        assert torch.equal(lif.thresh, torch.tensor(1.0))
    with pytest.raises(ValueError, match="tau_v is a time constant in ms and must be > 0"):
        lif.set_parameter("tau_v", -1.0)
    with pytest.raises(ValueError, match="name must be one of the parameters"):
        lif.set_parameter("thres", 1.0)
    with pytest.raises(ValueError, match="duration_refrac"):
        lif.duration_refrac = 1.5  # not a whole number of steps
    assert int(lif.refrac_steps) == 0 and not lif._has_refractory


def test_parameter_setter_takes_effect_in_the_next_step():
    lif = LIFNeuron((2,), thresh=1.0, v_rest=0.0, tau_v=INF, integrator="impulse")
    lif.thresh = torch.tensor([0.5, 0.7])  # per neuron
    lif.duration_refrac = 2.0  # two steps of dt = 1 ms
    assert int(lif.refrac_steps) == 2 and lif._has_refractory
    # tau_v = inf: no leak, impulse integration adds the input: v = 0.6 after one step
    spikes, _ = lif(torch.full((1, 2), 0.6))
    assert spikes.tolist() == [[1.0, 0.0]]
    spikes, _ = lif(torch.full((1, 2), 0.6))  # neuron 0 refractory; neuron 1 at 1.2
    assert spikes.tolist() == [[0.0, 1.0]]
    syn = ExponentialSynapse((2,), tau_syn=5.0)
    syn.tau_syn = INF  # no decay: the current accumulates
    syn(torch.ones(1, 2))
    assert syn(torch.ones(1, 2)).tolist() == [[2.0, 2.0]]
    with pytest.raises(ValueError, match="tau_syn"):
        syn.tau_syn = NAN
    assert math.isinf(float(syn.tau_syn))


def test_legacy_decay_factor_module_takes_time_constants_in_ms_from_the_setter():
    lif = LIFNeuron((1,), tau_v=0.5, update_type="linear")  # a PySNN 0.1 factor
    assert float(lif.decay("tau_v")) == 0.5
    lif.tau_v = 1.0 / math.log(2.0)  # ms: exp(-dt/tau) = 0.5 again, now from the ms value
    assert float(lif.decay("tau_v")) == pytest.approx(0.5, rel=1e-6)


# ---------------------------------------------------------------------------
# (1) finite values: the network check
# ---------------------------------------------------------------------------
def test_check_finite_names_module_tensor_and_step_and_restores_the_state():
    net = TwoLayer().check_finite()
    assert net.checks_finite
    x = _spikes()
    for t in range(3):
        net(x[t])
    before = _state(net)
    net.gain = NAN
    with pytest.raises(FloatingPointError) as info:
        net(x[3])
    message = str(info.value)
    assert "step 3" in message and "hid.v_cell" in message and "'hid'" in message
    assert "'v_cell'" in message and "8 NaN" in message  # 2 samples x 4 neurons
    _assert_same_state(before, _state(net))
    net.gain = 1.0
    net(x[3])  # the step can be taken again
    assert net.step_index == 4


def test_check_finite_is_off_by_default_and_the_module_default_switches_it(monkeypatch):
    monkeypatch.setattr(pnet, "CHECK_FINITE_DEFAULT", False)  # conftest switches it on
    net = TwoLayer()
    assert not net.checks_finite
    net.gain = NAN
    net(_spikes()[0])  # no check: the NaN goes unnoticed
    assert torch.isnan(net.hid.v_cell).all()
    monkeypatch.setattr(pnet, "CHECK_FINITE_DEFAULT", True)
    assert TwoLayer().checks_finite
    with pytest.raises(TypeError, match="enabled must be a bool"):
        net.check_finite(1)


def test_check_finite_finds_an_in_place_edit_of_a_parameter_and_allows_infinite_tau():
    net = TwoLayer().check_finite()
    net.hid.tau_v = INF  # an integrate-and-fire neuron: no false alarm
    x = _spikes()
    net(x[0])
    with torch.no_grad():
        net.fc2.weight[1, 2] = INF  # in place: the version counter changes
    with pytest.raises(FloatingPointError, match="fc2.weight"):
        net(x[1])
    with torch.no_grad():
        net.fc2.weight[1, 2] = 0.4
        net.out.tau_v.fill_(NAN)  # a time constant may be inf, never NaN
    with pytest.raises(FloatingPointError, match="out.tau_v"):
        net(x[1])


def test_check_finite_does_not_change_the_results():
    checked, plain = TwoLayer().check_finite(), TwoLayer()
    x = _spikes(steps=20)
    assert torch.equal(checked.run(x), plain.run(x))
    assert torch.equal(checked.hid.v_cell, plain.hid.v_cell)


# ---------------------------------------------------------------------------
# (2) inference mode
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [3, "per-synapse"])
def test_steps_after_inference_mode_continue_like_ordinary_steps(delay):
    if delay == "per-synapse":
        delay = torch.arange(24).view(4, 6) % 4
    net = TwoLayer(delay=delay, store_trace=False)
    ref = copy.deepcopy(net)
    x = _spikes(steps=10)
    with torch.inference_mode():
        net.run(x[:5])
    assert net.fc1.spike_history.is_inference()
    outs = [
        net(x[t]) for t in range(5, 10)
    ]  # failed before: in-place update of an inference tensor
    ref_out = ref.run(x)
    assert torch.equal(torch.stack(outs), ref_out[5:])
    assert torch.equal(net.hid.v_cell, ref.hid.v_cell)
    assert not net.fc1.spike_history.is_inference()


def test_inference_mode_steps_after_ordinary_steps():
    net = TwoLayer(store_trace=False)
    ref = copy.deepcopy(net)
    x = _spikes(steps=9)
    out = [net(x[t]) for t in range(3)]
    with torch.inference_mode():
        out += [net(x[t]) for t in range(3, 6)]
    out += [net(x[t]) for t in range(6, 9)]
    assert torch.equal(torch.stack(out), ref.run(x))
    assert torch.equal(net.fc1.spike_history, ref.fc1.spike_history)


def test_rule_state_from_inference_mode_is_updated_afterwards():
    net, ref = TwoLayer(store_trace=False), TwoLayer(store_trace=False)
    rules = [MSTDPET(n.layers, lr=0.1, tau_plus=10.0, tau_minus=10.0) for n in (net, ref)]
    x = _spikes(steps=8)
    with torch.inference_mode():
        for t in range(4):
            net(x[t])
            rules[0].update_state()
    for t in range(4):
        ref(x[t])
        rules[1].update_state()
    for t in range(4, 8):
        for n, rule in zip((net, ref), rules):
            n(x[t])
            rule.update_state()
            rule.step(1.0)
    assert torch.equal(net.fc1.weight, ref.fc1.weight)
    assert torch.equal(rules[0].eligibility("fc1"), rules[1].eligibility("fc1"))


# ---------------------------------------------------------------------------
# (3) modules shared between networks
# ---------------------------------------------------------------------------
def test_a_module_of_another_networks_graph_is_rejected():
    first = TwoLayer()
    second = SNNNetwork()
    with pytest.raises(ValueError, match="the connection Linear \\('fc2', layer 'fc2'\\) "):
        second.add_layer("x", first.fc2, LIFNeuron((3,)), Input((4,)))
    with pytest.raises(ValueError, match="the neuron LIFNeuron .* belongs to another network"):
        second.connect(Input((6,)), Linear(6, 4), first.hid)
    assert not second.layers and not list(second.children())  # nothing registered
    second.out = first.out  # a plain attribute is not a registration
    second.add_layer("y", Linear(4, 3), LIFNeuron((3,)), Input((4,)))


def test_one_neuron_in_several_layers_of_the_same_network():
    net = SNNNetwork()
    a, b, post = Input((2,)), Input((3,)), LIFNeuron((4,), tau_v=INF, integrator="impulse")
    fa, fb = Linear(2, 4), Linear(3, 4)
    with torch.no_grad():
        fa.weight.fill_(0.25)
        fb.weight.fill_(0.5)
    net.connect(a, fa, post)
    net.connect(b, fb, post)  # post receives from two layers: legal
    net(torch.ones(1, 2), torch.ones(1, 3))
    # 2 * 0.25 + 3 * 0.5 = 2.0 >= thresh 1.0: every neuron fires
    assert post.spikes.tolist() == [[1.0] * 4]


def test_a_deep_copy_owns_its_copied_modules():
    net = TwoLayer()
    clone = copy.deepcopy(net)
    clone.add_layer("extra", Linear(4, 3), clone.out, clone.hid)  # its own modules
    other = SNNNetwork()
    with pytest.raises(ValueError, match="belongs to another network \\(TwoLayer\\)"):
        other.add_layer("x", clone.fc1, LIFNeuron((4,)))
    x = _spikes()
    ref = TwoLayer()
    assert torch.equal(copy.deepcopy(ref).run(x), ref.run(x))
    lone = copy.deepcopy(net.fc1)  # a copy of one module belongs to no graph
    other.add_layer("y", lone, LIFNeuron((4,)))


# ---------------------------------------------------------------------------
# (4) atomic steps
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("slot_snapshot", [False, True])
@pytest.mark.parametrize("delay", [3, "per-synapse"])
def test_a_step_that_raises_leaves_every_buffer_as_before(monkeypatch, slot_snapshot, delay):
    if slot_snapshot:  # keep only the overwritten ring-buffer slot, as for large buffers
        monkeypatch.setattr(DelayLine, "SNAPSHOT_WHOLE_NUMEL", 0)
    if delay == "per-synapse":
        delay = torch.arange(24).view(4, 6) % 4
    net = TwoLayer(delay=delay)
    ref = copy.deepcopy(net)
    x = _spikes(steps=10)
    for t in range(5):
        net(x[t])
    assert net.fc1.spike_history.any() and net.hid.trace.any()
    before = _state(net)
    net.bad_shape = True
    with pytest.raises(ValueError, match="Linear"):
        net(x[5])
    _assert_same_state(before, _state(net))
    net.bad_shape = False
    out = [net(x[t]) for t in range(5, 10)]
    assert torch.equal(torch.stack(out), ref.run(x)[5:])
    assert torch.equal(net.hid.complete_trace, ref.hid.complete_trace)


def test_a_failed_first_step_leaves_the_network_fresh():
    net = TwoLayer()
    before = _state(net)
    net.bad_shape = True
    with pytest.raises(ValueError):
        net(_spikes(batch=3)[0])
    _assert_same_state(before, _state(net))
    net.bad_shape = False
    x = _spikes(batch=5)
    assert torch.equal(net.run(x, reset=False), TwoLayer().run(x))  # batch 5 adopted
