"""Brian2 reference of the Brette et al. (2007) CUBA and COBA benchmarks.

Runs the same networks as ``examples/brette2007.py`` (same parameters, same
integration scheme) in Brian2 with its cython code generation target and prints
one JSON line per run: model, N, seed, mean firing rate (Hz), mean CV of the
inter-spike intervals, and the wall time of ``run()`` (build and compilation
excluded: the first run of each model compiles and is repeated).

Brian2 needs ``numpy < 2.4``, so it lives in its own virtual environment::

    python -m venv /opt/brian2-venv
    /opt/brian2-venv/bin/pip install brian2 "numpy<2.4" cython
    /opt/brian2-venv/bin/python benchmarks/brette_brian2.py --model cuba --seeds 0 1 2 3 4

``benchmarks/brette_compare.py`` runs it next to PySNN and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

#: the COBA kick (identical in examples/brette2007.py)
KICK_MS, KICK_SOURCES, KICK_HZ, KICK_P = 50.0, 100, 100.0, 0.1


def statistics(spike_i: np.ndarray, spike_t_ms: np.ndarray, n: int, duration_ms: float):
    """Mean rate (Hz) over all neurons and mean ISI CV over neurons with >= 3 spikes."""
    rate = len(spike_i) / n / (duration_ms / 1000.0)
    order = np.lexsort((spike_t_ms, spike_i))
    spike_i, spike_t_ms = spike_i[order], spike_t_ms[order]
    cvs = []
    for k in np.unique(spike_i):
        isi = np.diff(spike_t_ms[spike_i == k])
        if len(isi) >= 2 and isi.mean() > 0:
            cvs.append(isi.std() / isi.mean())
    return rate, float(np.mean(cvs)) if cvs else float("nan")


def run_model(model: str, n: int, seed: int, duration_ms: float, dt_ms: float) -> dict:
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "cython"
    b2.defaultclock.dt = dt_ms * b2.ms
    b2.seed(seed)
    n_exc = int(0.8 * n)
    # in-degree 80 (p = 0.02 at N = 4000), kept fixed when N grows
    p = 80.0 / n
    taum, taue, taui = 20 * b2.ms, 5 * b2.ms, 10 * b2.ms
    if model == "cuba":
        eqs = """
        dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
        dge/dt = -ge / taue : volt
        dgi/dt = -gi / taui : volt
        """
        namespace = dict(taum=taum, taue=taue, taui=taui, El=-49 * b2.mV)
        we, wi = 1.62 * b2.mV, -9.0 * b2.mV
        method = "exact"
    else:
        eqs = """
        dv/dt = (ge * (Ee - v) + gi * (Ei - v) - (v - El)) / taum : volt (unless refractory)
        dge/dt = -ge / taue : 1
        dgi/dt = -gi / taui : 1
        """
        namespace = dict(
            taum=taum, taue=taue, taui=taui, El=-60 * b2.mV, Ee=0 * b2.mV, Ei=-80 * b2.mV
        )
        we, wi = 0.6, 6.7
        method = "euler"
    group = b2.NeuronGroup(
        n,
        eqs,
        threshold="v > -50*mV",
        reset="v = -60*mV",
        refractory=5 * b2.ms,
        method=method,
        namespace=namespace,
    )
    if model == "cuba":
        group.v = "-60*mV + rand() * 10*mV"
    else:
        group.v = "-60*mV + rand() * 10*mV"
    exc = b2.Synapses(group, group, on_pre="ge += we", namespace=dict(we=we))
    inh = b2.Synapses(group, group, on_pre="gi += wi", namespace=dict(wi=wi))
    exc.connect(condition=f"i < {n_exc}", p=p)
    inh.connect(condition=f"i >= {n_exc}", p=p)
    monitor = b2.SpikeMonitor(group)
    net = b2.Network(group, exc, inh, monitor)
    if model == "coba":
        # COBA is silent without a kick: during the first KICK_MS, each neuron gets
        # excitatory Poisson input (KICK_SOURCES sources at KICK_HZ, p = KICK_P)
        kick = b2.PoissonGroup(KICK_SOURCES, rates=f"(t < {KICK_MS}*ms) * {KICK_HZ}*Hz")
        drive = b2.Synapses(kick, group, on_pre="ge += we", namespace=dict(we=we))
        drive.connect(p=KICK_P)
        net.add(kick, drive)
    start = time.perf_counter()
    net.run(duration_ms * b2.ms)
    wall = time.perf_counter() - start
    rate, cv = statistics(np.asarray(monitor.i), np.asarray(monitor.t / b2.ms), n, duration_ms)
    return dict(
        simulator="brian2",
        model=model,
        n=n,
        seed=seed,
        rate_hz=rate,
        cv_isi=cv,
        run_s=wall,
        synapses=int(len(exc) + len(inh)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("cuba", "coba"), default="cuba")
    parser.add_argument("--neurons", type=int, nargs="+", default=[4000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--dt", type=float, default=0.1, help="ms")
    args = parser.parse_args()
    for n in args.neurons:  # compile the code once per size, not timed
        run_model(args.model, n, 0, 10.0, args.dt)
    for n in args.neurons:
        for seed in args.seeds:
            print(json.dumps(run_model(args.model, n, seed, args.duration, args.dt)), flush=True)


if __name__ == "__main__":
    main()
