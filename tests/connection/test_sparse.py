"""Sparse connectivity against a dense Linear whose missing synapses are zero."""

import pytest
import torch

from pysnn import functional as sf
from pysnn.connection import Linear, Sparse
from pysnn.learning import MSTDPET, STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron


def random_sparse(n_in=30, n_out=20, p=0.2, seed=0, **kwargs):
    gen = torch.Generator().manual_seed(seed)
    exists = torch.rand(n_out, n_in, generator=gen) < p
    dense = torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * exists
    post, pre = exists.nonzero().unbind(1)
    conn = Sparse(n_in, n_out, (post, pre), **kwargs).double()
    with torch.no_grad():
        conn.weight.copy_(dense[conn.post_index, conn.pre_index])
    return conn, dense, exists


def spikes(steps, batch, n, p=0.2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, n, generator=gen) < p).double()


@pytest.mark.parametrize("delay", ["none", "scalar", "per-synapse"])
def test_sparse_equals_masked_dense(delay):
    sparse, dense, exists = random_sparse()
    linear = Linear(30, 20).double()
    with torch.no_grad():
        linear.weight.copy_(dense)
    if delay == "scalar":
        sparse.set_delay(3)
        linear.set_delay(3)
    elif delay == "per-synapse":
        gen = torch.Generator().manual_seed(5)
        delays = torch.randint(0, 6, (20, 30), generator=gen) * exists
        linear.set_delay(delays.double())
        sparse.set_delay(delays[sparse.post_index, sparse.pre_index].double())
    x = spikes(60, 3, 30)
    trace = torch.rand(60, 3, 30, dtype=torch.float64)
    for t in range(60):
        a, ta = sparse(x[t], trace[t])
        b, tb = linear(x[t], trace[t])
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        if delay != "per-synapse":
            assert torch.equal(ta, tb)
    assert torch.equal(sparse.to_dense(), dense)


