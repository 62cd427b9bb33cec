"""Procedural connectivity: regenerated synapses equal the stored ones, spike for spike."""

import pytest
import torch

from pysnn.connection import ProceduralSparse, RandomConnectivity, Sparse
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron
from pysnn.queue import SpikeQueue

DT = 0.1


def two_blocks(seed=1, rule="fixed_total_number", counts=((640, 160), (160, 40))):
    return RandomConnectivity(
        [80, 20],
        [70, 30],
        counts,
        rule=rule,
        weight=[[0.5, -2.0], [0.4, -1.5]],
        weight_std=[[0.05, 0.2], [0.04, 0.15]],
        delay=[[1.5, 0.75], [1.5, 0.75]],
        delay_std=[[0.75, 0.375], [0.75, 0.375]],
        dt=DT,
        seed=seed,
    )


def drive(steps, batch, n, p=0.05, seed=0, graded=False):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(steps, batch, n, generator=gen) < p).float()
    if graded:
        x = x * torch.rand(steps, batch, n, generator=gen) * 3
    return x


def reference_current(conn, x):
    """I_i(t) = sum_s w_s x_pre(s)(t - d_s), in float64 from the listed synapses."""
    pre, post, weight, delay = conn.all_synapses()
    steps, batch = x.shape[:2]
    out = torch.zeros(steps, batch, conn.out_features, dtype=torch.float64)
    xd = x.double()
    for t in range(steps):
        src = t - delay
        ok = src >= 0
        values = weight[ok] * xd[src[ok], :, pre[ok]].t()  # (batch, S)
        out[t].index_add_(1, post[ok], values)
    return out


