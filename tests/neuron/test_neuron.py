"""Tests of :mod:`pysnn.neuron` against an independent step-by-step reference.

The reference below re-derives the equations of DESIGN.md (section 1) and the
docstrings with plain torch element-wise operations; it does not call
:mod:`pysnn.functional`.  Step order (PySNN 0.1): sum the inputs -> voltage
update gated by the refractory counter of the previous step -> spike where
v >= thresh (a refractory neuron cannot spike) -> trace update -> (adaptive:
threshold update with the batch-mean spikes) -> refractory bookkeeping ->
reset of the spiking cells.
"""

import contextlib
import copy
import io
import math

import pytest
import torch

from pysnn.neuron import (
    AdaptiveLIFNeuron,
    DecayFactor,
    FedeNeuron,
    IFNeuron,
    Input,
    IzhikevichNeuron,
    LIFNeuron,
)

ATOL = 1e-6
RTOL = 1e-6


# ---------------------------------------------------------------------------
# Independent reference
# ---------------------------------------------------------------------------
def _p(value, like, param_dtype=torch.float32):
    """A hyper-parameter as the module stores it: built in the default dtype
    (float32 unless changed) and then cast to the dtype of the state."""
    return torch.as_tensor(value, dtype=param_dtype).to(like.dtype)


def ref_trace(trace, s, alpha_t, tau_t, dt, update_type, trace_mode):
    """Trace update written out for each update type and mode."""
    if update_type == "linear":
        decay = tau_t  # a decay factor per step
        if trace_mode == "saturating":
            return torch.where(s > 0, alpha_t + 0 * trace, trace * decay)
        return trace * decay + alpha_t * s
    if update_type == "exponential":
        if trace_mode == "saturating":
            return torch.where(s > 0, alpha_t + 0 * trace, trace * (1 - dt / tau_t))
        return trace + dt / tau_t * (-trace + alpha_t * s)
    decay = torch.exp(-dt / tau_t)
    if trace_mode == "saturating":
        return torch.where(s > 0, alpha_t + 0 * trace, trace * decay)
    return trace * decay + alpha_t * s


def reference_input(inputs, alpha_t, tau_t, dt, update_type="linear", trace_mode="additive"):
    like = inputs[0].to(torch.get_default_dtype()) if inputs[0].dtype == torch.bool else inputs[0]
    alpha_t, tau_t = _p(alpha_t, like), _p(tau_t, like)
    trace = torch.zeros_like(like)
    out = {"spikes": [], "trace": []}
    for x in inputs:
        s = x.to(like.dtype)
        trace = ref_trace(trace, s, alpha_t, tau_t, dt, update_type, trace_mode)
        out["spikes"].append(s)
        out["trace"].append(trace)
    return out


def reference_neuron(
    kind,
    inputs,
    *,
    thresh=1.0,
    v_rest=0.0,
    alpha_v=1.0,
    alpha_t=1.0,
    dt=1.0,
    refrac_steps=0,
    tau_v=None,
    tau_t=0.95,
    update_type="linear",
    reset="rest",
    trace_mode="additive",
    alpha_thresh=None,
    tau_thresh=None,
    training=True,
    pre_traces=None,
    a=None,
    b=None,
    d=None,
    param_dtype=torch.float32,
):
    """Simulate ``kind`` in {"if", "lif", "adaptive", "fede", "izhikevich"}.

    ``inputs`` is a list of summed input tensors ``(batch, *features)``.
    Returns per-step lists of spikes, voltage, trace (and threshold).
    """
    like = inputs[0]

    def p(value):
        return _p(value, like, param_dtype)

    thresh, v_rest, alpha_v, alpha_t, tau_t = map(p, (thresh, v_rest, alpha_v, alpha_t, tau_t))
    # dt stays a Python float (the modules keep it as one)
    refrac_steps = torch.as_tensor(refrac_steps, dtype=torch.int64)
    if tau_v is not None:
        tau_v = p(tau_v)
    features = like.shape[1:]
    v = torch.zeros_like(like) + v_rest
    trace = torch.zeros_like(like)
    r = torch.zeros(like.shape, dtype=torch.int64)
    theta = torch.zeros(features, dtype=like.dtype) + thresh  # adaptive threshold
    if kind == "izhikevich":
        a, b, d = p(a), p(b), p(d)
        u = b * v
    out = {"spikes": [], "v": [], "trace": [], "thresh": [], "refrac": [], "u": []}
    for step, x in enumerate(inputs):
        free = r == 0  # refractory state of the previous step
        if kind == "if":
            v_new = torch.where(free, v + alpha_v * x, v)
        elif kind in ("lif", "adaptive"):
            if update_type == "linear":
                # a refractory voltage is held under every integrator (PySNN 0.1 clamped
                # it to v_rest, the same after a reset to rest, the only reset of 0.1)
                v_new = torch.where(free, v_rest + (v - v_rest) * tau_v + alpha_v * x, v)
            elif update_type == "exponential":
                v_new = torch.where(free, v + dt / tau_v * (-(v - v_rest) + alpha_v * x), v)
            else:
                v_inf = v_rest + alpha_v * x
                v_new = torch.where(free, v_inf + (v - v_inf) * torch.exp(-dt / tau_v), v)
        elif kind == "fede":
            drive = -(v - v_rest) + alpha_v * (x - pre_traces[step])
            v_new = torch.where(free, v + dt / tau_v * drive, v)
        elif kind == "izhikevich":
            dv = 0.04 * v**2 + 5 * v + 140 - u + alpha_v * x
            v_new = torch.where(free, v + dt * dv, v)
            u = u + dt * a * (b * v - u)  # uses the voltage of the previous step
        else:
            raise AssertionError(kind)
        th = theta if kind == "adaptive" else thresh
        s = ((v_new >= th) & free).to(like.dtype)
        trace = ref_trace(trace, s, alpha_t, tau_t, dt, update_type, trace_mode)
        if kind == "adaptive" and training:
            sbar = s.mean(0)
            a_th, t_th = p(alpha_thresh), p(tau_thresh)
            if update_type == "linear":
                theta = thresh + (theta - thresh) * t_th + a_th * sbar
            elif update_type == "exponential":
                theta = theta + dt / t_th * (-(theta - thresh) + a_th * sbar)
            else:
                theta = thresh + (theta - thresh) * torch.exp(-dt / t_th) + a_th * sbar
        if kind == "izhikevich":
            u = u + d * s
        r = torch.clamp(r - 1, min=0) + s.to(torch.int64) * refrac_steps
        if reset == "rest":
            v = torch.where(s > 0, v_rest + 0 * v_new, v_new)
        else:
            v = v_new - s * (th - v_rest)
        out["spikes"].append(s)
        out["v"].append(v)
        out["trace"].append(trace)
        out["thresh"].append(theta.clone())
        out["refrac"].append(r)
        if kind == "izhikevich":
            out["u"].append(u)
    return out


