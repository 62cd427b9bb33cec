"""Brian2 reference of the Brette et al. (2007) CUBA and COBA benchmarks, as published.

Runs the networks of ``examples/brette2007.py`` in Brian2 (cython code
generation) with the published parameters, integration methods and initial
states:

* CUBA (benchmark 2): ``method="exact"``, v ~ U[-60, -50] mV, no initial current;
* COBA (benchmark 1): ``method="euler"``, v ~ N(-65, 5) mV, ge ~ N(4, 1.5) and
  gi ~ N(20, 12) leak conductances (40 +- 15 nS and 200 +- 120 nS for a 10 nS
  leak), no external input;
* ``--kick`` (COBA): the kicked variant of ``brette2007.py --kick`` (uniform
  initial voltages, zero conductances, 50 ms of Poisson input).

Statistics mode (default) prints one JSON line per run: model, N, seed, mean
firing rate (Hz), mean CV of the inter-spike intervals, Fano factor of the
population spike count in 1 ms bins, and the wall time of ``run()`` (build and
compilation excluded: a short run of each model compiles first).

``--replay FILE.npz`` runs one network and saves everything a spike-by-spike
replay needs: the connectivity (presynaptic index within its group,
postsynaptic index), the initial state and the spikes (neuron, step).
``benchmarks/brette_replay.py`` runs the same network in PySNN and compares.
``--float32`` runs Brian2 in single precision.

Brian2 needs ``numpy < 2.4``, so it lives in its own virtual environment::

    python -m venv /opt/brian2-venv
    /opt/brian2-venv/bin/pip install brian2 "numpy<2.4" cython
    /opt/brian2-venv/bin/python benchmarks/brette_brian2.py --model coba --seeds 0 1 2
    /opt/brian2-venv/bin/python benchmarks/brette_brian2.py --model cuba --replay cuba.npz

``benchmarks/brette_compare.py`` runs the statistics next to PySNN and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

#: the kicked COBA variant (identical in examples/brette2007.py)
KICK_MS, KICK_SOURCES, KICK_HZ, KICK_P = 50.0, 100, 100.0, 0.1


def statistics(spike_i: np.ndarray, spike_t_ms: np.ndarray, n: int, duration_ms: float):
    """Mean rate (Hz), mean ISI CV (neurons with >= 3 spikes), population Fano factor (1 ms bins).

    The same definitions as ``examples/brette2007.py`` (written again here:
    this script runs in Brian2's environment, without PySNN).
    """
    rate = len(spike_i) / n / (duration_ms / 1000.0)
    order = np.lexsort((spike_t_ms, spike_i))
    spike_i, spike_t_ms = spike_i[order], spike_t_ms[order]
    cvs = []
    for k in np.unique(spike_i):
        isi = np.diff(spike_t_ms[spike_i == k])
        if len(isi) >= 2 and isi.mean() > 0:
            cvs.append(isi.std() / isi.mean())
    counts = np.bincount(
        np.floor(np.round(spike_t_ms, 6)).astype(np.int64), minlength=int(round(duration_ms))
    ).astype(np.float64)
    fano = float(counts.var() / counts.mean()) if counts.mean() > 0 else float("nan")
    return rate, float(np.mean(cvs)) if cvs else float("nan"), fano


def build(model: str, n: int, seed: int, dt_ms: float, kick: bool, float32: bool):
    """The Brian2 network and the objects a caller reads back."""
    import brian2 as b2

    b2.start_scope()
    b2.prefs.codegen.target = "cython"
    b2.prefs.core.default_float_dtype = np.float32 if float32 else np.float64
    b2.defaultclock.dt = dt_ms * b2.ms
    b2.seed(seed)
    n_exc = int(0.8 * n)
    # in-degree 80 (p = 0.02 at N = 4000), kept fixed when N grows
    p = min(1.0, 80.0 / n)
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
    if model == "coba" and not kick:  # the published initial state
        group.v = "-65*mV + 5*mV * randn()"
        group.ge = "4 + 1.5 * randn()"
        group.gi = "20 + 12 * randn()"
    else:
        group.v = "-60*mV + rand() * 10*mV"
    exc = b2.Synapses(group, group, on_pre="ge += we", namespace=dict(we=we))
    inh = b2.Synapses(group, group, on_pre="gi += wi", namespace=dict(wi=wi))
    exc.connect(condition=f"i < {n_exc}", p=p)
    inh.connect(condition=f"i >= {n_exc}", p=p)
    monitor = b2.SpikeMonitor(group)
    net = b2.Network(group, exc, inh, monitor)
    if kick:
        source = b2.PoissonGroup(KICK_SOURCES, rates=f"(t < {KICK_MS}*ms) * {KICK_HZ}*Hz")
        drive = b2.Synapses(source, group, on_pre="ge += we", namespace=dict(we=we))
        drive.connect(p=KICK_P)
        net.add(source, drive)
    return net, group, exc, inh, monitor


def run_model(
    model: str,
    n: int,
    seed: int,
    duration_ms: float,
    dt_ms: float,
    kick: bool = False,
    float32: bool = False,
) -> dict:
    import brian2 as b2

    net, _, exc, inh, monitor = build(model, n, seed, dt_ms, kick, float32)
    start = time.perf_counter()
    net.run(duration_ms * b2.ms)
    wall = time.perf_counter() - start
    rate, cv, fano = statistics(
        np.asarray(monitor.i), np.asarray(monitor.t / b2.ms), n, duration_ms
    )
    return dict(
        simulator="brian2",
        model=model + ("-kick" if kick else ""),
        n=n,
        seed=seed,
        rate_hz=rate,
        cv_isi=cv,
        fano_1ms=fano,
        run_s=wall,
        synapses=int(len(exc) + len(inh)),
    )


def replay(
    path: str, model: str, n: int, seed: int, duration_ms: float, dt_ms: float, float32: bool
) -> dict:
    """Run once and save connectivity, initial state and spikes to ``path`` (npz)."""
    import brian2 as b2

    net, group, exc, inh, monitor = build(model, n, seed, dt_ms, False, float32)
    n_exc = int(0.8 * n)
    # the state the first step starts from, in PySNN's units (mV; leak conductances)
    v0 = np.asarray(group.v / b2.mV, dtype=np.float64).copy()
    ge0 = np.asarray(group.ge / (b2.mV if model == "cuba" else 1), dtype=np.float64).copy()
    gi0 = np.asarray(group.gi / (b2.mV if model == "cuba" else 1), dtype=np.float64).copy()
    net.run(duration_ms * b2.ms)
    steps = np.rint(np.asarray(monitor.t / b2.ms) / dt_ms).astype(np.int64)
    index = np.uint16 if n <= np.iinfo(np.uint16).max else np.int64  # small files
    np.savez_compressed(
        path,
        model=model,
        n=n,
        dt=dt_ms,
        duration=duration_ms,
        seed=seed,
        float32=float32,
        exc_pre=np.asarray(exc.i).astype(index),
        exc_post=np.asarray(exc.j).astype(index),
        inh_pre=(np.asarray(inh.i) - n_exc).astype(index),
        inh_post=np.asarray(inh.j).astype(index),
        v0=v0,
        ge0=ge0,
        gi0=gi0,
        spike_i=np.asarray(monitor.i).astype(index),
        spike_step=steps.astype(np.int32),
    )
    return dict(path=path, model=model, n=n, seed=seed, spikes=int(len(steps)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("cuba", "coba"), default="cuba")
    parser.add_argument("--kick", action="store_true", help="COBA: the kicked variant")
    parser.add_argument("--neurons", type=int, nargs="+", default=[4000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--dt", type=float, default=0.1, help="ms")
    parser.add_argument("--float32", action="store_true", help="Brian2 in single precision")
    parser.add_argument("--replay", default=None, help="save one run for a replay (npz)")
    args = parser.parse_args()
    if args.kick and args.model != "coba":
        parser.error("--kick is the kicked COBA variant (--model coba)")
    if args.replay:
        out = replay(
            args.replay,
            args.model,
            args.neurons[0],
            args.seeds[0],
            args.duration,
            args.dt,
            args.float32,
        )
        print(json.dumps(out), flush=True)
        return
    for n in args.neurons:  # compile the code once per size, not timed
        run_model(args.model, n, 0, 10.0, args.dt, args.kick, args.float32)
    for n in args.neurons:
        for seed in args.seeds:
            result = run_model(args.model, n, seed, args.duration, args.dt, args.kick, args.float32)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
