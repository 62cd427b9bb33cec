"""Model-parallel simulation (pysnn.parallel): 2 gloo ranks give the spikes of one process."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pysnn import parallel
from pysnn.connection import ProceduralSparse, RandomConnectivity, Sparse
from pysnn.drive import PoissonDrive
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import LIFNeuron
from pysnn.synapse import ExponentialSynapse

ROOT = Path(__file__).resolve().parents[1]
DT, STEPS, BATCH = 0.1, 300, 2
BLOCKS = [80, 20]
#: how long the two ranks may take together before the test fails (no hang in CI)
TIMEOUT_S = 120


def connectivity(exc_only: bool = False) -> RandomConnectivity:
    if exc_only:
        return RandomConnectivity(
            [100], [100], 1500, weight=40.0, weight_std=4.0, delay=1.0, delay_std=0.5, dt=DT, seed=7
        )
    return RandomConnectivity(
        BLOCKS,
        BLOCKS,
        [[1200, 300], [300, 80]],
        weight=[[45.0, -180.0], [45.0, -180.0]],
        weight_std=[[4.5, 18.0], [4.5, 18.0]],
        delay=[[1.5, 0.75], [1.5, 0.75]],
        delay_std=[[0.75, 0.375], [0.75, 0.375]],
        dt=DT,
        seed=11,
    )


class Circuit(SNNNetwork):
    """LIF neurons (``mine`` of them), recurrent synapses, Poisson drive; one step per call."""

    def __init__(self, mine: torch.Tensor, mode: str) -> None:
        super().__init__()
        n = int(mine.numel())
        conn = connectivity(exc_only=mode == "history")
        self.neurons = LIFNeuron(
            (n,),
            thresh=-50.0,
            v_rest=-65.0,
            v_reset=-65.0,
            alpha_v=0.04,
            tau_v=10.0,
            duration_refrac=1.9,
            dt=DT,
        )
        self.syn = ExponentialSynapse((n,), tau_syn=0.5, dt=DT)
        if mode == "procedural":
            self.rec = ProceduralSparse(conn, post=mine)
        else:
            delivery = "queue" if mode == "stored" else "history"
            self.rec = Sparse.from_connectivity(conn, post=mine, delivery=delivery)
        self.drive = PoissonDrive(torch.full((n,), 9000.0), n, dt=DT, seed=5, index=mine)
        self.add_layer("rec", self.rec, self.neurons, self.neurons, synapse=self.syn)
        gen = torch.Generator().manual_seed(3)
        self.v0 = (-65.0 + 10.0 * torch.rand(sum(BLOCKS), generator=gen))[mine]

    def start(self) -> None:
        self.reset_state(BATCH)
        self.neurons.reset_state(BATCH)
        with torch.no_grad():
            self.neurons.v_cell.copy_(self.v0.expand(BATCH, -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        recurrent, _ = self.rec(self.neurons.spikes, self.neurons.trace)
        external = self.drive(int(x.shape[0])) * 90.0
        current = self.syn(recurrent + external, post=self.neurons)
        return self.neurons(current)[0]


def simulate(mode: str, mine: torch.Tensor, mp_handle_factory=None) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = Circuit(mine, mode)
    handle = None if mp_handle_factory is None else mp_handle_factory(net)
    rule = None
    if mode == "history":
        rule = STDP(net.layers["rec"], a_plus=0.5, a_minus=0.6, lr=1.0, w_min=0.0, w_max=80.0)
    net.start()
    inputs = torch.zeros(STEPS, BATCH, 0)
    out = net.run(inputs, reset=False, rules=rule, warn_silent=False)
    result = {"spikes": out if handle is None else handle.gather(out, net.neurons)}
    if mode == "history":
        result["weight"] = net.rec.to_dense()  # rows: this rank's neurons
    if handle is not None:
        result["interval"] = torch.tensor(handle.interval)
    return result


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    try:
        torch.set_num_threads(1)
        results = {}
        for mode in ("procedural", "stored", "history"):
            blocks = [100] if mode == "history" else BLOCKS
            split = parallel.Split(blocks, world)
            mine = split.owned(rank)

            def install(net, split=split):
                return parallel.model_parallel(net, {net.neurons: split})

            results[mode] = simulate(mode, mine, install)
            results[mode]["mine"] = mine
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_ranks(worker, world: int, tmp: Path, *args) -> list:
    """Start ``world`` processes running ``worker`` and wait at most TIMEOUT_S for them."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([old] if old else []))
    try:
        context = mp.start_processes(
            worker,
            args=(world, str(tmp / "init"), str(tmp), *args),
            nprocs=world,
            join=False,
            start_method="spawn",
        )
        import time

        deadline = time.monotonic() + TIMEOUT_S
        while not context.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                pytest.fail(f"the {world} ranks did not finish within {TIMEOUT_S} s")
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    return [torch.load(tmp / f"rank{r}.pt") for r in range(world)]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    return run_ranks(_worker, 2, tmp_path_factory.mktemp("parallel"))


@pytest.mark.parametrize("mode", ["procedural", "stored"])
def test_two_ranks_spike_as_one_process(two_ranks, mode):
    reference = simulate(mode, torch.arange(sum(BLOCKS)))["spikes"]
    n_spikes = int(reference.sum())
    assert 50 < n_spikes < 0.2 * reference.numel()  # the network is active, not saturated
    for rank in range(2):
        assert torch.equal(two_ranks[rank][mode]["spikes"], reference)
        # spikes are exchanged once per interval of min_delay + 1 = 2 steps
        assert int(two_ranks[rank][mode]["interval"]) == connectivity().min_delay + 1 == 2


def test_stdp_on_stored_synapses_across_the_partition(two_ranks):
    mine_all = torch.arange(100)
    reference = simulate("history", mine_all)
    initial = Sparse.from_connectivity(connectivity(exc_only=True), delivery="history").to_dense()
    assert (reference["weight"] - initial).abs().max() > 1.0  # STDP changed the weights
    for rank in range(2):
        got = two_ranks[rank]["history"]
        assert torch.equal(got["spikes"], reference["spikes"])
        assert int(got["interval"]) == 1  # a presynaptic history needs every step's spikes
        assert torch.equal(got["weight"], reference["weight"][got["mine"]])


def test_split_and_bad_arguments(tmp_path):
    split = parallel.Split([5, 2], 2)
    assert split.owned(0).tolist() == [0, 1, 2, 5] and split.owned(1).tolist() == [3, 4, 6]
    assert split.count(0) == 4
    with pytest.raises(ValueError, match="rank"):
        split.owned(2)
    with pytest.raises(ValueError, match="block_sizes"):
        parallel.Split([0], 2)
    net = Circuit(torch.arange(100), "procedural")
    with pytest.raises(RuntimeError, match="init_process_group"):
        parallel.model_parallel(net, {net.neurons: parallel.Split(BLOCKS, 1)})
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        with pytest.raises(ValueError, match="2 processes"):
            parallel.model_parallel(net, {net.neurons: parallel.Split(BLOCKS, 2)})
        with pytest.raises(ValueError, match="interval"):
            parallel.model_parallel(net, {net.neurons: parallel.Split(BLOCKS, 1)}, interval=3)
        handle = parallel.model_parallel(net, {net.neurons: parallel.Split(BLOCKS, 1)})
        with pytest.raises(ValueError, match="model-parallel"):
            net.run(torch.zeros(3, 1, 0), strategy="window")
        handle.remove()
        assert net.simulator.model_parallel is None
    finally:
        dist.destroy_process_group()