def run_module(neuron, inputs, pre_traces=None):
    """Run a pysnn neuron over ``inputs`` and record its state after every step."""
    out = {"spikes": [], "v": [], "trace": [], "thresh": [], "refrac": [], "u": []}
    for step, x in enumerate(inputs):
        if pre_traces is None:
            s, tr = neuron(x)
        else:
            s, tr = neuron(x, pre_traces[step])
        assert s is neuron.spikes and tr is neuron.trace
        out["spikes"].append(s.detach().cpu().clone())
        out["trace"].append(tr.detach().cpu().clone())
        if hasattr(neuron, "v_cell"):
            out["v"].append(neuron.v_cell.detach().cpu().clone())
            out["refrac"].append(neuron.refrac_counts.cpu().clone())
        if hasattr(neuron, "thresh_adaptive"):
            out["thresh"].append(neuron.thresh_adaptive.detach().cpu().clone())
        if hasattr(neuron, "u"):
            out["u"].append(neuron.u.detach().cpu().clone())
    return out


def assert_same(got, ref, atol=ATOL, rtol=RTOL, keys=("spikes", "v", "trace")):
    for key in keys:
        assert len(got[key]) == len(ref[key]), key
        for step, (g, r) in enumerate(zip(got[key], ref[key])):
            if key in ("spikes", "refrac"):
                assert torch.equal(g, r.to(g.dtype)), f"{key} differ at step {step}"
            else:
                torch.testing.assert_close(
                    g, r.to(g.dtype), atol=atol, rtol=rtol, msg=f"{key} at step {step}"
                )


def assert_active(spikes):
    """The test exercises something: some, but not all, cells spike."""
    total = torch.stack(spikes).sum().item()
    assert 0 < total < torch.stack(spikes).numel()


@contextlib.contextmanager
def default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def random_inputs(steps, shape, scale=1.0, offset=0.0, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(shape, generator=gen, dtype=dtype) * scale + offset for _ in range(steps)]


def to(xs, device):
    return [x.to(device) for x in xs]


T = 25
SHAPE = (4, 10)


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "update_type, tau_t", [("linear", 0.8), ("exponential", 4.0), ("exact", 4.0)]
)
@pytest.mark.parametrize("trace_mode", ["additive", "saturating"])
def test_input_trace(update_type, tau_t, trace_mode, device):
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.rand(SHAPE, generator=gen) < 0.3 for _ in range(T)]
    inp = Input((10,), 1.0, 0.7, tau_t, update_type, trace_mode=trace_mode).to(device)
    got = run_module(inp, to(inputs, device))
    ref = reference_input(inputs, 0.7, tau_t, 1.0, update_type, trace_mode)
    assert_same(got, ref, keys=("spikes", "trace"))
    assert got["spikes"][0].dtype == torch.float32
    assert_active(got["spikes"])


def test_input_float_spikes_dt_and_list():
    gen = torch.Generator().manual_seed(2)
    a = [(torch.rand(3, 5, generator=gen) < 0.2).float() for _ in range(T)]
    b = [(torch.rand(3, 5, generator=gen) < 0.2).float() for _ in range(T)]
    inp = Input((5,), dt=0.5, alpha_t=1.0, tau_t=3.0, update_type="exponential")
    got = run_module(inp, [[x, y] for x, y in zip(a, b)])
    ref = reference_input([x + y for x, y in zip(a, b)], 1.0, 3.0, 0.5, "exponential")
    assert_same(got, ref, keys=("spikes", "trace"))


def test_input_trace_hand_values():
    inp = Input((1,), dt=1.0, alpha_t=1.0, tau_t=DecayFactor(0.5))
    traces = [inp(torch.tensor([[s]]))[1].item() for s in (True, False, True, False)]
    assert traces == [1.0, 0.5, 1.25, 0.625]


# ---------------------------------------------------------------------------
# Spiking neurons against the reference
# ---------------------------------------------------------------------------
LIF_CASES = [
    # update_type, tau_v, tau_t, scale
    ("linear", 0.8, 0.9, 0.6),
    ("exponential", 5.0, 4.0, 3.0),
    ("exact", 5.0, 4.0, 3.0),
]


def test_if_neuron(device):
    inputs = random_inputs(T, SHAPE, scale=0.5, offset=-0.1)
    n = IFNeuron((10,), 1.0, 0.0, 0.8, 1.0, 1.0, 0.0, 0.9).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron("if", inputs, thresh=1.0, alpha_v=0.8, tau_t=0.9)
    assert_same(got, ref)
    assert_active(got["spikes"])


def test_if_neuron_refractory_and_subtract(device):
    inputs = random_inputs(T, SHAPE, scale=1.5, seed=3)
    n = IFNeuron((10,), 1.0, -0.1, 1.0, 1.0, 1.0, 2.0, 0.9, reset="subtract").to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron("if", inputs, v_rest=-0.1, refrac_steps=2, tau_t=0.9, reset="subtract")
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    assert_active(got["spikes"])
    # subtract keeps the overshoot: some voltages after a spike are above v_rest
    spikes = torch.stack(got["spikes"])
    volts = torch.stack(got["v"])
    assert (volts[spikes > 0] > -0.1 + 1e-3).any()
    # no spike during the 2 refractory steps (v may stay above thresh there)
    assert_refractory_respected(spikes, 2)
    assert ((volts[:-1] >= 1.0) & (spikes[1:] == 0)).any()


