"""Conv2dSep (multisynaptic convolution) and Merge against explicit references."""

import math

import pytest
import torch
import torch.nn.functional as F

from pysnn.connection import Conv2d, Conv2dSep, Merge
from pysnn.learning import STDP, FedeSTDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input

DT = 1.0


class Forced(SNNNetwork):
    """pre Input -> connection -> post Input: both spike trains are imposed."""

    def __init__(self, conn, pre_shape, post_shape):
        super().__init__()
        self.pre = Input(pre_shape, DT, 1.0, 20.0, "exact")
        self.conn = conn
        self.post = Input(post_shape, DT, 1.0, 20.0, "exact")
        self.add_layer("conn", self.conn, self.post)

    def forward(self, pre_spikes, post_spikes):
        s, t = self.pre(pre_spikes)
        self.conn(s, t)
        return self.post(post_spikes)


def reference(spikes, kernel, taps, **geometry):
    """Loop over delays: sum_d conv2d(s(t - tau_d), W[:, :, d]) on a zero-padded history."""
    steps = spikes.shape[0]
    out = []
    for t in range(steps):
        total = 0
        for d, tau in enumerate(taps):
            delayed = spikes[t - tau] if t - tau >= 0 else torch.zeros_like(spikes[0])
            total = total + F.conv2d(delayed, kernel[:, :, d], **geometry)
        out.append(total)
    return torch.stack(out)


