"""Seconds-long smoke runs of the benchmark scripts.

Each script checks that PySNN and its plain-PyTorch reference give the same
spikes before timing, so these runs also test that the references agree.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_suite_smoke(capsys):
    _load("suite").main(["--smoke"])
    out = capsys.readouterr().out
    for workload in ("W1", "W3", "W4"):
        assert workload in out


def test_bench_core_quick(capsys):
    _load("bench_core").main(["--quick"])
    assert "per-synapse 0..8" in capsys.readouterr().out


def test_bench_grad_quick_checks_equal_spikes_and_gradients(capsys):
    pytest.importorskip("snntorch")
    pytest.importorskip("norse")
    pytest.importorskip("spikingjelly")
    _load("bench_grad").main(["--quick"])  # raises where spikes or gradients differ
    out = capsys.readouterr().out
    for library in ("pysnn", "plain torch", "snntorch", "norse", "spikingjelly"):
        assert library in out


def test_bench_stdp_quick(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_stdp.py", "--quick"])
    _load("bench_stdp").main()
    assert "ratio" in capsys.readouterr().out


def test_brette_compare_smoke(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["brette_compare.py", "--smoke", "--models", "cuba"])
    _load("brette_compare").main()
    out = capsys.readouterr().out
    assert "cuba" in out and "pysnn" in out


def test_long_run_smoke(capsys):
    marks = _load("long_run").main(["--smoke"])
    out = capsys.readouterr().out
    assert "| ms/step |" in out and "| tensor MB |" in out and "| RSS MB |" in out
    # the network and the rule hold exactly the same tensors after 200 and 1000 steps
    assert marks["first_bytes"] == marks["last_bytes"] > 0
    assert marks["window"] == 200 and marks["first_s"] > 0 and marks["last_s"] > 0
    assert marks["rate_hz"] > 0, "the smoke network must be active"


def test_suite_compiled_step_matches_the_reference(capsys):
    # the suite checks the compiled whole-step graph's spikes against the plain loop
    suite = _load("suite")
    if not suite.fusion_available():
        pytest.skip("torch.compile is not available here")
    suite.main(["--smoke", "--only", "W1", "--compiled-step"])
    out = capsys.readouterr().out
    assert out.count("compiled step ") >= 2 and "compile + warm-up" in out


def test_gpu_check_without_cuda_says_so(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("the GPU check itself runs here; see benchmarks/gpu_check.sh")
    report = tmp_path / "report.md"
    done = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh"), str(report)], capture_output=True, text=True
    )
    assert done.returncode == 1
    text = report.read_text()
    assert text.startswith("# PySNN GPU check") and "CUDA is not available here" in text


def test_bench_procedural_quick(capsys):
    rows = _load("bench_procedural").main(["--quick"])
    by_mode = {r["mode"]: r for r in rows}
    assert by_mode["procedural"]["synapses"] == by_mode["stored"]["synapses"] == 100_000
    # procedural: no tensor per synapse (row counts and the queue only); stored: > 8 B each
    assert by_mode["stored"]["bytes"] > 8 * 100_000
    assert by_mode["procedural"]["bytes"] < by_mode["stored"]["bytes"]
    assert "plain (CSR)" in capsys.readouterr().out
