"""Replay a Brian2 run of the Brette et al. (2007) networks in PySNN, spike by spike.

``benchmarks/brette_brian2.py --replay FILE.npz`` saves one Brian2 run: its
connectivity, the initial state and the spikes.  This script builds the same
network in PySNN (``examples/brette2007.py``'s ``BalancedNetwork`` with that
connectivity and initial state, Brian2's strict threshold ``v > -50 mV``),
runs it in float32 and float64 and prints, for each:

* the first step at which the set of spiking neurons differs (``-`` if none);
* the fraction of equal spikes up to 10, 50 and 100 ms and over the whole run,
  :math:`|A \\cap B| / |A \\cup B|` for the (neuron, step) pairs of PySNN (A)
  and Brian2 (B);
* the spike counts of both, and the statistics of both (rate, mean ISI CV,
  population Fano factor in 1 ms bins, as ``brette_compare.py`` computes them).

``--as-before`` runs what PySNN could express before issue #24, to show the
difference: CUBA with the synaptic current held constant over each step instead
of the exact coupled propagator, COBA with exactly decaying conductances
instead of forward-Euler ones::

    /opt/brian2-venv/bin/python benchmarks/brette_brian2.py --model cuba --replay cuba.npz
    python benchmarks/brette_replay.py cuba.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from brette2007 import BalancedNetwork, statistics  # noqa: E402

CHECKPOINTS_MS = (10.0, 50.0, 100.0)


def load(path: str) -> dict:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def pysnn_spikes(run: dict, dtype: torch.dtype, as_before: bool = False) -> tuple[np.ndarray, ...]:
    """Simulate the saved network in PySNN; ``(neuron, step)`` of every spike."""
    model, n, dt = str(run["model"]), int(run["n"]), float(run["dt"])
    exc = torch.as_tensor(np.stack([run["exc_post"], run["exc_pre"]]).astype(np.int64))
    inh = torch.as_tensor(np.stack([run["inh_post"], run["inh_pre"]]).astype(np.int64))
    net = BalancedNetwork(model, n, dt, connectivity=(exc, inh)).to(dtype)
    with torch.no_grad():  # Brian2 spikes where v > -50 mV, PySNN where v >= thresh
        thresh = torch.tensor(-50.0, dtype=dtype)
        net.neurons.thresh = torch.nextafter(thresh, torch.tensor(np.inf, dtype=dtype))
    if as_before:  # what PySNN computed before issue #24
        for syn in (net.syn_exc, net.syn_inh):
            syn.coupling = lambda post=None: None  # CUBA: the current held over the step
            syn.integrator = "exact"  # COBA: conductances decayed exactly
    net.initialize(
        torch.as_tensor(run["v0"]),
        torch.as_tensor(run["ge0"]),
        torch.as_tensor(run["gi0"]),
    )
    steps = int(round(float(run["duration"]) / dt))
    cells, times = [], []
    with torch.no_grad():
        for t in range(steps):
            fired = net()[0].nonzero().flatten()
            if fired.numel():
                cells.append(fired)
                times.append(torch.full_like(fired, t))
    if not cells:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return torch.cat(cells).numpy(), torch.cat(times).numpy()


def compare(ours: tuple[np.ndarray, ...], theirs: tuple[np.ndarray, ...], dt: float) -> dict:
    """First differing step, equal fractions at the checkpoints and the counts."""
    a = set(zip(ours[1].tolist(), ours[0].tolist()))
    b = set(zip(theirs[1].tolist(), theirs[0].tolist()))
    differing = sorted(step for step, _ in a ^ b)
    out: dict = {"first_differing_step": differing[0] if differing else None}
    if differing:
        out["first_differing_ms"] = round(differing[0] * dt, 6)
    last = max([s for s, _ in a | b], default=0)
    for ms in (*CHECKPOINTS_MS, (last + 1) * dt):
        limit = int(round(ms / dt))
        a_t = {s for s in a if s[0] < limit}
        b_t = {s for s in b if s[0] < limit}
        union = a_t | b_t
        key = "all" if ms not in CHECKPOINTS_MS else f"{ms:g}ms"
        out[f"equal_{key}"] = len(a_t & b_t) / len(union) if union else 1.0
    out["pysnn_spikes"], out["brian2_spikes"] = len(a), len(b)
    return out


def stats(spikes: tuple[np.ndarray, ...], run: dict) -> list[float]:
    """Rate (Hz), mean ISI CV and population Fano factor (1 ms bins) of ``(neuron, step)``."""
    n, dt, duration = int(run["n"]), float(run["dt"]), float(run["duration"])
    return [round(v, 4) for v in statistics(spikes[0], spikes[1] * dt, n, duration)]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="npz files of brette_brian2.py --replay")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument(
        "--as-before", action="store_true", help="what PySNN computed before issue #24"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results = []
    for path in args.files:
        run = load(path)
        theirs = (run["spike_i"].astype(np.int64), run["spike_step"].astype(np.int64))
        for name in args.dtypes:
            ours = pysnn_spikes(run, getattr(torch, name), as_before=args.as_before)
            row = dict(file=Path(path).name, model=str(run["model"]), dtype=name)
            row["brian2_float32"] = bool(run["float32"])
            if args.as_before:
                row["as_before"] = True
            row.update(compare(ours, theirs, float(run["dt"])))
            row["pysnn_stats"], row["brian2_stats"] = stats(ours, run), stats(theirs, run)
            print(json.dumps(row), flush=True)
            results.append(row)
    return results


if __name__ == "__main__":
    main()