def assert_refractory_respected(spikes, n_steps):
    flat = spikes.reshape(spikes.shape[0], -1)
    for cell in range(flat.shape[1]):
        times = torch.nonzero(flat[:, cell]).flatten().tolist()
        assert all(t2 - t1 > n_steps for t1, t2 in zip(times, times[1:])), (cell, times)


@pytest.mark.parametrize("update_type, tau_v, tau_t, scale", LIF_CASES)
def test_lif_neuron(update_type, tau_v, tau_t, scale, device):
    inputs = random_inputs(T, SHAPE, scale=scale, seed=4)
    n = LIFNeuron((10,), 1.0, 0.0, 1.0, 0.5, 1.0, 0.0, tau_v, tau_t, update_type).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron(
        "lif", inputs, alpha_t=0.5, tau_v=tau_v, tau_t=tau_t, update_type=update_type
    )
    assert_same(got, ref)
    assert_active(got["spikes"])


@pytest.mark.parametrize("update_type, tau_v, tau_t, scale", LIF_CASES)
def test_lif_neuron_refractory_dt1(update_type, tau_v, tau_t, scale, device):
    inputs = random_inputs(T, SHAPE, scale=scale * 1.5, seed=5)
    kw = dict(update_type=update_type, tau_v=tau_v, tau_t=tau_t)
    n = LIFNeuron((10,), 1.0, -0.2, 1.0, 1.0, 1.0, 2.0, **kw).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron("lif", inputs, v_rest=-0.2, refrac_steps=2, **kw)
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    assert_active(got["spikes"])
    assert_refractory_respected(torch.stack(got["spikes"]), 2)
    # the refractory period changes the result (so it is exercised)
    ref0 = reference_neuron("lif", inputs, v_rest=-0.2, refrac_steps=0, **kw)
    assert not torch.equal(torch.stack(ref0["spikes"]), torch.stack(ref["spikes"]))


@pytest.mark.parametrize("update_type", ["exponential", "exact"])
def test_lif_neuron_refractory_dt_01(update_type, device):
    # 0.3 ms at dt = 0.1 ms is 3 steps although 0.3 % 0.1 != 0
    inputs = random_inputs(40, SHAPE, scale=4.0, seed=6)
    kw = dict(update_type=update_type, tau_v=1.0, tau_t=2.0, dt=0.1)
    n = LIFNeuron((10,), 1.0, 0.0, 1.0, 1.0, duration_refrac=0.3, **kw).to(device)
    assert n.refrac_steps.item() == 3
    got = run_module(n, to(inputs, device))
    ref = reference_neuron("lif", inputs, refrac_steps=3, **kw)
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    assert_active(got["spikes"])
    assert_refractory_respected(torch.stack(got["spikes"]), 3)


@pytest.mark.parametrize("update_type, tau_v, tau_t, scale", LIF_CASES)
def test_lif_subtract_and_saturating_trace(update_type, tau_v, tau_t, scale, device):
    inputs = random_inputs(T, SHAPE, scale=scale, seed=7)
    kw = dict(
        update_type=update_type, tau_v=tau_v, tau_t=tau_t, reset="subtract", trace_mode="saturating"
    )
    n = LIFNeuron((10,), 0.8, 0.1, 1.2, 0.6, 1.0, 1.0, **kw).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron(
        "lif", inputs, thresh=0.8, v_rest=0.1, alpha_v=1.2, alpha_t=0.6, refrac_steps=1, **kw
    )
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    assert_active(got["spikes"])
    # saturating: the trace never exceeds alpha_t and equals it right after a spike
    traces = torch.stack(got["trace"])
    spikes = torch.stack(got["spikes"])
    assert traces.max().item() <= 0.6 + 1e-7
    assert torch.all(traces[spikes > 0] == 0.6)


@pytest.mark.parametrize("update_type, tau_v, tau_t, scale", LIF_CASES)
def test_lif_per_neuron_parameters(update_type, tau_v, tau_t, scale, device):
    n_cells = 6
    thresh = torch.linspace(0.5, 1.5, n_cells)
    v_rest = torch.linspace(-0.3, 0.0, n_cells)
    taus_v = torch.full((n_cells,), tau_v) * torch.linspace(0.8, 1.0, n_cells)
    refrac = torch.tensor([0.0, 1.0, 2.0, 0.0, 1.0, 3.0])
    inputs = random_inputs(T, (3, n_cells), scale=scale, seed=8)
    n = LIFNeuron((n_cells,), thresh, v_rest, 1.0, 1.0, 1.0, refrac, taus_v, tau_t, update_type).to(
        device
    )
    got = run_module(n, to(inputs, device))
    ref = reference_neuron(
        "lif",
        inputs,
        thresh=thresh,
        v_rest=v_rest,
        refrac_steps=refrac.long(),
        tau_v=taus_v,
        tau_t=tau_t,
        update_type=update_type,
    )
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    assert_active(got["spikes"])


def test_list_inputs_are_summed(device):
    a = random_inputs(T, SHAPE, scale=0.5, seed=9)
    b = random_inputs(T, SHAPE, scale=0.5, offset=-0.2, seed=10)
    c = random_inputs(T, SHAPE, scale=0.2, seed=11)
    n = LIFNeuron((10,), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9).to(device)
    got = run_module(n, [[x.to(device), y.to(device), z.to(device)] for x, y, z in zip(a, b, c)])
    ref = reference_neuron(
        "lif", [x + y + z for x, y, z in zip(a, b, c)], refrac_steps=1, tau_v=0.8, tau_t=0.9
    )
    assert_same(got, ref)
    assert_active(got["spikes"])


@pytest.mark.parametrize("update_type, tau_v, tau_t, scale", LIF_CASES)
def test_adaptive_lif_neuron(update_type, tau_v, tau_t, scale, device):
    tau_thresh = 0.9 if update_type == "linear" else 10.0
    kw = dict(update_type=update_type, tau_v=tau_v, tau_t=tau_t)
    inputs = random_inputs(30, SHAPE, scale=scale, seed=12)
    n = AdaptiveLIFNeuron(
        (10,), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, tau_v, tau_t, 0.3, tau_thresh, update_type
    ).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron(
        "adaptive", inputs, refrac_steps=1, alpha_thresh=0.3, tau_thresh=tau_thresh, **kw
    )
    assert_same(got, ref, keys=("spikes", "v", "trace", "thresh", "refrac"))
    assert_active(got["spikes"])
    assert got["thresh"][-1].shape == (10,)
    assert (got["thresh"][-1] > 1.0).any()


