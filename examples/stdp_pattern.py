"""Unsupervised detection of a hidden, repeating spike pattern with pair STDP.

In the spirit of Masquelier, Guyonneau & Thorpe (2008), "Spike timing dependent
plasticity finds the start of repeating patterns in continuous spike trains".
``N_IN`` Poisson afferents fire at fixed rates between 10 and 50 Hz (dt = 1 ms).
A frozen 50 ms Poisson segment of half of the afferents (the *pattern*) is
pasted in at random, non-overlapping times (about a quarter of the time); the
other half of the afferents, and everything between presentations, is fresh
noise.  The pattern carries no rate cue: each afferent keeps its rate and the
frozen segment is drawn with the expected number of spikes, so only the spike
*timing* repeats.

One leaky integrate-and-fire neuron (exact integration, 10 ms membrane, 5 ms
refractory period) listens to all afferents through plastic synapses trained
online with nearest-spike pair STDP (``trace_mode="saturating"`` on both sides,
hard bounds [0, 1], depression slightly stronger than potentiation).  No
teacher, no reset between presentations.  At first it fires at random; STDP
then strengthens the synapses of the afferents that fire just before its
spikes, which are consistently the pattern afferents, and depresses the rest,
until it fires only for the pattern, a few ms after its onset.

Per block the script prints the neuron's rate, the fraction of its spikes that
fall inside pattern windows (hit rate; chance is the ~25% of time the pattern
occupies), the false-alarm rate (spikes/s outside the windows), the fraction of
presentations detected and the mean latency of the first spike after pattern
onset.  The full run (150 s of simulated time, ~750 presentations) takes under
a minute on a laptop CPU; ``--quick`` runs 6 s end to end in a few seconds::

    python examples/stdp_pattern.py [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from pysnn.connection import Linear
from pysnn.learning import STDP
from pysnn.monitor import SpikeMonitor
from pysnn.network import SNNNetwork
from pysnn.neuron import Input, LIFNeuron

DT = 1.0  # ms
N_IN = 500
PATTERN_LEN = 50  # steps (ms)
RATE_MIN, RATE_MAX = 10.0, 50.0  # Hz
GAP_MIN, GAP_MAX = 50, 250  # steps between presentations: mean 150, so ~25% pattern time
BLOCK_S = 10  # seconds per reported block

# neuron and plasticity
TAU_V = 10.0  # ms, membrane
THRESH = 10.5  # in units of summed weights (alpha_v = 1)
REFRAC = 5.0  # ms
W_INIT = (0.3, 0.7)  # initial weights, uniform
TAU_PLUS, TAU_MINUS = 17.0, 34.0  # ms: pre and post trace time constants
LR, A_PLUS, A_MINUS = 0.03, 1.0, 0.55  # LTD integral 0.55 * 34 = 18.7 > LTP 17


class PatternNet(SNNNetwork):
    """Afferents -> plastic synapses -> one LIF neuron."""

    def __init__(self, n_in: int, generator: torch.Generator) -> None:
        super().__init__()
        self.afferents = Input(
            (n_in,),
            dt=DT,
            alpha_t=1.0,
            tau_t=TAU_PLUS,
            update_type="exact",
            trace_mode="saturating",
        )
        self.fc = Linear(n_in, 1, dt=DT)
        with torch.no_grad():
            w = torch.rand(self.fc.weight.shape, generator=generator)
            self.fc.weight.copy_(W_INIT[0] + (W_INIT[1] - W_INIT[0]) * w)
        self.neuron = LIFNeuron(
            (1,),
            thresh=THRESH,
            v_rest=0.0,
            alpha_v=1.0,
            alpha_t=1.0,
            dt=DT,
            duration_refrac=REFRAC,
            tau_v=TAU_V,
            tau_t=TAU_MINUS,
            update_type="exact",
            trace_mode="saturating",
        )
        self.add_layer("fc", self.fc, self.neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes, trace = self.afferents(x)
        current, trace = self.fc(spikes, trace)
        spikes, _ = self.neuron(current)
        return spikes


class PatternStream:
    """Poisson background with a frozen pattern pasted in at random onsets."""

    def __init__(self, n_in: int, steps: int, generator: torch.Generator) -> None:
        self.gen = generator
        self.n_in = n_in
        self.rates = RATE_MIN + (RATE_MAX - RATE_MIN) * torch.rand(n_in, generator=generator)
        self.p = self.rates * DT / 1000.0  # spike probability per step
        self.in_pattern = torch.zeros(n_in, dtype=torch.bool)
        self.in_pattern[torch.randperm(n_in, generator=generator)[: n_in // 2]] = True
        # frozen segment of the pattern afferents, with the expected spike count
        # (so that the total input rate does not give the pattern away)
        expected = float(self.p[self.in_pattern].sum()) * PATTERN_LEN
        while True:
            frozen = torch.rand(PATTERN_LEN, n_in, generator=generator) < self.p
            frozen &= self.in_pattern
            if abs(int(frozen.sum()) - expected) <= 0.01 * expected + 1:
                break
        self.frozen = frozen
        # onsets: non-overlapping presentations separated by random gaps
        onsets, t = [], int(torch.randint(GAP_MIN, GAP_MAX + 1, (1,), generator=generator))
        while t + PATTERN_LEN <= steps:
            onsets.append(t)
            t += PATTERN_LEN + int(torch.randint(GAP_MIN, GAP_MAX + 1, (1,), generator=generator))
        self.onsets = torch.tensor(onsets, dtype=torch.long)
        # phase[t] = steps since the onset inside a presentation, -1 outside
        self.phase = torch.full((steps,), -1, dtype=torch.long)
        for onset in onsets:
            self.phase[onset : onset + PATTERN_LEN] = torch.arange(PATTERN_LEN)

    def chunk(self, start: int, stop: int) -> torch.Tensor:
        """Spikes of steps ``start..stop-1``, ``[T, 1, n_in]`` bool."""
        x = torch.rand(stop - start, self.n_in, generator=self.gen) < self.p
        phase = self.phase[start:stop]
        rows = (phase >= 0).nonzero().squeeze(1)
        if len(rows):
            pat = self.frozen[phase[rows]]
            x[rows] = torch.where(self.in_pattern, pat, x[rows])
        return x.unsqueeze(1)


def block_metrics(post: torch.Tensor, stream: PatternStream, start: int, stop: int) -> dict:
    """Selectivity of the output spikes ``post`` (bool ``[T]``) over steps ``start..stop-1``."""
    spikes = post[start:stop]
    inside = stream.phase[start:stop] >= 0
    n_spk, n_in = int(spikes.sum()), int((spikes & inside).sum())
    out_s = float((~inside).sum()) * DT / 1000.0
    onsets = stream.onsets[(stream.onsets >= start) & (stream.onsets + PATTERN_LEN <= stop)]
    latencies = []
    for onset in onsets.tolist():
        hits = post[onset : onset + PATTERN_LEN].nonzero()
        if len(hits):
            latencies.append(float(hits[0, 0]) * DT)
    return {
        "rate_hz": n_spk / ((stop - start) * DT / 1000.0),
        "hit_rate": n_in / n_spk if n_spk else float("nan"),
        "false_alarm_hz": (n_spk - n_in) / out_s if out_s else float("nan"),
        "detected": len(latencies) / len(onsets) if len(onsets) else float("nan"),
        "latency_ms": sum(latencies) / len(latencies) if latencies else float("nan"),
        "presentations": len(onsets),
    }


def fmt(m: dict) -> str:
    return (
        f"rate {m['rate_hz']:5.1f} Hz | hit rate {m['hit_rate']:6.1%} | "
        f"false alarms {m['false_alarm_hz']:5.2f} Hz | detected {m['detected']:6.1%} | "
        f"latency {m['latency_ms']:4.1f} ms"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="STDP finds a repeating spike pattern")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="6 s of simulated time")
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds")
    parser.add_argument("--n-in", type=int, default=N_IN, help="number of afferents")
    parser.add_argument("--plot", type=Path, default=Path("stdp_pattern.png"))
    args = parser.parse_args(argv)

    duration = args.duration if args.duration is not None else (6.0 if args.quick else 150.0)
    block_s = 2 if args.quick else BLOCK_S
    steps = int(round(duration * 1000.0 / DT))
    block = int(round(block_s * 1000.0 / DT))
    chunk = 1000  # steps generated and run at once

    gen = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)  # nothing below draws from it; belt and braces
    stream = PatternStream(args.n_in, steps, gen)
    net = PatternNet(args.n_in, gen)
    rule = STDP(net.layers, lr=LR, a_plus=A_PLUS, a_minus=A_MINUS, w_min=0.0, w_max=1.0)
    monitor = SpikeMonitor(net.neuron, num_steps=steps)
    print(
        f"{args.n_in} afferents at {RATE_MIN:.0f}-{RATE_MAX:.0f} Hz, {len(stream.onsets)} "
        f"presentations of a {PATTERN_LEN} ms pattern in {duration:g} s "
        f"({float((stream.phase >= 0).float().mean()):.0%} of the time)"
    )

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - optional

        def tqdm(it, **_):
            return it

    t0 = time.perf_counter()
    first_in = last_in = None
    plot_len = min(1000, steps)
    net.reset_state()
    post = torch.zeros(steps, dtype=torch.bool)
    history = []
    bar = tqdm(range(0, steps, chunk), desc="simulating", unit="s", leave=False)
    for start in bar:
        stop = min(start + chunk, steps)
        x = stream.chunk(start, stop)
        if start == 0:
            first_in = x[:plot_len, 0].clone()
        if stop == steps:
            last_in = x[-plot_len:, 0].clone()
        net.run(x, callback=lambda t, out: rule.step(), reset=False)
        if stop % block == 0 or stop == steps:
            post = monitor.get()[:, 0, 0]
            b0 = (stop - 1) // block * block
            m = block_metrics(post, stream, b0, stop)
            history.append(m)
            tqdm.write(f"t = {b0 * DT / 1000:5.0f}-{stop * DT / 1000:3.0f} s: " + fmt(m))
    wall = time.perf_counter() - t0
    post = monitor.get()[:, 0, 0]

    first, final = history[0], history[-1]
    weight = net.fc.weight.detach()[0]
    w_pat, w_bg = weight[stream.in_pattern], weight[~stream.in_pattern]
    print(f"first block: {fmt(first)}")
    print(f"final block: {fmt(final)}")
    print(
        f"weights: pattern afferents mean {float(w_pat.mean()):.2f} "
        f"({float((w_pat > 0.5).float().mean()):.0%} > 0.5), others mean "
        f"{float(w_bg.mean()):.2f} ({float((w_bg > 0.5).float().mean()):.0%} > 0.5)"
    )
    chance = float((stream.phase >= 0).float().mean())
    selective = (
        math.isfinite(final["hit_rate"]) and final["hit_rate"] > 0.8 and final["detected"] > 0.8
    )
    print(
        f"{'SELECTIVE' if selective else 'not (yet) selective'}: {final['hit_rate']:.0%} of the "
        f"final spikes inside pattern windows (chance {chance:.0%}), {wall:.1f} s wall time"
    )
    result = {
        "hit_rate": final["hit_rate"],
        "false_alarm_hz": final["false_alarm_hz"],
        "detected": final["detected"],
        "latency_ms": final["latency_ms"],
        "rate_hz": final["rate_hz"],
        "first_hit_rate": first["hit_rate"],
        "chance": chance,
        "w_pattern": float(w_pat.mean()),
        "w_background": float(w_bg.mean()),
        "selective": selective,
        "wall_s": wall,
    }

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return result
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [2, 2, 1.2]})
    order = torch.argsort((~stream.in_pattern).int(), stable=True)  # pattern afferents first
    for ax, x_in, t_start, title in (
        (axes[0], first_in, 0, "first second"),
        (axes[1], last_in, steps - plot_len, "last second"),
    ):
        t_ms, aff = x_in[:, order].nonzero(as_tuple=True)
        ax.scatter(t_start + t_ms, aff, s=0.3, c="0.4", marker=".", linewidths=0)
        for onset in stream.onsets.tolist():
            if t_start - PATTERN_LEN < onset < t_start + plot_len:
                ax.axvspan(onset, onset + PATTERN_LEN, color="tab:orange", alpha=0.25, lw=0)
        for t_post in post[t_start : t_start + plot_len].nonzero()[:, 0].tolist():
            ax.axvline(t_start + t_post, color="tab:red", lw=1.2)
        ax.axhline(int(stream.in_pattern.sum()) - 0.5, color="k", lw=0.5, ls=":")
        ax.set_xlim(t_start, t_start + plot_len)
        ax.set_ylim(-0.5, args.n_in - 0.5)
        ax.set_xlabel("time (ms)")
        ax.set_title(f"{title}: pattern (shaded), output spikes (red)")
    axes[0].set_ylabel("afferent (pattern afferents below the dotted line)")
    bins = torch.linspace(0, 1, 26).tolist()
    axes[2].hist(w_pat.numpy(), bins=bins, alpha=0.7, label="pattern afferents")
    axes[2].hist(w_bg.numpy(), bins=bins, alpha=0.7, label="other afferents")
    axes[2].set_xlabel("final weight")
    axes[2].set_ylabel("synapses")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)
    plt.close(fig)
    print(f"plot saved to {args.plot}")
    return result


if __name__ == "__main__":
    main()