def test_the_synapses_follow_the_rule_and_the_distributions():
    conn = two_blocks()
    assert conn.n_synapses == 1000
    pre, post, weight, delay = conn.all_synapses()
    assert pre.numel() == 1000
    # block (post a, pre b) receives exactly counts[a][b] synapses
    pre_block, post_block = (pre >= 80).long(), (post >= 70).long()
    table = torch.bincount(post_block * 2 + pre_block, minlength=4).view(2, 2)
    assert table.tolist() == [[640, 160], [160, 40]]
    # excitatory weights stay positive, inhibitory negative (redrawn otherwise)
    assert bool((weight[pre_block == 0] > 0).all()) and bool((weight[pre_block == 1] < 0).all())
    exc = weight[(pre_block == 0) & (post_block == 0)]
    assert float(exc.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(exc.std()) == pytest.approx(0.05, abs=0.01)
    # delays: at least one step (delay_min = dt / 2), at most the bound used for the queue
    assert int(delay.min()) >= 1 and int(delay.max()) <= conn.max_delay
    assert float(delay[pre_block == 0].double().mean()) * DT == pytest.approx(1.5, abs=0.15)
    assert conn.min_delay == 1


def test_fixed_outdegree_rows_and_regeneration_per_neuron():
    conn = two_blocks(rule="fixed_outdegree", counts=((5, 3), (2, 1)))
    assert conn.n_synapses == 80 * 7 + 20 * 4
    pre, post, weight, delay = conn.all_synapses()
    assert torch.bincount(pre, minlength=100).tolist() == [7] * 80 + [4] * 20
    # one neuron's row regenerated alone is the same as in the full list
    syn = conn.synapses(torch.tensor([83, 5]))
    for position, unit in enumerate((83, 5)):
        mine = syn.owner == position
        assert torch.equal(syn.post[mine], post[pre == unit])
        assert torch.equal(syn.weight[mine], weight[pre == unit])
        assert torch.equal(syn.delay[mine], delay[pre == unit])


@pytest.mark.parametrize("graded", [False, True])
def test_procedural_equals_stored_bit_for_bit_and_the_reference(graded):
    conn = two_blocks()
    procedural, stored = ProceduralSparse(conn), Sparse.from_connectivity(conn)
    x = drive(120, 2, 100, graded=graded)
    out_p = torch.stack([procedural(x[t])[0] for t in range(120)])
    out_s = torch.stack([stored(x[t])[0] for t in range(120)])
    assert torch.equal(out_p, out_s)
    assert float(out_p.abs().sum()) > 10
    assert torch.allclose(out_p.double(), reference_current(conn, x), atol=1e-5)


def test_queue_equals_history_delivery_of_the_same_synapses():
    conn = two_blocks(seed=4)
    queued = Sparse.from_connectivity(conn, delivery="queue").double()
    history = Sparse.from_connectivity(conn, delivery="history").double()
    assert queued.delivery == "queue" and history.delivery == "history"
    x = drive(80, 3, 100, seed=2).double()
    a = torch.stack([queued(x[t])[0] for t in range(80)])
    b = torch.stack([history(x[t])[0] for t in range(80)])
    assert torch.allclose(a, b, atol=1e-12)


def test_one_process_share_of_the_targets():
    conn = two_blocks(seed=2)
    mine = torch.tensor([3, 71, 0, 99, 50])
    full, part = ProceduralSparse(conn), ProceduralSparse(conn, post=mine)
    stored = Sparse.from_connectivity(conn, post=mine)
    assert part.out_features == 5 and stored.out_features == 5
    x = drive(60, 1, 100, p=0.1, seed=3)
    for t in range(60):
        a, b, c = full(x[t])[0], part(x[t])[0], stored(x[t])[0]
        assert torch.equal(a[:, mine], b) and torch.equal(b, c)


def test_late_delivery_equals_delivery_on_time():
    """deliver(spikes, lag) once per interval gives what per-step calls give.

    Per step, a recurrent connection is called with the presynaptic spikes of
    the previous step; a spike of step s reaches the queue at step s + 1 and
    is due at s + 1 + d.  Delivered late, the spikes of an interval of
    ``min_delay + 1`` steps reach the queue after its last step, with lags
    that keep them due at the same steps.
    """
    conn = two_blocks(seed=5)
    on_time, late = ProceduralSparse(conn), ProceduralSparse(conn)
    x = drive(90, 1, 100, p=0.1, seed=4)
    interval = conn.min_delay + 1  # 2 steps
    pending, out_late, out_on_time = [], [], []
    for t in range(90):
        out_on_time.append(on_time(x[t - 1] if t else torch.zeros_like(x[0]))[0])
        out_late.append(late.take(1))
        pending.append(x[t])
        if len(pending) == interval:
            for m, spikes in enumerate(pending):
                late.deliver(spikes, lag=interval - 1 - m)
            pending = []
    assert torch.equal(torch.stack(out_late), torch.stack(out_on_time))
    assert float(torch.stack(out_late).abs().sum()) > 10
    with pytest.raises(ValueError, match="every delay >= 2"):
        late.deliver(x[0], lag=2)


def test_spike_queue_by_hand():
    queue = SpikeQueue(3, 4)
    queue.start(1)
    queue.add(
        torch.tensor([0, 2, 2]),
        torch.tensor([0]),
        torch.tensor([1, 0, 0]),
        torch.tensor([1.0, 2.0, 0.5]),
    )
    assert queue.take().tolist() == [[0.0, 1.0, 0.0]]
    assert queue.take().tolist() == [[0.0, 0.0, 0.0]]
    queue.add(torch.tensor([3]), torch.tensor([0]), torch.tensor([2]), torch.tensor([4.0]))
    assert queue.take().tolist() == [[2.5, 0.0, 0.0]]
    assert [queue.take().tolist() for _ in range(3)] == [[[0.0] * 3]] * 2 + [[[0.0, 0.0, 4.0]]]


def test_memory_does_not_grow_with_the_synapse_count():
    def stored_values(module):
        return sum(b.numel() for b in module.buffers()) + sum(
            p.numel() for p in module.parameters()
        )

    small = ProceduralSparse(
        RandomConnectivity([1000], [1000], 10_000, weight=1.0, delay=1.0, dt=1.0)
    )
    large = ProceduralSparse(
        RandomConnectivity([1000], [1000], 1_000_000, weight=1.0, delay=1.0, dt=1.0)
    )
    assert stored_values(small) == stored_values(large)
    stored = Sparse.from_connectivity(
        RandomConnectivity([1000], [1000], 10_000, weight=1.0, delay=1.0, dt=1.0)
    )
    assert stored_values(stored) > 3 * 10_000


class Projection(SNNNetwork):
    def __init__(self, conn):
        super().__init__()
        self.inp = Input((conn.in_features,), dt=DT)
        self.lif = LIFNeuron((conn.out_features,), thresh=0.5, dt=DT)
        self.conn = conn
        self.add_layer("conn", conn, self.lif, self.inp)

    def forward(self, x, fail=False):
        s, _ = self.inp(x)
        current, _ = self.conn(s)
        if fail:
            raise RuntimeError("a later module failed")
        return self.lif(current)[0]


@pytest.mark.parametrize("kind", ["procedural", "queue"])
def test_plasticity_is_refused_clearly(kind):
    conn = two_blocks()
    module = ProceduralSparse(conn) if kind == "procedural" else Sparse.from_connectivity(conn)
    net = Projection(module)
    with pytest.raises(ValueError, match="cannot learn|no presynaptic history"):
        STDP(net.layers["conn"])


def test_a_failed_step_leaves_a_journaled_queue_as_it_was():
    conn = RandomConnectivity(
        [100], [1000], 20_000, weight=1.0, weight_std=0.1, delay=2.0, delay_std=1.0, dt=DT, seed=3
    )
    net, twin = Projection(ProceduralSparse(conn)), Projection(ProceduralSparse(conn))
    queue = net.conn.spike_queue
    x = drive(8, 2, 100, p=0.3)
    for t in range(5):
        net(x[t])
        twin(x[t])
    assert queue.queue.numel() > SpikeQueue.SNAPSHOT_WHOLE_NUMEL  # undone from its journal
    before, head = queue.queue.clone(), queue.head
    with pytest.raises(RuntimeError, match="later module"):
        net(x[5], fail=True)
    assert torch.equal(queue.queue, before) and queue.head == head
    for t in range(5, 8):  # and the run goes on as if nothing had happened
        assert torch.equal(net(x[t]), twin(x[t]))
    assert torch.equal(queue.queue, twin.conn.spike_queue.queue)
