"""Fuzz tests: hypothesis builds small random networks and feeds them good and bad input.

Every outcome must be either a normal result (spikes in {0, 1} of the right shape,
finite currents and weights) or a :class:`ValueError`/:class:`TypeError` whose message
names the argument, and a module-level call that raises leaves the module's state
(every tensor of its ``state_dict``, its ring-buffer head and freshness) untouched.
Network-level atomicity of ``net(x)`` is tested with the network, not here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pysnn.connection import Conv2d, Linear, Sparse  # noqa: E402
from pysnn.learning import MSTDP, STDP  # noqa: E402
from pysnn.network import SNNNetwork  # noqa: E402
from pysnn.neuron import (  # noqa: E402
    AdaptiveLIFNeuron,
    AdExNeuron,
    IFNeuron,
    Input,
    IzhikevichNeuron,
    LIFNeuron,
)

#: neuron class -> (dt in ms, keyword arguments, weight scale that makes it spike)
NEURONS = {
    "lif": (LIFNeuron, 1.0, dict(tau_v=10.0, tau_t=20.0, integrator="exact"), 1.0),
    "if": (IFNeuron, 1.0, dict(tau_t=20.0, integrator="exact"), 1.0),
    "alif": (
        AdaptiveLIFNeuron,
        1.0,
        dict(tau_v=10.0, tau_t=20.0, tau_thresh=50.0, integrator="exact"),
        1.0,
    ),
    "izhikevich": (IzhikevichNeuron, 0.5, dict(tau_t=20.0), 20.0),
    "adex": (AdExNeuron, 0.1, dict(tau_t=20.0), 500.0),
}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Net(SNNNetwork):
    """Input -> connection -> neuron, run by the network's graph (no forward)."""

    def __init__(self, in_shape, conn, neuron):
        super().__init__()
        self.inp = Input(in_shape, dt=neuron.dt if hasattr(neuron, "dt") else 1.0)
        self.conn = conn
        self.post = neuron
        self.connect(self.inp, self.conn, self.post)


