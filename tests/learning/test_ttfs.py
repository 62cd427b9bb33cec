"""Time-to-first-spike tools and the LTP-window rules, against hand-derived values.

fire_once neurons, first-spike competition (pysnn.competition), DoG filters
(pysnn.dog), first-spike max pooling, KheradpishehSTDP and ShresthaSTDP.
"""

import math

import pytest
import torch

from pysnn.competition import as_feature_maps, first_spike_key, k_winners, position_wta
from pysnn.connection import Conv2d, Linear, MaxPool2d
from pysnn.dog import DoGFilter, dog_kernel, local_normalization
from pysnn.learning import KheradpishehSTDP, ShresthaSTDP
from pysnn.network import Layer
from pysnn.neuron import IFNeuron

T = torch.tensor
NEG = -math.inf


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# -- fire_once ------------------------------------------------------------------------
def test_fire_once_spikes_once_per_sample_and_keeps_the_potential():
    n = IFNeuron((3,), thresh=1.0, fire_once=True)
    inputs = [T([[0.6, 1.2, 0.0], [1.0, 0.0, 0.0]]), T([[0.6, 1.0, 0.0], [1.0, 0.0, 0.5]])]
    inputs.append(T([[0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]))
    spikes = [n(x)[0] for x in inputs]
    assert spikes[0].tolist() == [[0, 1, 0], [1, 0, 0]]
    assert spikes[1].tolist() == [[1, 0, 0], [0, 0, 0]]
    assert spikes[2].tolist() == [[0, 0, 0], [0, 0, 1]]
    # no reset, no integration after the spike: the potential at the spike stays
    assert n.v_cell.tolist() == [[1.2, 1.2, 0.0], [1.0, 0.0, 1.0]]
    n.reset_state()
    assert n.v_cell.abs().sum() == 0 and n.refrac_counts.abs().sum() == 0
    assert n(T([[1.0, 0.0, 0.0]]))[0].tolist() == [[1, 0, 0]]


def test_fire_once_default_off_and_checked():
    lif = IFNeuron((2,), thresh=1.0)
    assert lif.fire_once is False
    for _ in range(2):
        assert lif(T([[1.0, 0.0]]))[0].tolist() == [[1, 0]]
    with pytest.raises(ValueError, match="fire_once"):
        IFNeuron((2,), fire_once="yes")


# -- competition --------------------------------------------------------------------
def test_first_spike_key_ranks_time_then_potential():
    key = first_spike_key(T([0, 1, -1, 1]), T([1.0, 5.0, 3.0, 4.0]))
    # span = 5 - 1 + 1 = 5: key = V - 5 t
    assert key.tolist() == [1.0, 0.0, NEG, -1.0]
    with pytest.raises(ValueError, match="same shape"):
        first_spike_key(T([0, 1]), T([1.0]))


def test_position_wta_keeps_the_best_map_per_position():
    key = T([[[[1.0, NEG]], [[2.0, NEG]], [[2.0, 0.5]]]])  # (1, 3, 1, 2)
    keep = position_wta(key)
    assert keep[0, :, 0, 0].tolist() == [False, True, False]  # tie 2.0: lowest map
    assert keep[0, :, 0, 1].tolist() == [False, False, True]


def test_k_winners_one_per_map_with_lateral_inhibition():
    key = torch.full((2, 2, 1, 5), NEG)
    # sample 0: map 0 peaks at x=0 (9) and x=4 (8); map 1 at x=1 (7) and x=4 (6)
    key[0, 0, 0, 0], key[0, 0, 0, 4], key[0, 1, 0, 1], key[0, 1, 0, 4] = 9.0, 8.0, 7.0, 6.0
    key[1, 1, 0, 2] = 1.0
    # radius 1: the winner (map 0, x=0) blocks map 0 and x in {0, 1}: map 1 wins at x=4
    win = k_winners(key, 2, radius=1)
    assert win[0].nonzero().tolist() == [[0, 0, 0], [1, 0, 4]]
    assert win[1].nonzero().tolist() == [[1, 0, 2]]
    # no inhibition: map 1's best (x=1); k per sample as a tensor
    win = k_winners(key, T([2, 0]), radius=None)
    assert win[0].nonzero().tolist() == [[0, 0, 0], [1, 0, 1]]
    assert not win[1].any()
    # radius 0: N maps of one position compete winner-take-all
    flat = as_feature_maps(T([[3.0, 5.0, 4.0]]))
    assert k_winners(flat, 3, radius=0).flatten().tolist() == [False, True, False]
    with pytest.raises(ValueError, match="radius"):
        k_winners(key, 1, radius=-1)
    with pytest.raises(ValueError, match="feature maps"):
        k_winners(T([1.0, 2.0]), 1)


# -- DoG -----------------------------------------------------------------------------
def test_dog_kernel_hand_values():
    k = dog_kernel(3, 1.0, 2.0)

    def g(r2):
        return math.exp(-r2 / 2) / (2 * math.pi) - math.exp(-r2 / 8) / (8 * math.pi)

    raw = torch.tensor([[g(2), g(1), g(2)], [g(1), g(0), g(1)], [g(2), g(1), g(2)]])
    raw = raw - raw.mean()
    torch.testing.assert_close(k, raw / raw.abs().max(), rtol=0, atol=1e-12)
    assert abs(float(k.sum())) < 1e-12 and float(k[1, 1]) == 1.0
    off = dog_kernel(3, 2.0, 1.0)
    torch.testing.assert_close(off, -raw / raw.abs().max(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="odd"):
        dog_kernel(4, 1.0, 2.0)
    with pytest.raises(ValueError, match="differ"):
        dog_kernel(3, 1.0, 1.0)


def test_dog_filter_uniform_image_and_spot():
    dog = DoGFilter(3, [(1.0, 2.0), (2.0, 1.0)], threshold=0.5)
    flat = dog(torch.ones(1, 5, 5))
    assert flat.shape == (1, 2, 5, 5) and flat[:, :, 1:4, 1:4].abs().max() < 1e-12
    spot = torch.zeros(1, 5, 5)
    spot[0, 2, 2] = 1.0
    out = dog(spot)
    assert float(out[0, 0, 2, 2]) == 1.0  # on-centre channel: the kernel's peak
    assert float(out[0, 1].max()) < 0.5  # off-centre responses of a bright spot are weak
    with pytest.raises(ValueError, match="x must be"):
        dog(torch.ones(1, 2, 5, 5))


def test_local_normalization_hand_values():
    x = T([[[[1.0, 2.0, 3.0]]]])
    # radius 1, zero padding: window means over 1 x 3 = 3 values of the padded row
    # (3x3 windows with the zero rows above and below): sums 3, 6, 5 over 9 cells
    y = local_normalization(x, 1)
    torch.testing.assert_close(y, T([[[[3.0, 3.0, 27 / 5]]]]), rtol=0, atol=1e-12)


# -- first-spike pooling ---------------------------------------------------------------
def test_max_pool_first_spike_fires_once_at_the_earliest_spike():
    pool = MaxPool2d(2, first_spike=True)
    steps = torch.zeros(3, 2, 1, 2, 2)
    steps[0, 0, 0, 0, 0] = steps[1, 0, 0, 1, 1] = 1  # sample 0: spikes at t=0 and t=1
    steps[1, 1, 0, 0, 1] = steps[2, 1, 0, 1, 0] = 1  # sample 1: spikes at t=1 and t=2
    out = [pool(s)[0].flatten().tolist() for s in steps]
    assert out == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    pool.reset_state()
    assert pool(steps[1])[0].flatten().tolist() == [1.0, 1.0]
    plain = MaxPool2d(2)
    assert [plain(s)[0].flatten().tolist() for s in steps] == [[1, 0], [1, 1], [0, 1]]
    with pytest.raises(TypeError, match="first_spike"):
        MaxPool2d(2, first_spike=1)


# -- KheradpishehSTDP -----------------------------------------------------------------
def _linear_layer(weight, thresh):
    fc = Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        fc.weight.copy_(weight)
    return Layer("fc", fc, IFNeuron((weight.shape[0],), thresh=thresh, fire_once=True))


def _dw(w, ltp):
    """Hand formula: +0.004 w(1-w) where ltp, else -0.003 w(1-w)."""
    return torch.where(ltp, 0.004 * w * (1 - w), -0.003 * w * (1 - w))


@pytest.mark.parametrize("k", [1, 2])
def test_kheradpisheh_linear_batched_across_steps(k):
    w0 = T([[0.5, 0.2, 0.9], [0.3, 0.6, 0.1]])
    layer = _linear_layer(w0, 0.5)
    rule = KheradpishehSTDP(layer, k=k, radius=None, reduction="sum")
    pre = T([[[1.0, 0, 0], [0, 0, 1]], [[0, 1.0, 0], [0, 0, 0]], [[0, 0, 1.0], [0, 0, 0]]])
    for s in pre:
        layer.neuron(layer.connection(s)[0])
        rule.step()
    # sample 0: neuron 0 fires at t=0 (pre 0 only), neuron 1 at t=1 (pre 0 and 1 before)
    # sample 1: t=0 input 0.9 / 0.1: neuron 0 fires (pre 2 only); neuron 1 never
    dw = _dw(w0[0], T([True, False, False])) + _dw(w0[0], T([False, False, True]))
    expected = w0.clone()
    expected[0] += dw
    if k == 2:
        expected[1] += _dw(w0[1], T([True, True, False]))
    torch.testing.assert_close(layer.connection.weight.detach(), expected, rtol=0, atol=1e-12)
    assert rule.state["fc"]["n_winners"].tolist() == [k, 1]
    # a new image: the competition and the pre-spike memory start afresh
    rule.reset_state()
    assert rule.state["fc"]["since_pre"].numel() == 0


def _conv_layer():
    conv = Conv2d(1, 2, 2)
    with torch.no_grad():
        conv.weight[0] = 0.5
        conv.weight[1, 0] = T([[0.3, 0.4], [0.6, 0.8]])
    return Layer("conv", conv, IFNeuron((2, 2, 2), thresh=1.0, fire_once=True))


@pytest.mark.parametrize(
    "k, radius, both", [(1, 0, False), (2, 0, False), (2, None, True), (2, 1, False)]
)
def test_kheradpisheh_conv2d_winners_and_receptive_fields(k, radius, both):
    layer = _conv_layer()
    w0 = layer.connection.weight.detach().clone()
    rule = KheradpishehSTDP(layer, k=k, radius=radius, reduction="sum")
    x = torch.zeros(2, 1, 3, 3)
    x[0, 0, 0, 0] = x[0, 0, 0, 1] = x[0, 0, 1, 0] = 1.0
    x[1, 0, 1:, 1:] = 1.0
    layer.neuron(layer.connection(x)[0])
    rule.step()
    # sample 0: potentials at (0,0) are 1.5 (map 0) and 1.3 (map 1), nothing else fires:
    # map 0 wins; map 1 also wins there only without lateral inhibition (radius None)
    # sample 1: map 1 at (1,1) has 2.1, the largest.  With k=2 map 0 is second: without
    # inhibition at (1,1) (2.0); with radius 0 (1,1) is taken and (0,1) and (1,0) tie at
    # 1.0: (0,1) comes first in flat order; with radius 1 every position is inhibited
    expected = w0.clone()
    expected[0, 0] += _dw(w0[0, 0], T([[True, True], [True, False]]))
    if both:
        expected[1, 0] += _dw(w0[1, 0], T([[True, True], [True, False]]))
    expected[1, 0] += _dw(w0[1, 0], torch.ones(2, 2, dtype=torch.bool))
    if k == 2 and radius is None:
        expected[0, 0] += _dw(w0[0, 0], torch.ones(2, 2, dtype=torch.bool))
    if k == 2 and radius == 0:
        # map 0 at (0,1) in sample 1: patch x[0:2, 1:3] = [[0, 0], [1, 1]]
        expected[0, 0] += _dw(w0[0, 0], T([[False, False], [True, True]]))
    torch.testing.assert_close(layer.connection.weight.detach(), expected, rtol=0, atol=1e-12)
    assert rule.last_winners["conv"].shape == (2, 2, 2, 2)


def test_kheradpisheh_mean_reduction_and_bad_input():
    layer = _conv_layer()
    w0 = layer.connection.weight.detach().clone()
    rule = KheradpishehSTDP(layer, lr=2.0, k=1)  # mean over the batch of 2: lr / 2 = 1
    x = torch.zeros(2, 1, 3, 3)
    x[1, 0, 1:, 1:] = 1.0
    layer.neuron(layer.connection(x)[0])
    rule.step()
    expected = w0.clone()
    expected[1, 0] += _dw(w0[1, 0], torch.ones(2, 2, dtype=torch.bool))
    torch.testing.assert_close(layer.connection.weight.detach(), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="k must be"):
        KheradpishehSTDP(_conv_layer(), k=0)
    with pytest.raises(TypeError, match="radius"):
        KheradpishehSTDP(_conv_layer(), radius=1.5)
    with pytest.raises(TypeError, match="potential"):
        KheradpishehSTDP(_conv_layer(), potential="nope")
    with pytest.raises(ValueError, match="a_minus"):
        KheradpishehSTDP(_conv_layer(), a_minus=-0.003)
    layer = _conv_layer()
    with pytest.raises(ValueError, match="k must be"):  # parameter groups are checked too
        KheradpishehSTDP([{"layers": [layer], "k": 0}])


# -- ShresthaSTDP ---------------------------------------------------------------------
def _drive(layer, rule, pre, post_input):
    for s, x in zip(pre, post_input):
        layer.connection(s)
        layer.neuron(x)
        rule.step()


def test_shrestha_linear_window_and_exponential_weight_dependence():
    fc = Linear(2, 1)
    with torch.no_grad():
        fc.weight.copy_(T([[0.0, 0.5]]))
    layer = Layer("fc", fc, IFNeuron((1,), thresh=1.0))
    rule = ShresthaSTDP(layer, lr=0.1, a_plus=1.0, a_minus=0.5, tau_ltp=1.0)
    pre = T([[[1.0, 0], [0, 1]], [[0, 1.0], [0, 0]], [[0, 0.0], [0, 0]]])
    post = T([[[0.0], [0.0]], [[1.0], [1.0]], [[1.0], [0.0]]])
    _drive(layer, rule, pre[:2], post[:2])
    # t=1, both samples spike: sample 0 has pre 0 (1 ms ago) and pre 1 (now) in the window;
    # sample 1 has pre 1 (1 ms ago) only: syn 0 -> 1 LTP + 1 LTD, syn 1 -> 2 LTP; mean: / 2
    w1 = T([[0.05 * (1.0 - 0.5), 0.05 * 2 * math.exp(-0.5) + 0.5]])
    torch.testing.assert_close(fc.weight.detach(), w1, rtol=0, atol=1e-12)
    _drive(layer, rule, pre[2:], post[2:])
    # t=2, sample 0 spikes: pre 0 is 2 ms old (LTD), pre 1 1 ms old (LTP)
    w2 = w1 + 0.05 * T([[-0.5 * math.exp(w1[0, 0]), math.exp(-w1[0, 1])]])
    torch.testing.assert_close(fc.weight.detach(), w2, rtol=0, atol=1e-12)


def test_shrestha_conv2d_batched_matches_hand_values():
    conv = Conv2d(1, 1, 2)
    w0 = T([[[[0.0, 1.0], [-1.0, 0.5]]]])
    with torch.no_grad():
        conv.weight.copy_(w0)
    layer = Layer("conv", conv, IFNeuron((1, 1, 1), thresh=1.0))
    rule = ShresthaSTDP(layer, lr=1.0, a_plus=0.2, a_minus=0.1, tau_ltp=0.0, reduction="sum")
    x = torch.zeros(2, 1, 2, 2)
    x[0, 0, 0, 0] = x[1, 0, 1, 1] = 1.0
    _drive(layer, rule, [x], [T([[[[1.0]]], [[[1.0]]]])])
    # tau 0: only simultaneous pre spikes are in the window; each synapse: one LTP and one
    # LTD for the two corners, two LTDs for the others
    ltp = 0.2 * torch.exp(-w0)
    ltd = 0.1 * torch.exp(w0)
    corners = T([[[[1.0, 0.0], [0.0, 1.0]]]])
    expected = w0 + corners * (ltp - ltd) + (1 - corners) * (-2 * ltd)
    torch.testing.assert_close(conv.weight.detach(), expected, rtol=0, atol=1e-12)


def test_shrestha_converges_to_its_fixed_point_without_bounds():
    fc = Linear(1, 1)
    with torch.no_grad():
        fc.weight.fill_(0.0)
    layer = Layer("fc", fc, IFNeuron((1,), thresh=1.0))
    rule = ShresthaSTDP(layer, lr=0.05, a_plus=1.0, a_minus=1.0, tau_ltp=0.0)
    # the presynaptic neuron is in the window at 3 of every 4 postsynaptic spikes
    for i in range(800):
        _drive(layer, rule, [T([[float(i % 4 != 0)]])], [T([[1.0]])])
    w_star = 0.5 * math.log(3.0)
    assert abs(float(fc.weight) - w_star) < 0.05
    with pytest.raises(ValueError, match="tau_ltp"):
        ShresthaSTDP(layer, tau_ltp=-1.0)


def test_kheradpisheh_state_dict_resumes_the_competition():
    w0 = T([[0.5, 0.2, 0.9], [0.3, 0.6, 0.1]])
    pre = T([[[1.0, 0, 0]], [[0, 1.0, 0]]])
    runs = []
    for resume in (False, True):
        layer = _linear_layer(w0, 0.5)
        rule = KheradpishehSTDP(layer, k=2, radius=None)
        layer.neuron(layer.connection(pre[0])[0])
        rule.step()
        if resume:  # a fresh rule loads the state of the running one
            saved = rule.state_dict()
            rule = KheradpishehSTDP(layer, k=2, radius=None)
            rule.load_state_dict(saved)
        layer.neuron(layer.connection(pre[1])[0])
        rule.step()
        runs.append(layer.connection.weight.detach().clone())
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_ltp_window_rules_on_sparse_match_dense():
    from pysnn.connection import Sparse

    w0 = T([[0.5, 0.2, 0.9], [0.3, 0.6, 0.1]])
    pre = T([[[1.0, 0, 0], [0, 0, 1]], [[0, 1.0, 0], [0, 0, 0]], [[0, 0, 1.0], [0, 0, 0]]])
    out = []
    for conn in (None, Sparse.from_dense(w0)):
        layer = _linear_layer(w0, 0.5)
        if conn is not None:
            layer = Layer("fc", conn, layer.neuron)
        rules = [KheradpishehSTDP(layer, k=2, radius=None), ShresthaSTDP(layer, tau_ltp=1.0)]
        for s in pre:
            layer.neuron(layer.connection(s)[0])
            for rule in rules:
                rule.step()
        c = layer.connection
        out.append(c.to_dense() if conn is not None else c.weight.detach())
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=1e-12)