CASES = [
    dict(separable=False),
    dict(separable=True, temporal_weight=[2.0, -0.5, 0.25]),  # one weight per delay
    dict(separable=True, temporal_weight="per_synapse"),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("geometry", [{}, dict(stride=2, padding=1, groups=2)])
def test_conv2d_sep_equals_loop_over_delays(case, geometry):
    torch.manual_seed(0)
    taps = [0, 2, 3]
    kwargs = dict(case)
    if kwargs.get("temporal_weight") == "per_synapse":
        kwargs["temporal_weight"] = torch.randn(6, 4 // geometry.get("groups", 1), 3)
    conn = Conv2dSep(4, 6, 3, [float(t) for t in taps], **kwargs, **geometry).double()
    with torch.no_grad():
        conn.weight.normal_()
    kernel = conn.kernel().clone()
    if case["separable"]:  # W = S T, built by hand
        temporal = conn.temporal_weight
        temporal = temporal.view(1, 1, -1) if temporal.dim() == 1 else temporal
        manual = conn.weight.unsqueeze(2) * temporal[..., None, None]
        torch.testing.assert_close(kernel, manual, rtol=0, atol=1e-12)
    spikes = (torch.rand(7, 2, 4, 9, 9) < 0.3).double()
    trace = torch.rand(7, 2, 4, 9, 9, dtype=torch.float64)
    ref = reference(spikes, kernel, taps, **geometry)
    stepwise = torch.stack([conn(spikes[t], trace[t])[0] for t in range(7)])
    assert (stepwise - ref).abs().max() < 1e-6
    # the arriving trace: channel c * D + d is trace_c(t - tau_d)
    arriving = conn.pre_trace.view(2, 4, 3, 9, 9)
    for d, tau in enumerate(taps):
        torch.testing.assert_close(arriving[:, :, d], trace[6 - tau])
    # multi-step: same outputs and same state as the steps
    multi = conn.double()
    multi.reset_state()
    out, window_trace = multi.forward_steps(spikes[:4], trace[:4])
    out2, _ = multi.forward_steps(spikes[4:], trace[4:])
    assert (torch.cat([out, out2]) - ref).abs().max() < 1e-6
    assert window_trace.shape == (4, 2, 12, 9, 9)
    torch.testing.assert_close(multi.pre_trace.view(2, 4, 3, 9, 9), arriving)


def test_conv2d_sep_single_zero_delay_is_conv2d_and_bool_spikes():
    torch.manual_seed(1)
    sep = Conv2dSep(2, 3, 3, [0.0], separable=False)
    conv = Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.weight.copy_(sep.weight[:, :, 0])
    x = torch.rand(2, 2, 6, 6) < 0.5
    torch.testing.assert_close(sep(x)[0], conv(x)[0])
    out, _ = sep.forward_steps(x.unsqueeze(0).expand(3, -1, -1, -1, -1))
    torch.testing.assert_close(out[0], conv(x)[0])


def test_receptive_field_sum_and_trace_per_synapse():
    conn = Conv2dSep(1, 2, 2, [0.0, 1.0], separable=False, trace_per_synapse=True).double()
    trace = torch.arange(9, dtype=torch.float64).view(1, 1, 3, 3)
    conn(torch.zeros(1, 1, 3, 3, dtype=torch.float64), trace)
    _, per_synapse = conn(torch.zeros(1, 1, 3, 3, dtype=torch.float64), trace + 100)
    # (N, O, H_out, W_out, C * D * kh * kw): at (0, 0) copies d=0 (now) and d=1 (a step ago)
    assert per_synapse.shape == (1, 2, 2, 2, 8)
    torch.testing.assert_close(
        per_synapse[0, 0, 0, 0],
        torch.tensor([100.0, 101, 103, 104, 0, 1, 3, 4], dtype=torch.float64),
    )
    rf = conn.receptive_field_sum(conn.pre_trace)
    assert rf[0, 0, 0, 0].item() == pytest.approx(408 + 8)


def test_stdp_on_conv2d_sep_matches_hand_derivation():
    """Pre spikes at t=0 and 5, post spike at t=3; delays 0 and 2 (1x1 kernel, 1 pixel)."""
    pre = torch.zeros(8, 1, 1, 1, 1, dtype=torch.float64)
    post = torch.zeros(8, 1, 1, 1, 1, dtype=torch.float64)
    pre[0] = pre[5] = 1.0
    post[3] = 1.0
    e = lambda k: math.exp(-k / 20.0)  # noqa: E731 - trace after k steps (tau 20 ms)
    # copy d=0 sees the pre spikes at 0, 5; copy d=2 at 2, 7.  LTP at t=3 reads the
    # arriving pre trace (e(3) for d=0, e(1) for d=2); LTD when a copy arrives reads
    # the post trace: e(2) at t=5 (d=0), e(4) at t=7 (d=2).
    free = torch.tensor([e(3) - e(2), e(1) - e(4)], dtype=torch.float64)
    for temporal in (None, [2.0, 0.5]):
        separable = temporal is not None
        conn = Conv2dSep(1, 1, 1, [0.0, 2.0], separable=separable, temporal_weight=temporal)
        net = Forced(conn, (1, 1, 1), (1, 1, 1)).double()
        with torch.no_grad():
            conn.weight.fill_(0.5)
        rule = STDP(net.layers, lr=0.1)
        for t in range(8):
            net(pre[t], post[t])
            rule.step()
        if separable:  # dS = sum_d T_d dW_d
            expected = 0.5 + 0.1 * (2.0 * free[0] + 0.5 * free[1])
            assert conn.weight.item() == pytest.approx(expected.item(), abs=1e-12)
        else:
            torch.testing.assert_close(conn.weight.flatten(), 0.5 + 0.1 * free)


def test_fede_stdp_on_conv2d_sep_normalises_over_all_delays():
    torch.manual_seed(3)
    conn = Conv2dSep(1, 1, 2, [0.0, 1.0], separable=False)
    net = Forced(conn, (1, 2, 2), (1, 1, 1)).double()
    with torch.no_grad():
        conn.weight.uniform_(0.3, 0.7)
    w0 = conn.weight.clone()
    lr, w_init, a = 0.1, 0.5, 0.1
    rule = FedeSTDP(net.layers, lr, w_init, a)
    pre = torch.tensor([[1.0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.float64)
    traces = []
    for t in range(3):
        post = torch.ones(1, 1, 1, 1, dtype=torch.float64) * (t == 2)
        net(pre[t].view(1, 1, 2, 2), post)
        traces.append(net.pre.trace.clone())
        rule.step()
    # receptive field of the single neuron at t=2: 2 delays x 2 x 2 pixels
    field = torch.stack([traces[2][0, 0], traces[1][0, 0]])  # (D, 2, 2)
    x_hat = field / field.max()
    c = w0[0, 0] - w_init
    dw = torch.exp(-c) * (torch.exp(x_hat) - a) - torch.exp(c) * (torch.exp(1 - x_hat) - a)
    torch.testing.assert_close(conn.weight[0, 0], w0[0, 0] + lr * dw)


def test_merge_sums_channels_and_is_fixed():
    torch.manual_seed(2)
    merge = Merge(5, im_dims=(4, 4))
    x = torch.rand(3, 5, 4, 4)
    out, _ = merge(x)
    assert out.shape == (3, 1, 4, 4)
    torch.testing.assert_close(out[:, 0], x.sum(1))
    merge.reset_weights("uniform")
    assert torch.all(merge.weight == 1.0)
    steps, _ = merge.forward_steps(x.unsqueeze(0).repeat(2, 1, 1, 1, 1))
    torch.testing.assert_close(steps[1, :, 0], x.sum(1))
    net = Forced(merge, (5, 4, 4), (1, 4, 4))
    net.reset_state()
    rule = STDP(net.layers, lr=0.1)
    net(torch.ones(1, 5, 4, 4), torch.ones(1, 1, 4, 4))
    with pytest.raises(TypeError, match="Merge has fixed unit weights"):
        rule.step()


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="delays"):
        Conv2dSep(1, 1, 3, [])
    with pytest.raises(ValueError, match="delays must be distinct"):
        Conv2dSep(1, 1, 3, [1.0, 1.0])
    with pytest.raises(ValueError, match="delays"):
        Conv2dSep(1, 1, 3, [0.5], dt=1.0)
    with pytest.raises(ValueError, match="delays"):
        Conv2dSep(1, 1, 3, [-1.0])
    with pytest.raises(TypeError, match="delays"):
        Conv2dSep(1, 1, 3, 2.0)
    with pytest.raises(ValueError, match="temporal_weight must have shape"):
        Conv2dSep(1, 1, 3, [0.0, 1.0], temporal_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="temporal_weight is only for separable=True"):
        Conv2dSep(1, 1, 3, [0.0, 1.0], separable=False, temporal_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="temporal_weight must be finite"):
        Conv2dSep(1, 1, 3, [0.0, 1.0], temporal_weight=[1.0, float("nan")])
    with pytest.raises(TypeError, match="separable"):
        Conv2dSep(1, 1, 3, [0.0], separable=1)
    conn = Conv2dSep(2, 1, 3, [0.0, 1.0])
    with pytest.raises(ValueError, match="Conv2dSep: spikes must have shape"):
        conn(torch.zeros(1, 3, 5, 5))
    with pytest.raises(TypeError, match="delays"):
        conn.set_delay(2.0)
    with pytest.raises(ValueError, match="Merge: delay"):
        Merge(2, delay=torch.zeros(1, 2, 1, 1))


def test_state_dict_resumes_the_delay_history():
    torch.manual_seed(5)
    make = lambda: Conv2dSep(2, 3, 3, [0.0, 1.0, 3.0], temporal_weight=[1.0, 0.5, 0.25])  # noqa
    a = make()
    x = (torch.rand(6, 1, 2, 6, 6) < 0.4).float()
    for t in range(3):
        a(x[t])
    b = make()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.temporal_weight, a.temporal_weight)
    for t in range(3, 6):
        torch.testing.assert_close(b(x[t])[0], a(x[t])[0])
