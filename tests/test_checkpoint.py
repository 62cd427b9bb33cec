"""Checkpoints: exact resumption, atomic writes under SIGKILL, elastic restart of a killed rank."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from pysnn.checkpoint import Checkpointer, atomic_save, capture, restore
from pysnn.connection import Linear, Sparse
from pysnn.drive import PoissonDrive
from pysnn.learning import STDP
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent


class Plastic(SNNNetwork):
    """Poisson-driven input -> LIF with a delayed recurrent Sparse and STDP on the input weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = Input((20,), dt=1.0)
        self.fc = Linear(20, 10, delay=2.0)
        self.lif = LIFNeuron((10,), thresh=0.3, tau_v=10.0, dt=1.0)
        self.rec = Sparse.fixed_probability(10, 10, 0.3, seed=2, weight=0.2, delay=3.0)
        self.drive = PoissonDrive(torch.full((10,), 50.0), 10, dt=1.0, seed=4)
        self.add_layer("fc", self.fc, self.lif, self.inp)
        self.add_layer("rec", self.rec, self.lif, self.lif)
        with torch.no_grad():
            self.fc.weight.uniform_(0.0, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, t = self.inp(x)
        a, _ = self.fc(s, t)
        b, _ = self.rec(self.lif.spikes, self.lif.trace)
        return self.lif([a, b, 0.2 * self.drive(int(x.shape[0]))])[0]


def steps(net: Plastic, rule: STDP, n: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        x = ((torch.rand(3, 20) < 0.2) | (torch.rand(3, 20, generator=gen) < 0.05)).float()
        out.append(net(x))
        rule.step()
    return torch.stack(out)


def test_a_restored_run_continues_exactly(tmp_path):
    net = Plastic()
    rule = STDP(net.layers["fc"], lr=0.05, w_min=0.0, w_max=1.0)
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(1)
    steps(net, rule, 30, gen)
    path = atomic_save(capture(net, [rule], [gen], extra={"note": 1}), tmp_path / "c.pt")
    expected = steps(net, rule, 40, gen)
    weights = net.fc.weight.detach().clone()
    assert float(expected.sum()) > 20

    twin = Plastic()
    twin_rule = STDP(twin.layers["fc"], lr=0.05, w_min=0.0, w_max=1.0)
    twin_gen = torch.Generator()
    torch.manual_seed(123)  # the checkpoint's global stream replaces this one
    state = torch.load(path, weights_only=False)
    assert restore(state, twin, [twin_rule], [twin_gen]) == {"note": 1}
    assert twin.step_index == 30 and twin.drive.step == 30
    assert torch.equal(steps(twin, twin_rule, 40, twin_gen), expected)
    assert torch.equal(twin.fc.weight, weights)
    with pytest.raises(ValueError, match="1 rules, 0 were given"):
        restore(state, twin)


def test_checkpointer_keeps_the_last_and_finds_the_latest(tmp_path):
    ckpt = Checkpointer(tmp_path, keep=2)
    assert ckpt.latest() is None
    for step in (10, 20, 30):
        ckpt.save(step, {"step": step})
    assert ckpt.steps() == [20, 30] and ckpt.latest() == 30
    assert ckpt.load(30) == {"step": 30}
    (tmp_path / ".checkpoint-step000000000040-rank0.pt.tmp-x").write_bytes(b"half")
    ckpt.save(40, {"step": 40})
    assert not list(tmp_path.glob(".*tmp-*"))  # stale temporary files are removed
    with pytest.raises(ValueError, match="keep"):
        Checkpointer(tmp_path, keep=1)


WRITER = textwrap.dedent("""
    import io, os, sys, time
    import torch
    from pysnn.checkpoint import Checkpointer

    ckpt = Checkpointer(sys.argv[1])
    ckpt.save(1, {"values": torch.arange(1000)})
    if sys.argv[2] == "half":
        real_save = torch.save

        def half_save(obj, handle):  # write half of the file, then hang
            data = io.BytesIO()
            real_save(obj, data)
            handle.write(data.getvalue()[: len(data.getvalue()) // 2])
            handle.flush()
            os.fsync(handle.fileno())
            print("HALF", flush=True)
            time.sleep(600)

        torch.save = half_save
        ckpt.save(2, {"values": torch.arange(10**6)})
    else:  # save as fast as possible until killed
        print("LOOP", flush=True)
        for step in range(2, 10**6):
            ckpt.save(step, {"values": torch.arange(10**6) + step, "step": step})
    """)


def _start_writer(tmp_path: Path, mode: str) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "ckpt"), mode],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )


def test_a_writer_killed_mid_write_leaves_the_previous_checkpoint(tmp_path):
    writer = _start_writer(tmp_path, "half")
    try:
        assert writer.stdout.readline().strip() == "HALF"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    ckpt = Checkpointer(tmp_path / "ckpt")
    partial = list((tmp_path / "ckpt").glob(".*tmp-*"))
    assert len(partial) == 1 and partial[0].stat().st_size > 1000  # killed mid-write
    assert ckpt.steps() == [1] and ckpt.latest() == 1
    assert torch.equal(ckpt.load(1)["values"], torch.arange(1000))


def test_a_writer_killed_at_any_moment_leaves_a_whole_checkpoint(tmp_path):
    writer = _start_writer(tmp_path, "loop")
    try:
        assert writer.stdout.readline().strip() == "LOOP"
        time.sleep(1.0)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    ckpt = Checkpointer(tmp_path / "ckpt")
    latest = ckpt.latest()
    assert latest is not None and latest >= 1
    for step in ckpt.steps():  # every complete file loads, with its own content
        state = ckpt.load(step)
        if step > 1:
            assert state["step"] == step
            assert torch.equal(state["values"], torch.arange(10**6) + step)


ELASTIC = textwrap.dedent("""
    import os, signal, sys
    import torch
    import torch.distributed as dist
    sys.path.insert(0, sys.argv[3])
    from test_parallel import BATCH, BLOCKS, Circuit
    from pysnn import parallel
    from pysnn.checkpoint import Checkpointer, capture, restore

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    split = parallel.Split(BLOCKS, world)
    net = Circuit(split.owned(rank), "procedural")
    handle = parallel.model_parallel(net, {net.neurons: split})
    ckpt = Checkpointer(sys.argv[1])
    total, every = 300, 50
    inputs = torch.zeros(total, BATCH, 0)
    step = ckpt.latest()
    if step is None:
        net.start()
        step, recorded = 0, []
    else:
        recorded = restore(ckpt.load(step), net)
        print(f"rank {rank} resumed at step {step}", flush=True)
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    while step < total:
        out = net.run(inputs[step : step + every], reset=False, warn_silent=False)
        recorded.append(handle.gather(out, net.neurons))
        step += every
        if attempt == 0 and rank == 1 and step == 150:
            os.kill(os.getpid(), signal.SIGKILL)  # dies before its checkpoint at 150
        ckpt.save(step, capture(net, extra=recorded))
    if rank == 0:
        torch.save({"spikes": torch.cat(recorded), "attempt": attempt}, sys.argv[2])
    dist.destroy_process_group()
    """)


def test_torchrun_restarts_a_killed_rank_from_the_last_checkpoint(tmp_path):
    from test_parallel import simulate

    script = tmp_path / "elastic.py"
    script.write_text(ELASTIC)
    out = tmp_path / "spikes.pt"
    # torchrun shares its rendezvous store with the workers by default, and restarted
    # workers can then read the addresses of the killed ones (pytorch/pytorch#135712)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "--max-restarts",
        "1",
        "--monitor-interval",
        "0.2",
        str(script),
        str(tmp_path / "ckpt"),
        str(out),
        str(TESTS),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    # both ranks resumed from step 100, the last checkpoint both had
    assert "rank 0 resumed at step 100" in result.stdout + result.stderr
    assert "rank 1 resumed at step 100" in result.stdout + result.stderr
    saved = torch.load(out)
    assert saved["attempt"] == 1
    reference = simulate("procedural", torch.arange(sum([80, 20])))["spikes"]
    assert torch.equal(saved["spikes"], reference)
