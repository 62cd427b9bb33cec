"""Quick start: locate a sound with delay lines (Jeffress model), in a few lines of PySNN.

A click reaches the left ear at step t and the right ear at step t + ITD (the
interaural time difference, -4..4 steps).  Nine coincidence-detector neurons
each receive the left ear through a synapse with delay ``k`` and the right ear
through one with delay 4, so neuron ``k`` sees both spikes at once only when
ITD = k - 4.  Each input spike alone is below threshold; the membrane forgets
within one step, so only a coincidence fires a neuron.

The whole batch of nine ITDs runs at once; the network "computes" the
direction of the sound with per-synapse delays.  Runs in about a second::

    python examples/quickstart.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pysnn.connection import Linear
from pysnn.monitor import SpikeMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import DecayFactor, Input, LIFNeuron

#: printed next to the numbers of a --quick run
QUICK_NOTE = (
    "--quick: a reduced run that only shows that the pipeline runs; its numbers are not "
    "results (run without --quick for those)"
)

MAX_ITD = 4
N_DETECTORS = 2 * MAX_ITD + 1


class SoundLocaliser(SNNNetwork):
    """Two ears -> delay lines -> coincidence-detecting LIF neurons."""

    def __init__(self) -> None:
        super().__init__()
        self.ears = Input((2,), dt=1.0)
        # delay[k] = (left delay k, right delay MAX_ITD), in ms with dt = 1 ms
        delays = torch.stack(
            [torch.arange(N_DETECTORS), torch.full((N_DETECTORS,), MAX_ITD)], dim=1
        )
        self.lines = Linear(2, N_DETECTORS, dt=1.0, delay=delays)
        self.lines.reset_weights("constant", gain=0.6)  # one spike alone: 0.6 < 1
        # a decay factor of zero per step: the membrane forgets after each step, so only
        # spikes arriving in the same step add up (exact integration: v = I then)
        self.detectors = LIFNeuron(
            (N_DETECTORS,), thresh=1.0, v_rest=0.0, alpha_v=1.0, dt=1.0, tau_v=DecayFactor(0.0)
        )
        self.add_layer("delay_lines", self.lines, self.detectors)

    def forward(self, ears: torch.Tensor) -> torch.Tensor:
        spikes, trace = self.ears(ears)
        x, _ = self.lines(spikes, trace)
        spikes, _ = self.detectors(x)
        return spikes


def make_clicks(steps: int, period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clicks every ``period`` steps for each ITD in -4..4: ``[T, 9, 2]`` spikes."""
    itds = torch.arange(-MAX_ITD, MAX_ITD + 1)
    clicks = torch.zeros(steps, len(itds), 2, dtype=torch.bool)
    for onset in range(MAX_ITD, steps - 2 * MAX_ITD, period):
        clicks[onset, :, 0] = True  # left ear
        clicks[onset + itds, torch.arange(len(itds)), 1] = True  # right ear
    return clicks, itds


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description="Sound localisation with delay lines",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=200, help="timesteps (1 ms each)")
    parser.add_argument("--period", type=int, default=20, help="steps between clicks")
    parser.add_argument("--plot", type=Path, default=Path("quickstart.png"), help="figure file")
    parser.add_argument(
        "--seed", type=int, default=0, help="torch seed (the clicks are deterministic)"
    )
    parser.add_argument("--quick", action="store_true", help="100 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = 100
    torch.manual_seed(args.seed)

    net = SoundLocaliser()
    clicks, itds = make_clicks(args.steps, args.period)
    monitor = SpikeMonitor(net.detectors, num_steps=args.steps)  # records every step
    net.run(clicks)  # batch: the 9 ITDs
    counts = monitor.counts()  # rows: true ITD, columns: detector
    guess = counts.argmax(1) - MAX_ITD
    accuracy = float((guess == itds).float().mean())

    print("spike counts (rows: true ITD in steps, columns: detector tuned to ITD)")
    print("ITD  " + " ".join(f"{k - MAX_ITD:>3d}" for k in range(N_DETECTORS)))
    for itd, row in zip(itds.tolist(), counts.int().tolist()):
        print(f"{itd:>3d}  " + " ".join(f"{c:>3d}" for c in row))
    print(f"direction decoded correctly for {accuracy:.0%} of the {len(itds)} ITDs")
    if args.quick:
        print(QUICK_NOTE)

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so the figure is not saved (pip install matplotlib)")
        return accuracy
    from pysnn import plot

    fig, (ax, ax_raster) = plt.subplots(1, 2, figsize=(10, 4))
    im = ax.imshow(counts.numpy(), cmap="viridis")
    ax.set_xticks(range(N_DETECTORS), [str(k - MAX_ITD) for k in range(N_DETECTORS)])
    ax.set_yticks(range(N_DETECTORS), [str(i) for i in itds.tolist()])
    ax.set_xlabel("detector tuned to ITD (steps)")
    ax.set_ylabel("true ITD (steps)")
    ax.set_title("coincidence detection with delays")
    fig.colorbar(im, ax=ax, label="spikes")
    itd = int(itds[-1])
    plot.raster(
        monitor.get(), sample=len(itds) - 1, ax=ax_raster, s=30, title=f"detectors, ITD = {itd}"
    )
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    print(f"figure saved to {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