@st.composite
def networks(draw):
    """A random small network, its input shape and a rule (or None)."""
    kind = draw(st.sampled_from(["linear", "sparse", "conv2d"]))
    neuron_name = draw(st.sampled_from(sorted(NEURONS)))
    cls, dt, kwargs, scale = NEURONS[neuron_name]
    delay_kind = draw(st.sampled_from(["none", "scalar", "per-synapse"]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    batch = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    if kind == "conv2d":
        channels, size = draw(st.integers(1, 2)), draw(st.integers(3, 5))
        out_channels, kernel = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        in_shape = (channels, size, size)
        weight_shape = (out_channels, channels, kernel, kernel)
        out_shape = (out_channels, size - kernel + 1, size - kernel + 1)
    else:
        n_in, n_out = draw(st.integers(1, 6)), draw(st.integers(1, 5))
        in_shape, out_shape = (n_in,), (n_out,)
        weight_shape = (n_out, n_in)
    if kind == "sparse":
        exists = torch.rand(weight_shape, generator=gen) < 0.6
        post, pre = exists.nonzero().unbind(1)
        weight_shape = (int(post.numel()),)
    if delay_kind == "none":
        delay = 0.0
    elif delay_kind == "scalar":
        delay = draw(st.integers(1, 3)) * dt
    else:
        delay = torch.randint(0, 4, weight_shape, generator=gen) * dt
    if kind == "linear":
        conn = Linear(in_shape[0], out_shape[0], dt=dt, delay=delay)
    elif kind == "sparse":
        conn = Sparse(in_shape[0], out_shape[0], (post, pre), dt=dt, delay=delay)
    else:
        conn = Conv2d(in_shape[0], out_shape[0], weight_shape[-1], dt=dt, delay=delay)
    with torch.no_grad():
        conn.weight.copy_(torch.rand(weight_shape, generator=gen) * scale)
    net = _Net(in_shape, conn, cls(out_shape, dt=dt, **kwargs)).to(dtype)
    rule = draw(st.sampled_from([None, "stdp", "mstdp"]))
    if rule == "stdp":
        rule = STDP(net.layers, lr=0.01, w_min=0.0, w_max=scale)
    elif rule == "mstdp":
        rule = MSTDP(net.layers, lr=0.01)
    return net, in_shape, out_shape, batch, dtype, rule, gen


def _good_step(net, rule, in_shape, out_shape, batch, dtype, gen):
    x = torch.rand(batch, *in_shape, generator=gen) < 0.5
    spikes = net(x.to(dtype))
    assert spikes.shape == (batch, *out_shape) and spikes.dtype == dtype
    assert bool(((spikes == 0) | (spikes == 1)).all())
    if isinstance(rule, MSTDP):
        rule.update_state()
        rule.step(reward=1.0)
    elif rule is not None:
        rule.step()
    assert bool(torch.isfinite(net.conn.weight).all())
    return spikes


def _snapshot(module):
    """Every entry of the state dict (tensors cloned, extra states copied) and the freshness."""
    state = {
        k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for k, v in module.state_dict().items()
    }
    return state, module.is_fresh


def _assert_unchanged(module, snapshot):
    state, fresh = snapshot
    now = module.state_dict()
    assert now.keys() == state.keys()
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(now[key], value), f"{type(module).__name__}.{key} changed"
        else:
            assert now[key] == value, f"{type(module).__name__}.{key} changed"
    assert module.is_fresh == fresh


BAD_CONNECTION_INPUTS = [
    "shape",
    "dtype",
    "int",
    "nan",
    "inf",
    "nan_trace",
    "graded",
    "batch",
    "list",
]


def _bad_spikes(how, batch, in_shape, dtype, gen):
    """A bad (or graded) input and the words its error must contain."""
    good = (torch.rand(batch, *in_shape, generator=gen) < 0.5).to(dtype)
    trace = torch.rand(batch, *in_shape, generator=gen).to(dtype)
    if how == "shape":
        return (
            torch.zeros(batch, *in_shape[:-1], in_shape[-1] + 1, dtype=dtype),
            trace,
            (
                "spikes",
                "shape",
            ),
        )
    if how == "dtype":
        other = torch.float64 if dtype == torch.float32 else torch.float32
        return good.to(other), None, ("spikes", "dtype")
    if how == "int":  # integer 0/1 spikes are spikes; other integers are not
        counts = good.to(torch.int64)
        counts.view(-1)[0] = 2
        return counts, None, ("spikes", "integer")
    if how in ("nan", "inf"):
        good.view(-1)[-1] = math.nan if how == "nan" else -math.inf
        return good, trace, ("spikes", "finite")
    if how == "nan_trace":
        trace.view(-1)[0] = math.nan
        return good, trace, ("trace", "finite")
    if how == "graded":
        return torch.rand(batch, *in_shape, generator=gen).to(dtype) * 3, trace, None
    if how == "batch":
        return torch.zeros(batch + 1, *in_shape, dtype=dtype), None, ("batch size",)
    return good.tolist(), None, ("spikes", "torch.Tensor")


@FUZZ
@given(networks(), st.sampled_from(BAD_CONNECTION_INPUTS), st.integers(1, 3))
def test_connection_calls_give_a_result_or_a_named_error_and_keep_their_state(built, how, steps):
    net, in_shape, out_shape, batch, dtype, rule, gen = built
    net.reset_state()
    for _ in range(steps):
        _good_step(net, rule, in_shape, out_shape, batch, dtype, gen)
    conn = net.conn
    spikes, trace, words = _bad_spikes(how, batch, in_shape, dtype, gen)
    before = _snapshot(conn)
    if words is None:  # graded input: Linear, Sparse and Conv2d document it as valid
        current, arriving = conn(spikes, trace)
        assert current.shape == (batch, *out_shape) and bool(torch.isfinite(current).all())
        assert arriving is None or bool(torch.isfinite(arriving).all())
        return
    with pytest.raises((ValueError, TypeError)) as err:
        conn(spikes, trace)
    message = str(err.value)
    assert all(word in message for word in words), message
    _assert_unchanged(conn, before)
    # the run goes on
    _good_step(net, rule, in_shape, out_shape, batch, dtype, gen)


BAD_NEURON_INPUTS = ["shape", "dtype", "bool", "batch", "graded", "list"]


@FUZZ
@given(networks(), st.sampled_from(BAD_NEURON_INPUTS), st.integers(1, 3))
def test_neuron_calls_give_spikes_or_a_named_error_and_keep_their_state(built, how, steps):
    net, in_shape, out_shape, batch, dtype, rule, gen = built
    net.reset_state()
    for _ in range(steps):
        _good_step(net, rule, in_shape, out_shape, batch, dtype, gen)
    neuron = net.post
    current = torch.rand(batch, *out_shape, generator=gen).to(dtype)
    words = ("x",)
    if how == "shape":
        current, words = torch.zeros(batch, *out_shape, 2, dtype=dtype), ("x", "shape")
    elif how == "dtype":
        current = current.to(torch.float64 if dtype == torch.float32 else torch.float32)
        words = ("x", "dtype")
    elif how == "bool":
        current, words = current > 0.5, ("x", "dtype")
    elif how == "batch":
        current, words = torch.zeros(batch + 1, *out_shape, dtype=dtype), ("batch size",)
    elif how == "list":
        current, words = "current", ("x",)
    else:
        words = None
    before = _snapshot(neuron)
    if words is None:
        spikes, _ = neuron(current)
        assert spikes.shape == (batch, *out_shape)
        assert bool(((spikes == 0) | (spikes == 1)).all())
        return
    with pytest.raises((ValueError, TypeError)) as err:
        neuron(current)
    message = str(err.value)
    assert all(word in message for word in words), message
    _assert_unchanged(neuron, before)
    _good_step(net, rule, in_shape, out_shape, batch, dtype, gen)