def test_sparse_builders_and_errors():
    conn = Sparse.fixed_probability(400, 300, p=0.05, seed=2, allow_self=False)
    n, p = 400 * 300, 0.05
    assert abs(conn.n_synapses - n * p) < 5 * (n * p * (1 - p)) ** 0.5
    keys = conn.pre_index * 300 + conn.post_index
    assert keys.unique().numel() == conn.n_synapses  # no duplicates
    assert not bool((conn.pre_index == conn.post_index).any())
    assert bool((keys[1:] > keys[:-1]).all())  # stored sorted by (pre, post)
    again = Sparse.fixed_probability(400, 300, p=0.05, seed=2, allow_self=False)
    assert torch.equal(again.post_index, conn.post_index)  # seeded
    fixed = Sparse.fixed_in_degree(50, 40, in_degree=7, seed=3)
    assert torch.equal(torch.bincount(fixed.post_index, minlength=40), torch.full((40,), 7))
    with pytest.raises(ValueError, match="more than once"):
        Sparse(3, 3, torch.tensor([[0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="pre index out of range"):
        Sparse(3, 3, torch.tensor([[0], [3]]))
    with pytest.raises(ValueError, match=r"weight per synapse must have shape \(2,\)"):
        Sparse(3, 3, torch.tensor([[0, 1], [1, 1]]), weight=torch.ones(3))
    with pytest.raises(ValueError, match="in_degree"):
        Sparse.fixed_in_degree(5, 5, 6)
    with pytest.raises(ValueError, match="in_features=4"):
        Sparse(4, 2, torch.tensor([[0], [1]]))(torch.zeros(1, 3))


def test_sparse_from_scipy_coo_and_memory_per_synapse():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    coo = scipy_sparse.random(60, 80, density=0.1, format="coo", random_state=0)
    conn = Sparse(80, 60, coo)
    torch.testing.assert_close(
        conn.to_dense().double(), torch.as_tensor(coo.toarray()), rtol=1e-6, atol=1e-7
    )
    big = Sparse.fixed_in_degree(20000, 20000, in_degree=50, seed=0)
    stored = sum(t.numel() * t.element_size() for t in [*big.buffers(), *big.parameters()])
    assert big.n_synapses == 1_000_000
    # weight, two int64 indices, the CSR pointer, and the int32 fan-out table
    # (padded to the largest fan-out, binomial around 50 here)
    assert big.fanout_synapse.dtype == torch.int32
    table = 2 * big.fanout_synapse.numel() * 4
    assert table / big.n_synapses < 2 * 8
    assert (stored - table) / big.n_synapses < 21
    assert not any(key.startswith("fanout") for key in big.state_dict())  # derived, not saved


def test_fanout_table_and_csr_paths_equal_the_dense_product():
    conn, dense, _ = random_sparse(n_in=40, n_out=25, p=0.3, seed=4)
    assert conn.fanout_synapse is not None and conn.fanout_synapse.shape[0] == 40
    gen = torch.Generator().manual_seed(2)
    graded = torch.rand(3, 2, 40, generator=gen, dtype=torch.float64)
    graded[graded < 0.7] = 0.0  # graded inputs, batch (3, 2)
    expected = graded @ dense.T
    w, b = conn.weight, conn._buffers
    by_table = sf.sparse_propagate_table(graded, w, b["fanout_synapse"], b["fanout_post"], 25)
    by_csr = sf.sparse_propagate(graded, w, b["pre_ptr"], b["post_index"], 25)
    torch.testing.assert_close(by_table, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(by_csr, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conn(graded[:, 0])[0], expected[:, 0], rtol=1e-12, atol=1e-12)
    # a hub: one neuron reaches all 500 targets, the others one each -> no table
    post = torch.cat([torch.arange(500), torch.arange(1, 100)])
    pre = torch.cat([torch.zeros(500, dtype=torch.long), torch.arange(1, 100)])
    hub = Sparse(100, 500, (post, pre), weight=1.0)
    assert hub.fanout_synapse is None and hub.fanout_post is None
    x = torch.zeros(1, 100)
    x[0, [0, 5]] = 1.0
    torch.testing.assert_close(hub(x)[0], x @ hub.to_dense().T)


def test_fanout_table_follows_loaded_indices_and_device_moves():
    a, dense_a, _ = random_sparse(n_in=30, n_out=20, p=0.3, seed=0)
    b, dense_b, _ = random_sparse(n_in=30, n_out=20, p=0.3, seed=0)
    b.post_index.copy_((b.post_index + 1) % 20)  # other targets, same count
    b.build_fanout_table()
    x = spikes(1, 2, 30, p=0.5)[0]
    assert not torch.equal(a(x)[0], b(x)[0])
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x)[0], x @ dense_a.T, rtol=1e-12, atol=1e-12)
    moved = a.float()
    assert moved.fanout_synapse.dtype == torch.int32  # indices keep their dtype
    torch.testing.assert_close(moved(x.float())[0], (x @ dense_a.T).float())


def test_stdp_on_sparse_changes_only_existing_synapses_like_masked_dense():
    sparse, dense, exists = random_sparse(seed=4, p=0.3)

    def build(conn):
        class Net(SNNNetwork):
            def __init__(self):
                super().__init__()
                self.inp = Input((30,), tau_t=10.0, integrator="exact")
                self.conn = conn
                self.lif = LIFNeuron((20,), thresh=0.5, tau_v=10.0, tau_t=10.0, integrator="exact")
                self.connect(self.inp, self.conn, self.lif)

        return Net().double()

    linear = Linear(30, 20).double()
    with torch.no_grad():
        linear.weight.copy_(dense)
    net_s, net_d = build(sparse), build(linear)
    rule_s = STDP(net_s, lr=0.01, a_plus=1.0, a_minus=1.2, w_min=0.0, w_max=1.0)
    rule_d = STDP(net_d, lr=0.01, a_plus=1.0, a_minus=1.2, w_min=0.0, w_max=1.0, mask=exists)
    x = spikes(80, 2, 30, p=0.3, seed=7)
    for t in range(80):
        out_s, out_d = net_s(x[t]), net_d(x[t])
        assert torch.equal(out_s, out_d)
        rule_s.step()
        rule_d.step()
    torch.testing.assert_close(net_s.conn.to_dense(), net_d.conn.weight, rtol=1e-10, atol=1e-12)
    assert not torch.equal(net_s.conn.to_dense(), dense)  # it learned
    assert bool((net_d.conn.weight[~exists] == 0).all())


def test_mstdpet_on_sparse_with_per_synapse_delays_matches_masked_dense():
    sparse, dense, exists = random_sparse(seed=8, p=0.3)
    gen = torch.Generator().manual_seed(9)
    delays = torch.randint(0, 4, (20, 30), generator=gen) * exists
    sparse.set_delay(delays[sparse.post_index, sparse.pre_index].double())
    linear = Linear(30, 20, delay=delays.double()).double()
    with torch.no_grad():
        linear.weight.copy_(dense)
    post = LIFNeuron((20,), thresh=0.4, tau_v=10.0, tau_t=10.0, integrator="exact").double()
    post_d = LIFNeuron((20,), thresh=0.4, tau_v=10.0, tau_t=10.0, integrator="exact").double()

    class Pair(SNNNetwork):
        def __init__(self, conn, neuron):
            super().__init__()
            self.inp = Input((30,), tau_t=10.0, integrator="exact").double()
            self.conn, self.lif = conn, neuron
            self.connect(self.inp, self.conn, self.lif)

    net_s, net_d = Pair(sparse, post), Pair(linear, post_d)
    rule_s = MSTDPET(net_s, 1.0, 0.8, 0.05, 0.9)
    rule_d = MSTDPET(net_d, 1.0, 0.8, 0.05, 0.9, mask=exists)
    x = spikes(50, 2, 30, p=0.3, seed=10)
    for t in range(50):
        assert torch.equal(net_s(x[t]), net_d(x[t]))
        rule_s.update_state()
        rule_d.update_state()
        rule_s.step(torch.tensor([1.0, -0.5], dtype=torch.float64))
        rule_d.step(torch.tensor([1.0, -0.5], dtype=torch.float64))
    torch.testing.assert_close(net_s.conn.to_dense(), net_d.conn.weight, rtol=1e-10, atol=1e-12)
    assert not torch.equal(net_s.conn.to_dense(), dense)


def test_weight_normalization_on_sparse_uses_each_neuron_s_synapses():
    from pysnn.learning import WeightNormalization

    sparse, dense, exists = random_sparse(seed=11, p=0.3)
    net = SNNNetwork()
    net.add_layer("conn", sparse, LIFNeuron((20,)).double())
    norm = WeightNormalization(net, target=2.0)
    norm.step()
    sums = torch.zeros(20, dtype=torch.float64).index_add_(0, sparse.post_index, sparse.weight)
    has_inputs = torch.bincount(sparse.post_index, minlength=20) > 0
    torch.testing.assert_close(sums[has_inputs], torch.full_like(sums[has_inputs], 2.0))


def test_fede_stdp_on_sparse_normalises_by_each_neuron_s_own_receptive_field():
    from pysnn.learning import FedeSTDP

    sparse, dense, exists = random_sparse(seed=12, p=0.3)
    with torch.no_grad():
        sparse.weight.uniform_(0.3, 0.7, generator=torch.Generator().manual_seed(3))

    class Net(SNNNetwork):
        def __init__(self):
            super().__init__()
            self.inp = Input((30,), tau_t=10.0, integrator="exact")
            self.conn = sparse
            self.lif = LIFNeuron((20,), thresh=0.3, tau_v=10.0, tau_t=10.0, integrator="exact")
            self.connect(self.inp, self.conn, self.lif)

    net = Net().double()
    lr, w_init, a = 0.1, 0.5, 0.2
    rule = FedeSTDP(net, lr, w_init, a)
    x = spikes(30, 2, 30, p=0.3, seed=13)
    changed = 0
    for t in range(30):
        w0 = sparse.weight.detach().clone()
        net(x[t])
        trace, post = net.inp.trace, net.lif.spikes  # (2, 30), (2, 20)
        rule.step()
        # reference: per synapse s = (i <- j), mean over the samples where i spiked of
        # LTP - LTD with x_hat = x_j / max over i's own presynaptic neurons
        expected = w0.clone()
        for s in range(sparse.n_synapses):
            i, j = int(sparse.post_index[s]), int(sparse.pre_index[s])
            field = sparse.pre_index[sparse.post_index == i]
            terms = []
            for b in range(2):
                if post[b, i] == 0:
                    continue
                peak = trace[b, field].max()
                xh = trace[b, j] / peak if peak > 0 else torch.zeros((), dtype=torch.float64)
                c = w0[s] - w_init
                ltp = torch.exp(-c) * (torch.exp(xh) - a)
                terms.append(ltp - torch.exp(c) * (torch.exp(1 - xh) - a))
            if terms:
                expected[s] = w0[s] + lr * sum(terms) / len(terms)
        torch.testing.assert_close(sparse.weight, expected, rtol=1e-10, atol=1e-12)
        changed += int((expected != w0).sum())
    assert changed > 50, "the neurons must spike for the rule to act"