def test_adaptive_lif_subtract_uses_threshold_of_the_step(device):
    inputs = random_inputs(T, SHAPE, scale=2.5, seed=13)
    kw = dict(update_type="exact", tau_v=5.0, tau_t=4.0, reset="subtract")
    n = AdaptiveLIFNeuron(
        (10,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, alpha_thresh=0.5, tau_thresh=8.0, **kw
    ).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron("adaptive", inputs, alpha_thresh=0.5, tau_thresh=8.0, **kw)
    assert_same(got, ref, keys=("spikes", "v", "trace", "thresh"))
    assert_active(got["spikes"])


@pytest.mark.parametrize(
    "update_type, tau_thresh, decay",
    [
        ("linear", 0.5, 0.5),
        ("exponential", 4.0, 0.75),  # 1 - dt / tau
        ("exact", 1.0 / math.log(2.0), 0.5),
    ],
)
def test_adaptive_threshold_relaxes_to_base(update_type, tau_thresh, decay, device):
    tau_v = 0.5 if update_type == "linear" else 2.0
    n = AdaptiveLIFNeuron(
        (1,),
        2.0,
        0.0,
        1.0,
        1.0,
        1.0,
        0.0,
        tau_v,
        0.5 if update_type == "linear" else 2.0,
        0.4,
        tau_thresh,
        update_type,
    ).to(device)
    big = torch.tensor([[10.0]], device=device)
    zero = torch.zeros(1, 1, device=device)
    s, _ = n(big)
    assert s.item() == 1.0
    # excess after the spike: linear/exact alpha; exponential dt/tau * alpha
    excess = 0.4 if update_type != "exponential" else 0.25 * 0.4
    assert n.thresh_adaptive.item() == pytest.approx(2.0 + excess, abs=1e-6)
    for k in range(1, 40):
        s, _ = n(zero)
        assert s.item() == 0.0
        expected = 2.0 + excess * decay**k
        assert n.thresh_adaptive.item() == pytest.approx(expected, abs=1e-6)
    # relaxed to the base threshold (2.0), not to 0
    assert n.thresh_adaptive.item() == pytest.approx(2.0, abs=1e-5)


@pytest.mark.parametrize("reduction, increment", [("mean", 0.25 * 0.5), ("sum", 0.25 * 2.0)])
def test_adaptive_threshold_batch_reduction(reduction, increment, device):
    # 4 samples, neuron 0 fires in 2 of them, neuron 1 in none; no decay of the threshold
    n = AdaptiveLIFNeuron(
        (2,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.5, 0.25, 1.0, thresh_reduction=reduction
    ).to(device)
    x = torch.tensor([[2.0, 0.0], [0.0, 0.5], [2.0, 0.5], [0.0, 0.0]], device=device)
    spikes, _ = n(x)
    assert spikes.tolist() == [[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
    assert n.thresh_adaptive.tolist() == pytest.approx([1.0 + increment, 1.0], abs=1e-6)


def test_adaptive_threshold_reduction_is_checked():
    with pytest.raises(ValueError, match="thresh_reduction"):
        AdaptiveLIFNeuron((2,), thresh_reduction="max")


def test_adaptive_threshold_frozen_in_eval_and_kept_by_reset(device):
    n = AdaptiveLIFNeuron((10,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.8, 0.9, 0.3, 0.95).to(device)
    inputs = random_inputs(T, SHAPE, scale=0.8, seed=14)
    for x in inputs:
        n(x.to(device))
    adapted = n.thresh_adaptive.clone()
    assert (adapted > 1.0).any()
    n.eval()
    got = run_module(n, [x.to(device) for x in random_inputs(T, SHAPE, scale=1.0, seed=15)])
    assert torch.stack(got["spikes"]).sum() > 0
    assert torch.equal(n.thresh_adaptive, adapted)
    # in eval the neuron is an ordinary LIF with a fixed (adapted) threshold
    n.reset_state()
    eval_inputs = random_inputs(T, SHAPE, scale=1.0, seed=16)
    got = run_module(n, to(eval_inputs, device))
    ref = reference_neuron("lif", eval_inputs, thresh=adapted.cpu(), tau_v=0.8, tau_t=0.9)
    assert_same(got, ref)
    # reset_state keeps the homeostatic threshold, reset_thresh restores the base
    assert torch.equal(n.thresh_adaptive, adapted)
    n.reset_thresh()
    assert torch.equal(n.thresh_adaptive.cpu(), torch.ones(10))
    n.train()
    n(torch.full(SHAPE, 5.0, device=device))
    assert (n.thresh_adaptive > 1.0).all()


def test_fede_neuron(device):
    gen = torch.Generator().manual_seed(17)
    inputs = [torch.rand(SHAPE, generator=gen) * 4.0 for _ in range(T)]
    pre = [torch.rand(SHAPE, generator=gen) for _ in range(T)]
    n = FedeNeuron((10,), 1.0, 0.0, 0.8, 1.0, 1.0, 1.0, 4.0, 5.0).to(device)
    got = run_module(n, to(inputs, device), to(pre, device))
    ref = reference_neuron(
        "fede",
        inputs,
        alpha_v=0.8,
        refrac_steps=1,
        tau_v=4.0,
        tau_t=5.0,
        update_type="exponential",
        pre_traces=pre,
    )
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    assert_active(got["spikes"])


def test_fede_neuron_per_synapse_pre_trace_is_summed(device):
    gen = torch.Generator().manual_seed(18)
    inputs = [torch.rand(SHAPE, generator=gen) * 5.0 for _ in range(T)]
    pre = [torch.rand(*SHAPE, 3, generator=gen) * 0.5 for _ in range(T)]
    n = FedeNeuron((10,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 3.0, 5.0).to(device)
    got = run_module(n, to(inputs, device), to(pre, device))
    ref = reference_neuron(
        "fede",
        inputs,
        tau_v=3.0,
        tau_t=5.0,
        update_type="exponential",
        pre_traces=[p.sum(-1) for p in pre],
    )
    assert_same(got, ref)
    assert_active(got["spikes"])


IZH = dict(a=0.02, b=0.2, d=8.0, thresh=30.0, v_rest=-65.0)


def test_izhikevich_random_inputs(device):
    inputs = random_inputs(200, (3, 5), scale=20.0, seed=19, dtype=torch.float64)
    n = IzhikevichNeuron((5,), 0.02, 0.2, -65.0, 8.0, 30.0, 1.0, 1.0, 0.5, 1.0, 20.0)
    n = n.double().to(device)
    got = run_module(n, to(inputs, device))
    # parameters keep full precision: .double() of a float32-built module runs
    # with the float64 values of its arguments
    ref = reference_neuron(
        "izhikevich",
        inputs,
        dt=0.5,
        refrac_steps=2,
        tau_t=20.0,
        update_type="exact",
        param_dtype=torch.float64,
        **IZH,
    )
    assert_same(got, ref, atol=1e-9, rtol=1e-9, keys=("spikes", "v", "u", "trace", "refrac"))
    assert_active(got["spikes"])
    assert n.u.shape == (3, 5)


def test_izhikevich_regular_spiking_constant_input(device):
    # regular spiking cell (a, b, c, d) = (0.02, 0.2, -65, 8), I = 10, dt = 0.5 ms, 200 ms
    steps = 400
    inputs = [torch.full((1, 1), 10.0, dtype=torch.float64) for _ in range(steps)]
    with default_dtype(torch.float64):  # parameters in full float64 precision
        n = IzhikevichNeuron((1,), dt=0.5, store_trace=True).to(device)
    assert n.b.dtype == torch.float64 and n.u.dtype == torch.float64
    got = run_module(n, to(inputs, device))
    ref = reference_neuron(
        "izhikevich",
        inputs,
        dt=0.5,
        tau_t=20.0,
        update_type="exact",
        param_dtype=torch.float64,
        **IZH,
    )
    assert_same(got, ref, atol=1e-9, rtol=1e-9, keys=("spikes", "v", "u", "trace"))
    # first step by hand: dv = 0.04*65^2 - 5*65 + 140 + 13 + 10 = 7
    assert got["v"][0].item() == pytest.approx(-65.0 + 0.5 * 7.0)
    times = torch.nonzero(torch.stack(got["spikes"]).flatten()).flatten().tolist()
    # tonic spiking with spike-frequency adaptation: the first interval is the
    # shortest and the later ones settle to a constant period
    assert 5 <= len(times) <= 12
    isis = [t2 - t1 for t1, t2 in zip(times, times[1:])]
    assert isis[0] < isis[-1]
    assert all(i2 >= i1 for i1, i2 in zip(isis, isis[1:]))
    assert max(isis[-3:]) - min(isis[-3:]) <= 1
    # I = 10 has no fixed point (0.04 v^2 + 5 v + 163 > 0): the first spike
    # comes within a few ms, then u (+8 per spike) slows the cell down to a
    # period of about 46 ms (~22 Hz)
    assert 1.0 < times[0] * 0.5 < 10.0
    assert 40.0 < isis[-1] * 0.5 < 50.0
    assert n.complete_trace.shape == (1, 1, steps)
    assert n.complete_trace.flatten().nonzero().flatten().tolist() == times


# ---------------------------------------------------------------------------
# Shapes and batch sizes
# ---------------------------------------------------------------------------
def test_pysnn01_cells_shape_with_batch(device):
    inputs = random_inputs(T, SHAPE, scale=0.6, seed=20)
    a = LIFNeuron((4, 1, 10), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9).to(device)
    b = LIFNeuron((10,), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9).to(device)
    assert a.v_cell.shape == (4, 1, 10)
    assert b.v_cell.shape == (1, 10)
    got_a = run_module(a, [x.view(4, 1, 10).to(device) for x in inputs])
    got_b = run_module(b, to(inputs, device))
    assert got_a["spikes"][0].shape == (4, 1, 10)
    assert got_b["spikes"][0].shape == (4, 10)
    for key in ("spikes", "v", "trace"):
        for ga, gb in zip(got_a[key], got_b[key]):
            assert torch.equal(ga.view(4, 10), gb)
    ref = reference_neuron("lif", inputs, refrac_steps=1, tau_v=0.8, tau_t=0.9)
    assert_same(got_b, ref)
    assert a.features_shape == (1, 10) and b.features_shape == (10,)


@pytest.mark.parametrize("new_batch", [1, 64])
def test_batch_size_change_after_reset(new_batch, device):
    n = LIFNeuron((4, 1, 10), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9, "linear").to(device)
    for x in random_inputs(5, (4, 1, 10), scale=0.6, seed=21):
        n(x.to(device))
    n.reset_state()
    assert n.is_fresh and torch.all(n.v_cell == 0) and torch.all(n.refrac_counts == 0)
    inputs = random_inputs(T, (new_batch, 1, 10), scale=0.6, seed=22)
    got = run_module(n, to(inputs, device))
    assert got["spikes"][0].shape == (new_batch, 1, 10)
    assert n.batch_size == new_batch
    ref = reference_neuron("lif", inputs, refrac_steps=1, tau_v=0.8, tau_t=0.9)
    assert_same(got, ref, keys=("spikes", "v", "trace", "refrac"))
    # reset_state with an explicit batch size preallocates it
    n.reset_state(7)
    assert n.v_cell.shape == (7, 1, 10) and n.is_fresh


def test_batch_size_change_mid_run_is_an_error(device):
    n = LIFNeuron((10,), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9).to(device)
    for x in random_inputs(3, SHAPE, scale=0.6, seed=23):
        n(x.to(device))
    before = snapshot(n)
    with pytest.raises(ValueError, match="batch size"):
        n(torch.rand(2, 10, device=device))
    assert_unchanged(n, before)
    # after reset_state the new batch size is accepted
    n.reset_state()
    s, _ = n(torch.rand(2, 10, device=device))
    assert s.shape == (2, 10)


def test_conv_shaped_population(device):
    # a per-sample (C, H, W) population fed with (B, C, H, W)
    inputs = random_inputs(T, (2, 3, 4, 4), scale=0.6, seed=24)
    n = LIFNeuron((3, 4, 4), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9).to(device)
    got = run_module(n, to(inputs, device))
    ref = reference_neuron("lif", inputs, refrac_steps=1, tau_v=0.8, tau_t=0.9)
    assert_same(got, ref)
    assert n.features_shape == (3, 4, 4)


# ---------------------------------------------------------------------------
# Copies, state dicts, dtypes
# ---------------------------------------------------------------------------
def make_adaptive():
    return AdaptiveLIFNeuron(
        (10,), 1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 5.0, 4.0, 0.2, 20.0, "exact", store_trace=True
    )


def test_deepcopy_mid_run_resumes_identically(device):
    inputs = to(random_inputs(2 * T, SHAPE, scale=3.0, seed=25), device)
    n = make_adaptive().to(device)
    for x in inputs[:T]:
        n(x)
    clone = copy.deepcopy(n)
    for x in inputs[T:]:
        s1, t1 = n(x)
        s2, t2 = clone(x)
        assert torch.equal(s1, s2) and torch.equal(t1, t2)
        assert torch.equal(n.v_cell, clone.v_cell)
        assert torch.equal(n.thresh_adaptive, clone.thresh_adaptive)
        assert torch.equal(n.refrac_counts, clone.refrac_counts)
    assert clone.complete_trace.shape == (4, 10, 2 * T)
    assert torch.equal(n.complete_trace, clone.complete_trace)


@pytest.mark.parametrize("via_bytes", [False, True])
def test_state_dict_round_trip_mid_run(via_bytes, device):
    inputs = to(random_inputs(2 * T, SHAPE, scale=3.0, seed=26), device)
    n = make_adaptive().to(device)
    for x in inputs[:T]:
        n(x)
    state = n.state_dict()
    if via_bytes:
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        state = torch.load(buf)  # weights_only by default
    fresh = make_adaptive().to(device)  # built with batch 1, loads batch 4
    fresh.load_state_dict(state)
    assert not fresh.is_fresh and fresh.batch_size == 4
    spikes = []
    for x in inputs[T:]:
        s1, t1 = n(x)
        s2, t2 = fresh(x)
        assert torch.equal(s1, s2) and torch.equal(t1, t2)
        assert torch.equal(n.v_cell, fresh.v_cell)
        assert torch.equal(n.thresh_adaptive, fresh.thresh_adaptive)
        spikes.append(s1)
    assert torch.stack(spikes).sum() > 0


def test_state_dict_round_trip_conv_shape(device):
    inputs = to(random_inputs(10, (2, 3, 4, 4), scale=3.0, seed=27), device)

    def make():
        return AdaptiveLIFNeuron((3, 4, 4), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9, 0.1, 0.9)

    n = make().to(device)
    for x in inputs[:5]:
        n(x)
    fresh = make().to(device)
    fresh.load_state_dict(n.state_dict())
    for x in inputs[5:]:
        s1, _ = n(x)
        s2, _ = fresh(x)
        assert torch.equal(s1, s2)
        assert torch.equal(n.v_cell, fresh.v_cell)
        assert torch.equal(n.thresh_adaptive, fresh.thresh_adaptive)


@pytest.mark.parametrize("update_type, tau_v, tau_t, scale", LIF_CASES)
def test_double_precision(update_type, tau_v, tau_t, scale, device):
    inputs = random_inputs(T, SHAPE, scale=scale, seed=28, dtype=torch.float64)
    kw = dict(update_type=update_type, tau_v=tau_v, tau_t=tau_t)
    n = LIFNeuron((10,), 1.0, 0.1, 1.0, 1.0, 1.0, 1.0, **kw).double().to(device)
    assert n.v_cell.dtype == torch.float64 and n.refrac_counts.dtype == torch.int64
    got = run_module(n, to(inputs, device))
    assert got["spikes"][0].dtype == torch.float64
    # parameters keep full precision: .double() runs with the float64 arguments
    ref = reference_neuron(
        "lif", inputs, v_rest=0.1, refrac_steps=1, param_dtype=torch.float64, **kw
    )
    assert_same(got, ref, atol=1e-12, rtol=1e-12)
    assert_active(got["spikes"])
    # the float32 module refuses float64 input
    n32 = LIFNeuron((10,), **kw).to(device)
    with pytest.raises(TypeError, match="x must have dtype"):
        n32(inputs[0].to(device))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "update_type, tau_v, x", [("linear", 0.5, 0.75), ("exponential", 2.0, 1.5), ("exact", 5.0, 1.5)]
)
def test_low_precision_lif(dtype, update_type, tau_v, x, device):
    def run(dt):
        n = LIFNeuron((3,), 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, tau_v, 0.5, update_type)
        n = n.to(device=device, dtype=dt)
        inp = torch.full((2, 3), x, dtype=dt, device=device)
        out = []
        for _ in range(20):
            s, tr = n(inp)
            assert s.dtype == dt and tr.dtype == dt and n.v_cell.dtype == dt
            out.append(s.float().cpu())
        return torch.stack(out)

    low = run(dtype)
    ref = run(torch.float32)
    assert ref.sum() > 0
    assert torch.equal(low, ref)


# ---------------------------------------------------------------------------
# Spike history
# ---------------------------------------------------------------------------
def test_store_trace_complete_trace(device):
    inputs = random_inputs(T, SHAPE, scale=0.6, seed=29)
    n = LIFNeuron((10,), 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.8, 0.9, store_trace=True).to(device)
    assert n.complete_trace.shape == (1, 10, 0)
    got = run_module(n, to(inputs, device))
    hist = n.complete_trace
    assert hist.dtype == torch.bool and hist.shape == (4, 10, T)
    assert torch.equal(hist.cpu(), torch.stack(got["spikes"], dim=-1).bool())
    n.reset_state()
    assert n.complete_trace.shape[-1] == 0
    n(inputs[0][:2].to(device))
    assert n.complete_trace.shape == (2, 10, 1)
    plain = LIFNeuron((10,)).to(device)
    plain(inputs[0].to(device))
    assert plain.complete_trace is None


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------
def snapshot(module):
    return (
        {k: v.clone() for k, v in module.named_buffers()},
        module.is_fresh,
        module.batch_size,
        module.features_shape,
    )


def assert_unchanged(module, before):
    buffers, fresh, batch, features = before
    now = dict(module.named_buffers())
    assert now.keys() == buffers.keys()
    for k, v in buffers.items():
        assert torch.equal(now[k], v), k
    assert module.is_fresh == fresh
    assert module.batch_size == batch
    assert module.features_shape == features


NEURON_FACTORIES = {
    "input": lambda: Input((10,), 1.0, 1.0, 0.9),
    "if": lambda: IFNeuron((10,), duration_refrac=1.0),
    "lif": lambda: LIFNeuron((10,), duration_refrac=1.0),
    # PySNN 0.1's shape with the batch size, in a 0.1 spelling (update_type)
    "lif_b1n": lambda: LIFNeuron((4, 1, 10), duration_refrac=1.0, update_type="exact"),
    "adaptive": lambda: AdaptiveLIFNeuron((10,)),
    "izhikevich": lambda: IzhikevichNeuron((10,)),
}


def good_input(name, batch=4):
    shape = (batch, 1, 10) if name == "lif_b1n" else (batch, 10)
    if name == "input":  # inputs take spikes
        return (torch.rand(shape) < 0.3).float()
    return torch.rand(shape) * 3.0


BAD_INPUTS = [
    ("wrong shape", lambda x: x[..., :9], ValueError, r"\bx must have shape"),
    ("missing batch", lambda x: x[0], ValueError, r"\bx must have shape"),
    ("float64", lambda x: x.double(), TypeError, r"\bx must have dtype"),
    (
        "int",
        lambda x: x.long() * 2,
        (TypeError, ValueError),
        r"\bx (must have dtype|is an integer)",
    ),
    ("numpy", lambda x: x.numpy(), TypeError, r"\bx must be a torch.Tensor"),
    ("float", lambda x: 1.0, TypeError, r"\bx must be a torch.Tensor"),
    ("list with a float", lambda x: [x, 1.0], TypeError, r"x\[1\] must be a torch.Tensor"),
    ("list of shapes", lambda x: [x, x[..., :9]], ValueError, r"x\[1\]"),
    ("empty list", lambda x: [], ValueError, r"\bx is an empty list"),
]


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "mid-run"])
@pytest.mark.parametrize("name", list(NEURON_FACTORIES))
@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_leaves_state_unchanged(bad, name, fresh):
    _, make_bad, exc, pattern = bad
    neuron = NEURON_FACTORIES[name]()
    if not fresh:
        for _ in range(3):
            neuron(good_input(name))
    before = snapshot(neuron)
    with pytest.raises(exc, match=pattern):
        neuron(make_bad(good_input(name)))
    assert_unchanged(neuron, before)
    # the neuron still works after the error
    neuron(good_input(name))


def test_input_takes_integer_spikes_and_rejects_other_integers():
    inp, twin = Input((10,)), Input((10,))
    spikes = (torch.rand(2, 10, generator=torch.Generator().manual_seed(0)) < 0.5).long()
    assert torch.equal(inp(spikes)[1], twin(spikes.float())[1])  # 0/1 integers are spikes
    before = snapshot(inp)
    with pytest.raises(ValueError, match=r"Input: x is an integer tensor.*0 and 1"):
        inp(torch.full((2, 10), 2, dtype=torch.int64))
    assert_unchanged(inp, before)


def test_fede_bad_pre_trace_leaves_state_unchanged():
    n = FedeNeuron((10,))
    x = torch.rand(5, 10)
    before = snapshot(n)  # fresh, batch 1
    with pytest.raises(ValueError, match="pre_trace must have shape"):
        n(x, torch.rand(5, 9))
    assert_unchanged(n, before)
    with pytest.raises(TypeError, match="pre_trace must have dtype"):
        n(x, torch.rand(5, 10, dtype=torch.float64))
    with pytest.raises(TypeError, match="pre_trace must be a torch.Tensor"):
        n(x, [0.0] * 10)
    assert_unchanged(n, before)
    n(x, torch.rand(5, 10))
    mid = snapshot(n)
    with pytest.raises(ValueError, match="pre_trace"):
        n(x, torch.rand(5, 10, 3, 2))
    assert_unchanged(n, mid)


CTOR_ERRORS = [
    # (factory, exception, pattern)
    (lambda: LIFNeuron((10,), tau_v=-1.0, update_type="exponential"), ValueError, "tau_v"),
    (lambda: LIFNeuron((10,), tau_v=0.0, update_type="exact"), ValueError, "tau_v"),
    (lambda: LIFNeuron((10,), tau_v=float("nan"), update_type="exact"), ValueError, "tau_v"),
    (lambda: LIFNeuron((10,), tau_t=-2.0, tau_v=5.0, update_type="exact"), ValueError, "tau_t"),
    (lambda: LIFNeuron((10,), tau_v=1.5, update_type="linear"), ValueError, "tau_v.*decay"),
    (lambda: LIFNeuron((10,), tau_t=-0.1), ValueError, "tau_t.*ms"),
    (lambda: IFNeuron((10,), tau_t=2.0, update_type="linear"), ValueError, "tau_t.*decay"),
    (lambda: Input((10,), tau_t=DecayFactor(1.01)), ValueError, "tau_t.*decay"),
    (lambda: Input((10,), tau_t=-3.0, update_type="exponential"), ValueError, "tau_t"),
    (lambda: AdaptiveLIFNeuron((10,), 1.0, tau_thresh=1.2), ValueError, "tau_thresh"),
    (
        lambda: AdaptiveLIFNeuron(
            (10,), tau_v=5.0, tau_t=5.0, tau_thresh=-1.0, update_type="exact"
        ),
        ValueError,
        "tau_thresh",
    ),
    (lambda: FedeNeuron((10,), tau_v=-1.0), ValueError, "tau_v"),
    (lambda: LIFNeuron((10,), dt=0.0), ValueError, r"\bdt\b"),
    (lambda: LIFNeuron((10,), dt=-1.0), ValueError, r"\bdt\b"),
    (lambda: LIFNeuron((10,), dt=float("nan")), ValueError, r"\bdt\b"),
    (lambda: Input((10,), dt=0.0), ValueError, r"\bdt\b"),
    (lambda: IzhikevichNeuron((10,), dt=-0.5), ValueError, r"\bdt\b"),
    (lambda: LIFNeuron((10,), dt="1"), TypeError, r"\bdt\b"),
    (lambda: LIFNeuron((10,), dt=0.1, duration_refrac=0.25), ValueError, "duration_refrac"),
    (lambda: LIFNeuron((10,), dt=1.0, duration_refrac=1.5), ValueError, "duration_refrac"),
    (lambda: LIFNeuron((10,), duration_refrac=-1.0), ValueError, "duration_refrac"),
    (
        lambda: LIFNeuron((10,), duration_refrac=torch.tensor([1.0, 0.5] * 5)),
        ValueError,
        "duration_refrac",
    ),
    (lambda: LIFNeuron((10,), update_type="euler"), ValueError, "update_type"),
    (lambda: Input((10,), update_type="exp"), ValueError, "update_type"),
    (lambda: LIFNeuron((10,), reset="zero"), ValueError, "reset"),
    (lambda: LIFNeuron((10,), trace_mode="nearest"), ValueError, "trace_mode"),
    (lambda: LIFNeuron((10,), thresh=torch.ones(5)), ValueError, "thresh"),
    (lambda: LIFNeuron((10,), tau_v=torch.full((3, 1), 0.5)), ValueError, "tau_v"),
    (lambda: LIFNeuron((1, 10), v_rest=torch.zeros(3, 1, 10)), ValueError, "v_rest"),
    (lambda: IFNeuron((2, 3), alpha_v=torch.ones(2)), ValueError, "alpha_v"),
    (lambda: AdaptiveLIFNeuron((10,), alpha_thresh=torch.ones(2, 1)), ValueError, "alpha_thresh"),
    (lambda: IzhikevichNeuron((10,), a=torch.ones(3)), ValueError, r"\ba\b"),
    (lambda: LIFNeuron((10,), thresh="1"), TypeError, "thresh"),
    (lambda: LIFNeuron((10,), alpha_v=float("inf")), ValueError, "alpha_v"),
    (lambda: LIFNeuron((0,)), ValueError, "cells_shape"),
    (lambda: LIFNeuron("10"), TypeError, "cells_shape"),
]


@pytest.mark.parametrize("case", range(len(CTOR_ERRORS)))
def test_constructor_errors_name_the_argument(case):
    factory, exc, pattern = CTOR_ERRORS[case]
    with pytest.raises(exc, match=pattern):
        factory()


def test_per_neuron_parameter_broadcasting_within_features():
    # (1, 10) and (10,) fit a (1, 10) population; (4, 1) fits (4, 10)
    LIFNeuron((1, 10), thresh=torch.ones(10))
    LIFNeuron((1, 10), thresh=torch.ones(1, 10))
    assert LIFNeuron((4, 10), thresh=torch.ones(4, 1)).features_shape == (4, 10)
    # PySNN 0.1 spelling (update_type): (B, N) with the batch size
    n = LIFNeuron((4, 10), thresh=torch.ones(10), update_type="exact")
    assert n.features_shape == (10,)
    with pytest.raises(ValueError, match="thresh"):  # per-sample: (10,) does not fit (4, 10)
        LIFNeuron((4, 10), thresh=torch.ones(4))


def test_per_neuron_parameter_checked_against_input_shape():
    # in a PySNN 0.1 spelling the per-sample shape is only known from the first
    # input: (3, 4, 4) cells with a (3, 1, 1) parameter fit, a (4, 4) population
    # built as (4, 4) does not
    n = LIFNeuron((3, 4, 4), thresh=torch.ones(3, 1, 1), update_type="exact")
    s, _ = n(torch.rand(2, 3, 4, 4))
    assert s.shape == (2, 3, 4, 4)
    assert n.features_shape == (3, 4, 4)
    n = LIFNeuron((2, 5), thresh=torch.ones(2, 5), update_type="exact")
    before = snapshot(n)
    with pytest.raises(ValueError, match=r"shape \(batch, \*\(2, 5\)\)"):
        n(torch.rand(2, 5))  # the (2, 5) thresh decided the shape: (batch=2, 5) does not fit
    assert_unchanged(n, before)
    s, _ = n(torch.rand(3, 2, 5))  # (batch=3, 2, 5) fits
    assert s.shape == (3, 2, 5)
    # a batch-shaped parameter for a PySNN 0.1 (B, 1, N) population makes it a
    # per-sample (B, 1, N): a (B, 1, N) input fails, before any state changes
    n = LIFNeuron((4, 1, 10), v_rest=torch.zeros(4, 1, 10), update_type="exact")
    before = snapshot(n)
    with pytest.raises(ValueError, match=r"shape \(batch, \*\(4, 1, 10\)\)"):
        n(torch.rand(4, 1, 10))
    assert_unchanged(n, before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_device_mismatch():
    n = LIFNeuron((10,)).cuda()
    before = snapshot(n)
    with pytest.raises(ValueError, match=r"x is on device cpu"):
        n(torch.rand(2, 10))
    assert_unchanged(n, before)
    f = FedeNeuron((10,)).cuda()
    with pytest.raises(ValueError, match="pre_trace is on device"):
        f(torch.rand(2, 10, device="cuda"), torch.rand(2, 10))


@pytest.mark.parametrize("fresh", [True, False], ids=["fresh", "mid-run"])
@pytest.mark.parametrize(
    "bad, pattern",
    [
        (lambda x: x * 0.5, r"\bx must hold spikes"),
        (lambda x: x + float("nan"), r"\bx must hold spikes"),
        (lambda x: [x, x * 2.0], r"x\[1\] must hold spikes"),
    ],
)
def test_input_rejects_values_that_are_not_spikes(bad, pattern, fresh):
    inp = NEURON_FACTORIES["input"]()
    if not fresh:
        inp(good_input("input"))
    before = snapshot(inp)
    with pytest.raises(ValueError, match=pattern):
        inp(bad(good_input("input")))
    assert_unchanged(inp, before)
    spikes, _ = inp([good_input("input"), good_input("input")])  # summed into counts
    assert spikes.max() <= 2.0
